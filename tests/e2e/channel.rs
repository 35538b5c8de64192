//! The agents' channel to the collector: HTTPS with mutual TLS. Agents present their `[tls]`
//! key pairs and pin the collector; the collector takes a snapshot only from the certificate
//! pinned for (or CA-issued to) the agent the snapshot names, and counts every other as
//! forbidden. Readers (the gate, `/metrics`) need no client certificate.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::agents::agent_toml;
use crate::support::http::http_get;
use crate::support::https::https;
use crate::support::machine;
use crate::support::metrics::{check_direction, parse_metrics, sample};
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::tls::{tls_identity, tls_identity_of_collector, tls_section};
use crate::support::{tool, wait_for};

/// An agent `id` (cloud `cloud`, reflector at `listen`) reporting to the collector at `url`
/// pinned by `pin`, presenting the key pair generated for `key` (its own, or another's).
fn agent_over_https(
    dir: &TempDir,
    (id, cloud, listen): (&str, &str, SocketAddr),
    key: &str,
    url: &str,
    pin: &str,
    peers: &[(&str, &str, SocketAddr)],
) -> Proc {
    let toml = agent_toml(id, cloud, listen, url, peers, "5ms").replace(
        "report_interval = \"200ms\"\n",
        &format!("report_interval = \"200ms\"\nfingerprint = \"{pin}\"\n"),
    ) + &tls_section(dir, key, &[]);
    let cfg = dir.write(&format!("{id}-as-{key}.toml"), &toml);
    Proc::spawn(
        &format!("agent {id} (key {key})"),
        Command::new(bin()).args(["agent", "--config"]).arg(&cfg),
    )
}

#[test]
fn agents_report_over_mutual_tls_and_only_in_their_own_name() {
    let _turn = machine::shared();
    let dir = TempDir::new("channel");
    let fp = |id: &str| tls_identity(&dir, id);
    let (fp_az, fp_oci, _stranger) = (fp("az-1"), fp("oci-1"), fp("az-9"));
    let port = free_tcp_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let ccfg = dir.write(
        "collector.toml",
        &format!(
            "listen = \"{addr}\"\n\n[tls]\ndir = \"{}\"\nagents = {{ \"az-1\" = \"{fp_az}\", \"oci-1\" = \"{fp_oci}\" }}\n",
            dir.path().join("collector-keys").display()
        ),
    );
    let pin = tls_identity_of_collector(&ccfg);
    let pin_fp: xcbench_agent::tls::Fingerprint = pin.parse().unwrap();
    let _collector = Proc::spawn(
        "collector",
        Command::new(bin())
            .args(["collector", "--config"])
            .arg(&ccfg),
    );
    // Readers need no client certificate.
    wait_for(Duration::from_secs(10), || {
        https(addr, "GET", "/healthz", b"", pin_fp, None)
            .ok()
            .filter(|r| r.0 == 200)
    })
    .expect("the collector answers /healthz over HTTPS");
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert!(
        !matches!(http_get(addr, "/healthz"), Some((200, _))),
        "plain HTTP answered on the TLS listener"
    );
    // A client that presents no certificate may not report (refused before decoding).
    let (status, body) = https(addr, "POST", "/api/v1/snapshots", b"{}", pin_fp, None).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no client certificate"), "{body}");
    // The same collector under another pin is not trusted by the client.
    let wrong: xcbench_agent::tls::Fingerprint = fp_az.parse().unwrap();
    assert!(
        https(addr, "GET", "/healthz", b"", wrong, None).is_err(),
        "a client accepted a collector it did not pin"
    );

    let (a, b): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], free_udp_port()).into(),
        ([127, 0, 0, 1], free_udp_port()).into(),
    );
    let url = format!("https://{addr}");
    let honest = vec![
        agent_over_https(
            &dir,
            ("az-1", "azure", a),
            "az-1",
            &url,
            &pin,
            &[("oci-1", "oci", b)],
        ),
        agent_over_https(
            &dir,
            ("oci-1", "oci", b),
            "oci-1",
            &url,
            &pin,
            &[("az-1", "azure", a)],
        ),
    ];
    // A stranger's certificate (pinned for nobody, no CA), and oci-1's certificate posting
    // as az-1: both refused with 403, every attempt counted.
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let stranger = agent_over_https(&dir, ("az-9", "azure", any), "az-9", &url, &pin, &[]);
    let impostor = agent_over_https(&dir, ("az-1", "azure", any), "oci-1", &url, &pin, &[]);
    std::thread::sleep(Duration::from_secs(3));
    let stranger_out = stranger.terminate(Duration::from_secs(10));
    let impostor_out = impostor.terminate(Duration::from_secs(10));
    terminate_all(honest);
    let log = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let (stranger_log, impostor_log) = (log(&stranger_out), log(&impostor_out));
    assert!(
        stranger_log.contains("403") && stranger_log.contains("is not pinned for agent az-9"),
        "stranger: {stranger_log}"
    );
    assert!(
        impostor_log.contains("403")
            && impostor_log.contains("is pinned for agent oci-1, not for az-1"),
        "impostor: {impostor_log}"
    );

    let (status, text) = https(addr, "GET", "/metrics", b"", pin_fp, None).unwrap();
    assert_eq!(status, 200);
    let m = parse_metrics(&text);
    let snapshots = |result: &str| {
        sample(
            &m,
            "xcbench_collector_snapshots_total",
            &[&format!("result=\"{result}\"")],
        )
        .unwrap()
    };
    // Each refused agent tried at least at start and at its last report; the 403 of the
    // no-certificate POST above is counted too.
    let forbidden = snapshots("forbidden");
    assert!(forbidden >= 5.0, "forbidden {forbidden}");
    assert!(snapshots("accepted") >= 10.0);
    assert_eq!(snapshots("rejected"), 0.0);
    // The honest pair's data is whole, and nothing of the stranger's is held.
    check_direction(&m, "az-1", "oci-1", 200.0, 20.0);
    check_direction(&m, "oci-1", "az-1", 200.0, 20.0);
    assert!(
        !text.contains("az-9"),
        "the stranger's snapshots reached the store"
    );
    eprintln!(
        "mutual TLS: accepted {}, forbidden {forbidden} (stranger and impostor refused)",
        snapshots("accepted")
    );

    // A real Prometheus scrapes the HTTPS collector with the collector's own certificate as
    // its CA and the name that certificate carries (what the shipped prometheus.yml says).
    if let Some(prometheus) = tool("prometheus", "CI") {
        let cert = dir.path().join("collector-keys").join("agent.crt");
        let (_server, prom) = crate::support::prometheus::spawn(
            &prometheus,
            &dir,
            &format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: xcbench\n    scheme: https\n    tls_config:\n      ca_file: {}\n      server_name: xcbench-collector\n    static_configs:\n      - targets: ['{addr}']\n",
                cert.display()
            ),
        );
        let scraped = wait_for(Duration::from_secs(60), || {
            let q = "xcbench_collector_snapshots_total%7Bresult%3D%22forbidden%22%7D";
            let (status, body) = http_get(prom, &format!("/api/v1/query?query={q}"))?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let value = v["data"]["result"][0]["value"][1]
                .as_str()?
                .parse::<f64>()
                .ok()?;
            (status == 200).then_some(value)
        })
        .expect("Prometheus scraped the HTTPS collector");
        assert_eq!(scraped, forbidden, "Prometheus reads what /metrics says");
    }

    // The gate reads the history over HTTPS by the collector's pin; without one it refuses
    // to guess (exit 2), and the agents' own key does not pass for the collector's.
    let slo = dir.write(
        "slo.yaml",
        "defaults:\n  select: { src_agent: az-1, dst_agent: oci-1 }\nobjectives:\n  - { name: rtt-p50, indicator: rtt, quantile: p50, at_most: 1s }\n",
    );
    let gate = |extra: &[&str]| {
        let out = Command::new(bin())
            .args(["gate", "--slo"])
            .arg(&slo)
            .args(["--collector", &url, "--window", "5m"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // Read and judged (pass, or inconclusive on the run's short coverage of the window):
    // not 4, the source could not be read.
    let (code, out) = gate(&["--collector-fingerprint", &pin]);
    assert!(
        matches!(code, 0 | 3) && out.contains("rtt-p50"),
        "exit {code}: {out}"
    );
    let (code, out) = gate(&[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("https:// needs --collector-fingerprint"),
        "{out}"
    );
    let (code, out) = gate(&["--collector-fingerprint", &fp_az]);
    assert_eq!(code, 4, "{out}");
}

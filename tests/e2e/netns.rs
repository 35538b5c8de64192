//! Agents in two network namespaces joined by a veth pair (198.18.0.0/24, the benchmarking
//! range): real kernel paths across interfaces, the collector in one namespace, reached over
//! mutual TLS; and DSCP re-marking by an nftables rule, seen in its direction. Needs
//! CAP_NET_ADMIN: skipped with a reason without it, a failure under XCBENCH_REQUIRE_NETNS=1.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::agents::{agent_toml, spawn_pair_tls};
use crate::support::machine;
use crate::support::metrics::{check_direction, parse_metrics, sample};
use crate::support::netns::{https_metrics_in, metrics_in, netns_available, Netns};
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::tls::{tls_identity, tls_identity_of_collector};

#[test]
fn agent_pair_across_namespaces() {
    let _turn = machine::shared();
    if !netns_available() {
        return;
    }
    let tag = std::process::id() % 100_000;
    let (az, oci) = (format!("xaz{tag}"), format!("xoc{tag}"));
    let ns = Netns::create(&[&az, &oci]);
    ns.link(&az, "198.18.0.1", &oci, "198.18.0.2");
    let dir = TempDir::new("netns");
    let collector: SocketAddr = "198.18.0.1:9862".parse().unwrap();
    // Across namespaces as across the interconnect: the agents report over mutual TLS,
    // each pinned at the collector, the collector pinned at each agent.
    let (fp_az, fp_oci) = (tls_identity(&dir, "az-1"), tls_identity(&dir, "oci-1"));
    let ccfg = dir.write(
        "collector.toml",
        &format!(
            "listen = \"{collector}\"\nwindow_summaries = [\"rtt\", \"one_way_forward\", \"one_way_reverse\"]\n\n[tls]\ndir = \"{}\"\nagents = {{ \"az-1\" = \"{fp_az}\", \"oci-1\" = \"{fp_oci}\" }}\n",
            dir.path().join("collector-keys").display()
        ),
    );
    let pin = tls_identity_of_collector(&ccfg);
    let _collector = Proc::spawn(
        "collector",
        ns.command(&az, bin())
            .args(["collector", "--config"])
            .arg(&ccfg),
    );
    let url = format!("https://{collector}");
    let (a, b): (SocketAddr, SocketAddr) = (
        "198.18.0.1:862".parse().unwrap(),
        "198.18.0.2:862".parse().unwrap(),
    );
    let agents = spawn_pair_tls(
        &dir,
        &url,
        &pin,
        [a, b],
        "5ms",
        [ns.command(&az, bin()), ns.command(&oci, bin())],
    );
    std::thread::sleep(Duration::from_secs(2));
    terminate_all(agents);
    // The collector lives inside the namespace: read /metrics from there.
    let text = https_metrics_in(&az, collector, &pin);
    let m = parse_metrics(&text);
    assert_eq!(
        sample(
            &m,
            "xcbench_collector_snapshots_total",
            &["result=\"forbidden\""]
        ),
        Some(0.0)
    );
    for (src, dst) in [("az-1", "oci-1"), ("oci-1", "az-1")] {
        let s = format!("src_agent=\"{src}\"");
        let d = format!("dst_agent=\"{dst}\"");
        // Probes sent before the peer's reflector listened are lost forward; nothing else.
        check_direction(&m, src, dst, 200.0, 20.0);
        // Same host clock on both sides: one-way delays are small and non-negative.
        for dir in ["forward", "reverse"] {
            let p50 = sample(
                &m,
                "xcbench_one_way_delay_window_seconds",
                &[&s, &d, &format!("direction=\"{dir}\""), "quantile=\"0.5\""],
            )
            .unwrap();
            assert!(p50 > 0.0 && p50 < 0.002, "{src}->{dst} {dir} owd p50 {p50}");
        }
    }
}

/// DSCP re-marking seen each way (RFC 8972 Class of Service): both agents probe with EF
/// (46), and the OCI namespace re-marks every UDP packet coming in to CS1 (8) and marks it
/// CE, as a QoS policy at one edge of the interconnect (and a congested queue) would. az-1's test packets reach oci-1's
/// reflector as CS1 (forward re-marked, the reply kept EF); oci-1's replies come back to it
/// as CS1 (reverse re-marked, its test packets kept EF).
#[test]
fn dscp_remarking_is_seen_in_its_direction() {
    let _turn = machine::shared();
    if !netns_available() {
        return;
    }
    let tag = std::process::id() % 100_000;
    let (az, oci) = (format!("xra{tag}"), format!("xro{tag}"));
    let ns = Netns::create(&[&az, &oci]);
    ns.link(&az, "198.18.0.1", &oci, "198.18.0.2");
    for rule in [
        "add table ip xcb",
        "add chain ip xcb pre { type filter hook prerouting priority -150 ; }",
        "add rule ip xcb pre meta l4proto udp ip dscp set cs1 ip ecn set ce",
    ] {
        let out = ns
            .command(&oci, "nft")
            .args(rule.split(' '))
            .output()
            .expect("nft");
        assert!(out.status.success(), "nft {rule}: {out:?}");
    }
    let dir = TempDir::new("remark");
    let collector: SocketAddr = "198.18.0.1:9862".parse().unwrap();
    let ccfg = dir.write(
        "collector.toml",
        &format!("listen = \"{collector}\"\nplain_http = true\n"),
    );
    let _collector = Proc::spawn(
        "collector",
        ns.command(&az, bin())
            .args(["collector", "--config"])
            .arg(&ccfg),
    );
    let url = format!("http://{collector}");
    let (a, b): (SocketAddr, SocketAddr) = (
        "198.18.0.1:862".parse().unwrap(),
        "198.18.0.2:862".parse().unwrap(),
    );
    let ef = |t: String| t.replace("loss_timeout", "dscp = 46\nloss_timeout");
    let agents: Vec<Proc> = [
        (
            "a",
            &az,
            ef(agent_toml(
                "az-1",
                "azure",
                a,
                &url,
                &[("oci-1", "oci", b)],
                "5ms",
            )),
        ),
        (
            "b",
            &oci,
            ef(agent_toml(
                "oci-1",
                "oci",
                b,
                &url,
                &[("az-1", "azure", a)],
                "5ms",
            )),
        ),
    ]
    .into_iter()
    .map(|(name, at, text)| {
        let cfg = dir.write(&format!("{name}.toml"), &text);
        Proc::spawn(
            &format!("agent {name}"),
            ns.command(at, bin()).args(["agent", "--config"]).arg(&cfg),
        )
    })
    .collect();
    std::thread::sleep(Duration::from_secs(2));
    terminate_all(agents);
    let m = parse_metrics(&metrics_in(&az, collector));
    // (source, peer, the DSCP each way, whether each way was re-marked, the ECN each way)
    for (src, dst, seen, remarked, ecn) in [
        ("az-1", "oci-1", [8.0, 46.0], [true, false], [3.0, 0.0]),
        ("oci-1", "az-1", [46.0, 8.0], [false, true], [0.0, 3.0]),
    ] {
        let pair = [
            format!("src_agent=\"{src}\""),
            format!("dst_agent=\"{dst}\""),
        ];
        let get = |name: &str, dir: &str| {
            let d = format!("direction=\"{dir}\"");
            sample(&m, name, &[&pair[0], &pair[1], &d])
                .unwrap_or_else(|| panic!("{name} {src}->{dst} {dir}"))
        };
        let received = sample(
            &m,
            "xcbench_probes_received_total",
            &[&pair[0], &pair[1], "kind=\"stamp\""],
        )
        .unwrap();
        assert!(received >= 200.0, "{src}->{dst}: {received} replies");
        for (i, dir) in ["forward", "reverse"].into_iter().enumerate() {
            let dscp = get("xcbench_probes_received_dscp", dir);
            let count = get("xcbench_probes_remarked_total", dir);
            eprintln!("remarking: {src}->{dst} {dir}: DSCP {dscp}, re-marked {count} of {received} replies");
            assert_eq!(dscp, seen[i], "{src}->{dst} {dir}");
            assert_eq!(
                get("xcbench_probes_received_ecn", dir),
                ecn[i],
                "{src}->{dst} {dir} ECN"
            );
            let want = if remarked[i] { received } else { 0.0 };
            assert_eq!(count, want, "{src}->{dst} {dir}");
        }
    }
}

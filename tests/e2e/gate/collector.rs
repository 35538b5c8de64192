//! A collector given the SLO file: exact threshold counts per series and verdicts on a
//! timer, equal to the history's and the gate's.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{slo, FAIL, ONE_SECOND_SLOTS, PASS};
use crate::support::agents::{spawn_collector, spawn_pair};
use crate::support::http::http_get;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, TempDir};
use crate::support::{machine, tool, wait_for};

/// Thresholds (seconds) the low end of the loopback RTT distribution is reported at.
const LOW_TAIL: &str = "0.000002,0.000003,0.000005,0.00001";

/// A collector given the SLO file counts its thresholds exactly per series and judges its
/// objectives on a timer: the exported counts equal the history's, the verdicts equal the
/// gate's, and `promtool check metrics` stays clean.
#[test]
fn the_collector_exports_exact_threshold_counts_and_verdicts() {
    let _turn = machine::shared();
    let dir = TempDir::new("gate-collector");
    // A threshold inside the loopback RTT distribution, where buckets straddle it.
    const MID: &str =
        "  - { name: rtt-p50-40us, indicator: rtt, quantile: p50, at_most: 40us, key: false }\n";
    let slo_file = dir.write("slo.yaml", &slo(&[PASS, FAIL, MID]));
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let _collector = spawn_collector(
        &dir,
        addr,
        &format!(
            "slo = \"{}\"\nslo_interval = \"1s\"\n{ONE_SECOND_SLOTS}",
            slo_file.display()
        ),
    );
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    let url = format!("http://{addr}");
    let started = Instant::now();
    let agents = spawn_pair(
        &dir,
        &url,
        [
            ([127, 0, 0, 1], free_udp_port()).into(),
            ([127, 0, 0, 1], free_udp_port()).into(),
        ],
        "5ms",
        [Command::new(bin()), Command::new(bin())],
    );
    let verdict = |text: &str, objective: &str, v: &str| {
        text.contains(&format!(
            "xcbench_slo_verdict{{objective=\"{objective}\",key=\"true\",verdict=\"{v}\"}} 1"
        ))
    };
    let text = wait_for(Duration::from_secs(30), || {
        let (_, text) = http_get(addr, "/metrics")?;
        (started.elapsed() > Duration::from_secs(9)
            && verdict(&text, "loss", "pass")
            && verdict(&text, "rtt-p50-1us", "fail"))
        .then_some(text)
    })
    .unwrap_or_else(|| panic!("{}", http_get(addr, "/metrics").unwrap().1));
    assert!(verdict(&text, "rtt-p99", "pass"), "{text}");
    // Stop the agents (final snapshots in), then compare the exact counters with the
    // history over all time, series by series.
    crate::support::proc::terminate_all(agents);
    let (_, text) = http_get(addr, "/metrics").unwrap();
    let m = crate::support::metrics::parse_metrics(&text);
    for src in ["az-1", "oci-1"] {
        let sel = [
            format!("src_agent=\"{src}\""),
            "kind=\"stamp\"".to_owned(),
            "metric=\"rtt\"".to_owned(),
        ];
        let sel: Vec<&str> = sel.iter().map(String::as_str).collect();
        let get = |name: &str, extra: &[&str]| {
            crate::support::metrics::sample(&m, name, &[&sel[..], extra].concat())
                .unwrap_or_else(|| panic!("{name} {sel:?} {extra:?}: {text}"))
        };
        let samples = get("xcbench_slo_samples_total", &[]);
        let within_50ms = get("xcbench_slo_within_total", &["threshold=\"0.05\""]);
        let within_1us = get("xcbench_slo_within_total", &["threshold=\"0.000001\""]);
        let within_40us = get("xcbench_slo_within_total", &["threshold=\"0.00004\""]);
        let straddling_40us = get("xcbench_slo_straddling_total", &["threshold=\"0.00004\""]);
        let (_, body) = http_get(
            addr,
            &format!(
                "/api/v1/history?src_agent={src}&kind=stamp&from=0&le=0.05,0.000001,0.00004,{LOW_TAIL}"
            ),
        )
        .unwrap();
        let h: serde_json::Value = serde_json::from_str(&body).unwrap();
        let within = &h["metrics"][0]["within"];
        let tail: Vec<String> = LOW_TAIL
            .split(',')
            .zip(within.as_array().unwrap().iter().skip(3))
            .map(|(le, w)| format!("{} <= {le} s", w["at_most"]))
            .collect();
        // Replies whose dwell swallowed the round trip (a clock moved) carry no RTT.
        let clock_steps = crate::support::metrics::sample(
            &m,
            "xcbench_probes_clock_steps_total",
            &[&format!("src_agent=\"{src}\""), "protocol=\"udp\""],
        )
        .expect("xcbench_probes_clock_steps_total of the STAMP series");
        eprintln!(
            "{src}: {samples} samples, {within_50ms} <= 50ms, {within_1us} <= 1us; low tail {}; {clock_steps} clock steps; history {within}",
            tail.join(", ")
        );
        assert!(samples > 1_000.0);
        assert_eq!(samples, h["metrics"][0]["count"].as_f64().unwrap());
        assert_eq!(within_50ms, within[0]["at_most"].as_f64().unwrap());
        assert_eq!(within_1us, within[1]["at_most"].as_f64().unwrap());
        // Counted at ingest and summed from the history at query time: the same counts.
        assert_eq!(within_40us, within[2]["at_most"].as_f64().unwrap());
        assert_eq!(straddling_40us, within[2]["straddling"].as_f64().unwrap());
        assert_eq!(within_50ms, samples, "every loopback RTT is under 50 ms");
        // An RTT holds both sends' way through the stack (microseconds on loopback), never 0;
        // a reply whose dwell swallowed its round trip (a clock step) records none.
        assert_eq!(
            within_1us, 0.0,
            "no loopback RTT is 1 us: low tail {tail:?}, {clock_steps} clock steps"
        );
    }
    let Some(promtool) = tool("promtool", "CI") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

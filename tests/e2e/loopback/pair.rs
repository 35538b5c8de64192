//! Two agents probing each other over UDP: each sender's counts agree with its peer's
//! reflector, its four flows add up to the series, and `promtool check metrics` finds the
//! collector's `/metrics` clean.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{metrics, run_pair};
use crate::support::metrics::{check_direction, sample};
use crate::support::{machine, tool};

#[test]
fn agent_pair_counts_agree_and_promtool_is_clean() {
    let _turn = machine::shared();
    let pair = run_pair(Duration::from_secs(2));
    let (text, m) = metrics(pair.addr);
    for (src, dst) in [("az-1", "oci-1"), ("oci-1", "az-1")] {
        let sel = [
            format!("src_agent=\"{src}\""),
            format!("dst_agent=\"{dst}\""),
        ];
        let sel: Vec<&str> = sel.iter().map(String::as_str).collect();
        // 2 s at 5 ms is ~400 probes. Checked against the peer's reflector (another process);
        // only probes sent before the peer listened may be lost, and only forward.
        check_direction(&m, src, dst, 200.0, 20.0);
        let p50 = sample(
            &m,
            "xcbench_rtt_window_seconds",
            &[sel[0], sel[1], "quantile=\"0.5\""],
        )
        .unwrap();
        assert!(p50 > 0.0 && p50 < 0.005, "loopback p50 {p50}");
        assert_eq!(
            sample(
                &m,
                "xcbench_probe_info",
                &[sel[0], sel[1], "timestamping=\"kernel\""]
            ),
            Some(1.0)
        );
        // Four flows by default, taking turns: each about a quarter of the probes, the
        // four adding up to the series, each with its own RTT window.
        let total = |name: &str| sample(&m, name, &[sel[0], sel[1], "kind=\"stamp\""]).unwrap();
        for (flow_name, name) in [
            (
                "xcbench_flow_probes_sent_total",
                "xcbench_probes_sent_total",
            ),
            (
                "xcbench_flow_probes_received_total",
                "xcbench_probes_received_total",
            ),
            (
                "xcbench_flow_probes_lost_total",
                "xcbench_probes_lost_total",
            ),
        ] {
            let per_flow: Vec<f64> = (0..4)
                .map(|f| {
                    let flow = format!("flow=\"{f}\"");
                    sample(&m, flow_name, &[sel[0], sel[1], &flow])
                        .unwrap_or_else(|| panic!("{flow_name} {src}->{dst} flow {f}"))
                })
                .collect();
            assert_eq!(
                per_flow.iter().sum::<f64>(),
                total(name),
                "{flow_name} {src}->{dst}: {per_flow:?}"
            );
            if flow_name.contains("sent") {
                let (lo, hi) = per_flow
                    .iter()
                    .fold((f64::MAX, 0f64), |(l, h), v| (l.min(*v), h.max(*v)));
                assert!(
                    hi - lo <= 1.0,
                    "{src}->{dst}: the flows take turns: {per_flow:?}"
                );
            }
        }
        assert!(
            sample(
                &m,
                "xcbench_flow_probes_sent_total",
                &[sel[0], sel[1], "flow=\"4\""]
            )
            .is_none(),
            "four flows"
        );
        for f in 0..4 {
            let flow = format!("flow=\"{f}\"");
            let p99 = sample(
                &m,
                "xcbench_flow_rtt_window_seconds",
                &[sel[0], sel[1], &flow, "quantile=\"0.99\""],
            )
            .unwrap();
            assert!(p99 > 0.0 && p99 < 0.05, "{src}->{dst} flow {f}: p99 {p99}");
        }
    }
    assert!(
        sample(
            &m,
            "xcbench_collector_snapshots_total",
            &["result=\"rejected\""]
        ) == Some(0.0)
    );

    let Some(promtool) = tool("promtool", "CI") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(pair.collector);
}

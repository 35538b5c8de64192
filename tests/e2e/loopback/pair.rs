//! Two agents probing each other over UDP: each sender's counts agree with its peer's
//! reflector, and `promtool check metrics` finds the collector's `/metrics` clean.

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

//! The gate refusing bad input with the documented exit codes: malformed or missing SLO
//! files, a selection that matches nothing, an unreachable collector.

use super::{gate, slo, PASS};
use crate::support::machine;
use crate::support::ports::free_tcp_port;
use crate::support::proc::TempDir;

#[test]
fn gate_refuses_bad_input_with_the_documented_exit_codes() {
    let _turn = machine::shared();
    let dir = TempDir::new("gate-bad");
    let bad = dir.write(
        "slo.yaml",
        "objectives:\n  - name: x\n    indicator: rtt\n    quantile: p99\n    at_most: 5x\n",
    );
    let (code, _, err) = gate(&["--slo", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("slo.yaml: objectives[0].at_most = \"5x\": must be a duration"),
        "{err}"
    );
    let missing = dir.path().join("missing.yaml");
    let (code, _, err) = gate(&["--slo", missing.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.yaml: cannot read"), "{err}");
    // Nothing listens on this port: the source cannot be read.
    let good = dir.write("good.yaml", &slo(&[PASS]));
    let closed = format!("http://127.0.0.1:{}", free_tcp_port());
    let (code, out, err) = gate(
        &["--slo", good.to_str().unwrap(), "--collector", &closed],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains(&format!("collector {closed}: cannot be reached")),
        "{err}"
    );
    // A collector that is not a URL is a bad flag (2), not an unread source (4).
    let (code, _, err) = gate(
        &[
            "--slo",
            good.to_str().unwrap(),
            "--collector",
            "10.0.0.5:9862",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("collector 10.0.0.5:9862: not a base URL"),
        "{err}"
    );
    // Flags: a range that ends before it starts.
    let (code, _, err) = gate(
        &[
            "--slo",
            good.to_str().unwrap(),
            "--from",
            "2026-11-30T19:00:00Z",
            "--to",
            "2026-11-30T18:00:00Z",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from must be before --to"), "{err}");
}

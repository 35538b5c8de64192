//! Two equal-cost paths behind one link, as an ExpressRoute circuit's primary and secondary
//! are: the emulator hashes each UDP 5-tuple onto one of them, the second path slower (3 ms
//! each way against 1 ms) and lossy (5% each way). Probed over 16 flows, xcbench shows both
//! paths, flow by flow, each flow's RTT and loss matching the truth of the path the emulator
//! carried it over; probed over one flow, it shows one path only.

use serde_json::Value;

use super::{lab_ok, run_case_with, Outcome, OWD_TOLERANCE_S};

const SETS: &[&str] = &["delay=1ms", "ecmp.delay=3ms", "ecmp.loss=5%"];

/// One path's truth: how many of the prober's flows it carried, the RTT it held them for
/// (forward plus reverse p50 of what the emulator actually held), and what it dropped.
#[derive(Debug)]
struct PathTruth {
    flows: usize,
    rtt_s: f64,
    dropped: f64,
}

fn paths(o: &Outcome) -> Vec<PathTruth> {
    let paths = o.truth["paths"].as_array().expect("truth per path");
    assert_eq!(paths.len(), 2, "{}", o.truth);
    paths
        .iter()
        .map(|p| {
            let udp = |dir: &str| &p[dir]["udp"];
            let held = |dir: &str| udp(dir)["actual_delay_ns"]["p50"].as_f64().unwrap_or(0.0);
            let dropped = |dir: &str| udp(dir)["dropped_random"].as_f64().unwrap_or(0.0);
            let from_prober = |f: &&Value| {
                f["src"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("198.18.1."))
            };
            PathTruth {
                flows: p["udp_flows"]
                    .as_array()
                    .map_or(0, |f| f.iter().filter(from_prober).count()),
                rtt_s: (held("forward") + held("reverse")) / 1e9,
                dropped: dropped("forward") + dropped("reverse"),
            }
        })
        .collect()
}

/// The path with flows whose truth RTT is nearest `rtt_s`, which must lie within 300 us of
/// it (the two paths are 4 ms apart; what remains is the host's stack and the TUN devices
/// four times over, +100 to +170 us measured on a busy 2-core machine).
fn path_of(truth: &[PathTruth], rtt_s: f64) -> usize {
    let off = |p: usize| (rtt_s - truth[p].rtt_s).abs();
    let path = (0..truth.len())
        .filter(|p| truth[*p].flows > 0)
        .min_by(|a, b| off(*a).total_cmp(&off(*b)))
        .expect("a path with flows");
    assert!(
        off(path) <= 4.0 * OWD_TOLERANCE_S,
        "an RTT of {:.1} us is {:.1} us from the nearest path's: {truth:?}",
        rtt_s * 1e6,
        off(path) * 1e6
    );
    path
}

#[test]
fn sixteen_flows_show_both_paths_and_one_flow_shows_one() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case_with("xecmp", SETS, 4, "payload_size = 44\nflows = 16\n");
    let truth = paths(&o);
    let both_rtt = [truth[0].rtt_s, truth[1].rtt_s];
    assert_eq!(truth[0].flows + truth[1].flows, 16, "{}", o.truth);
    // Both paths carry some of 16 flows unless the hash put all 16 on one (2 in 65,536).
    assert!(truth.iter().all(|p| p.flows > 0), "{truth:?}");
    let mut seen = [0usize; 2];
    let mut lost = [0.0f64; 2];
    let mut resolved = [0.0f64; 2];
    for flow in 0..16 {
        let f = format!("flow=\"{flow}\"");
        let p50 = o.get("xcbench_flow_rtt_window_seconds", &[&f, "quantile=\"0.5\""]);
        let p99 = o.get(
            "xcbench_flow_rtt_window_seconds",
            &[&f, "quantile=\"0.99\""],
        );
        let path = path_of(&truth, p50);
        let (l, r) = (
            o.get("xcbench_flow_probes_lost_total", &[&f]),
            o.get("xcbench_flow_probes_received_total", &[&f]),
        );
        eprintln!(
            "ecmp: flow {flow:>2}: path {path} (truth RTT {:.1} us); measured p50 {:.1} us, p99 {:.1} us; lost {l} of {}",
            truth[path].rtt_s * 1e6,
            p50 * 1e6,
            p99 * 1e6,
            l + r
        );
        seen[path] += 1;
        lost[path] += l;
        resolved[path] += l + r;
    }
    for (p, t) in truth.iter().enumerate() {
        eprintln!(
            "ecmp: path {p}: truth {} flows, RTT {:.1} us, {} dropped; measured {} flows, {} lost of {} ({:.2}%)",
            t.flows,
            t.rtt_s * 1e6,
            t.dropped,
            seen[p],
            lost[p],
            resolved[p],
            100.0 * lost[p] / resolved[p].max(1.0)
        );
        assert_eq!(seen[p], t.flows, "flows on path {p}");
        assert_eq!(
            lost[p], t.dropped,
            "loss on path {p} is the path's, exactly"
        );
    }
    assert_eq!(truth[0].dropped, 0.0, "the first path drops nothing");
    assert!(
        lost[1] / resolved[1] > 0.05,
        "the lossy path's flows lose about 9.75%: {} of {}",
        lost[1],
        resolved[1]
    );
    // The series is all flows together: the same loss, mixed RTTs.
    assert_eq!(o.get("xcbench_probes_lost_total", &[]), lost[0] + lost[1]);

    // One flow: one path, whichever the hash picks, and nothing of the other (the emulator
    // carried none of its packets there; its p99 is printed, not judged: a busy 2-core
    // machine's scheduling shows there).
    let one = run_case_with("xecmp1", SETS, 3, "payload_size = 44\nflows = 1\n");
    let truth = paths(&one);
    let rtt = |q: &str| {
        one.get(
            "xcbench_rtt_window_seconds",
            &[&format!("quantile=\"{q}\"")],
        )
    };
    let path = path_of(&truth, rtt("0.5"));
    let other = 1 - path;
    eprintln!(
        "ecmp: one flow: path {path} (truth RTT {:.1} us), measured p50 {:.1} us, p99 {:.1} us, lost {}; the other path (RTT {:.1} us) unseen",
        truth[path].rtt_s * 1e6,
        rtt("0.5") * 1e6,
        rtt("0.99") * 1e6,
        one.get("xcbench_probes_lost_total", &[]),
        both_rtt[other] * 1e6,
    );
    assert_eq!((truth[path].flows, truth[other].flows), (1, 0), "{truth:?}");
    assert_eq!(
        one.get("xcbench_probes_lost_total", &[]),
        truth[path].dropped
    );
}

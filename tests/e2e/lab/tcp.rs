//! TCP probes on the lab link: connect and request/response times match the link's delay,
//! and loss shows up as retransmission latency, never as lost probes.

use super::{lab_ok, near, run_case_with};

const TCP: &str = "protocols = [\"udp\", \"tcp\"]\nconnect_interval = \"50ms\"\n";

#[test]
fn tcp_connect_and_rr_match_the_link() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case_with("xtcp", &["delay=1ms"], 3, TCP);
    let q = |kind: &str, quant: &str| {
        o.get(
            "xcbench_rtt_window_seconds",
            &[
                &format!("kind=\"{kind}\""),
                &format!("quantile=\"{quant}\""),
            ],
        )
    };
    let link = o.udp_delay("forward", "actual_delay_ns", "p50")
        + o.udp_delay("reverse", "actual_delay_ns", "p50");
    // A handshake is one round trip (SYN out, SYN-ACK back) plus connect()'s own cost.
    // Debug builds spend more around connect() (socket set-up, task spawn): 400 us headroom.
    near("tcp connect p50", q("connect", "0.5"), link, 400e-6);
    // Request/response on a warm connection: the same round trip STAMP measures, with kernel
    // receive timestamps on both ends; what remains is the TCP stack.
    near(
        "tcp rr p50 vs stamp rtt p50",
        q("rr", "0.5"),
        q("stamp", "0.5"),
        100e-6,
    );
    // The link drops nothing: a retransmission here is the kernel's tail-loss probe after a
    // stall of the emulator's thread (seen once in CI, with the hypervisor stealing 8% of
    // the CPUs), so at most 1% of the requests; the loss cases count the real ones.
    let requests = o.get("xcbench_probes_sent_total", &["kind=\"rr\""]);
    let retransmits = o.get("xcbench_tcp_retransmits_total", &["kind=\"rr\""]);
    assert!(
        requests >= 100.0 && retransmits <= requests / 100.0,
        "{retransmits} retransmissions over {requests} requests on a lossless link"
    );
    let srtt = o.get("xcbench_tcp_srtt_seconds", &["kind=\"rr\""]);
    // The kernel's smoothed RTT runs from a request's segment to the ACK that rides on the
    // response, so it also holds the responder's wake-up and processing (a debug build in
    // CI), which kernel-timestamped RTTs exclude: 329 us and 654 us above the link seen on
    // clean CI runs. It can never be below the link: a tight floor, a loose ceiling (a
    // unit or field mix-up, ms for us or rttvar for srtt, still fails one of them).
    assert!(
        srtt >= link - 50e-6 && srtt <= link + 1.5e-3,
        "TCP_INFO srtt: xcbench {:.1} us, link {:.1} us: expected link - 50 us ..= link + 1500 us",
        srtt * 1e6,
        link * 1e6
    );
}

#[test]
fn tcp_under_loss_retransmits_and_shows_it_as_latency() {
    let Some(_g) = lab_ok() else { return };
    // 3% on the way out only: about 3% of handshakes lose their SYN, which the client itself
    // must retransmit (a lost SYN-ACK would be recovered by the server instead).
    let o = run_case_with(
        "xtcpl",
        &["delay=1ms", "forward.loss=3%"],
        4,
        "protocols = [\"udp\", \"tcp\"]\nconnect_interval = \"20ms\"\n",
    );
    let rr = |name: &str, extra: &[&str]| {
        let mut sel = vec!["kind=\"rr\""];
        sel.extend_from_slice(extra);
        o.get(name, &sel)
    };
    assert!(
        rr("xcbench_tcp_retransmits_total", &[]) >= 1.0,
        "retransmit counter moves"
    );
    // A lost segment is resent after the tail-loss probe (about 2 x SRTT) or the RTO, so
    // the request/response tail reaches several round trips of the 2 ms link (9.6 ms seen).
    let max = rr("xcbench_rtt_window_seconds", &["quantile=\"1\""]);
    assert!(
        max >= 0.006,
        "rr max {max}: no retransmission delay visible"
    );
    let p50 = rr("xcbench_rtt_window_seconds", &["quantile=\"0.5\""]);
    assert!(p50 < 0.003, "rr p50 {p50} stays near the 2 ms link");
    // A lost SYN is resent after 1 s: the classic ~1 s connect, counted as a retransmission,
    // not as a loss.
    let connect = |name: &str, extra: &[&str]| {
        let mut sel = vec!["kind=\"connect\""];
        sel.extend_from_slice(extra);
        o.get(name, &sel)
    };
    assert!(
        connect("xcbench_tcp_retransmits_total", &[]) >= 1.0,
        "SYN retransmissions counted"
    );
    let max = connect("xcbench_rtt_window_seconds", &["quantile=\"1\""]);
    // Typically ~1.0 s (one SYN resent); with this seed one connect takes 2.05 s, which
    // forward-only SYN loss alone does not explain (under investigation): assert the
    // retransmission scale, not the exact step.
    assert!(
        max >= 0.9,
        "connect max {max}: no retransmission-sized connect"
    );
    // But bounded, so the unexplained case cannot silently grow: two SYN retransmissions
    // (1 s + 2 s) and the round trip stay under 3.5 s.
    assert!(
        max < 3.5,
        "connect max {max}: longer than two SYN retransmissions"
    );
    assert_eq!(connect("xcbench_probes_lost_total", &[]), 0.0);
    // TCP delivers everything: a request is lost only if its connection stalled for the
    // whole loss timeout, which this loss rate does not do.
    assert_eq!(rr("xcbench_probes_lost_total", &[]), 0.0);
}

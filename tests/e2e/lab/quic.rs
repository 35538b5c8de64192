//! QUIC probes on the lab link: handshakes (full and resumed) and request/response times
//! match the link; under loss, streams recover and datagrams are lost.

use super::{lab_ok, near, run_case_with};

const QUIC: &str = "protocols = [\"udp\", \"quic\"]\nconnect_interval = \"100ms\"\n";

#[test]
fn quic_handshakes_and_rr_match_the_link() {
    let Some(_g) = lab_ok() else { return };
    // 15 ms each way: one round trip (30 ms) is then far from two, whatever the crypto and
    // the debug build cost.
    let o = run_case_with("xquic", &["delay=15ms"], 4, QUIC);
    let q = |proto: &str, kind: &str, quant: &str| {
        o.get(
            "xcbench_rtt_window_seconds",
            &[
                &format!("protocol=\"{proto}\""),
                &format!("kind=\"{kind}\""),
                &format!("quantile=\"{quant}\""),
            ],
        )
    };
    let quic =
        |name: &str, kind: &str| o.get(name, &["protocol=\"quic\"", &format!("kind=\"{kind}\"")]);
    let link = o.udp_delay("forward", "actual_delay_ns", "p50")
        + o.udp_delay("reverse", "actual_delay_ns", "p50");
    for kind in ["connect", "resume", "rr", "datagram"] {
        eprintln!(
            "quic/{kind}: p50 {:.3} ms p99 {:.3} ms; stamp p50 {:.3} ms; link {:.3} ms",
            q("quic", kind, "0.5") * 1e3,
            q("quic", kind, "0.99") * 1e3,
            q("udp", "stamp", "0.5") * 1e3,
            link * 1e3
        );
        assert_eq!(quic("xcbench_probes_lost_total", kind), 0.0, "{kind}");
        assert!(
            quic("xcbench_probes_received_total", kind) >= 30.0,
            "{kind}"
        );
    }
    // A full handshake is one round trip plus both sides' crypto and scheduling: 1.2 ms over
    // the link with release binaries here, 6.5-8.4 ms with the debug build (plain cargo test) and
    // 12.5 ms once on a clean clone with both cores busy; 14 ms headroom still tells one
    // round trip from two (60 ms).
    let connect = q("quic", "connect", "0.5");
    assert!(connect >= link, "connect {connect} beats the link {link}");
    near("quic connect p50 - 1 RTT", connect, link + 7e-3, 7e-3);
    // 0-RTT: the first request rides with the ClientHello, so request and response take one
    // round trip, not the two of a handshake followed by a request.
    let resume = q("quic", "resume", "0.5");
    assert!(resume >= link, "resume {resume} beats the link {link}");
    near("quic resume p50 - 1 RTT", resume, link + 7e-3, 7e-3);
    assert_eq!(
        o.get("xcbench_quic_zero_rtt_total", &["result=\"accepted\""]),
        quic("xcbench_probes_sent_total", "resume"),
        "every resumption carried 0-RTT data"
    );
    // Streams and datagrams on a warm connection: STAMP's round trip plus quinn and the
    // async runtime in user space on both ends (kernel timestamps do not reach quinn):
    // +0.2 ms with release binaries, +1.3-1.5 ms with debug ones and 2.1 ms once on a
    // clean clone with both cores busy; 3 ms tolerance.
    let stamp = q("udp", "stamp", "0.5");
    near(
        "quic rr p50 vs stamp rtt p50",
        q("quic", "rr", "0.5"),
        stamp + 1.5e-3,
        1.5e-3,
    );
    near(
        "quic datagram p50 vs stamp rtt p50",
        q("quic", "datagram", "0.5"),
        stamp + 1.5e-3,
        1.5e-3,
    );
    // quinn's own smoothed RTT estimate includes the peer's acknowledgement delay and the
    // same user-space path as rr above: up to 3 ms over the link (2.2 ms seen on a clean CI
    // run).
    near(
        "quinn rtt",
        quic("xcbench_quic_rtt_seconds", "rr"),
        link + 1.5e-3,
        1.5e-3,
    );
    // quinn declares a packet lost by RFC 9002's heuristics: 3 packets, or 9/8 of an RTT,
    // behind a newer acknowledged one. On two busy cores a late acknowledgement can make it
    // declare one lost that arrives after all (spurious: its frames are sent again, and no
    // probe was lost, as asserted above); a clean-clone run once counted 1 here on a link
    // that dropped nothing. So hold quinn's count to the ground truth (whatever the link
    // dropped besides MTU probes, which quinn counts apart) plus a spurious allowance of 1
    // per 100 rr probes, at least 2: a real loss path (a dropping link) still shows.
    let dropped = ["forward", "reverse"]
        .iter()
        .map(|d| o.drops(d) - o.udp(d, "dropped_mtu"))
        .sum::<f64>();
    let sent = quic("xcbench_probes_sent_total", "rr");
    let lost = quic("xcbench_quic_lost_packets_total", "rr");
    let allowed = dropped + (sent / 100.0).max(2.0);
    eprintln!("quinn lost {lost} packets; the link dropped {dropped}; {sent} rr probes");
    assert!(
        lost <= allowed,
        "quinn lost {lost} packets: more than the link's {dropped} drops and a spurious 1% ({allowed})"
    );
}

#[test]
fn quic_under_loss_recovers_streams_and_loses_datagrams() {
    let Some(_g) = lab_ok() else { return };
    // 5 s: the persistent connection may need a second for its own handshake when the loss
    // takes one of its packets (quinn resends after its first PTO), and the probes only
    // start once it is up.
    let o = run_case_with("xquicl", &["delay=1ms", "loss=1%"], 5, QUIC);
    let quic = |name: &str, kind: &str, extra: &[&str]| {
        let k = format!("kind=\"{kind}\"");
        let mut sel = vec!["protocol=\"quic\"", &k];
        sel.extend_from_slice(extra);
        o.get(name, &sel)
    };
    let sent = quic("xcbench_probes_sent_total", "datagram", &[]);
    let dg_lost = quic("xcbench_probes_lost_total", "datagram", &[]);
    let rr_max = quic("xcbench_rtt_window_seconds", "rr", &["quantile=\"1\""]);
    eprintln!(
        "datagram lost {dg_lost} of {sent}; rr lost {}; rr max {:.3} ms p50 {:.3} ms; quinn lost packets {}",
        quic("xcbench_probes_lost_total", "rr", &[]),
        rr_max * 1e3,
        quic("xcbench_rtt_window_seconds", "rr", &["quantile=\"0.5\""]) * 1e3,
        quic("xcbench_quic_lost_packets_total", "rr", &[])
    );
    // DATAGRAM frames are never resent: about 2% of request/response pairs cross a 1% loss
    // each way (88 of 3905 seen). quinn may pack a datagram with other frames, so the
    // emulator's packet drops bound it only loosely: 0.5% to 4%.
    assert!(sent >= 3000.0, "datagrams sent {sent}");
    let share = dg_lost / sent;
    assert!((0.005..=0.04).contains(&share), "datagram loss {share}");
    // Streams are reliable: nothing is lost, and the loss shows as latency (a resend takes
    // at least one more round trip of the 2 ms link; 12.8 ms seen) and in quinn's counter.
    assert_eq!(quic("xcbench_probes_lost_total", "rr", &[]), 0.0);
    assert!(rr_max >= 0.004, "rr max {rr_max}: no resend visible");
    assert!(quic("xcbench_quic_lost_packets_total", "rr", &[]) >= 1.0);
}

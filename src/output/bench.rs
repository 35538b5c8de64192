//! What `xcbench bench PEER` prints: live interval lines while the test runs, then a table
//! with both ends' figures (bytes the sender's kernel accepted, bytes delivered to the
//! receiving application), or `--json` shaped like iperf3's output where the fields map.
//! Golden files pin the table and the JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};
use xcbench_agent::config::PeerConfig;
use xcbench_agent::net::throughput::Interval;
use xcbench_agent::probe::throughput::{totals, Test, TestReport, Totals};
use xcbench_agent::wire::throughput::{Direction, IntervalBytes, Protocol};
use xcbench_snapshot::Flow;

/// The first lines: whom the test runs with and what it does, then the column header.
pub fn opening(peer_id: &str, peer: &PeerConfig, test: &Test) -> [String; 2] {
    let what = match (test.protocol, test.bitrate_bps) {
        (Protocol::Udp, Some(b)) => format!("udp at {}", rate_text(b as f64)),
        (p, Some(b)) => format!("{p} capped at {}", rate_text(b as f64)),
        (p, None) => p.to_string(),
    };
    [
        format!(
            "Connecting to {} ({}, data on {}): {}, {} stream{}, {}, {:.1} s, omitting {:.1} s",
            peer_id,
            peer.quic_address,
            peer.address.ip(),
            what,
            test.streams,
            if test.streams == 1 { "" } else { "s" },
            direction_text(test.direction),
            test.duration_ms as f64 / 1e3,
            test.omit_ms as f64 / 1e3,
        ),
        header(test.protocol == Protocol::Udp),
    ]
}

/// Live interval lines: one per stream and interval, or one `[SUM]` line per interval of a
/// multi-stream test once every stream of that role has reported it.
pub struct Live {
    per_role: usize,
    bidir: bool,
    udp: bool,
    seen: BTreeMap<u8, usize>,
    pending: BTreeMap<(bool, usize), Vec<IntervalBytes>>,
}

impl Live {
    pub fn new(test: &Test) -> Live {
        Live {
            per_role: usize::from(test.streams),
            bidir: test.direction == Direction::Bidirectional,
            udp: test.protocol == Protocol::Udp,
            seen: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Takes one stream's interval; returns the line it completes, if any.
    pub fn push(&mut self, iv: Interval) -> Option<String> {
        let k = self.seen.entry(iv.stream).or_default();
        let slot = self.pending.entry((iv.sender, *k)).or_default();
        *k += 1;
        slot.push(iv.figures);
        if slot.len() < self.per_role {
            return None;
        }
        let lines = std::mem::take(slot);
        let sum = IntervalBytes {
            start_ms: lines.iter().map(|i| i.start_ms).min().unwrap_or(0),
            end_ms: lines.iter().map(|i| i.end_ms).max().unwrap_or(0),
            bytes: lines.iter().map(|i| i.bytes).sum(),
            retransmits: lines.iter().map(|i| i.retransmits).sum(),
            omitted: lines.iter().all(|i| i.omitted),
            packets: lines.iter().map(|i| i.packets).sum(),
            lost: lines.iter().map(|i| i.lost).sum(),
            out_of_order: lines.iter().map(|i| i.out_of_order).sum(),
            jitter_us: lines.iter().filter_map(|i| i.jitter_us).max(),
        };
        let id = if self.per_role == 1 {
            format!("[{:>3}]", iv.stream)
        } else {
            "[SUM]".to_owned()
        };
        let role = match (self.bidir, iv.sender) {
            (false, _) => "",
            (true, true) => " TX",
            (true, false) => " RX",
        };
        Some(interval_line(&id, &sum, iv.sender, self.udp) + role)
    }
}

fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::Forward => "this agent sends",
        Direction::Reverse => "the peer sends (reverse)",
        Direction::Bidirectional => "both send (bidirectional)",
    }
}

/// `112 MBytes` (binary prefixes, as iperf3 prints transfers).
pub fn bytes_text(b: u64) -> String {
    let b = b as f64;
    match b {
        b if b >= 1024.0 * 1024.0 * 1024.0 => {
            format!("{:.2} GBytes", b / (1024.0 * 1024.0 * 1024.0))
        }
        b if b >= 1024.0 * 1024.0 => format!("{:.1} MBytes", b / (1024.0 * 1024.0)),
        b if b >= 1024.0 => format!("{:.1} KBytes", b / 1024.0),
        b => format!("{b:.0} Bytes"),
    }
}

/// `941 Mbits/sec` (decimal prefixes).
pub fn rate_text(bps: f64) -> String {
    match bps {
        r if r >= 1e9 => format!("{:.2} Gbits/sec", r / 1e9),
        r if r >= 1e6 => format!("{:.1} Mbits/sec", r / 1e6),
        r if r >= 1e3 => format!("{:.1} Kbits/sec", r / 1e3),
        r => format!("{r:.0} bits/sec"),
    }
}

fn header(udp: bool) -> String {
    if udp {
        format!(
            "{:<6} {:<18} {:>12} {:>16} {:>10} {:>20}",
            "[ ID]", "Interval", "Transfer", "Bitrate", "Jitter", "Lost/Total Datagrams"
        )
    } else {
        format!(
            "{:<6} {:<18} {:>12} {:>16} {:>6}",
            "[ ID]", "Interval", "Transfer", "Bitrate", "Retr"
        )
    }
}

/// The UDP columns: the sender's datagram count, or the receiver's jitter and loss.
fn udp_columns(sender: bool, packets: u64, lost: u64, jitter_us: Option<u64>) -> String {
    if sender {
        format!("{:>10} {:>20}", "", packets)
    } else {
        let total = packets + lost;
        let share = if total > 0 {
            lost as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        format!(
            "{:>10} {:>20}",
            jitter_us.map_or("-".to_owned(), |j| format!("{:.3} ms", j as f64 / 1e3)),
            format!("{lost}/{total} ({share:.2}%)")
        )
    }
}

/// The columns after the rate: UDP's jitter and loss, or a TCP/QUIC sender's retransmits.
fn tail_columns(
    udp: bool,
    sender: bool,
    retransmits: u64,
    packets: u64,
    lost: u64,
    jitter_us: Option<u64>,
) -> String {
    match (udp, sender) {
        (true, _) => udp_columns(sender, packets, lost, jitter_us),
        (false, true) => format!("{retransmits:>6}"),
        (false, false) => format!("{:>6}", ""),
    }
}

fn interval_line(id: &str, iv: &IntervalBytes, sender: bool, udp: bool) -> String {
    let secs = (iv.end_ms - iv.start_ms) as f64 / 1e3;
    let bps = if secs > 0.0 {
        iv.bytes as f64 * 8.0 / secs
    } else {
        0.0
    };
    let tail = tail_columns(
        udp,
        sender,
        iv.retransmits,
        iv.packets,
        iv.lost,
        iv.jitter_us,
    );
    format!(
        "{:<6} {:>6.2}-{:<6.2} sec {:>12} {:>16} {}{}",
        id,
        iv.start_ms as f64 / 1e3,
        iv.end_ms as f64 / 1e3,
        bytes_text(iv.bytes),
        rate_text(bps),
        tail,
        if iv.omitted { "  (omitted)" } else { "" },
    )
}

/// The final table: per stream and summed, sender and receiver rows per direction, then
/// the senders' TCP_INFO and how the figures were obtained.
pub fn render_table(r: &TestReport) -> String {
    let mut t = String::new();
    let udp = r.test.protocol == Protocol::Udp;
    let _ = writeln!(
        t,
        "- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -"
    );
    for f in r.flows() {
        let label = match f.flow {
            Flow::Forward => "this agent -> peer",
            Flow::Reverse => "peer -> this agent",
        };
        let _ = writeln!(t, "{label}:");
        let _ = writeln!(t, "{}", header(udp));
        let row = |t: &mut String, id: &str, x: &Totals, role: &str, sender: bool| {
            let tail = tail_columns(udp, sender, x.retransmits, x.packets, x.lost, x.jitter_us);
            let _ = writeln!(
                t,
                "{:<6} {:>6.2}-{:<6.2} sec {:>12} {:>16} {tail}  {role}",
                id,
                x.start_s,
                x.end_s,
                bytes_text(x.bytes),
                rate_text(x.bits_per_second),
            );
        };
        for (s, rcv) in f.sender.iter().zip(&f.receiver) {
            let id = format!("[{:>3}]", s.stream);
            row(&mut t, &id, &totals([*s]), "sender", true);
            row(&mut t, &id, &totals([*rcv]), "receiver", false);
        }
        if f.sender.len() > 1 {
            row(
                &mut t,
                "[SUM]",
                &totals(f.sender.iter().copied()),
                "sender",
                true,
            );
            row(
                &mut t,
                "[SUM]",
                &totals(f.receiver.iter().copied()),
                "receiver",
                false,
            );
        }
        for s in &f.sender {
            if let Some(tcp) = s.tcp {
                let busy = tcp.busy_us.max(1) as f64;
                let _ = writeln!(
                    t,
                    "[{:>3}] sender TCP_INFO: cwnd {}, srtt {:.3} ms, delivery rate {}, limited by receive window {:.0}% / send buffer {:.0}% of busy time",
                    s.stream,
                    bytes_text(tcp.snd_cwnd_bytes),
                    tcp.srtt_us as f64 / 1e3,
                    rate_text(tcp.delivery_rate_bytes_per_second as f64 * 8.0),
                    tcp.rwnd_limited_us as f64 * 100.0 / busy,
                    tcp.sndbuf_limited_us as f64 * 100.0 / busy,
                );
            }
            if let Some(q) = s.quic {
                let _ = writeln!(
                    t,
                    "[{:>3}] sender quinn: cwnd {}, rtt {:.3} ms, mtu {}, lost {} of {} packets, {} congestion events, window {}, GSO {} / GRO {} segments",
                    s.stream,
                    bytes_text(q.cwnd_bytes),
                    q.rtt_us as f64 / 1e3,
                    q.mtu_bytes,
                    q.lost_packets,
                    q.sent_packets,
                    q.congestion_events,
                    bytes_text(q.window_bytes),
                    q.gso_segments,
                    q.gro_segments,
                );
            }
        }
    }
    let _ = writeln!(
        t,
        "sender = bytes the sending {} accepted; receiver = bytes delivered to the receiving application; \
         both over the intervals after the omitted warm-up ({:.1} s), each side by its own clock.{}",
        if r.test.protocol == Protocol::Quic { "QUIC stack (quinn)" } else { "kernel" },
        r.test.omit_ms as f64 / 1e3,
        if r.test.protocol == Protocol::Quic {
            " Retr = packets quinn declared lost. A QUIC sender's count includes what still sat in quinn's send buffer (up to the window)."
        } else {
            ""
        },
    );
    t
}

fn sum_json(x: &Totals, sender: bool, udp: bool) -> Value {
    let mut v = json!({
        "start": x.start_s,
        "end": x.end_s,
        "seconds": x.seconds,
        "bytes": x.bytes,
        "bits_per_second": x.bits_per_second,
        "sender": sender,
    });
    if udp {
        // iperf3's UDP fields: the receiver's view of the datagrams.
        v["packets"] = json!(x.packets + if sender { 0 } else { x.lost });
        if !sender {
            v["lost_packets"] = json!(x.lost);
            v["lost_percent"] = json!(if x.packets + x.lost > 0 {
                x.lost as f64 * 100.0 / (x.packets + x.lost) as f64
            } else {
                0.0
            });
            v["jitter_ms"] = json!(x.jitter_us.map(|j| j as f64 / 1e3));
            v["out_of_order"] = json!(x.out_of_order);
        }
    } else {
        v["retransmits"] = json!(sender.then_some(x.retransmits));
    }
    v
}

/// iperf3-shaped JSON: `start`, `intervals` (this side's), `end` with `sum_sent` and
/// `sum_received` (and `_bidir_reverse` for the peer's direction of a bidirectional test).
pub fn render_json(r: &TestReport) -> Value {
    let udp = r.test.protocol == Protocol::Udp;
    let connected: Vec<Value> = r
        .connections
        .iter()
        .enumerate()
        .map(|(i, (l, p))| {
            json!({"socket": i, "local_host": l.ip().to_string(), "local_port": l.port(),
                   "remote_host": p.ip().to_string(), "remote_port": p.port()})
        })
        .collect();
    let n = r.local.iter().map(|s| s.intervals.len()).max().unwrap_or(0);
    let intervals: Vec<Value> = (0..n)
        .map(|k| {
            let streams: Vec<Value> = r
                .local
                .iter()
                .filter_map(|s| s.intervals.get(k).map(|iv| (s, iv)))
                .map(|(s, iv)| {
                    let secs = (iv.end_ms - iv.start_ms) as f64 / 1e3;
                    json!({"socket": s.stream, "start": iv.start_ms as f64 / 1e3, "end": iv.end_ms as f64 / 1e3,
                           "seconds": secs, "bytes": iv.bytes,
                           "bits_per_second": if secs > 0.0 { iv.bytes as f64 * 8.0 / secs } else { 0.0 },
                           "retransmits": if s.sender { Some(iv.retransmits) } else { None },
                           "omitted": iv.omitted, "sender": s.sender})
                })
                .collect();
            json!({"streams": streams})
        })
        .collect();
    let mut end = serde_json::Map::new();
    for (i, f) in r.flows().iter().enumerate() {
        let suffix = if i == 0 { "" } else { "_bidir_reverse" };
        end.insert(
            format!("sum_sent{suffix}"),
            sum_json(&totals(f.sender.iter().copied()), true, udp),
        );
        end.insert(
            format!("sum_received{suffix}"),
            sum_json(&totals(f.receiver.iter().copied()), false, udp),
        );
    }
    let streams: Vec<Value> = r
        .flows()
        .iter()
        .flat_map(|f| {
            f.sender.iter().zip(&f.receiver).map(|(s, rcv)| {
                json!({"sender": sum_json(&totals([*s]), true, udp), "receiver": sum_json(&totals([*rcv]), false, udp),
                       "tcp_info": s.tcp, "quic_path": s.quic})
            })
        })
        .collect();
    end.insert("streams".into(), Value::Array(streams));
    json!({
        "start": {
            "version": concat!("xcbench ", env!("CARGO_PKG_VERSION")),
            "connected": connected,
            "timestamp": {"timesecs": r.started_unix_ns / 1_000_000_000},
            "test_start": {
                "protocol": r.test.protocol.as_str().to_uppercase(),
                "target_bitrate": r.test.bitrate_bps,
                "num_streams": r.test.streams,
                "blksize": r.test.write_bytes,
                "omit": r.test.omit_ms as f64 / 1e3,
                "duration": r.test.duration_ms as f64 / 1e3,
                "reverse": u8::from(r.test.direction == Direction::Reverse),
                "bidir": u8::from(r.test.direction == Direction::Bidirectional),
                "congestion": r.test.congestion,
            },
        },
        "intervals": intervals,
        "end": Value::Object(end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::check_golden;
    use xcbench_agent::wire::throughput::{QuicEnd, StreamFigures, TcpEnd, TestSpec};

    fn figures(sender: bool, per_s: u64) -> StreamFigures {
        StreamFigures {
            stream: 0,
            sender,
            intervals: (0..3)
                .map(|k| IntervalBytes {
                    start_ms: k * 1000,
                    end_ms: (k + 1) * 1000,
                    bytes: per_s,
                    retransmits: if sender { k } else { 0 },
                    omitted: k == 0,
                    packets: 0,
                    lost: 0,
                    out_of_order: 0,
                    jitter_us: None,
                })
                .collect(),
            tcp: sender.then_some(TcpEnd {
                retransmits: 3,
                snd_cwnd_bytes: 1 << 20,
                srtt_us: 2100,
                delivery_rate_bytes_per_second: 25_000_000,
                rwnd_limited_us: 0,
                sndbuf_limited_us: 500_000,
                busy_us: 3_000_000,
            }),
            quic: None,
        }
    }

    fn spec() -> TestSpec {
        TestSpec {
            protocol: Protocol::Tcp,
            direction: Direction::Forward,
            duration_ms: 3000,
            omit_ms: 1000,
            interval_ms: 1000,
            streams: 1,
            write_bytes: 131072,
            bitrate_bps: None,
            congestion: None,
            window_bytes: None,
        }
    }

    fn report() -> TestReport {
        report_of(spec())
    }

    fn report_of(spec: TestSpec) -> TestReport {
        TestReport {
            test: Test::try_from(spec).unwrap(),
            connections: vec![(
                "198.18.1.1:40000".parse().unwrap(),
                "198.18.2.1:864".parse().unwrap(),
            )],
            local: vec![figures(true, 25_000_000)],
            remote: vec![figures(false, 24_999_000)],
            started_unix_ns: 1_700_000_000_000_000_000,
        }
    }

    #[test]
    fn golden_table_and_json() {
        let r = report();
        check_golden("bench_table.txt", &render_table(&r));
        check_golden(
            "bench.json",
            &(serde_json::to_string_pretty(&render_json(&r)).unwrap() + "\n"),
        );
        let j = render_json(&r);
        // 2 counted seconds of 25 MB each way: 200 Mbit/s.
        assert_eq!(j["end"]["sum_sent"]["bits_per_second"], 200e6);
        assert_eq!(j["end"]["sum_received"]["bytes"], 2 * 24_999_000);
        assert_eq!(j["end"]["sum_sent"]["retransmits"], 3);
    }

    #[test]
    fn golden_udp_table() {
        let mut r = report_of(TestSpec {
            protocol: Protocol::Udp,
            write_bytes: 1372,
            bitrate_bps: Some(200_000_000),
            ..spec()
        });
        for (f, lost) in [(&mut r.local[0], 0), (&mut r.remote[0], 3)] {
            f.tcp = None;
            for iv in &mut f.intervals {
                iv.retransmits = 0;
                iv.packets = iv.bytes / 1372 - lost;
                if !f.sender {
                    iv.lost = lost;
                    iv.jitter_us = Some(76);
                }
            }
        }
        check_golden("bench_udp_table.txt", &render_table(&r));
        let j = render_json(&r);
        assert_eq!(j["end"]["sum_received"]["lost_packets"], 6);
        assert_eq!(j["end"]["sum_received"]["jitter_ms"], 0.076);
    }

    #[test]
    fn golden_quic_table() {
        let mut r = report_of(TestSpec {
            protocol: Protocol::Quic,
            window_bytes: Some(25_000_000),
            ..spec()
        });
        r.local[0].tcp = None;
        r.local[0].quic = Some(QuicEnd {
            lost_packets: 1726,
            sent_packets: 166_481,
            congestion_events: 72,
            cwnd_bytes: 1_329_962,
            rtt_us: 46_046,
            mtu_bytes: 1372,
            gso_segments: 64,
            gro_segments: 64,
            window_bytes: 25_000_000,
        });
        check_golden("bench_quic_table.txt", &render_table(&r));
        let j = render_json(&r);
        assert_eq!(j["start"]["test_start"]["protocol"], "QUIC");
        assert_eq!(j["end"]["streams"][0]["quic_path"]["mtu_bytes"], 1372);
        assert_eq!(j["end"]["streams"][0]["tcp_info"], Value::Null);
    }

    #[test]
    fn units_read_like_iperf3() {
        assert_eq!(bytes_text(117_440_512), "112.0 MBytes");
        assert_eq!(rate_text(941e6), "941.0 Mbits/sec");
        assert_eq!(rate_text(9.41e9), "9.41 Gbits/sec");
    }

    #[test]
    fn live_lines_sum_the_streams_of_each_role() {
        let test = Test::try_from(TestSpec {
            streams: 2,
            direction: Direction::Bidirectional,
            ..spec()
        })
        .unwrap();
        let mut live = Live::new(&test);
        let iv = |stream, sender, bytes| Interval {
            stream,
            sender,
            figures: IntervalBytes {
                start_ms: 0,
                end_ms: 1000,
                bytes,
                retransmits: 1,
                omitted: false,
                packets: 0,
                lost: 0,
                out_of_order: 0,
                jitter_us: None,
            },
        };
        assert_eq!(live.push(iv(0, true, 1_000_000)), None);
        assert_eq!(live.push(iv(2, false, 5)), None);
        let line = live.push(iv(1, true, 1_500_000)).unwrap();
        assert!(line.starts_with("[SUM]") && line.ends_with(" TX"), "{line}");
        assert!(line.contains("20.0 Mbits/sec"), "{line}");
        assert!(line.contains("     2"), "two retransmits: {line}");
    }
}

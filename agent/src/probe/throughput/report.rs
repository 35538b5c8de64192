//! What the asking side of a test learned, sans-IO: both ends' figures per stream, paired
//! into the test's directions ([`TestReport::flows`]), and the snapshot records a scheduled
//! test becomes ([`TestReport::results`]).

use std::net::SocketAddr;

use xcbench_snapshot::{Flow, Identity, ThroughputCounts, ThroughputOutcome, ThroughputResult};

use super::{totals, Test};
use crate::wire::throughput::{Direction, StreamFigures};

/// A data connection's (local, remote) addresses.
pub type Addresses = (SocketAddr, SocketAddr);

/// One direction of a test: the sending side's streams and the receiving side's, paired by
/// stream index.
pub struct FlowFigures<'a> {
    pub flow: Flow,
    pub sender: Vec<&'a StreamFigures>,
    pub receiver: Vec<&'a StreamFigures>,
}

/// The directions `direction` moves bytes in, seen from the asking agent.
pub fn flows(direction: Direction) -> &'static [Flow] {
    match direction {
        Direction::Forward => &[Flow::Forward],
        Direction::Reverse => &[Flow::Reverse],
        Direction::Bidirectional => &[Flow::Forward, Flow::Reverse],
    }
}

/// What the asking side learned.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub test: Test,
    /// Data connections: (local, remote) addresses, by stream index.
    pub connections: Vec<Addresses>,
    /// This side's figures per stream.
    pub local: Vec<StreamFigures>,
    /// The answering side's figures per stream.
    pub remote: Vec<StreamFigures>,
    /// When the data started (Unix ns).
    pub started_unix_ns: u64,
}

impl TestReport {
    /// The test's directions: forward, reverse, or both.
    pub fn flows(&self) -> Vec<FlowFigures<'_>> {
        fn pick(v: &[StreamFigures], sender: bool) -> Vec<&StreamFigures> {
            v.iter().filter(|s| s.sender == sender).collect()
        }
        // Stream i's sending side pairs with stream i's receiving side at the other end.
        flows(self.test.direction)
            .iter()
            .map(|&flow| {
                let (senders, receivers) = match flow {
                    Flow::Forward => (&self.local, &self.remote),
                    Flow::Reverse => (&self.remote, &self.local),
                };
                FlowFigures {
                    flow,
                    sender: pick(senders, true),
                    receiver: pick(receivers, false),
                }
            })
            .collect()
    }

    /// The finished test's directions as snapshot records for `peer`, started at `started`
    /// (Unix ns).
    pub fn results(&self, peer: &Identity, started: u64) -> Vec<ThroughputResult> {
        self.flows()
            .iter()
            .map(|f| {
                let sent = totals(f.sender.iter().copied());
                let got = totals(f.receiver.iter().copied());
                ThroughputResult {
                    peer: peer.clone(),
                    protocol: self.test.protocol,
                    flow: f.flow,
                    outcome: ThroughputOutcome::Ok,
                    started_unix_ns: started,
                    counts: ThroughputCounts {
                        sender_bytes: sent.bytes,
                        sender_ns: (sent.seconds * 1e9) as u64,
                        receiver_bytes: got.bytes,
                        receiver_ns: (got.seconds * 1e9) as u64,
                        retransmits: sent.retransmits,
                        datagrams: got.packets,
                        datagrams_lost: got.lost,
                    },
                    interval_min_bytes_per_second: slowest_interval(&f.receiver),
                }
            })
            .collect()
    }
}

/// The receiver's k-th interval summed over its streams (each stream samples at its own
/// boundaries, a few ms apart), over the longest of them: the slowest counted one (bytes/s).
fn slowest_interval(receiver: &[&StreamFigures]) -> u64 {
    let n = receiver
        .iter()
        .map(|s| s.intervals.len())
        .max()
        .unwrap_or(0);
    (0..n)
        .filter_map(|k| {
            let ivs: Vec<_> = receiver
                .iter()
                .filter_map(|s| s.intervals.get(k))
                .filter(|i| !i.omitted && i.end_ms > i.start_ms)
                .collect();
            let ms = ivs.iter().map(|i| i.end_ms - i.start_ms).max()?;
            Some(ivs.iter().map(|i| i.bytes).sum::<u64>() * 1_000 / ms)
        })
        .min()
        .unwrap_or(0)
}

/// Records for a scheduled test that did not run (refused or failed): one per direction,
/// with zeros.
pub fn not_run(
    peer: &Identity,
    test: &Test,
    outcome: ThroughputOutcome,
    started: u64,
) -> Vec<ThroughputResult> {
    flows(test.direction)
        .iter()
        .map(|&flow| ThroughputResult {
            peer: peer.clone(),
            protocol: test.protocol,
            flow,
            outcome,
            started_unix_ns: started,
            counts: ThroughputCounts::default(),
            interval_min_bytes_per_second: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::throughput::tests::spec;
    use crate::wire::throughput::IntervalBytes;
    use xcbench_snapshot::Cloud;

    fn figures(stream: u8, sender: bool, per_second: &[u64]) -> StreamFigures {
        StreamFigures {
            stream,
            sender,
            intervals: per_second
                .iter()
                .enumerate()
                .map(|(i, bytes)| IntervalBytes {
                    start_ms: i as u64 * 1_000,
                    end_ms: (i as u64 + 1) * 1_000,
                    bytes: *bytes,
                    retransmits: u64::from(sender),
                    omitted: i == 0,
                    packets: 0,
                    lost: 0,
                    out_of_order: 0,
                    jitter_us: None,
                })
                .collect(),
            tcp: None,
            quic: None,
        }
    }

    #[test]
    fn a_bidirectional_test_pairs_each_side_and_finds_the_slowest_interval() {
        let test = Test::try_from(crate::wire::throughput::TestSpec {
            direction: Direction::Bidirectional,
            streams: 2,
            ..spec()
        })
        .unwrap();
        let report = TestReport {
            test,
            connections: vec![],
            // Streams 0, 1: we send; 2, 3: the peer sends.
            local: vec![
                figures(0, true, &[9, 10, 10]),
                figures(1, true, &[9, 10, 10]),
                figures(2, false, &[9, 5, 7]),
                figures(3, false, &[9, 6, 1]),
            ],
            remote: vec![
                figures(0, false, &[9, 10, 9]),
                figures(1, false, &[9, 10, 9]),
                figures(2, true, &[9, 12, 12]),
                figures(3, true, &[9, 12, 12]),
            ],
            started_unix_ns: 0,
        };
        let peer = Identity {
            id: "oci-1".parse().unwrap(),
            cloud: Cloud::Oci,
            region: "r".into(),
            zone: String::new(),
        };
        let r = report.results(&peer, 7);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].flow, r[1].flow), (Flow::Forward, Flow::Reverse));
        assert_eq!(
            (r[0].counts.sender_bytes, r[0].counts.receiver_bytes),
            (40, 38)
        );
        assert_eq!(
            (r[1].counts.sender_bytes, r[1].counts.receiver_bytes),
            (48, 19)
        );
        assert_eq!(
            (r[0].counts.receiver_ns, r[0].counts.retransmits),
            (2_000_000_000, 4)
        );
        // Reverse: second intervals 5 + 6 = 11 B/s, third 7 + 1 = 8 B/s.
        assert_eq!(r[1].interval_min_bytes_per_second, 8);
        assert_eq!(r[0].interval_min_bytes_per_second, 18);
        let none = not_run(&peer, &report.test, ThroughputOutcome::Refused, 7);
        assert_eq!(none.len(), 2);
        assert!(none.iter().all(|r| r.counts == ThroughputCounts::default()));
    }
}

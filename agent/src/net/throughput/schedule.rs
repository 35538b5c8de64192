//! Scheduled throughput tests (`[bench.schedule]`): the agent tests each listed peer once a
//! period (jittered; see [`Schedule`]), one protocol after another, never two tests at once
//! (the agent's [`TestSlot`] is shared with the answering side). Each test's directions go to
//! the recorder as [`BenchResult`]s, so they reach the collector with the next snapshot;
//! while a test runs the recorder files the peer's probe outcomes under `load="bench"`.
//!
//! A test refused because either agent is busy is tried again after a random 2 to 10 s, up
//! to [`BUSY_TRIES`] times, then counted as refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use xcbench_snapshot::{BenchCounts, BenchOutcome, BenchResult, Flow, Identity, Protocol};

use super::{connect_control, BenchError, TestSlot, Tester, BUSY};
use crate::config::{BenchSchedule, PeerConfig};
use crate::net::clock::now_unix_ns;
use crate::net::reflector::lock;
use crate::probe::throughput::{totals, Schedule};
use crate::record::Recorder;
use crate::tls::TlsIdentity;
use crate::wire::throughput::{BenchProtocol, Direction, TestSpec};

/// Attempts of a test that meets a busy agent.
pub const BUSY_TRIES: u32 = 5;

/// What the scheduler needs from the agent.
pub struct Scheduler {
    pub schedule: BenchSchedule,
    pub peers: Vec<PeerConfig>,
    pub identity: TlsIdentity,
    pub ca: Option<Arc<rustls::RootCertStore>>,
    pub slot: Arc<TestSlot>,
    pub recorder: Arc<Mutex<Recorder>>,
}

impl Scheduler {
    /// Runs rounds until `stop` changes; a test under way when it does is abandoned.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let peers: Vec<&PeerConfig> = self
            .schedule
            .peers
            .iter()
            .filter_map(|id| self.peers.iter().find(|p| &p.identity.id == id))
            .collect();
        let every_ns = self.schedule.every.as_nanos() as u64;
        let mut plan = Schedule::new(peers.len(), every_ns, now_unix_ns(), random);
        while let Some(due) = plan.poll_timeout() {
            let wait = Duration::from_nanos(due.saturating_sub(now_unix_ns()));
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let Some(i) = plan.handle_timeout(now_unix_ns(), random()) else {
                continue;
            };
            for &protocol in &self.schedule.protocols {
                tokio::select! {
                    _ = stop.changed() => return,
                    results = self.test(peers[i], protocol) => {
                        let mut rec = lock(&self.recorder);
                        results.into_iter().for_each(|r| rec.handle_bench(r));
                    }
                }
            }
        }
        let _ = stop.changed().await;
    }

    /// One test of `peer` over `protocol`, tried again while an agent is busy.
    async fn test(&self, peer: &PeerConfig, protocol: BenchProtocol) -> Vec<BenchResult> {
        let spec = spec(&self.schedule, protocol);
        let started = now_unix_ns();
        let mut outcome = BenchOutcome::Refused;
        for attempt in 1..=BUSY_TRIES {
            let tester = Tester {
                peer: Some(peer.identity.id.clone()),
                certificate: None,
            };
            if let Some(guard) = self.slot.try_begin(tester) {
                let ran = async {
                    let (endpoint, conn) =
                        connect_control(&self.identity, self.ca.clone(), peer).await?;
                    let report = super::run(
                        conn,
                        peer.address.ip(),
                        spec.clone(),
                        &self.identity,
                        |_| {},
                    )
                    .await;
                    endpoint.wait_idle().await;
                    report
                }
                .await;
                drop(guard);
                match ran {
                    Ok(report) => return results(&report, &peer.identity, started),
                    Err(BenchError::Refused(reason)) if reason == BUSY => {}
                    Err(e) => {
                        tracing::warn!(peer = %peer.identity.id, ?protocol, error = %e, "scheduled throughput test");
                        outcome = match e {
                            BenchError::Refused(_) => BenchOutcome::Refused,
                            _ => BenchOutcome::Failed,
                        };
                        break;
                    }
                }
            }
            if attempt < BUSY_TRIES {
                let wait = Duration::from_millis(2_000 + (8_000.0 * random()) as u64);
                tokio::time::sleep(wait).await;
            }
        }
        if outcome == BenchOutcome::Refused {
            tracing::info!(peer = %peer.identity.id, ?protocol, "scheduled throughput test refused");
        }
        flows(self.schedule.direction)
            .into_iter()
            .map(|flow| BenchResult {
                peer: peer.identity.clone(),
                protocol: transport(protocol),
                flow,
                outcome,
                started_unix_ns: started,
                counts: BenchCounts::default(),
                interval_min_bytes_per_second: 0,
            })
            .collect()
    }
}

/// The test a schedule asks for over `protocol`.
pub fn spec(s: &BenchSchedule, protocol: BenchProtocol) -> TestSpec {
    TestSpec {
        protocol,
        direction: s.direction,
        duration_ms: s.duration.as_millis() as u64,
        omit_ms: s.omit.as_millis() as u64,
        interval_ms: 1_000,
        streams: s.streams,
        write_bytes: if protocol == BenchProtocol::Udp {
            1372
        } else {
            131_072
        },
        bitrate_bps: match protocol {
            BenchProtocol::Udp => Some(s.udp_rate_bps),
            BenchProtocol::Tcp | BenchProtocol::Quic => s.max_rate_bps,
        },
        congestion: None,
        window_bytes: None,
    }
}

/// A finished test's directions as snapshot records.
pub fn results(report: &super::BenchReport, peer: &Identity, started: u64) -> Vec<BenchResult> {
    report
        .flows()
        .iter()
        .map(|f| {
            let sent = totals(f.sender.iter().copied());
            let got = totals(f.receiver.iter().copied());
            // The receiver's k-th interval summed over its streams (each stream samples at
            // its own boundaries, a few ms apart), over the longest of them.
            let n = f
                .receiver
                .iter()
                .map(|s| s.intervals.len())
                .max()
                .unwrap_or(0);
            let slowest = (0..n)
                .filter_map(|k| {
                    let ivs: Vec<_> = f
                        .receiver
                        .iter()
                        .filter_map(|s| s.intervals.get(k))
                        .filter(|i| !i.omitted && i.end_ms > i.start_ms)
                        .collect();
                    let ms = ivs.iter().map(|i| i.end_ms - i.start_ms).max()?;
                    Some(ivs.iter().map(|i| i.bytes).sum::<u64>() * 1_000 / ms)
                })
                .min()
                .unwrap_or(0);
            BenchResult {
                peer: peer.clone(),
                protocol: transport(report.spec.protocol),
                flow: if f.forward {
                    Flow::Forward
                } else {
                    Flow::Reverse
                },
                outcome: BenchOutcome::Ok,
                started_unix_ns: started,
                counts: BenchCounts {
                    sender_bytes: sent.bytes,
                    sender_ns: (sent.seconds * 1e9) as u64,
                    receiver_bytes: got.bytes,
                    receiver_ns: (got.seconds * 1e9) as u64,
                    retransmits: sent.retransmits,
                    datagrams: got.packets,
                    datagrams_lost: got.lost,
                },
                interval_min_bytes_per_second: slowest,
            }
        })
        .collect()
}

fn flows(direction: Direction) -> Vec<Flow> {
    match direction {
        Direction::Forward => vec![Flow::Forward],
        Direction::Reverse => vec![Flow::Reverse],
        Direction::Bidirectional => vec![Flow::Forward, Flow::Reverse],
    }
}

fn transport(p: BenchProtocol) -> Protocol {
    match p {
        BenchProtocol::Tcp => Protocol::Tcp,
        BenchProtocol::Udp => Protocol::Udp,
        BenchProtocol::Quic => Protocol::Quic,
    }
}

/// A random number in [0, 1).
fn random() -> f64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::throughput::Direction;
    use std::time::Duration;

    #[test]
    fn a_schedule_caps_tcp_and_quic_and_paces_udp() {
        let s = BenchSchedule {
            every: Duration::from_secs(3600),
            duration: Duration::from_secs(10),
            omit: Duration::from_secs(1),
            protocols: vec![BenchProtocol::Tcp],
            direction: Direction::Forward,
            streams: 2,
            udp_rate_bps: 100_000_000,
            max_rate_bps: Some(500_000_000),
            peers: Vec::new(),
        };
        let rate = |p| spec(&s, p).bitrate_bps;
        assert_eq!(rate(BenchProtocol::Udp), Some(100_000_000));
        assert_eq!(rate(BenchProtocol::Tcp), Some(500_000_000));
        assert_eq!(rate(BenchProtocol::Quic), Some(500_000_000));
        for p in [BenchProtocol::Tcp, BenchProtocol::Udp, BenchProtocol::Quic] {
            assert_eq!(spec(&s, p).check(), Ok(()), "{p:?}");
        }
        let uncapped = BenchSchedule {
            max_rate_bps: None,
            ..s
        };
        assert_eq!(spec(&uncapped, BenchProtocol::Tcp).bitrate_bps, None);
    }
}

//! Scheduled throughput tests (`[bench.schedule]`): the agent tests each listed peer once a
//! period (jittered; see [`Schedule`]), one protocol after another, never two tests at once
//! (the agent's [`TestSlot`] is shared with the answering side). Each test's directions go to
//! the recorder as snapshot records, so they reach the collector with the next snapshot;
//! while a test runs the recorder files the peer's probe outcomes under `load="bench"`.
//!
//! A test refused because either agent is busy ([`RefuseCode::Busy`](crate::wire::throughput::RefuseCode),
//! or this agent's own slot taken) is tried again after a random 2 to 10 s, up to
//! [`BUSY_TRIES`] times, then counted as refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use xcbench_snapshot::{ThroughputOutcome, ThroughputResult};

use super::slot::{TestSlot, Tester};
use super::{Client, ThroughputError};
use crate::config::ThroughputSchedule;
use crate::net::clock::{now_mono_ns, now_unix_ns};
use crate::net::lock;
use crate::probe::throughput::report::not_run;
use crate::probe::throughput::Schedule;
use crate::record::Recorder;
use crate::wire::throughput::Protocol;

/// Attempts of a test that meets a busy agent.
pub const BUSY_TRIES: u32 = 5;

/// What the scheduler needs from the agent.
pub struct Scheduler {
    pub schedule: ThroughputSchedule,
    /// One client per scheduled peer.
    pub clients: Vec<Client>,
    pub slot: Arc<TestSlot>,
    pub recorder: Arc<Mutex<Recorder>>,
}

impl Scheduler {
    /// Runs rounds until `stop` changes; a test under way when it does is abandoned.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let every_ns = self.schedule.every.as_nanos() as u64;
        let mut plan = Schedule::new(self.clients.len(), every_ns, now_mono_ns(), random);
        while let Some(due) = plan.poll_timeout() {
            let wait = Duration::from_nanos(due.saturating_sub(now_mono_ns()));
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let Some(i) = plan.handle_timeout(now_mono_ns(), random()) else {
                continue;
            };
            for &protocol in &self.schedule.protocols {
                tokio::select! {
                    _ = stop.changed() => return,
                    results = self.test(&self.clients[i], protocol) => {
                        let mut rec = lock(&self.recorder);
                        results.into_iter().for_each(|r| rec.handle_throughput(r));
                    }
                }
            }
        }
        let _ = stop.changed().await;
    }

    /// One test of `client`'s peer over `protocol`, tried again while an agent is busy.
    async fn test(&self, client: &Client, protocol: Protocol) -> Vec<ThroughputResult> {
        let peer = &client.peer().identity;
        // Checked when the configuration was parsed.
        let Ok(test) = self.schedule.test(protocol) else {
            return Vec::new();
        };
        let started = now_unix_ns();
        let mut outcome = ThroughputOutcome::Refused;
        for attempt in 1..=BUSY_TRIES {
            let tester = Tester {
                peer: Some(peer.id.clone()),
                certificate: None,
            };
            if let Some(guard) = self.slot.try_begin(tester) {
                let ran = client.run(test.clone(), |_| {}).await;
                drop(guard);
                match ran {
                    Ok(report) => return report.results(peer, started),
                    Err(e) if e.is_busy() => {}
                    Err(e) => {
                        tracing::warn!(peer = %peer.id, %protocol, error = %crate::net::chain(&e), "scheduled throughput test");
                        outcome = match e {
                            ThroughputError::Refused { .. } => ThroughputOutcome::Refused,
                            _ => ThroughputOutcome::Failed,
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
        if outcome == ThroughputOutcome::Refused {
            tracing::info!(peer = %peer.id, %protocol, "scheduled throughput test refused");
        }
        not_run(peer, &test, outcome, started)
    }
}

/// A random number in [0, 1).
fn random() -> f64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

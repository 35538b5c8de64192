//! Scheduled throughput tests as the store keeps them, per direction between two agents
//! ([`ThroughputKey`]): tests by outcome, what both ends counted summed over the tests, and
//! the last test's figures.

use xcbench_snapshot::{
    Flow, Identity, Protocol, ThroughputCounts, ThroughputFlow, ThroughputOutcome, ThroughputResult,
};

/// A direction of scheduled throughput tests between two agents.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ThroughputKey {
    /// The agent that ran the tests.
    pub source: Identity,
    pub peer: Identity,
    pub protocol: Protocol,
    pub flow: Flow,
}

impl ThroughputKey {
    /// The key `source` reports `test` under.
    pub fn of(source: &Identity, test: &ThroughputResult) -> ThroughputKey {
        ThroughputKey {
            source: source.clone(),
            peer: test.peer.clone(),
            protocol: test.protocol,
            flow: test.flow,
        }
    }

    /// The key of a direction `source`'s schedule tests (declared before any test ran).
    pub fn scheduled(source: &Identity, f: &ThroughputFlow) -> ThroughputKey {
        ThroughputKey {
            source: source.clone(),
            peer: f.peer.clone(),
            protocol: f.protocol,
            flow: f.flow,
        }
    }
}

/// Scheduled throughput tests of one [`ThroughputKey`]: totals since the collector started
/// and the last test's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThroughputState {
    pub tests: TestOutcomes,
    /// Summed over the tests.
    pub counts: ThroughputCounts,
    /// `None` until a test runs to the end with data at the receiver.
    pub last: Option<LastTest>,
}

/// Scheduled throughput tests counted by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestOutcomes {
    pub ok: u64,
    pub refused: u64,
    pub failed: u64,
}

impl TestOutcomes {
    /// Counts one test that ended with `outcome`.
    pub fn add(&mut self, outcome: ThroughputOutcome) {
        match outcome {
            ThroughputOutcome::Ok => self.ok += 1,
            ThroughputOutcome::Refused => self.refused += 1,
            ThroughputOutcome::Failed => self.failed += 1,
        }
    }

    /// Tests that ended with `outcome`.
    pub fn get(&self, outcome: ThroughputOutcome) -> u64 {
        match outcome {
            ThroughputOutcome::Ok => self.ok,
            ThroughputOutcome::Refused => self.refused,
            ThroughputOutcome::Failed => self.failed,
        }
    }
}

/// The figures of the last scheduled test that ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastTest {
    /// When it started (the testing agent's clock, Unix time).
    pub started_unix_ns: u64,
    /// Bytes delivered to the receiving application over its counted time, per second.
    pub goodput_bytes_per_second: f64,
    /// Its slowest counted interval at the receiver.
    pub interval_min_bytes_per_second: u64,
}

impl ThroughputState {
    /// Adds one test's result.
    pub(super) fn add(&mut self, t: &ThroughputResult) {
        self.tests.add(t.outcome);
        self.counts.add(&t.counts);
        // The last test is the one that started last, in whatever order results arrive.
        let newer = self
            .last
            .is_none_or(|last| t.started_unix_ns >= last.started_unix_ns);
        let got = &t.counts;
        if t.outcome == ThroughputOutcome::Ok && got.receiver_ns > 0 && newer {
            self.last = Some(LastTest {
                started_unix_ns: t.started_unix_ns,
                goodput_bytes_per_second: got.receiver_bytes as f64 * 1e9 / got.receiver_ns as f64,
                interval_min_bytes_per_second: t.interval_min_bytes_per_second,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::identity;
    use xcbench_snapshot::Cloud;

    const S: u64 = 1_000_000_000;

    fn test(outcome: ThroughputOutcome, started_s: u64, receiver_bytes: u64) -> ThroughputResult {
        ThroughputResult {
            peer: identity("oci-ashburn-db1", Cloud::Oci, "us-ashburn-1"),
            protocol: Protocol::Tcp,
            flow: Flow::Forward,
            outcome,
            started_unix_ns: started_s * S,
            counts: ThroughputCounts {
                receiver_bytes,
                receiver_ns: 10 * S,
                ..ThroughputCounts::default()
            },
            interval_min_bytes_per_second: receiver_bytes / 20,
        }
    }

    #[test]
    fn tests_counted_by_outcome_and_the_latest_run_kept() {
        let mut state = ThroughputState::default();
        for t in [
            test(ThroughputOutcome::Ok, 200, 2_000_000_000),
            test(ThroughputOutcome::Ok, 100, 1_000_000_000),
            test(ThroughputOutcome::Refused, 300, 0),
            test(ThroughputOutcome::Failed, 400, 0),
        ] {
            state.add(&t);
        }
        assert_eq!(
            state.tests,
            TestOutcomes {
                ok: 2,
                refused: 1,
                failed: 1
            }
        );
        assert_eq!(state.counts.receiver_bytes, 3_000_000_000);
        assert_eq!(
            state.last,
            Some(LastTest {
                started_unix_ns: 200 * S,
                goodput_bytes_per_second: 200_000_000.0,
                interval_min_bytes_per_second: 100_000_000,
            }),
            "the Ok test that started last; refused and failed tests have no figures"
        );
    }
}

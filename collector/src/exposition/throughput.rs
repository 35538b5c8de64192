//! Scheduled throughput test families (public names `xcbench_bench_*`), one set per test
//! direction: tests by outcome, bytes and counted time per side, retransmissions and
//! datagrams summed over the tests, and the last test's figures.

use prometheus::proto::LabelPair;
use xcbench_snapshot::ThroughputOutcome;

use super::catalog;
use super::{pair_labels, seconds, with, Families};
use crate::store::{Store, ThroughputKey};

/// Every test direction's families.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    for (key, t) in store.throughput() {
        let base = throughput_labels(key);
        for &outcome in ThroughputOutcome::ALL {
            f.counter(
                &catalog::THROUGHPUT_TESTS_TOTAL,
                with(base.clone(), &[("result", outcome.as_str())]),
                t.tests.get(outcome),
            );
        }
        let c = &t.counts;
        for (side, bytes, ns) in [
            ("sender", c.sender_bytes, c.sender_ns),
            ("receiver", c.receiver_bytes, c.receiver_ns),
        ] {
            let labels = with(base.clone(), &[("side", side)]);
            f.counter(&catalog::THROUGHPUT_BYTES_TOTAL, labels.clone(), bytes);
            f.counter_f64(&catalog::THROUGHPUT_SECONDS_TOTAL, labels, seconds(ns));
        }
        for (def, value) in [
            (&catalog::THROUGHPUT_RETRANSMITS_TOTAL, c.retransmits),
            (&catalog::THROUGHPUT_DATAGRAMS_TOTAL, c.datagrams),
            (&catalog::THROUGHPUT_DATAGRAMS_LOST_TOTAL, c.datagrams_lost),
        ] {
            f.counter(def, base.clone(), value);
        }
        if let Some(last) = t.last {
            for (def, value) in [
                (
                    &catalog::THROUGHPUT_GOODPUT_BYTES_PER_SECOND,
                    last.goodput_bytes_per_second,
                ),
                (
                    &catalog::THROUGHPUT_INTERVAL_GOODPUT_MIN_BYTES_PER_SECOND,
                    last.interval_min_bytes_per_second as f64,
                ),
                (
                    &catalog::THROUGHPUT_LAST_TEST_TIMESTAMP_SECONDS,
                    seconds(last.started_unix_ns),
                ),
            ] {
                f.gauge(def, base.clone(), value);
            }
        }
    }
}

/// The pair and `direction` (forward: the testing agent sent).
fn throughput_labels(k: &ThroughputKey) -> Vec<LabelPair> {
    with(
        pair_labels(&k.source, &k.peer, k.protocol),
        &[("direction", k.flow.as_str())],
    )
}

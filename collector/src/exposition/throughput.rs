//! Scheduled throughput test families (public names `xcbench_bench_*`), one set per test
//! direction: tests by outcome, bytes and counted time per side, retransmissions and
//! datagrams summed over the tests, and the last test's figures.

use xcbench_snapshot::ThroughputOutcome;

use super::catalog;
use super::{pair_labels, seconds, Families, Labels};
use crate::store::{Store, ThroughputKey, ThroughputState};

/// Every test direction's families.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    for (key, t) in store.throughput() {
        push_test(f, key, t);
    }
}

/// One test direction's families.
pub(super) fn push_test(f: &mut Families, key: &ThroughputKey, t: &ThroughputState) {
    let pairs = throughput_labels(key);
    let base = Labels::new(&pairs);
    for &outcome in ThroughputOutcome::ALL {
        f.counter(
            &catalog::THROUGHPUT_TESTS_TOTAL,
            base.and(&[("result", outcome.as_str())]),
            t.tests.get(outcome),
        );
    }
    let c = &t.counts;
    for (side, bytes, ns) in [
        ("sender", c.sender_bytes, c.sender_ns),
        ("receiver", c.receiver_bytes, c.receiver_ns),
    ] {
        let side = [("side", side)];
        let labels = base.and(&side);
        f.counter(&catalog::THROUGHPUT_BYTES_TOTAL, labels, bytes);
        f.counter_f64(&catalog::THROUGHPUT_SECONDS_TOTAL, labels, seconds(ns));
    }
    for (def, value) in [
        (&catalog::THROUGHPUT_RETRANSMITS_TOTAL, c.retransmits),
        (&catalog::THROUGHPUT_DATAGRAMS_TOTAL, c.datagrams),
        (&catalog::THROUGHPUT_DATAGRAMS_LOST_TOTAL, c.datagrams_lost),
    ] {
        f.counter(def, base, value);
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
            f.gauge(def, base, value);
        }
    }
}

/// The pair and `direction` (forward: the testing agent sent).
fn throughput_labels(k: &ThroughputKey) -> Vec<(&str, &str)> {
    let mut v = pair_labels(&k.source, &k.peer, k.protocol);
    v.push(("direction", k.flow.as_str()));
    v
}

//! Scheduled throughput test families (`xcbench_bench_*`): totals per direction and the
//! last test's figures.

use prometheus::proto::LabelPair;
use xcbench_snapshot::BenchOutcome;

use super::{pair_labels, seconds, with, Families};
use crate::store::{Store, ThroughputKey};

fn bench_labels(k: &ThroughputKey) -> Vec<LabelPair> {
    with(
        pair_labels(&k.source, &k.peer, k.protocol),
        &[("direction", k.flow.as_str())],
    )
}

/// Scheduled throughput tests, per direction: totals and the last test's figures.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    for (key, b) in store.throughput() {
        let base = bench_labels(key);
        for &outcome in BenchOutcome::ALL {
            let n = b.tests.get(outcome);
            f.counter(
                "xcbench_bench_tests_total",
                "Scheduled throughput tests, by outcome (refused: the peer or this agent was busy or declined; failed: no connection or the peer was lost).",
                with(base.clone(), &[("result", outcome.as_str())]),
                n,
            );
        }
        for (side, bytes, ns) in [
            ("sender", b.counts.sender_bytes, b.counts.sender_ns),
            ("receiver", b.counts.receiver_bytes, b.counts.receiver_ns),
        ] {
            let labels = with(base.clone(), &[("side", side)]);
            f.counter(
                "xcbench_bench_bytes_total",
                "Bytes of scheduled tests over their counted intervals: sender = accepted by the sending kernel or QUIC stack, receiver = delivered to the receiving application. Goodput = rate(bytes) / rate(seconds).",
                labels.clone(),
                bytes,
            );
            f.counter_f64(
                "xcbench_bench_seconds_total",
                "Counted time of scheduled tests (after the omitted warm-up), by each side's clock.",
                labels,
                seconds(ns),
            );
        }
        f.counter(
            "xcbench_bench_retransmits_total",
            "TCP segments retransmitted (TCP_INFO), or QUIC packets quinn declared lost, by senders of scheduled tests.",
            base.clone(),
            b.counts.retransmits,
        );
        f.counter(
            "xcbench_bench_datagrams_total",
            "UDP datagrams the receivers of scheduled tests counted.",
            base.clone(),
            b.counts.datagrams,
        );
        f.counter(
            "xcbench_bench_datagrams_lost_total",
            "UDP datagrams missing from the sequence at the receivers of scheduled tests.",
            base.clone(),
            b.counts.datagrams_lost,
        );
        if let Some(last) = b.last {
            f.gauge(
                "xcbench_bench_goodput_bytes_per_second",
                "The last scheduled test's goodput: bytes delivered to the receiving application over its counted time.",
                base.clone(),
                last.goodput_bytes_per_second,
            );
            f.gauge(
                "xcbench_bench_interval_goodput_min_bytes_per_second",
                "The last scheduled test's slowest counted interval at the receiver.",
                base.clone(),
                last.interval_min_bytes_per_second as f64,
            );
            f.gauge(
                "xcbench_bench_last_test_timestamp_seconds",
                "When the last scheduled test that ran started (the testing agent's clock, Unix time).",
                base,
                seconds(last.started_unix_ns),
            );
        }
    }
}

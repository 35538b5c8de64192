//! The collector's own families: snapshots received by result, series held (against the
//! `max_series` limit), and with `[remote_write]` what it sent, retried, dropped and holds.

use super::catalog;
use super::{Families, Labels};
use crate::store::Store;

/// The collector's own families.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    let ingest = &store.ingest;
    for (result, value) in [
        ("accepted", ingest.accepted),
        ("duplicate", ingest.duplicate),
        ("rejected", ingest.rejected),
        ("forbidden", ingest.forbidden),
    ] {
        f.counter(
            &catalog::COLLECTOR_SNAPSHOTS_TOTAL,
            Labels::new(&[("result", result)]),
            value,
        );
    }
    f.gauge(
        &catalog::COLLECTOR_SERIES,
        Labels::new(&[]),
        store.series_count() as f64,
    );
    let Some(rw) = &store.remote_write else {
        return;
    };
    let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let none = Labels::new(&[]);
    f.counter(
        &catalog::REMOTE_WRITE_SENT_SAMPLES_TOTAL,
        none,
        get(&rw.sent_samples),
    );
    f.counter(
        &catalog::REMOTE_WRITE_SENT_BYTES_TOTAL,
        none,
        get(&rw.sent_bytes),
    );
    f.counter(&catalog::REMOTE_WRITE_RETRIES_TOTAL, none, get(&rw.retries));
    for (reason, value) in [
        ("rejected", get(&rw.rejected_samples)),
        ("queue_full", get(&rw.queue_full_samples)),
        ("not_queued", get(&rw.not_queued_samples)),
    ] {
        f.counter(
            &catalog::REMOTE_WRITE_DROPPED_SAMPLES_TOTAL,
            Labels::new(&[("reason", reason)]),
            value,
        );
    }
    f.gauge(
        &catalog::REMOTE_WRITE_QUEUE_SAMPLES,
        none,
        get(&rw.queue_samples) as f64,
    );
    f.gauge(
        &catalog::REMOTE_WRITE_QUEUE_BYTES,
        none,
        get(&rw.queue_bytes) as f64,
    );
    f.gauge(
        &catalog::REMOTE_WRITE_LAST_SENT_TIMESTAMP_SECONDS,
        none,
        super::seconds(get(&rw.last_sent_ns)),
    );
}

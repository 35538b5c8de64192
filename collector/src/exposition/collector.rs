//! The collector's own families: snapshots ingested by result, and series held.

use super::{label, Families};
use crate::store::Store;

/// The collector's own families.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    for (result, value) in [
        ("accepted", store.ingest.accepted),
        ("duplicate", store.ingest.duplicate),
        ("rejected", store.ingest.rejected),
    ] {
        f.counter(
            "xcbench_collector_snapshots_total",
            "Snapshots received, by result (duplicate = already taken, acknowledged, not counted again).",
            vec![label("result", result)],
            value,
        );
    }
    f.gauge(
        "xcbench_collector_series",
        "Series held by the collector.",
        vec![],
        store.series_count() as f64,
    );
}

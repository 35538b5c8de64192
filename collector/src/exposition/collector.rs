//! The collector's own families: snapshots received by result, and series held (against the
//! `max_series` limit).

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
}

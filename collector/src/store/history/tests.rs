//! The history's records, tiers and folds: round trips, what decoding refuses, merges by
//! addition, tiers handing slots on.

use super::slot::{SLOT_RUNS, SLOT_VALUES};
use super::*;
use proptest::prelude::*;
use xcbench_snapshot::varint::put as put_varint;
use xcbench_snapshot::Counters;

fn record(seed: u64) -> SlotRecord {
    let mut r = SlotRecord {
        counters: Counters {
            sent: 100 + seed,
            received: 97,
            lost: 3,
            clock_steps: seed % 2,
            ..Counters::default()
        },
        clock_error_max_ns: (!seed.is_multiple_of(3)).then_some(seed * 1_000),
        measured: Some((seed * 10, seed * 10 + 5)),
        ..SlotRecord::default()
    };
    let buckets: Vec<(u64, u64)> = (0..20)
        .map(|i| (1_000_000 + i * 7_000 + seed, i + 1))
        .collect();
    r.metrics
        .insert(Metric::Rtt, Sparse::from_buckets(&buckets, 123_456 + seed));
    r.metrics.insert(
        Metric::IpdvReverse,
        Sparse::from_buckets(&[(4_000, 2)], 7_999),
    );
    r
}

#[test]
fn records_round_trip_and_merge_by_addition() {
    let (a, b) = (record(1), record(2));
    for r in [&a, &b, &SlotRecord::default()] {
        let mut buf = Vec::new();
        r.encode(&mut buf);
        assert_eq!(&SlotRecord::decode(&buf).unwrap(), r);
    }
    let mut sum = a.clone();
    sum.add(&b);
    assert_eq!(sum.counters.sent, 203);
    assert_eq!(sum.metrics[&Metric::Rtt].count(), 420);
    assert_eq!(sum.clock_error_max_ns, Some(2_000));
    let mut buf = Vec::new();
    a.encode(&mut buf);
    // A 20-bucket metric, its counters and a second metric fit in well under 100 bytes.
    assert!(buf.len() < 100, "{} bytes", buf.len());
    assert_eq!(
        SlotRecord::decode(&buf[..buf.len() - 1]),
        Err(SlotCodecError::Truncated(buf.len() - 1))
    );
    buf.push(0);
    assert_eq!(SlotRecord::decode(&buf), Err(SlotCodecError::Trailing(1)));
    assert_eq!(SlotRecord::decode(&[3]), Err(SlotCodecError::Version(3)));
    // Values that are not a bucket's highest are kept as they are (version 1).
    assert_eq!(buf[0], SLOT_VALUES);
}

/// Agents' histograms (every value a bucket's highest) are written as runs of bucket
/// positions, decode to the same buckets, and take a byte or two per bucket where the
/// values are dense; the version-1 form of the same record decodes too (files written
/// before version 2).
#[test]
fn histograms_from_agents_are_written_as_runs() {
    let mut h = xcbench_snapshot::LatencyHistogram::new();
    let mut x = 7u64;
    for _ in 0..600 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let tail = if x.is_multiple_of(100) {
            x % 3_000_000
        } else {
            0
        };
        h.record_ns(1_450_000 + x % 100_000 + tail);
    }
    let buckets: Vec<(u64, u64)> = h.buckets().collect();
    let mut r = SlotRecord::default();
    r.metrics
        .insert(Metric::Rtt, Sparse::from_buckets(&buckets, 999));
    let mut runs = Vec::new();
    r.encode(&mut runs);
    assert_eq!(runs[0], SLOT_RUNS);
    assert_eq!(SlotRecord::decode(&runs).unwrap(), r);
    // The same record in version 1: the header (no counters, all being zero; no clock
    // error; one metric: RTT, its sum and bucket count), then values.
    let mut header = vec![0];
    header.extend([0, 1, 0]);
    put_varint(&mut header, 999);
    put_varint(&mut header, buckets.len() as u64);
    assert_eq!(runs[1..=header.len()], header[..]);
    let mut v1 = vec![SLOT_VALUES];
    v1.extend_from_slice(&header);
    let mut last = 0;
    for (v, c) in &buckets {
        put_varint(&mut v1, v - last);
        put_varint(&mut v1, *c);
        last = *v;
    }
    assert_eq!(SlotRecord::decode(&v1).unwrap(), r);
    let per_bucket = |len: usize| (len - 1 - header.len()) as f64 / buckets.len() as f64;
    assert!(
        per_bucket(runs.len()) < 1.6 && per_bucket(v1.len()) > 2.5,
        "{} buckets: {} bytes as runs, {} as values",
        buckets.len(),
        runs.len(),
        v1.len()
    );
    // A run past the layout's end, or longer than the buckets left, is refused.
    let one_bucket = |gap: u64, len: u64| {
        let mut b = vec![SLOT_RUNS, 18];
        b.extend([0u8; 18]);
        b.extend([0, 1, 0, 0, 1]);
        put_varint(&mut b, gap);
        put_varint(&mut b, len << 1);
        b.extend([2, 0, 0]);
        SlotRecord::decode(&b)
    };
    assert_eq!(
        one_bucket(1 << 40, 1),
        Err(SlotCodecError::Position(1 << 40))
    );
    assert_eq!(one_bucket(0, 2), Err(SlotCodecError::Run(2)));
    assert_eq!(one_bucket(0, 0), Err(SlotCodecError::Run(0)));
    assert!(one_bucket(2000, 1).is_ok());
}

proptest! {
    /// Long runs of single samples (a byte or two for the whole run) round-trip, with the
    /// measured span after them.
    #[test]
    fn runs_of_single_samples_round_trip(start in 0u64..17_000, len in 1u64..1_000) {
        use xcbench_snapshot::histogram::bucket_value;
        let buckets: Vec<(u64, u64)> = (start..start + len)
            .filter_map(|p| Some((bucket_value(p)?, 1)))
            .collect();
        let mut r = SlotRecord { measured: Some((1_700_000_000_000_000_000, 1_700_000_010_000_000_000)), ..SlotRecord::default() };
        r.metrics.insert(Metric::Rtt, Sparse::from_buckets(&buckets, 5));
        let mut buf = Vec::new();
        r.encode(&mut buf);
        prop_assert_eq!(SlotRecord::decode(&buf).unwrap(), r);
    }

    /// Any agent histogram round-trips through the run form, whatever its counts.
    #[test]
    fn runs_round_trip(
        buckets in proptest::collection::btree_map(0u64..18_000, 1u64..(1 << 40), 0..300),
        sum in any::<u64>(),
    ) {
        use xcbench_snapshot::histogram::bucket_value;
        let buckets: Vec<(u64, u64)> = buckets
            .into_iter()
            .filter_map(|(p, c)| Some((bucket_value(p)?, c)))
            .collect();
        let mut r = SlotRecord::default();
        r.metrics.insert(Metric::OneWayForward, Sparse::from_buckets(&buckets, sum));
        let mut buf = Vec::new();
        r.encode(&mut buf);
        prop_assert_eq!(buf[0], SLOT_RUNS);
        prop_assert_eq!(SlotRecord::decode(&buf).unwrap(), r);
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = SlotRecord::decode(&bytes);
    }
}

#[test]
fn tiers_hand_slots_on_and_refuse_bad_layouts() {
    let tiers = Tiers::default();
    let h = 3600 * S;
    let start = 1_000 * h;
    assert_eq!(tiers.slot_start(0, start + 15 * S), start + 10 * S);
    assert_eq!(tiers.fate(0, start, start + 6 * h), Fate::Stay);
    assert_eq!(
        tiers.fate(0, start + 50 * S, start + 7 * h),
        Fate::Merge {
            tier: 1,
            start_ns: start
        }
    );
    assert_eq!(tiers.fate(2, start, start + 91 * 24 * h), Fate::Expire);
    assert!(tiers.cutoff(0, start + 7 * h) > start + 50 * S);
    let t = |slot: u64, keep: u64| Tier {
        slot_ns: slot * S,
        keep_ns: keep * S,
    };
    assert_eq!(Tiers::new(vec![]), Err(TierError::Count));
    assert_eq!(Tiers::new(vec![t(10, 5)]), Err(TierError::Slot(0)));
    assert_eq!(
        Tiers::new(vec![t(10, 100), t(15, 200)]),
        Err(TierError::Coarser(1))
    );
    assert_eq!(
        Tiers::new(vec![t(10, 100), t(20, 50)]),
        Err(TierError::Coarser(1))
    );
    assert!(Tiers::new(vec![t(10, 100), t(20, 200)]).is_ok());
}

//! The sparse histogram the store keeps: (bucket's highest equivalent value, count) for the
//! non-empty HdrHistogram buckets only, with its exact sum, and its merge.
//!
//! Adding two of them is adding counts per bucket, exactly what HdrHistogram addition does,
//! so merging stays lossless while an interconnect series with a few hundred distinct buckets
//! costs kilobytes instead of a dense 147 KB array. Subtraction undoes an earlier addition,
//! which is how samples leave a window.

use std::collections::BTreeMap;

/// Sparse histogram: highest equivalent value of an HdrHistogram bucket -> count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sparse {
    buckets: BTreeMap<u64, u64>,
    count: u64,
    sum_ns: u64,
}

// The `#[inline]`s: ingest calls these per metric from the store's other files; without
// them ingest measured about 15% slower than when everything sat in one file.
impl Sparse {
    /// A histogram of decoded buckets (highest equivalent value, count) and their exact sum.
    #[inline]
    pub fn from_buckets(buckets: &[(u64, u64)], sum_ns: u64) -> Sparse {
        let mut s = Sparse::default();
        for &(value, count) in buckets {
            let b = s.buckets.entry(value).or_insert(0);
            *b = b.saturating_add(count);
            s.count = s.count.saturating_add(count);
        }
        s.sum_ns = sum_ns;
        s
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The non-empty buckets, ascending: (highest equivalent value, count).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets.iter().map(|(v, c)| (*v, *c))
    }

    /// The same samples as an HdrHistogram of the snapshot's layout (for its V2 form).
    pub fn to_histogram(&self) -> xcbench_snapshot::LatencyHistogram {
        let mut h = xcbench_snapshot::LatencyHistogram::new();
        for (value, count) in self.buckets() {
            h.record_n_ns(value, count);
        }
        h
    }

    /// Samples certainly at or below `threshold_ns`, and samples whose HdrHistogram bucket
    /// straddles it (their exact values are not kept: within 0.1% or 512 ns of it).
    /// `lowest` maps a bucket's highest equivalent value to its lowest.
    pub fn within(&self, threshold_ns: u64, lowest: impl Fn(u64) -> u64) -> (u64, u64) {
        let (mut certain, mut straddling) = (0, 0);
        for (value, count) in self.buckets() {
            if value <= threshold_ns {
                certain += count;
            } else if lowest(value) <= threshold_ns {
                straddling += count;
            } else {
                break;
            }
        }
        (certain, straddling)
    }

    /// Exact sum of the samples (from the agents' exact sums, not bucket midpoints).
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// The value at quantile `q` the way HdrHistogram reports it (the bucket's highest
    /// equivalent value); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (value, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(*value);
            }
        }
        self.buckets.keys().next_back().copied()
    }

    /// Merges `other` in (HdrHistogram addition).
    #[inline]
    pub fn add(&mut self, other: &Sparse) {
        for (value, count) in &other.buckets {
            *self.buckets.entry(*value).or_insert(0) += count;
        }
        self.count += other.count;
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }

    /// Takes out `other`, which must have been added before; emptied buckets are dropped so
    /// the map stays as small as what it still holds.
    #[inline]
    pub fn subtract(&mut self, other: &Sparse) {
        for (value, count) in &other.buckets {
            if let Some(c) = self.buckets.get_mut(value) {
                *c = c.saturating_sub(*count);
                if *c == 0 {
                    self.buckets.remove(value);
                }
            }
        }
        self.count = self.count.saturating_sub(other.count);
        self.sum_ns = self.sum_ns.saturating_sub(other.sum_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use xcbench_snapshot::LatencyHistogram;

    fn recorded(values: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        values.iter().for_each(|v| h.record_ns(*v));
        h
    }

    fn sparse(h: &LatencyHistogram, sum_ns: u64) -> Sparse {
        Sparse::from_buckets(&h.buckets().collect::<Vec<_>>(), sum_ns)
    }

    proptest! {
        /// Merging sparse histograms answers quantiles exactly as the merged HdrHistogram
        /// does, and subtracting a part leaves what the rest alone would be.
        #[test]
        fn merge_is_hdr_addition(
            a in prop::collection::vec(1_000u64..20_000_000_000, 0..200),
            b in prop::collection::vec(1_000u64..20_000_000_000, 1..200),
            q in 0.0f64..=1.0,
        ) {
            let (ha, hb) = (recorded(&a), recorded(&b));
            let mut merged = ha.clone();
            merged.add(&hb);
            let mut s = sparse(&ha, a.iter().sum());
            s.add(&sparse(&hb, b.iter().sum()));
            prop_assert_eq!(s.count(), merged.len());
            let hdr = merged.inner().highest_equivalent(merged.inner().value_at_quantile(q));
            prop_assert_eq!(s.quantile(q), Some(hdr));
            s.subtract(&sparse(&hb, b.iter().sum()));
            prop_assert_eq!(s, sparse(&ha, a.iter().sum()));
        }
    }

    #[test]
    fn empty_has_no_quantile() {
        assert_eq!(Sparse::default().quantile(0.5), None);
        let s = Sparse::from_buckets(&[(1_000_447, 2)], 2_000_000);
        assert_eq!(
            (s.quantile(0.0), s.quantile(1.0)),
            (Some(1_000_447), Some(1_000_447))
        );
    }
}

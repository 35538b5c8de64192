//! The sparse histogram the store keeps: (bucket's highest equivalent value, count) for the
//! non-empty HdrHistogram buckets only, with its exact sum, and its merge.
//!
//! Adding two of them is adding counts per bucket, exactly what HdrHistogram addition does,
//! so merging stays lossless while an interconnect series with a few hundred distinct buckets
//! costs kilobytes instead of a dense 147 KB array. Subtraction undoes an earlier addition,
//! which is how samples leave a window. Its compact binary form, runs of neighbouring
//! buckets ([`Sparse::put_runs`]), is the history slots' and the window slots'.

use std::collections::BTreeMap;

use xcbench_snapshot::histogram::{bucket_position, bucket_value};
use xcbench_snapshot::varint;

/// Why runs of buckets could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RunsError {
    #[error("a run of {0} buckets, expected 1 up to the buckets left")]
    Run(u64),
    #[error("bucket position {0} is past the histogram layout's last")]
    Position(u64),
    #[error("bucket position {0} has a count of 0 or past 2^63")]
    Count(u64),
    #[error("the bytes end inside a value")]
    Truncated,
}

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
        xcbench_snapshot::histogram::within_of(self.buckets(), threshold_ns, lowest)
    }

    /// Exact sum of the samples (from the agents' exact sums, not bucket midpoints).
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// The value at quantile `q` the way HdrHistogram reports it (the bucket's highest
    /// equivalent value); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        xcbench_snapshot::histogram::quantile_of(self.buckets(), self.count, q)
    }

    /// Whether every bucket is a layout bucket's highest equivalent value: what
    /// [`Sparse::put_runs`] can write (always, for histograms agents sent).
    pub fn runs_fit(&self) -> bool {
        self.buckets()
            .all(|(v, _)| bucket_value(bucket_position(v)) == Some(v))
    }

    /// The buckets (not their number or sum: the caller writes those) as runs of
    /// neighbouring HdrHistogram positions: per run the gap from the last run's end and
    /// `length << 1 | all counts are 1`, then (unless all are 1) each count as the zigzag
    /// difference from the one before; a byte or two a bucket. Only for [`Sparse::runs_fit`].
    pub fn put_runs(&self, buf: &mut Vec<u8>) {
        let positions: Vec<(u64, u64)> = self
            .buckets()
            .map(|(v, c)| (bucket_position(v), c))
            .collect();
        let mut next = 0;
        for run in positions.chunk_by(|a, b| b.0 == a.0 + 1) {
            varint::put(buf, run[0].0 - next);
            let ones = run.iter().all(|(_, c)| *c == 1);
            varint::put(buf, ((run.len() as u64) << 1) | u64::from(ones));
            if !ones {
                let mut last = 0u64;
                for (_, c) in run {
                    varint::put(buf, varint::zigzag(c.wrapping_sub(last) as i64));
                    last = *c;
                }
            }
            next = run[run.len() - 1].0 + 1;
        }
    }

    /// `n` buckets [`Sparse::put_runs`] wrote, each varint read by `varint`, with the sum
    /// `sum_ns`. A run longer than the buckets left, a position past the layout, or a count
    /// of 0 or past 2^63 is refused before anything is allocated for it.
    pub fn get_runs<E: From<RunsError>>(
        n: u64,
        sum_ns: u64,
        mut varint: impl FnMut() -> Result<u64, E>,
    ) -> Result<Sparse, E> {
        if n > bucket_position(u64::MAX) + 1 {
            return Err(RunsError::Run(n).into());
        }
        let mut buckets = Vec::with_capacity(n as usize);
        let mut next = 0u64;
        while (buckets.len() as u64) < n {
            let start = next.saturating_add(varint()?);
            let head = varint()?;
            let (len, ones) = (head >> 1, head & 1 == 1);
            if len == 0 || len > n - buckets.len() as u64 {
                return Err(RunsError::Run(len).into());
            }
            let mut last = 0u64;
            for p in start..start.saturating_add(len) {
                let value = bucket_value(p).ok_or(RunsError::Position(p))?;
                let count = match ones {
                    true => 1,
                    false => last.wrapping_add(varint::unzigzag(varint()?) as u64),
                };
                // Only non-empty buckets are written, and no count reaches 2^63.
                if count == 0 || count > i64::MAX as u64 {
                    return Err(RunsError::Count(p).into());
                }
                buckets.push((value, count));
                last = count;
            }
            next = start.saturating_add(len);
        }
        Ok(Sparse::from_buckets(&buckets, sum_ns))
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

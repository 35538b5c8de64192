//! What one series measured in one slot ([`SlotRecord`]: counters and sparse histograms, all
//! additive) and its binary form: version 2 writes a histogram as runs of neighbouring
//! HdrHistogram buckets, version 1 (still read) as value differences.

use std::collections::BTreeMap;

use xcbench_snapshot::varint::put as put_varint;
use xcbench_snapshot::{Counters, Metric, SeriesSnapshot};

use super::super::Sparse;

/// Everything one series measured in one slot. Every field adds up, so slots merge exactly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotRecord {
    pub counters: Counters,
    pub metrics: BTreeMap<Metric, Sparse>,
    /// The largest combined clock error estimate reported in the slot (bounds one-way delay).
    pub clock_error_max_ns: Option<u64>,
    /// When what the slot holds was measured: the earliest interval start and the latest
    /// interval end of its snapshots (a snapshot's samples may begin a report interval
    /// before the slot). `None` for records written before this was kept, and for
    /// directions learnt late (no samples): read as the slot's own bounds.
    pub measured: Option<(u64, u64)>,
}

/// Why stored bytes were not a slot record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotCodecError {
    #[error("slot record: {0} bytes end inside a value")]
    Truncated(usize),
    #[error("slot record: version {0}, expected 1 or 2")]
    Version(u8),
    #[error("slot record: metric code {0} is none this version knows")]
    Metric(u64),
    #[error("slot record: bucket position {0} is past the histogram layout's last")]
    Position(u64),
    #[error("slot record: a run of {0} buckets, expected 1 up to the buckets left")]
    Run(u64),
    #[error("slot record: bucket position {0} has a count of 0 or past 2^63")]
    Count(u64),
    #[error("slot record: {0} bytes left over")]
    Trailing(usize),
}

impl From<super::super::sparse::RunsError> for SlotCodecError {
    fn from(e: super::super::sparse::RunsError) -> SlotCodecError {
        use super::super::sparse::RunsError;
        match e {
            RunsError::Run(n) => SlotCodecError::Run(n),
            RunsError::Position(p) => SlotCodecError::Position(p),
            RunsError::Count(p) => SlotCodecError::Count(p),
            RunsError::Truncated => SlotCodecError::Truncated(0),
        }
    }
}

/// Buckets as (value delta, count): written when a value is not a bucket's highest
/// equivalent (never, from agents' histograms), and read from files written before version 2.
pub(super) const SLOT_VALUES: u8 = 1;
/// Buckets as runs of neighbouring HdrHistogram positions: a byte or two per bucket.
pub(super) const SLOT_RUNS: u8 = 2;

/// The counters in a fixed order (a new field must be added here, at the end, to compile).
fn counters_to_array(c: &Counters) -> [u64; 20] {
    let Counters {
        sent,
        received,
        lost,
        lost_forward,
        lost_reverse,
        duplicated,
        reordered,
        late,
        retransmits,
        quic_lost_packets,
        quic_congestion_events,
        quic_black_holes,
        zero_rtt_accepted,
        zero_rtt_rejected,
        zero_rtt_unavailable,
        clock_steps,
        skipped,
        abandoned,
        remarked_forward,
        remarked_reverse,
    } = *c;
    [
        sent,
        received,
        lost,
        lost_forward,
        lost_reverse,
        duplicated,
        reordered,
        late,
        retransmits,
        quic_lost_packets,
        quic_congestion_events,
        quic_black_holes,
        zero_rtt_accepted,
        zero_rtt_rejected,
        zero_rtt_unavailable,
        clock_steps,
        skipped,
        abandoned,
        remarked_forward,
        remarked_reverse,
    ]
}

fn counters_from_slice(v: &[u64]) -> Counters {
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Counters {
        sent: at(0),
        received: at(1),
        lost: at(2),
        lost_forward: at(3),
        lost_reverse: at(4),
        duplicated: at(5),
        reordered: at(6),
        late: at(7),
        retransmits: at(8),
        quic_lost_packets: at(9),
        quic_congestion_events: at(10),
        quic_black_holes: at(11),
        zero_rtt_accepted: at(12),
        zero_rtt_rejected: at(13),
        zero_rtt_unavailable: at(14),
        clock_steps: at(15),
        // Records written before a counter existed hold fewer: it reads as 0.
        skipped: at(16),
        abandoned: at(17),
        remarked_forward: at(18),
        remarked_reverse: at(19),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, SlotCodecError> {
        let (v, n) = xcbench_snapshot::varint::get(&self.buf[self.at..])
            .ok_or(SlotCodecError::Truncated(self.buf.len()))?;
        self.at += n;
        Ok(v)
    }

    fn byte(&mut self) -> Result<u8, SlotCodecError> {
        let b = *self
            .buf
            .get(self.at)
            .ok_or(SlotCodecError::Truncated(self.buf.len()))?;
        self.at += 1;
        Ok(b)
    }
}

impl SlotRecord {
    /// The record of one series' snapshot (its decoded histograms beside it).
    pub fn of(
        series: &SeriesSnapshot,
        histograms: &[Vec<(u64, u64)>],
        measured: (u64, u64),
    ) -> SlotRecord {
        SlotRecord {
            measured: Some(measured),
            counters: series.counters,
            metrics: series
                .histograms
                .iter()
                .zip(histograms)
                .map(|(h, buckets)| (h.metric, Sparse::from_buckets(buckets, h.sum_ns)))
                .collect(),
            clock_error_max_ns: series.clock_error_ns,
        }
    }

    /// The record of directions learnt late for an earlier interval's losses: counters
    /// only.
    pub fn of_directions(e: &xcbench_snapshot::EarlierDirections) -> SlotRecord {
        SlotRecord {
            counters: Counters {
                lost_forward: e.lost_forward,
                lost_reverse: e.lost_reverse,
                ..Default::default()
            },
            metrics: Default::default(),
            clock_error_max_ns: None,
            measured: None,
        }
    }

    /// Merges `other` in: addition, so merging slots never changes a count.
    pub fn add(&mut self, other: &SlotRecord) {
        self.counters.add(&other.counters);
        for (metric, h) in &other.metrics {
            self.metrics.entry(*metric).or_default().add(h);
        }
        self.clock_error_max_ns = match (self.clock_error_max_ns, other.clock_error_max_ns) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.measured = match (self.measured, other.measured) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
    }

    /// `version | counters: n, n varints | clock error + 1 (0: none) | metrics: n, then per
    /// metric: code, sum, buckets: n, then the buckets | [measured from, measured length]`
    /// (the last pair absent in records written before it was kept). Version 2 writes the
    /// buckets as runs of neighbouring positions (see [`bucket_position`]): `gap from the
    /// last run's end, run length x 2 + (1 if every count is 1), then unless so each count
    /// as the zigzag difference from the one before`; version 1 as `(value delta, count)`
    /// varints, and is written only if some value is not a bucket's highest value.
    ///
    /// [`bucket_position`]: xcbench_snapshot::histogram::bucket_position
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let runs = self.metrics.values().all(Sparse::runs_fit);
        buf.push(if runs { SLOT_RUNS } else { SLOT_VALUES });
        // Trailing zero counters are left out (they read as 0): a counter that rarely moves
        // costs a slot nothing.
        let counters = counters_to_array(&self.counters);
        let n = counters.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
        put_varint(buf, n as u64);
        counters[..n].iter().for_each(|c| put_varint(buf, *c));
        put_varint(
            buf,
            self.clock_error_max_ns.map_or(0, |e| e.saturating_add(1)),
        );
        put_varint(buf, self.metrics.len() as u64);
        for (metric, h) in &self.metrics {
            let code = Metric::ALL.iter().position(|m| m == metric).unwrap_or(0);
            put_varint(buf, code as u64);
            put_varint(buf, h.sum_ns());
            put_varint(buf, h.buckets().count() as u64);
            if runs {
                h.put_runs(buf);
            } else {
                let mut last = 0;
                for (value, count) in h.buckets() {
                    put_varint(buf, value - last);
                    put_varint(buf, count);
                    last = value;
                }
            }
        }
        if let Some((from, to)) = self.measured {
            put_varint(buf, from);
            put_varint(buf, to.saturating_sub(from));
        }
    }

    pub fn decode(buf: &[u8]) -> Result<SlotRecord, SlotCodecError> {
        let mut r = Reader { buf, at: 0 };
        let version = r.byte()?;
        if version != SLOT_VALUES && version != SLOT_RUNS {
            return Err(SlotCodecError::Version(version));
        }
        let n = r.varint()?.min(64);
        let counters: Vec<u64> = (0..n).map(|_| r.varint()).collect::<Result<_, _>>()?;
        let clock = r.varint()?;
        let mut record = SlotRecord {
            counters: counters_from_slice(&counters),
            metrics: BTreeMap::new(),
            clock_error_max_ns: clock.checked_sub(1),
            measured: None,
        };
        for _ in 0..r.varint()? {
            let code = r.varint()?;
            let metric = *Metric::ALL
                .get(code as usize)
                .ok_or(SlotCodecError::Metric(code))?;
            let sum = r.varint()?;
            let n = r.varint()?;
            // Version 1 spends at least two bytes a bucket; version 2 names each of the
            // layout's buckets at most once (a run of single samples takes no byte a bucket):
            // a count past either is corrupt, and no allocation follows it.
            let most = match version {
                SLOT_RUNS => xcbench_snapshot::histogram::bucket_position(u64::MAX) + 1,
                _ => (buf.len() - r.at) as u64,
            };
            if n > most {
                return Err(SlotCodecError::Truncated(buf.len()));
            }
            let sparse = if version == SLOT_RUNS {
                Sparse::get_runs(n, sum, || r.varint())?
            } else {
                let mut buckets = Vec::with_capacity(n as usize);
                let mut value = 0u64;
                for _ in 0..n {
                    value = value.saturating_add(r.varint()?);
                    buckets.push((value, r.varint()?));
                }
                Sparse::from_buckets(&buckets, sum)
            };
            record.metrics.insert(metric, sparse);
        }
        // Records written before the measured span was kept end here.
        if r.at < buf.len() {
            let first = r.varint()?;
            record.measured = Some((first, first.saturating_add(r.varint()?)));
        }
        if r.at != buf.len() {
            return Err(SlotCodecError::Trailing(buf.len() - r.at));
        }
        Ok(record)
    }
}

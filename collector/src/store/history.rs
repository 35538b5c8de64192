//! The history's sans-IO half: what one series measured in one time slot ([`SlotRecord`]:
//! counters and sparse histograms, all additive, in a compact binary form), the tiers slots
//! age through ([`Tiers`]: 10 s slots for 6 h, then 5 min for 7 days, then 1 h for 90
//! days by default), and how a query's slots fold into its answer ([`Fold`]; the answer and
//! the selection are the API's contract, in `xcbench_snapshot::history`). Downsampling
//! merges a tier's slots into the next tier's by addition, so every count survives it
//! exactly.
//!
//! Slot times are the agents' `interval_end_unix_ns` (the end of the interval the samples
//! were taken in), not the collector's receive time: snapshots an agent queued through a
//! collector outage land where they were measured.

use std::collections::BTreeMap;

use xcbench_snapshot::{Counters, Metric, SeriesSnapshot, ThroughputResult};

use xcbench_snapshot::history::{
    AgentSeen, HistoryAnswer, MetricAnswer, Selection, SeriesLabels, SlotPoint, Within,
    ANSWER_QUANTILES,
};

use super::{AgentState, SeriesKey, Sparse, ThroughputKey};

/// A series as the history gives it back: its totals since it first reported, and its finest
/// slots (start, record) since the time asked for.
pub type RestoredSeries = (SeriesKey, SlotRecord, Vec<(u64, SlotRecord)>);

/// What the history holds about the past, for the store after a restart.
#[derive(Debug, Default)]
pub struct Restored {
    pub series: Vec<RestoredSeries>,
    pub agents: Vec<AgentState>,
    pub tests: Vec<(ThroughputKey, ThroughputResult)>,
}

/// One resolution: slots of `slot_ns`, kept `keep_ns` (from the slot's end) before they
/// merge into the next tier, or, in the last tier, leave the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub slot_ns: u64,
    pub keep_ns: u64,
}

/// Why tiers were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierError {
    #[error("must have 1 to 8 tiers")]
    Count,
    #[error("tier {0}: the slot must be at least 1s and the time kept at least one slot")]
    Slot(usize),
    #[error("tier {0}: its slot must be a whole multiple of the previous tier's, and kept at least as long")]
    Coarser(usize),
}

/// The tiers of a history, finest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers(Vec<Tier>);

/// What becomes of a slot at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Stay,
    /// Merges into the next tier's slot starting here.
    Merge {
        tier: u8,
        start_ns: u64,
    },
    /// Past the last tier: leaves the history (its counts stay in the series' totals).
    Expire,
}

const S: u64 = 1_000_000_000;

impl Tiers {
    /// The default tiers before slot records version 2 (10 s for 6 h, 1 min for 7 d, 10 min
    /// for 90 d): what a history file that does not record its tiers was written with, when
    /// the configuration now asks for today's default.
    pub fn before_v2() -> Tiers {
        Tiers(vec![
            Tier {
                slot_ns: 10 * S,
                keep_ns: 6 * 3600 * S,
            },
            Tier {
                slot_ns: 60 * S,
                keep_ns: 7 * 86_400 * S,
            },
            Tier {
                slot_ns: 600 * S,
                keep_ns: 90 * 86_400 * S,
            },
        ])
    }

    /// Where a slot of `old_slot_ns` goes in these tiers: the finest tier whose slots are a
    /// whole number of it (so it falls inside one of them), else the coarsest.
    pub fn home_of(&self, old_slot_ns: u64) -> u8 {
        self.0
            .iter()
            .position(|t| t.slot_ns >= old_slot_ns && t.slot_ns % old_slot_ns == 0)
            .unwrap_or(self.0.len() - 1) as u8
    }
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers(vec![
            Tier {
                slot_ns: 10 * S,
                keep_ns: 6 * 3600 * S,
            },
            Tier {
                slot_ns: 300 * S,
                keep_ns: 7 * 86_400 * S,
            },
            Tier {
                slot_ns: 3_600 * S,
                keep_ns: 90 * 86_400 * S,
            },
        ])
    }
}

impl Tiers {
    pub fn new(tiers: Vec<Tier>) -> Result<Tiers, TierError> {
        if tiers.is_empty() || tiers.len() > 8 {
            return Err(TierError::Count);
        }
        for (i, t) in tiers.iter().enumerate() {
            if t.slot_ns < S || t.keep_ns < t.slot_ns {
                return Err(TierError::Slot(i));
            }
            if let Some(p) = i.checked_sub(1).map(|p| tiers[p]) {
                if t.slot_ns % p.slot_ns != 0 || t.keep_ns < p.keep_ns {
                    return Err(TierError::Coarser(i));
                }
            }
        }
        Ok(Tiers(tiers))
    }

    pub fn get(&self) -> &[Tier] {
        &self.0
    }

    /// Start of tier `tier`'s slot holding samples taken up to `t`.
    pub fn slot_start(&self, tier: u8, t: u64) -> u64 {
        let slot = self.0[usize::from(tier)].slot_ns;
        t - t % slot
    }

    /// What becomes of tier `tier`'s slot starting at `start_ns` at `now`.
    pub fn fate(&self, tier: u8, start_ns: u64, now: u64) -> Fate {
        let t = self.0[usize::from(tier)];
        if start_ns + t.slot_ns + t.keep_ns > now {
            return Fate::Stay;
        }
        match self.0.get(usize::from(tier) + 1) {
            Some(next) => Fate::Merge {
                tier: tier + 1,
                start_ns: start_ns - start_ns % next.slot_ns,
            },
            None => Fate::Expire,
        }
    }

    /// Slots of `tier` starting before this time have a fate other than [`Fate::Stay`].
    pub fn cutoff(&self, tier: u8, now: u64) -> u64 {
        let t = self.0[usize::from(tier)];
        now.saturating_sub(t.slot_ns + t.keep_ns) + 1
    }
}

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

/// Buckets as (value delta, count): written when a value is not a bucket's highest
/// equivalent (never, from agents' histograms), and read from files written before version 2.
const SLOT_VALUES: u8 = 1;
/// Buckets as runs of neighbouring HdrHistogram positions: a byte or two per bucket.
const SLOT_RUNS: u8 = 2;

/// The counters in a fixed order (a new field must be added here, at the end, to compile).
fn counters_to_array(c: &Counters) -> [u64; 18] {
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
    }
}

/// A signed difference as an unsigned varint value: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ...
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, SlotCodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.at)
                .ok_or(SlotCodecError::Truncated(self.buf.len()))?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SlotCodecError::Truncated(self.buf.len()))
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
        use xcbench_snapshot::histogram::{bucket_position, bucket_value};
        let runs = self.metrics.values().all(|h| {
            h.buckets()
                .all(|(v, _)| bucket_value(bucket_position(v)) == Some(v))
        });
        buf.push(if runs { SLOT_RUNS } else { SLOT_VALUES });
        let counters = counters_to_array(&self.counters);
        put_varint(buf, counters.len() as u64);
        counters.iter().for_each(|c| put_varint(buf, *c));
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
                let positions: Vec<(u64, u64)> =
                    h.buckets().map(|(v, c)| (bucket_position(v), c)).collect();
                let mut next = 0;
                for run in positions.chunk_by(|a, b| b.0 == a.0 + 1) {
                    put_varint(buf, run[0].0 - next);
                    let ones = run.iter().all(|(_, c)| *c == 1);
                    put_varint(buf, ((run.len() as u64) << 1) | u64::from(ones));
                    if !ones {
                        let mut last = 0u64;
                        for (_, c) in run {
                            put_varint(buf, zigzag(c.wrapping_sub(last) as i64));
                            last = *c;
                        }
                    }
                    next = run[run.len() - 1].0 + 1;
                }
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
            let mut buckets = Vec::with_capacity(n as usize);
            if version == SLOT_RUNS {
                let mut next = 0u64;
                while (buckets.len() as u64) < n {
                    let start = next.saturating_add(r.varint()?);
                    let head = r.varint()?;
                    let (len, ones) = (head >> 1, head & 1 == 1);
                    if len == 0 || len > n - buckets.len() as u64 {
                        return Err(SlotCodecError::Run(len));
                    }
                    let mut last = 0u64;
                    for p in start..start.saturating_add(len) {
                        let value = xcbench_snapshot::histogram::bucket_value(p)
                            .ok_or(SlotCodecError::Position(p))?;
                        let count = match ones {
                            true => 1,
                            false => last.wrapping_add(unzigzag(r.varint()?) as u64),
                        };
                        // Only non-empty buckets are written, and no count reaches 2^63.
                        if count == 0 || count > i64::MAX as u64 {
                            return Err(SlotCodecError::Count(p));
                        }
                        buckets.push((value, count));
                        last = count;
                    }
                    next = start.saturating_add(len);
                }
            } else {
                let mut value = 0u64;
                for _ in 0..n {
                    value = value.saturating_add(r.varint()?);
                    buckets.push((value, r.varint()?));
                }
            }
            record
                .metrics
                .insert(metric, Sparse::from_buckets(&buckets, sum));
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

/// `selection` picks the series `key` names.
pub fn selects(selection: &Selection, key: &SeriesKey) -> bool {
    selection.matches(&key.source, &key.peer, key.protocol, key.kind, key.load)
}

impl From<&SeriesKey> for SeriesLabels {
    fn from(k: &SeriesKey) -> SeriesLabels {
        SeriesLabels::of(&k.source, &k.peer, k.protocol, k.kind, k.load)
    }
}

/// The time a history query reads, `[from, to)`, and the collector's clock: a slot that
/// ends after `to` is read only when `to` is now or later (the slot is still filling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: u64,
    pub to: u64,
    pub now: u64,
}

/// Folds the slots of a query into its answer.
#[derive(Debug, Clone, Default)]
pub struct Fold {
    total: SlotRecord,
    slots: BTreeMap<(u64, u64), SlotRecord>,
    covered: Option<(u64, u64)>,
}

impl Fold {
    /// Takes one stored slot of a selected series.
    pub fn handle_slot(&mut self, start_ns: u64, slot_ns: u64, record: &SlotRecord) {
        self.total.add(record);
        self.slots
            .entry((start_ns, slot_ns))
            .or_default()
            .add(record);
        let (from, to) = self.covered.unwrap_or((start_ns, start_ns + slot_ns));
        self.covered = Some((from.min(start_ns), to.max(start_ns + slot_ns)));
    }

    /// The answer for `metrics` (each with its within-threshold counts), given how a
    /// bucket's lowest equivalent value follows from its highest.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        self,
        from: u64,
        to: u64,
        series: Vec<SeriesLabels>,
        metrics: &[Metric],
        thresholds_ns: &[u64],
        agents: Vec<AgentSeen>,
        lowest: impl Fn(u64) -> u64,
    ) -> HistoryAnswer {
        let empty = Sparse::default();
        let metric_answers = metrics
            .iter()
            .map(|m| {
                let h = self.total.metrics.get(m).unwrap_or(&empty);
                MetricAnswer {
                    metric: *m,
                    count: h.count(),
                    sum_ns: h.sum_ns(),
                    hdr: h.to_histogram().encode_base64(),
                    quantiles: ANSWER_QUANTILES
                        .iter()
                        .filter_map(|q| h.quantile(*q).map(|v| (*q, v)))
                        .collect(),
                    within: thresholds_ns
                        .iter()
                        .map(|t| {
                            let (at_most, straddling) = h.within(*t, &lowest);
                            Within {
                                threshold_ns: *t,
                                at_most,
                                straddling,
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        let first = metrics.first();
        let slots = self
            .slots
            .iter()
            .map(|((start_ns, slot_ns), r)| {
                let h = first.and_then(|m| r.metrics.get(m)).unwrap_or(&empty);
                let within = thresholds_ns.first().map_or(0, |t| h.within(*t, &lowest).0);
                SlotPoint {
                    start_ns: *start_ns,
                    slot_ns: *slot_ns,
                    sent: r.counters.sent,
                    received: r.counters.received,
                    lost: r.counters.lost,
                    samples: h.count(),
                    sum_ns: h.sum_ns(),
                    within,
                }
            })
            .collect();
        HistoryAnswer {
            from_unix_ns: from,
            to_unix_ns: to,
            covered_from_unix_ns: self.covered.map(|c| c.0),
            covered_to_unix_ns: self.covered.map(|c| c.1),
            series,
            counters: self.total.counters,
            metrics: metric_answers,
            slots,
            clock_error_max_ns: self.total.clock_error_max_ns,
            agents,
            tests: Vec::new(),
            quiet: Vec::new(),
            scheduled: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        // The same record in version 1, as the encoder wrote it before: the header (18 zero
        // counters, no clock error, one metric: RTT, its sum and bucket count), then values.
        let mut header = vec![18];
        header.extend([0u8; 18]);
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
}

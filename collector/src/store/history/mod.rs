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
//!
//! - this file: [`Tiers`], [`Fold`], [`Restored`], which series a selection picks.
//! - `slot`: [`SlotRecord`] and its binary form.
//! - `tests`: records, tiers and folds.

mod slot;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use xcbench_snapshot::{Metric, ThroughputResult};

use xcbench_snapshot::history::{
    AgentSeen, HistoryAnswer, MetricAnswer, Selection, SeriesLabels, SlotPoint, Within,
    ANSWER_QUANTILES,
};

use super::{AgentState, SeriesKey, Sparse, ThroughputKey};
pub use slot::{SlotCodecError, SlotRecord};

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
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

impl Tiers {
    /// The default tiers before slot records version 2 (10 s for 6 h, 1 min for 7 d, 10 min
    /// for 90 d): what a history file that does not record its tiers was written with, when
    /// the configuration now asks for today's default.
    pub fn before_v2() -> Tiers {
        Tiers::of(&[(10, 6 * HOUR), (60, 7 * DAY), (600, 90 * DAY)])
    }

    /// Tiers of (slot, keep) in seconds, finest first: the built-in tables.
    fn of(table: &[(u64, u64)]) -> Tiers {
        Tiers(
            table
                .iter()
                .map(|(slot, keep)| Tier {
                    slot_ns: slot * S,
                    keep_ns: keep * S,
                })
                .collect(),
        )
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
        Tiers::of(&[(10, 6 * HOUR), (300, 7 * DAY), (HOUR, 90 * DAY)])
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

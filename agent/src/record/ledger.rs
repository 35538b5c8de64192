//! What the recorder remembers of a series' recent probes: the load each was sent under
//! (outcomes are filed there), and for a STAMP loss still awaiting its direction, the period
//! (snapshot) that counted it, so a split learnt later is dated with the loss; and the
//! periods' ends that dating needs.

use std::collections::{BTreeMap, VecDeque};

use xcbench_snapshot::Load;

/// Probes a ledger keeps once their outcome is settled (for late replies and duplicates).
const LEDGER_KEEP: usize = 2048;
/// Probes a ledger holds at most (losses awaiting a direction through a long outage).
const LEDGER_MAX: usize = 1 << 17;
/// `Probe::lost_in` of a probe not lost, or whose loss needs no direction.
const NOT_AWAITING: u64 = u64::MAX;

/// What the recorder remembers of one probe: the load it was sent under, and, while its
/// loss awaits a direction, the period (snapshot number) that counted the loss.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    pub(super) load: Load,
    pub(super) lost_in: u64,
}

/// A series' recent probes by wire sequence; `front` is the sequence of `probes[0]`.
#[derive(Default)]
pub(super) struct Ledger {
    front: u32,
    probes: VecDeque<Probe>,
}

impl Ledger {
    pub(super) fn on_sent(&mut self, seq: u32, load: Load) {
        let next = self.front.wrapping_add(self.probes.len() as u32);
        if self.probes.is_empty() || seq != next {
            // A new prober (its sequences start again): what the old one left is forgotten.
            self.probes.clear();
            self.front = seq;
        }
        self.probes.push_back(Probe {
            load,
            lost_in: NOT_AWAITING,
        });
        while self.probes.len() > LEDGER_MAX
            || (self.probes.len() > LEDGER_KEEP
                && self
                    .probes
                    .front()
                    .is_some_and(|p| p.lost_in == NOT_AWAITING))
        {
            self.probes.pop_front();
            self.front = self.front.wrapping_add(1);
        }
    }

    fn index(&self, seq: u32) -> Option<usize> {
        let i = seq.wrapping_sub(self.front) as usize;
        (i < self.probes.len()).then_some(i)
    }

    pub(super) fn get_mut(&mut self, seq: u32) -> Option<&mut Probe> {
        let i = self.index(seq)?;
        self.probes.get_mut(i)
    }

    /// The run `first..=last` of a loss-direction event, whose `total` losses split into
    /// `forward` and `reverse` (the rest unattributed), split again by the (load, period)
    /// that counted each loss. The run says how many of its losses went each way, not which:
    /// each part gets the directions it must have had whichever they were (at least
    /// `part - (total - forward)` forward), and its remainder stays unattributed. A run
    /// counted in one part splits exactly.
    pub(super) fn split(
        &mut self,
        first: u32,
        last: u32,
        (total, forward, reverse): (u64, u64, u64),
        period: u64,
    ) -> BTreeMap<(Load, u64), (u64, u64)> {
        let mut parts: BTreeMap<(Load, u64), u64> = BTreeMap::new();
        let (Some(from), Some(to)) = (self.index(first), self.index(last)) else {
            return BTreeMap::new();
        };
        for p in self.probes.range_mut(from..=to.max(from)) {
            if p.lost_in != NOT_AWAITING {
                *parts.entry((p.load, p.lost_in.min(period))).or_default() += 1;
                p.lost_in = NOT_AWAITING;
            }
        }
        parts
            .into_iter()
            .map(|(at, n)| {
                let f = n.saturating_sub(total - forward);
                let r = n.saturating_sub(total - reverse);
                (at, (f, r))
            })
            .collect()
    }
}

/// Interval ends remembered, to date directions learnt late (older ones stay unattributed).
const PERIODS_KEPT: usize = 4096;

/// The snapshots taken so far, each a period: the current one's number, and the ends of the
/// last [`PERIODS_KEPT`] (`ends[i]` of period `current - ends.len() + i`).
#[derive(Default)]
pub(super) struct Periods {
    current: u64,
    ends: VecDeque<u64>,
}

impl Periods {
    /// The period now being recorded.
    pub(super) fn current(&self) -> u64 {
        self.current
    }

    /// The current period ends at `end_unix_ns`; the next one begins.
    pub(super) fn handle_end(&mut self, end_unix_ns: u64) {
        self.ends.push_back(end_unix_ns);
        if self.ends.len() > PERIODS_KEPT {
            self.ends.pop_front();
        }
        self.current += 1;
    }

    /// The end of an earlier period `of`, while it is remembered.
    pub(super) fn end_of(&self, of: u64) -> Option<u64> {
        let back = usize::try_from(self.current.checked_sub(of)?).ok()?;
        self.ends
            .len()
            .checked_sub(back)
            .and_then(|i| self.ends.get(i))
            .copied()
    }
}

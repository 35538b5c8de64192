//! The sliding window behind scrape-time quantiles: samples kept in fixed slots of collector
//! time so whole slots can leave once they end before the window does, plus a running total
//! so a scrape reads one merged histogram instead of adding up every slot. A slot that no
//! longer takes samples is kept compact (runs of buckets) until it leaves.
//!
//! [`WindowSpan`] is the length and slot of every window in the store; [`Window`] is one
//! metric's window. Both take time as arguments (nanoseconds, collector clock).

use std::collections::VecDeque;

use super::sparse::{RunsError, Sparse};

/// How far back a window looks, and the granularity at which samples leave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WindowSpan {
    length_ns: u64,
    slot_ns: u64,
}

impl WindowSpan {
    /// A zero length becomes 1 ns, and the slot is kept within 1 ns .. the length, so every
    /// span has at least one slot.
    pub(super) fn new(length_ns: u64, slot_ns: u64) -> WindowSpan {
        let length_ns = length_ns.max(1);
        WindowSpan {
            length_ns,
            slot_ns: slot_ns.clamp(1, length_ns),
        }
    }

    pub(super) fn length_ns(&self) -> u64 {
        self.length_ns
    }

    /// Start of the slot that holds samples received at `now`.
    fn slot_start(&self, now: u64) -> u64 {
        now - now % self.slot_ns
    }

    /// Whether the slot starting at `start` ended before the window ending at `now` began.
    fn has_left(&self, start: u64, now: u64) -> bool {
        start + self.slot_ns <= now.saturating_sub(self.length_ns)
    }
}

/// One metric's recent samples.
#[derive(Debug, Clone, Default)]
pub(super) struct Window {
    /// Oldest first; slot starts ascend because the collector clock is read at ingest. Every
    /// slot but the newest is closed: held in its compact form.
    slots: VecDeque<Slot>,
    /// The sum of `slots`, kept up to date so reading it costs nothing.
    total: Sparse,
}

#[derive(Debug, Clone)]
struct Slot {
    start_ns: u64,
    samples: Held,
}

/// A slot's samples: the newest as a [`Sparse`] that takes more; a closed one as runs of
/// buckets ([`Sparse::put_runs`]), a byte or two a bucket instead of a tree node's forty, read
/// back only when it leaves the window. (A histogram whose values are not the layout's
/// bucket values, which agents never send, stays a [`Sparse`].)
#[derive(Debug, Clone)]
enum Held {
    Open(Sparse),
    Runs {
        buckets: u64,
        sum_ns: u64,
        runs: Box<[u8]>,
    },
}

impl Held {
    fn close(self) -> Held {
        match self {
            Held::Open(s) if s.runs_fit() => {
                let mut runs = Vec::new();
                s.put_runs(&mut runs);
                Held::Runs {
                    buckets: s.buckets().count() as u64,
                    sum_ns: s.sum_ns(),
                    runs: runs.into_boxed_slice(),
                }
            }
            other => other,
        }
    }

    fn samples(self) -> Sparse {
        match self {
            Held::Open(s) => s,
            Held::Runs {
                buckets,
                sum_ns,
                runs,
            } => {
                let mut at = 0;
                let varint = || {
                    let (v, n) =
                        xcbench_snapshot::varint::get(&runs[at..]).ok_or(RunsError::Truncated)?;
                    at += n;
                    Ok::<u64, RunsError>(v)
                };
                // The window wrote these bytes itself, from a histogram they fit.
                Sparse::get_runs(buckets, sum_ns, varint).expect("the window's own runs read back")
            }
        }
    }
}

// `#[inline]` for the reason given on `Sparse`: these run per metric on every ingest.
impl Window {
    /// Adds samples received at `now`.
    #[inline]
    pub(super) fn handle_samples(&mut self, span: &WindowSpan, samples: Sparse, now: u64) {
        self.total.add(&samples);
        let start_ns = span.slot_start(now);
        match self.slots.back_mut() {
            Some(Slot {
                start_ns: open,
                samples: Held::Open(s),
            }) if *open == start_ns => s.add(&samples),
            _ => {
                if let Some(last) = self.slots.pop_back() {
                    self.slots.push_back(Slot {
                        start_ns: last.start_ns,
                        samples: last.samples.close(),
                    });
                }
                self.slots.push_back(Slot {
                    start_ns,
                    samples: Held::Open(samples),
                });
            }
        }
    }

    /// Drops the slots that ended before the window ending at `now` began.
    #[inline]
    pub(super) fn expire(&mut self, span: &WindowSpan, now: u64) {
        while let Some(slot) = self.slots.front() {
            if !span.has_left(slot.start_ns, now) {
                break;
            }
            let old = self.slots.pop_front().expect("front exists");
            self.total.subtract(&old.samples.samples());
        }
    }

    /// Samples in the window.
    pub(super) fn total(&self) -> &Sparse {
        &self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn slots_leave_whole() {
        let span = WindowSpan::new(60 * S, 10 * S);
        let mut w = Window::default();
        w.handle_samples(
            &span,
            Sparse::from_buckets(&[(1_000_447, 1)], 1_000_000),
            100 * S,
        );
        w.handle_samples(
            &span,
            Sparse::from_buckets(&[(2_000_895, 1)], 2_000_000),
            109 * S,
        );
        w.handle_samples(
            &span,
            Sparse::from_buckets(&[(3_000_319, 1)], 3_000_000),
            110 * S,
        );
        assert_eq!(
            w.slots.len(),
            2,
            "100 s and 109 s share the [100 s, 110 s) slot"
        );
        // The [100 s, 110 s) slot overlaps a window ending at 169.9 s but not one at 170 s.
        w.expire(&span, 169 * S);
        assert_eq!(w.total().count(), 3);
        w.expire(&span, 170 * S);
        assert_eq!((w.total().count(), w.total().sum_ns()), (1, 3_000_000));
    }

    /// Closed slots are held as runs and read back exactly when they leave: the total
    /// always equals the sum of the slots still in the window.
    #[test]
    fn closed_slots_leave_exactly() {
        let span = WindowSpan::new(30 * S, 10 * S);
        let mut w = Window::default();
        let mut sent = Vec::new();
        for i in 0..12u64 {
            let h = {
                let mut h = xcbench_snapshot::LatencyHistogram::new();
                for k in 0..50 {
                    h.record_ns(1_000_000 + (i * 7_919 + k * 104_729) % 3_000_000);
                }
                h
            };
            let s = Sparse::from_buckets(&h.buckets().collect::<Vec<_>>(), 1_000 + i);
            sent.push(s.clone());
            w.handle_samples(&span, s, (100 + 10 * i) * S);
            w.expire(&span, (100 + 10 * i) * S);
            let mut expect = Sparse::default();
            // A 30 s window of 10 s slots ending at the newest slot's start: the last 4.
            for j in i.saturating_sub(3)..=i {
                expect.add(&sent[j as usize]);
            }
            assert_eq!(w.total(), &expect, "after slot {i}");
            assert!(
                w.slots
                    .iter()
                    .rev()
                    .skip(1)
                    .all(|s| matches!(s.samples, Held::Runs { .. })),
                "every slot but the newest is closed"
            );
        }
    }

    #[test]
    fn span_keeps_a_slot() {
        assert_eq!(WindowSpan::new(0, 0), WindowSpan::new(1, 1));
        assert_eq!(WindowSpan::new(5 * S, 10 * S).slot_ns, 5 * S);
    }
}

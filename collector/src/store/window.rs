//! The sliding window behind scrape-time quantiles: samples kept in fixed slots of collector
//! time so whole slots can leave once they end before the window does, plus a running total
//! so a scrape reads one merged histogram instead of adding up every slot.
//!
//! [`WindowSpan`] is the length and slot of every window in the store; [`Window`] is one
//! metric's window. Both take time as arguments (nanoseconds, collector clock).

use std::collections::VecDeque;

use super::sparse::Sparse;

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
    /// Oldest first; slot starts ascend because the collector clock is read at ingest.
    slots: VecDeque<Slot>,
    /// The sum of `slots`, kept up to date so reading it costs nothing.
    total: Sparse,
}

#[derive(Debug, Clone)]
struct Slot {
    start_ns: u64,
    samples: Sparse,
}

// `#[inline]` for the reason given on `Sparse`: these run per metric on every ingest.
impl Window {
    /// Adds samples received at `now`.
    #[inline]
    pub(super) fn handle_samples(&mut self, span: &WindowSpan, samples: Sparse, now: u64) {
        self.total.add(&samples);
        let start_ns = span.slot_start(now);
        match self.slots.back_mut() {
            Some(slot) if slot.start_ns == start_ns => slot.samples.add(&samples),
            _ => self.slots.push_back(Slot { start_ns, samples }),
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
            self.total.subtract(&old.samples);
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

    #[test]
    fn span_keeps_a_slot() {
        assert_eq!(WindowSpan::new(0, 0), WindowSpan::new(1, 1));
        assert_eq!(WindowSpan::new(5 * S, 10 * S).slot_ns, 5 * S);
    }
}

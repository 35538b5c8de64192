//! One stream's interval clock, sans-IO: cumulative counts sampled at interval boundaries
//! become per-interval figures, the warm-up marked omitted. All times are monotonic ns.

use super::Test;
use crate::wire::throughput::IntervalBytes;

/// A stream's cumulative counters at one instant (UDP fields stay 0 for TCP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub bytes: u64,
    pub retransmits: u64,
    pub packets: u64,
    pub lost: u64,
    pub out_of_order: u64,
    /// A gauge, not cumulative: RFC 3550 jitter now.
    pub jitter_ns: Option<u64>,
}

/// One stream's interval clock and counters.
#[derive(Debug, Clone)]
pub struct Meter {
    start_ns: u64,
    interval_ns: u64,
    omit_ns: u64,
    end_ns: u64,
    next_ns: Option<u64>,
    last_ns: u64,
    last: Counts,
    records: Vec<IntervalBytes>,
}

impl Meter {
    /// A test that starts at `start_ns` and is meant to last `duration_ns`.
    pub fn new(start_ns: u64, interval_ns: u64, omit_ns: u64, duration_ns: u64) -> Meter {
        let interval_ns = interval_ns.max(1);
        Meter {
            start_ns,
            interval_ns,
            omit_ns,
            end_ns: start_ns + duration_ns,
            next_ns: Some(start_ns + interval_ns.min(duration_ns.max(1))),
            last_ns: start_ns,
            last: Counts::default(),
            records: Vec::new(),
        }
    }

    /// The meter of one stream of `test`, starting at `start_ns`.
    pub fn for_test(test: &Test, start_ns: u64) -> Meter {
        let ms = |v: u64| v * 1_000_000;
        Meter::new(
            start_ns,
            ms(test.interval_ms),
            ms(test.omit_ms),
            ms(test.duration_ms),
        )
    }

    /// When the next interval closes (absolute ns); `None` once the planned time is over.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_ns
    }

    /// Whether an interval boundary has passed at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        self.next_ns.is_some_and(|due| now >= due)
    }

    /// Closes the interval at `now` with the stream's cumulative counts; returns it.
    pub fn handle_sample(&mut self, now: u64, c: Counts) -> Option<IntervalBytes> {
        if now <= self.last_ns {
            return None;
        }
        let rel = |t: u64| (t - self.start_ns) / 1_000_000;
        let l = self.last;
        self.records.push(IntervalBytes {
            start_ms: rel(self.last_ns),
            end_ms: rel(now),
            bytes: c.bytes.saturating_sub(l.bytes),
            retransmits: c.retransmits.saturating_sub(l.retransmits),
            // An interval that begins inside the warm-up is left out whole.
            omitted: self.last_ns - self.start_ns < self.omit_ns,
            packets: c.packets.saturating_sub(l.packets),
            lost: c.lost.saturating_sub(l.lost),
            out_of_order: c.out_of_order.saturating_sub(l.out_of_order),
            jitter_us: c.jitter_ns.map(|j| j / 1_000),
        });
        self.last_ns = now;
        self.last = c;
        self.next_ns = match self.next_ns {
            Some(_) if now >= self.end_ns => None,
            Some(n) => {
                let mut next = n;
                while next <= now {
                    next += self.interval_ns;
                }
                Some(next.min(self.end_ns))
            }
            None => None,
        };
        self.records.last().copied()
    }

    /// The last sample after the planned end (a receiver drains what was in flight);
    /// returns the interval it closed, if anything moved since the last one.
    pub fn finish(&mut self, now: u64, c: Counts) -> Option<IntervalBytes> {
        let l = self.last;
        let moved = (c.bytes, c.retransmits, c.packets, c.lost)
            != (l.bytes, l.retransmits, l.packets, l.lost);
        let closed = if moved {
            self.handle_sample(now.max(self.last_ns + 1), c)
        } else {
            None
        };
        self.next_ns = None;
        closed
    }

    pub fn records(&self) -> &[IntervalBytes] {
        &self.records
    }

    pub fn into_records(self) -> Vec<IntervalBytes> {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::throughput::totals;
    use crate::wire::throughput::StreamFigures;

    const MS: u64 = 1_000_000;

    fn counts(bytes: u64, retransmits: u64) -> Counts {
        Counts {
            bytes,
            retransmits,
            ..Counts::default()
        }
    }

    #[test]
    fn intervals_follow_the_clock_and_the_warm_up_is_omitted() {
        let start = 5_000 * MS;
        let mut m = Meter::new(start, 1_000 * MS, 1_000 * MS, 3_000 * MS);
        let mut bytes = 0;
        while let Some(t) = m.poll_timeout() {
            bytes += 100;
            // Samples arrive a little late, as a thread's wake-up would.
            m.handle_sample(t + 2 * MS, counts(bytes, bytes / 100));
        }
        m.finish(start + 3_050 * MS, counts(bytes + 7, bytes / 100));
        let r = m.records();
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!((r[0].start_ms, r[0].end_ms, r[0].omitted), (0, 1002, true));
        assert_eq!(
            (r[1].start_ms, r[1].end_ms, r[1].omitted),
            (1002, 2002, false)
        );
        assert_eq!((r[2].end_ms, r[2].bytes, r[2].retransmits), (3002, 100, 1));
        assert_eq!((r[3].end_ms, r[3].bytes), (3050, 7), "the drained tail");
        let s = StreamFigures {
            stream: 0,
            sender: false,
            intervals: r.to_vec(),
            tcp: None,
            quic: None,
        };
        let t = totals([&s]);
        assert_eq!(t.bytes, 207);
        assert!((t.seconds - 2.048).abs() < 1e-9, "{t:?}");
        assert!((t.bits_per_second - 207.0 * 8.0 / 2.048).abs() < 1e-6);
    }

    #[test]
    fn a_late_wake_up_skips_no_bytes() {
        let mut m = Meter::new(0, 100 * MS, 0, 1_000 * MS);
        m.handle_sample(350 * MS, counts(35, 0));
        assert_eq!(m.poll_timeout(), Some(400 * MS));
        m.handle_sample(1_000 * MS, counts(100, 0));
        assert_eq!(m.poll_timeout(), None);
        let sum: u64 = m.records().iter().map(|r| r.bytes).sum();
        assert_eq!(sum, 100);
    }
}

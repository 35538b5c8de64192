//! Throughput accounting, sans-IO: cumulative byte counts sampled at interval boundaries
//! become per-interval figures (the warm-up marked omitted), and a side's figures become the
//! totals a person reads: bytes and bits per second over the counted time. Also the timing
//! decisions of a test, with the clock passed in: when scheduled tests are due, the byte
//! budget that paces a sender, and how much a TCP receiver lets queue before it reads.

use crate::wire::throughput::{IntervalBytes, StreamFigures, TestSpec};

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

/// What a UDP receiver learns from its datagrams: delivered bytes and datagrams, those missing
/// from the sequence, late ones, and RFC 3550 jitter on the transit-time difference (sender
/// and receiver clock offsets cancel).
#[derive(Debug, Clone, Default)]
pub struct Datagrams {
    pub counts: Counts,
    /// When the last datagram arrived: the end of the counted time (waiting out a drain
    /// period is not delivery time).
    pub last_rx_ns: u64,
    max_seq: Option<u64>,
    last_transit: Option<i64>,
    jitter: f64,
}

impl Datagrams {
    /// A datagram with sequence `seq`, sent at `sent_ns`, `len` bytes, arrived at `now`.
    pub fn handle(&mut self, seq: u64, sent_ns: u64, len: usize, now: u64) {
        self.last_rx_ns = now;
        let c = &mut self.counts;
        c.bytes += len as u64;
        c.packets += 1;
        match self.max_seq {
            Some(m) if seq < m => c.out_of_order += 1,
            _ => self.max_seq = Some(seq),
        }
        // Missing = expected so far - received (a late arrival fills its gap again).
        let expected = self.max_seq.map_or(0, |m| m + 1);
        c.lost = expected.saturating_sub(c.packets);
        let transit = now as i64 - sent_ns as i64;
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
            c.jitter_ns = Some(self.jitter as u64);
        }
        self.last_transit = Some(transit);
    }
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

    /// The meter of one stream of `spec`, starting at `start_ns`.
    pub fn for_spec(spec: &TestSpec, start_ns: u64) -> Meter {
        let ms = |v: u64| v * 1_000_000;
        Meter::new(
            start_ns,
            ms(spec.interval_ms),
            ms(spec.omit_ms),
            ms(spec.duration_ms),
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

/// When scheduled tests are due, per peer (sans-IO: the caller brings the clock and the
/// random numbers, each in [0, 1)). The first test of a peer falls at a random point within
/// the first period, so agents that start together do not test together; after that every
/// period is jittered by +-10%.
#[derive(Debug, Clone)]
pub struct Schedule {
    every_ns: u64,
    due: Vec<u64>,
}

impl Schedule {
    /// `peers` peers, one round per `every_ns`, starting at `now`; `random` supplies one
    /// number per peer.
    pub fn new(peers: usize, every_ns: u64, now: u64, mut random: impl FnMut() -> f64) -> Self {
        let due = (0..peers)
            .map(|_| now + (every_ns as f64 * random()) as u64)
            .collect();
        Schedule { every_ns, due }
    }

    /// The earliest due time, if there is a peer at all.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.due.iter().copied().min()
    }

    /// The peer whose round is due at `now` (the longest overdue first), with its next round
    /// planned one jittered period after this one was due (`random` in [0, 1)). Rounds
    /// missed while another test ran are not made up: the next is at least half a period on.
    pub fn handle_timeout(&mut self, now: u64, random: f64) -> Option<usize> {
        let (peer, due) = self
            .due
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, d)| *d <= now)
            .min_by_key(|(_, d)| *d)?;
        let period = (self.every_ns as f64 * (0.9 + 0.2 * random)) as u64;
        self.due[peer] = (due + period).max(now + self.every_ns / 2);
        Some(peer)
    }
}

/// A byte budget growing at a fixed rate from an origin, sans-IO: how much a sender may
/// hand over by `now`, and when the next bytes fall due. UDP paces its datagrams with it;
/// TCP and QUIC use it as an optional cap (`-b`).
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    origin_ns: u64,
    bytes_per_ns: f64,
}

impl Pacer {
    /// Bytes may go from `origin_ns` on at `bits_per_second`.
    pub fn new(origin_ns: u64, bits_per_second: f64) -> Self {
        Pacer {
            origin_ns,
            bytes_per_ns: bits_per_second / 8e9,
        }
    }

    /// Bytes that may go at `now` beyond the `sent` already gone (0 when ahead).
    pub fn allowance(&self, now: u64, sent: u64) -> u64 {
        let due = (now.saturating_sub(self.origin_ns) as f64 * self.bytes_per_ns) as u64;
        due.saturating_sub(sent)
    }

    /// When `bytes` in all fall due.
    pub fn due_at(&self, bytes: u64) -> u64 {
        self.origin_ns + (bytes as f64 / self.bytes_per_ns) as u64
    }

    /// Bytes per millisecond: a sender hands over at least this much at a time (or its
    /// whole write, if smaller), so a low rate does not become a write per few bytes.
    pub fn quantum(&self) -> u64 {
        ((self.bytes_per_ns * 1e6) as u64).max(1)
    }
}

/// How many bytes a TCP receiver lets the kernel queue before it wakes the reading thread
/// (SO_RCVLOWAT), sans-IO. A wake-up per arriving segment costs the sending side on a fast
/// path (on loopback the sender's CPU runs them); waiting for a fuller read halves them. The
/// mark follows the rate measured at the reads, so that data waits in the kernel about
/// [`ReadMark::WAIT_NS`] at most: ~125 bytes at 1 Mbit/s, ~25 kB at 200 Mbit/s, the cap
/// above ~1 Gbit/s. If the rate falls, the read's timeout (or a closing window, which wakes
/// the reader in any case) ends the wait and the next reading lowers the mark.
#[derive(Debug, Clone)]
pub struct ReadMark {
    cap: usize,
    mark: usize,
    since_ns: u64,
    since_bytes: u64,
}

impl ReadMark {
    /// The rate is measured over at least this long.
    pub const STEP_NS: u64 = 10_000_000;
    /// The longest time data should wait for the mark at a steady rate.
    pub const WAIT_NS: u64 = 1_000_000;

    /// A mark starting at 1 byte (the kernel's default) that never exceeds `cap`.
    pub fn new(now: u64, cap: usize) -> Self {
        ReadMark {
            cap: cap.max(1),
            mark: 1,
            since_ns: now,
            since_bytes: 0,
        }
    }

    /// After a read (or a read that timed out) at `now`, with `bytes` received in all: the
    /// new mark when it changed.
    pub fn handle_read(&mut self, now: u64, bytes: u64) -> Option<usize> {
        let elapsed = now.saturating_sub(self.since_ns);
        if elapsed < Self::STEP_NS {
            return None;
        }
        let moved = bytes.saturating_sub(self.since_bytes);
        (self.since_ns, self.since_bytes) = (now, bytes);
        let want = (u128::from(moved) * u128::from(Self::WAIT_NS) / u128::from(elapsed))
            .clamp(1, self.cap as u128) as usize;
        (want != self.mark).then(|| {
            self.mark = want;
            want
        })
    }
}

/// Totals over the counted (not omitted) intervals of some streams.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub bytes: u64,
    /// Counted time: from the end of the warm-up to the last interval's end.
    pub seconds: f64,
    pub bits_per_second: f64,
    pub retransmits: u64,
    pub packets: u64,
    pub lost: u64,
    pub out_of_order: u64,
    /// The last counted interval's jitter (us), UDP receivers.
    pub jitter_us: Option<u64>,
    /// First and last counted instants since the start (s).
    pub start_s: f64,
    pub end_s: f64,
}

/// Sums the counted intervals of `streams` (all sending or all receiving).
pub fn totals<'a>(streams: impl IntoIterator<Item = &'a StreamFigures>) -> Totals {
    let mut t = Totals::default();
    let (mut start, mut end) = (u64::MAX, 0u64);
    for s in streams {
        for i in s.intervals.iter().filter(|i| !i.omitted) {
            t.bytes += i.bytes;
            t.retransmits += i.retransmits;
            t.packets += i.packets;
            t.lost += i.lost;
            t.out_of_order += i.out_of_order;
            t.jitter_us = i.jitter_us.max(t.jitter_us);
            start = start.min(i.start_ms);
            end = end.max(i.end_ms);
        }
    }
    if end > start {
        t.start_s = start as f64 / 1e3;
        t.end_s = end as f64 / 1e3;
        t.seconds = t.end_s - t.start_s;
        t.bits_per_second = t.bytes as f64 * 8.0 / t.seconds;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn counts(bytes: u64, retransmits: u64) -> Counts {
        Counts {
            bytes,
            retransmits,
            ..Counts::default()
        }
    }

    #[test]
    fn pacer_allows_the_rate_and_says_when_more_is_due() {
        // 200 Mbit/s = 25 bytes per microsecond.
        let p = Pacer::new(1_000 * MS, 200e6);
        assert_eq!(p.allowance(1_000 * MS, 0), 0);
        assert_eq!(p.allowance(1_010 * MS, 0), 250_000);
        assert_eq!(p.allowance(1_010 * MS, 300_000), 0, "ahead");
        assert_eq!(p.due_at(300_000), 1_012 * MS);
        assert_eq!(p.quantum(), 25_000);
        // A clock before the origin allows nothing rather than wrapping.
        assert_eq!(p.allowance(0, 0), 0);
    }

    #[test]
    fn read_mark_follows_the_rate_within_its_cap() {
        let cap = 128 * 1024;
        let mut m = ReadMark::new(0, cap);
        // Not before a step has passed.
        assert_eq!(m.handle_read(5 * MS, 1_000_000), None);
        // 200 Mbit/s = 25 MB/s: 1 ms of it is 25 kB.
        assert_eq!(m.handle_read(10 * MS, 250_000), Some(25_000));
        assert_eq!(m.handle_read(20 * MS, 500_000), None, "unchanged");
        // 25 Gbit/s: 1 ms is 3.1 MB, held to the cap.
        assert_eq!(m.handle_read(30 * MS, 500_000 + 31_250_000), Some(cap));
        // Reads that time out with nothing new bring it back down to 1 byte.
        assert_eq!(m.handle_read(130 * MS, 500_000 + 31_250_000), Some(1));
        // A clock that steps back is no step at all.
        assert_eq!(m.handle_read(100 * MS, u64::MAX), None);
    }

    #[test]
    fn schedule_spreads_first_rounds_and_jitters_the_rest() {
        let hour = 3_600_000 * MS;
        let mut r = [0.25, 0.75, 0.5].into_iter();
        let mut s = Schedule::new(2, hour, 0, || r.next().unwrap());
        assert_eq!(s.poll_timeout(), Some(hour / 4));
        assert_eq!(s.handle_timeout(hour / 4 - 1, 0.5), None, "not due yet");
        // Each next round is one jittered hour after this one was due.
        assert_eq!(s.handle_timeout(hour / 4, 0.0), Some(0));
        assert_eq!(s.handle_timeout(hour * 3 / 4, 1.0), Some(1));
        assert_eq!(s.handle_timeout(hour, 0.5), None);
        assert_eq!(
            s.due,
            vec![hour / 4 + hour * 9 / 10, hour * 3 / 4 + hour * 11 / 10]
        );
        // Both due: the longer overdue goes first.
        assert_eq!(s.handle_timeout(2 * hour, 0.5), Some(0));
        assert_eq!(s.handle_timeout(2 * hour, 0.5), Some(1));
        // A round overdue by a day is not repeated for every missed hour.
        let late = 30 * hour;
        assert_eq!(s.handle_timeout(late, 0.5), Some(0));
        assert_eq!(s.due[0], late + hour / 2);
        assert!(Schedule::new(0, hour, 0, || 0.0).poll_timeout().is_none());
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
    fn datagram_loss_reorder_and_jitter_are_counted() {
        let mut d = Datagrams::default();
        // 0, 1, 3, 2 (late), 5 (4 missing); transit 1 ms except seq 3 (1.5 ms).
        for (seq, sent, recv) in [
            (0, 0, 1_000_000),
            (1, 10, 1_000_010),
            (3, 30, 1_500_030),
            (2, 20, 1_000_020),
            (5, 50, 1_000_050),
        ] {
            d.handle(seq, sent, 100, recv);
        }
        let c = d.counts;
        assert_eq!((c.packets, c.bytes, c.out_of_order, c.lost), (5, 500, 1, 1));
        assert!(c.jitter_ns.unwrap() > 0);
        assert_eq!(d.last_rx_ns, 1_000_050);
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

//! Pacing, sans-IO: a byte budget growing at a fixed rate ([`Pacer`]), and what a bulk sender
//! does next ([`Sending`]): close an interval, stop, write so many bytes, or wait. The TCP,
//! UDP and QUIC send loops only carry out its steps.

use super::meter::{Counts, Meter};
use crate::wire::throughput::IntervalBytes;

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

/// What a bulk sender does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// An interval boundary passed: sample the counters ([`Sending::sample`]).
    Sample,
    /// The test is over (planned end, or the peer is lost).
    Done,
    /// Hand this many bytes to the transport.
    Write(usize),
    /// Nothing may go before this many ns from now.
    Wait(u64),
}

/// A sending stream's schedule: its meter, the planned end, and the optional pacer.
#[derive(Debug, Clone)]
pub struct Sending {
    meter: Meter,
    end_ns: u64,
    pacer: Option<Pacer>,
    /// Writes are whole multiples of this (a UDP datagram; 1 for a byte stream).
    unit: usize,
    /// A paced write waits until at least this much is due (or `max_write`).
    min_write: u64,
    max_write: usize,
}

impl Sending {
    /// A stream that ends at `end_ns` and writes at most `max_write` bytes at once, in whole
    /// `unit`s; paced at `rate` bits/s from `now` if given (a paced byte stream hands over at
    /// least a millisecond's worth at a time, a datagram stream any datagram that is due).
    pub fn new(
        meter: Meter,
        end_ns: u64,
        rate: Option<f64>,
        now: u64,
        unit: usize,
        max_write: usize,
    ) -> Sending {
        let pacer = rate.map(|r| Pacer::new(now, r));
        let unit = unit.max(1);
        let min_write = match (&pacer, unit) {
            (Some(p), 1) => p.quantum(),
            _ => 1,
        };
        Sending {
            meter,
            end_ns,
            pacer,
            unit,
            min_write,
            max_write: max_write.max(unit),
        }
    }

    /// The next step at `now` with `sent` bytes gone; `aborted` once the peer is lost.
    pub fn poll(&self, now: u64, sent: u64, aborted: bool) -> Step {
        if self.meter.is_due(now) {
            return Step::Sample;
        }
        if now >= self.end_ns || aborted {
            return Step::Done;
        }
        let Some(p) = &self.pacer else {
            return Step::Write(self.max_write);
        };
        let want = self.min_write.min(self.max_write as u64);
        let allowance = p.allowance(now, sent);
        if allowance >= want {
            let unit = self.unit as u64;
            let bytes = allowance.div_ceil(unit) * unit;
            Step::Write(bytes.min(self.max_write as u64) as usize)
        } else {
            Step::Wait(p.due_at(sent + want).saturating_sub(now).max(1))
        }
    }

    /// Closes the interval at `now` with the stream's cumulative counts.
    pub fn sample(&mut self, now: u64, counts: Counts) -> Option<IntervalBytes> {
        self.meter.handle_sample(now, counts)
    }

    /// When the next interval closes or the test ends, whichever is first.
    pub fn next_deadline(&self) -> u64 {
        self.meter
            .poll_timeout()
            .map_or(self.end_ns, |t| t.min(self.end_ns))
    }

    /// The last sample after the planned end; returns the interval it closed.
    pub fn finish(&mut self, now: u64, counts: Counts) -> Option<IntervalBytes> {
        self.meter.finish(now, counts)
    }

    pub fn into_records(self) -> Vec<IntervalBytes> {
        self.meter.into_records()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
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
    fn a_paced_byte_stream_writes_a_millisecond_at_a_time() {
        // 200 Mbit/s: 25 kB per ms; writes of at most 128 KiB.
        let meter = Meter::new(0, 1_000 * MS, 0, 10_000 * MS);
        let s = Sending::new(meter, 10_000 * MS, Some(200e6), 0, 1, 128 * 1024);
        assert_eq!(s.poll(0, 0, false), Step::Wait(MS));
        assert_eq!(s.poll(MS, 0, false), Step::Write(25_000));
        assert_eq!(s.poll(MS + 1, 25_000, false), Step::Wait(MS - 1));
        // Far behind: one write of at most 128 KiB.
        assert_eq!(s.poll(100 * MS, 25_000, false), Step::Write(128 * 1024));
        assert_eq!(s.poll(1_000 * MS, 0, false), Step::Sample);
        assert_eq!(s.poll(999 * MS, 0, true), Step::Done, "the peer is lost");
        let mut s = s;
        s.sample(1_000 * MS, Counts::default());
        assert_eq!(s.next_deadline(), 2_000 * MS);
    }

    #[test]
    fn a_datagram_stream_sends_every_datagram_due_and_an_unpaced_one_everything() {
        let meter = Meter::new(0, 1_000 * MS, 0, 10_000 * MS);
        // 1 Mbit/s of 1,000-byte datagrams: one every 8 ms; bursts of at most 4.
        let s = Sending::new(meter.clone(), 10_000 * MS, Some(1e6), 0, 1_000, 4_000);
        // 1 Mbit/s is a byte every 8 us.
        assert_eq!(s.poll(0, 0, false), Step::Wait(8_000));
        assert_eq!(
            s.poll(8_000, 0, false),
            Step::Write(1_000),
            "a part is due: a whole datagram goes"
        );
        assert_eq!(s.poll(8 * MS, 1_000, false), Step::Wait(8_000));
        // 100 ms in, 11.5 kB behind: a burst of at most 4.
        assert_eq!(s.poll(100 * MS, 1_000, false), Step::Write(4_000));
        let unpaced = Sending::new(meter, 10_000 * MS, None, 0, 1, 65_536);
        assert_eq!(unpaced.poll(5, 0, false), Step::Write(65_536));
    }
}

//! A side's per-interval figures become the totals a person reads, sans-IO: bytes and bits
//! per second over the counted (not omitted) time.

use crate::wire::throughput::StreamFigures;

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
    use crate::wire::throughput::IntervalBytes;

    #[test]
    fn omitted_intervals_and_the_warm_up_time_are_left_out() {
        let iv = |start_ms, end_ms, bytes, omitted| IntervalBytes {
            start_ms,
            end_ms,
            bytes,
            retransmits: 1,
            omitted,
            packets: 0,
            lost: 0,
            out_of_order: 0,
            jitter_us: None,
        };
        let s = StreamFigures {
            stream: 0,
            sender: true,
            intervals: vec![
                iv(0, 1_000, 999, true),
                iv(1_000, 2_000, 100, false),
                iv(2_000, 3_500, 150, false),
            ],
            tcp: None,
            quic: None,
        };
        let t = totals([&s, &s]);
        assert_eq!((t.bytes, t.retransmits), (500, 4));
        assert_eq!((t.start_s, t.end_s, t.seconds), (1.0, 3.5, 2.5));
        assert_eq!(t.bits_per_second, 500.0 * 8.0 / 2.5);
        assert_eq!(totals([]), Totals::default());
    }
}

//! What a UDP throughput receiver learns from its datagrams, sans-IO: delivered bytes and
//! datagrams, those missing from the sequence, late ones, and RFC 3550 jitter on the
//! transit-time difference (sender and receiver clock offsets cancel).

use super::meter::Counts;
use crate::probe::jitter::Rfc3550;

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
    jitter: Rfc3550,
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
        if let Some(j) = self.jitter.handle_transit(now as i64 - sent_ns as i64) {
            c.jitter_ns = Some(j as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Transit 1 ms, 1 ms, 1.5 ms, 1 ms, 1 ms: RFC 3550 gives 0, 31,250, 60,546.9 and
        // 56,762.7 ns after the second to fifth datagrams.
        assert_eq!(c.jitter_ns, Some(56_762));
        assert_eq!(d.last_rx_ns, 1_000_050);
    }
}

//! How much a TCP throughput receiver lets the kernel queue before its read wakes
//! (SO_RCVLOWAT), sans-IO.

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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
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
}

//! The replay window of an authenticated STAMP session at the reflector: a captured test
//! packet sent again is refused, since its HMAC is still right (RFC 8762 leaves replay
//! protection to the implementation). Sans-IO: sequence numbers and timestamps in, a
//! verdict out.
//!
//! Per session (source address and port), as IPsec's anti-replay window (RFC 4303 3.4.3)
//! over the Session-Sender's sequence numbers: the highest seen and a bitmap of the
//! [`WINDOW`] below it. A number above the highest moves the window; one inside it is
//! taken once; one below it is old. A sender that restarts on the same address and port
//! starts its numbers again: such a packet is taken (and the window starts again from it)
//! only when its authenticated timestamp (T1) is later than every T1 the session has seen,
//! which a captured packet's cannot be. And a packet whose T1 is more than
//! [`STALE_SECONDS`] before the latest is refused whatever its number, so the captures of a
//! sender from before its restart cannot move the window of the one after it (a capture
//! replayed within those seconds of its sending may be taken once). A sender whose clock
//! steps back by more than that is refused as stale until its clock has caught up,
//! counted by that reason.

/// Sequence numbers below the highest that are still taken once each (reordering this
/// deep is taken; deeper is refused as old).
pub const WINDOW: u32 = 1024;

const WORDS: usize = (WINDOW / 64) as usize;

/// How far a packet's T1 may be behind the session's latest: reordering, never this much.
pub const STALE_SECONDS: u64 = 10;

/// Why a test packet was refused as a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Replay {
    #[error("timestamp {stale_s} s before the session's latest: more than {STALE_SECONDS} s")]
    Stale { stale_s: u64 },
    #[error("sequence number {0} already taken")]
    Duplicate(u32),
    #[error("sequence number {seq} is more than {WINDOW} below the highest taken ({highest}) and its timestamp is not the session's latest")]
    Old { seq: u32, highest: u32 },
}

/// One session's window.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    highest: u32,
    /// Bit `i` set: `highest - i` was taken (bit 0 is `highest` itself).
    seen: [u64; WORDS],
    /// The latest T1 (raw wire timestamp) taken.
    latest_t1: u64,
}

impl ReplayWindow {
    /// A window whose first packet is `seq`, sent at `t1`.
    pub fn new(seq: u32, t1: u64) -> ReplayWindow {
        let mut w = ReplayWindow {
            highest: seq,
            seen: [0; WORDS],
            latest_t1: t1,
        };
        w.mark(0);
        w
    }

    /// Takes `seq` (sent at `t1`, as the authenticated packet says) or says why not.
    pub fn take(&mut self, seq: u32, t1: u64) -> Result<(), Replay> {
        // Both timestamp formats carry whole seconds in the upper 32 bits.
        let behind_s = self.latest_t1.saturating_sub(t1) >> 32;
        if behind_s > STALE_SECONDS {
            return Err(Replay::Stale { stale_s: behind_s });
        }
        let ahead = seq.wrapping_sub(self.highest);
        if ahead != 0 && ahead < u32::MAX / 2 {
            self.slide(ahead);
            self.highest = seq;
            self.mark(0);
        } else {
            let behind = self.highest.wrapping_sub(seq);
            if behind < WINDOW {
                if self.marked(behind) {
                    return Err(Replay::Duplicate(seq));
                }
                self.mark(behind);
            } else if t1 > self.latest_t1 {
                // A restarted sender: its numbers start again, its clock went on.
                *self = ReplayWindow::new(seq, t1);
            } else {
                return Err(Replay::Old {
                    seq,
                    highest: self.highest,
                });
            }
        }
        self.latest_t1 = self.latest_t1.max(t1);
        Ok(())
    }

    fn marked(&self, behind: u32) -> bool {
        let i = behind as usize;
        self.seen[i / 64] & (1 << (i % 64)) != 0
    }

    fn mark(&mut self, behind: u32) {
        let i = behind as usize;
        self.seen[i / 64] |= 1 << (i % 64);
    }

    /// Moves every bit `by` places further behind (bits past the window fall off).
    fn slide(&mut self, by: u32) {
        if by >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let (words, bits) = ((by / 64) as usize, by % 64);
        for i in (0..WORDS).rev() {
            let from = i.checked_sub(words);
            let hi = from.map_or(0, |f| self.seen[f]);
            let lo = from
                .and_then(|f| f.checked_sub(1))
                .map_or(0, |f| self.seen[f]);
            self.seen[i] = if bits == 0 {
                hi
            } else {
                (hi << bits) | (lo >> (64 - bits))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn each_number_once_in_any_order_within_the_window() {
        let mut w = ReplayWindow::new(10, 1);
        assert_eq!(w.take(10, 1), Err(Replay::Duplicate(10)));
        assert_eq!(w.take(12, 3), Ok(()));
        assert_eq!(w.take(11, 2), Ok(()), "reordered");
        assert_eq!(w.take(11, 2), Err(Replay::Duplicate(11)));
        assert_eq!(w.take(12 + 2000, 5), Ok(()));
        assert_eq!(
            w.take(12 + 2000 - 1023, 4),
            Ok(()),
            "the window's last place"
        );
        assert_eq!(
            w.take(12, 3),
            Err(Replay::Old {
                seq: 12,
                highest: 2012
            }),
            "a capture replayed after the window moved on"
        );
    }

    /// T1 of `s` seconds after an NTP-era instant, as the wire carries it.
    fn at(s: u64) -> u64 {
        (3_900_000_000 + s) << 32
    }

    #[test]
    fn a_restarted_sender_starts_again_a_replay_does_not() {
        let mut w = ReplayWindow::new(5_000, at(100));
        w.take(5_001, at(100)).unwrap();
        // The sender restarts on the same port a minute later: sequence 0, a later clock.
        assert_eq!(w.take(0, at(160)), Ok(()));
        assert_eq!(w.take(1, at(160)), Ok(()));
        assert_eq!(w.take(0, at(160)), Err(Replay::Duplicate(0)));
        // Captures of the sender before its restart: numbers ahead, clocks a minute old.
        assert_eq!(w.take(5_002, at(100)), Err(Replay::Stale { stale_s: 60 }));
        assert_eq!(w.take(2, at(161)), Ok(()), "the window did not move");
        // Reordering by a few seconds is not stale.
        assert_eq!(w.take(3, at(158)), Ok(()));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut w = ReplayWindow::new(u32::MAX - 1, 1);
        assert_eq!(w.take(u32::MAX, 2), Ok(()));
        assert_eq!(w.take(0, 3), Ok(()));
        assert_eq!(w.take(1, 4), Ok(()));
        assert_eq!(w.take(u32::MAX, 2), Err(Replay::Duplicate(u32::MAX)));
    }

    proptest! {
        /// Against a set of every number taken: a number within the window is taken iff it
        /// was not before; nothing taken twice, whatever the order.
        #[test]
        fn the_bitmap_is_a_set_of_the_window(
            steps in proptest::collection::vec(0u32..3000, 1..400),
        ) {
            let mut w = ReplayWindow::new(0, 0);
            let mut taken = BTreeSet::from([0u32]);
            let mut highest = 0u32;
            for s in steps {
                // t1 0: never "later", so a number below the window is always refused.
                let got = w.take(s, 0);
                let fresh = !taken.contains(&s);
                let inside = s > highest || highest - s < WINDOW;
                prop_assert_eq!(got.is_ok(), fresh && inside, "seq {} highest {}", s, highest);
                if got.is_ok() {
                    taken.insert(s);
                    highest = highest.max(s);
                }
            }
        }
    }
}

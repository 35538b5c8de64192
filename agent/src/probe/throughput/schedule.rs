//! When scheduled throughput tests are due, per peer, sans-IO: the caller brings the clock
//! and the random numbers.

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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
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
}

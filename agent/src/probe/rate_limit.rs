//! The STAMP reflector's admission: how many test packets per second it answers from one
//! source address and in all, each limit a token bucket kept as the generic cell rate
//! algorithm (one "theoretical arrival time" per bucket, integer nanoseconds). A packet over
//! either limit is not answered, before it is decoded or its HMAC computed, so a flood costs
//! the reflector a receive and a table lookup, and the replies it does send never exceed
//! the limits (each reply is no longer than its test packet, so bytes out stay below bytes in).
//!
//! Each limit lets a burst of a tenth of a second's packets (at least one) through at once.
//! The per-source table is bounded: a source whose bucket is full again holds no state, and a
//! new source finding the table full of busy ones is refused like one over its limit.

use std::collections::HashMap;
use std::net::IpAddr;

/// Test packets answered per second: from one source address, and from all together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_source: u32,
    pub total: u32,
}

impl RateLimits {
    /// The defaults (`reflector.max_rate_per_source` and `reflector.max_rate` in
    /// `agent.toml`): twice the fastest one sender session probes (1 ms intervals), and
    /// 50,000 in all (at 1,500 bytes, 600 Mbit/s of replies at most).
    pub const DEFAULT: RateLimits = RateLimits {
        per_source: 2_000,
        total: 50_000,
    };
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::DEFAULT
    }
}

/// One token bucket as GCRA: packets are admitted while the theoretical arrival time runs
/// no more than the burst tolerance ahead of now.
#[derive(Debug, Clone, Copy)]
struct Cell {
    /// Nanoseconds between packets at the limit.
    interval_ns: u64,
    /// How far ahead of now the theoretical arrival time may run: (burst - 1) intervals.
    tolerance_ns: u64,
}

impl Cell {
    fn new(per_second: u32) -> Cell {
        let per_second = u64::from(per_second.max(1));
        let interval_ns = (1_000_000_000 / per_second).max(1);
        let burst = (per_second / 10).max(1);
        Cell {
            interval_ns,
            tolerance_ns: (burst - 1) * interval_ns,
        }
    }

    /// The bucket's next theoretical arrival time if a packet at `now` is admitted, `None`
    /// if it is over the limit.
    fn next(&self, tat: u64, now: u64) -> Option<u64> {
        let tat = tat.max(now);
        (tat - now <= self.tolerance_ns).then_some(tat + self.interval_ns)
    }
}

/// The reflector's admission state.
#[derive(Debug)]
pub struct Admission {
    per_source: Cell,
    total: Cell,
    total_tat: u64,
    sources: HashMap<IpAddr, u64>,
    max_sources: usize,
    /// When the full table was last swept (a sweep is at most once per millisecond, so a
    /// table full of busy sources does not cost a scan per packet).
    swept_ns: Option<u64>,
}

impl Admission {
    /// Limits `limits`, remembering at most `max_sources` busy sources at once.
    pub fn new(limits: RateLimits, max_sources: usize) -> Admission {
        Admission {
            per_source: Cell::new(limits.per_source),
            total: Cell::new(limits.total),
            total_tat: 0,
            sources: HashMap::new(),
            max_sources: max_sources.max(1),
            swept_ns: None,
        }
    }

    /// Whether a test packet from `ip` at monotonic time `now_ns` is answered; if it is, it
    /// counts against both limits, if not, against neither.
    pub fn admit(&mut self, ip: IpAddr, now_ns: u64) -> bool {
        let ip = ip.to_canonical();
        let known = self.sources.get(&ip).copied();
        if known.is_none() && self.sources.len() >= self.max_sources && !self.sweep(now_ns) {
            return false;
        }
        let Some(source_tat) = self.per_source.next(known.unwrap_or(0), now_ns) else {
            return false;
        };
        let Some(total_tat) = self.total.next(self.total_tat, now_ns) else {
            return false;
        };
        self.total_tat = total_tat;
        self.sources.insert(ip, source_tat);
        true
    }

    /// Sources with a bucket of their own now (busy within their last burst).
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Forgets sources whose bucket is full again; whether there is room now.
    fn sweep(&mut self, now_ns: u64) -> bool {
        if self.swept_ns.is_some_and(|t| now_ns < t + 1_000_000) {
            return false;
        }
        self.swept_ns = Some(now_ns);
        self.sources.retain(|_, tat| *tat > now_ns);
        self.sources.len() < self.max_sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    fn ip(last: u8) -> IpAddr {
        [10, 0, 0, last].into()
    }

    /// Packets from `ip` every `every_ns` over `for_ns` from `start`: how many were admitted.
    fn offer(a: &mut Admission, ip: IpAddr, start: u64, every_ns: u64, for_ns: u64) -> u64 {
        (0..for_ns / every_ns)
            .filter(|i| a.admit(ip, start + i * every_ns))
            .count() as u64
    }

    #[test]
    fn a_flood_gets_the_limit_and_its_burst() {
        let mut a = Admission::new(
            RateLimits {
                per_source: 1_000,
                total: 1_000_000,
            },
            16,
        );
        // 100k/s for 2 s from one source: a burst of 100, then one per millisecond.
        let took = offer(&mut a, ip(1), S, 10_000, 2 * S);
        assert!((2_099..=2_101).contains(&took), "{took}");
    }

    #[test]
    fn a_sender_under_its_limit_loses_nothing_beside_a_flood() {
        let mut a = Admission::new(
            RateLimits {
                per_source: 1_000,
                total: 5_000,
            },
            16,
        );
        let (mut flood, mut good) = (0, 0);
        // The flood at 100k/s, the good sender at 200/s, interleaved over one second.
        for i in 0..100_000u64 {
            let now = S + i * 10_000;
            flood += u64::from(a.admit(ip(1), now));
            if i % 500 == 0 {
                good += u64::from(a.admit(ip(2), now + 1));
            }
        }
        assert_eq!(good, 200);
        assert!((1_099..=1_101).contains(&flood), "{flood}");
    }

    #[test]
    fn the_total_limit_holds_over_many_sources_and_refusals_cost_nothing() {
        let mut a = Admission::new(
            RateLimits {
                per_source: 1_000,
                total: 2_000,
            },
            1_000,
        );
        // 100 sources at 100/s each (10k/s in all) for a second: the total's 2,000 and its
        // burst of 200 are answered, and every source still had some.
        let mut took = [0u32; 100];
        for i in 0..10_000u64 {
            let s = (i % 100) as usize;
            took[s] += u32::from(a.admit(ip(s as u8), S + i * 100_000));
        }
        let sum: u32 = took.iter().sum();
        assert!((2_199..=2_201).contains(&sum), "{sum}");
        assert!(took.iter().all(|&t| t > 0), "{took:?}");
        // A refused packet did not move the per-source bucket: one source alone at 900/s
        // afterwards is answered whole.
        let later = 10 * S;
        assert_eq!(offer(&mut a, ip(7), later, 1_111_112, S), 899);
    }

    #[test]
    fn the_source_table_is_bounded_and_forgets_idle_sources() {
        let mut a = Admission::new(
            RateLimits {
                per_source: 1_000,
                total: 10_000_000,
            },
            4,
        );
        for i in 0..4 {
            assert!(a.admit(ip(i), S));
        }
        assert!(!a.admit(ip(9), S + 1), "table full of busy sources");
        assert!(
            !a.admit(ip(9), S + 2),
            "no second sweep within a millisecond"
        );
        // A millisecond later every bucket is full again: their state goes, a new source fits.
        assert!(a.admit(ip(9), S + 2 * MS));
        assert_eq!(a.source_count(), 1);
        // IPv4-mapped IPv6 is the same source as IPv4.
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert!(a.admit(mapped, S + 2 * MS + 1));
        assert_eq!(a.source_count(), 1);
    }
}

//! The host's clocks: CLOCK_MONOTONIC (schedules, timeouts, round trips; the clock the probe
//! timers arm) and CLOCK_REALTIME in Unix nanoseconds (the clock SO_TIMESTAMPNS stamps with,
//! what goes on the wire), read together as a [`Moment`]; and the STAMP error estimate read
//! from the kernel's NTP state (adjtimex), or declared in the configuration.

use crate::probe::Moment;
use crate::wire::error_estimate::ClockErrorSource;
use crate::wire::ErrorEstimate;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec.max(0) as u64) * 1_000_000_000 + ts.tv_nsec.max(0) as u64
}

/// Wall-clock time now, Unix nanoseconds.
pub fn now_unix_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}

/// Monotonic time now, nanoseconds since boot (never steps).
pub fn now_mono_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// Both clocks now, monotonic first so a wall reading right before a send is the last one.
pub fn now() -> Moment {
    let mono_ns = now_mono_ns();
    Moment {
        mono_ns,
        wall_ns: now_unix_ns(),
    }
}

/// Both clocks at one instant, for mapping a wall-clock stamp onto the monotonic clock: the
/// monotonic reading between two wall readings, with the wall time their midpoint, the
/// tightest of three tries. [`now`]'s two plain reads are off by however long the thread
/// was preempted between them; mapping a receive stamp through such a pair took that time
/// off a round trip (a 1 us loopback RTT was recorded once on a busy CI machine). Here a
/// preemption widens its try, which then loses to a tight one.
pub fn correlated() -> Moment {
    let mut best: Option<(u64, Moment)> = None;
    for _ in 0..3 {
        let before = now_unix_ns();
        let mono_ns = now_mono_ns();
        let after = now_unix_ns();
        let width = after.saturating_sub(before);
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((
                width,
                Moment {
                    mono_ns,
                    wall_ns: before + width / 2,
                },
            ));
        }
    }
    best.map(|(_, m)| m).unwrap_or_else(now)
}

/// A kernel receive timestamp (wall clock) as a [`Moment`]: its monotonic time is the
/// monotonic clock now, less how long ago the wall clock says the packet arrived. Read right
/// after the receive, so a step between arrival and reading (microseconds) is all it could
/// miss.
pub fn moment_of_wall(wall_ns: u64) -> Moment {
    moment_before(correlated(), wall_ns)
}

/// The moment whose wall time is `wall_ns`, seen from `now` (read after it).
pub fn moment_before(now: Moment, wall_ns: u64) -> Moment {
    let ago = now.wall_ns.saturating_sub(wall_ns);
    Moment {
        mono_ns: now.mono_ns.saturating_sub(ago),
        wall_ns,
    }
}

/// The clock's state as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockState {
    /// False when the kernel says STA_UNSYNC (no NTP/PTP discipline).
    pub synchronized: bool,
    /// The kernel's maximum error (maxerror), nanoseconds.
    pub max_error_ns: u64,
}

impl ClockState {
    pub fn error_estimate(self) -> ErrorEstimate {
        ErrorEstimate::from_error_ns(self.max_error_ns, self.synchronized)
    }
}

/// Reads adjtimex without changing anything. If the call fails, the clock is reported as
/// unsynchronized with the kernel's own worst case (16 s).
pub fn clock_state() -> ClockState {
    // SAFETY: modes = 0 makes adjtimex read-only; the struct is fully initialized.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::adjtimex(&mut tx) };
    if rc < 0 {
        return ClockState {
            synchronized: false,
            max_error_ns: 16_000_000_000,
        };
    }
    ClockState {
        synchronized: rc != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0,
        max_error_ns: (tx.maxerror.max(0) as u64).saturating_mul(1_000),
    }
}

/// The clock's STAMP error estimate, re-read from the kernel at most once a second: it moves
/// slowly, and adjtimex on every probe or reflected packet would be a syscall per packet.
pub struct EstimateCache {
    estimate: ErrorEstimate,
    read_at_mono_ns: u64,
    source: ClockErrorSource,
}

impl EstimateCache {
    pub fn new(source: ClockErrorSource) -> EstimateCache {
        EstimateCache {
            estimate: estimate_of(source),
            read_at_mono_ns: now_mono_ns(),
            source,
        }
    }

    pub fn get(&mut self) -> ErrorEstimate {
        if let ClockErrorSource::Declared(_) = self.source {
            return self.estimate;
        }
        let now = now_mono_ns();
        if now.saturating_sub(self.read_at_mono_ns) >= 1_000_000_000 {
            self.estimate = clock_state().error_estimate();
            self.read_at_mono_ns = now;
        }
        self.estimate
    }
}

impl Default for EstimateCache {
    fn default() -> Self {
        Self::new(ClockErrorSource::Kernel)
    }
}

fn estimate_of(source: ClockErrorSource) -> ErrorEstimate {
    match source {
        ClockErrorSource::Kernel => clock_state().error_estimate(),
        ClockErrorSource::Declared(ns) => ErrorEstimate::from_error_ns(ns, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_are_sane() {
        let (a, m) = (now(), now_mono_ns());
        assert!(m >= a.mono_ns, "monotonic");
        let k = moment_of_wall(a.wall_ns);
        assert_eq!(k.wall_ns, a.wall_ns);
        // The same instant mapped back: within the few microseconds between the reads.
        assert!(k.mono_ns.abs_diff(a.mono_ns) < 10_000_000, "{k:?} vs {a:?}");
        let state = clock_state();
        let est = state.error_estimate();
        assert_eq!(est.synchronized, state.synchronized);
        assert!(est.error_ns() + 1 >= state.max_error_ns.min(u64::MAX / 2));
    }

    #[test]
    fn a_correlated_pair_lies_between_the_reads_around_it() {
        for _ in 0..1000 {
            let (w0, m0) = (now_unix_ns(), now_mono_ns());
            let c = correlated();
            let (m1, w1) = (now_mono_ns(), now_unix_ns());
            assert!((m0..=m1).contains(&c.mono_ns), "{c:?} not in {m0}..={m1}");
            assert!((w0..=w1).contains(&c.wall_ns), "{c:?} not in {w0}..={w1}");
        }
        // A stamp a millisecond old maps a millisecond back on the monotonic clock (to
        // within the reads' own spread, microseconds).
        let c = correlated();
        let k = moment_before(c, c.wall_ns - 1_000_000);
        assert_eq!(c.mono_ns - k.mono_ns, 1_000_000);
    }
}

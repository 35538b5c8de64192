//! The host clock: CLOCK_REALTIME in Unix nanoseconds (the clock SO_TIMESTAMPNS stamps with),
//! and the STAMP error estimate read from the kernel's NTP state (adjtimex).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::wire::ErrorEstimate;

/// Wall-clock time now, Unix nanoseconds.
pub fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
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
    read_at: std::time::Instant,
}

impl EstimateCache {
    pub fn new() -> EstimateCache {
        EstimateCache {
            estimate: clock_state().error_estimate(),
            read_at: std::time::Instant::now(),
        }
    }

    pub fn get(&mut self) -> ErrorEstimate {
        if self.read_at.elapsed() >= std::time::Duration::from_secs(1) {
            self.estimate = clock_state().error_estimate();
            self.read_at = std::time::Instant::now();
        }
        self.estimate
    }
}

impl Default for EstimateCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_are_sane() {
        let a = now_unix_ns();
        assert!(a > 1_700_000_000_000_000_000);
        let state = clock_state();
        let est = state.error_estimate();
        assert_eq!(est.synchronized, state.synchronized);
        assert!(est.error_ns() + 1 >= state.max_error_ns.min(u64::MAX / 2));
    }
}

//! Which tests may share the machine. libtest runs two tests at once (one per core here), from
//! any module of the binary; every test first takes its turn from here:
//! - [`alone`]: the lab cases, and the package test (a release build on both cores). Their
//!   tolerances (tens of microseconds of one-way delay, a QUIC handshake within 5 ms, 95% of a
//!   200 Mbit/s link through the emulator) were measured with nothing else running, as when
//!   they were a test binary of their own. The turn starts once the machine is quiet (what an
//!   earlier test left winding down has finished), and a test that fails during it says how
//!   busy the machine was: a verdict moved by a busy host is told from one moved by the code.
//! - [`shared`]: everything else, beside each other as before (throughput tests beside
//!   throughput tests, loopback agents beside them), but never beside a lab case.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

static MACHINE: RwLock<()> = RwLock::new(());

/// Longest wait for a quiet machine before a test alone starts anyway (and says so).
const QUIET_WITHIN: Duration = Duration::from_secs(10);
/// A machine is quiet when its CPUs were busy less than this share of a sample.
const QUIET_BELOW: f64 = 0.15;
const SAMPLE: Duration = Duration::from_millis(300);

/// The machine held by one test; see [`alone`].
pub(crate) struct Alone {
    _turn: RwLockWriteGuard<'static, ()>,
    since: Instant,
    cpu: Option<Cpu>,
}

/// Waits until no other test runs and the machine is quiet, then holds it until the guard
/// drops.
pub(crate) fn alone() -> Alone {
    // A test that panicked while holding the lock poisons it; the next one still runs.
    let turn = MACHINE.write().unwrap_or_else(|p| p.into_inner());
    let waited = Instant::now();
    while let Some(before) = Cpu::read() {
        std::thread::sleep(SAMPLE);
        let Some(after) = Cpu::read() else { break };
        let busy = after.since(&before).busy;
        if busy < QUIET_BELOW {
            break;
        }
        if waited.elapsed() >= QUIET_WITHIN {
            eprintln!(
                "machine: still busy after {QUIET_WITHIN:?} (CPUs {:.0}% busy over the last {SAMPLE:?}); starting anyway",
                busy * 100.0
            );
            break;
        }
    }
    if waited.elapsed() > SAMPLE * 2 {
        eprintln!("machine: waited {:?} for a quiet machine", waited.elapsed());
    }
    Alone {
        _turn: turn,
        since: Instant::now(),
        cpu: Cpu::read(),
    }
}

impl Drop for Alone {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if let (Some(start), Some(end)) = (&self.cpu, Cpu::read()) {
            let u = end.since(start);
            eprintln!(
                "machine: during this test ({:.1} s) the CPUs were {:.0}% busy, some task waited for a CPU {:.1}% of the time, and the hypervisor stole {:.1}% of the CPUs' time",
                self.since.elapsed().as_secs_f64(),
                u.busy * 100.0,
                u.waited * 100.0,
                u.stolen * 100.0
            );
        }
    }
}

/// Waits while a test runs alone, then shares the machine with other shared tests until the
/// guard drops.
pub(crate) fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|p| p.into_inner())
}

/// The kernel's CPU accounting at one moment: pressure stall (`/proc/pressure/cpu`, the time
/// some runnable task waited for a CPU) and the CPUs' time by state (`/proc/stat`).
struct Cpu {
    at: Instant,
    waited_us: u64,
    idle: u64,
    steal: u64,
    total: u64,
}

/// Shares of the time between two readings.
struct Usage {
    /// Of the CPUs' time, not idle (nor waiting for I/O).
    busy: f64,
    /// Of the wall time, some task waited for a CPU.
    waited: f64,
    /// Of the CPUs' time, stolen by the hypervisor.
    stolen: f64,
}

impl Cpu {
    /// `None` where the kernel has no pressure stall information.
    fn read() -> Option<Cpu> {
        let psi = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
        let waited_us = psi
            .lines()
            .find(|l| l.starts_with("some "))?
            .split_whitespace()
            .find_map(|f| f.strip_prefix("total="))?
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let jiffies: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        Some(Cpu {
            at: Instant::now(),
            waited_us,
            // user nice system idle iowait irq softirq steal
            idle: jiffies.get(3)? + jiffies.get(4)?,
            steal: *jiffies.get(7)?,
            total: jiffies.iter().take(8).sum(),
        })
    }

    /// The shares of the time since `earlier`.
    fn since(&self, earlier: &Cpu) -> Usage {
        let wall_us = self.at.duration_since(earlier.at).as_micros().max(1) as f64;
        let total = self.total.saturating_sub(earlier.total).max(1) as f64;
        let idle = self.idle.saturating_sub(earlier.idle) as f64;
        Usage {
            busy: 1.0 - idle / total,
            waited: self.waited_us.saturating_sub(earlier.waited_us) as f64 / wall_us,
            stolen: self.steal.saturating_sub(earlier.steal) as f64 / total,
        }
    }
}

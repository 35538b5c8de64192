//! Which tests may share the machine. libtest runs two tests at once (one per core here), from
//! any module of the binary; every test first takes its turn from here:
//! - [`alone`]: the lab cases, and the package test (a release build on both cores). Their tolerances (tens of microseconds of one-way delay, a
//!   QUIC handshake within 5 ms, 95% of a 200 Mbit/s link through the emulator) were
//!   measured with nothing else running, as when they were a test binary of their own.
//! - [`shared`]: everything else, beside each other as before (throughput tests beside
//!   throughput tests, loopback agents beside them), but never beside a lab case.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static MACHINE: RwLock<()> = RwLock::new(());

/// Waits until no other test runs, then holds the machine until the guard drops.
pub(crate) fn alone() -> RwLockWriteGuard<'static, ()> {
    // A test that panicked while holding the lock poisons it; the next one still runs.
    MACHINE.write().unwrap_or_else(|p| p.into_inner())
}

/// Waits while a test runs alone, then shares the machine with other shared tests until the
/// guard drops.
pub(crate) fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|p| p.into_inner())
}

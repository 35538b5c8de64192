//! A deadline timer with sub-millisecond precision for the probe schedule: a timerfd armed
//! at an absolute CLOCK_MONOTONIC deadline (the clock of schedules and timeouts, which a
//! wall-clock step cannot move), awaited through tokio. tokio's own timer wheel rounds every
//! deadline up to a 1 ms tick, which would make a 1 ms probe interval drift and skip slots.
//! How late it fires is a benchmark figure (`cargo run --release -p xcbench-agent --example
//! timer_lateness`), not a test assertion.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

pub struct DeadlineTimer {
    fd: AsyncFd<OwnedFd>,
}

impl DeadlineTimer {
    pub fn new() -> io::Result<DeadlineTimer> {
        // SAFETY: timerfd_create returns a new descriptor we own, or -1.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a valid descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd is moved in and stays open, the same descriptor, for as long as
        // the AsyncFd lives.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(DeadlineTimer { fd })
    }

    /// Fires at `deadline_mono_ns` (at once if it has passed); `None` disarms.
    pub fn arm(&self, deadline_mono_ns: Option<u64>) -> io::Result<()> {
        let value = match deadline_mono_ns {
            // An all-zero it_value disarms, so a deadline of 0 becomes 1 ns.
            Some(ns) => libc::timespec {
                tv_sec: (ns.max(1) / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns.max(1) % 1_000_000_000) as libc::c_long,
            },
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: valid descriptor and a fully initialized itimerspec.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits until the armed deadline passes.
    pub async fn wait(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a local buffer.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    expirations.as_mut_ptr().cast(),
                    expirations.len(),
                )
            };
            if n == 8 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::clock::now_mono_ns;

    #[tokio::test]
    async fn fires_at_its_deadline_and_never_before() {
        let t = DeadlineTimer::new().unwrap();
        for _ in 0..20 {
            let deadline = now_mono_ns() + 1_300_000;
            t.arm(Some(deadline)).unwrap();
            t.wait().await.unwrap();
            assert!(now_mono_ns() >= deadline);
        }
        // A deadline in the past fires at once; so does 0 (which timerfd would read as off).
        t.arm(Some(1)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), t.wait())
            .await
            .expect("a past deadline fires")
            .unwrap();
        t.arm(Some(0)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), t.wait())
            .await
            .expect("deadline 0 fires")
            .unwrap();
        // Disarmed, it stays quiet.
        t.arm(None).unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), t.wait())
                .await
                .is_err()
        );
    }
}

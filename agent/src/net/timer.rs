//! A deadline timer with sub-millisecond precision for the probe schedule: a timerfd armed
//! at an absolute CLOCK_REALTIME deadline (the clock of our Unix-ns timestamps), awaited
//! through tokio. tokio's own timer wheel rounds every deadline up to a 1 ms tick, which
//! would make a 1 ms probe interval drift and skip slots.

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
            libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
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

    /// Fires at `deadline_unix_ns` (at once if it has passed); `None` disarms.
    pub fn arm(&self, deadline_unix_ns: Option<u64>) -> io::Result<()> {
        let value = match deadline_unix_ns {
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
    use crate::net::clock::now_unix_ns;

    #[tokio::test]
    async fn fires_within_a_fraction_of_a_millisecond() {
        let t = DeadlineTimer::new().unwrap();
        let mut worst = 0;
        for _ in 0..20 {
            let deadline = now_unix_ns() + 1_300_000;
            t.arm(Some(deadline)).unwrap();
            t.wait().await.unwrap();
            let late = now_unix_ns().saturating_sub(deadline);
            assert!(now_unix_ns() >= deadline);
            worst = worst.max(late);
        }
        // tokio::time would be up to 1 ms late; a loaded CI machine gets generous slack.
        assert!(worst < 5_000_000, "worst lateness {worst} ns");
        t.arm(Some(1)).unwrap();
        t.wait().await.unwrap();
    }
}

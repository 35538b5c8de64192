//! systemd's service protocol (`sd_notify`): the agent and collector tell systemd they are
//! ready once bound (`READY=1`, so `Type=notify` units start their dependents only then), ping
//! its watchdog while the runtime runs (`WATCHDOG=1` at half of `WatchdogSec=`, so a hung
//! process is restarted), and say when they stop (`STOPPING=1`). The messages are datagrams to
//! the socket systemd names in `$NOTIFY_SOCKET`; without it (not under systemd) nothing is
//! sent and the binary runs the same.

use std::future::Future;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Where systemd listens, and how often it wants a watchdog ping.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd sets: `NOTIFY_SOCKET` (a path, or `@name` in the abstract
    /// namespace), `WATCHDOG_USEC`, and `WATCHDOG_PID` (the watchdog is this process's only
    /// when it names it, or is unset). `None` when not started by systemd, or when the
    /// socket cannot be used (logged: the service then runs without notifications).
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let watchdog = watchdog_period(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        match Notifier::new(path.as_encoded_bytes(), watchdog) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(socket = ?path, error = %e, "NOTIFY_SOCKET unusable: no readiness or watchdog notifications");
                None
            }
        }
    }

    fn new(path: &[u8], watchdog: Option<Duration>) -> io::Result<Notifier> {
        let addr = match path.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)?
            }
            None => {
                use std::os::unix::ffi::OsStrExt;
                SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(path))?
            }
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
            watchdog,
        })
    }

    /// Sends one state message, e.g. `READY=1\nSTATUS=listening on ...`.
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(|_| ())
    }

    /// Pings the watchdog at half its period, for as long as the runtime runs the task (a
    /// process whose runtime stalls stops pinging and is restarted). Without a watchdog, returns.
    pub async fn keep_alive(self: Arc<Self>) {
        let Some(period) = self.watchdog else { return };
        let mut tick = tokio::time::interval(period / 2);
        loop {
            tick.tick().await;
            if let Err(e) = self.send("WATCHDOG=1") {
                tracing::warn!(error = %e, "watchdog ping not sent");
            }
        }
    }
}

/// The watchdog period from `WATCHDOG_USEC`, if `WATCHDOG_PID` is unset or names `pid`.
fn watchdog_period(usec: Option<&str>, for_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if for_pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(pid)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec))
}

/// Sends `state` if there is a notifier, logging a failure (never fatal: systemd's timeout
/// says it better than a crash would).
pub fn notify(notifier: Option<&Arc<Notifier>>, state: &str) {
    if let Some(n) = notifier {
        if let Err(e) = n.send(state) {
            tracing::warn!(error = %e, state, "systemd notification not sent");
        }
    }
}

/// A bound service run under systemd's protocol: `READY=1` with `status` now (call it once
/// every port is bound), watchdog pings while `run` runs, `STOPPING=1` when `shutdown`
/// resolves. `run` is handed the future that tells it to stop.
pub async fn serve<T, F>(
    status: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
    run: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
) -> T
where
    F: Future<Output = T>,
{
    let notifier = Notifier::from_env().map(Arc::new);
    notify(notifier.as_ref(), &format!("READY=1\nSTATUS={status}"));
    let pings = notifier.clone().map(|n| tokio::spawn(n.keep_alive()));
    let stopping = notifier.clone();
    let result = run(Box::pin(async move {
        shutdown.await;
        notify(stopping.as_ref(), "STOPPING=1");
    }))
    .await;
    if let Some(p) = pings {
        p.abort();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_only_for_this_process() {
        let s = Some(Duration::from_secs(30));
        assert_eq!(watchdog_period(Some("30000000"), None, 7), s);
        assert_eq!(watchdog_period(Some("30000000"), Some("7"), 7), s);
        assert_eq!(watchdog_period(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_period(None, None, 7), None);
        assert_eq!(watchdog_period(Some("0"), None, 7), None);
        assert_eq!(watchdog_period(Some("x"), None, 7), None);
    }

    #[test]
    fn messages_reach_a_path_and_an_abstract_socket() {
        let dir = std::env::temp_dir().join(format!("xcbench-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = UnixDatagram::bind(&dir).unwrap();
        let n = Notifier::new(dir.as_os_str().as_encoded_bytes(), None).unwrap();
        n.send("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        std::fs::remove_file(&dir).unwrap();

        use std::os::linux::net::SocketAddrExt;
        let name = format!("xcbench-notify-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::new(format!("@{name}").as_bytes(), None).unwrap();
        n.send("STOPPING=1").unwrap();
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");
    }
}

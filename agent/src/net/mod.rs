//! The only place with sockets and clocks: the host clock and its error estimate, timers,
//! sockets with kernel receive timestamps, the one drive loop that runs every sans-IO
//! prober, the STAMP, TCP and QUIC responders and probers, and throughput tests.
//!
//! # Layout
//! - [`clock`]: the monotonic and wall clocks read together, and the error estimate.
//! - [`timer`]: a sub-millisecond deadline timer on the monotonic clock.
//! - [`socket`]: probe sockets, timestamped reads, socket options and TCP_INFO, once each.
//! - [`driver`]: the drive loop for any [`crate::probe::Probe`] over a [`driver::Transport`].
//! - [`limits`]: the per-source connection cap of the responders.
//! - [`stamp`]: the STAMP reflector and sender sessions over UDP.
//! - [`tcp`]: the TCP responder, request/response and connect probes.
//! - [`fresh`]: the schedule of probes that open a fresh connection each time.
//! - [`quic`]: the QUIC endpoint (one accept loop, dispatch by ALPN), responder and prober.
//! - [`throughput`]: throughput tests (TCP, UDP, QUIC; one-shot and scheduled).
//! - [`metadata`]: `cloud = "auto"`: the instance metadata services of Azure and OCI.
//! - [`mesh`]: `[agent] mesh`: the mesh file read, or fetched from the collector, at start
//!   and every report interval.
//! - [`preflight`]: `xcbench preflight`: port states, path MTU, kernel timestamps.

pub mod clock;
pub mod driver;
pub mod fresh;
pub mod limits;
pub mod mesh;
pub mod metadata;
pub mod preflight;
pub mod quic;
pub mod socket;
pub mod stamp;
pub mod tcp;
pub mod throughput;
pub mod timer;

use std::sync::{Mutex, MutexGuard};

/// The wildcard address with any port, in `peer`'s family: where a client socket binds.
pub fn any_local_for(peer: std::net::SocketAddr) -> std::net::SocketAddr {
    match peer {
        std::net::SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        std::net::SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// An error and its sources, `: `-separated, for logs (what `{:#}` prints for anyhow).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The next connection on `listener`, or `None` once `stop` changes. An accept error (the
/// process is out of descriptors, a connection reset before it was taken) is logged and
/// retried 10 ms later.
pub async fn accept(
    listener: &tokio::net::TcpListener,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    what: &'static str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            _ = stop.changed() => return None,
            accepted = listener.accept() => match accepted {
                Ok(a) => return Some(a),
                Err(e) => {
                    tracing::debug!(error = %e, "{what}: accept error");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// Waits until `what` holds, for at most 2 s (tests of tasks that count asynchronously).
#[cfg(test)]
pub(crate) async fn settle(what: impl Fn() -> bool) {
    for _ in 0..200 {
        if what() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A poisoned lock only means another task panicked mid-update of plain counters or a
/// recorder; carry on with what is there.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

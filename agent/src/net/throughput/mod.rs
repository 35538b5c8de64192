//! Throughput tests between two agents (iperf3-like), the I/O half; the decisions are in
//! [`crate::probe::throughput`]. The answering agent ([`server`]) takes control requests on
//! QUIC connections with ALPN `xcbench-bench/1` (mutual TLS: only a trusted peer can ask)
//! and data at its data port ([`PortPlan`](crate::config::PortPlan)): TCP connections, each
//! opened with the cookie it handed out; UDP datagrams on the same number; QUIC connections
//! on the next. The asking agent ([`client`]) is `xcbench bench` and the scheduler.
//!
//! TCP bulk data moves on blocking sockets, one thread per stream, so the async runtime never
//! sits between the kernel and the byte counters; QUIC streams run on a runtime of their own.
//! A sending stream counts bytes the kernel (or quinn) accepted; a receiving stream counts
//! bytes delivered to it. Each stream samples its own counters at interval boundaries; both
//! sides exchange their figures at the end. One test at a time per agent ([`slot`]).
//!
//! # Layout
//! - this file: [`ThroughputError`], and [`Progress`], through which stream threads report
//!   intervals and learn that the peer is lost.
//! - [`control`]: control messages on the QUIC stream, and opening the control connection.
//! - [`server`]: the answering side; [`client`]: the asking side.
//! - [`slot`]: the one test an agent takes part in, and the load label it drives.
//! - [`tcp`], [`udp`], [`quic`]: the data of each transport; [`schedule`]: tests an agent
//!   runs by itself.

pub mod client;
pub mod control;
pub mod quic;
pub mod schedule;
pub mod server;
pub mod slot;
pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::Connection;

use crate::wire::throughput::{IntervalBytes, RefuseCode};

pub use client::Client;

/// How long either side waits for control messages and data connections.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A receiving stream gives up this long after the planned end if the sender never closes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a test could not run, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ThroughputError {
    /// This side is not set up to ask: exit code 2.
    #[error(transparent)]
    Setup(#[from] client::SetupError),
    #[error("the peer refused the test: {reason}")]
    Refused {
        code: RefuseCode,
        field: Option<String>,
        reason: String,
    },
    #[error("control connection to {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: control::ConnectError,
    },
    #[error("test control")]
    Control(#[from] control::ControlError),
    #[error("data connection {addr}")]
    Data {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the data connections did not arrive within {0:?}")]
    DataLate(Duration),
    #[error("the QUIC data endpoint")]
    QuicData(#[from] quic::QuicDataError),
    #[error("the client presented no certificate")]
    NoCertificate,
    #[error("no random numbers for a cookie")]
    Random,
}

impl ThroughputError {
    /// Whether the peer said it is busy with another test (ask again later).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            ThroughputError::Refused {
                code: RefuseCode::Busy,
                ..
            }
        )
    }

    /// Whether this side's own setup is at fault (a usage error, not a failed test).
    pub fn is_setup(&self) -> bool {
        matches!(self, ThroughputError::Setup(_))
    }
}

/// One interval of one stream, as it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub stream: u8,
    /// This side sent on the stream.
    pub sender: bool,
    pub figures: IntervalBytes,
}

/// Where a stream's thread sends its intervals, and how it learns that the test is off
/// (the control connection to the peer is gone).
#[derive(Clone)]
pub struct Progress {
    tx: tokio::sync::mpsc::UnboundedSender<Interval>,
    abort: Arc<AtomicBool>,
}

impl Progress {
    /// Passes on an interval a meter closed (nothing when it closed none).
    pub fn interval(&self, stream: u8, sender: bool, closed: Option<IntervalBytes>) {
        if let Some(figures) = closed {
            let _ = self.tx.send(Interval {
                stream,
                sender,
                figures,
            });
        }
    }

    /// True once the peer is lost: stop now.
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

/// Runs blocking `work` on the blocking pool and hands the intervals it reports to
/// `on_interval` as they come, until it returns. If `control` closes meanwhile (the peer is
/// gone), `work` is told to stop.
async fn relay<R: Send + 'static>(
    work: impl FnOnce(Progress) -> R + Send + 'static,
    mut on_interval: impl FnMut(Interval),
    control: Connection,
) -> R {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let abort = Arc::new(AtomicBool::new(false));
    let progress = Progress {
        tx,
        abort: abort.clone(),
    };
    let worker = tokio::task::spawn_blocking(move || work(progress));
    let mut closed = std::pin::pin!(control.closed());
    loop {
        tokio::select! {
            // Every sender is gone once `work` has returned.
            iv = rx.recv() => match iv {
                Some(iv) => on_interval(iv),
                None => break,
            },
            reason = &mut closed, if !abort.load(Ordering::Relaxed) => {
                tracing::warn!(%reason, "throughput test: lost the peer; stopping the streams");
                abort.store(true, Ordering::Relaxed);
            }
        }
    }
    match worker.await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A blocking socket call that only timed out or was interrupted: go round again.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

/// A random test cookie (the data connections' proof that they belong to the test).
fn cookie() -> Result<[u8; 16], ThroughputError> {
    let mut cookie = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut cookie)
        .map_err(|_| ThroughputError::Random)?;
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use tokio::sync::watch;
    use xcbench_snapshot::{Cloud, Identity, ResponderCount};

    use super::server::Server;
    use super::slot::{TestSlot, Tester};
    use super::{Client, ThroughputError};
    use crate::config::{PeerConfig, ProbeSettings};
    use crate::net::quic::endpoint::{serve, Services};
    use crate::net::quic::server_endpoint;
    use crate::probe::throughput::{totals, ServeLimits, Test};
    use crate::tls::{server_crypto, KeySource, KnownPeers, TlsIdentity};
    use crate::wire::throughput::{Direction, Protocol, RefuseCode, TestSpec};
    use xcbench_snapshot::Flow;

    /// An answering agent on 127.0.0.1 (any ports) and a client of it.
    async fn pair(limits: ServeLimits) -> (Client, watch::Sender<bool>, std::sync::Arc<TestSlot>) {
        let (server_id, client_id) = (
            TlsIdentity::load(&KeySource::Ephemeral, "oci-1").unwrap(),
            TlsIdentity::load(&KeySource::Ephemeral, "az-1").unwrap(),
        );
        let slot = TestSlot::new();
        let stamp = "127.0.0.1:0".parse().unwrap();
        let (server, listener) = Server::bind(
            stamp,
            limits,
            KnownPeers::default(),
            server_id.clone(),
            slot.clone(),
        )
        .unwrap();
        let crypto = server_crypto(&server_id, [client_id.fingerprint].into(), None).unwrap();
        let endpoint = server_endpoint(stamp, crypto).unwrap();
        let quic_address = endpoint.local_addr().unwrap();
        let (stop, rx) = watch::channel(false);
        let services = Services {
            probes: std::sync::Arc::new(std::sync::Mutex::new(ResponderCount::default())),
            throughput: Some(server.clone()),
        };
        tokio::spawn(serve(endpoint, services, rx.clone()));
        tokio::spawn(server.serve_data(listener, rx));
        let peer = PeerConfig {
            identity: Identity {
                id: "oci-1".parse().unwrap(),
                cloud: Cloud::Oci,
                region: "r".into(),
                zone: String::new(),
            },
            address: "127.0.0.1:862".parse().unwrap(),
            quic_address,
            fingerprint: Some(server_id.fingerprint),
            probe: ProbeSettings::default(),
        };
        (Client::new(client_id, None, peer).unwrap(), stop, slot)
    }

    fn test(protocol: Protocol, direction: Direction, bitrate_bps: Option<u64>) -> Test {
        Test::try_from(TestSpec {
            protocol,
            direction,
            duration_ms: 400,
            omit_ms: 0,
            interval_ms: 100,
            streams: 2,
            write_bytes: crate::config::defaults::write_bytes(protocol),
            bitrate_bps,
            congestion: None,
            window_bytes: None,
        })
        .unwrap()
    }

    fn limits() -> ServeLimits {
        ServeLimits {
            max_duration_ms: 10_000,
            max_streams: 4,
            max_udp_rate_bps: 1_000_000_000,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tcp_both_ways_counts_the_same_bytes_at_both_ends() {
        let (client, _stop, _slot) = pair(limits()).await;
        let mut intervals = 0;
        let report = client
            .run(test(Protocol::Tcp, Direction::Bidirectional, None), |_| {
                intervals += 1
            })
            .await
            .unwrap();
        assert!(
            intervals >= 4 * 4,
            "{intervals} live intervals from 4 streams"
        );
        for f in report.flows() {
            let (sent, got) = (
                totals(f.sender.iter().copied()),
                totals(f.receiver.iter().copied()),
            );
            assert!(got.bytes > 1_000_000, "{:?}: {got:?}", f.flow);
            // Every byte the sending kernel took arrived: the receivers drain to the end.
            assert_eq!(sent.bytes, got.bytes, "{:?}", f.flow);
        }
        assert_eq!(
            report.flows().iter().map(|f| f.flow).collect::<Vec<_>>(),
            vec![Flow::Forward, Flow::Reverse]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn udp_is_paced_and_counted_and_refusals_carry_their_code() {
        let (client, _stop, slot) = pair(limits()).await;
        // 20 Mbit/s over two streams for 0.4 s: 1 MB in 1372-byte datagrams.
        let report = client
            .run(
                test(Protocol::Udp, Direction::Reverse, Some(20_000_000)),
                |_| {},
            )
            .await
            .unwrap();
        let f = &report.flows()[0];
        let (sent, got) = (
            totals(f.sender.iter().copied()),
            totals(f.receiver.iter().copied()),
        );
        assert_eq!((got.lost, got.packets), (0, sent.packets), "{got:?}");
        let expected = 20e6 / 8.0 * 0.4;
        assert!(
            (sent.bytes as f64 - expected).abs() < expected * 0.1,
            "{} bytes sent, {expected} planned",
            sent.bytes
        );
        // Over this agent's limit: refused, naming the field.
        let big = Test::try_from(TestSpec {
            streams: 8,
            ..test(Protocol::Tcp, Direction::Forward, None).spec().clone()
        })
        .unwrap();
        match client.run(big, |_| {}).await {
            Err(ThroughputError::Refused { code, field, .. }) => {
                assert_eq!(
                    (code, field.as_deref()),
                    (RefuseCode::OverLimit, Some("streams"))
                )
            }
            other => panic!("{other:?}"),
        }
        // Busy: another test holds the answering agent's slot.
        let _held = slot.try_begin(Tester {
            peer: None,
            certificate: None,
        });
        let e = client
            .run(test(Protocol::Tcp, Direction::Forward, None), |_| {})
            .await
            .unwrap_err();
        assert!(e.is_busy(), "{e:?}");
    }
}

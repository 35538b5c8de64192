//! xcbench agent: everything that runs on an Azure VM or an OCI instance. It answers STAMP
//! probes (session-reflector), probes its peers (one session-sender per peer), records every
//! latency in HdrHistograms and reports deltas to the collector every interval.
//!
//! # Layout
//! - [`wire`]: STAMP packet formats, pure encode/decode.
//! - [`probe`]: sans-IO session-sender and session-reflector state machines.
//! - [`net`]: sockets, kernel timestamps, the clock, and the tasks driving the state machines.
//! - [`record`]: histograms and counters per series; snapshot deltas.
//! - [`report`]: the snapshot queue and its delivery to the collector.
//! - [`config`]: `agent.toml` into typed values.

pub mod config;
pub mod net;
pub mod probe;
pub mod record;
pub mod report;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use xcbench_snapshot::{ProbeKind, Protocol, ReflectorCounters};

pub use config::{AgentConfig, ConfigError, PeerConfig};
use net::reflector::lock;
use net::udp::ProbeSocket;
use probe::{Reflector, ReflectorLimits};
use record::Recorder;
use report::Reporter;

/// How long the reflector keeps answering after this agent's own probes have settled, so a
/// peer stopping at the same moment still gets replies to its last probes.
const REFLECTOR_LINGER: Duration = Duration::from_millis(200);

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("reflector.listen {addr}: cannot bind: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// An agent whose reflector sockets are bound (so their addresses are known) but not yet
/// running.
pub struct Agent {
    config: AgentConfig,
    reflectors: Vec<(ProbeSocket, Arc<Mutex<Reflector>>)>,
    tcp_listeners: Vec<tokio::net::TcpListener>,
}

impl Agent {
    /// Binds every reflector address.
    pub fn bind(config: AgentConfig) -> Result<Agent, AgentError> {
        let limits = ReflectorLimits {
            max_sessions: config.reflector.max_sessions,
            ..ReflectorLimits::default()
        };
        let reflectors: Vec<(ProbeSocket, Arc<Mutex<Reflector>>)> = config
            .reflector
            .listen
            .iter()
            .map(|addr| {
                ProbeSocket::bind(*addr, 0, config.timestamps)
                    .map(|s| (s, Arc::new(Mutex::new(Reflector::new(limits)))))
                    .map_err(|source| AgentError::Bind {
                        addr: *addr,
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        // TCP probes are answered on the same port numbers the STAMP sockets got.
        let mut tcp_listeners = Vec::new();
        if config.reflector.tcp {
            for (socket, _) in &reflectors {
                let addr = socket.local_addr().map_err(|source| AgentError::Bind {
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    source,
                })?;
                let listener = std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|_| l))
                    .and_then(tokio::net::TcpListener::from_std)
                    .map_err(|source| AgentError::Bind { addr, source })?;
                tcp_listeners.push(listener);
            }
        }
        Ok(Agent {
            config,
            reflectors,
            tcp_listeners,
        })
    }

    /// The bound reflector addresses (port 0 in the config is resolved here).
    pub fn reflector_addrs(&self) -> Vec<SocketAddr> {
        self.reflectors
            .iter()
            .filter_map(|(s, _)| s.local_addr().ok())
            .collect()
    }

    /// Replaces the peers (used when peers' addresses are only known after binding).
    pub fn set_peers(&mut self, peers: Vec<PeerConfig>) {
        self.config.peers = peers;
    }

    /// Probes and reflects until `shutdown` resolves; then stops probing, waits for
    /// outstanding replies, sends a last snapshot and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        let started = net::clock::now_unix_ns();
        let recorder = Arc::new(Mutex::new(Recorder::new()));
        for peer in &self.config.peers {
            let mut rec = lock(&recorder);
            if peer.probe.protocols.udp {
                rec.add_series(peer.identity.clone(), Protocol::Udp, ProbeKind::Stamp);
            }
            if peer.probe.protocols.tcp {
                rec.add_series(peer.identity.clone(), Protocol::Tcp, ProbeKind::Connect);
                rec.add_series(peer.identity.clone(), Protocol::Tcp, ProbeKind::Rr);
            }
        }
        let tcp_counters: Arc<Mutex<ReflectorCounters>> = Arc::default();
        let (stop_reflectors, reflectors_rx) = watch::channel(false);
        let (stop_senders, senders_rx) = watch::channel(false);
        let states: Vec<_> = self.reflectors.iter().map(|(_, s)| s.clone()).collect();
        let mut reflector_tasks = Vec::new();
        for (socket, state) in self.reflectors.drain(..) {
            reflector_tasks.push(tokio::spawn(net::reflector::serve(
                socket,
                state,
                reflectors_rx.clone(),
            )));
        }
        let mut sender_tasks = Vec::new();
        let mut tcp_tasks = Vec::new();
        for listener in self.tcp_listeners.drain(..) {
            tcp_tasks.push(tokio::spawn(net::tcp::serve(
                listener,
                self.config.timestamps,
                tcp_counters.clone(),
                reflectors_rx.clone(),
            )));
        }
        let timestamps = self.config.timestamps;
        for peer in self.config.peers.clone() {
            let (p, rec, stop) = (peer.clone(), recorder.clone(), senders_rx.clone());
            if peer.probe.protocols.udp {
                let session =
                    net::sender::run_session(p.clone(), timestamps, rec.clone(), stop.clone());
                sender_tasks.push(spawn_session("udp", &peer, session));
            }
            if peer.probe.protocols.tcp {
                let rr = net::tcp::run_rr(p.clone(), timestamps, rec.clone(), stop.clone());
                sender_tasks.push(spawn_session("tcp rr", &peer, rr));
                let connect = net::tcp::run_connect(p, rec, stop);
                sender_tasks.push(spawn_session("tcp connect", &peer, connect));
            }
        }
        let collector = self.config.collector.clone();
        let interval = collector
            .as_ref()
            .map_or(config::DEFAULT_REPORT_INTERVAL, |c| c.report_interval);
        let mut reporter = Reporter::new(
            self.config.identity.clone(),
            collector.map(|c| c.url),
            started,
        );
        let report = |reporter: &mut Reporter| {
            let reflected = states
                .iter()
                .fold(ReflectorCounters::default(), |mut acc, s| {
                    let c = lock(s).take_counters();
                    acc.reflected += c.reflected;
                    acc.malformed += c.malformed;
                    acc.refused += c.refused;
                    acc
                });
            let tcp = std::mem::take(&mut *lock(&tcp_counters));
            let reflected = ReflectorCounters {
                tcp_reflected: tcp.tcp_reflected,
                tcp_malformed: tcp.tcp_malformed,
                tcp_refused: tcp.tcp_refused,
                ..reflected
            };
            reporter.take_snapshot(&mut lock(&recorder), reflected, net::clock::now_unix_ns());
        };
        // The first snapshot goes out at once, so configured series appear at zero.
        report(&mut reporter);
        flush(&mut reporter).await;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = ticker.tick() => {
                    report(&mut reporter);
                    flush(&mut reporter).await;
                }
            }
        }
        // Stop probing and let outstanding probes settle; keep reflecting meanwhile so peers
        // that stop at the same time get their last replies.
        let _ = stop_senders.send(true);
        for t in sender_tasks {
            let _ = t.await;
        }
        tokio::time::sleep(REFLECTOR_LINGER).await;
        report(&mut reporter);
        let _ = tokio::time::timeout(Duration::from_secs(5), flush(&mut reporter)).await;
        let _ = stop_reflectors.send(true);
        for t in reflector_tasks.into_iter().chain(tcp_tasks) {
            let _ = t.await;
        }
        Ok(())
    }
}

/// Binds and runs an agent until `shutdown` resolves.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    Agent::bind(config)?.run(shutdown).await
}

/// Runs one probe session as its own task; a failure (e.g. no socket) is logged, not fatal
/// to the other sessions.
fn spawn_session(
    what: &'static str,
    peer: &PeerConfig,
    session: impl std::future::Future<Output = std::io::Result<()>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let id = peer.identity.id.clone();
    tokio::spawn(async move {
        if let Err(e) = session.await {
            tracing::error!(peer = %id, error = %e, "{what} probe session failed");
        }
    })
}

async fn flush(reporter: &mut Reporter) {
    if let Err(e) = reporter.flush().await {
        tracing::warn!(queued = reporter.queued(), error = %e, "snapshot not delivered yet");
    }
}

//! xcbench agent: everything that runs on an Azure VM or an OCI instance. It answers STAMP,
//! TCP and QUIC probes (the reflector side), probes its peers over the same transports,
//! records every latency in HdrHistograms and reports deltas to the collector every interval;
//! it answers throughput tests and runs scheduled ones, recording probes under load apart.
//!
//! # Layout
//! - [`wire`]: STAMP packets, the TCP/QUIC request framing and throughput-test control,
//!   pure encode/decode.
//! - [`probe`]: sans-IO session-sender and session-reflector state machines; throughput
//!   accounting and the test schedule.
//! - [`net`]: sockets, kernel timestamps, the clock, the tasks driving the state machines,
//!   and throughput tests (TCP, UDP, QUIC; one-shot and scheduled).
//! - [`record`]: histograms and counters per series and load; scheduled tests' results;
//!   snapshot deltas.
//! - [`report`]: the snapshot queue and its delivery to the collector.
//! - [`config`]: `agent.toml` into typed values.
//! - [`tls`]: the agent's key pair, fingerprints, and peer trust for QUIC.

pub mod config;
pub mod net;
pub mod probe;
pub mod record;
pub mod report;
pub mod tls;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use xcbench_snapshot::{AgentId, Load, ProbeKind, Protocol, ReflectorCounters};

pub use config::{AgentConfig, ConfigError, PeerConfig};
use net::reflector::lock;
use net::socket::ProbeSocket;
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
    #[error("tls: {0}")]
    Tls(#[from] tls::TlsError),
}

/// The agent's TLS identity and CA, once loaded.
struct TlsState {
    identity: tls::TlsIdentity,
    ca: Option<Arc<rustls::RootCertStore>>,
}

/// An agent whose reflector sockets are bound (so their addresses are known) but not yet
/// running.
pub struct Agent {
    config: AgentConfig,
    reflectors: Vec<(ProbeSocket, Arc<Mutex<Reflector>>)>,
    tcp_listeners: Vec<tokio::net::TcpListener>,
    tls: Option<TlsState>,
    quic_endpoints: Vec<quinn::Endpoint>,
    bench: Option<Arc<net::throughput::BenchServer>>,
    /// The one throughput test this agent takes part in at a time, answering or asking.
    slot: Arc<net::throughput::TestSlot>,
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
        let tls = match &config.tls {
            None => None,
            Some(t) => Some(TlsState {
                identity: tls::TlsIdentity::load(&t.key, config.identity.id.as_str())?,
                ca: t.ca.as_deref().map(tls::load_ca).transpose()?,
            }),
        };
        // QUIC is answered at port + 1 of each STAMP address (port 0 stays "any").
        let mut quic_endpoints = Vec::new();
        let mut bench = None;
        let slot = net::throughput::TestSlot::new();
        if let (Some(t), true) = (&tls, config.reflector.quic) {
            let crypto = quic_server_crypto(&config, t)?;
            for listen in &config.reflector.listen {
                let mut addr = *listen;
                if addr.port() != 0 {
                    addr.set_port(addr.port().wrapping_add(config::QUIC_PORT_OFFSET));
                }
                let endpoint = net::quic::server_endpoint(addr, crypto.clone())
                    .map_err(|source| AgentError::Bind { addr, source })?;
                quic_endpoints.push(endpoint);
            }
            // Throughput tests: control over QUIC, data on TCP at the first address's port + 2.
            if let (Some(listen), true) = (config.reflector.listen.first(), config.bench.enabled) {
                let mut addr = *listen;
                if addr.port() != 0 {
                    addr.set_port(addr.port().wrapping_add(net::throughput::DATA_PORT_OFFSET));
                }
                let b = &config.bench;
                let limits = net::throughput::ServeLimits {
                    max_duration_ms: b.max_duration.as_millis() as u64,
                    max_streams: b.max_streams,
                    max_udp_rate_bps: b.max_udp_rate_bps,
                    allow: tls::KnownPeers::new(
                        config
                            .peers
                            .iter()
                            .filter(|p| b.allow.contains(&p.identity.id))
                            .map(|p| (p.identity.id.clone(), p.fingerprint)),
                    ),
                };
                bench = Some(
                    net::throughput::BenchServer::bind(
                        addr,
                        limits,
                        t.identity.clone(),
                        slot.clone(),
                    )
                    .map_err(|source| AgentError::Bind { addr, source })?,
                );
            }
        }
        Ok(Agent {
            config,
            reflectors,
            tcp_listeners,
            tls,
            quic_endpoints,
            bench,
            slot,
        })
    }

    /// The bound reflector addresses (port 0 in the config is resolved here).
    pub fn reflector_addrs(&self) -> Vec<SocketAddr> {
        self.reflectors
            .iter()
            .filter_map(|(s, _)| s.local_addr().ok())
            .collect()
    }

    /// The bound QUIC responder addresses.
    pub fn quic_addrs(&self) -> Vec<SocketAddr> {
        self.quic_endpoints
            .iter()
            .filter_map(|e| e.local_addr().ok())
            .collect()
    }

    /// The throughput-test data port, when this agent answers tests.
    pub fn bench_port(&self) -> Option<u16> {
        self.bench.as_ref().map(|b| b.data_port())
    }

    /// The fingerprint of this agent's certificate, for peers to pin (with `[tls]` only).
    pub fn fingerprint(&self) -> Option<tls::Fingerprint> {
        self.tls.as_ref().map(|t| t.identity.fingerprint)
    }

    /// Replaces the peers (used when peers' addresses are only known after binding); the
    /// QUIC responder trusts the new peers' fingerprints from now on.
    pub fn set_peers(&mut self, peers: Vec<PeerConfig>) -> Result<(), AgentError> {
        self.config.peers = peers;
        if let (Some(t), false) = (&self.tls, self.quic_endpoints.is_empty()) {
            let crypto = quic_server_crypto(&self.config, t)?;
            for endpoint in &self.quic_endpoints {
                endpoint.set_server_config(Some(net::quic::server_config(crypto.clone())));
            }
        }
        Ok(())
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
            if peer.probe.protocols.quic && self.tls.is_some() {
                for kind in [
                    ProbeKind::Connect,
                    ProbeKind::Resume,
                    ProbeKind::Rr,
                    ProbeKind::Datagram,
                ] {
                    rec.add_series(peer.identity.clone(), Protocol::Quic, kind);
                }
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
        let quic_counters: Arc<Mutex<ReflectorCounters>> = Arc::default();
        if self.tls.is_some() {
            for endpoint in self.quic_endpoints.drain(..) {
                tcp_tasks.push(tokio::spawn(net::quic::serve(
                    endpoint,
                    quic_counters.clone(),
                    self.bench.clone(),
                    reflectors_rx.clone(),
                )));
            }
        }
        // Latency under load: while a throughput test runs, outcomes of the probes to its
        // peer go to that peer's load="bench" series.
        let mut testing = self.slot.watch();
        let rec = recorder.clone();
        let peers = tls::KnownPeers::new(
            self.config
                .peers
                .iter()
                .map(|p| (p.identity.id.clone(), p.fingerprint)),
        );
        let mut stop_load = senders_rx.clone();
        let load_task = tokio::spawn(async move {
            let mut current: Option<AgentId> = None;
            loop {
                let tester = testing.borrow_and_update().clone();
                let peer = tester.and_then(|t| {
                    t.peer
                        .or_else(|| peers.identify(t.certificate.as_ref()?).cloned())
                });
                if peer != current {
                    let mut r = lock(&rec);
                    if let Some(old) = &current {
                        r.set_load(old, Load::Idle);
                    }
                    if let Some(new) = &peer {
                        r.set_load(new, Load::Bench);
                    }
                    current = peer;
                }
                tokio::select! {
                    _ = stop_load.changed() => return,
                    changed = testing.changed() => if changed.is_err() { return },
                }
            }
        });
        let mut scheduler_task = None;
        if let (Some(schedule), Some(t)) = (&self.config.bench.schedule, &self.tls) {
            let scheduler = net::throughput::schedule::Scheduler {
                schedule: schedule.clone(),
                peers: self.config.peers.clone(),
                identity: t.identity.clone(),
                ca: t.ca.clone(),
                slot: self.slot.clone(),
                recorder: recorder.clone(),
            };
            scheduler_task = Some(tokio::spawn(scheduler.run(senders_rx.clone())));
        }
        let timestamps = self.config.timestamps;
        for peer in self.config.peers.clone() {
            let (p, rec, stop) = (peer.clone(), recorder.clone(), senders_rx.clone());
            if peer.probe.protocols.udp {
                let session =
                    net::stamp::run_session(p.clone(), timestamps, rec.clone(), stop.clone());
                sender_tasks.push(spawn_session("udp", &peer, session));
            }
            if peer.probe.protocols.tcp {
                let rr = net::tcp::run_rr(p.clone(), timestamps, rec.clone(), stop.clone());
                sender_tasks.push(spawn_session("tcp rr", &peer, rr));
                let connect = net::tcp::run_connect(p.clone(), rec.clone(), stop.clone());
                sender_tasks.push(spawn_session("tcp connect", &peer, connect));
            }
            if let (true, Some(t)) = (peer.probe.protocols.quic, &self.tls) {
                let full = tls::client_crypto(&t.identity, peer.fingerprint, t.ca.clone(), false)?;
                let resume = tls::client_crypto(&t.identity, peer.fingerprint, t.ca.clone(), true)?;
                match net::quic::QuicClient::new(&peer, full, resume) {
                    Ok(client) => {
                        let rr =
                            net::quic::run_rr(p.clone(), client.clone(), rec.clone(), stop.clone());
                        sender_tasks.push(spawn_session("quic rr", &peer, rr));
                        let hs = net::quic::run_handshakes(p, client, rec, stop);
                        sender_tasks.push(spawn_session("quic handshake", &peer, hs));
                    }
                    Err(e) => {
                        tracing::error!(peer = %peer.identity.id, error = %e, "quic probe session failed")
                    }
                }
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
            let quic = std::mem::take(&mut *lock(&quic_counters));
            let reflected = ReflectorCounters {
                tcp_reflected: tcp.tcp_reflected,
                tcp_malformed: tcp.tcp_malformed,
                tcp_refused: tcp.tcp_refused,
                quic_reflected: quic.quic_reflected,
                quic_malformed: quic.quic_malformed,
                quic_refused: quic.quic_refused,
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
        for t in sender_tasks.into_iter().chain(scheduler_task) {
            let _ = t.await;
        }
        let _ = load_task.await;
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

/// The QUIC responder's TLS side: clients are trusted by the configured peers'
/// fingerprints, `tls.allow`, or the CA. quinn fixes the server config of a connection
/// attempt when its first packet arrives, so it must be right before any peer connects.
fn quic_server_crypto(
    config: &AgentConfig,
    t: &TlsState,
) -> Result<Arc<quinn::crypto::rustls::QuicServerConfig>, AgentError> {
    let mut allowed: std::collections::HashSet<_> =
        config.peers.iter().filter_map(|p| p.fingerprint).collect();
    if let Some(c) = &config.tls {
        allowed.extend(c.allow.iter().copied());
    }
    Ok(tls::server_crypto(&t.identity, allowed, t.ca.clone())?)
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

//! The agent assembled: [`Agent::bind`] binds every responder (STAMP, TCP, QUIC, throughput
//! data) from the port plan of each listen address, and [`Agent::run`] starts the
//! responders, the probers, the throughput scheduler and the load follower, reports every
//! interval (without a collector, a one-line summary per peer in the log instead), and shuts
//! down in order, each a small named step. With a mesh, every report
//! interval it also looks for a newer mesh; one that changes the peers restarts the probers
//! (and the scheduler) with them, while the responders and the reporter keep running.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use xcbench_snapshot::{Protocol, ResponderCount, ResponderCounters};

use crate::config::mesh::derive::MeshUpdate;
use crate::config::stamp_keys::KeyRing;
use crate::config::{AgentConfig, PeerConfig, Resolved};
use crate::net::mesh::MeshWatch;
use crate::net::quic::endpoint::Services;
use crate::net::socket::ProbeSocket;
use crate::net::throughput::schedule::Scheduler;
use crate::net::throughput::server::{DataListener, Server};
use crate::net::throughput::slot::{follow_load, TestSlot};
use crate::net::throughput::Client;
use crate::net::{self, lock};
use crate::probe::Reflector;
use crate::record::{probe_kinds, Recorder};
use crate::report::Reporter;
use crate::tls;

mod bind;
use bind::{bind_quic, bind_reflectors, bind_tcp, bind_throughput, quic_server_crypto};

/// How long the reflector keeps answering after this agent's own probes have settled, so a
/// peer stopping at the same moment still gets replies to its last probes.
const REFLECTOR_LINGER: Duration = Duration::from_millis(200);

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("reflector.listen {addr}: cannot bind")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("tls")]
    Tls(#[from] tls::TlsError),
    /// `cloud = "auto"` could not be resolved (a configuration matter: exit code 2).
    #[error(transparent)]
    Metadata(#[from] net::metadata::MetadataError),
    /// `[agent] mesh` could not be read, fetched or applied.
    #[error(transparent)]
    Mesh(#[from] net::mesh::MeshError),
    /// `[agent] spool` could not be taken.
    #[error(transparent)]
    Reporter(#[from] crate::report::ReporterError),
    /// A STAMP key file could not be read (a configuration matter: exit code 2).
    #[error(transparent)]
    Keys(crate::config::ConfigError),
}

/// The tasks that probe the current peers, and what stops them.
struct Probers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Probers {
    /// Tells every task to stop; they settle their outstanding probes on their own.
    fn stop(self) -> Vec<JoinHandle<()>> {
        let _ = self.stop.send(true);
        self.tasks
    }
}

/// The agent's TLS identity and CA, once loaded.
struct TlsState {
    identity: tls::TlsIdentity,
    ca: Option<Arc<rustls::RootCertStore>>,
}

/// A STAMP socket and the reflector state it answers with.
type BoundReflector = (ProbeSocket, Arc<Mutex<Reflector>>);

/// The throughput server and its data listener, before the agent runs.
struct Throughput {
    server: Arc<Server>,
    listener: DataListener,
}

/// An agent whose sockets are bound (so their addresses are known) but not yet running.
pub struct Agent {
    config: AgentConfig,
    reflectors: Vec<BoundReflector>,
    tcp_listeners: Vec<tokio::net::TcpListener>,
    tls: Option<TlsState>,
    quic_endpoints: Vec<quinn::Endpoint>,
    throughput: Option<Throughput>,
    /// The one throughput test this agent takes part in at a time, answering or asking.
    slot: Arc<TestSlot>,
    /// The STAMP key files the configuration names, read; and the reflectors they key
    /// (kept here, since a newer mesh changes their peers' keys).
    keys: KeyRing,
    stamp_states: Vec<Arc<Mutex<Reflector>>>,
}

/// The responders' counters, one per protocol, shared with their tasks.
#[derive(Default)]
struct Counters {
    stamp: Vec<Arc<Mutex<Reflector>>>,
    tcp: Arc<Mutex<ResponderCount>>,
    quic: Arc<Mutex<ResponderCount>>,
}

impl Counters {
    /// The deltas since the last call.
    fn take(&self) -> ResponderCounters {
        let mut c = ResponderCounters::default();
        for r in &self.stamp {
            c.udp.add(&lock(r).take_counters());
        }
        c.tcp = std::mem::take(&mut *lock(&self.tcp));
        c.quic = std::mem::take(&mut *lock(&self.quic));
        c
    }
}

impl Agent {
    /// Binds every responder: STAMP and TCP at each listen address, QUIC at its port + 1,
    /// throughput data at the first address's + 2 and + 3 (port 0 stays "any"). The labels
    /// were resolved at start ([`resolve`]).
    pub fn bind(config: Resolved) -> Result<Agent, AgentError> {
        let config = config.into_config();
        let reflectors = bind_reflectors(&config)?;
        let tcp_listeners = match config.reflector.tcp {
            true => bind_tcp(&reflectors)?,
            false => Vec::new(),
        };
        let tls = match &config.tls {
            None => None,
            Some(t) => Some(TlsState {
                identity: tls::TlsIdentity::load(&t.key, config.identity.id.as_str())?,
                ca: t.ca.as_deref().map(tls::load_ca).transpose()?,
            }),
        };
        let slot = TestSlot::new();
        let (mut quic_endpoints, mut throughput) = (Vec::new(), None);
        if let (Some(t), true) = (&tls, config.reflector.quic) {
            quic_endpoints = bind_quic(&config, t)?;
            throughput = bind_throughput(&config, t, &slot)?;
        }
        let stamp_states = reflectors.iter().map(|(_, r)| r.clone()).collect();
        let mut agent = Agent {
            config,
            reflectors,
            tcp_listeners,
            tls,
            quic_endpoints,
            throughput,
            slot,
            keys: KeyRing::default(),
            stamp_states,
        };
        agent.apply_keys()?;
        Ok(agent)
    }

    /// Whether the key files hold other keys than when last read (a rotation step): the
    /// reflectors have the new ones then, and the probers are to be started again with
    /// them. A file that no longer reads is logged, and the keys in use stay.
    fn keys_changed(&mut self) -> bool {
        match KeyRing::load(&self.config) {
            Ok(ring) if ring == self.keys => false,
            Ok(ring) => {
                tracing::info!(keys = %ring.ids(), "STAMP key files changed: keys in use now");
                self.keys = ring;
                self.give_reflectors_keys();
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "STAMP key file unreadable: the keys read before stay in use");
                false
            }
        }
    }

    /// Reads the key files the configuration names and gives the reflectors theirs.
    fn apply_keys(&mut self) -> Result<(), AgentError> {
        self.keys = KeyRing::load(&self.config).map_err(AgentError::Keys)?;
        if self.keys != KeyRing::default() {
            tracing::info!(keys = %self.keys.ids(), "STAMP authenticated mode");
        }
        self.give_reflectors_keys();
        Ok(())
    }

    fn give_reflectors_keys(&self) {
        let keys = bind::reflector_keys(&self.config, &self.keys);
        for r in &self.stamp_states {
            lock(r).set_keys(keys.clone());
        }
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
    pub fn throughput_port(&self) -> Option<u16> {
        self.throughput.as_ref().map(|t| t.server.data_port())
    }

    /// The fingerprint of this agent's certificate, for peers to pin (with `[tls]` only).
    pub fn fingerprint(&self) -> Option<tls::Fingerprint> {
        self.tls.as_ref().map(|t| t.identity.fingerprint)
    }

    /// Replaces the peers (used when peers' addresses are only known after binding); the
    /// QUIC responder trusts the new peers' fingerprints from now on.
    pub fn set_peers(&mut self, peers: Vec<PeerConfig>) -> Result<(), AgentError> {
        self.config.peers = peers;
        self.apply_keys()?;
        self.trust_peers()
    }

    /// The QUIC responder trusts the configured peers' fingerprints (from the next
    /// connection attempt on).
    fn trust_peers(&self) -> Result<(), AgentError> {
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
        self.declare_series(&recorder);
        let (stop_responders, responders_rx) = watch::channel(false);
        let (counters, responder_tasks) = self.spawn_responders(responders_rx);
        let mut probers = self.start_probers(&recorder)?;
        // Probers of peers a newer mesh replaced, settling their last probes.
        let mut retired: Vec<JoinHandle<()>> = Vec::new();
        let keys = self.tls.as_ref().map(|t| crate::http::ClientKeys {
            identity: &t.identity,
            ca: t.ca.as_ref(),
        });
        let mut mesh = match &self.config.mesh {
            Some(m) => Some(MeshWatch::new(m, keys)?),
            None => None,
        };
        let mut reporter = Reporter::new(
            self.config.identity.clone(),
            self.config.collector.as_ref(),
            keys,
            started,
            self.config.spool.as_deref(),
        )?;
        let report = |reporter: &mut Reporter| {
            reporter.take_snapshot(
                &mut lock(&recorder),
                counters.take(),
                net::clock::now_unix_ns(),
            )
        };
        // The first snapshot goes out at once, so configured series appear at zero.
        report(&mut reporter);
        flush(&mut reporter).await;
        let interval = self.config.report_interval();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = ticker.tick() => {
                    let snapshot = report(&mut reporter);
                    if self.config.collector.is_none() {
                        log_summary(&snapshot, interval);
                    }
                    flush(&mut reporter).await;
                    if let Some(update) = self.newer_mesh(mesh.as_mut()).await {
                        retired.retain(|t| !t.is_finished());
                        retired.extend(probers.stop());
                        probers = self.take_peers(update, &recorder);
                    } else if self.keys_changed() {
                        retired.retain(|t| !t.is_finished());
                        retired.extend(probers.stop());
                        probers = self.start_probers(&recorder)?;
                    }
                }
            }
        }
        // Stop probing and let outstanding probes settle; keep reflecting meanwhile so peers
        // that stop at the same time get their last replies.
        retired.extend(probers.stop());
        for t in retired {
            let _ = t.await;
        }
        tokio::time::sleep(REFLECTOR_LINGER).await;
        report(&mut reporter);
        let _ = tokio::time::timeout(Duration::from_secs(5), flush(&mut reporter)).await;
        let _ = stop_responders.send(true);
        for t in responder_tasks {
            let _ = t.await;
        }
        Ok(())
    }

    /// Every configured series and scheduled test direction in the recorder, so they
    /// appear at zero before any reply (and those of peers no longer configured go).
    fn declare_series(&self, recorder: &Mutex<Recorder>) {
        let mut series = Vec::new();
        for peer in &self.config.peers {
            let p = &peer.probe.protocols;
            let on = [
                (Protocol::Udp, p.udp),
                (Protocol::Tcp, p.tcp),
                (Protocol::Quic, p.quic && self.tls.is_some()),
            ];
            for (protocol, _) in on.into_iter().filter(|(_, on)| *on) {
                for kind in probe_kinds(protocol) {
                    series.push((peer.identity.clone(), protocol, *kind));
                }
            }
        }
        let mut flows = Vec::new();
        if let (Some(schedule), Some(_)) = (&self.config.throughput.schedule, &self.tls) {
            let peers = schedule
                .peers
                .iter()
                .filter_map(|id| self.config.peers.iter().find(|p| &p.identity.id == id));
            for peer in peers {
                for &protocol in &schedule.protocols {
                    for &flow in crate::probe::throughput::report::flows(schedule.direction) {
                        flows.push(xcbench_snapshot::ThroughputFlow {
                            peer: peer.identity.clone(),
                            protocol,
                            flow,
                            every_ns: Some(schedule.every.as_nanos() as u64),
                        });
                    }
                }
            }
        }
        lock(recorder).set_configured(&series, &flows);
    }

    /// A newer mesh's peers: trusted by the QUIC responder, their series declared, probed.
    /// What fails here would have failed at start with these peers: it is logged, and
    /// probing waits for a mesh that works.
    fn take_peers(&mut self, update: MeshUpdate, recorder: &Arc<Mutex<Recorder>>) -> Probers {
        self.config = update.config;
        let started = self
            .apply_keys()
            .and_then(|()| self.trust_peers())
            .and_then(|()| self.start_probers(recorder));
        self.declare_series(recorder);
        started.unwrap_or_else(|e| {
            tracing::error!(error = %net::chain(&e), "the new peers cannot be probed");
            Probers {
                stop: watch::channel(false).0,
                tasks: Vec::new(),
            }
        })
    }

    /// The probers, the load follower and the scheduler for the current peers.
    fn start_probers(&self, recorder: &Arc<Mutex<Recorder>>) -> Result<Probers, AgentError> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = self.spawn_probers(recorder, &stopped)?;
        tasks.extend(self.spawn_throughput(recorder, &stopped));
        Ok(Probers { stop, tasks })
    }

    /// A newer mesh that changes the peers, if the watch has one; a mesh that cannot be
    /// had or does not apply is logged and the current peers stay.
    async fn newer_mesh(&self, watch: Option<&mut MeshWatch>) -> Option<MeshUpdate> {
        let text = match watch?.poll().await {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %net::chain(&e), "mesh not checked for changes; the current peers stay");
                return None;
            }
        };
        let update = text.parse().and_then(|mesh| self.config.update_with(&mesh));
        match update {
            Ok(Some(u)) => {
                let ids = |v: &[xcbench_snapshot::AgentId]| {
                    v.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(",")
                };
                tracing::info!(
                    mesh = %text.name,
                    peers = u.config.peers.len(),
                    added = %ids(&u.added),
                    removed = %ids(&u.removed),
                    "mesh changed: probing the new peer set"
                );
                if !u.needs_restart.is_empty() {
                    tracing::warn!(changed = %u.needs_restart.join(", "), "mesh changed what only a restart applies; kept as started");
                }
                Some(u)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(mesh = %text.name, error = %e, "newer mesh refused; the current peers stay");
                None
            }
        }
    }

    /// The STAMP reflectors, the TCP responders and the QUIC endpoints (probes and
    /// throughput control), and the throughput data listener.
    fn spawn_responders(&mut self, stop: watch::Receiver<bool>) -> (Counters, Vec<JoinHandle<()>>) {
        let mut counters = Counters::default();
        let mut tasks = Vec::new();
        for (socket, state) in self.reflectors.drain(..) {
            counters.stamp.push(state.clone());
            tasks.push(tokio::spawn(net::stamp::reflect(
                socket,
                state,
                stop.clone(),
                self.config.clock_error,
            )));
        }
        for listener in self.tcp_listeners.drain(..) {
            let (timestamps, c) = (self.config.timestamps, counters.tcp.clone());
            tasks.push(tokio::spawn(net::tcp::serve(
                listener,
                timestamps,
                c,
                stop.clone(),
            )));
        }
        let throughput = self.throughput.take();
        let services = Services {
            probes: counters.quic.clone(),
            throughput: throughput.as_ref().map(|t| t.server.clone()),
        };
        // The endpoints stay here too: a newer mesh changes whom they trust.
        for endpoint in self.quic_endpoints.clone() {
            let serve = net::quic::endpoint::serve(endpoint, services.clone(), stop.clone());
            tasks.push(tokio::spawn(serve));
        }
        if let Some(t) = throughput {
            tasks.push(tokio::spawn(t.server.serve_data(t.listener, stop.clone())));
        }
        (counters, tasks)
    }

    /// One task per peer and probe kind, so a dead or slow peer never delays the others.
    fn spawn_probers(
        &self,
        recorder: &Arc<Mutex<Recorder>>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, AgentError> {
        let mut tasks = Vec::new();
        let timestamps = self.config.timestamps;
        for peer in &self.config.peers {
            let (p, rec, stop) = (peer.clone(), recorder.clone(), stop.clone());
            if peer.probe.protocols.udp {
                let keys = peer.probe.stamp_keys.as_ref();
                let session = net::stamp::run_sender(
                    p.clone(),
                    timestamps,
                    self.config.clock_error,
                    keys.and_then(|k| self.keys.get(k)),
                    rec.clone(),
                    stop.clone(),
                );
                tasks.push(spawn_session("udp", peer, session));
            }
            if peer.probe.protocols.tcp {
                let rr = net::tcp::run_rr(p.clone(), timestamps, rec.clone(), stop.clone());
                tasks.push(spawn_session("tcp rr", peer, rr));
                let connect = net::tcp::run_connect(p.clone(), rec.clone(), stop.clone());
                tasks.push(spawn_session("tcp connect", peer, connect));
            }
            if let (true, Some(t)) = (peer.probe.protocols.quic, &self.tls) {
                let full = tls::client_crypto(&t.identity, peer.fingerprint, t.ca.clone(), false)?;
                let resume = tls::client_crypto(&t.identity, peer.fingerprint, t.ca.clone(), true)?;
                match net::quic::prober::QuicClient::new(peer, full, resume) {
                    Ok(client) => {
                        let rr = net::quic::prober::run_rr(
                            p.clone(),
                            client.clone(),
                            rec.clone(),
                            stop.clone(),
                        );
                        tasks.push(spawn_session("quic rr", peer, rr));
                        let hs = net::quic::prober::run_handshakes(p, client, rec, stop);
                        tasks.push(spawn_session("quic handshake", peer, hs));
                    }
                    Err(e) => {
                        tracing::error!(peer = %peer.identity.id, error = %e, "quic probe session failed")
                    }
                }
            }
        }
        Ok(tasks)
    }

    /// The load follower (latency under load) and, with `[bench.schedule]`, the scheduler.
    fn spawn_throughput(
        &self,
        recorder: &Arc<Mutex<Recorder>>,
        stop: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let peers = tls::KnownPeers::new(
            self.config
                .peers
                .iter()
                .map(|p| (p.identity.id.clone(), p.fingerprint)),
        );
        let mut tasks = vec![tokio::spawn(follow_load(
            self.slot.clone(),
            peers,
            recorder.clone(),
            stop.clone(),
        ))];
        if let (Some(schedule), Some(t)) = (&self.config.throughput.schedule, &self.tls) {
            let clients = schedule
                .peers
                .iter()
                .filter_map(|id| self.config.peers.iter().find(|p| &p.identity.id == id))
                .filter_map(|peer| {
                    Client::new(t.identity.clone(), t.ca.clone(), peer.clone())
                        .map_err(|e| tracing::error!(peer = %peer.identity.id, error = %net::chain(&e), "scheduled throughput tests"))
                        .ok()
                })
                .collect();
            let scheduler = Scheduler {
                schedule: schedule.clone(),
                clients,
                slot: self.slot.clone(),
                recorder: recorder.clone(),
            };
            tasks.push(tokio::spawn(scheduler.run(stop.clone())));
        }
        tasks
    }
}

/// Start-up, in its one order: labels from instance metadata (`cloud = "auto"`, asked of
/// `lookup`), then the mesh (read, or fetched from the collector, and applied).
pub async fn resolve(
    config: AgentConfig,
    lookup: &net::metadata::Lookup,
) -> Result<Resolved, AgentError> {
    let config = net::metadata::resolve(config, lookup).await?;
    let config = net::mesh::resolve(config).await?;
    Ok(Resolved::already(config).expect("metadata read and the mesh applied"))
}

/// Resolves (instance metadata, then the mesh), binds and runs an agent until `shutdown`
/// resolves.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let config = resolve(config, &net::metadata::Lookup::default()).await?;
    Agent::bind(config)?.run(shutdown).await
}

/// Runs one probe session as its own task; a failure (e.g. no socket) is logged, not fatal
/// to the other sessions.
fn spawn_session(
    what: &'static str,
    peer: &PeerConfig,
    session: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> JoinHandle<()> {
    let id = peer.identity.id.clone();
    tokio::spawn(async move {
        if let Err(e) = session.await {
            tracing::error!(peer = %id, error = %e, "{what} probe session failed");
        }
    })
}

/// Without a collector nothing else shows the agent at work: one line every report
/// interval, per peer the probes sent, answered and lost (all protocols together).
fn log_summary(snapshot: &xcbench_snapshot::Snapshot, interval: Duration) {
    let mut peers: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for s in &snapshot.series {
        let p = peers.entry(s.peer.id.as_str()).or_default();
        p.0 += s.counters.sent;
        p.1 += s.counters.received;
        p.2 += s.counters.lost;
    }
    if peers.is_empty() {
        return;
    }
    let text: Vec<String> = peers
        .iter()
        .map(|(id, (sent, answered, lost))| {
            format!("{id}: sent {sent}, answered {answered}, lost {lost}")
        })
        .collect();
    tracing::info!(
        "probes in the last {interval:?} (no [collector]; this line every {interval:?}): {}",
        text.join("; ")
    );
}

async fn flush(reporter: &mut Reporter) {
    if let Err(e) = reporter.flush().await {
        tracing::warn!(queued = reporter.queued(), error = %e, "snapshot not delivered yet");
    }
}

//! xcbench collector: receives snapshots from agents, merges their histograms losslessly,
//! and serves Prometheus metrics computed at scrape time.
//!
//! HTTP: `POST /api/v1/snapshots` (JSON snapshot; 200 `accepted` or `duplicate` once it is
//! durably stored, 4xx with the reason otherwise, 503 when it could not be stored),
//! `GET /api/v1/history` (a label selection over a time range: merged histograms, quantiles,
//! counts within thresholds, counters), `GET /api/v1/mesh` (the mesh file agents fetch),
//! `GET /metrics`, `GET /healthz`.
//!
//! With `[tls]` every route is HTTPS, and a snapshot is taken only from a client whose
//! certificate is that agent's: pinned (the mesh file's fingerprints, `tls.agents`) or
//! CA-issued with the agent's id among its names; any other is refused with 403 and
//! counted (`xcbench_collector_snapshots_total{result="forbidden"}`). Reads (`/metrics`,
//! history, mesh) need no client certificate. Without `[tls]` the collector listens only on
//! loopback, unless `plain_http = true` says otherwise on purpose.
//!
//! # Layout
//! - [`config`]: `collector.toml` into typed values.
//! - [`admission`]: who may report: the pins (`tls.agents`, the mesh file's), the CA, the
//!   verdict per snapshot (403 otherwise), refreshed as the mesh file changes.
//! - [`store`]: sans-IO merged histograms, counters, sliding window, idempotent ingest.
//! - [`exposition`]: the scrape-time Prometheus collector, the metric catalog, families by
//!   area, and text rendering.
//! - [`db`]: the durable history (redb): append before acknowledging, downsample,
//!   query, restore after a restart.
//! - [`slo`]: the SLO file at the collector: exact threshold counts, verdicts on a timer,
//!   and the reading of history answers the gate shares.
//! - [`mesh`]: the mesh file served to agents and listed in `/metrics`, read again when it
//!   changes.
//! - `http`: the routes and their handlers.
//! - [`listener`]: plain TCP or TLS with client certificates; the peer of each connection.
//! - this file: [`Collector`] (bind, serve) and [`run`]; the system clock.

#![forbid(unsafe_code)]

pub mod admission;
pub mod config;
pub mod db;
pub mod exposition;
mod http;
pub mod listener;
pub mod mesh;
pub mod remote_write;
pub mod slo;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use config::CollectorConfig;
use db::History;
use exposition::Clock;
use http::AppState;
use store::Store;

/// Why the collector could not run.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("listen {addr}: cannot bind: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http server: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    History(#[from] db::HistoryError),
    /// The key pair or CA of `[tls]` could not be loaded.
    #[error("tls")]
    Tls(#[from] xcbench_agent::tls::TlsError),
    /// The mesh file could not be read or is not valid.
    #[error(transparent)]
    Mesh(#[from] xcbench_snapshot::config_text::ConfigError),
    #[error(transparent)]
    RemoteWrite(#[from] remote_write::RemoteWriteError),
}

/// How often aged history slots move to their next tier.
const MIGRATE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// A collector with its listener bound.
pub struct Collector {
    listener: listener::Incoming,
    state: Arc<AppState>,
    /// The SLO file judged every interval, if any.
    slo: Option<(Arc<xcbench_slo::SloFile>, std::time::Duration)>,
}

/// Unix time in ns from the system clock: the collector's one clock read; everything else
/// takes the time as an argument.
#[allow(clippy::disallowed_methods)]
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

impl Collector {
    pub async fn bind(config: &CollectorConfig) -> Result<Collector, CollectorError> {
        let tcp = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| CollectorError::Bind {
                addr: config.listen,
                source,
            })?;
        let bind_error = |source| CollectorError::Bind {
            addr: config.listen,
            source,
        };
        let (listener, trust) = match &config.tls {
            Some(t) => {
                let identity = xcbench_agent::tls::TlsIdentity::load(&t.key, "xcbench-collector")?;
                tracing::info!(fingerprint = %identity.fingerprint, "collector: HTTPS; agents pin this fingerprint");
                let ca =
                    t.ca.as_deref()
                        .map(xcbench_agent::tls::load_ca)
                        .transpose()?;
                let server = xcbench_agent::tls::https_server(&identity)?;
                (
                    listener::Incoming::tls(tcp, server).map_err(bind_error)?,
                    Some((t.agents.clone(), ca)),
                )
            }
            None => {
                if config.plain_http {
                    tracing::warn!(listen = %config.listen, "collector: plain HTTP (plain_http = true): anyone who reaches the port can report in any agent's name");
                }
                (listener::Incoming::plain(tcp).map_err(bind_error)?, None)
            }
        };
        let clock = system_clock();
        let mut store = Store::new(
            config.window.as_nanos() as u64,
            config.window_slot.as_nanos() as u64,
            config.max_series,
            exposition::LATENCY_BUCKETS,
        );
        store.set_windowed(config.exposition.windowed());
        store.set_native_schema(config.native_schema());
        let history = match &config.data_dir {
            Some(dir) => History::open(dir, config.history.clone())?,
            None => History::in_memory(config.history.clone())?,
        };
        if let Some(slo) = &config.slo {
            store.set_thresholds(slo.thresholds());
        }
        let mesh = config
            .mesh
            .as_deref()
            .map(mesh::MeshSource::open)
            .transpose()?;
        if let Some(m) = &mesh {
            store.set_mesh_agents(m.served().agents.clone());
        }
        let trust = trust
            .map(|(own, ca)| admission::Trust::new(own, ca, mesh.as_ref().map(|m| m.served())))
            .transpose()?;
        let remote_write = config
            .remote_write
            .clone()
            .map(|rw| {
                let stats = Arc::new(remote_write::Stats::default());
                store.remote_write = Some(stats.clone());
                remote_write::Writer::open(rw, config.data_dir.as_deref(), stats).map(Arc::new)
            })
            .transpose()?;
        let now = clock();
        store.restore(history.restore(now.saturating_sub(store.window_ns()))?, now);
        let store = Arc::new(Mutex::new(store));
        Ok(Collector {
            listener,
            state: Arc::new(AppState {
                store,
                history: Arc::new(Mutex::new(history)),
                exposition: config.exposition.clone(),
                remote_write,
                clock,
                mesh: mesh.map(Mutex::new),
                trust: trust.map(Mutex::new),
            }),
            slo: config
                .slo
                .clone()
                .map(|f| (Arc::new(f), config.slo_interval)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        use axum::serve::Listener;
        self.listener
            .local_addr()
            .expect("bound listener has an address")
            .addr
    }

    /// The store, for in-process readers (the demo's table).
    pub fn store(&self) -> Arc<Mutex<Store>> {
        self.state.store.clone()
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CollectorError> {
        let migrate = tokio::spawn(migrate_history(self.state.clone()));
        let send = self
            .state
            .remote_write
            .clone()
            .map(|w| tokio::spawn(remote_write::send_loop(w, self.state.clock.clone())));
        let reload = self
            .state
            .mesh
            .is_some()
            .then(|| tokio::spawn(reload_mesh(self.state.clone())));
        let judge = self
            .slo
            .map(|(slo, every)| tokio::spawn(judge_slo(self.state.clone(), slo, every)));
        let app = http::router(self.state).into_make_service_with_connect_info::<listener::Peer>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(CollectorError::Serve);
        migrate.abort();
        if let Some(s) = send {
            s.abort();
        }
        if let Some(r) = reload {
            r.abort();
        }
        if let Some(j) = judge {
            j.abort();
        }
        served
    }
}

/// Binds and serves until `shutdown` resolves.
pub async fn run(
    config: CollectorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CollectorError> {
    let collector = Collector::bind(&config).await?;
    tracing::info!(addr = %collector.local_addr(), "collector listening");
    collector.serve(shutdown).await
}

/// Moves aged history slots to their next tier every [`MIGRATE_EVERY`].
async fn migrate_history(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(MIGRATE_EVERY);
    loop {
        tick.tick().await;
        let state = state.clone();
        let done = tokio::task::spawn_blocking(move || {
            let now = (state.clock)();
            http::lock(&state.history).migrate(now)
        })
        .await;
        match done {
            Ok(Ok(m)) if m.merged + m.expired > 0 => {
                tracing::debug!(
                    merged = m.merged,
                    expired = m.expired,
                    "history downsampled"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "history not downsampled"),
            Err(e) => tracing::error!(error = %e, "history downsampling panicked"),
        }
    }
}

/// Reads the mesh file again every [`mesh::RELOAD_EVERY`]: a valid change is served and
/// listed from then on; an invalid one is logged once and the last good one stays.
async fn reload_mesh(state: Arc<AppState>) {
    let Some(source) = &state.mesh else { return };
    let mut tick = tokio::time::interval(mesh::RELOAD_EVERY);
    let mut refused: Option<String> = None;
    loop {
        tick.tick().await;
        // A small file: read in place rather than on the blocking pool.
        let result = http::lock(source).reload();
        match result {
            Ok(mesh::Reload::Unchanged) => {}
            Ok(mesh::Reload::Changed) => {
                let served = http::lock(source).served().clone();
                tracing::info!(
                    agents = served.agents.len(),
                    "mesh file changed: serving it"
                );
                if let Some(trust) = &state.trust {
                    http::lock(trust).refresh(&served);
                }
                let stale = {
                    let mut store = http::lock(&state.store);
                    let gone: Vec<xcbench_snapshot::AgentId> = store
                        .mesh_agents()
                        .iter()
                        .filter(|a| !served.agents.iter().any(|b| b.id == a.id))
                        .map(|a| a.id.clone())
                        .collect();
                    let stale = state
                        .remote_write
                        .as_ref()
                        .filter(|_| !gone.is_empty())
                        .map(|w| {
                            let mut buffers = w.buffers();
                            exposition::remote_write_stale(
                                &store,
                                &state.exposition,
                                &gone,
                                (state.clock)(),
                                &w.config,
                                &mut buffers.requests,
                            );
                            buffers
                        });
                    store.set_mesh_agents(served.agents);
                    stale
                };
                // Pairs that left the mesh: their series end in the store now.
                if let (Some(w), Some(buffers)) = (state.remote_write.clone(), stale) {
                    let _ = tokio::task::spawn_blocking(move || w.queue(buffers)).await;
                }
                refused = None;
            }
            Err(e) => {
                let text = e.to_string();
                if refused.as_ref() != Some(&text) {
                    tracing::error!(error = %text, "mesh file refused: the last good one stays served");
                    refused = Some(text);
                }
            }
        }
    }
}

/// Judges the SLO file from the history every `every`, for `/metrics`.
async fn judge_slo(
    state: Arc<AppState>,
    slo: Arc<xcbench_slo::SloFile>,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let (state, slo) = (state.clone(), slo.clone());
        let done = tokio::task::spawn_blocking(move || {
            let now = (state.clock)();
            let layout = xcbench_snapshot::LatencyHistogram::new();
            let lowest = |v: u64| layout.inner().lowest_equivalent(v);
            let results = slo::judge_all(&state.history, &slo, now, lowest)?;
            http::lock(&state.store).set_verdicts(now, results);
            Ok::<(), slo::JudgeError>(())
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "SLO file not judged"),
            Err(e) => tracing::error!(error = %e, "judging the SLO file panicked"),
        }
    }
}

//! xcbench collector: receives snapshots from agents, merges their histograms losslessly,
//! and serves Prometheus metrics computed at scrape time.
//!
//! HTTP: `POST /api/v1/snapshots` (JSON snapshot; 200 `accepted` or `duplicate`, 4xx with the
//! reason otherwise), `GET /metrics`, `GET /healthz`.
//!
//! # Layout
//! - [`config`]: `collector.toml` into typed values.
//! - [`store`]: sans-IO merged histograms, counters, sliding window, idempotent ingest.
//! - [`exposition`]: the scrape-time Prometheus collector and text rendering.
//! - this file: the HTTP service and `run`.

pub mod config;
pub mod exposition;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use xcbench_snapshot::{Snapshot, MAX_SNAPSHOT_BYTES};

pub use config::CollectorConfig;
use exposition::{Clock, StoreCollector};
use store::{Ingest, Store};

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
}

struct AppState {
    store: Arc<Mutex<Store>>,
    registry: prometheus::Registry,
    clock: Clock,
}

/// A collector with its listener bound.
pub struct Collector {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

/// Unix time in ns from the system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

impl Collector {
    pub async fn bind(config: &CollectorConfig) -> Result<Collector, CollectorError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| CollectorError::Bind {
                addr: config.listen,
                source,
            })?;
        let store = Arc::new(Mutex::new(Store::new(
            config.window.as_nanos() as u64,
            config.window_slot.as_nanos() as u64,
            config.max_series,
            exposition::LATENCY_BUCKETS,
        )));
        let clock = system_clock();
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(StoreCollector::new(store.clone(), clock.clone())))
            .expect("a fresh registry takes one collector");
        Ok(Collector {
            listener,
            state: Arc::new(AppState {
                store,
                registry,
                clock,
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
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
        let app = Router::new()
            .route("/api/v1/snapshots", post(ingest))
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES))
            .with_state(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(CollectorError::Serve)
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

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

async fn ingest(State(state): State<Arc<AppState>>, body: Bytes) -> impl IntoResponse {
    let (snapshot, histograms) = match Snapshot::decode_with_histograms(&body) {
        Ok(s) => s,
        Err(e) => {
            lock(&state.store).handle_rejected();
            tracing::warn!(error = %e, "snapshot refused");
            return (StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    };
    let now = (state.clock)();
    match lock(&state.store).handle_snapshot(&snapshot, &histograms, now) {
        Ok(Ingest::Accepted) => (StatusCode::OK, "accepted\n".to_owned()),
        Ok(Ingest::Duplicate) => (StatusCode::OK, "duplicate\n".to_owned()),
        Err(e) => {
            tracing::warn!(agent = %snapshot.agent.id, error = %e, "snapshot refused");
            (StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n"))
        }
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let text = exposition::render(&state.registry.gather());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

//! xcbench collector: receives snapshots from agents, merges their histograms losslessly,
//! and serves Prometheus metrics computed at scrape time.
//!
//! HTTP: `POST /api/v1/snapshots` (JSON snapshot; 200 `accepted` or `duplicate`, 4xx with the
//! reason otherwise), `GET /metrics`, `GET /healthz`.
//!
//! # Layout
//! - [`config`]: `collector.toml` into typed values.
//! - [`store`]: sans-IO merged histograms, counters, sliding window, idempotent ingest.
//! - [`exposition`]: the scrape-time Prometheus collector, the metric catalog, families by
//!   area, and text rendering.
//! - `http`: the routes and their handlers.
//! - this file: [`Collector`] (bind, serve) and [`run`]; the system clock.

#![forbid(unsafe_code)]

pub mod config;
pub mod exposition;
mod http;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use config::CollectorConfig;
use exposition::{Clock, StoreCollector};
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
}

/// A collector with its listener bound.
pub struct Collector {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
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
        let app = http::router(self.state);
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

//! The collector's HTTP surface: the routes, and the handlers that turn a request into a store
//! call or a scrape. Decoding happens here, before the store's lock is taken, so a large or
//! hostile body never holds up scrapes.
//!
//! `POST /api/v1/snapshots` (JSON snapshot; 200 `accepted` or `duplicate`, 400 undecodable,
//! 422 refused by the store, each with the reason), `GET /metrics`, `GET /healthz`.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use xcbench_snapshot::{Snapshot, MAX_SNAPSHOT_BYTES};

use crate::exposition::{self, Clock};
use crate::store::{Ingest, Store};

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) registry: prometheus::Registry,
    pub(crate) clock: Clock,
}

/// Every route, over `state`.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/snapshots", post(ingest))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES))
        .with_state(state)
}

/// The store, even if a panic poisoned its lock: one panicked request must not stop ingest
/// and scrapes for good.
fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
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

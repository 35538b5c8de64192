//! The collector's HTTP surface: the routes, and the handlers that turn a request into a store
//! call or a scrape. Decoding happens here, before the store's lock is taken, so a large or
//! hostile body never holds up scrapes.
//!
//! `POST /api/v1/snapshots` (JSON snapshot; 200 `accepted` or `duplicate`, 400 undecodable,
//! 403 not from that agent's certificate (with `[tls]`), 422 refused by the store, 503 not
//! stored (the agent keeps it and tries again), each with the reason), `GET /api/v1/history` (see [`history_query`]), `GET /api/v1/mesh` (see
//! [`mesh_file`]), `GET /metrics`, `GET /healthz`.
//!
//! A snapshot is acknowledged only after the history committed it (fsync): the store checks
//! it, the history writes it, then the store takes it, all under the store's lock, so a
//! scrape never sees what a crash could lose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use xcbench_snapshot::{Histograms, Metric, Snapshot, MAX_SNAPSHOT_BYTES};

use xcbench_snapshot::AgentId;

use crate::admission::{Forbidden, Trust};
use crate::db::History;
use crate::exposition::{self, Clock};
use crate::listener::Peer;
use crate::mesh::MeshSource;
use crate::store::{Ingest, Store};
use xcbench_snapshot::history::Selection;

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) history: Arc<Mutex<History>>,
    /// What `/metrics` serves.
    pub(crate) exposition: exposition::Options,
    /// `[remote_write]`: where every snapshot's samples are queued.
    pub(crate) remote_write: Option<Arc<crate::remote_write::Writer>>,
    pub(crate) clock: Clock,
    /// The mesh file served to agents, if configured.
    pub(crate) mesh: Option<Mutex<MeshSource>>,
    /// With `[tls]`: whom snapshots are taken from.
    pub(crate) trust: Option<Mutex<Trust>>,
}

/// Every route, over `state`.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/snapshots", post(ingest))
        .route("/api/v1/history", get(history_query))
        .route("/api/v1/mesh", get(mesh_file))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES))
        .with_state(state)
}

/// The store or the history, even if a panic poisoned its lock: one panicked request must
/// not stop ingest and scrapes for good.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn ingest(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Bytes,
) -> impl IntoResponse {
    // A client without a certificate is refused before its body is decoded.
    if state.trust.is_some() && peer.chain.is_empty() {
        return forbidden(&state, &peer, None, &Forbidden::NoCertificate);
    }
    let (snapshot, histograms) = match Snapshot::decode_with_histograms(&body) {
        Ok(s) => s,
        Err(e) => {
            lock(&state.store).handle_rejected();
            tracing::warn!(error = %e, "snapshot refused");
            return (StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    };
    if let Some(trust) = &state.trust {
        let now_ns = (state.clock)();
        let now =
            rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_nanos(now_ns));
        let verdict = lock(trust)
            .current
            .authorize(&peer.chain, &snapshot.agent.id, now);
        if let Err(e) = verdict {
            return forbidden(&state, &peer, Some(&snapshot.agent.id), &e);
        }
    }
    // The fsync is blocking work: off the async workers.
    let stored =
        tokio::task::spawn_blocking(move || store_snapshot(&state, &snapshot, &histograms))
            .await
            .unwrap_or_else(|e| Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))));
    match stored {
        Ok(text) => (StatusCode::OK, text.to_owned()),
        Err(refusal) => refusal,
    }
}

/// A snapshot the client may not send in that agent's name: 403, counted, logged.
fn forbidden(
    state: &AppState,
    peer: &Peer,
    claimed: Option<&AgentId>,
    why: &Forbidden,
) -> (StatusCode, String) {
    lock(&state.store).handle_forbidden();
    tracing::warn!(addr = %peer.addr, agent = ?claimed.map(AgentId::as_str), reason = %why, "snapshot forbidden");
    (StatusCode::FORBIDDEN, format!("{why}\n"))
}

/// Check, write durably, then take: the snapshot's fate as an acknowledgement or a refusal.
fn store_snapshot(
    state: &AppState,
    snapshot: &Snapshot,
    histograms: &Histograms,
) -> Result<&'static str, (StatusCode, String)> {
    let now = (state.clock)();
    let mut store = lock(&state.store);
    match store.check(snapshot) {
        Ok(Ingest::Accepted) => {}
        Ok(Ingest::Duplicate) => return Ok("duplicate\n"),
        Err(e) => {
            tracing::warn!(agent = %snapshot.agent.id, error = %e, "snapshot refused");
            return Err((StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")));
        }
    }
    if let Err(e) = lock(&state.history).append(snapshot, histograms, now) {
        let e = anyhow_chain(&e);
        tracing::error!(agent = %snapshot.agent.id, error = %e, "snapshot not stored");
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not stored: {e}\n"),
        ));
    }
    store.apply(snapshot, histograms, now);
    if let Some(w) = &state.remote_write {
        let mut buffers = w.buffers();
        exposition::remote_write(
            &store,
            &state.exposition,
            snapshot,
            &w.config,
            &mut buffers.requests,
        );
        drop(store);
        w.queue(buffers);
    }
    Ok("accepted\n")
}

/// An error and its sources, `: `-separated.
fn anyhow_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A history query: `GET /api/v1/history?` with any of the labels `src_agent`, `src_cloud`,
/// `src_region`, `dst_agent`, `dst_cloud`, `dst_region`, `protocol`, `kind`, `load` (exact
/// matches), `metric` (comma-separated: `rtt`, `one_way_forward`, ...; default `rtt`),
/// `from` and `to` (Unix seconds; default the last hour), `le` (comma-separated thresholds in
/// seconds). Answers the JSON of [`xcbench_snapshot::history::HistoryAnswer`], 400 naming the
/// parameter otherwise.
async fn history_query(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let now = (state.clock)();
    let query = match HistoryQuery::parse(&params, now) {
        Ok(q) => q,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let layout = xcbench_snapshot::LatencyHistogram::new();
    let lowest = move |v: u64| layout.inner().lowest_equivalent(v);
    let answer = tokio::task::spawn_blocking(move || {
        let span = crate::store::history::Span {
            from: query.from,
            to: query.to,
            now,
        };
        lock(&state.history).query(
            &query.selection,
            span,
            &query.metrics,
            &query.thresholds_ns,
            lowest,
        )
    })
    .await;
    match answer {
        Ok(Ok(a)) => Json(a).into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", anyhow_chain(&e)),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// A parsed history query.
struct HistoryQuery {
    selection: Selection,
    from: u64,
    to: u64,
    metrics: Vec<Metric>,
    thresholds_ns: Vec<u64>,
}

/// Why a history query's parameters were refused (400): the parameter, the value, what
/// was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}{value}: {expected}")]
struct QueryError {
    param: String,
    /// ` = "value"`, or empty for a parameter that should not be there.
    value: String,
    expected: String,
}

impl QueryError {
    fn new(param: &str, value: &str, expected: &str) -> QueryError {
        QueryError {
            param: param.to_owned(),
            value: format!(" = {value:?}"),
            expected: expected.to_owned(),
        }
    }
}

impl HistoryQuery {
    /// From the URL's parameters; the error names the parameter, the value and what was
    /// expected.
    fn parse(p: &HashMap<String, String>, now: u64) -> Result<HistoryQuery, QueryError> {
        const RANGE: [&str; 4] = ["metric", "from", "to", "le"];
        let known = || Selection::LABELS.iter().chain(&RANGE);
        if let Some(k) = p.keys().find(|k| !known().any(|n| n == k)) {
            let names: Vec<&str> = known().copied().collect();
            return Err(QueryError {
                param: k.clone(),
                value: String::new(),
                expected: format!("unknown parameter; expected one of {}", names.join(", ")),
            });
        }
        let bad = QueryError::new;
        let selection = Selection::from_pairs(|name| p.get(name).map(String::as_str))
            .map_err(|e| bad(e.name, &e.value, &e.expected))?;
        let seconds = |name: &str, v: &str| -> Result<u64, QueryError> {
            unix_seconds(v).ok_or_else(|| bad(name, v, "must be Unix seconds, e.g. 1764500000"))
        };
        let to = match p.get("to") {
            Some(v) => seconds("to", v)?,
            None => now,
        };
        let from = match p.get("from") {
            Some(v) => seconds("from", v)?,
            None => to.saturating_sub(3_600_000_000_000),
        };
        if from >= to {
            return Err(bad(
                "from",
                &p.get("from").cloned().unwrap_or_default(),
                "must be before to",
            ));
        }
        let metrics = match p.get("metric") {
            None => vec![Metric::Rtt],
            Some(v) => v
                .split(',')
                .map(|m| {
                    m.parse()
                        .map_err(|e: xcbench_snapshot::Expected| bad("metric", m, &e.0))
                })
                .collect::<Result<_, _>>()?,
        };
        let thresholds_ns = match p.get("le") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(|t| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 60.0)
                        .map(|s| (s * 1e9).round() as u64)
                        .ok_or_else(|| {
                            bad(
                                "le",
                                t,
                                "must be seconds above 0 and at most 60, e.g. 0.002",
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(HistoryQuery {
            selection,
            from,
            to,
            metrics,
            thresholds_ns,
        })
    }
}

/// `1764500000` or `1764500000.123456789`: Unix seconds to nanoseconds, exactly (an f64
/// would round today's times to about 256 ns).
fn unix_seconds(v: &str) -> Option<u64> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 9 {
        return None;
    }
    let ns: u64 = format!("{frac:0<9}").parse().ok()?;
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(ns)
}

/// The mesh file as last read (a broken change is never served): 200 with its text and
/// `ETag`, 304 when `If-None-Match` names that version, 404 without `mesh` in the
/// collector's configuration.
async fn mesh_file(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(source) = &state.mesh else {
        return (
            StatusCode::NOT_FOUND,
            "no mesh file: the collector's configuration sets none (mesh = \"/etc/xcbench/mesh.toml\")\n",
        )
            .into_response();
    };
    let served = lock(source).served().clone();
    let etag = [(header::ETAG, served.etag.clone())];
    let asked = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if asked.is_some_and(|a| served.matches(a)) {
        return (StatusCode::NOT_MODIFIED, etag).into_response();
    }
    (
        etag,
        [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
        served.text,
    )
        .into_response()
}

/// Renders part by part, each under a short hold of the store (expiring the windows
/// first), and sends each part's pieces after that hold is released.
async fn metrics(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let format =
        exposition::Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let areas =
        match exposition::Areas::from_query(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Ok(a) => a,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        };
    // Rendered a part at a time off the async workers, each under its own hold of the
    // store (snapshots are taken in between, where one whole answer held it for seconds),
    // and sent as it is rendered: the answer's memory is about its largest part's, not its
    // whole size (4.2 GB of text at 100,000 series; `exposition::Part`). Each part is of
    // one moment; two parts may be of moments a part's rendering apart.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let now = (state.clock)();
    tokio::task::spawn_blocking(move || {
        lock(&state.store).expire(now);
        for mut part in exposition::parts(format, exposition::SERIES_PER_PART) {
            while !part.done() {
                let pieces = {
                    let store = lock(&state.store);
                    exposition::render_part(&store, &state.exposition, areas, &mut part)
                };
                for piece in pieces {
                    if tx.blocking_send(Bytes::from(piece)).is_err() {
                        return; // the scraper went away
                    }
                }
            }
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|piece| piece.map(Ok::<_, std::convert::Infallible>))
    }));
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::unix_seconds;

    #[test]
    fn unix_seconds_keep_every_nanosecond() {
        assert_eq!(
            unix_seconds("1796068968.814032555"),
            Some(1_796_068_968_814_032_555)
        );
        assert_eq!(unix_seconds("1796068968"), Some(1_796_068_968_000_000_000));
        assert_eq!(unix_seconds("1.5"), Some(1_500_000_000));
        for bad in [
            "",
            "-1",
            "1e9",
            "1.1234567891",
            "x",
            ".5",
            "99999999999999999999",
        ] {
            assert_eq!(unix_seconds(bad), None, "{bad}");
        }
    }
}

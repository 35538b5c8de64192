//! Remote write 1.0 from the collector into a Prometheus-compatible store (Prometheus with
//! `--web.enable-remote-write-receiver`, Mimir, Thanos Receive, VictoriaMetrics).
//!
//! Every accepted snapshot becomes samples of what it changed ([`crate::exposition::remote_write`]:
//! its series, tests and agent, each sample stamped with the end of the interval it was
//! measured in), queued durably ([`outbox`]) before the snapshot is acknowledged, and sent
//! in order, one request at a time, as protobuf + snappy: removed on 2xx; tried again with
//! backoff on no answer, 5xx, 401, 403 and 404 (the sender or the URL is wrong, not the
//! data), and 429 when `retry_on_429` (after its `Retry-After`); dropped and counted on any
//! other 4xx. A receiver outage or a collector restart loses nothing the
//! queue holds; past `max_queue_mb` the oldest requests give way, counted.
//!
//! - this file: [`RemoteWriteConfig`], the [`Stats`] `/metrics` serves, [`Writer`] (the
//!   queue, the stats and the sender's wake-up) and [`send_loop`].
//! - `outbox`: the durable queue.

pub mod outbox;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use outbox::Outbox;

/// `[remote_write]` of collector.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWriteConfig {
    /// `http://` or `https://` (then with `ca`): the receiver's write endpoint.
    pub url: String,
    /// Samples per request (default 500).
    pub max_samples_per_send: usize,
    /// `X-Scope-OrgID` (Mimir, Cortex, Thanos Receive tenants).
    pub org_id: Option<String>,
    /// Basic auth: the user name and a file holding the password.
    pub basic_auth: Option<(String, PathBuf)>,
    /// A file holding a bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// PEM CA certificates an `https://` receiver is checked against.
    pub ca: Option<PathBuf>,
    /// Try a 429 again (after its `Retry-After`) instead of dropping the request.
    pub retry_on_429: bool,
    /// The queue's bound in bytes as sent (snappy; default 1 GiB); past it the oldest
    /// requests give way.
    pub max_queue_bytes: u64,
    /// Per request (default 30 s).
    pub timeout: Duration,
    /// Labels every sample carries unless it has one of that name, sorted by name: each
    /// shard of a sharded mesh names itself, so two shards never write one series.
    pub external_labels: Vec<(String, String)>,
    /// How latency histograms are written.
    pub histograms: Histograms,
}

/// `remote_write.histograms`: how a latency histogram is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Histograms {
    /// `_bucket` (one series per `le`), `_sum` and `_count`: what every receiver keeps.
    #[default]
    Classic,
    /// One native histogram per series (the schema of `native_histogram_error`): a sample
    /// where classic takes ~30, for receivers that keep native histograms (Prometheus 2.40+
    /// with `--enable-feature=native-histograms`, Mimir); VictoriaMetrics 1.79 drops them.
    /// The shipped dashboards, rules and `gate --prometheus` read either form.
    Native,
}

impl RemoteWriteConfig {
    /// `url` with every other field at its default.
    pub fn new(url: &str) -> RemoteWriteConfig {
        RemoteWriteConfig {
            url: url.to_owned(),
            max_samples_per_send: 500,
            org_id: None,
            basic_auth: None,
            bearer_token_file: None,
            ca: None,
            retry_on_429: false,
            max_queue_bytes: 1 << 30,
            timeout: Duration::from_secs(30),
            external_labels: Vec::new(),
            histograms: Histograms::Classic,
        }
    }
}

/// What `/metrics` serves of remote write (`xcbench_remote_write_*`).
#[derive(Debug, Default)]
pub struct Stats {
    pub sent_samples: AtomicU64,
    pub sent_bytes: AtomicU64,
    pub retries: AtomicU64,
    pub rejected_samples: AtomicU64,
    pub queue_full_samples: AtomicU64,
    /// Samples of snapshots whose requests could not be written to the queue (its disk).
    pub not_queued_samples: AtomicU64,
    pub queue_samples: AtomicU64,
    pub queue_bytes: AtomicU64,
    pub last_sent_ns: AtomicU64,
}

impl Stats {
    fn set_depth(&self, d: outbox::Depth) {
        self.queue_samples.store(d.samples, Ordering::Relaxed);
        self.queue_bytes.store(d.bytes, Ordering::Relaxed);
    }
}

/// Why remote write could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("remote_write: queue: {0}")]
    Queue(#[from] outbox::QueueError),
    #[error("remote_write.{field} = {path:?}: must be a file that can be read: {source}")]
    Secret {
        field: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("remote_write.ca: {0}")]
    Ca(#[from] xcbench_agent::tls::TlsError),
    #[error(
        "remote_write.{field}: not valid in an HTTP header (a line break or a control character?)"
    )]
    Header { field: &'static str },
}

/// Remote write as the ingest path and the sender share it.
pub struct Writer {
    pub config: RemoteWriteConfig,
    pub outbox: Outbox,
    pub stats: Arc<Stats>,
    pub wake: tokio::sync::Notify,
    client: reqwest::Client,
    headers: reqwest::header::HeaderMap,
    /// Buffers a snapshot's requests were built and compressed in, for the next ones.
    spare: std::sync::Mutex<Vec<Buffers>>,
}

/// What one snapshot's requests are built in ([`crate::exposition::remote_write`] fills
/// `requests`) and compressed in: taken with [`Writer::buffers`], given back by
/// [`Writer::queue`], so the ingest path stops allocating them once they have grown.
#[derive(Default)]
pub struct Buffers {
    pub requests: crate::exposition::Requests,
    compressed: Vec<u8>,
}

/// Buffers kept for reuse: snapshots are queued one at a time (under the store's lock) or a
/// few at once.
const SPARE_BUFFERS: usize = 4;

impl Writer {
    /// Opens the queue (under `data_dir`, or in memory) and reads the secrets.
    pub fn open(
        config: RemoteWriteConfig,
        data_dir: Option<&std::path::Path>,
        stats: Arc<Stats>,
    ) -> Result<Writer, RemoteWriteError> {
        use reqwest::header::{HeaderValue, AUTHORIZATION};
        let outbox = match data_dir {
            Some(d) => Outbox::open(d)?,
            None => Outbox::in_memory()?,
        };
        stats.set_depth(outbox.depth());
        let read = |field: &'static str, path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .map_err(|source| RemoteWriteError::Secret {
                    field,
                    path: path.clone(),
                    source,
                })
        };
        let mut headers = reqwest::header::HeaderMap::new();
        let header = |field: &'static str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| RemoteWriteError::Header { field })
        };
        for (name, value) in [
            ("content-encoding", "snappy"),
            ("content-type", "application/x-protobuf"),
            ("x-prometheus-remote-write-version", "0.1.0"),
            ("user-agent", concat!("xcbench/", env!("CARGO_PKG_VERSION"))),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        if let Some(org) = config.org_id.as_deref() {
            headers.insert("x-scope-orgid", header("org_id", org)?);
        }
        if let Some((user, file)) = &config.basic_auth {
            let password = read("basic_auth.password_file", file)?;
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.insert(
                AUTHORIZATION,
                header("basic_auth", &format!("Basic {token}"))?,
            );
        }
        if let Some(file) = &config.bearer_token_file {
            let token = read("bearer_token_file", file)?;
            headers.insert(
                AUTHORIZATION,
                header("bearer_token_file", &format!("Bearer {token}"))?,
            );
        }
        let tls = config
            .ca
            .as_deref()
            .map(|ca| {
                let roots = xcbench_agent::tls::load_ca(ca)?;
                xcbench_agent::tls::https_client(None, None, Some(roots))
            })
            .transpose()?;
        let client = xcbench_agent::http::client(config.timeout, config.timeout, tls);
        Ok(Writer {
            config,
            outbox,
            stats,
            wake: tokio::sync::Notify::new(),
            client,
            headers,
            spare: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Buffers to build a snapshot's requests in: one given back before, or new.
    pub fn buffers(&self) -> Buffers {
        self.spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// Queues a snapshot's requests; counts what the bound pushed out, or what could not be
    /// queued at all. The buffers are kept for the next snapshot.
    pub fn queue(&self, mut buffers: Buffers) {
        // Queued as sent: snappy-compressed (a fifth of the size or less), each request
        // in a buffer of its own size.
        let mut encoder = snap::raw::Encoder::new();
        let Buffers {
            requests,
            compressed: out,
        } = &mut buffers;
        let compressed: Vec<(usize, Vec<u8>)> = requests
            .iter()
            .filter_map(|(n, body)| {
                out.resize(snap::raw::max_compress_len(body.len()), 0);
                let len = encoder.compress(body, out).ok()?;
                Some((n, out[..len].to_vec()))
            })
            .collect();
        let samples: usize = requests.iter().map(|(n, _)| n).sum();
        match self.outbox.push(&compressed, self.config.max_queue_bytes) {
            Ok(dropped) => {
                self.stats
                    .queue_full_samples
                    .fetch_add(dropped, Ordering::Relaxed);
                if dropped > 0 {
                    tracing::warn!(
                        samples = dropped,
                        "remote write: queue full, oldest samples dropped"
                    );
                }
            }
            Err(e) => {
                self.stats
                    .not_queued_samples
                    .fetch_add(samples as u64, Ordering::Relaxed);
                tracing::error!(error = %e, samples, "remote write: samples not queued");
            }
        }
        self.stats.set_depth(self.outbox.depth());
        self.wake.notify_one();
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < SPARE_BUFFERS {
            spare.push(buffers);
        }
    }
}

/// Shortest and longest wait before a request is tried again.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A `Retry-After` longer than this is waited for this long.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// Sends the queue's requests in order, one at a time, until the task is dropped; `clock`
/// (Unix ns) dates the last accepted request.
pub async fn send_loop(writer: Arc<Writer>, clock: Arc<dyn Fn() -> u64 + Send + Sync>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let w = writer.clone();
        let front = tokio::task::spawn_blocking(move || w.outbox.front()).await;
        let request = match front {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) => {
                // Woken by the next queued snapshot, or looked at again in a second.
                let _ = tokio::time::timeout(Duration::from_secs(1), writer.wake.notified()).await;
                continue;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "remote write: queue unreadable");
                tokio::time::sleep(BACKOFF_MAX).await;
                continue;
            }
            Err(_) => return,
        };
        let body = request.body.clone();
        let size = body.len() as u64;
        let answer = writer
            .client
            .post(&writer.config.url)
            .headers(writer.headers.clone())
            .body(body)
            .send()
            .await;
        let wait = match answer {
            Ok(r) if r.status().is_success() => {
                writer.stats.sent_bytes.fetch_add(size, Ordering::Relaxed);
                writer.stats.last_sent_ns.store(clock(), Ordering::Relaxed);
                finish(&writer, &request, Done::Sent).await;
                backoff = BACKOFF_MIN;
                continue;
            }
            Ok(r) if r.status().as_u16() == 429 && writer.config.retry_on_429 => {
                let after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(RETRY_AFTER_MAX));
                tracing::warn!(status = 429, "remote write: receiver busy, trying again");
                after.unwrap_or(backoff)
            }
            Ok(r) if matches!(r.status().as_u16(), 401 | 403 | 404) => {
                // Who we are or where we write is wrong (a rotated token, a moved
                // endpoint): the data is not at fault, so it waits for the fix.
                let status = r.status().as_u16();
                tracing::error!(status, url = %writer.config.url, "remote write: receiver refuses the sender; kept, trying again");
                backoff
            }
            Ok(r) if r.status().is_server_error() => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    "remote write: receiver failed, trying again"
                );
                backoff
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                tracing::warn!(status, answer = %text.trim(), samples = request.samples, "remote write: request refused; dropped");
                finish(&writer, &request, Done::Rejected).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "remote write: receiver unreachable, trying again");
                backoff
            }
        };
        writer.stats.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum Done {
    Sent,
    Rejected,
}

/// Takes a request off the queue and counts it, unless the queue's bound pushed it out
/// while it was being sent (then it was counted as `queue_full` already).
async fn finish(writer: &Arc<Writer>, request: &outbox::Request, done: Done) {
    let counter = match done {
        Done::Sent => &writer.stats.sent_samples,
        Done::Rejected => &writer.stats.rejected_samples,
    };
    let (w, id) = (writer.clone(), request.id);
    match tokio::task::spawn_blocking(move || w.outbox.remove(id)).await {
        Ok(Ok(true)) => {
            counter.fetch_add(request.samples, Ordering::Relaxed);
        }
        Ok(Ok(false)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "remote write: sent request not removed"),
        Err(_) => {}
    }
    writer.stats.set_depth(writer.outbox.depth());
}

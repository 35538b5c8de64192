//! `xcbench gate`: reads an SLO file, asks a source for each objective's evidence, judges
//! it (`xcbench_slo::judge`) and returns the gate's answer. Sources: the collector's
//! history ([`history`], exact: full-resolution histograms), or a Prometheus-compatible API
//! ([`prometheus`]: exact with the collector's threshold counters, bucket-edged without).
//!
//! Exit codes follow from the outcome: 0 pass, 1 fail, 3 inconclusive (the verdict's), 2
//! the SLO file or the flags are wrong, 4 the source could not be read.

pub mod history;
pub mod measure;
pub mod prometheus;

use std::path::PathBuf;

use xcbench_slo::objective::Window;
use xcbench_slo::{judge, GateResult, SloFile};
use xcbench_snapshot::config_text::ConfigError;

/// Where the evidence comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The history API of a collector, e.g. `http://127.0.0.1:9862`, or of every
    /// collector of a sharded mesh (their answers merged), each with how it is known.
    Collector { urls: Vec<(String, HttpsTrust)> },
    /// A Prometheus-compatible HTTP API, e.g. `http://127.0.0.1:9090`.
    Prometheus { url: String },
    /// The probes of an agent configuration, run here for a while.
    Measure {
        config: PathBuf,
        duration: std::time::Duration,
    },
}

/// What `xcbench gate` was asked.
#[derive(Debug, Clone)]
pub struct GateRequest {
    pub slo: PathBuf,
    pub source: Source,
    /// Replaces every objective's window (e.g. the time since the migration started).
    pub window: Option<Window>,
    /// The time the gate judges at (Unix ns).
    pub now_unix_ns: u64,
    /// How an `https://` Prometheus is known (a collector's is beside its URL).
    pub https: HttpsTrust,
}

/// How the gate knows an `https://` source: the collector's pinned certificate
/// (`--collector-fingerprint`), or a CA (`--ca`) that vouches for the URL's host name.
#[derive(Debug, Clone, Default)]
pub struct HttpsTrust {
    pub pin: Option<xcbench_agent::tls::Fingerprint>,
    pub ca: Option<PathBuf>,
}

/// Why a source could not be read (`kind`: collector or prometheus).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{kind} {url}: not a base URL such as http://127.0.0.1:9862")]
    Url { kind: &'static str, url: String },
    /// An `https://` source with nothing to know it by.
    #[error("{kind} {url}: https:// needs --collector-fingerprint (the collector's pinned certificate) or --ca (a CA that vouches for its name)")]
    NoTrust { kind: &'static str, url: String },
    /// `--ca` does not load, or the TLS configuration does not build.
    #[error("{kind} {url}: tls")]
    Tls {
        kind: &'static str,
        url: String,
        #[source]
        source: xcbench_agent::tls::TlsError,
    },
    #[error("{kind} {url}: cannot be reached")]
    Unreachable {
        kind: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{kind} {url}: answered {status}: {body}")]
    Status {
        kind: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{kind} {url}: the answer is not what was asked for")]
    Answer {
        kind: &'static str,
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{kind} {url}: a histogram in the answer does not decode")]
    Histogram {
        kind: &'static str,
        url: String,
        #[source]
        source: xcbench_snapshot::HdrCodecError,
    },
    #[error("{kind} {url}: {message}")]
    Query {
        kind: &'static str,
        url: String,
        message: String,
    },
}

/// Unix nanoseconds as the seconds both APIs take, exactly: `1796061600.250000000`.
pub fn unix_seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Every objective of `slo` judged over `[from, to]` from a collector's history, at `now`
/// (the demo and `--measure` judge a run this way).
pub async fn judge_run(
    source: &history::CollectorSource,
    slo: &SloFile,
    from: u64,
    to: u64,
    now: u64,
) -> Result<Vec<xcbench_slo::ObjectiveResult>, SourceError> {
    let mut results = Vec::with_capacity(slo.objectives.len());
    for o in &slo.objectives {
        let mut evidence = source.evidence(o, from, to).await?;
        if let Some(b) = o.baseline {
            let (bf, bt) = b.range((from, to));
            evidence = xcbench_slo::evidence::against(evidence, source.evidence(o, bf, bt).await?);
        }
        results.push(judge(o, evidence, now));
    }
    Ok(results)
}

/// An HTTP API a source reads (the collector's, Prometheus'): its base URL and a client
/// with short timeouts and no proxy (private addresses only).
pub struct Api {
    pub kind: &'static str,
    pub base: String,
    client: reqwest::Client,
}

/// How long one query may take (a year of 10-minute slots answers in well under this).
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Api {
    pub fn new(kind: &'static str, url: &str, https: &HttpsTrust) -> Result<Api, SourceError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SourceError::Url {
                kind,
                url: url.into(),
            });
        }
        let tls = |source| SourceError::Tls {
            kind,
            url: url.into(),
            source,
        };
        let tls = if base.starts_with("https://") {
            if https.pin.is_none() && https.ca.is_none() {
                return Err(SourceError::NoTrust {
                    kind,
                    url: url.into(),
                });
            }
            let ca = https
                .ca
                .as_deref()
                .map(xcbench_agent::tls::load_ca)
                .transpose()
                .map_err(tls)?;
            Some(xcbench_agent::tls::https_client(None, https.pin, ca).map_err(tls)?)
        } else {
            None
        };
        let client = xcbench_agent::http::client(CONNECT_TIMEOUT, QUERY_TIMEOUT, tls);
        Ok(Api { kind, base, client })
    }

    /// `GET base+path?params`: the status and the body.
    pub async fn get(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(reqwest::StatusCode, Vec<u8>), SourceError> {
        let unreachable = |source| SourceError::Unreachable {
            kind: self.kind,
            url: self.base.clone(),
            source,
        };
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .query(params)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        Ok((status, body.to_vec()))
    }

    /// The error for an answer with another status than 200.
    pub fn status_error(&self, status: reqwest::StatusCode, body: &[u8]) -> SourceError {
        SourceError::Status {
            kind: self.kind,
            url: self.base.clone(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(500)
                .collect(),
        }
    }

    /// The error for an answer that is not the JSON asked for.
    pub fn answer_error(&self, source: serde_json::Error) -> SourceError {
        SourceError::Answer {
            kind: self.kind,
            url: self.base.clone(),
            source,
        }
    }
}

/// Why the gate gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Measure(#[from] measure::MeasureError),
}

impl GateError {
    /// 2: the SLO file or flags; 4: the data source.
    pub fn exit_code(&self) -> u8 {
        match self {
            // A malformed --collector/--prometheus URL is a bad flag, not an unread source.
            GateError::Config(_)
            | GateError::Source(
                SourceError::Url { .. } | SourceError::NoTrust { .. } | SourceError::Tls { .. },
            ) => 2,
            GateError::Source(_) | GateError::Measure(_) => 4,
        }
    }
}

/// A source that answers for a time range.
enum Reader {
    Collector(history::CollectorSource),
    Prometheus(prometheus::PrometheusSource),
}

/// Loads the SLO file and judges every objective.
pub async fn run(req: &GateRequest) -> Result<(SloFile, GateResult), GateError> {
    let slo = SloFile::load(&req.slo)?;
    let mut results = Vec::with_capacity(slo.objectives.len());
    let mut evaluated_at = req.now_unix_ns;
    let reader = match &req.source {
        Source::Collector { urls } => {
            Some(Reader::Collector(history::CollectorSource::sharded(urls)?))
        }
        Source::Prometheus { url } => Some(Reader::Prometheus(prometheus::PrometheusSource::new(
            url, &req.https,
        )?)),
        Source::Measure { .. } => None,
    };
    if let Some(reader) = reader {
        for o in &slo.objectives {
            let window = req.window.unwrap_or(o.window);
            let (from, to) = window.range(req.now_unix_ns);
            let reader = &reader;
            let read = |from: u64, to: u64| async move {
                match reader {
                    Reader::Collector(c) => c.evidence(o, from, to).await,
                    Reader::Prometheus(p) => p.evidence(o, from, to).await,
                }
            };
            let mut evidence = read(from, to).await?;
            if let Some(b) = o.baseline {
                let (bf, bt) = b.range((from, to));
                evidence = xcbench_slo::evidence::against(evidence, read(bf, bt).await?);
            }
            results.push(judge(o, evidence, req.now_unix_ns));
        }
    }
    if let Source::Measure { config, duration } = &req.source {
        let agent = xcbench_agent::AgentConfig::load(config)?;
        let file = config.display().to_string();
        let measured = measure::measure(agent, &file, *duration).await?;
        let source = history::CollectorSource::new(&measured.url, &HttpsTrust::default())?;
        // Every objective is judged over the measurement, whatever its own window.
        let now = xcbench_agent::net::clock::now_unix_ns();
        evaluated_at = now;
        let judged = judge_run(
            &source,
            &slo,
            measured.from_unix_ns,
            measured.to_unix_ns,
            now,
        )
        .await;
        measured.finish().await;
        results = judged?;
    }
    let name = match &req.source {
        Source::Collector { urls } => {
            let names: Vec<&str> = urls.iter().map(|(u, _)| u.as_str()).collect();
            match names.len() {
                1 => format!("collector {}", names[0]),
                _ => format!("collectors {}", names.join(", ")),
            }
        }
        Source::Prometheus { url } => format!("prometheus {url}"),
        Source::Measure { config, duration } => format!(
            "measured {} toward the peers of {}",
            xcbench_slo::text::span(*duration),
            config.display()
        ),
    };
    if slo.family == xcbench_slo::Family::Holm {
        xcbench_slo::holm(&slo.objectives, &mut results, evaluated_at);
    }
    let gate = GateResult::new(name, evaluated_at, results, slo.family);
    Ok((slo, gate))
}

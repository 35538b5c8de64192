//! Collector configuration: `collector.toml` parsed once into typed values. Defaults live in
//! [`CollectorConfig::default`] and are shown in `collector.sample.toml`.
//!
//! - this file: [`CollectorConfig`], the document's fields, `[tls]`.
//! - `remote_write`: `[remote_write]`.
//! - `tests`: defaults, values and the errors that name their field.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use xcbench_agent::config::document;
use xcbench_agent::tls::{Fingerprint, KeySource};
use xcbench_snapshot::AgentId;

use crate::store::history::{Tier, Tiers};
use remote_write::{parse_remote_write, RawRemoteWrite};

mod remote_write;
#[cfg(test)]
mod tests;

/// The default listen address (loopback: expose it deliberately).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9862";

pub use xcbench_snapshot::config_text::ConfigError;

/// A whole, valid collector configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorConfig {
    pub listen: SocketAddr,
    /// How far back the window quantiles look.
    pub window: Duration,
    /// Granularity at which samples leave the window.
    pub window_slot: Duration,
    /// Series beyond this are refused (cardinality guard).
    pub max_series: usize,
    /// Where the durable history lives (`history.redb`); without it the history is kept in
    /// memory and lost when the process ends.
    pub data_dir: Option<PathBuf>,
    /// The history's resolutions, finest first.
    pub history: Tiers,
    /// An SLO file: its latency thresholds are counted exactly per series, and its
    /// objectives judged every `slo_interval` (`xcbench_slo_*`).
    pub slo: Option<xcbench_slo::SloFile>,
    pub slo_interval: Duration,
    /// A mesh file: served at `GET /api/v1/mesh` for agents to fetch, its agents listed in
    /// `xcbench_mesh_agent_info` and their fingerprints pinned; read again when it changes.
    pub mesh: Option<PathBuf>,
    /// HTTPS with client certificates: agents report only in their own name.
    pub tls: Option<CollectorTls>,
    /// Plain HTTP on an address that is not loopback, on purpose (logged at start).
    pub plain_http: bool,
    /// What `/metrics` serves (`exposition`, `window_summaries`).
    pub exposition: crate::exposition::Options,
    /// `[remote_write]`: every snapshot's samples into a Prometheus-compatible store.
    pub remote_write: Option<crate::remote_write::RemoteWriteConfig>,
    /// The native histogram schema of `native_histogram_error`, whether or not anything
    /// writes native histograms (see [`CollectorConfig::native_schema`]).
    pub native_histogram_schema: i8,
}

/// `[tls]`: the collector's key pair, and whom it takes snapshots from besides the mesh's
/// pinned agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorTls {
    pub key: KeySource,
    /// PEM file of CA certificates: an agent whose CA-issued certificate carries its id
    /// may report (unless the mesh or `agents` pins it to another certificate).
    pub ca: Option<PathBuf>,
    /// `tls.agents`: agent id -> certificate fingerprint, besides the mesh's.
    pub agents: Vec<(AgentId, Fingerprint)>,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            listen: DEFAULT_LISTEN.parse().expect("constant address"),
            window: Duration::from_secs(300),
            window_slot: Duration::from_secs(10),
            max_series: 100_000,
            data_dir: None,
            history: Tiers::default(),
            slo: None,
            slo_interval: Duration::from_secs(30),
            mesh: None,
            tls: None,
            plain_http: false,
            exposition: crate::exposition::Options::default(),
            remote_write: None,
            native_histogram_schema: crate::exposition::Native::schema_for(0.01)
                .expect("1% has a schema"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    window: Option<String>,
    window_slot: Option<String>,
    max_series: Option<i64>,
    data_dir: Option<String>,
    history: Option<Vec<RawTier>>,
    slo: Option<String>,
    slo_interval: Option<String>,
    mesh: Option<String>,
    plain_http: Option<bool>,
    exposition: Option<String>,
    window_summaries: Option<Vec<String>>,
    native_histograms: Option<String>,
    native_histogram_error: Option<String>,
    tls: Option<RawTls>,
    remote_write: Option<RawRemoteWrite>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    dir: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
    #[serde(default)]
    agents: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    slot: String,
    keep: String,
}

impl CollectorConfig {
    /// The schema the store counts native histogram buckets at: `native_histogram_error`'s,
    /// when `/metrics` serves native histograms or remote write writes them; else none.
    pub fn native_schema(&self) -> Option<i8> {
        let remote = self
            .remote_write
            .as_ref()
            .is_some_and(|w| w.histograms == crate::remote_write::Histograms::Native);
        self.exposition
            .native
            .schema()
            .or(remote.then_some(self.native_histogram_schema))
    }

    /// Reads and parses a file; the files `[tls]` names are checked here too (they must be
    /// there and readable, `tls.dir` a directory), so each error names its field.
    pub fn load(path: &std::path::Path) -> Result<CollectorConfig, ConfigError> {
        let (file, text) = xcbench_snapshot::config_text::read(path)?;
        let config = CollectorConfig::parse(&file, &text)?;
        if let Some(t) = &config.tls {
            xcbench_agent::config::tls::check_files(&file, &t.key, t.ca.as_deref())
                .map_err(document::capped)?;
        }
        Ok(config)
    }

    /// Parses TOML text; `file` only names the source in errors. An `slo` or `mesh` file it
    /// names is read and checked.
    pub fn parse(file: &str, text: &str) -> Result<CollectorConfig, ConfigError> {
        CollectorConfig::parse_raw(file, text).map_err(document::capped)
    }

    fn parse_raw(file: &str, text: &str) -> Result<CollectorConfig, ConfigError> {
        let raw: Raw = document::from_toml(file, text)?;
        let err = |field: &str, value: String, expected: &str| ConfigError::Field {
            file: file.to_owned(),
            field: field.to_owned(),
            value,
            expected: expected.to_owned(),
        };
        let mut c = CollectorConfig::default();
        if let Some(l) = raw.listen {
            c.listen = l.parse().map_err(|_| {
                let port = l.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
                let beyond = !port.is_empty()
                    && port.len() <= 19
                    && port.chars().all(|c| c.is_ascii_digit())
                    && port.parse::<u64>().is_ok_and(|p| p > 65_535);
                let expected = match beyond {
                    true => format!("must be IP:port with a port of at most 65535: {port} is not a port, e.g. \"0.0.0.0:9862\" or \"[::]:9862\""),
                    false => "must be IP:port, e.g. \"0.0.0.0:9862\"".to_owned(),
                };
                err("listen", format!("{l:?}"), &expected)
            })?;
        }
        for (field, value, target, min) in [
            ("window", raw.window, &mut c.window, Duration::from_secs(1)),
            (
                "window_slot",
                raw.window_slot,
                &mut c.window_slot,
                Duration::from_millis(100),
            ),
        ] {
            if let Some(text) = value {
                let d = xcbench_snapshot::config_text::parse_duration(&text).ok_or_else(|| {
                    err(
                        field,
                        format!("{text:?}"),
                        "must be a duration such as \"10s\" or \"5m\"",
                    )
                })?;
                if d < min || d > Duration::from_secs(86_400) {
                    return Err(err(
                        field,
                        format!("{text:?}"),
                        "must be between 1s (100ms for window_slot) and 24h",
                    ));
                }
                *target = d;
            }
        }
        if c.window_slot > c.window {
            return Err(err(
                "window_slot",
                format!("\"{:?}\"", c.window_slot),
                "must not be longer than window",
            ));
        }
        if let Some(n) = raw.max_series {
            if !(1..=10_000_000).contains(&n) {
                return Err(err("max_series", n.to_string(), "must be 1 to 10000000"));
            }
            c.max_series = n as usize;
        }
        if let Some(d) = raw.data_dir {
            if d.is_empty() {
                return Err(err("data_dir", "\"\"".into(), "must be a directory path"));
            }
            c.data_dir = Some(PathBuf::from(d));
        }
        if let Some(path) = raw.slo {
            if path.is_empty() {
                return Err(err("slo", "\"\"".into(), "must be an SLO file's path"));
            }
            // The SLO file's own errors name it, its field and value.
            c.slo = Some(
                xcbench_slo::SloFile::load(std::path::Path::new(&path))
                    .map_err(|e| named_in(e, &err, "slo", &path, "an SLO file"))?,
            );
        }
        // The collectors the mesh lists (a sharded mesh lists several).
        let mut shards = 0;
        if let Some(path) = raw.mesh {
            if path.is_empty() {
                return Err(err("mesh", "\"\"".into(), "must be a mesh file's path"));
            }
            // Checked now, so a bad mesh stops the start; its own errors name it, its
            // field and value.
            let mesh = xcbench_agent::config::mesh::MeshFile::load(std::path::Path::new(&path))
                .map_err(|e| named_in(e, &err, "mesh", &path, "a mesh file"))?;
            shards = mesh.collector.map_or(0, |c| c.fallbacks.len() + 1);
            c.mesh = Some(PathBuf::from(path));
        }
        if let Some(text) = raw.slo_interval {
            c.slo_interval = xcbench_snapshot::config_text::parse_duration(&text)
                .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(3_600))
                .ok_or_else(|| {
                    err(
                        "slo_interval",
                        format!("{text:?}"),
                        "must be a duration from 1s to 1h, e.g. \"30s\"",
                    )
                })?;
        }
        if let Some(e) = raw.exposition {
            c.exposition.exposition = match e.as_str() {
                "lean" => crate::exposition::Exposition::Lean,
                "full" => crate::exposition::Exposition::Full,
                _ => {
                    return Err(err(
                        "exposition",
                        format!("{e:?}"),
                        "must be \"lean\" (what the shipped dashboards, rules and gate read) or \"full\" (also every metric's window summary)",
                    ))
                }
            };
        }
        if let Some(list) = raw.window_summaries {
            let mut metrics = std::collections::BTreeSet::new();
            for (i, m) in list.iter().enumerate() {
                metrics.insert(m.parse::<xcbench_snapshot::Metric>().map_err(|e| {
                    err(
                        &format!("window_summaries[{i}]"),
                        format!("{m:?}"),
                        &format!("must be a latency metric: {e}"),
                    )
                })?);
            }
            c.exposition.window_summaries = metrics;
        }
        let error_text = raw.native_histogram_error.unwrap_or_else(|| "1%".into());
        let error = error_text
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|e| *e > 0.0 && *e <= 50.0)
            .ok_or_else(|| {
                err(
                    "native_histogram_error",
                    format!("{error_text:?}"),
                    "must be a percentage above 0 and at most 50%, e.g. \"1%\"",
                )
            })?;
        let schema = crate::exposition::Native::schema_for(error / 100.0).ok_or_else(|| {
            err(
                "native_histogram_error",
                format!("{error_text:?}"),
                "must be at least 0.14% (schema 8, the finest, keeps a value within 0.135%)",
            )
        })?;
        c.native_histogram_schema = schema;
        if let Some(n) = raw.native_histograms {
            c.exposition.native = match n.as_str() {
                "off" => crate::exposition::Native::Off,
                "beside" => crate::exposition::Native::Beside { schema },
                "replace" => crate::exposition::Native::Replace { schema },
                _ => {
                    return Err(err(
                        "native_histograms",
                        format!("{n:?}"),
                        "must be \"off\", \"beside\" (native and classic buckets under one name, for a Prometheus that keeps both) or \"replace\" (native only, to protobuf scrapers)",
                    ))
                }
            };
        }
        if let Some(r) = raw.remote_write {
            let w = parse_remote_write(&err, r)?;
            // Two shards writing one series would interleave two counters into one.
            if shards > 1 && w.external_labels.is_empty() {
                return Err(err(
                    "remote_write.external_labels",
                    "(missing)".into(),
                    &format!("must name this collector, e.g. {{ collector = \"c1\" }}: the mesh lists {shards} collectors, and an agent that moves between them would otherwise write one series from two"),
                ));
            }
            c.remote_write = Some(w);
        }
        c.plain_http = raw.plain_http.unwrap_or(false);
        if c.plain_http && raw.tls.is_some() {
            return Err(err(
                "plain_http",
                "true".into(),
                "must not be set with [tls]: the collector then serves HTTPS only (remove plain_http, or [tls] to serve plain HTTP)",
            ));
        }
        if let Some(t) = raw.tls {
            c.tls = Some(parse_tls(&err, t)?);
        }
        if c.tls.is_none() && !c.listen.ip().is_loopback() && !c.plain_http {
            return Err(err(
                "listen",
                format!("\"{}\"", c.listen),
                "is not loopback: set [tls] (agents then report over mutual TLS, each only in its own name), or plain_http = true to take unauthenticated snapshots from anyone who reaches the port",
            ));
        }
        if let Some(tiers) = raw.history {
            let mut parsed = Vec::with_capacity(tiers.len());
            for (i, t) in tiers.iter().enumerate() {
                let duration = |name: &str, text: &str| {
                    xcbench_snapshot::config_text::parse_duration(text)
                        .map(|d| d.as_nanos() as u64)
                        .ok_or_else(|| {
                            err(
                                &format!("history[{i}].{name}"),
                                format!("{text:?}"),
                                "must be a duration such as \"10s\", \"1m\" or \"90d\"",
                            )
                        })
                };
                parsed.push(Tier {
                    slot_ns: duration("slot", &t.slot)?,
                    keep_ns: duration("keep", &t.keep)?,
                });
            }
            c.history = Tiers::new(parsed)
                .map_err(|e| err("history", format!("{} tiers", tiers.len()), &e.to_string()))?;
        }
        Ok(c)
    }
}

/// A file this one names (`field = path`) that cannot be read is this file's error, naming
/// the field; errors inside it name that file.
fn named_in(
    e: ConfigError,
    err: &dyn Fn(&str, String, &str) -> ConfigError,
    field: &str,
    path: &str,
    what: &str,
) -> ConfigError {
    match e {
        ConfigError::Read { message, .. } => err(
            field,
            format!("{path:?}"),
            &format!("must be {what} that can be read: {message}"),
        ),
        other => other,
    }
}

/// `[tls]` into typed values; `err` builds the error naming the field.
fn parse_tls(
    err: &dyn Fn(&str, String, &str) -> ConfigError,
    t: RawTls,
) -> Result<CollectorTls, ConfigError> {
    let path = |field: &str, text: String| match text.is_empty() {
        true => Err(err(field, "\"\"".into(), "must be a path")),
        false => Ok(PathBuf::from(text)),
    };
    let key =
        match (t.dir, t.cert, t.key) {
            (Some(d), None, None) => KeySource::Dir(path("tls.dir", d)?),
            (None, Some(c), Some(k)) => KeySource::Files {
                cert: path("tls.cert", c)?,
                key: path("tls.key", k)?,
            },
            (None, Some(c), None) => {
                return Err(err("tls.cert", format!("{c:?}"), "needs tls.key beside it"))
            }
            (None, None, Some(k)) => {
                return Err(err("tls.key", format!("{k:?}"), "needs tls.cert beside it"))
            }
            (None, None, None) => return Err(err(
                "tls",
                "{}".into(),
                "must set dir (a key pair generated at first start) or cert and key (PEM files)",
            )),
            (Some(d), _, _) => {
                return Err(err(
                    "tls.dir",
                    format!("{d:?}"),
                    "must not be set together with tls.cert and tls.key",
                ))
            }
        };
    let ca = t.ca.map(|c| path("tls.ca", c)).transpose()?;
    let mut agents = Vec::with_capacity(t.agents.len());
    for (id, fp) in t.agents {
        let field = format!("tls.agents.{id}");
        let agent: AgentId = id.parse().map_err(|e: xcbench_snapshot::Expected| {
            err(&field, format!("{id:?}"), &format!("the key {}", e.0))
        })?;
        let fingerprint: Fingerprint = fp
            .parse()
            .map_err(|e: xcbench_snapshot::Expected| err(&field, format!("{fp:?}"), &e.0))?;
        agents.push((agent, fingerprint));
    }
    Ok(CollectorTls { key, ca, agents })
}

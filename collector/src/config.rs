//! Collector configuration: `collector.toml` parsed once into typed values. Defaults live in
//! [`CollectorConfig::default`] and are shown in `collector.sample.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::store::history::{Tier, Tiers};

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
    /// `xcbench_mesh_agent_info`; read again when it changes.
    pub mesh: Option<PathBuf>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    slot: String,
    keep: String,
}

impl CollectorConfig {
    pub fn load(path: &std::path::Path) -> Result<CollectorConfig, ConfigError> {
        let (file, text) = xcbench_snapshot::config_text::read(path)?;
        CollectorConfig::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<CollectorConfig, ConfigError> {
        let raw: Raw = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.message().to_owned(),
        })?;
        let err = |field: &str, value: String, expected: &str| ConfigError::Field {
            file: file.to_owned(),
            field: field.to_owned(),
            value,
            expected: expected.to_owned(),
        };
        let mut c = CollectorConfig::default();
        if let Some(l) = raw.listen {
            c.listen = l.parse().map_err(|_| {
                err(
                    "listen",
                    format!("{l:?}"),
                    "must be IP:port, e.g. \"0.0.0.0:9862\"",
                )
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
            c.slo = Some(xcbench_slo::SloFile::load(std::path::Path::new(&path))?);
        }
        if let Some(path) = raw.mesh {
            if path.is_empty() {
                return Err(err("mesh", "\"\"".into(), "must be a mesh file's path"));
            }
            // Checked now, so a bad mesh stops the start; its own errors name it, its
            // field and value.
            xcbench_agent::config::mesh::MeshFile::load(std::path::Path::new(&path))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        assert_eq!(
            CollectorConfig::parse("c.toml", "").unwrap(),
            CollectorConfig::default()
        );
        let c = CollectorConfig::parse("c.toml", "window = \"1m\"\nwindow_slot = \"5s\"").unwrap();
        assert_eq!((c.window.as_secs(), c.window_slot.as_secs()), (60, 5));
        assert_eq!(
            CollectorConfig::parse("c.toml", "listen = \"nope\"")
                .unwrap_err()
                .to_string(),
            "c.toml: listen = \"nope\": must be IP:port, e.g. \"0.0.0.0:9862\""
        );
        assert_eq!(
            CollectorConfig::parse("c.toml", "max_series = 0")
                .unwrap_err()
                .to_string(),
            "c.toml: max_series = 0: must be 1 to 10000000"
        );
        let h = CollectorConfig::parse(
            "c.toml",
            "data_dir = \"/var/lib/xcbench\"\nhistory = [{ slot = \"10s\", keep = \"1h\" }, { slot = \"1m\", keep = \"30d\" }]",
        )
        .unwrap();
        assert_eq!(h.data_dir, Some(PathBuf::from("/var/lib/xcbench")));
        assert_eq!(h.history.get().len(), 2);
        assert_eq!(
            CollectorConfig::parse("c.toml", "history = [{ slot = \"10s\", keep = \"1h\" }, { slot = \"15s\", keep = \"2h\" }]")
                .unwrap_err()
                .to_string(),
            "c.toml: history = 2 tiers: tier 1: its slot must be a whole multiple of the previous tier's, and kept at least as long"
        );
        assert_eq!(
            CollectorConfig::parse("c.toml", "history = [{ slot = \"soon\", keep = \"1h\" }]")
                .unwrap_err()
                .to_string(),
            "c.toml: history[0].slot = \"soon\": must be a duration such as \"10s\", \"1m\" or \"90d\""
        );
        let slo = concat!(env!("CARGO_MANIFEST_DIR"), "/../slo/slo.sample.yaml");
        let c = CollectorConfig::parse(
            "c.toml",
            &format!("slo = \"{slo}\"\nslo_interval = \"10s\""),
        )
        .unwrap();
        assert_eq!(c.slo.map(|f| f.objectives.len()), Some(14));
        assert_eq!(c.slo_interval, Duration::from_secs(10));
        let missing = CollectorConfig::parse("c.toml", "slo = \"/nonexistent/slo.yaml\"")
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("/nonexistent/slo.yaml: cannot read"),
            "{missing}"
        );
        assert_eq!(
            CollectorConfig::parse("c.toml", "slo_interval = \"0s\"")
                .unwrap_err()
                .to_string(),
            "c.toml: slo_interval = \"0s\": must be a duration from 1s to 1h, e.g. \"30s\""
        );
        let mesh = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/mesh.sample.toml");
        let c = CollectorConfig::parse("c.toml", &format!("mesh = \"{mesh}\"")).unwrap();
        assert_eq!(c.mesh, Some(PathBuf::from(mesh)));
        let missing = CollectorConfig::parse("c.toml", "mesh = \"/nonexistent/mesh.toml\"")
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("/nonexistent/mesh.toml: cannot read"),
            "{missing}"
        );
        assert!(CollectorConfig::parse("c.toml", "windw = \"1m\"")
            .unwrap_err()
            .to_string()
            .contains("unknown field `windw`"));
    }
}

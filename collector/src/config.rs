//! Collector configuration: `collector.toml` parsed once into typed values. Defaults live in
//! [`CollectorConfig::default`] and are shown in `collector.sample.toml`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// The default listen address (loopback: expose it deliberately).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9862";

pub use xcbench_snapshot::config_text::ConfigError;

/// A whole, valid collector configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorConfig {
    pub listen: SocketAddr,
    /// How far back the window quantiles look.
    pub window: Duration,
    /// Granularity at which samples leave the window.
    pub window_slot: Duration,
    /// Series beyond this are refused (cardinality guard).
    pub max_series: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            listen: DEFAULT_LISTEN.parse().expect("constant address"),
            window: Duration::from_secs(300),
            window_slot: Duration::from_secs(10),
            max_series: 100_000,
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
        assert!(CollectorConfig::parse("c.toml", "windw = \"1m\"")
            .unwrap_err()
            .to_string()
            .contains("unknown field `windw`"));
    }
}

//! What every configuration file shares (`agent.toml`, `collector.toml`, the mesh, the SLO
//! file): reading the file, the error type (file, field, value, expectation), and the
//! spellings of durations and rates, each written once.

use std::time::Duration;

/// A configuration error; `Display` is the whole message.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {field} = {value}: {expected}")]
    Field {
        file: String,
        field: String,
        value: String,
        expected: String,
    },
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
}

/// Reads a configuration file: its name (for messages) and its text.
pub fn read(path: &std::path::Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(e) => Err(ConfigError::Read {
            file,
            message: e.to_string(),
        }),
    }
}

/// Durations such as `250us`, `10ms`, `1.5s`, `5m`, `1h`, `7d` (also `ns`, `µs`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().ok()?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * scale).ok()
}

/// Bits per second with decimal prefixes, as iperf3's `-b` and network engineers write them:
/// `500M`, `1G`, `200m`, `1.5k`, `800000`, each optionally followed by `bit/s` or `bps`
/// (`200Mbit/s`, `1.5Gbps`). k, m and g may be either case (bits are never milli).
pub fn parse_rate(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("bit/s")
        .or_else(|| t.strip_suffix("bps"))
        .unwrap_or(t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G')) => (&t[..i], 1e9),
        _ => (t, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && v.is_finite())
        .map(|v| (v * mult).round() as u64)
        .filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    /// One grammar for agent.toml's rates and the SLO file's: what either took, both take.
    #[test]
    fn rates() {
        for (text, bps) in [
            ("1G", 1_000_000_000),
            ("200M", 200_000_000),
            ("200m", 200_000_000),
            ("200Mbit/s", 200_000_000),
            ("1.5Gbps", 1_500_000_000),
            ("1.5k", 1_500),
            ("800000", 800_000),
            (" 500M ", 500_000_000),
        ] {
            assert_eq!(parse_rate(text), Some(bps), "{text}");
        }
        for bad in ["0", "fast", "-1M", "M", "1T", "inf", "0.0001"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
    }
}

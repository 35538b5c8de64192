//! What every configuration file shares (`agent.toml`, `collector.toml`, the mesh, the SLO
//! file): reading the file (bounded), the error type (file, field, value, expectation) and
//! how much of the input it echoes, and the spellings of durations and rates, each written
//! once.

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

/// The largest configuration file read: a mesh of a thousand agents is about 300 KB.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Reads a configuration file: its name (for messages) and its text. Reads at most
/// [`MAX_FILE_BYTES`] (and one more to tell): a larger file, or an endless one such as
/// `/dev/zero`, is refused, not read.
pub fn read(path: &std::path::Path) -> Result<(String, String), ConfigError> {
    read_at_most(path, MAX_FILE_BYTES)
}

/// [`read`] with its own limit (the SLO file's is smaller).
pub fn read_at_most(path: &std::path::Path, max: u64) -> Result<(String, String), ConfigError> {
    use std::io::Read;
    let file = path.display().to_string();
    let failed = |message: String| ConfigError::Read {
        file: file.clone(),
        message,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| failed(e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(failed(format!(
            "larger than {max} bytes: a configuration file is far smaller"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| failed(format!("not UTF-8 text: {e}")))?;
    Ok((file, text))
}

/// The most characters of a value or field an error echoes; the rest is counted, not shown.
pub const ECHO_CHARS: usize = 100;
/// The most characters of an expectation or a syntax message.
pub const MESSAGE_CHARS: usize = 1_000;

/// `e` with what it echoes of the input cut to [`ECHO_CHARS`] (a 10 MB value is not
/// printed back whole) and its message to one line of at most [`MESSAGE_CHARS`]: every
/// configuration file's errors (TOML and YAML) go through it.
pub fn capped(e: ConfigError) -> ConfigError {
    match e {
        ConfigError::Field {
            file,
            field,
            value,
            expected,
        } => ConfigError::Field {
            file: echoed(&file, MESSAGE_CHARS),
            field: echoed(&field, ECHO_CHARS),
            value: echoed(&value, ECHO_CHARS),
            expected: echoed(&expected, MESSAGE_CHARS),
        },
        ConfigError::Syntax { file, message } => ConfigError::Syntax {
            file: echoed(&file, MESSAGE_CHARS),
            message: echoed(&message, MESSAGE_CHARS),
        },
        ConfigError::Read { file, message } => ConfigError::Read {
            file: echoed(&file, MESSAGE_CHARS),
            message: echoed(&message, MESSAGE_CHARS),
        },
    }
}

/// `text` on one line (line breaks as `\n`), cut to `max` characters with the length of
/// what was left out.
pub fn echoed(text: &str, max: usize) -> String {
    let one_line = |s: &str| s.replace('\r', "\\r").replace('\n', "\\n");
    if text.chars().count() <= max {
        return one_line(text);
    }
    let head: String = text.chars().take(max).collect();
    format!("{}... ({} bytes)", one_line(&head), text.len())
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

    #[test]
    fn echoes_are_cut_and_files_bounded() {
        let long = "x".repeat(10_000_000);
        let e = capped(ConfigError::Field {
            file: "a.toml".into(),
            field: "peers[0].id".into(),
            value: long,
            expected: "short".into(),
        });
        let text = e.to_string();
        assert!(
            text.len() < 300 && text.contains("... (10000000 bytes)"),
            "{}",
            &text[..200]
        );
        assert_eq!(echoed("a\nb", 10), "a\\nb");
        let e = read_at_most(std::path::Path::new("/dev/zero"), 1 << 10).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("larger than 1024 bytes: a configuration file is far smaller"),
            "{e}"
        );
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

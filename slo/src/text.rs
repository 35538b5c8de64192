//! How the gate writes and reads values: durations (`1.25ms`), ratios (`0.1%`), rates
//! (`500Mbit/s`), and timestamps (RFC 3339, UTC).

use std::time::Duration;

/// Trims a decimal's trailing zeros (`2.500` -> `2.5`, `3.000` -> `3`).
pub fn trim(v: f64) -> String {
    let mut text = format!("{v:.3}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text
}

/// `850ns`, `250us`, `1.25ms`, `2s`: the largest unit under the value, three decimals.
pub fn duration(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{}us", trim(v / 1e3))
    } else if ns < 1_000_000_000 {
        format!("{}ms", trim(v / 1e6))
    } else {
        format!("{}s", trim(v / 1e9))
    }
}

/// A signed duration (an increase can be negative).
pub fn signed_duration(ns: i64) -> String {
    if ns < 0 {
        format!("-{}", duration(ns.unsigned_abs()))
    } else {
        duration(ns as u64)
    }
}

/// A latency threshold as a label value, in seconds as Prometheus writes `le`: the
/// shortest decimal that is exact (`2ms` -> `0.002`, `1.5us` -> `0.0000015`). The collector's
/// exact within-threshold counters and the rules that read them both spell it this way.
pub fn threshold_label(ns: u64) -> String {
    let whole = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A span for people: `45s`, `3m20s`, `2h5m`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    if s < 10 {
        format!("{}s", trim((d.as_secs_f64() * 10.0).round() / 10.0))
    } else if s < 60 {
        format!("{}s", d.as_secs_f64().round() as u64)
    } else if s < 3_600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m", s / 3_600, s % 3_600 / 60)
    }
}

/// A ratio as a percentage: `0.1%`, `0.0123%`, `99.5%` (four significant digits).
pub fn percent(ratio: f64) -> String {
    percent_to(ratio, 4)
}

/// `ratio` as a percentage with enough digits (four significant at least) to tell it from
/// `other` printed the same way: a bound beside the objective it is compared with never
/// reads "99% < 99%".
pub fn percent_beside(ratio: f64, other: f64) -> String {
    (4..=12)
        .map(|sig| percent_to(ratio, sig))
        .zip((4..=12).map(|sig| percent_to(other, sig)))
        .find(|(a, b)| a != b)
        .map_or_else(|| percent(ratio), |(a, _)| a)
}

fn percent_to(ratio: f64, significant: i32) -> String {
    let p = ratio * 100.0;
    if p == 0.0 {
        return "0%".to_owned();
    }
    let digits = (significant - 1 - p.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let mut text = format!("{p:.digits$}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text + "%"
}

/// Bits per second with a decimal prefix: `940Mbit/s`.
pub fn rate(bps: f64) -> String {
    let (v, unit) = if bps >= 1e9 {
        (bps / 1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (bps / 1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (bps / 1e3, "kbit/s")
    } else {
        (bps, "bit/s")
    };
    format!("{}{unit}", trim(v))
}

pub(crate) fn serialize_duration<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(&duration(d.as_nanos() as u64))
}

/// `0.1%` or `0.001`: a ratio from 0 to 1.
pub fn parse_ratio(text: &str) -> Option<f64> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => t.parse::<f64>().ok()?,
    };
    (v.is_finite() && (0.0..=1.0).contains(&v)).then_some(v)
}

/// Bits per second: the grammar every configuration file shares.
pub use xcbench_snapshot::config_text::parse_rate;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count (the inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 (`2026-11-30T18:00:00Z`, `...+01:00`, fractional seconds allowed) or Unix
/// seconds, to Unix nanoseconds.
pub fn parse_time(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| (secs * 1e9).round() as u64);
    }
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &t[19..];
    let mut frac_ns = 0u64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut v: u64 = f[..digits.min(9)].parse().ok()?;
        for _ in digits.min(9)..9 {
            v *= 10;
        }
        frac_ns = v;
        rest = &f[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = rest.as_bytes();
            if o.len() != 6 || o[3] != b':' {
                return None;
            }
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3_600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3_600 + mi * 60 + s - offset_s;
    u64::try_from(secs)
        .ok()
        .map(|s| s * 1_000_000_000 + frac_ns)
}

/// Unix nanoseconds as RFC 3339 UTC with whole seconds: `2026-11-30T18:00:00Z`.
pub fn format_time(unix_ns: u64) -> String {
    let secs = (unix_ns / 1_000_000_000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3_600,
        s % 3_600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_and_parse() {
        assert_eq!(duration(2_000_000), "2ms");
        assert_eq!(duration(1_234_567), "1.235ms");
        assert_eq!(duration(250_000), "250us");
        assert_eq!(duration(999), "999ns");
        assert_eq!(duration(90_000_000_000), "90s");
        assert_eq!(signed_duration(-1_500_000), "-1.5ms");
        assert_eq!(percent(0.001), "0.1%");
        assert_eq!(percent(0.995), "99.5%");
        assert_eq!(percent(0.000_123_4), "0.01234%");
        assert_eq!(rate(940e6), "940Mbit/s");
        assert_eq!(span(Duration::from_secs(200)), "3m20s");
        assert_eq!(span(Duration::from_secs_f64(20.658)), "21s");
        assert_eq!(span(Duration::from_secs_f64(1.26)), "1.3s");
        assert_eq!(parse_ratio("0.1%"), Some(0.001));
        assert_eq!(parse_ratio("0.02"), Some(0.02));
        assert_eq!(parse_ratio("120%"), None);
        assert_eq!(parse_rate("500M"), Some(500_000_000));
        assert_eq!(parse_rate("1.5Gbit/s"), Some(1_500_000_000));
        assert_eq!(parse_rate("fast"), None);
        assert_eq!(threshold_label(2_000_000), "0.002");
        assert_eq!(threshold_label(1_500), "0.0000015");
        assert_eq!(threshold_label(60_000_000_000), "60");
        assert_eq!(threshold_label(2_250_000_000), "2.25");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = parse_time("2026-11-30T18:00:00Z").unwrap();
        assert_eq!(t, 1_796_061_600_000_000_000);
        assert_eq!(format_time(t), "2026-11-30T18:00:00Z");
        assert_eq!(
            parse_time("2026-11-30T19:00:00.5+01:00"),
            Some(t + 500_000_000)
        );
        assert_eq!(parse_time("1796061600"), Some(t));
        assert_eq!(format_time(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-11-30",
            "yesterday",
            "2026-11-30T18:00:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}

//! The Prometheus text format (0.0.4), written straight from the store's numbers: a sample
//! line per counter, gauge, bucket and quantile, label values escaped, integers printed as
//! integers (exact past 2^53, where an f64 would round).

use super::Labels;

/// A sample's value.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value {
    Int(u64),
    Float(f64),
}

/// The `# HELP` and `# TYPE` lines of a family.
pub(super) fn header(out: &mut Vec<u8>, name: &str, help: &str, kind: &str) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    escape(out, help, false);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
}

/// `name{labels}` without the closing brace, so a histogram writes it once and adds `le`
/// per bucket. Returns whether a label was written (whether the next needs a comma).
pub(super) fn open(out: &mut Vec<u8>, name: &str, suffix: &str, labels: Labels<'_>) -> bool {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    let mut any = false;
    for (n, v) in labels.iter() {
        out.push(if any { b',' } else { b'{' });
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"=\"");
        escape(out, v, true);
        out.push(b'"');
        any = true;
    }
    any
}

/// One sample line: `name{labels,extra} value`.
pub(super) fn sample(
    out: &mut Vec<u8>,
    name: &str,
    suffix: &str,
    labels: Labels<'_>,
    extra: Option<(&str, &str)>,
    value: Value,
) {
    let any = open(out, name, suffix, labels);
    close(out, any, extra, value);
}

/// A classic histogram's lines: cumulative buckets at `bounds` (their `le` text) from
/// per-bucket `counts`, `+Inf`, `_sum` (seconds) and `_count`. The name and labels are
/// written once and copied per bucket.
pub(super) fn histogram(
    out: &mut Vec<u8>,
    name: &str,
    labels: Labels<'_>,
    bounds: &[(f64, String)],
    counts: &[u64],
    count: u64,
    sum: f64,
) {
    let mut prefix = Vec::with_capacity(256);
    let any = open(&mut prefix, name, "_bucket", labels);
    prefix.extend_from_slice(if any { b",le=\"" } else { b"{le=\"" });
    let mut cumulative = 0;
    for (i, (_, le)) in bounds.iter().enumerate() {
        cumulative += counts.get(i).copied().unwrap_or(0);
        out.extend_from_slice(&prefix);
        out.extend_from_slice(le.as_bytes());
        out.extend_from_slice(b"\"} ");
        number(out, Value::Int(cumulative));
        out.push(b'\n');
    }
    out.extend_from_slice(&prefix);
    out.extend_from_slice(b"+Inf\"} ");
    number(out, Value::Int(count));
    out.push(b'\n');
    sample(out, name, "_sum", labels, None, Value::Float(sum));
    sample(out, name, "_count", labels, None, Value::Int(count));
}

/// Ends a line [`open`] began: the extra label, the brace, the value.
pub(super) fn close(out: &mut Vec<u8>, any: bool, extra: Option<(&str, &str)>, value: Value) {
    match extra {
        Some((n, v)) => {
            out.push(if any { b',' } else { b'{' });
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b"=\"");
            escape(out, v, true);
            out.extend_from_slice(b"\"}");
        }
        None if any => out.push(b'}'),
        None => {}
    }
    out.push(b' ');
    number(out, value);
    out.push(b'\n');
}

/// A value as Prometheus reads it: integers exactly, floats in Rust's shortest round-trip
/// form (never an exponent), and `+Inf`, `-Inf`, `NaN`.
pub(super) fn number(out: &mut Vec<u8>, value: Value) {
    match value {
        Value::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Value::Float(v) if v.is_nan() => out.extend_from_slice(b"NaN"),
        Value::Float(v) if v.is_infinite() => {
            out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" })
        }
        Value::Float(v) => {
            use std::io::Write;
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{v}");
        }
    }
}

/// The text of a float as [`number`] writes it (bucket bounds and quantiles as labels).
pub(super) fn float_text(v: f64) -> String {
    let mut out = Vec::new();
    number(&mut out, Value::Float(v));
    String::from_utf8(out).expect("numbers are ASCII")
}

/// Backslash, newline and (in label values) the double quote escaped.
fn escape(out: &mut Vec<u8>, s: &str, quote: bool) {
    if !s
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || (quote && b == b'"'))
    {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(labels: &[(&str, &str)], extra: Option<(&str, &str)>, v: Value) -> String {
        let mut out = Vec::new();
        sample(&mut out, "m", "_x", Labels::new(labels), extra, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_escape_and_print_numbers_as_prometheus_reads_them() {
        assert_eq!(line(&[], None, Value::Int(7)), "m_x 7\n");
        assert_eq!(
            line(&[], Some(("le", "+Inf")), Value::Int(0)),
            "m_x{le=\"+Inf\"} 0\n"
        );
        assert_eq!(
            line(&[("a", "q\"b\\c\nd")], None, Value::Float(0.0205)),
            "m_x{a=\"q\\\"b\\\\c\\nd\"} 0.0205\n"
        );
        assert_eq!(
            line(
                &[("a", "1"), ("b", "2")],
                Some(("le", "0.000025")),
                Value::Float(f64::NAN)
            ),
            "m_x{a=\"1\",b=\"2\",le=\"0.000025\"} NaN\n"
        );
        // Exact past 2^53, where an f64 rounds.
        assert_eq!(
            line(&[], None, Value::Int(9_007_199_254_740_993)),
            "m_x 9007199254740993\n"
        );
        assert_eq!(float_text(f64::INFINITY), "+Inf");
        assert_eq!(float_text(2.5e-5), "0.000025");
        assert_eq!(float_text(10.0), "10");
    }
}

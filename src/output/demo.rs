//! What `xcbench demo` prints: a progress line a second, and the final per-pair table with
//! how each figure was obtained (a golden file pins it).

use std::fmt::Write as _;
use std::time::Duration;

use crate::demo::{PairRow, Progress};

/// `41.2us`, `1.234ms`, `2.500s`, or `-` when there is no value.
pub fn format_ns(ns: Option<u64>) -> String {
    match ns {
        None => "-".to_owned(),
        Some(v) if v < 1_000_000 => format!("{:.1}us", v as f64 / 1e3),
        Some(v) if v < 1_000_000_000 => format!("{:.3}ms", v as f64 / 1e6),
        Some(v) => format!("{:.3}s", v as f64 / 1e9),
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

/// The line a progress report prints.
pub fn progress(p: &Progress<'_>) -> String {
    match p {
        Progress::Started {
            agents,
            collector_url,
            config,
        } => format!(
            "xcbench demo: {} <-> {} over loopback, STAMP/UDP, TCP and QUIC, probe every {:?}, {} bytes, for {:?}; collector {collector_url}",
            agents[0], agents[1], config.interval, config.payload_size, config.duration
        ),
        Progress::Tick { elapsed, rows } => progress_line(*elapsed, rows),
    }
}

fn progress_line(elapsed: Duration, rows: &[PairRow]) -> String {
    let mut line = format!("{:>4}s", elapsed.as_secs());
    // STAMP only, to keep the line short; the final table has every series.
    for r in rows.iter().filter(|r| r.protocol == "udp/stamp") {
        let _ = write!(
            line,
            "  {}->{} sent {:>5} rtt p50 {:>8} p99 {:>8} lost {}",
            r.source,
            r.destination,
            r.sent,
            format_ns(r.rtt_ns.p50),
            format_ns(r.rtt_ns.p99),
            r.lost
        );
    }
    line
}

/// The final table: one line per direction of each pair, then how figures were obtained.
pub fn render_table(rows: &[PairRow]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<24} {:<13} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>9} {:>9}  {:>8} {:>8}  {:>7} {:>7} {:>7}  {:>3} {:>3} {:>4}",
        "pair (src->dst)", "proto", "sent", "rtt p50", "p90", "p99", "p99.9", "max",
        "owd fwd", "owd rev", "jit fwd", "jit rev", "loss", "loss fw", "loss rv", "dup", "reo", "late"
    );
    for r in rows {
        let stamp = r.protocol.ends_with("/stamp");
        let _ = writeln!(
            t,
            "{:<24} {:<13} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>9} {:>9}  {:>8} {:>8}  {:>7} {:>7} {:>7}  {:>3} {:>3} {:>4}",
            format!("{}->{}", r.source, r.destination),
            r.protocol,
            r.sent,
            format_ns(r.rtt_ns.p50),
            format_ns(r.rtt_ns.p90),
            format_ns(r.rtt_ns.p99),
            format_ns(r.rtt_ns.p999),
            format_ns(r.rtt_ns.max),
            format_ns(r.one_way_forward_p50_ns),
            format_ns(r.one_way_reverse_p50_ns),
            format_ns(r.jitter_forward_ns),
            format_ns(r.jitter_reverse_ns),
            percent(r.lost, r.sent),
            // Only STAMP's stateful reflector lets loss be split by direction.
            if stamp { percent(r.lost_forward, r.sent) } else { "-".to_owned() },
            if stamp { percent(r.lost_reverse, r.sent) } else { "-".to_owned() },
            r.duplicated,
            r.reordered,
            r.late,
        );
    }
    // QUIC (quinn has no kernel receive timestamps) and connect times are user space by design.
    let ts: Vec<&str> = rows
        .iter()
        .filter(|r| !r.protocol.ends_with("/connect") && !r.protocol.starts_with("quic/"))
        .map(|r| r.timestamping.as_str())
        .collect();
    let _ = writeln!(
        t,
        "\nRTT = (T4-T1)-(T3-T2), reflector dwell excluded; receive timestamps for udp and tcp/rr: {}; \
         quic/* and */connect times are read in user space; quantiles are HdrHistogram bucket tops (512 ns below 1 ms, 0.1% above).",
        if ts.iter().all(|s| *s == "kernel") {
            "kernel (SO_TIMESTAMPNS)"
        } else {
            "user space for some series"
        }
    );
    let _ = writeln!(
        t,
        "One-way delay (owd) p50 per direction: both agents read this host's clock, so no clock offset \
         enters it here; across hosts trust it only to the clock error estimate ({}).",
        format_ns(rows.iter().filter_map(|r| r.clock_error_ns).max())
    );
    let _ = writeln!(
        t,
        "Jitter = RFC 3550 estimate; loss fw/rv = share of sent STAMP probes lost on the way out / back \
         (split by the reflector's own sequence number; a loss with no later reply stays unsplit). \
         */connect = handshake time of a fresh connection (QUIC: TLS 1.3 with both certificates checked); \
         */rr = request/response on one connection (QUIC: a stream per request); \
         quic/resume = a resumed connection's first request sent as 0-RTT data, connect to response; \
         quic/datagram = RFC 9221 DATAGRAM request/response."
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::Quantiles;
    use crate::output::check_golden;

    fn row() -> PairRow {
        PairRow {
            source: "azure-demo".into(),
            destination: "oci-demo".into(),
            protocol: "udp/stamp".into(),
            timestamping: "kernel".into(),
            sent: 1000,
            received: 997,
            rtt_ns: Quantiles {
                p50: Some(41_215),
                p90: Some(55_000),
                p99: Some(1_234_567),
                p999: Some(2_000_000_000),
                max: None,
            },
            one_way_forward_p50_ns: Some(20_001),
            one_way_reverse_p50_ns: Some(19_999),
            jitter_forward_ns: Some(3_000),
            jitter_reverse_ns: None,
            lost: 3,
            lost_forward: 1,
            lost_reverse: 2,
            duplicated: 0,
            reordered: 4,
            late: 1,
            clock_error_ns: Some(32_000_000_000),
        }
    }

    /// A QUIC row: user-space timestamps, no one-way delay or direction split.
    fn quic_row() -> PairRow {
        PairRow {
            protocol: "quic/datagram".into(),
            timestamping: "user".into(),
            one_way_forward_p50_ns: None,
            one_way_reverse_p50_ns: None,
            jitter_forward_ns: None,
            clock_error_ns: None,
            ..row()
        }
    }

    #[test]
    fn golden_table() {
        check_golden("demo_table.txt", &render_table(&[row(), quic_row()]));
    }

    #[test]
    fn golden_json() {
        check_golden(
            "demo.json",
            &(serde_json::to_string_pretty(&[row()]).unwrap() + "\n"),
        );
    }

    #[test]
    fn durations_format() {
        assert_eq!(format_ns(Some(41_215)), "41.2us");
        assert_eq!(format_ns(Some(1_234_567)), "1.235ms");
        assert_eq!(format_ns(Some(2_500_000_000)), "2.500s");
        assert_eq!(format_ns(None), "-");
        assert_eq!(percent(1, 3), "33.33%");
        assert_eq!(percent(1, 0), "-");
    }
}

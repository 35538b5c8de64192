//! What an objective's fields mean together: the selection's labels, the indicator (and
//! the protocol and probe kind it implies when the file does not say), the comparison and
//! the judging settings. Shared by the xcbench format and the OpenSLO import.

use std::time::Duration;

use xcbench_snapshot::config_text::{parse_duration, ConfigError};
use xcbench_snapshot::{AgentId, Cloud, Expected, ProbeKind, Protocol};

use super::node::{with_child, Node};
use crate::objective::{
    Baseline, Comparison, Direction, Indicator, Judging, LoadChoice, Margin, Quantile, Select,
    Window,
};
use crate::text::{parse_rate, parse_ratio, parse_time};

/// An objective's `select:` keys: the history API's selection labels, written once.
pub(crate) const SELECT_KEYS: [&str; 9] = xcbench_snapshot::history::Selection::LABELS;

impl Default for Select {
    fn default() -> Self {
        Select {
            src_agent: None,
            src_cloud: None,
            src_region: None,
            dst_agent: None,
            dst_cloud: None,
            dst_region: None,
            protocol: None,
            kind: None,
            load: LoadChoice::Idle,
        }
    }
}

fn label<T: std::str::FromStr<Err = Expected>>(n: Node<'_>) -> Result<T, ConfigError> {
    let text = n.text().ok_or_else(|| n.err("must be a string"))?;
    text.parse().map_err(|e: Expected| n.err(e.0))
}

/// Reads `select:` over `base` (the defaults' selection): labels given here replace the
/// base's.
pub(crate) fn parse_select(n: Node<'_>, base: &Select) -> Result<Select, ConfigError> {
    n.fields(&SELECT_KEYS)?;
    let mut s = base.clone();
    let agent = |c: Node<'_>| label::<AgentId>(c).map(|a| a.to_string());
    let cloud = |c: Node<'_>| label::<Cloud>(c).map(|a| a.to_string());
    let region = |c: Node<'_>| {
        let t = c.text().ok_or_else(|| c.err("must be a string"))?;
        if t.is_empty() || t.len() > 64 || t.chars().any(char::is_control) {
            return Err(c.err("must be a region name of 1 to 64 characters, e.g. eastus"));
        }
        Ok(t)
    };
    if let Some(v) = with_child(&n, "src_agent", agent)? {
        s.src_agent = Some(v);
    }
    if let Some(v) = with_child(&n, "dst_agent", agent)? {
        s.dst_agent = Some(v);
    }
    if let Some(v) = with_child(&n, "src_cloud", cloud)? {
        s.src_cloud = Some(v);
    }
    if let Some(v) = with_child(&n, "dst_cloud", cloud)? {
        s.dst_cloud = Some(v);
    }
    if let Some(v) = with_child(&n, "src_region", region)? {
        s.src_region = Some(v);
    }
    if let Some(v) = with_child(&n, "dst_region", region)? {
        s.dst_region = Some(v);
    }
    if let Some(v) = with_child(&n, "protocol", label::<Protocol>)? {
        s.protocol = Some(v);
    }
    if let Some(v) = with_child(&n, "kind", label::<ProbeKind>)? {
        s.kind = Some(v);
    }
    if let Some(v) = with_child(&n, "load", |c| match c.text().as_deref() {
        Some("idle") => Ok(LoadChoice::Idle),
        Some("bench") => Ok(LoadChoice::Bench),
        Some("any") => Ok(LoadChoice::Any),
        _ => Err(c.err("must be one of idle, bench (under a throughput test), any")),
    })? {
        s.load = v;
    }
    Ok(s)
}

fn load_text(l: LoadChoice) -> String {
    match l {
        LoadChoice::Idle => "\"idle\"",
        LoadChoice::Bench => "\"bench\"",
        LoadChoice::Any => "\"any\"",
    }
    .to_owned()
}

/// Which protocol and kind pairs exist.
fn valid(p: Protocol, k: ProbeKind) -> bool {
    matches!(
        (p, k),
        (Protocol::Udp, ProbeKind::Stamp)
            | (Protocol::Tcp, ProbeKind::Connect | ProbeKind::Rr)
            | (
                Protocol::Quic,
                ProbeKind::Connect | ProbeKind::Rr | ProbeKind::Resume | ProbeKind::Datagram
            )
    )
}

fn field_err(file: &str, field: String, value: String, expected: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        file: file.to_owned(),
        field,
        value,
        expected: expected.into(),
    }
}

/// Settles the indicator named at `ind` (with its `direction`, if any) against the
/// selection: fills in the protocol and kind it implies, refuses combinations that cannot
/// be measured.
pub(crate) fn settle(
    ind: Node<'_>,
    direction: Option<Node<'_>>,
    direction_path: &str,
    mut select: Select,
    select_path: &str,
    load_given: bool,
) -> Result<(Indicator, Select), ConfigError> {
    let name = ind.text().unwrap_or_default();
    let dir = match direction {
        None => None,
        Some(d) => Some(match d.text().as_deref() {
            Some("forward") => Direction::Forward,
            Some("reverse") => Direction::Reverse,
            _ => return Err(d.err("must be forward (src to dst) or reverse (dst to src)")),
        }),
    };
    let file = ind.file;
    let sel = |k: &str| format!("{select_path}.{k}");
    let need_dir = |what: &str| -> Result<Direction, ConfigError> {
        dir.ok_or_else(|| {
            field_err(
                file,
                direction_path.to_owned(),
                "(missing)".to_owned(),
                format!("{what} is measured per direction: forward or reverse"),
            )
        })
    };
    let no_dir = |what: &str| -> Result<(), ConfigError> {
        match (dir, direction) {
            (Some(_), Some(d)) => Err(d.err(format!("{what} has no direction"))),
            _ => Ok(()),
        }
    };
    // (indicator, the kinds it can read, the protocol and kind it implies)
    let (indicator, fixed): (Indicator, Option<(Protocol, ProbeKind)>) = match name.as_str() {
        "rtt" => {
            no_dir("rtt")?;
            (Indicator::Rtt, None)
        }
        "rtt_increase_under_load" => {
            no_dir("rtt_increase_under_load")?;
            if load_given {
                return Err(field_err(
                    file,
                    sel("load"),
                    load_text(select.load),
                    "must not be given: rtt_increase_under_load compares load=bench with load=idle",
                ));
            }
            select.load = LoadChoice::Any;
            (Indicator::RttIncreaseUnderLoad, None)
        }
        "one_way_delay" => (
            Indicator::OneWayDelay(need_dir("one_way_delay")?),
            Some((Protocol::Udp, ProbeKind::Stamp)),
        ),
        "ipdv" => (
            Indicator::Ipdv(need_dir("ipdv")?),
            Some((Protocol::Udp, ProbeKind::Stamp)),
        ),
        "tcp_connect" => {
            no_dir("tcp_connect")?;
            (
                Indicator::TcpConnect,
                Some((Protocol::Tcp, ProbeKind::Connect)),
            )
        }
        "quic_handshake" => {
            no_dir("quic_handshake")?;
            (
                Indicator::QuicHandshake,
                Some((Protocol::Quic, ProbeKind::Connect)),
            )
        }
        "quic_resume" => {
            no_dir("quic_resume")?;
            (
                Indicator::QuicResume,
                Some((Protocol::Quic, ProbeKind::Resume)),
            )
        }
        "loss" => (
            Indicator::Loss(dir),
            dir.map(|_| (Protocol::Udp, ProbeKind::Stamp)),
        ),
        "duplicates" => {
            no_dir("duplicates")?;
            (Indicator::Duplicates, None)
        }
        "reorders" => {
            no_dir("reorders")?;
            (Indicator::Reorders, None)
        }
        "late" => {
            no_dir("late")?;
            (Indicator::Late, None)
        }
        "goodput" => {
            if let Some(k) = select.kind {
                return Err(field_err(
                    file,
                    sel("kind"),
                    format!("{:?}", k.as_str()),
                    "must not be given: goodput reads throughput tests, which have no probe kind",
                ));
            }
            if load_given {
                return Err(field_err(
                    file,
                    sel("load"),
                    load_text(select.load),
                    "must not be given: goodput reads throughput tests",
                ));
            }
            select.protocol = Some(select.protocol.unwrap_or(Protocol::Tcp));
            select.load = LoadChoice::Any;
            return Ok((Indicator::Goodput(dir), select));
        }
        _ => {
            return Err(ind.err(format!("must be one of {}", Indicator::NAMES.join(", "))));
        }
    };
    match fixed {
        Some((p, k)) => {
            if let Some(given) = select.protocol.filter(|g| *g != p) {
                return Err(field_err(
                    file,
                    sel("protocol"),
                    format!("{:?}", given.as_str()),
                    format!("{indicator} is measured by {p} {k} probes: leave it out or say {p}"),
                ));
            }
            if let Some(given) = select.kind.filter(|g| *g != k) {
                return Err(field_err(
                    file,
                    sel("kind"),
                    format!("{:?}", given.as_str()),
                    format!("{indicator} is measured by {p} {k} probes: leave it out or say {k}"),
                ));
            }
            select.protocol = Some(p);
            select.kind = Some(k);
        }
        None => {
            let (p, k) = match (select.protocol, select.kind) {
                (None, None) | (Some(Protocol::Udp), None) => (Protocol::Udp, ProbeKind::Stamp),
                (Some(p), None) => (p, ProbeKind::Rr),
                (None, Some(ProbeKind::Stamp)) => (Protocol::Udp, ProbeKind::Stamp),
                (None, Some(ProbeKind::Datagram | ProbeKind::Resume)) => {
                    (Protocol::Quic, select.kind.unwrap_or(ProbeKind::Rr))
                }
                (None, Some(k)) => {
                    return Err(field_err(
                        file,
                        sel("protocol"),
                        "(missing)".to_owned(),
                        format!("must be given with kind = {k}: tcp or quic"),
                    ))
                }
                (Some(p), Some(k)) => (p, k),
            };
            if !valid(p, k) {
                return Err(field_err(
                    file,
                    sel("kind"),
                    format!("{:?}", k.as_str()),
                    format!("{p} probes have no kind {k}: udp has stamp; tcp connect, rr; quic connect, rr, resume, datagram"),
                ));
            }
            if matches!(indicator, Indicator::Rtt | Indicator::RttIncreaseUnderLoad)
                && !matches!(k, ProbeKind::Stamp | ProbeKind::Rr | ProbeKind::Datagram)
            {
                return Err(field_err(
                    file,
                    sel("kind"),
                    format!("{:?}", k.as_str()),
                    "rtt reads stamp, rr or datagram probes; for handshakes use tcp_connect, quic_handshake or quic_resume",
                ));
            }
            select.protocol = Some(p);
            select.kind = Some(k);
        }
    }
    Ok((indicator, select))
}

/// A latency threshold: 1 us to 60 s (the histograms' range).
pub(crate) fn parse_latency(n: Node<'_>) -> Result<u64, ConfigError> {
    n.text()
        .and_then(|t| parse_duration(&t))
        .map(|d| d.as_nanos() as u64)
        .filter(|ns| (1_000..=60_000_000_000).contains(ns))
        .ok_or_else(|| n.err("must be a duration from 1us to 60s, e.g. 2ms"))
}

/// Builds the comparison from `quantile`, `at_most`, `at_least` as the indicator needs.
pub(crate) fn parse_comparison(
    o: &Node<'_>,
    indicator: Indicator,
) -> Result<Comparison, ConfigError> {
    let get = |k: &str| o.get(k).map(|v| (o.child_path(k), v));
    let quantile = get("quantile");
    let at_most = get("at_most");
    let at_least = get("at_least");
    let refuse = |k: &str, why: &str| -> Result<(), ConfigError> {
        match get(k) {
            Some((p, v)) => Err(p.node(v, o.file).err(why.to_owned())),
            None => Ok(()),
        }
    };
    if let Some((np, nv)) = get("no_worse_than") {
        refuse(
            "at_most",
            "an objective against a baseline takes no_worse_than, not at_most",
        )?;
        refuse(
            "at_least",
            "an objective against a baseline takes no_worse_than, not at_least",
        )?;
        let n = np.node(nv, o.file);
        let text = n.text().unwrap_or_default();
        if matches!(
            indicator,
            Indicator::Goodput(_) | Indicator::RttIncreaseUnderLoad
        ) {
            return Err(
                n.err("goodput and rtt_increase_under_load are not compared with a baseline")
            );
        }
        if indicator.metric().is_some() {
            let (qp, qv) = quantile.ok_or_else(|| {
                o.missing(
                    "quantile",
                    "a latency objective against a baseline needs a quantile: p50 .. p99.999",
                )
            })?;
            let qn = qp.node(qv, o.file);
            let q = qn
                .text()
                .and_then(|t| Quantile::parse(&t))
                .filter(|q| !q.is_max())
                .ok_or_else(|| {
                    qn.err("must be p50 .. p99.999: a maximum has no bound to compare")
                })?;
            let margin = match text.strip_prefix('+') {
                Some(d) => parse_duration(d)
                    .map(|d| d.as_nanos() as u64)
                    .filter(|ns| *ns <= 60_000_000_000)
                    .map(Margin::Latency),
                None => parse_ratio(&text).filter(|r| *r <= 10.0).map(Margin::Relative),
            }
            .ok_or_else(|| n.err("must be a share of the baseline's quantile such as 10%, or a time with a plus such as +0.5ms"))?;
            return Ok(Comparison::NoWorse {
                quantile: Some(q),
                margin,
            });
        }
        refuse("quantile", "ratio objectives take no quantile")?;
        let margin = text
            .strip_prefix('+')
            .and_then(parse_ratio)
            .filter(|p| *p <= 1.0)
            .map(Margin::Points)
            .ok_or_else(|| n.err("must be percentage points with a plus, such as +0.05% (a ratio may grow by at most that)"))?;
        return Ok(Comparison::NoWorse {
            quantile: None,
            margin,
        });
    }
    if indicator.metric().is_some() {
        refuse("at_least", "latency objectives take at_most (a duration)")?;
        let (qp, qv) = quantile.ok_or_else(|| {
            o.missing(
                "quantile",
                "latency objectives need a quantile: p50 .. p99.999 or max",
            )
        })?;
        let qn = qp.node(qv, o.file);
        let q = qn.text().and_then(|t| Quantile::parse(&t)).ok_or_else(|| {
            qn.err("must be p50, p90, p99, p99.9, p99.99 (any p1 .. p99.999) or max")
        })?;
        let (mp, mv) = at_most
            .ok_or_else(|| o.missing("at_most", "latency objectives need at_most, e.g. 2ms"))?;
        return Ok(Comparison::Latency {
            quantile: q,
            at_most_ns: parse_latency(mp.node(mv, o.file))?,
        });
    }
    if let Indicator::Goodput(_) = indicator {
        refuse(
            "at_most",
            "goodput objectives take at_least (a rate, e.g. 500M)",
        )?;
        let q = match quantile {
            None => Quantile::MAX,
            Some((qp, qv)) => {
                let qn = qp.node(qv, o.file);
                match qn.text().as_deref() {
                    Some("min") => Quantile::MAX,
                    Some(t) => Quantile::parse(t)
                        .filter(|q| !q.is_max() && q.fraction() <= 0.5)
                        .ok_or_else(|| {
                            qn.err("must be min (every test, the default) or a low quantile such as p10 (90% of tests)")
                        })?,
                    None => return Err(qn.err("must be min or a low quantile such as p10")),
                }
            }
        };
        let (lp, lv) = at_least.ok_or_else(|| {
            o.missing(
                "at_least",
                "goodput objectives need at_least, e.g. 500M (bits/s)",
            )
        })?;
        let ln = lp.node(lv, o.file);
        let bps = ln
            .text()
            .and_then(|t| parse_rate(&t))
            .ok_or_else(|| ln.err("must be a rate in bits/s such as 500M, 1G or 1.5Gbit/s"))?;
        return Ok(Comparison::Goodput {
            quantile: q,
            at_least_bits_per_second: bps,
        });
    }
    refuse(
        "quantile",
        "ratio objectives (loss, duplicates, reorders, late) take at_most only",
    )?;
    refuse(
        "at_least",
        "ratio objectives take at_most (a ratio such as 0.1%)",
    )?;
    let (mp, mv) =
        at_most.ok_or_else(|| o.missing("at_most", "ratio objectives need at_most, e.g. 0.1%"))?;
    Ok(Comparison::Ratio {
        at_most: parse_positive_ratio(mp.node(mv, o.file))?,
    })
}

/// A baseline: a duration (the judged window that much earlier: 7d) or `{ from, to }`.
pub(crate) fn parse_baseline(n: Node<'_>) -> Result<Baseline, ConfigError> {
    match parse_window(n)? {
        Window::Last(d) => Ok(Baseline::Before(d)),
        Window::Range {
            from_unix_ns,
            to_unix_ns,
        } => Ok(Baseline::Range {
            from_unix_ns,
            to_unix_ns,
        }),
    }
}

/// A ratio above 0 and at most 1: no number of probes shows a ratio of exactly 0.
pub(crate) fn parse_positive_ratio(n: Node<'_>) -> Result<f64, ConfigError> {
    n.text()
        .and_then(|t| parse_ratio(&t))
        .filter(|r| *r > 0.0)
        .ok_or_else(|| {
            n.err("must be a ratio above 0 and at most 100%, e.g. 0.1% or 0.001 (no number of probes can show exactly 0)")
        })
}

pub(crate) const JUDGING_KEYS: [&str; 8] = [
    "window",
    "confidence",
    "min_probes",
    "max_report_age",
    "min_coverage",
    "max_clock_error",
    "min_rate",
    "max_skipped",
];

/// Reads the judging settings and the window present at `n` over `base`.
pub(crate) fn parse_judging(
    n: &Node<'_>,
    base: Judging,
    window: Window,
) -> Result<(Judging, Window), ConfigError> {
    let mut j = base;
    let window = with_child(n, "window", parse_window)?.unwrap_or(window);
    if let Some(c) = with_child(n, "confidence", |c| {
        c.text()
            .and_then(|t| parse_ratio(&t))
            .filter(|v| (0.5..=0.9999).contains(v))
            .ok_or_else(|| c.err("must be a confidence from 50% to 99.99%, e.g. 95% or 0.95"))
    })? {
        j.confidence = c;
    }
    if let Some(m) = with_child(n, "min_probes", |c| {
        c.value
            .as_u64()
            .filter(|v| (1..=1_000_000_000_000).contains(v))
            .ok_or_else(|| c.err("must be a whole number from 1 to 10^12"))
    })? {
        j.min_probes = m;
    }
    if let Some(a) = with_child(n, "max_report_age", |c| {
        c.text()
            .and_then(|t| parse_duration(&t))
            .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(86_400))
            .ok_or_else(|| c.err("must be a duration from 1s to 1d, e.g. 1m"))
    })? {
        j.max_report_age = a;
    }
    if let Some(c) = with_child(n, "min_coverage", |c| {
        c.text()
            .and_then(|t| parse_ratio(&t))
            .ok_or_else(|| c.err("must be a ratio from 0 to 100%, e.g. 90%"))
    })? {
        j.min_coverage = c;
    }
    if let Some(c) = with_child(n, "max_skipped", |c| {
        c.text()
            .and_then(|t| parse_ratio(&t))
            .ok_or_else(|| c.err("must be a ratio from 0 to 100%, e.g. 1%"))
    })? {
        j.max_skipped = c;
    }
    if let Some(c) = with_child(n, "max_clock_error", |c| {
        c.text()
            .and_then(|t| parse_ratio(&t))
            .filter(|v| *v > 0.0)
            .ok_or_else(|| {
                c.err("must be a part of the threshold above 0 and at most 100%, e.g. 10%")
            })
    })? {
        j.max_clock_error = c;
    }
    if let Some(r) = with_child(n, "min_rate", |c| {
        c.text()
            .and_then(|t| {
                let t = t.trim();
                t.strip_suffix("/s").unwrap_or(t).trim().parse::<f64>().ok()
            })
            .filter(|v| v.is_finite() && *v > 0.0 && *v <= 1e6)
            .ok_or_else(|| c.err("must be probes per second per series, e.g. 10/s"))
    })? {
        j.min_rate = Some(r);
    }
    Ok((j, window))
}

/// `1h` (the last hour) or `{ from: 2026-11-30T18:00:00Z, to: 2026-11-30T19:00:00Z }`.
pub(crate) fn parse_window(n: Node<'_>) -> Result<Window, ConfigError> {
    if let Some(t) = n.text() {
        return parse_duration(&t)
            .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(400 * 86_400))
            .map(Window::Last)
            .ok_or_else(|| {
                n.err("must be a duration from 1s to 400d (the last 1h, say), or { from, to }")
            });
    }
    n.fields(&["from", "to"])?;
    let time = |c: Node<'_>| {
        c.text().and_then(|t| parse_time(&t)).ok_or_else(|| {
            c.err("must be an RFC 3339 time such as 2026-11-30T18:00:00Z, or Unix seconds")
        })
    };
    let from = with_child(&n, "from", time)?
        .ok_or_else(|| n.missing("from", "a window range needs from and to"))?;
    let to = with_child(&n, "to", time)?
        .ok_or_else(|| n.missing("to", "a window range needs from and to"))?;
    if from >= to {
        let path = n.child_path("from");
        return Err(path
            .node(n.get("from").unwrap_or(n.value), n.file)
            .err("must be before to"));
    }
    Ok(Window::Range {
        from_unix_ns: from,
        to_unix_ns: to,
    })
}

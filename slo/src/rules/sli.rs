//! An objective's indicator as the counters Prometheus scrapes from the collector, and its
//! error ratio over a window as PromQL.

use crate::objective::{Comparison, Direction, Indicator, Objective, Select};
use crate::text::threshold_label;
use xcbench_snapshot::metrics::{
    PROBES_DUPLICATED_TOTAL, PROBES_LATE_TOTAL, PROBES_LOST_DIRECTION_TOTAL, PROBES_LOST_TOTAL,
    PROBES_RECEIVED_TOTAL, PROBES_REORDERED_TOTAL, SLO_SAMPLES_TOTAL, SLO_WITHIN_TOTAL,
};

/// An objective's indicator as counters: the error ratio is bad / total.
pub(super) enum Sli {
    /// `(samples - within) / samples`: straddling samples count as bad.
    Latency {
        samples: String,
        within: String,
        budget: f64,
        threshold_ns: u64,
        /// What a bad event is, for people.
        bad: String,
    },
    /// `bad / sum(total)`.
    Counters {
        bad: String,
        total: Vec<String>,
        budget: f64,
        what: &'static str,
        /// Whether bad events are a part of the total (all but duplicates: a reply can
        /// come back more than twice).
        at_most_one: bool,
    },
}

const PER_TEST: &str = "judged per scheduled throughput test by `xcbench gate`, not a ratio of bad to all events that Prometheus could rate";
const AGAINST_BASELINE: &str = "judged against a baseline window by `xcbench gate` (two windows' bounds), not a ratio of bad to all events that Prometheus could rate";

impl Sli {
    pub(super) fn of(o: &Objective) -> Result<Sli, &'static str> {
        let base = matchers(&o.select);
        let with = |extra: &[(&str, &str)]| {
            let mut m = base.clone();
            m.extend(
                extra
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", promql_escape(v))),
            );
            format!("{{{}}}", m.join(","))
        };
        match (o.indicator, o.comparison) {
            (Indicator::Goodput(_) | Indicator::RttIncreaseUnderLoad, _) => Err(PER_TEST),
            (_, Comparison::NoWorse { .. }) => Err(AGAINST_BASELINE),
            (
                ind,
                Comparison::Latency {
                    quantile,
                    at_most_ns,
                },
            ) => {
                let Some(metric) = ind.metric() else {
                    return Err("a latency comparison on an indicator without latency samples");
                };
                let metric = metric.as_str();
                let threshold = threshold_label(at_most_ns);
                // Whole parts per million: 1 - 0.99 is 0.01, not 0.010000000000000009.
                let ppm = (quantile.fraction() * 1e6).round() as u64;
                Ok(Sli::Latency {
                    samples: format!(
                        "{}{}",
                        SLO_SAMPLES_TOTAL.name(),
                        with(&[("metric", metric)])
                    ),
                    within: format!(
                        "{}{}",
                        SLO_WITHIN_TOTAL.name(),
                        with(&[("metric", metric), ("threshold", &threshold)])
                    ),
                    budget: (1_000_000 - ppm.min(1_000_000)) as f64 / 1e6,
                    threshold_ns: at_most_ns,
                    bad: format!(
                        "samples above {} / samples",
                        crate::text::duration(at_most_ns)
                    ),
                })
            }
            (ind, Comparison::Ratio { at_most }) => {
                let received = format!("{}{}", PROBES_RECEIVED_TOTAL.name(), with(&[]));
                let lost = format!("{}{}", PROBES_LOST_TOTAL.name(), with(&[]));
                let resolved = vec![received.clone(), lost.clone()];
                let lost_in = |d: Direction| {
                    format!(
                        "{}{}",
                        PROBES_LOST_DIRECTION_TOTAL.name(),
                        with(&[("direction", &d.to_string())])
                    )
                };
                let (bad, total, what) = match ind {
                    Indicator::Loss(None) => (lost, resolved, "probes lost / probes resolved"),
                    Indicator::Loss(Some(d @ Direction::Forward)) => (
                        lost_in(d),
                        resolved,
                        "probes lost forward / probes resolved",
                    ),
                    Indicator::Loss(Some(d @ Direction::Reverse)) => (
                        lost_in(d),
                        resolved,
                        "probes lost in reverse / probes resolved",
                    ),
                    Indicator::Late => (
                        format!("{}{}", PROBES_LATE_TOTAL.name(), with(&[])),
                        resolved,
                        "late replies / probes resolved",
                    ),
                    Indicator::Duplicates => (
                        format!("{}{}", PROBES_DUPLICATED_TOTAL.name(), with(&[])),
                        vec![received],
                        "duplicate replies / replies",
                    ),
                    Indicator::Reorders => (
                        format!("{}{}", PROBES_REORDERED_TOTAL.name(), with(&[])),
                        vec![received],
                        "reordered replies / replies",
                    ),
                    _ => return Err("a ratio comparison on an indicator without counters"),
                };
                Ok(Sli::Counters {
                    bad,
                    total,
                    budget: at_most,
                    what,
                    at_most_one: ind != Indicator::Duplicates,
                })
            }
            (_, Comparison::Goodput { .. }) => Err(PER_TEST),
        }
    }

    pub(super) fn budget(&self) -> f64 {
        match self {
            Sli::Latency { budget, .. } | Sli::Counters { budget, .. } => *budget,
        }
    }

    pub(super) fn what(&self) -> &str {
        match self {
            Sli::Latency { bad, .. } => bad,
            Sli::Counters { what, .. } => what,
        }
    }

    /// The error ratio over a window, as PromQL (lines without indentation). Prometheus
    /// extrapolates each series' `increase()` on its own, so over a series' first minutes
    /// the part can grow by more than the whole (seen: within-threshold samples 2.8% above
    /// all samples, 6 s into a run): a ratio of a part to its whole is held within 0..=1.
    pub(super) fn ratio(&self, window: &str) -> Vec<String> {
        let inc = |s: &str| format!("sum(increase({s}[{window}]))");
        match self {
            Sli::Latency {
                samples, within, ..
            } => vec![
                "clamp_min(".to_owned(),
                format!("  {}", inc(samples)),
                format!("  - {},", inc(within)),
                "  0".to_owned(),
                ")".to_owned(),
                format!("/ ({} > 0)", inc(samples)),
            ],
            Sli::Counters {
                bad,
                total,
                at_most_one,
                ..
            } => {
                let mut lines = vec![inc(bad)];
                if let [one] = total.as_slice() {
                    lines.push(format!("/ ({} > 0)", inc(one)));
                } else {
                    lines.push("/ (".to_owned());
                    lines.push("  (".to_owned());
                    for (i, t) in total.iter().enumerate() {
                        let op = if i == 0 { "  " } else { "+ " };
                        lines.push(format!("    {op}{}", inc(t)));
                    }
                    lines.push("  ) > 0".to_owned());
                    lines.push(")".to_owned());
                }
                if !at_most_one {
                    return lines;
                }
                let last = lines.len() - 1;
                let mut clamped = vec!["clamp_max(".to_owned()];
                for (i, l) in lines.into_iter().enumerate() {
                    clamped.push(format!("  {l}{}", if i == last { "," } else { "" }));
                }
                clamped.extend(["  1".to_owned(), ")".to_owned()]);
                clamped
            }
        }
    }
}

/// The selection's label matchers, `name="value"`.
fn matchers(s: &Select) -> Vec<String> {
    s.pairs()
        .into_iter()
        .map(|(k, v)| format!("{k}=\"{}\"", promql_escape(&v)))
        .collect()
}
/// A PromQL string's content: `\` and `"` escaped (names have no control characters).
pub(super) fn promql_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

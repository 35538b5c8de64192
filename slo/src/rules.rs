//! The SLO file as Prometheus rules (`xcbench slo rules`): per objective, recording rules of
//! its error ratio over the windows that multi-window, multi-burn-rate alerts read (Google's
//! SRE workbook, chapter "Alerting on SLOs"), its error budget (and latency threshold) as
//! gauges, its error ratio over the whole period (`xcbench_slo:error_ratio:period`: one minus
//! it over the budget is the budget remaining, as the SLO dashboard shows), and the alerts:
//! page for key objectives, ticket for every objective. Sans-IO:
//! objectives and a period in, the rule file's YAML text out.
//!
//! The workbook's windows assume a 30-day period; another period scales every window by
//! the same proportion (the burn-rate factors stay), rounded to whole seconds.
//!
//! What counts as bad:
//! - latency `pQ <= T`: every sample not certainly at or below T, i.e.
//!   `xcbench_slo_samples_total - xcbench_slo_within_total`. Samples in the HdrHistogram
//!   bucket that straddles T (`xcbench_slo_straddling_total`) are therefore bad: an alert
//!   must never fire later than the truth would, and counting them good could hide a burn
//!   when the samples crowd at the threshold. The cost is at most the bucket's 0.1% of
//!   resolution around T, which a threshold off a bucket edge avoids.
//! - loss: lost (overall, or `xcbench_probes_lost_direction_total` of the direction) over
//!   resolved probes (received + lost); late: late replies over resolved probes; duplicates
//!   and reorders: over received replies. The same ratios the gate judges.
//!
//! Goodput and `rtt_increase_under_load` get no rules: they are judged per scheduled
//! throughput test by `xcbench gate`, not as a ratio of bad to all events that Prometheus
//! could rate; [`Rules::left_out`] lists them.
//!
//! No data is never a burn: a window without samples (or with no increase) records no
//! error ratio (the denominator is filtered `> 0`, so no NaN), and no alert fires.

use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use crate::objective::{Comparison, Direction, Indicator, Objective, Select};
use crate::text::threshold_label;

/// The period an error budget is spent over when `--period` is not given.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * DAY);
/// The shortest period: its shortest window (5m of 30d) scales to 1m.
pub const MIN_PERIOD: Duration = Duration::from_secs(6 * DAY);
/// The longest period: a year (its longest window is then 36.5d).
pub const MAX_PERIOD: Duration = Duration::from_secs(365 * DAY);

/// A Prometheus rule file and the objectives it has no rules for.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// The rule file (YAML), for `promtool check rules` and Prometheus' `rule_files`.
    pub yaml: String,
    /// Objectives without rules, and why.
    pub left_out: Vec<LeftOut>,
}

/// An objective the rule file has no rules for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub objective: String,
    pub indicator: Indicator,
    pub reason: &'static str,
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.objective, self.indicator, self.reason
        )
    }
}

/// Why no rule file was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The period (`--period`) is outside what the windows allow.
    #[error("--period = \"{value}\": {expected}")]
    Period { value: String, expected: String },
}

/// Rules for `objectives` with error budgets spent over `period` (see the module's doc).
pub fn rules(objectives: &[Objective], period: Duration) -> Result<Rules, RulesError> {
    let windows = Windows::new(period)?;
    let mut out = String::new();
    header(&mut out, &windows);
    let mut stems = BTreeSet::new();
    let mut left_out = Vec::new();
    let mut groups = Vec::new();
    for o in objectives {
        match Sli::of(o) {
            Ok(sli) => {
                let stem = unique_stem(&o.name, &mut stems);
                groups.push(group(o, &sli, &stem, &windows));
            }
            Err(reason) => left_out.push(LeftOut {
                objective: o.name.clone(),
                indicator: o.indicator,
                reason,
            }),
        }
    }
    if groups.is_empty() {
        out.push_str("groups: []\n");
    } else {
        out.push_str("groups:\n");
    }
    for g in groups {
        out.push_str(&g);
    }
    for l in &left_out {
        let _ = writeln!(out, "  # No rules for {}", comment(&l.to_string()));
    }
    Ok(Rules {
        yaml: out,
        left_out,
    })
}

const DAY: u64 = 86_400;
/// The period the workbook's windows are written for.
const NOMINAL_PERIOD: u64 = 30 * DAY;

/// One condition of an alert: the error ratio above `factor` x budget over both windows
/// (nominal seconds of a 30-day period). The long window shows the burn is real; the short
/// one that it is still going on, so the alert resets soon after the burn stops.
struct Burn {
    long: u64,
    short: u64,
    factor: f64,
}

/// Page: 2% of the budget spent in an hour, or 5% in six hours.
const PAGE: [Burn; 2] = [
    Burn {
        long: 3_600,
        short: 300,
        factor: 14.4,
    },
    Burn {
        long: 6 * 3_600,
        short: 1_800,
        factor: 6.0,
    },
];

/// Ticket: 10% of the budget spent in a day, or 10% in three days.
const TICKET: [Burn; 2] = [
    Burn {
        long: DAY,
        short: 2 * 3_600,
        factor: 3.0,
    },
    Burn {
        long: 3 * DAY,
        short: 6 * 3_600,
        factor: 1.0,
    },
];

/// Every window an alert reads, shortest first (nominal seconds).
const NOMINAL_WINDOWS: [u64; 7] = [300, 1_800, 3_600, 2 * 3_600, 6 * 3_600, DAY, 3 * DAY];

/// The windows scaled to a period.
struct Windows {
    period: Duration,
    /// (nominal seconds, scaled seconds), as NOMINAL_WINDOWS.
    scaled: Vec<(u64, u64)>,
}

impl Windows {
    fn new(period: Duration) -> Result<Windows, RulesError> {
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&period) {
            return Err(RulesError::Period {
                value: duration_text(period),
                expected: format!(
                    "must be from {} to {}: the shortest alert window (5m of a 30d period) scales with it and must be at least 1m",
                    duration_text(MIN_PERIOD),
                    duration_text(MAX_PERIOD)
                ),
            });
        }
        let nominal_ns = u128::from(NOMINAL_PERIOD) * 1_000_000_000;
        let scaled = NOMINAL_WINDOWS
            .iter()
            .map(|&w| {
                // Rounded to whole seconds; at most 36.5d, so it fits.
                let s = (u128::from(w) * period.as_nanos() + nominal_ns / 2) / nominal_ns;
                (w, s as u64)
            })
            .collect();
        Ok(Windows { period, scaled })
    }

    /// The scaled window of a nominal one.
    fn of(&self, nominal: u64) -> u64 {
        self.scaled
            .iter()
            .find(|(n, _)| *n == nominal)
            .map(|(_, s)| *s)
            .expect("every burn window is in NOMINAL_WINDOWS")
    }

    fn period_text(&self) -> String {
        duration_text(self.period)
    }
}

/// A PromQL duration in its largest whole unit: `3d`, `6h`, `84m`, `70s`.
fn seconds_text(s: u64) -> String {
    for (unit, len) in [("d", DAY), ("h", 3_600), ("m", 60)] {
        if s >= len && s.is_multiple_of(len) {
            return format!("{}{unit}", s / len);
        }
    }
    format!("{s}s")
}

/// A period as written back in messages: whole seconds as [`seconds_text`], else ms.
fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        seconds_text(d.as_secs())
    } else {
        format!("{}ms", crate::text::trim(d.as_secs_f64() * 1e3))
    }
}

/// The recording rule of the error ratio over the whole period (labelled with it).
pub const PERIOD_RATIO: &str = "xcbench_slo:error_ratio:period";

/// How often the period's ratio is evaluated (its own group).
const PERIOD_INTERVAL: &str = "5m";

/// The recording rule of the error ratio over a (scaled) window.
fn ratio_name(window_secs: u64) -> String {
    format!("xcbench_slo:error_ratio:rate{}", seconds_text(window_secs))
}

/// An objective's indicator as counters: the error ratio is bad / total.
enum Sli {
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

impl Sli {
    fn of(o: &Objective) -> Result<Sli, &'static str> {
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
                    samples: format!("xcbench_slo_samples_total{}", with(&[("metric", metric)])),
                    within: format!(
                        "xcbench_slo_within_total{}",
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
                let received = format!("xcbench_probes_received_total{}", with(&[]));
                let lost = format!("xcbench_probes_lost_total{}", with(&[]));
                let resolved = vec![received.clone(), lost.clone()];
                let lost_in = |d: Direction| {
                    format!(
                        "xcbench_probes_lost_direction_total{}",
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
                        format!("xcbench_probes_late_total{}", with(&[])),
                        resolved,
                        "late replies / probes resolved",
                    ),
                    Indicator::Duplicates => (
                        format!("xcbench_probes_duplicated_total{}", with(&[])),
                        vec![received],
                        "duplicate replies / replies",
                    ),
                    Indicator::Reorders => (
                        format!("xcbench_probes_reordered_total{}", with(&[])),
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

    fn budget(&self) -> f64 {
        match self {
            Sli::Latency { budget, .. } | Sli::Counters { budget, .. } => *budget,
        }
    }

    fn what(&self) -> &str {
        match self {
            Sli::Latency { bad, .. } => bad,
            Sli::Counters { what, .. } => what,
        }
    }

    /// The error ratio over a window, as PromQL (lines without indentation).
    fn ratio(&self, window: &str) -> Vec<String> {
        let inc = |s: &str| format!("sum(increase({s}[{window}]))");
        match self {
            Sli::Latency {
                samples, within, ..
            } => vec![
                "(".to_owned(),
                format!("  {}", inc(samples)),
                format!("  - {}", inc(within)),
                ")".to_owned(),
                format!("/ ({} > 0)", inc(samples)),
            ],
            Sli::Counters { bad, total, .. } => {
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
                lines
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

fn header(out: &mut String, w: &Windows) {
    let windows: Vec<String> = w.scaled.iter().map(|(_, s)| seconds_text(*s)).collect();
    let _ = write!(
        out,
        "\
# Prometheus rules for xcbench SLOs, generated by `xcbench slo rules` from an SLO file:
# regenerate rather than edit. Per objective, a group with its error budget (and latency
# threshold) as gauges, its error ratio over the windows the alerts read, and
# multi-window, multi-burn-rate alerts (Google SRE workbook, \"Alerting on SLOs\").
# Error budgets are spent over {period}; windows {windows}{scaled}.
#   page (key objectives only): error ratio {page}
#   ticket (every objective):   error ratio {ticket}
# Latency objectives read the exact counters of a collector given the same SLO file; a
# sample in the HdrHistogram bucket straddling the threshold counts as bad, so an alert
# never fires later than the truth would. No data records no ratio and fires no alert.
",
        windows = windows.join(", "),
        period = w.period_text(),
        scaled = if w.period == DEFAULT_PERIOD {
            " (the workbook's, for 30d)".to_owned()
        } else {
            format!(" (the workbook's for 30d, scaled to {})", w.period_text())
        },
        page = burn_text(&PAGE, w),
        ticket = burn_text(&TICKET, w),
    );
}

/// One objective's group.
fn group(o: &Objective, sli: &Sli, stem: &str, w: &Windows) -> String {
    let mut g = String::new();
    let name = &o.name;
    let objective = yaml_string(name);
    let selector = format!("{{objective=\"{}\"}}", promql_escape(name));
    let budget = number(sli.budget());
    let period = w.period_text();
    let role = if o.key {
        "key: pages and tickets"
    } else {
        "not key: tickets only"
    };
    let _ = writeln!(
        g,
        "  # {}",
        comment(&format!(
            "{name}: {} {} ({role})",
            o.indicator, o.comparison
        ))
    );
    if let Some(d) = &o.description {
        let _ = writeln!(g, "  # {}", comment(d));
    }
    let _ = writeln!(
        g,
        "  - name: {}",
        yaml_string(&format!("xcbench-slo/{name}"))
    );
    g.push_str("    rules:\n");
    let _ = writeln!(
        g,
        "      # The error budget: the error ratio ({}) allowed over {period}.",
        comment(sli.what())
    );
    record(
        &mut g,
        "xcbench_slo:error_budget",
        &[format!("vector({budget})")],
        &objective,
    );
    if let Sli::Latency { threshold_ns, .. } = sli {
        record(
            &mut g,
            "xcbench_slo:threshold_seconds",
            &[format!("vector({})", threshold_label(*threshold_ns))],
            &objective,
        );
    }
    for (_, secs) in &w.scaled {
        let window = seconds_text(*secs);
        record(&mut g, &ratio_name(*secs), &sli.ratio(&window), &objective);
    }
    let what = sli.what();
    let threshold = o.comparison.to_string();
    let select = template_escape(&o.select.to_string());
    let summary_name = template_escape(name);
    let mut alerts = vec![("ticket", &TICKET, "burns its error budget")];
    if o.key {
        alerts.insert(0, ("page", &PAGE, "burns its error budget fast"));
    }
    for (severity, burns, verb) in alerts {
        for b in burns.iter().filter(|b| b.factor * sli.budget() >= 1.0) {
            let never = match sli {
                Sli::Counters {
                    at_most_one: false, ..
                } => "holds only with more bad events than events counted against them",
                _ => "never holds: at most every event is bad",
            };
            let _ = writeln!(
                g,
                "      # {}x a {} budget is an error ratio of 100% or more: this condition {never}.",
                b.factor,
                crate::text::percent(sli.budget())
            );
        }
        let mut expr = Vec::new();
        for (i, b) in burns.iter().enumerate() {
            if i > 0 {
                expr.push("or".to_owned());
            }
            let limit = format!("({} * {budget})", number(b.factor));
            expr.push("(".to_owned());
            expr.push(format!(
                "    {}{selector} > {limit}",
                ratio_name(w.of(b.long))
            ));
            expr.push("  and".to_owned());
            expr.push(format!(
                "    {}{selector} > {limit}",
                ratio_name(w.of(b.short))
            ));
            expr.push(")".to_owned());
        }
        let _ = writeln!(g, "      - alert: {stem}_{severity}");
        expr_field(&mut g, &expr);
        g.push_str("        labels:\n");
        let _ = writeln!(g, "          severity: {severity}");
        let _ = writeln!(g, "          objective: {objective}");
        g.push_str("        annotations:\n");
        let summary = format!("SLO {summary_name} ({} {threshold}) {verb}", o.indicator);
        let description = format!(
            "Error ratio {{{{ $value | humanizePercentage }}}} ({what}) over the long window, against an error budget of {} over {period}: {}. Series: {select}.",
            crate::text::percent(sli.budget()),
            burn_text(burns, w)
        );
        let _ = writeln!(g, "          summary: {}", yaml_string(&summary));
        let _ = writeln!(g, "          description: {}", yaml_string(&description));
    }
    // The period's ratio reads every raw sample of the period: its own group, evaluated
    // every 5 minutes. Prometheus must keep the whole period for it to be the period's.
    let _ = writeln!(
        g,
        "  - name: {}",
        yaml_string(&format!("xcbench-slo/{name}/period"))
    );
    let _ = writeln!(g, "    interval: {PERIOD_INTERVAL}");
    g.push_str("    rules:\n");
    let _ = writeln!(
        g,
        "      # The error ratio over the whole {period} (needs that much retention): 1 - it / the budget is the error budget remaining."
    );
    record(&mut g, PERIOD_RATIO, &sli.ratio(&period), &objective);
    g
}

/// `above 14.4x the budget over both 1h and 5m, or ...`
fn burn_text(burns: &[Burn; 2], w: &Windows) -> String {
    burns
        .iter()
        .map(|b| {
            format!(
                "above {}x the budget over both {} and {}",
                b.factor,
                seconds_text(w.of(b.long)),
                seconds_text(w.of(b.short))
            )
        })
        .collect::<Vec<_>>()
        .join(", or ")
}

/// A recording rule labelled with its objective.
fn record(out: &mut String, name: &str, expr: &[String], objective: &str) {
    let _ = writeln!(out, "      - record: {name}");
    expr_field(out, expr);
    out.push_str("        labels:\n");
    let _ = writeln!(out, "          objective: {objective}");
}

/// `expr:` as a literal block when it is plain printable ASCII, else a quoted string.
fn expr_field(out: &mut String, lines: &[String]) {
    let plain = lines
        .iter()
        .all(|l| l.bytes().all(|b| (0x20..0x7f).contains(&b)));
    match lines {
        [one] if plain => {
            let _ = writeln!(out, "        expr: {}", yaml_string(one));
        }
        _ if plain => {
            out.push_str("        expr: |\n");
            for l in lines {
                let _ = writeln!(out, "          {l}");
            }
        }
        _ => {
            let _ = writeln!(out, "        expr: {}", yaml_string(&lines.join("\n")));
        }
    }
}

/// A number as PromQL and YAML read it: at most 15 decimals, no trailing zeros.
fn number(v: f64) -> String {
    let mut t = format!("{v:.15}");
    if t.contains('.') {
        while t.ends_with('0') {
            t.pop();
        }
        if t.ends_with('.') {
            t.pop();
        }
    }
    t
}

/// An alert name from an objective's name: `xcbench_slo_` and its letters and digits
/// (others become `_`), lowercase, made unique with `_2`, `_3`, ...
fn unique_stem(name: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base = String::from("xcbench_slo_");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            base.push(c.to_ascii_lowercase());
        } else if !base.ends_with('_') {
            base.push('_');
        }
    }
    while base.ends_with('_') {
        base.pop();
    }
    if base == "xcbench_slo" {
        base.push_str("_objective");
    }
    let mut stem = base.clone();
    let mut n = 2;
    while taken.contains(&stem) {
        stem = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(stem.clone());
    stem
}

/// A PromQL string's content: `\` and `"` escaped (names have no control characters).
fn promql_escape(v: &str) -> String {
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

/// A double-quoted YAML scalar: printable ASCII as is, everything else escaped.
fn yaml_string(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// Text that Prometheus' alert templates print as is: `{{` becomes an action printing it.
fn template_escape(v: &str) -> String {
    v.replace("{{", "{{ \"{{\" }}")
}

/// Text safe in a YAML comment: one line.
fn comment(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_yaml_ng::Value;

    use super::*;
    use crate::SloFile;

    const SAMPLE: &str = include_str!("../slo.sample.yaml");

    fn sample() -> Vec<Objective> {
        SloFile::parse("slo.sample.yaml", SAMPLE)
            .unwrap()
            .objectives
    }

    fn parse(yaml: &str) -> Vec<Value> {
        let v: Value = serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        v["groups"].as_sequence().expect("groups").clone()
    }

    fn text(v: &Value, key: &str) -> String {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {v:?}"))
            .to_owned()
    }

    fn group<'a>(groups: &'a [Value], objective: &str) -> &'a Value {
        groups
            .iter()
            .find(|g| text(g, "name") == format!("xcbench-slo/{objective}"))
            .unwrap_or_else(|| panic!("no group for {objective}"))
    }

    fn rule<'a>(g: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
        g["rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|r| r[kind].as_str() == Some(name))
    }

    fn records(g: &Value) -> Vec<String> {
        g["rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|r| r["record"].as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_sample_becomes_a_rule_file_with_unique_names() {
        let r = rules(&sample(), DEFAULT_PERIOD).unwrap();
        let groups = parse(&r.yaml);
        // 14 objectives, goodput and rtt-under-load left out; each a group and a period group.
        assert_eq!(groups.len(), 24);
        let left: Vec<&str> = r.left_out.iter().map(|l| l.objective.as_str()).collect();
        assert_eq!(left, ["rtt-under-load", "goodput"]);
        assert!(r.left_out[1]
            .to_string()
            .starts_with("goodput (goodput): judged per scheduled throughput test"));
        assert!(r
            .yaml
            .contains("  # No rules for goodput (goodput): judged per scheduled"));
        let mut group_names = BTreeSet::new();
        let mut alert_names = BTreeSet::new();
        for g in &groups {
            assert!(group_names.insert(text(g, "name")), "group {g:?} twice");
            let mut series = BTreeSet::new();
            for r in g["rules"].as_sequence().unwrap() {
                let expr = text(r, "expr");
                assert!(!expr.is_empty());
                let objective = text(&r["labels"], "objective");
                let name = text(g, "name");
                assert!(
                    name == format!("xcbench-slo/{objective}")
                        || name == format!("xcbench-slo/{objective}/period"),
                    "{name}"
                );
                match (r["record"].as_str(), r["alert"].as_str()) {
                    (Some(name), None) => assert!(series.insert(name.to_owned()), "{name} twice"),
                    (None, Some(name)) => {
                        assert!(alert_names.insert(name.to_owned()), "alert {name} twice");
                        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                        let sev = text(&r["labels"], "severity");
                        assert!(name.ends_with(&format!("_{sev}")), "{name} {sev}");
                        assert!(text(&r["annotations"], "summary").contains(&objective));
                    }
                    _ => panic!("neither a record nor an alert: {r:?}"),
                }
            }
        }
        let rtt = group(&groups, "stamp-rtt-p99");
        assert_eq!(
            records(rtt),
            [
                "xcbench_slo:error_budget",
                "xcbench_slo:threshold_seconds",
                "xcbench_slo:error_ratio:rate5m",
                "xcbench_slo:error_ratio:rate30m",
                "xcbench_slo:error_ratio:rate1h",
                "xcbench_slo:error_ratio:rate2h",
                "xcbench_slo:error_ratio:rate6h",
                "xcbench_slo:error_ratio:rate1d",
                "xcbench_slo:error_ratio:rate3d",
            ]
        );
        let summary = text(
            &rule(rtt, "alert", "xcbench_slo_stamp_rtt_p99_page").unwrap()["annotations"],
            "summary",
        );
        assert_eq!(
            summary,
            "SLO stamp-rtt-p99 (rtt p99 <= 3ms) burns its error budget fast"
        );
    }

    #[test]
    fn budgets_and_burn_factors_are_the_workbooks() {
        let r = rules(&sample(), DEFAULT_PERIOD).unwrap();
        let groups = parse(&r.yaml);
        let rtt = group(&groups, "stamp-rtt-p99");
        assert_eq!(
            text(
                rule(rtt, "record", "xcbench_slo:error_budget").unwrap(),
                "expr"
            ),
            "vector(0.01)"
        );
        assert_eq!(
            text(
                rule(rtt, "record", "xcbench_slo:threshold_seconds").unwrap(),
                "expr"
            ),
            "vector(0.003)"
        );
        let page = text(
            rule(rtt, "alert", "xcbench_slo_stamp_rtt_p99_page").unwrap(),
            "expr",
        );
        let sel = "{objective=\"stamp-rtt-p99\"}";
        let want = format!(
            "(\n    xcbench_slo:error_ratio:rate1h{sel} > (14.4 * 0.01)\n  and\n    xcbench_slo:error_ratio:rate5m{sel} > (14.4 * 0.01)\n)\nor\n(\n    xcbench_slo:error_ratio:rate6h{sel} > (6 * 0.01)\n  and\n    xcbench_slo:error_ratio:rate30m{sel} > (6 * 0.01)\n)\n"
        );
        assert_eq!(page, want);
        let ticket = text(
            rule(rtt, "alert", "xcbench_slo_stamp_rtt_p99_ticket").unwrap(),
            "expr",
        );
        assert!(
            ticket.contains(&format!("rate1d{sel} > (3 * 0.01)")),
            "{ticket}"
        );
        assert!(
            ticket.contains(&format!("rate2h{sel} > (3 * 0.01)")),
            "{ticket}"
        );
        assert!(
            ticket.contains(&format!("rate3d{sel} > (1 * 0.01)")),
            "{ticket}"
        );
        assert!(
            ticket.contains(&format!("rate6h{sel} > (1 * 0.01)")),
            "{ticket}"
        );
        let p50 = group(&groups, "stamp-rtt-p50");
        assert_eq!(
            text(
                rule(p50, "record", "xcbench_slo:error_budget").unwrap(),
                "expr"
            ),
            "vector(0.5)"
        );
        let loss = group(&groups, "loss");
        assert_eq!(
            text(
                rule(loss, "record", "xcbench_slo:error_budget").unwrap(),
                "expr"
            ),
            "vector(0.001)"
        );
        assert!(rule(loss, "record", "xcbench_slo:threshold_seconds").is_none());
        let dup = group(&groups, "duplicates");
        assert_eq!(
            text(
                rule(dup, "record", "xcbench_slo:error_budget").unwrap(),
                "expr"
            ),
            "vector(0.0001)"
        );
    }

    #[test]
    fn error_ratios_select_the_objectives_series() {
        let r = rules(&sample(), DEFAULT_PERIOD).unwrap();
        let groups = parse(&r.yaml);
        let expr = |objective: &str, window: &str| {
            text(
                rule(
                    group(&groups, objective),
                    "record",
                    &format!("xcbench_slo:error_ratio:rate{window}"),
                )
                .unwrap(),
                "expr",
            )
        };
        let sel =
            "src_cloud=\"azure\",dst_cloud=\"oci\",protocol=\"udp\",kind=\"stamp\",load=\"idle\"";
        // Latency: straddling samples are bad (samples - within; the straddling counter is
        // not subtracted).
        assert_eq!(
            expr("stamp-rtt-p99", "5m"),
            format!(
                "(\n  sum(increase(xcbench_slo_samples_total{{{sel},metric=\"rtt\"}}[5m]))\n  - sum(increase(xcbench_slo_within_total{{{sel},metric=\"rtt\",threshold=\"0.003\"}}[5m]))\n)\n/ (sum(increase(xcbench_slo_samples_total{{{sel},metric=\"rtt\"}}[5m])) > 0)\n"
            )
        );
        assert!(!r.yaml.contains("straddling_total{"));
        assert!(expr("tcp-connect-p99", "1h").contains(
            "xcbench_slo_within_total{src_cloud=\"azure\",dst_cloud=\"oci\",protocol=\"tcp\",kind=\"connect\",load=\"idle\",metric=\"rtt\",threshold=\"0.005\"}[1h]"
        ));
        let owd = expr("forward-one-way-p99", "1h");
        assert!(
            owd.contains("metric=\"one_way_forward\",threshold=\"0.002\""),
            "{owd}"
        );
        let ipdv = expr("reverse-ipdv-p99", "1h");
        assert!(
            ipdv.contains("metric=\"ipdv_reverse\",threshold=\"0.0005\""),
            "{ipdv}"
        );
        assert_eq!(
            expr("forward-loss", "6h"),
            format!(
                "sum(increase(xcbench_probes_lost_direction_total{{{sel},direction=\"forward\"}}[6h]))\n/ (\n  (\n      sum(increase(xcbench_probes_received_total{{{sel}}}[6h]))\n    + sum(increase(xcbench_probes_lost_total{{{sel}}}[6h]))\n  ) > 0\n)\n"
            )
        );
        assert!(expr("reverse-loss", "6h").contains("direction=\"reverse\""));
        assert!(expr("loss", "6h").starts_with(&format!(
            "sum(increase(xcbench_probes_lost_total{{{sel}}}[6h]))\n"
        )));
        assert_eq!(
            expr("reorders", "3d"),
            format!(
                "sum(increase(xcbench_probes_reordered_total{{{sel}}}[3d]))\n/ (sum(increase(xcbench_probes_received_total{{{sel}}}[3d])) > 0)\n"
            )
        );
        // load: any selects every load (no matcher).
        let mut any = sample();
        any.retain(|o| o.name == "loss");
        any[0].select.load = crate::objective::LoadChoice::Any;
        let r = rules(&any, DEFAULT_PERIOD).unwrap();
        assert!(!r.yaml.contains("load="), "{}", r.yaml);
        assert!(r.yaml.contains("kind=\"stamp\"}[5m]"));
    }

    #[test]
    fn conditions_beyond_every_event_say_so() {
        let mut objectives = sample();
        objectives.retain(|o| o.name == "stamp-rtt-p50" || o.name == "duplicates");
        objectives[1].comparison = Comparison::Ratio { at_most: 0.1 };
        objectives[1].key = true;
        let yaml = rules(&objectives, DEFAULT_PERIOD).unwrap().yaml;
        // p50: half the samples may be slow; 14.4x, 6x and 3x that are over 100%.
        for f in ["14.4", "6", "3"] {
            assert!(yaml.contains(&format!("      # {f}x a 50% budget is an error ratio of 100% or more: this condition never holds: at most every event is bad.\n")), "{f}: {yaml}");
        }
        assert!(!yaml.contains("      # 1x a 50% budget"));
        // Duplicates can outnumber replies: 14.4x 10% is reachable, if hardly.
        assert!(yaml.contains("      # 14.4x a 10% budget is an error ratio of 100% or more: this condition holds only with more bad events than events counted against them.\n"));
        assert!(!yaml.contains("      # 6x a 10% budget"));
    }

    #[test]
    fn only_key_objectives_page() {
        let objectives = sample();
        let r = rules(&objectives, DEFAULT_PERIOD).unwrap();
        let groups = parse(&r.yaml);
        let mut pages = 0;
        for o in objectives.iter().filter(|o| Sli::of(o).is_ok()) {
            let g = group(&groups, &o.name);
            let severities: Vec<String> = g["rules"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter(|r| r["alert"].is_string())
                .map(|r| text(&r["labels"], "severity"))
                .collect();
            if o.key {
                assert_eq!(severities, ["page", "ticket"], "{}", o.name);
                pages += 1;
            } else {
                assert_eq!(severities, ["ticket"], "{}", o.name);
            }
        }
        assert_eq!(pages, 7);
        assert!(rule(
            group(&groups, "reorders"),
            "alert",
            "xcbench_slo_reorders_page"
        )
        .is_none());
        assert!(rule(
            group(&groups, "reorders"),
            "alert",
            "xcbench_slo_reorders_ticket"
        )
        .is_some());
    }

    #[test]
    fn windows_scale_with_the_period() {
        let mut objectives = sample();
        objectives.retain(|o| o.name == "stamp-rtt-p99");
        let at = |days: u64| {
            let r = rules(&objectives, Duration::from_secs(days * DAY)).unwrap();
            let groups = parse(&r.yaml);
            let g = groups[0].clone();
            let ratios = records(&g)[2..].to_vec();
            let p = &groups[1];
            assert_eq!(text(p, "name"), "xcbench-slo/stamp-rtt-p99/period");
            assert_eq!(text(p, "interval"), "5m");
            let period = rule(p, "record", PERIOD_RATIO).unwrap();
            assert!(text(period, "expr").contains(&format!("[{days}d]")));
            (r.yaml, ratios)
        };
        let (_, thirty) = at(30);
        let names = |w: &[&str]| -> Vec<String> {
            w.iter()
                .map(|w| format!("xcbench_slo:error_ratio:rate{w}"))
                .collect()
        };
        assert_eq!(thirty, names(&["5m", "30m", "1h", "2h", "6h", "1d", "3d"]));
        let (yaml, sixty) = at(60);
        assert_eq!(sixty, names(&["10m", "1h", "2h", "4h", "12h", "2d", "6d"]));
        assert!(yaml.contains("[6d]))") && !yaml.contains("[3d]"));
        assert!(yaml.contains(
            "xcbench_slo:error_ratio:rate2h{objective=\"stamp-rtt-p99\"} > (14.4 * 0.01)"
        ));
        let (yaml, seven) = at(7);
        // 7/30 of each window, in whole seconds.
        assert_eq!(
            seven,
            names(&["70s", "7m", "14m", "28m", "84m", "336m", "1008m"])
        );
        assert!(yaml.contains("[70s]))"));
        assert!(yaml.contains("# Error budgets are spent over 7d; windows 70s, 7m, 14m, 28m, 84m, 336m, 1008m (the workbook's for 30d, scaled to 7d).\n"));
        // 28 days: 4m40s, rounded windows stay whole seconds.
        let (_, twenty_eight) = at(28);
        assert_eq!(twenty_eight[0], "xcbench_slo:error_ratio:rate280s");
        // The factors do not scale.
        assert_eq!(
            at(60).0.matches("> (14.4 * 0.01)").count(),
            at(30).0.matches("> (14.4 * 0.01)").count()
        );
    }

    #[test]
    fn a_period_outside_the_windows_is_refused_naming_the_flag() {
        let objectives = sample();
        for (period, value) in [
            (Duration::from_secs(5 * DAY), "5d"),
            (Duration::from_secs(6 * DAY - 1), "518399s"),
            (Duration::from_secs(366 * DAY), "366d"),
            (Duration::from_millis(1_500), "1500ms"),
        ] {
            let e = rules(&objectives, period).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("--period = \"{value}\": must be from 6d to 365d: the shortest alert window (5m of a 30d period) scales with it and must be at least 1m")
            );
        }
        let r = rules(&objectives, MIN_PERIOD).unwrap();
        assert!(r.yaml.contains("xcbench_slo:error_ratio:rate1m\n"));
        assert!(rules(&objectives, MAX_PERIOD).is_ok());
    }

    #[test]
    fn odd_names_and_label_values_survive_yaml_promql_and_templates() {
        let mut objectives = sample();
        objectives.retain(|o| o.name == "stamp-rtt-p99" || o.name == "loss");
        let odd = "we\"ird\\ {{ .Name }}: #x ü 延迟";
        objectives[0].name = odd.to_owned();
        objectives[0].select.src_region = Some("east \"1\" \\".to_owned());
        objectives[0].description = Some("two\nlines".to_owned());
        // Two names that sanitize alike still get unique alert names.
        objectives[1].name = "We\"ird - {{ .Name }}: #x".to_owned();
        let r = rules(&objectives, DEFAULT_PERIOD).unwrap();
        let groups = parse(&r.yaml);
        let g = &groups[0];
        assert_eq!(text(g, "name"), format!("xcbench-slo/{odd}"));
        let budget = rule(g, "record", "xcbench_slo:error_budget").unwrap();
        assert_eq!(text(&budget["labels"], "objective"), odd);
        let ratio = text(
            rule(g, "record", "xcbench_slo:error_ratio:rate5m").unwrap(),
            "expr",
        );
        assert!(
            ratio.contains("src_region=\"east \\\"1\\\" \\\\\""),
            "{ratio}"
        );
        let page = rule(g, "alert", "xcbench_slo_we_ird_name_x_page").unwrap();
        assert!(text(page, "expr").contains(
            "xcbench_slo:error_ratio:rate1h{objective=\"we\\\"ird\\\\ {{ .Name }}: #x ü 延迟\"}"
        ));
        assert_eq!(
            text(&page["annotations"], "summary"),
            "SLO we\"ird\\ {{ \"{{\" }} .Name }}: #x ü 延迟 (rtt p99 <= 3ms) burns its error budget fast"
        );
        assert!(rule(&groups[2], "alert", "xcbench_slo_we_ird_name_x_2_page").is_some());
        // The description's line break stays in its comment line.
        assert!(r.yaml.contains("  # two lines\n"));
    }

    #[test]
    fn helpers_spell_durations_numbers_and_names() {
        assert_eq!(seconds_text(259_200), "3d");
        assert_eq!(seconds_text(5_040), "84m");
        assert_eq!(seconds_text(70), "70s");
        assert_eq!(seconds_text(3_600), "1h");
        assert_eq!(number(14.4), "14.4");
        assert_eq!(number(6.0), "6");
        assert_eq!(number(0.1 / 100.0), "0.001");
        assert_eq!(number(0.01 / 100.0), "0.0001");
        assert_eq!(number(0.0), "0");
        let mut taken = BTreeSet::new();
        assert_eq!(unique_stem("a-b", &mut taken), "xcbench_slo_a_b");
        assert_eq!(unique_stem("A_b", &mut taken), "xcbench_slo_a_b_2");
        assert_eq!(unique_stem("a_b_2", &mut taken), "xcbench_slo_a_b_2_2");
        assert_eq!(unique_stem("延迟", &mut taken), "xcbench_slo_objective");
        assert_eq!(unique_stem("--", &mut taken), "xcbench_slo_objective_2");
        assert_eq!(yaml_string("a\"b\\c ü"), "\"a\\\"b\\\\c \\u00fc\"");
        assert_eq!(template_escape("x{{y}}"), "x{{ \"{{\" }}y}}");
    }
}

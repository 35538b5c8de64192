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
//!
//! # Layout
//! - `windows`: the workbook's burn conditions and windows, scaled to a period.
//! - `sli`: each indicator as counters and its error ratio as PromQL.
//! - `yaml`: the rule file's text: header, one group per objective, quoting and names.

mod sli;
mod windows;
mod yaml;

use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use crate::objective::{Indicator, Objective};
use sli::Sli;
use windows::{Windows, DAY};
use yaml::{comment, group, header, unique_stem};

/// The period an error budget is spent over when `--period` is not given.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * DAY);
/// The shortest period: its shortest window (5m of 30d) scales to 1m.
pub const MIN_PERIOD: Duration = Duration::from_secs(6 * DAY);
/// The longest period: a year (its longest window is then 36.5d).
pub const MAX_PERIOD: Duration = Duration::from_secs(365 * DAY);

/// The recording rule of the error ratio over the whole period (labelled with it).
pub const PERIOD_RATIO: &str = "xcbench_slo:error_ratio:period";

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

#[cfg(test)]
mod tests;

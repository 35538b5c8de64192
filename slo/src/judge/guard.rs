//! The data-quality guards that make a verdict inconclusive and say why: no series, too few
//! samples, agents silent, restarted or dropping snapshots, a window the data does not
//! cover, clocks too coarse for a one-way threshold, a probe rate below the configured one.

use std::time::Duration;

use crate::evidence::Evidence;
use crate::objective::{Comparison, Indicator, Objective};
use crate::text::{duration, percent, span, trim};

use super::{count, covered_seconds, Reading, ReasonCode};

/// The guards on the agents behind the evidence: one silent at the window's end, snapshots
/// dropped or a restart inside the window.
fn agent_guards(
    e: &Evidence,
    j: &crate::objective::Judging,
    now: u64,
) -> Vec<(ReasonCode, String)> {
    let mut out = Vec::new();
    let end = e.to_unix_ns.min(now);
    let age = j.max_report_age.as_nanos() as u64;
    for a in &e.agents {
        if a.last_report_unix_ns.saturating_add(age) < end {
            out.push((ReasonCode::AgentSilent, format!(
                "agent {} stopped reporting: last report {} before the window's end ({}), more than max_report_age = {}",
                a.agent,
                span(Duration::from_nanos(end - a.last_report_unix_ns)),
                crate::text::format_time(end),
                span(j.max_report_age)
            )));
        }
        for g in &a.gaps {
            if g.to_unix_ns <= e.from_unix_ns || g.from_unix_ns >= e.to_unix_ns {
                continue;
            }
            let when = format!(
                "{} to {}",
                crate::text::format_time(g.from_unix_ns),
                crate::text::format_time(g.to_unix_ns)
            );
            if g.restarts > 0 {
                out.push((
                    ReasonCode::AgentRestarted,
                    format!(
                        "agent {} restarted {} times between {when}: it measured nothing while down",
                        a.agent, g.restarts
                    ),
                ));
            }
            if g.dropped_snapshots > 0 {
                out.push((
                    ReasonCode::DroppedSnapshots,
                    format!(
                        "agent {} dropped {} snapshots ({when}): their samples are missing",
                        a.agent, g.dropped_snapshots
                    ),
                ));
            }
            if g.elsewhere_snapshots > 0 {
                out.push((
                    ReasonCode::ReportedElsewhere,
                    format!(
                        "agent {} reported {} snapshots to another collector ({when}): their samples are not in this source; give the gate every collector of the mesh (--collector once each) or the store they all write to",
                        a.agent, g.elsewhere_snapshots
                    ),
                ));
            } else if g.dropped_snapshots == 0
                && g.restarts == 0
                && g.to_unix_ns - g.from_unix_ns > age
            {
                out.push((
                    ReasonCode::AgentRestarted,
                    format!(
                        "agent {} did not run from {when} ({}): it restarted",
                        a.agent,
                        span(Duration::from_nanos(g.to_unix_ns - g.from_unix_ns))
                    ),
                ));
            }
        }
    }
    out
}

/// Data-quality guards: each returns the reason the data is not good enough to judge.
pub(super) fn guard(
    o: &Objective,
    e: &Evidence,
    r: &Reading,
    now: u64,
) -> Vec<(ReasonCode, String)> {
    let mut out = Vec::new();
    let j = &o.judging;
    if e.series == 0 && !matches!(o.indicator, Indicator::Goodput(_)) {
        out.push((
            ReasonCode::NoSeries,
            format!("the selection ({}) matched no series", o.select),
        ));
        // An agent the source saw just before the window says why.
        out.extend(agent_guards(e, j, now));
        return out;
    }
    let probe_based = !matches!(o.indicator, Indicator::Goodput(_));
    // Goodput over the tests that ran: a schedule that stalled ran fewer than it declares.
    if let (false, Some(expected)) = (probe_based, e.expected_tests) {
        let ran = e.tests.len() as u64;
        if ran < expected {
            out.push((
                ReasonCode::LowRate,
                format!(
                    "{ran} scheduled tests ran in the window where the agents' schedules call for at least {expected}: the others never started"
                ),
            ));
        }
    }
    if probe_based && r.samples > 0 && r.samples < j.min_probes {
        out.push((
            ReasonCode::FewSamples,
            format!(
                "{} samples, fewer than min_probes = {}",
                count(r.samples),
                count(j.min_probes)
            ),
        ));
    }
    if o.indicator == Indicator::RttIncreaseUnderLoad {
        if let Some(b) = &e.baseline {
            if b.count() > 0 && b.count() < j.min_probes {
                out.push((
                    ReasonCode::FewSamples,
                    format!(
                        "{} idle samples, fewer than min_probes = {}",
                        count(b.count()),
                        count(j.min_probes)
                    ),
                ));
            }
        }
    }
    if let Comparison::NoWorse { quantile, .. } = o.comparison {
        let n = match quantile {
            Some(_) => e.baseline.as_ref().map_or(0, |d| d.count()),
            None => e.baseline_counters.map_or(0, |c| c.received + c.lost),
        };
        if n > 0 && n < j.min_probes {
            out.push((
                ReasonCode::FewSamples,
                format!(
                    "{} samples in the baseline, fewer than min_probes = {}",
                    count(n),
                    count(j.min_probes)
                ),
            ));
        }
    }
    out.extend(agent_guards(e, j, now));
    if !e.quiet_series.is_empty() {
        let shown: Vec<&str> = e.quiet_series.iter().take(3).map(String::as_str).collect();
        let more = e.quiet_series.len().saturating_sub(shown.len());
        out.push((
            ReasonCode::MissingSeries,
            format!(
                "{} selected series held data in the day before the window and none in it ({}{}): a verdict would rest on the others",
                e.quiet_series.len(),
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        ));
    }
    let window = e.to_unix_ns.saturating_sub(e.from_unix_ns) as f64 / 1e9;
    let covered = covered_seconds(e);
    if probe_based && window > 0.0 && covered / window < j.min_coverage {
        out.push((
            ReasonCode::Coverage,
            format!(
                "the data covers {} of the {} window ({}), less than min_coverage = {}",
                span(Duration::from_secs_f64(covered)),
                span(Duration::from_secs_f64(window)),
                percent(covered / window),
                percent(j.min_coverage)
            ),
        ));
    }
    if o.indicator.is_one_way() {
        if let Comparison::Latency { at_most_ns, .. } = o.comparison {
            let allowed = (at_most_ns as f64 * j.max_clock_error) as u64;
            match e.clock_error_max_ns {
                None => out.push((ReasonCode::ClockError,
                    "no clock error estimate was reported: one-way delay cannot be bounded"
                        .to_owned(),
                )),
                Some(err) if err > allowed => out.push((ReasonCode::ClockError, format!(
                    "the clocks' combined error estimate {} is more than max_clock_error = {} of the {} threshold ({})",
                    duration(err),
                    percent(j.max_clock_error),
                    duration(at_most_ns),
                    duration(allowed)
                ))),
                Some(_) => {}
            }
        }
    }
    // Replies whose one-way delays (and so IPDV) were dropped for a clock step: the rest are
    // the replies that came through, and slow ones are out longer, so more often caught.
    if (o.indicator.is_one_way() || matches!(o.indicator, Indicator::Ipdv(_)))
        && e.counters.clock_steps as f64 > j.max_skipped * e.counters.received as f64
    {
        out.push((
            ReasonCode::ClockError,
            format!(
                "{} of {} replies ({}) came across a clock step and lost their one-way delays, more than max_skipped = {}: the rest are not all the replies",
                count(e.counters.clock_steps),
                count(e.counters.received),
                percent(e.counters.clock_steps as f64 / e.counters.received.max(1) as f64),
                percent(j.max_skipped)
            ),
        ));
    }
    // Probes the agents' schedules called for but skipped: the rate fell below the
    // configured one (an agent stalled). max_skipped (1% by default) leaves room for a
    // scheduler hiccup.
    let scheduled = e.counters.sent + e.counters.skipped;
    if probe_based
        && e.counters.skipped > 0
        && e.counters.skipped as f64 > j.max_skipped * scheduled as f64
    {
        out.push((
            ReasonCode::LowRate,
            format!(
                "the agents skipped {} of {} scheduled probes ({}, more than max_skipped = {}): the probe rate fell below the configured one",
                count(e.counters.skipped),
                count(scheduled),
                percent(e.counters.skipped as f64 / scheduled as f64),
                percent(j.max_skipped)
            ),
        ));
    }
    if let (Some(min), true) = (j.min_rate, covered > 0.0 && e.series > 0) {
        let per_series = e.counters.sent as f64 / covered / e.series as f64;
        if per_series < min {
            out.push((
                ReasonCode::LowRate,
                format!(
                    "{}/s probes per series, below min_rate = {}/s",
                    trim(per_series),
                    trim(min)
                ),
            ));
        }
    }
    out
}

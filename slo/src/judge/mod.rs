//! The verdicts: one objective judged from its [`Evidence`] ([`judge`]), and the gate's
//! overall answer ([`GateResult`]). Sans-IO: the time is an argument.
//!
//! A quantile objective `pQ <= T` counts the samples at or below T and bounds that fraction
//! exactly (Clopper-Pearson, one-sided at the objective's confidence): pass only when the
//! lower bound reaches Q, fail only when the upper bound stays under Q, otherwise
//! inconclusive with the number of probes that would decide it at the observed fraction.
//! Samples whose HdrHistogram bucket straddles T are left out of the count a pass needs
//! and added to the count a fail must stay under, so the histogram's resolution never
//! tips a verdict. Ratios (loss,
//! duplicates, ...) are bounded the same way. Data-quality guards (too few samples, silent
//! agents, dropped snapshots, a window the data does not cover, clocks too coarse for a
//! one-way threshold, a low probe rate) make the verdict inconclusive and say why.
//!
//! This file holds the verdict and result types and [`judge()`] itself; `reading/` holds each
//! kind of objective's statistic and bound, `guard` the data-quality guards, `family` how
//! key objectives' fails combine into the gate's (Holm), `tests` the verdicts held to the
//! bounds and guards.

use std::time::Duration;

use serde::Serialize;

use crate::evidence::Evidence;
use crate::objective::{Comparison, Indicator, Objective, Select};
use crate::text::span;

mod family;
mod guard;
mod reading;

pub use family::{holm, Family};

use guard::guard;
use reading::{read_goodput, read_increase, read_latency, read_ratio};

/// Three-valued, never "pass" on missing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Inconclusive,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The process exit code a gate with this verdict ends with.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Inconclusive => 3,
        }
    }
}

/// Why a verdict is what it is, as a bounded code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// A bound decided it (pass or fail).
    Bound,
    /// The bounds include the objective: more samples needed.
    Undecided,
    /// The source cannot judge this indicator.
    Unsupported,
    NoSamples,
    NoSeries,
    FewSamples,
    AgentSilent,
    DroppedSnapshots,
    AgentRestarted,
    Coverage,
    ClockError,
    LowRate,
    /// Selected series that held data before the window and none in it.
    MissingSeries,
    /// An agent reported part of the window to another collector of a sharded mesh, which
    /// the source did not include.
    ReportedElsewhere,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 14] = [
        ReasonCode::Bound,
        ReasonCode::Undecided,
        ReasonCode::Unsupported,
        ReasonCode::NoSamples,
        ReasonCode::NoSeries,
        ReasonCode::FewSamples,
        ReasonCode::AgentSilent,
        ReasonCode::DroppedSnapshots,
        ReasonCode::AgentRestarted,
        ReasonCode::Coverage,
        ReasonCode::ClockError,
        ReasonCode::LowRate,
        ReasonCode::MissingSeries,
        ReasonCode::ReportedElsewhere,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Bound => "bound",
            ReasonCode::Undecided => "undecided",
            ReasonCode::Unsupported => "unsupported",
            ReasonCode::NoSamples => "no_samples",
            ReasonCode::NoSeries => "no_series",
            ReasonCode::FewSamples => "few_samples",
            ReasonCode::AgentSilent => "agent_silent",
            ReasonCode::DroppedSnapshots => "dropped_snapshots",
            ReasonCode::AgentRestarted => "agent_restarted",
            ReasonCode::Coverage => "coverage",
            ReasonCode::ClockError => "clock_error",
            ReasonCode::LowRate => "low_rate",
            ReasonCode::MissingSeries => "missing_series",
            ReasonCode::ReportedElsewhere => "reported_elsewhere",
        }
    }
}

/// Bounds on the statistic an objective is judged by: a fraction (latency: of samples
/// within the threshold; goodput: of tests at the rate), a ratio, or an increase in
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bound {
    /// `None`: the samples give no lower bound (an increase under load whose idle quantile
    /// has no upper bound).
    pub lower: Option<f64>,
    /// `None`: the samples give no upper bound.
    pub upper: Option<f64>,
    pub confidence: f64,
}

/// What more data would decide an inconclusive objective, at the observed fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NeedMore {
    /// The total number of samples that would decide it (those already taken included), at
    /// the least: the count at which the observed fraction, if it held, would just decide
    /// (about an even chance that it does), and never under `min_probes`.
    pub probes: u64,
    /// Seconds until then: the samples still missing at the rate samples arrived (for a
    /// window that grows: `--from` a fixed time).
    pub seconds: Option<f64>,
    /// The window that holds that many at the rate samples arrived (for a sliding window:
    /// `window: 1h` keeps its length, so waiting adds nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
}

/// The window an objective was judged over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JudgedWindow {
    pub from_unix_ns: u64,
    pub to_unix_ns: u64,
    pub covered_from_unix_ns: Option<u64>,
    pub covered_to_unix_ns: Option<u64>,
}

/// One objective's verdict and everything that led to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectiveResult {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub key: bool,
    pub indicator: Indicator,
    pub select: Select,
    pub comparison: Comparison,
    /// The comparison as people write it: `p99 <= 2ms`, `<= 0.1%`.
    pub objective: String,
    pub window: JudgedWindow,
    /// The observed value in base units (seconds, a ratio, bits/s) and as text.
    pub value: Option<f64>,
    pub value_text: String,
    /// Samples (probes, replies or tests) the statistic counts.
    pub samples: u64,
    /// What the bound is on, e.g. "fraction of samples <= 2ms".
    pub statistic: String,
    /// The statistic observed.
    pub observed: Option<f64>,
    pub bound: Option<Bound>,
    pub verdict: Verdict,
    /// Why: the statistic's reading first, then any data-quality guard.
    pub reasons: Vec<String>,
    /// The reasons as bounded codes (for metrics and alert routing): the statistic's
    /// (`bound`, `undecided`, `no_samples`) first, then each guard that fired once.
    pub codes: Vec<ReasonCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_more: Option<NeedMore>,
    /// How much more the per-slot counts vary than independent probes would (the
    /// quasi-binomial dispersion, at least 1), when the window held enough slots to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispersion: Option<f64>,
    /// The samples' worth as independent trials: `samples / dispersion`; the bounds are
    /// taken over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_samples: Option<u64>,
    /// The objective's confidence.
    pub confidence: f64,
    /// Under `family: holm`, the confidence its fail was judged at in Holm's step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_tested: Option<f64>,
    /// What the gate read, for reports (not in the JSON).
    #[serde(skip)]
    pub evidence: Evidence,
}

/// Every objective's result and the gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// `xcbench.gate/v1`: fields are only ever added within a version.
    pub schema: &'static str,
    pub verdict: Verdict,
    pub exit_code: u8,
    pub evaluated_at: String,
    pub evaluated_at_unix_ns: u64,
    /// Where the data came from, e.g. `collector http://127.0.0.1:9862`.
    pub source: String,
    pub summary: Summary,
    pub objectives: Vec<ObjectiveResult>,
}

/// Counts by verdict, key objectives and warnings apart.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub key_pass: usize,
    pub key_fail: usize,
    pub key_inconclusive: usize,
    /// How sure the gate's fail is as a whole: at least `1 - sum(1 - c_i)` over the key
    /// objectives (Bonferroni), or each one's confidence under `family: holm`.
    pub fail_confidence: f64,
    /// `per_objective` or `holm`.
    pub family: Family,
    /// Non-key objectives that did not pass: listed, never deciding.
    pub warnings: Vec<String>,
}

pub const SCHEMA: &str = "xcbench.gate/v1";

impl GateResult {
    /// Fail if a key objective failed; else inconclusive if one was inconclusive (a gate
    /// with no key objective is inconclusive: nothing decided it); else pass.
    pub fn new(
        source: String,
        now_unix_ns: u64,
        objectives: Vec<ObjectiveResult>,
        family: Family,
    ) -> GateResult {
        let mut summary = Summary {
            family,
            fail_confidence: family::fail_confidence(
                family,
                objectives.iter().filter(|o| o.key).map(|o| o.confidence),
            ),
            ..Summary::default()
        };
        for o in &objectives {
            match (o.key, o.verdict) {
                (true, Verdict::Pass) => summary.key_pass += 1,
                (true, Verdict::Fail) => summary.key_fail += 1,
                (true, Verdict::Inconclusive) => summary.key_inconclusive += 1,
                (false, Verdict::Pass) => {}
                (false, v) => summary.warnings.push(format!("{}: {}", o.name, v.as_str())),
            }
        }
        let verdict = if summary.key_fail > 0 {
            Verdict::Fail
        } else if summary.key_inconclusive > 0 || summary.key_pass == 0 {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        };
        GateResult {
            schema: SCHEMA,
            verdict,
            exit_code: verdict.exit_code(),
            evaluated_at: crate::text::format_time(now_unix_ns),
            evaluated_at_unix_ns: now_unix_ns,
            source,
            summary,
            objectives,
        }
    }
}

/// What the statistic alone says, before the data-quality guards.
struct Reading {
    verdict: Verdict,
    statistic: String,
    observed: Option<f64>,
    bound: Option<Bound>,
    value: Option<f64>,
    value_text: String,
    samples: u64,
    reason: String,
    need_more: Option<NeedMore>,
    /// A fail that is an observed fact (a sample above a `max`, a test below a `min`), not
    /// an inference: no data-quality guard can undo it.
    certain: bool,
    /// Over-dispersion of the per-slot counts, when estimated (see `stats::dispersion`).
    dispersion: Option<f64>,
}

impl Reading {
    /// A reading that has decided nothing yet: inconclusive, no value, no bound.
    fn open() -> Reading {
        Reading {
            verdict: Verdict::Inconclusive,
            statistic: String::new(),
            observed: None,
            bound: None,
            value: None,
            value_text: "-".to_owned(),
            samples: 0,
            reason: String::new(),
            need_more: None,
            certain: false,
            dispersion: None,
        }
    }
}

/// Judges one objective from what the source found, at `now` (Unix ns).
pub fn judge(objective: &Objective, evidence: Evidence, now: u64) -> ObjectiveResult {
    let covered_secs = covered_seconds(&evidence);
    let reading = match objective.comparison {
        Comparison::Latency {
            quantile,
            at_most_ns,
        } if objective.indicator == Indicator::RttIncreaseUnderLoad => {
            read_increase(objective, &evidence, quantile, at_most_ns)
        }
        Comparison::Latency {
            quantile,
            at_most_ns,
        } => read_latency(objective, &evidence, quantile, at_most_ns, covered_secs),
        Comparison::Ratio { at_most } => read_ratio(objective, &evidence, at_most, covered_secs),
        Comparison::NoWorse { quantile, margin } => {
            reading::read_no_worse(objective, &evidence, quantile, margin)
        }
        Comparison::Goodput {
            quantile,
            at_least_bits_per_second,
        } => read_goodput(objective, &evidence, quantile, at_least_bits_per_second),
    };
    let mut guards = guard(objective, &evidence, &reading, now);
    if let Some(why) = &evidence.unsupported {
        guards.insert(0, (ReasonCode::Unsupported, why.clone()));
    }
    let mut reasons = vec![reading.reason];
    let mut codes = vec![match reading.verdict {
        Verdict::Inconclusive if reading.samples == 0 => ReasonCode::NoSamples,
        Verdict::Inconclusive => ReasonCode::Undecided,
        _ => ReasonCode::Bound,
    }];
    // Missing data cannot undo what was seen; a clock too far off for one-way delay, or a
    // source that cannot judge the indicator, can.
    let stands = reading.certain
        && reading.verdict == Verdict::Fail
        && !guards
            .iter()
            .any(|(code, _)| matches!(code, ReasonCode::ClockError | ReasonCode::Unsupported));
    let verdict = if guards.is_empty() {
        reading.verdict
    } else if stands {
        reasons[0] = format!(
            "{}; a fail whatever the data-quality notes below say",
            reasons[0]
        );
        Verdict::Fail
    } else {
        if reading.verdict != Verdict::Inconclusive {
            reasons[0] = format!(
                "the samples alone would {}: {}",
                reading.verdict.as_str(),
                reasons[0]
            );
        }
        Verdict::Inconclusive
    };
    for (code, text) in guards {
        if !codes.contains(&code) {
            codes.push(code);
        }
        reasons.push(text);
    }
    reasons.extend(evidence.source_notes.iter().cloned());
    ObjectiveResult {
        name: objective.name.clone(),
        description: objective.description.clone(),
        key: objective.key,
        indicator: objective.indicator,
        select: objective.select.clone(),
        comparison: objective.comparison,
        objective: objective.comparison.to_string(),
        window: JudgedWindow {
            from_unix_ns: evidence.from_unix_ns,
            to_unix_ns: evidence.to_unix_ns,
            covered_from_unix_ns: evidence.covered.map(|c| c.0),
            covered_to_unix_ns: evidence.covered.map(|c| c.1),
        },
        value: reading.value,
        value_text: reading.value_text,
        samples: reading.samples,
        statistic: reading.statistic,
        observed: reading.observed,
        bound: reading.bound,
        verdict,
        reasons,
        codes,
        dispersion: reading.dispersion,
        confidence: objective.judging.confidence,
        confidence_tested: None,
        effective_samples: reading
            .dispersion
            .map(|phi| (reading.samples as f64 / phi).round() as u64),
        need_more: if verdict == Verdict::Inconclusive {
            reading.need_more
        } else {
            None
        },
        evidence,
    }
}

/// Seconds of the window the data covers: the slots that hold data, clipped to the window
/// (a stalled agent's hole in the middle is not covered), or the covered span when the
/// source gives no slots.
fn covered_seconds(e: &Evidence) -> f64 {
    let clip = |from: u64, to: u64| (from.max(e.from_unix_ns), to.min(e.to_unix_ns));
    if e.slots.is_empty() {
        return match e.covered {
            Some((from, to)) => {
                let (from, to) = clip(from, to);
                to.saturating_sub(from) as f64 / 1e9
            }
            None => 0.0,
        };
    }
    let mut spans: Vec<(u64, u64)> = e
        .slots
        .iter()
        .filter(|s| s.sent > 0 || s.samples > 0)
        .map(|s| clip(s.start_unix_ns, s.start_unix_ns.saturating_add(s.slot_ns)))
        .filter(|(a, b)| b > a)
        .collect();
    spans.sort_unstable();
    let (mut total, mut end) = (0u64, 0u64);
    for (a, b) in spans {
        let a = a.max(end);
        if b > a {
            total += b - a;
            end = b;
        }
    }
    total as f64 / 1e9
}

fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "need at least N probes (M more): a window of about T at the current rate".
fn need_more_text(need: &NeedMore, have: u64, what: &str) -> String {
    let more = need.probes.saturating_sub(have);
    match need.window_seconds {
        Some(s) if s.is_finite() => format!(
            "need at least {} {what} ({} more): a window of about {} at the current rate",
            count(need.probes),
            count(more),
            span(Duration::from_secs_f64(s.max(1.0)))
        ),
        _ => format!(
            "need at least {} {what} ({} more)",
            count(need.probes),
            count(more)
        ),
    }
}

/// What deciding takes: `probes` in all (from the bounds), but never fewer than
/// `min_probes`, and the wait or the window that holds them at the rate seen.
fn need(probes: Option<u64>, have: u64, covered_secs: f64, min_probes: u64) -> Option<NeedMore> {
    let probes = probes?.max(min_probes);
    let rate = have as f64 / covered_secs;
    let known = covered_secs > 0.0 && rate > 0.0;
    Some(NeedMore {
        probes,
        seconds: known.then(|| probes.saturating_sub(have) as f64 / rate),
        window_seconds: known.then(|| probes as f64 / rate),
    })
}

#[cfg(test)]
mod tests;

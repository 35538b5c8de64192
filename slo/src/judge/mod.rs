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
//! This file holds the verdict and result types and [`judge()`] itself; `reading` holds each
//! kind of objective's statistic and bound, `guard` the data-quality guards.

use std::time::Duration;

use serde::Serialize;

use crate::evidence::Evidence;
use crate::objective::{Comparison, Indicator, Objective, Select};
use crate::text::span;

mod guard;
mod reading;

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
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 12] = [
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
    /// The total number of samples that would decide it (those already taken included).
    pub probes: u64,
    /// Seconds until then: the samples still missing at the rate samples arrived.
    pub seconds: Option<f64>,
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub key_pass: usize,
    pub key_fail: usize,
    pub key_inconclusive: usize,
    /// Non-key objectives that did not pass: listed, never deciding.
    pub warnings: Vec<String>,
}

pub const SCHEMA: &str = "xcbench.gate/v1";

impl GateResult {
    /// Fail if a key objective failed; else inconclusive if one was inconclusive (a gate
    /// with no key objective is inconclusive: nothing decided it); else pass.
    pub fn new(source: String, now_unix_ns: u64, objectives: Vec<ObjectiveResult>) -> GateResult {
        let mut summary = Summary::default();
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
        } => read_latency(
            objective,
            &evidence.distribution,
            evidence.exact_within,
            quantile,
            at_most_ns,
            covered_secs,
        ),
        Comparison::Ratio { at_most } => read_ratio(objective, &evidence, at_most, covered_secs),
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
    let verdict = if guards.is_empty() {
        reading.verdict
    } else {
        if reading.verdict != Verdict::Inconclusive {
            reasons[0] = format!(
                "the samples alone would {}: {}",
                reading.verdict.as_str(),
                reasons[0]
            );
        }
        for (code, text) in guards {
            if !codes.contains(&code) {
                codes.push(code);
            }
            reasons.push(text);
        }
        Verdict::Inconclusive
    };
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

/// "need about N more probes (about T at the current R/s)".
fn need_more_text(need: &NeedMore, have: u64, what: &str) -> String {
    let more = need.probes.saturating_sub(have);
    match need.seconds {
        Some(s) if s.is_finite() => format!(
            "need about {} more {what} (about {} at the current rate)",
            count(more),
            span(Duration::from_secs_f64(s.max(1.0)))
        ),
        _ => format!("need about {} more {what}", count(more)),
    }
}

fn need(probes: Option<u64>, have: u64, covered_secs: f64) -> Option<NeedMore> {
    let probes = probes?;
    let rate = have as f64 / covered_secs;
    Some(NeedMore {
        probes,
        seconds: (covered_secs > 0.0 && rate > 0.0)
            .then(|| probes.saturating_sub(have) as f64 / rate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{AgentRecord, Distribution, Gap, TestRecord};
    use crate::file::SloFile;
    use xcbench_snapshot::Counters;

    const NOW: u64 = 1_796_065_200_000_000_000; // 2026-11-30T19:00:00Z
    const HOUR: u64 = 3_600_000_000_000;

    fn objective(body: &str) -> Objective {
        let text = format!("objectives:\n  - name: o\n{body}");
        SloFile::parse("t.yaml", &text)
            .unwrap()
            .objectives
            .remove(0)
    }

    /// An hour of data from one agent, `n` RTT samples, `slow` of them at 5 ms and the
    /// rest at 1 ms.
    fn evidence(n: u64, slow: u64) -> Evidence {
        let buckets = [(1_000_447, n - slow), (5_001_215, slow)];
        Evidence {
            from_unix_ns: NOW - HOUR,
            to_unix_ns: NOW,
            covered: Some((NOW - HOUR, NOW)),
            series: 1,
            counters: Counters {
                sent: n,
                received: n,
                ..Counters::default()
            },
            distribution: Distribution::from_buckets(buckets, |h| h - h / 1_000),
            agents: vec![AgentRecord {
                agent: "azure-1".to_owned(),
                last_report_unix_ns: NOW - 5_000_000_000,
                gaps: vec![],
            }],
            ..Evidence::default()
        }
    }

    const P99: &str = "    indicator: rtt\n    quantile: p99\n    at_most: 2ms\n";

    #[test]
    fn a_quantile_passes_fails_or_asks_for_more_from_its_bound() {
        let o = objective(P99);
        // 10,000 samples, 50 slow: 99.5% within, lower bound above 99%.
        let r = judge(&o, evidence(10_000, 50), NOW);
        assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
        assert!(
            r.reasons[0].contains("9,950 of 10,000 samples <= 2ms"),
            "{}",
            r.reasons[0]
        );
        assert!(r.bound.unwrap().lower.unwrap() >= 0.99);
        // 10,000 samples, 200 slow: 98% within, upper bound under 99%.
        let r = judge(&o, evidence(10_000, 200), NOW);
        assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.reasons);
        assert_eq!(r.value_text, "5.001ms");
        // 200 samples, none slow: not yet 299 (the rule of three at 95%).
        let r = judge(&o, evidence(200, 0), NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
        assert_eq!(r.need_more.unwrap().probes, 299);
        assert!(
            r.reasons[0].contains("need about 99 more probes (about 29m42s at the current rate)"),
            "{}",
            r.reasons[0]
        );
    }

    #[test]
    fn straddling_samples_never_tip_the_verdict() {
        // The threshold sits inside the 5 ms bucket: those samples count against both.
        let o = objective("    indicator: rtt\n    quantile: p50\n    at_most: 5ms\n");
        let r = judge(&o, evidence(10_000, 9_000), NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
        assert!(r.reasons[0].contains("9,000 more within the histogram's resolution of 5ms"));
        let o = objective("    indicator: rtt\n    quantile: max\n    at_most: 5ms\n");
        assert_eq!(
            judge(&o, evidence(10_000, 1), NOW).verdict,
            Verdict::Inconclusive
        );
        let o = objective("    indicator: rtt\n    quantile: max\n    at_most: 6ms\n");
        assert_eq!(judge(&o, evidence(10_000, 1), NOW).verdict, Verdict::Pass);
        let o = objective("    indicator: rtt\n    quantile: max\n    at_most: 4ms\n");
        assert_eq!(judge(&o, evidence(10_000, 1), NOW).verdict, Verdict::Fail);
    }

    #[test]
    fn loss_is_judged_per_direction() {
        let o = objective("    indicator: loss\n    direction: forward\n    at_most: 0.1%\n");
        let mut e = evidence(20_000, 0);
        e.counters = Counters {
            sent: 20_000,
            received: 19_800,
            lost: 200,
            lost_forward: 200,
            ..Counters::default()
        };
        let r = judge(&o, e.clone(), NOW);
        assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.reasons);
        assert!(
            r.reasons[0].starts_with("forward loss 1% (200 of 20,000 probes)"),
            "{}",
            r.reasons[0]
        );
        let o = objective("    indicator: loss\n    direction: reverse\n    at_most: 0.1%\n");
        let r = judge(&o, e, NOW);
        assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    }

    #[test]
    fn guards_make_a_verdict_inconclusive_and_say_why() {
        let o = objective(P99);
        // Nothing selected.
        let r = judge(
            &o,
            Evidence {
                series: 0,
                ..evidence(10_000, 0)
            },
            NOW,
        );
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(
            r.reasons[1].contains("matched no series"),
            "{:?}",
            r.reasons
        );
        // Nothing in the window from an agent the source saw just before it: that agent
        // fell silent, and the reasons say so beside "no series".
        let mut e = Evidence {
            series: 0,
            ..evidence(10_000, 0)
        };
        e.agents[0].last_report_unix_ns = NOW - 600_000_000_000;
        let r = judge(&o, e, NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(r.codes.contains(&ReasonCode::NoSeries), "{:?}", r.codes);
        assert!(r.codes.contains(&ReasonCode::AgentSilent), "{:?}", r.codes);
        // An agent that went silent 10 minutes ago.
        let mut e = evidence(10_000, 0);
        e.agents[0].last_report_unix_ns = NOW - 600_000_000_000;
        let r = judge(&o, e, NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(r.reasons[0].starts_with("the samples alone would pass"));
        assert!(
            r.reasons[1].contains("agent azure-1 stopped reporting: last report 10m0s before"),
            "{:?}",
            r.reasons
        );
        // Dropped snapshots inside the window.
        let mut e = evidence(10_000, 0);
        e.agents[0].gaps.push(Gap {
            from_unix_ns: NOW - HOUR / 2,
            to_unix_ns: NOW - HOUR / 2 + 30_000_000_000,
            dropped_snapshots: 3,
        });
        let r = judge(&o, e, NOW);
        assert!(
            r.reasons[1].contains("agent azure-1 dropped 3 snapshots"),
            "{:?}",
            r.reasons
        );
        // Data for a quarter of the window.
        let mut e = evidence(10_000, 0);
        e.covered = Some((NOW - HOUR / 4, NOW));
        let r = judge(&o, e, NOW);
        assert!(
            r.reasons[1].contains("covers 15m0s of the 1h0m window (25%)"),
            "{:?}",
            r.reasons
        );
        // The agents skipped 5% of their schedule: the rate fell below the configured one.
        let mut e = evidence(10_000, 0);
        e.counters.skipped = 500;
        let r = judge(&o, e, NOW);
        assert!(r.codes.contains(&ReasonCode::LowRate), "{:?}", r.reasons);
        assert!(
            r.reasons[1].contains("skipped 500 of 10,500 scheduled probes"),
            "{:?}",
            r.reasons
        );
        // An objective that allows 5% (max_skipped) takes the same 4.8%.
        let mut lenient = o.clone();
        lenient.judging.max_skipped = 0.05;
        let mut e = evidence(10_000, 0);
        e.counters.skipped = 500;
        let r = judge(&lenient, e, NOW);
        assert!(!r.codes.contains(&ReasonCode::LowRate), "{:?}", r.reasons);
        // Too few samples.
        let r = judge(&o, evidence(50, 0), NOW);
        assert!(r
            .reasons
            .iter()
            .any(|x| x.contains("50 samples, fewer than min_probes = 100")));
    }

    #[test]
    fn one_way_delay_needs_clocks_good_enough_for_its_threshold() {
        let o = objective("    indicator: one_way_delay\n    direction: forward\n    quantile: p99\n    at_most: 2ms\n");
        let mut e = evidence(10_000, 0);
        let r = judge(&o, e.clone(), NOW);
        assert!(
            r.reasons[1].contains("no clock error estimate"),
            "{:?}",
            r.reasons
        );
        e.clock_error_max_ns = Some(500_000);
        let r = judge(&o, e.clone(), NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(
            r.reasons[1].contains("500us is more than max_clock_error = 10% of the 2ms threshold"),
            "{:?}",
            r.reasons
        );
        e.clock_error_max_ns = Some(100_000);
        assert_eq!(judge(&o, e, NOW).verdict, Verdict::Pass);
    }

    #[test]
    fn the_increase_under_load_bounds_both_quantiles() {
        let o = objective("    indicator: rtt_increase_under_load\n    quantile: p99\n    at_most: 2ms\n    min_coverage: 0%\n");
        let idle = evidence(10_000, 0).distribution;
        let mut e = evidence(10_000, 5_000); // half the samples under load at 5 ms
        e.baseline = Some(idle.clone());
        let r = judge(&o, e.clone(), NOW);
        assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.reasons);
        assert_eq!(r.value_text, "4.001ms");
        e.distribution = idle.clone();
        let r = judge(&o, e.clone(), NOW);
        assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
        e.baseline = None;
        assert_eq!(judge(&o, e, NOW).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn goodput_reads_every_test_and_never_passes_without_one() {
        let o = objective("    indicator: goodput\n    at_least: 500M\n");
        let mut e = Evidence {
            from_unix_ns: NOW - HOUR,
            to_unix_ns: NOW,
            ..Evidence::default()
        };
        assert_eq!(judge(&o, e.clone(), NOW).verdict, Verdict::Inconclusive);
        let test = |g: f64| TestRecord {
            started_unix_ns: NOW - HOUR / 2,
            outcome: "ok".to_owned(),
            goodput_bits_per_second: g,
        };
        e.tests = vec![test(9.4e8), test(9.1e8)];
        assert_eq!(judge(&o, e.clone(), NOW).verdict, Verdict::Pass);
        // A test that failed measured nothing: no pass on it.
        let mut with_failed = e.clone();
        with_failed.tests.push(TestRecord {
            outcome: "failed".to_owned(),
            goodput_bits_per_second: 0.0,
            ..test(0.0)
        });
        let r = judge(&o, with_failed, NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
        assert!(
            r.reasons[0].contains("1 more refused or failed"),
            "{:?}",
            r.reasons
        );
        e.tests.push(test(4.0e8));
        let r = judge(&o, e, NOW);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.value_text, "slowest 400Mbit/s");
    }

    #[test]
    fn a_hole_in_the_slots_is_not_coverage_and_counts_must_add_up() {
        let o = objective(P99);
        // Six 10-minute slots, the middle four empty: a stalled agent, no sequence jump.
        let mut e = evidence(10_000, 0);
        e.slots = (0..6u64)
            .map(|i| crate::evidence::SlotPoint {
                start_unix_ns: NOW - HOUR + i * HOUR / 6,
                slot_ns: HOUR / 6,
                sent: if i == 0 || i == 5 { 5_000 } else { 0 },
                lost: 0,
                samples: if i == 0 || i == 5 { 5_000 } else { 0 },
                sum_ns: 0,
                within: 0,
            })
            .collect();
        let r = judge(&o, e, NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(r.codes.contains(&ReasonCode::Coverage), "{:?}", r.reasons);
        assert!(
            r.reasons
                .iter()
                .any(|x| x.contains("covers 20m0s of the 1h0m window")),
            "{:?}",
            r.reasons
        );
        // A source whose within and straddling exceed its samples is not believed.
        let mut e = evidence(10_000, 0);
        e.exact_within = Some(crate::evidence::WithinCount {
            samples: 100,
            within: 99,
            straddling: 5,
        });
        let r = judge(&o, e, NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(r.reasons[0].contains("do not add up"), "{:?}", r.reasons);
    }

    #[test]
    fn the_gate_fails_on_a_key_failure_and_lists_warnings() {
        let o = objective(P99);
        let mut warn = o.clone();
        warn.key = false;
        warn.name = "w".to_owned();
        let pass = judge(&o, evidence(10_000, 0), NOW);
        let fail = judge(&o, evidence(10_000, 500), NOW);
        let warned = judge(&warn, evidence(10_000, 500), NOW);
        let g = GateResult::new("t".into(), NOW, vec![pass.clone(), warned.clone()]);
        assert_eq!((g.verdict, g.exit_code), (Verdict::Pass, 0));
        assert_eq!(g.summary.warnings, ["w: fail"]);
        let g = GateResult::new("t".into(), NOW, vec![pass.clone(), fail]);
        assert_eq!((g.verdict, g.exit_code), (Verdict::Fail, 1));
        let inc = judge(&o, evidence(20, 0), NOW);
        let g = GateResult::new("t".into(), NOW, vec![pass, inc]);
        assert_eq!((g.verdict, g.exit_code), (Verdict::Inconclusive, 3));
        // Only warnings: nothing decided.
        let g = GateResult::new("t".into(), NOW, vec![warned]);
        assert_eq!(g.verdict, Verdict::Inconclusive);
        assert_eq!(g.evaluated_at, "2026-11-30T19:00:00Z");
    }
}

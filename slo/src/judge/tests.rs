//! The verdicts held to their promises: each kind of objective passes, fails or stays
//! inconclusive as its exact bounds say, and every data-quality guard says why.

use super::*;
use crate::evidence::{AgentRecord, Distribution, Gap, SlotPoint, TestRecord};
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
        r.reasons[0].contains(
            "need at least 299 probes (99 more): a window of about 1h29m at the current rate"
        ),
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
fn losses_of_unknown_direction_confirm_neither_a_pass_nor_a_fail() {
    // A reflector restarted mid-window: 2,000 of 4,000 probes lost, no direction known.
    let forward = objective("    indicator: loss\n    direction: forward\n    at_most: 1%\n");
    let reverse = objective("    indicator: loss\n    direction: reverse\n    at_most: 1%\n");
    let mut e = evidence(4_000, 0);
    e.counters = Counters {
        sent: 4_000,
        received: 2_000,
        lost: 2_000,
        ..Counters::default()
    };
    for o in [&forward, &reverse] {
        let r = judge(o, e.clone(), NOW);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
        assert!(
            r.reasons[0].contains("2,000 more lost in an unknown direction"),
            "{}",
            r.reasons[0]
        );
        assert!(r.need_more.is_none(), "more probes place nothing");
    }
    // Known directions decide around them: 100 forward of 4,000 fails whatever the 5
    // unknown were, and reverse passes even counting all 5 as reverse.
    e.counters = Counters {
        sent: 4_000,
        received: 3_895,
        lost: 105,
        lost_forward: 100,
        ..Counters::default()
    };
    assert_eq!(judge(&forward, e.clone(), NOW).verdict, Verdict::Fail);
    let r = judge(&reverse, e.clone(), NOW);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    // Directions adding up to more than the losses: a snapshot missing; no verdict.
    e.counters.lost_reverse = 10;
    let r = judge(&forward, e, NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(r.reasons[0].contains("do not add up"), "{}", r.reasons[0]);
}

#[test]
fn reverse_loss_is_a_share_of_the_probes_that_reached_the_reflector() {
    // Half the probes lost on the way out, 10% of the rest on the way back: 10% reverse
    // loss, not 5% (of all probes).
    let o = objective("    indicator: loss\n    direction: reverse\n    at_most: 6%\n");
    let mut e = evidence(10_000, 0);
    e.counters = Counters {
        sent: 10_000,
        received: 4_500,
        lost: 5_500,
        lost_forward: 5_000,
        lost_reverse: 500,
        ..Counters::default()
    };
    let r = judge(&o, e, NOW);
    assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.reasons);
    assert!(
        r.reasons[0]
            .starts_with("reverse loss 10% (500 of 5,000 probes that reached the reflector)"),
        "{}",
        r.reasons[0]
    );
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
        to_unix_ns: NOW - HOUR / 2 + HOUR / 6,
        dropped_snapshots: 3,
        restarts: 0,
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
        .map(|i| SlotPoint {
            start_unix_ns: NOW - HOUR + i * HOUR / 6,
            slot_ns: HOUR / 6,
            sent: if i == 0 || i == 5 { 5_000 } else { 0 },
            received: if i == 0 || i == 5 { 5_000 } else { 0 },
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
    let g = GateResult::new(
        "t".into(),
        NOW,
        vec![pass.clone(), warned.clone()],
        Family::default(),
    );
    assert_eq!((g.verdict, g.exit_code), (Verdict::Pass, 0));
    assert_eq!(g.summary.warnings, ["w: fail"]);
    let g = GateResult::new("t".into(), NOW, vec![pass.clone(), fail], Family::default());
    assert_eq!((g.verdict, g.exit_code), (Verdict::Fail, 1));
    let inc = judge(&o, evidence(20, 0), NOW);
    let g = GateResult::new("t".into(), NOW, vec![pass, inc], Family::default());
    assert_eq!((g.verdict, g.exit_code), (Verdict::Inconclusive, 3));
    // Only warnings: nothing decided.
    let g = GateResult::new("t".into(), NOW, vec![warned], Family::default());
    assert_eq!(g.verdict, Verdict::Inconclusive);
    assert_eq!(g.evaluated_at, "2026-11-30T19:00:00Z");
}

#[test]
fn an_observed_violation_fails_whatever_the_guards_say() {
    // max <= 4ms with a 5 ms sample, and the agent down 10 minutes in the window: still a
    // fail.
    let o = objective("    indicator: rtt\n    quantile: max\n    at_most: 4ms\n");
    let mut e = evidence(10_000, 1);
    e.agents[0].gaps = vec![Gap {
        from_unix_ns: NOW - HOUR / 2,
        to_unix_ns: NOW - HOUR / 2 + HOUR / 6,
        dropped_snapshots: 0,
        restarts: 0,
    }];
    let r = judge(&o, e.clone(), NOW);
    assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.reasons);
    assert!(
        r.reasons[0].ends_with("a fail whatever the data-quality notes below say"),
        "{:?}",
        r.reasons
    );
    assert!(
        r.codes.contains(&ReasonCode::AgentRestarted),
        "{:?}",
        r.codes
    );
    // A p99 fail is an inference from the samples there are: the guard keeps it open.
    let o = objective("    indicator: rtt\n    quantile: p50\n    at_most: 4ms\n");
    let mut slow = evidence(10_000, 9_000);
    slow.agents = e.agents.clone();
    let r = judge(&o, slow, NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
}

#[test]
fn a_bound_is_printed_apart_from_the_objective() {
    assert_eq!(crate::text::percent(0.989951), "99%");
    assert_eq!(crate::text::percent_beside(0.989951, 0.99), "98.995%");
    assert_eq!(crate::text::percent_beside(0.990638, 0.99), "99.06%");
    assert_eq!(crate::text::percent_beside(0.99, 0.99), "99%");
    // 197,916 of 200,000 within 2ms: the upper bound 98.995% reads below 99%.
    let r = judge(&objective(P99), evidence(200_000, 2_084), NOW);
    assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.reasons);
    assert!(
        r.reasons[0].contains("upper bound 98.995% < 99%"),
        "{}",
        r.reasons[0]
    );
}

#[test]
fn one_way_delay_is_judged_within_the_clocks_error() {
    // Measured 1.95 ms for every probe, clocks within 0.2 ms of each other: the truth may be
    // 2.15 ms, so p99 <= 2ms cannot pass (it did, counting against 2 ms itself); at 3 ms
    // it passes, at 1.5 ms it fails.
    let mut e = evidence(10_000, 0);
    e.distribution = Distribution::from_buckets([(1_950_719, 10_000)], |h| h - h / 1_000);
    e.clock_error_max_ns = Some(200_000);
    let at = |t: &str| {
        let o = objective(&format!(
            "    indicator: one_way_delay\n    direction: forward\n    quantile: p99\n    at_most: {t}\n    max_clock_error: 20%\n"
        ));
        judge(&o, e.clone(), NOW)
    };
    let r = at("2ms");
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
    assert!(
        r.reasons[0].contains("10,000 more within the clocks' error of 200us around 2ms"),
        "{}",
        r.reasons[0]
    );
    assert_eq!(at("3ms").verdict, Verdict::Pass);
    assert_eq!(at("1.5ms").verdict, Verdict::Fail);
}

#[test]
fn losses_that_cluster_widen_the_bounds_by_the_effective_sample() {
    // 60 of 36,000 probes lost against 0.1%: spread over the hour the gate fails (lower
    // bound 0.133%); all in one 10 s burst they are one event, worth about 600 probes.
    let o = objective("    indicator: loss\n    at_most: 0.1%\n");
    let with_slots = |lost_in: &dyn Fn(u64) -> u64| {
        let mut e = evidence(36_000, 0);
        e.counters = Counters {
            sent: 36_000,
            received: 35_940,
            lost: 60,
            ..Counters::default()
        };
        e.slots = (0..360)
            .map(|i| SlotPoint {
                start_unix_ns: NOW - HOUR + i * 10_000_000_000,
                slot_ns: 10_000_000_000,
                sent: 100,
                received: 100 - lost_in(i),
                lost: lost_in(i),
                samples: 100 - lost_in(i),
                sum_ns: 0,
                within: 100 - lost_in(i),
            })
            .collect();
        judge(&o, e, NOW)
    };
    let iid = with_slots(&|i| u64::from(i % 6 == 0));
    assert_eq!(iid.verdict, Verdict::Fail, "{:?}", iid.reasons);
    assert_eq!(iid.dispersion, Some(1.0));
    assert_eq!(iid.effective_samples, Some(36_000));
    let burst = with_slots(&|i| if i == 200 { 60 } else { 0 });
    assert_eq!(burst.verdict, Verdict::Inconclusive, "{:?}", burst.reasons);
    let phi = burst.dispersion.unwrap();
    assert!((55.0..65.0).contains(&phi), "{phi}");
    let n_eff = burst.effective_samples.unwrap();
    assert!((550..660).contains(&n_eff), "{n_eff}");
    assert!(
        burst.reasons[0].contains("the losses cluster in time (dispersion"),
        "{}",
        burst.reasons[0]
    );
    let (wide, narrow) = (burst.bound.unwrap(), iid.bound.unwrap());
    assert!(
        wide.lower.unwrap() < narrow.lower.unwrap() && wide.upper.unwrap() > narrow.upper.unwrap()
    );
    eprintln!("iid: {}\nburst: {}", iid.reasons[0], burst.reasons[0]);
}

#[test]
fn a_pass_never_rests_on_a_subset_of_the_series() {
    let mut e = evidence(10_000, 0);
    e.quiet_series = vec!["az-2 -> oci-1 udp/stamp".to_owned()];
    let r = judge(&objective(P99), e, NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
    assert!(
        r.codes.contains(&ReasonCode::MissingSeries),
        "{:?}",
        r.codes
    );
    assert!(
        r.reasons[1].contains("1 selected series held data in the day before the window and none in it (az-2 -> oci-1 udp/stamp)"),
        "{:?}",
        r.reasons
    );
}

#[test]
fn the_probes_asked_for_respect_min_probes() {
    // 200 clean samples decide p99 at 299, but the objective wants 1,000 before any verdict.
    let o = objective(&format!("{P99}    min_probes: 1000\n"));
    let r = judge(&o, evidence(200, 0), NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    let need = r.need_more.unwrap();
    assert_eq!(need.probes, 1_000);
    assert_eq!(need.window_seconds.map(|s| s.round()), Some(18_000.0));
}

#[test]
fn holm_holds_the_gates_fail_to_the_confidence_as_a_whole() {
    // Three key objectives: 50 of 10,000 lost against 0.1% (a clear fail), 9,882 of 10,000
    // within 2 ms against p99 (a fail at 95%: upper bound 98.99%; not at 97.5%), and a pass.
    let loss = objective("    indicator: loss\n    at_most: 0.1%\n");
    let p99 = objective(P99);
    let mut lossy = evidence(10_000, 0);
    lossy.counters = Counters {
        sent: 10_000,
        received: 9_950,
        lost: 50,
        ..Counters::default()
    };
    let objectives = vec![loss.clone(), p99.clone(), p99.clone()];
    let mut results = vec![
        judge(&loss, lossy, NOW),
        judge(&p99, evidence(10_000, 118), NOW),
        judge(&p99, evidence(10_000, 0), NOW),
    ];
    assert_eq!(
        results[0].verdict,
        Verdict::Fail,
        "{:?}",
        results[0].reasons
    );
    assert_eq!(
        results[1].verdict,
        Verdict::Fail,
        "{:?}",
        results[1].reasons
    );
    assert_eq!(results[2].verdict, Verdict::Pass);
    let alone = GateResult::new("t".into(), NOW, results.clone(), Family::PerObjective);
    assert!((alone.summary.fail_confidence - 0.85).abs() < 1e-9);
    holm(&objectives, &mut results, NOW);
    assert_eq!(
        results[0].verdict,
        Verdict::Fail,
        "{:?}",
        results[0].reasons
    );
    assert!(
        results[0]
            .reasons
            .last()
            .unwrap()
            .contains("Holm: still a fail at 98.33%"),
        "{:?}",
        results[0].reasons
    );
    assert_eq!(
        results[1].verdict,
        Verdict::Inconclusive,
        "{:?}",
        results[1].reasons
    );
    assert!(
        results[1].reasons[0].starts_with("a fail at 95% alone, not for the gate as a whole: with 2 key objectives left, Holm's step asks for 97.5%"),
        "{:?}",
        results[1].reasons
    );
    let g = GateResult::new("t".into(), NOW, results, Family::Holm);
    assert_eq!(g.summary.fail_confidence, 0.95);
    assert_eq!(g.verdict, Verdict::Fail);
}

#[test]
fn clock_steps_keep_one_way_and_ipdv_objectives_open() {
    let o = objective(
        "    indicator: ipdv\n    direction: forward\n    quantile: p99\n    at_most: 2ms\n",
    );
    let mut e = evidence(10_000, 0);
    e.counters.clock_steps = 200;
    let r = judge(&o, e.clone(), NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
    assert!(r.codes.contains(&ReasonCode::ClockError), "{:?}", r.codes);
    assert!(
        r.reasons[1].starts_with("200 of 10,000 replies (2%) came across a clock step"),
        "{:?}",
        r.reasons
    );
    e.counters.clock_steps = 50;
    assert_eq!(judge(&o, e, NOW).verdict, Verdict::Pass);
}

#[test]
fn an_objective_against_a_baseline_bounds_both_windows() {
    let p99 = |margin: &str| {
        objective(&format!(
            "    indicator: rtt\n    quantile: p99\n    baseline: 7d\n    no_worse_than: {margin}\n"
        ))
    };
    // The window: 10,000 samples, 50 at 5 ms (p99 1 ms); the baseline the same: p99 no
    // worse by 10% passes.
    let mut e = evidence(10_000, 50);
    e.baseline = Some(e.distribution.clone());
    let r = judge(&p99("10%"), e.clone(), NOW);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    assert_eq!(r.value_text, "1ms vs 1ms");
    // The window's p99 at 5 ms (300 slow of 10,000) against a baseline at 1 ms: fails by
    // a margin of 0.5 ms, passes by one of 10 ms.
    let mut worse = evidence(10_000, 300);
    worse.baseline = e.baseline.clone();
    let r = judge(&p99("+0.5ms"), worse.clone(), NOW);
    assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.reasons);
    assert!(
        r.reasons[0].contains("lower bound 4.996ms > the baseline's upper bound 1ms +500us"),
        "{:?}",
        r.reasons
    );
    assert_eq!(judge(&p99("+10ms"), worse, NOW).verdict, Verdict::Pass);
    // No baseline data: inconclusive.
    let r = judge(&p99("10%"), evidence(10_000, 50), NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(
        r.reasons[0].contains("0 in the baseline"),
        "{:?}",
        r.reasons
    );
}

#[test]
fn a_ratio_against_a_baseline_allows_percentage_points() {
    let o = objective("    indicator: loss\n    baseline: 7d\n    no_worse_than: +0.1%\n");
    let counters = |lost: u64| Counters {
        sent: 20_000,
        received: 20_000 - lost,
        lost,
        ..Counters::default()
    };
    let with = |now: u64, before: u64| {
        let mut e = evidence(20_000, 0);
        e.counters = counters(now);
        e.baseline_counters = Some(counters(before));
        judge(&o, e, NOW)
    };
    assert_eq!(with(10, 10).verdict, Verdict::Pass);
    assert_eq!(with(200, 10).verdict, Verdict::Fail);
    let r = with(40, 10);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
    assert!(r.reasons[0].contains("neither decides"), "{:?}", r.reasons);
}

#[test]
fn abandoned_requests_are_not_path_loss_and_not_proof_of_none() {
    // A TCP rr connection stalled once: 1 request lost at its timeout, 20 more abandoned
    // when the agent tore the connection down. Loss <= 0.1% of 20,000: 1 lost alone would
    // pass; 21 might be 0.105%, so no pass; and no fail either.
    let o = objective("    indicator: loss\n    select: { protocol: tcp }\n    at_most: 0.1%\n");
    let mut e = evidence(20_000, 0);
    e.counters = Counters {
        sent: 20_000,
        received: 19_979,
        lost: 1,
        abandoned: 20,
        ..Counters::default()
    };
    let r = judge(&o, e.clone(), NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
    assert!(
        r.reasons[0].contains("20 more abandoned when their connection was torn down"),
        "{}",
        r.reasons[0]
    );
    e.counters.abandoned = 0;
    assert_eq!(judge(&o, e, NOW).verdict, Verdict::Pass);
}

#[test]
fn goodput_needs_the_tests_its_schedule_calls_for() {
    // Every test that ran reached the rate, but the schedule calls for at least 4 in the
    // hour and 1 ran: the others never started (a stalled scheduler), so no pass; a test
    // below the rate still fails.
    let o = objective("    indicator: goodput\n    at_least: 500M\n");
    let test = |g: f64| TestRecord {
        started_unix_ns: NOW - HOUR / 2,
        outcome: "ok".to_owned(),
        goodput_bits_per_second: g,
    };
    let mut e = Evidence {
        from_unix_ns: NOW - HOUR,
        to_unix_ns: NOW,
        tests: vec![test(9.4e8)],
        expected_tests: Some(4),
        ..Evidence::default()
    };
    let r = judge(&o, e.clone(), NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
    assert!(
        r.reasons[1].starts_with(
            "1 scheduled tests ran in the window where the agents' schedules call for at least 4"
        ),
        "{:?}",
        r.reasons
    );
    e.tests.push(test(1.0e8));
    assert_eq!(judge(&o, e.clone(), NOW).verdict, Verdict::Fail);
    e.tests = vec![test(9.4e8); 4];
    assert_eq!(judge(&o, e, NOW).verdict, Verdict::Pass);
}

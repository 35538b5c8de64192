//! The gate's answer over several objectives (key, warnings, Holm), objectives against a
//! baseline, and goodput over scheduled tests.

use super::*;

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

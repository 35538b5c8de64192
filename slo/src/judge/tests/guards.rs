//! The data-quality guards: each makes a verdict inconclusive and says why, and none
//! undoes an observed violation.

use super::*;

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
        elsewhere_snapshots: 0,
    });
    let r = judge(&o, e, NOW);
    assert!(
        r.reasons[1].contains("agent azure-1 dropped 3 snapshots"),
        "{:?}",
        r.reasons
    );
    // Snapshots another collector holds: not in this source, whatever their samples say.
    let mut e = evidence(10_000, 0);
    e.agents[0].gaps.push(Gap {
        from_unix_ns: NOW - HOUR / 2,
        to_unix_ns: NOW - HOUR / 2 + HOUR / 6,
        dropped_snapshots: 0,
        restarts: 0,
        elsewhere_snapshots: 60,
    });
    let r = judge(&o, e, NOW);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}", r.reasons);
    assert!(
        r.codes.contains(&ReasonCode::ReportedElsewhere),
        "{:?}",
        r.codes
    );
    assert!(
        r.reasons[1].contains("agent azure-1 reported 60 snapshots to another collector"),
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
        elsewhere_snapshots: 0,
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

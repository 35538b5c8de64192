//! Ratio objectives held to their bounds: loss overall and per direction (unknown
//! directions, the reverse denominator), dependent losses, abandoned requests.

use super::*;

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

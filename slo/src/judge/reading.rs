//! What each kind of objective's statistic says, before the data-quality guards: a latency
//! quantile (samples within the threshold, straddling ones against a pass), a ratio (loss,
//! duplicates, ...), scheduled-test goodput, and the RTT increase under load, each as a
//! [`Reading`] with its exact bound and the probes that would decide it.

use crate::evidence::{Distribution, Evidence};
use crate::objective::{Indicator, Objective, Quantile};
use crate::stats::{
    dispersion, lower_bound, lower_bound_dispersed, trials_to_decide, upper_bound,
    upper_bound_dispersed,
};
use crate::text::{duration, percent, percent_beside, rate, signed_duration};

use super::{count, need, need_more_text, Bound, Reading, Verdict};

pub(super) fn read_latency(
    o: &Objective,
    e: &Evidence,
    quantile: Quantile,
    threshold: u64,
    covered_secs: f64,
) -> Reading {
    let c = o.judging.confidence;
    let d = &e.distribution;
    // A one-way delay is as good as the two clocks agree: judged within their combined
    // error either side of the threshold.
    let clock_error_ns = o
        .indicator
        .is_one_way()
        .then_some(e.clock_error_max_ns)
        .flatten()
        .unwrap_or(0);
    // The slots say how much slow samples cluster in time (not for a maximum: a census).
    let e_slots = if quantile.is_max() { &[][..] } else { &e.slots };
    let (n, k, s) = match e.exact_within {
        _ if clock_error_ns > 0 => {
            // Certainly within: at or below T - E; possibly: up to T + E.
            let (k, _) = d.within(threshold.saturating_sub(clock_error_ns));
            let (k_hi, s_hi) = d.within(threshold.saturating_add(clock_error_ns));
            (d.count(), k, (k_hi + s_hi).saturating_sub(k))
        }
        Some(w) => (w.samples, w.within, w.straddling),
        None => {
            let (k, s) = d.within(threshold);
            (d.count(), k, s)
        }
    };
    let t = duration(threshold);
    let q = quantile.fraction();
    let value = d.quantile(q);
    let mut r = Reading {
        verdict: Verdict::Inconclusive,
        statistic: format!("fraction of samples <= {t}"),
        observed: (n > 0).then(|| k as f64 / n as f64),
        bound: None,
        value: value.map(|v| v as f64 / 1e9),
        value_text: value.map_or_else(|| "-".to_owned(), duration),
        samples: n,
        reason: String::new(),
        need_more: None,
        certain: false,
        dispersion: None,
    };
    if n == 0 {
        r.reason = "no samples".to_owned();
        return r;
    }
    if k.saturating_add(s) > n {
        r.observed = None;
        r.reason = format!(
            "the source's counts do not add up: {} within and {} straddling {t} of {} samples",
            count(k),
            count(s),
            count(n)
        );
        return r;
    }
    let share = if clock_error_ns > 0 {
        format!(
            "{} of {} samples <= {t} less the clocks' error",
            count(k),
            count(n)
        )
    } else {
        format!("{} of {} samples <= {t}", count(k), count(n))
    };
    let straddle = if s > 0 && clock_error_ns > 0 {
        format!(
            " ({} more within the clocks' error of {} around {t}, counted against the verdict)",
            count(s),
            duration(clock_error_ns)
        )
    } else if s > 0 {
        format!(
            " ({} more within the histogram's resolution of {t}, counted against the verdict)",
            count(s)
        )
    } else {
        String::new()
    };
    if quantile.is_max() {
        // The maximum has no bound: what was seen is all there is.
        r.reason = if k == n {
            r.verdict = Verdict::Pass;
            format!("max {} <= {t} over {} samples (the observed maximum: no bound on samples not taken)", r.value_text, count(n))
        } else if k + s < n {
            r.verdict = Verdict::Fail;
            r.certain = true;
            format!(
                "{} samples above {t} (max {})",
                count(n - k - s),
                r.value_text
            )
        } else {
            format!("{share}{straddle}: the maximum cannot be placed on either side of {t}")
        };
        return r;
    }
    // Slow samples cluster in time (a congested minute): the slots say how much.
    let (phi, dispersed) = clustering(
        e_slots
            .iter()
            .map(|p| (p.samples - p.within.min(p.samples), p.samples)),
        n,
        "slow samples",
    );
    r.dispersion = phi;
    let phi = phi.unwrap_or(1.0);
    let lower = lower_bound_dispersed(k, n, phi, c);
    let upper = upper_bound_dispersed(k + s, n, phi, c);
    r.bound = Some(Bound {
        lower: Some(lower),
        upper: Some(upper),
        confidence: c,
    });
    let conf = percent(c);
    let qp = percent(q);
    let straddle = straddle + &dispersed;
    if lower >= q {
        r.verdict = Verdict::Pass;
        r.reason = format!(
            "{share}{straddle}; {conf} lower bound {} >= {qp}",
            percent_beside(lower, q)
        );
    } else if upper < q {
        r.verdict = Verdict::Fail;
        r.reason = format!(
            "{share}{straddle}; {conf} upper bound {} < {qp}",
            percent_beside(upper, q)
        );
    } else {
        let heading_pass = k as f64 / n as f64 >= q;
        let probes = if heading_pass {
            trials_dispersed(k, n, phi, false, |k, n| lower_bound(k, n, c) >= q)
        } else if ((k + s) as f64 / n as f64) < q {
            trials_dispersed(k + s, n, phi, true, |k, n| upper_bound(k, n, c) < q)
        } else {
            None
        };
        r.need_more = need(probes, n, covered_secs, o.judging.min_probes);
        let tail = match &r.need_more {
            Some(m) => need_more_text(m, n, "probes"),
            None if s > 0 && !heading_pass => format!(
                "the samples within the histogram's resolution of {t} keep it open: more probes at the same fractions would not decide; a threshold off a bucket edge would"
            ),
            None => "the observed fraction sits too close to the objective for any practical number of probes to decide".to_owned(),
        };
        r.reason = format!(
            "{share}{straddle}; one-sided {conf} bounds {}..{} include {qp}: {tail}",
            percent_beside(lower, q),
            percent_beside(upper, q)
        );
    }
    r
}

/// The dispersion of per-slot counts `(bad, of)` when they show any (phi > 1), and the text
/// that says so: "; the losses cluster in time (dispersion 60 over 360 slots): worth 600
/// independent probes, the bounds widened to match".
fn clustering(
    slots: impl Iterator<Item = (u64, u64)>,
    n: u64,
    what: &str,
) -> (Option<f64>, String) {
    match dispersion(slots) {
        Some((phi, used)) if phi > 1.0 => (
                Some(phi),
                format!(
                    "; the {what} cluster in time (dispersion {phi:.1} over {used} slots): worth {} independent probes, the bounds widened to match",
                    count((n as f64 / phi).round() as u64)
                ),
            ),
        Some((phi, _)) => (Some(phi), String::new()),
        None => (None, String::new()),
    }
}

/// [`trials_to_decide`] for counts worth `n / phi` independent trials: the trials it takes,
/// in probes.
fn trials_dispersed(
    k: u64,
    n: u64,
    phi: f64,
    round_up: bool,
    decides: impl Fn(u64, u64) -> bool,
) -> Option<u64> {
    if phi <= 1.0 {
        return trials_to_decide(k, n, round_up, decides);
    }
    let (ke, ne) = (
        (k as f64 / phi).round() as u64,
        ((n as f64 / phi).round() as u64).max(1),
    );
    trials_to_decide(ke.min(ne), ne, round_up, decides).map(|t| (t as f64 * phi).ceil() as u64)
}

/// A ratio's counts: what is certainly counted (`x` of `n`, for a fail) and the worst case
/// the data allows (`x_worst` of `n_worst`, for a pass). They differ for directional loss
/// when some losses have no direction.
struct RatioCounts {
    x: u64,
    n: u64,
    x_worst: u64,
    n_worst: u64,
    /// Losses of unknown direction, for the reason text.
    unattributed: u64,
}

/// The counts of a ratio objective; `Err` with the reason when the counters contradict each
/// other.
fn ratio_counts(
    indicator: Indicator,
    c: &xcbench_snapshot::Counters,
) -> Result<RatioCounts, String> {
    use crate::objective::Direction;
    let plain = |x: u64, n: u64| RatioCounts {
        x,
        n,
        x_worst: x,
        n_worst: n,
        unattributed: 0,
    };
    let resolved = c.received + c.lost;
    Ok(match indicator {
        // Requests a torn-down connection abandoned may or may not have been lost: against
        // a pass, not for a fail.
        Indicator::Loss(None) => RatioCounts {
            x: c.lost,
            n: resolved,
            x_worst: c.lost + c.abandoned,
            n_worst: resolved + c.abandoned,
            unattributed: 0,
        },
        Indicator::Loss(Some(direction)) => {
            // Losses whose direction the reflector's counter could not tell (a reflector
            // restarted, a run still open at the window's end) are counted against a pass in
            // the direction judged and for neither side's fail.
            let Some(u) = c.lost.checked_sub(c.lost_forward + c.lost_reverse) else {
                return Err(format!(
                    "the source's counts do not add up: {} lost forward and {} in reverse of {} lost (a snapshot missing?)",
                    count(c.lost_forward),
                    count(c.lost_reverse),
                    count(c.lost)
                ));
            };
            match direction {
                Direction::Forward => RatioCounts {
                    x: c.lost_forward,
                    n: resolved,
                    x_worst: c.lost_forward + u,
                    n_worst: resolved,
                    unattributed: u,
                },
                // Of the probes that reached the reflector: those answered and those whose
                // reply was lost (all of the unattributed, at worst).
                Direction::Reverse => RatioCounts {
                    x: c.lost_reverse,
                    n: c.received + c.lost_reverse,
                    x_worst: c.lost_reverse + u,
                    n_worst: c.received + c.lost_reverse + u,
                    unattributed: u,
                },
            }
        }
        Indicator::Duplicates => plain(c.duplicated, c.received),
        Indicator::Reorders => plain(c.reordered, c.received),
        _ => plain(c.late, resolved),
    })
}

pub(super) fn read_ratio(o: &Objective, e: &Evidence, at_most: f64, covered_secs: f64) -> Reading {
    let (what, of) = match o.indicator {
        Indicator::Loss(None) => ("loss", "probes"),
        Indicator::Loss(Some(crate::objective::Direction::Forward)) => ("forward loss", "probes"),
        Indicator::Loss(Some(crate::objective::Direction::Reverse)) => {
            ("reverse loss", "probes that reached the reflector")
        }
        Indicator::Duplicates => ("duplicates", "replies"),
        Indicator::Reorders => ("reordering", "replies"),
        _ => ("late replies", "probes"),
    };
    let counts = ratio_counts(o.indicator, &e.counters);
    let (x, n) = counts.as_ref().map_or((0, 0), |k| (k.x, k.n));
    let conf = percent(o.judging.confidence);
    let observed = (n > 0).then(|| x as f64 / n as f64);
    let mut r = Reading {
        verdict: Verdict::Inconclusive,
        statistic: format!("{what} ratio"),
        observed,
        bound: None,
        value: observed,
        value_text: observed.map_or_else(|| "-".to_owned(), percent),
        samples: n,
        reason: String::new(),
        need_more: None,
        certain: false,
        dispersion: None,
    };
    let k = match counts {
        Ok(k) => k,
        Err(reason) => {
            r.reason = reason;
            return r;
        }
    };
    if k.n_worst == 0 {
        r.reason = format!("no {of} resolved");
        return r;
    }
    let cf = o.judging.confidence;
    // Losses cluster in time (a burst, an outage): the slots say how much. The other ratios
    // have no per-slot counts and stay exact.
    let (phi, dispersed) = match o.indicator {
        Indicator::Loss(_) => clustering(
            e.slots.iter().map(|p| (p.lost, p.received + p.lost)),
            k.n,
            "losses",
        ),
        _ => (None, String::new()),
    };
    r.dispersion = phi;
    let phi = phi.unwrap_or(1.0);
    let lower = lower_bound_dispersed(k.x, k.n, phi, cf);
    let upper = upper_bound_dispersed(k.x_worst, k.n_worst, phi, cf);
    r.bound = Some(Bound {
        lower: Some(lower),
        upper: Some(upper),
        confidence: cf,
    });
    let abandoned = k.n_worst - k.n;
    let unknown = if k.unattributed > 0 {
        format!(
            "; {} more lost in an unknown direction, counted against a pass and not for a fail",
            count(k.unattributed)
        )
    } else if abandoned > 0 {
        format!(
            "; {} more abandoned when their connection was torn down, counted against a pass and not for a fail",
            count(abandoned)
        )
    } else {
        String::new()
    };
    let share = format!(
        "{what} {} ({} of {} {of}{unknown}){dispersed}",
        r.value_text,
        count(k.x),
        count(k.n)
    );
    let limit = percent(at_most);
    if upper <= at_most {
        r.verdict = Verdict::Pass;
        r.reason = format!(
            "{share}; {conf} upper bound {} <= {limit}",
            percent_beside(upper, at_most)
        );
    } else if lower > at_most {
        r.verdict = Verdict::Fail;
        r.reason = format!(
            "{share}; {conf} lower bound {} > {limit}",
            percent_beside(lower, at_most)
        );
    } else {
        let p = k.x_worst as f64 / k.n_worst as f64;
        let probes = if k.unattributed > 0 {
            // More probes do not place losses whose direction is unknown.
            None
        } else if p < at_most {
            trials_dispersed(k.x, k.n, phi, true, |k, n| upper_bound(k, n, cf) <= at_most)
        } else if p > at_most {
            trials_dispersed(k.x, k.n, phi, false, |k, n| lower_bound(k, n, cf) > at_most)
        } else {
            None
        };
        r.need_more = need(probes, k.n, covered_secs, o.judging.min_probes);
        let tail = match &r.need_more {
            Some(m) => need_more_text(m, k.n, of),
            None if k.unattributed > 0 => format!(
                "the {} losses of unknown direction could put it on either side of {limit}",
                count(k.unattributed)
            ),
            None => format!("the observed {what} sits too close to {limit} to decide"),
        };
        r.reason = format!(
            "{share}; one-sided {conf} bounds {}..{} include {limit}: {tail}",
            percent_beside(lower, at_most),
            percent_beside(upper, at_most)
        );
    }
    r
}

pub(super) fn read_goodput(
    o: &Objective,
    e: &Evidence,
    quantile: Quantile,
    at_least: u64,
) -> Reading {
    let ok: Vec<f64> = e
        .tests
        .iter()
        .filter(|t| t.outcome == "ok")
        .map(|t| t.goodput_bits_per_second)
        .collect();
    let n = ok.len() as u64;
    let k = ok.iter().filter(|g| **g >= at_least as f64).count() as u64;
    let slowest = ok.iter().copied().fold(f64::INFINITY, f64::min);
    let want = 1.0
        - if quantile.is_max() {
            0.0
        } else {
            quantile.fraction()
        };
    let limit = rate(at_least as f64);
    let mut r = Reading {
        verdict: Verdict::Inconclusive,
        statistic: format!("fraction of tests >= {limit}"),
        observed: (n > 0).then(|| k as f64 / n as f64),
        bound: None,
        value: (n > 0).then_some(slowest),
        value_text: if n > 0 {
            format!("slowest {}", rate(slowest))
        } else {
            "-".to_owned()
        },
        samples: n,
        reason: String::new(),
        need_more: None,
        certain: false,
        dispersion: None,
    };
    let failed = e.tests.len() as u64 - n;
    if n == 0 {
        r.reason = if failed > 0 {
            format!("no throughput test completed ({failed} refused or failed)")
        } else {
            "no throughput test ran in the window".to_owned()
        };
        return r;
    }
    let share = format!("{k} of {n} tests >= {limit} (slowest {})", rate(slowest));
    // A test that was refused or failed measured nothing: it can confirm no pass.
    let unknown = if failed > 0 {
        format!("; {failed} more refused or failed, their goodput unknown")
    } else {
        String::new()
    };
    if quantile.is_max() || want >= 1.0 {
        if k < n {
            r.verdict = Verdict::Fail;
            r.certain = true;
            r.reason = format!("{} tests below {limit}: {share}{unknown}", n - k);
        } else if failed == 0 {
            r.verdict = Verdict::Pass;
            r.reason = format!("every test reached {limit}: {share}");
        } else {
            r.reason = format!("every completed test reached {limit}: {share}{unknown}");
        }
        return r;
    }
    let c = o.judging.confidence;
    // Tests that measured nothing count as below the rate for a pass, at it for a fail.
    let (lower, upper) = (
        lower_bound(k, n + failed, c),
        upper_bound(k + failed, n + failed, c),
    );
    r.bound = Some(Bound {
        lower: Some(lower),
        upper: Some(upper),
        confidence: c,
    });
    let conf = percent(c);
    if lower >= want {
        r.verdict = Verdict::Pass;
        r.reason = format!(
            "{share}; {conf} lower bound {} >= {}",
            percent_beside(lower, want),
            percent(want)
        );
    } else if upper < want {
        r.verdict = Verdict::Fail;
        r.reason = format!(
            "{share}; {conf} upper bound {} < {}",
            percent_beside(upper, want),
            percent(want)
        );
    } else {
        r.reason = format!(
            "{share}; one-sided {conf} bounds {}..{} include {}: more tests needed",
            percent_beside(lower, want),
            percent_beside(upper, want),
            percent(want)
        );
    }
    r
}

pub(super) fn read_increase(
    o: &Objective,
    e: &Evidence,
    quantile: Quantile,
    threshold: u64,
) -> Reading {
    let q = quantile.fraction();
    // Two bounds make each decision: each gets half the error allowance.
    let c = 1.0 - (1.0 - o.judging.confidence) / 2.0;
    let empty = Distribution::default();
    let (load, idle) = (&e.distribution, e.baseline.as_ref().unwrap_or(&empty));
    let (nl, ni) = (load.count(), idle.count());
    let t = duration(threshold);
    // An unbounded bucket (Prometheus' +Inf) has no value to subtract.
    let finite = |v: u64| (v < u64::MAX).then(|| i64::try_from(v).unwrap_or(i64::MAX));
    let observed = match (
        load.quantile(q).and_then(finite),
        idle.quantile(q).and_then(finite),
    ) {
        (Some(l), Some(i)) => Some(l - i),
        _ => None,
    };
    let mut r = Reading {
        verdict: Verdict::Inconclusive,
        statistic: format!("{quantile} under load - {quantile} idle"),
        observed: observed.map(|v| v as f64 / 1e9),
        bound: None,
        value: observed.map(|v| v as f64 / 1e9),
        value_text: observed.map_or_else(|| "-".to_owned(), signed_duration),
        samples: nl.min(ni),
        reason: String::new(),
        need_more: None,
        certain: false,
        dispersion: None,
    };
    if nl == 0 || ni == 0 {
        r.reason = format!(
            "{} samples under load, {} idle: both are needed",
            count(nl),
            count(ni)
        );
        return r;
    }
    let (load_lo, load_hi) = load.quantile_bounds(q, c);
    let (idle_lo, idle_hi) = idle.quantile_bounds(q, c);
    let lower = idle_hi
        .and_then(finite)
        .and_then(|h| finite(load_lo).map(|l| l - h));
    let upper = load_hi
        .and_then(finite)
        .and_then(|h| finite(idle_lo).map(|l| h - l));
    r.bound = Some(Bound {
        lower: lower.map(|v| v as f64 / 1e9),
        upper: upper.map(|v| v as f64 / 1e9),
        confidence: o.judging.confidence,
    });
    let share = format!(
        "{quantile} {} under load ({} samples) vs {} idle ({} samples)",
        duration(load.quantile(q).unwrap_or(0)),
        count(nl),
        duration(idle.quantile(q).unwrap_or(0)),
        count(ni)
    );
    let conf = percent(o.judging.confidence);
    match (lower, upper) {
        (_, Some(u)) if u <= i64::try_from(threshold).unwrap_or(i64::MAX) => {
            r.verdict = Verdict::Pass;
            r.reason = format!(
                "{share}; {conf} upper bound on the increase {} <= {t}",
                signed_duration(u)
            );
        }
        (Some(l), _) if l > i64::try_from(threshold).unwrap_or(i64::MAX) => {
            r.verdict = Verdict::Fail;
            r.reason = format!(
                "{share}; {conf} lower bound on the increase {} > {t}",
                signed_duration(l)
            );
        }
        _ => {
            r.reason = format!(
                "{share}; {conf} bounds on the increase {}..{} include {t}: more probes under load needed",
                lower.map_or_else(|| "-inf".to_owned(), signed_duration),
                upper.map_or_else(|| "+inf".to_owned(), signed_duration)
            );
        }
    }
    r
}

/// Against a baseline window: the window's value may exceed the baseline's by at most the
/// margin. Each side is bounded exactly (order statistics for a quantile, Clopper-Pearson
/// for a ratio) at half the error allowance, so the two together hold at the confidence:
/// pass only when the window's upper bound is within the margin of the baseline's lower
/// bound, fail only when its lower bound is beyond the margin of the baseline's upper one.
pub(super) fn read_no_worse(
    o: &Objective,
    e: &Evidence,
    quantile: Option<Quantile>,
    margin: crate::objective::Margin,
) -> Reading {
    let c = 1.0 - (1.0 - o.judging.confidence) / 2.0;
    let conf = percent(o.judging.confidence);
    let mut r = Reading {
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
    };
    let Some(q) = quantile else {
        let none = xcbench_snapshot::Counters::default();
        let (now, before) = match (
            ratio_counts(o.indicator, &e.counters),
            ratio_counts(o.indicator, e.baseline_counters.as_ref().unwrap_or(&none)),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(why), _) | (_, Err(why)) => {
                r.reason = why;
                return r;
            }
        };
        r.statistic = "ratio against the baseline's".to_owned();
        r.samples = now.n;
        if now.n_worst == 0 || before.n == 0 {
            r.reason = format!(
                "{} resolved in the window, {} in the baseline: both are needed",
                count(now.n_worst),
                count(before.n)
            );
            return r;
        }
        let (p, pb) = (
            now.x as f64 / now.n as f64,
            before.x as f64 / before.n.max(1) as f64,
        );
        r.observed = Some(p);
        r.value = Some(p);
        r.value_text = format!("{} vs {}", percent(p), percent(pb));
        let upper = upper_bound(now.x_worst, now.n_worst, c);
        let lower = lower_bound(now.x, now.n, c);
        let base_lower = lower_bound(before.x, before.n, c);
        let base_upper = upper_bound(before.x_worst, before.n_worst, c);
        r.bound = Some(Bound {
            lower: Some(lower),
            upper: Some(upper),
            confidence: o.judging.confidence,
        });
        let share = format!(
            "{} of {} in the window, {} of {} in the baseline",
            count(now.x),
            count(now.n),
            count(before.x),
            count(before.n)
        );
        let (pass_at, fail_at) = (margin.limit(base_lower), margin.limit(base_upper));
        if upper <= pass_at {
            r.verdict = Verdict::Pass;
            r.reason = format!(
                "{share}; {conf} upper bound {} <= the baseline's lower bound {} {margin}",
                percent_beside(upper, pass_at),
                percent(base_lower)
            );
        } else if lower > fail_at {
            r.verdict = Verdict::Fail;
            r.reason = format!(
                "{share}; {conf} lower bound {} > the baseline's upper bound {} {margin}",
                percent_beside(lower, fail_at),
                percent(base_upper)
            );
        } else {
            r.reason = format!(
                "{share}; one-sided {conf} bounds {}..{} against the baseline's {}..{} {margin}: neither decides",
                percent(lower),
                percent(upper),
                percent(base_lower),
                percent(base_upper)
            );
        }
        return r;
    };
    let f = q.fraction();
    let empty = Distribution::default();
    let (now, before) = (&e.distribution, e.baseline.as_ref().unwrap_or(&empty));
    let (n, nb) = (now.count(), before.count());
    r.statistic = format!("{q} against the baseline's");
    r.samples = n;
    if n == 0 || nb == 0 {
        r.reason = format!(
            "{} samples in the window, {} in the baseline: both are needed",
            count(n),
            count(nb)
        );
        return r;
    }
    let (v, vb) = (
        now.quantile(f).unwrap_or(0),
        before.quantile(f).unwrap_or(0),
    );
    r.value = Some(v as f64 / 1e9);
    r.observed = r.value;
    r.value_text = format!("{} vs {}", duration(v), duration(vb));
    let (lo, hi) = now.quantile_bounds(f, c);
    let (base_lo, base_hi) = before.quantile_bounds(f, c);
    r.bound = Some(Bound {
        lower: Some(lo as f64 / 1e9),
        upper: hi.map(|h| h as f64 / 1e9),
        confidence: o.judging.confidence,
    });
    let share = format!(
        "{q} {} over {} samples, the baseline's {} over {}",
        duration(v),
        count(n),
        duration(vb),
        count(nb)
    );
    let pass_at = margin.limit(base_lo as f64);
    let fail_at = base_hi.map(|h| margin.limit(h as f64));
    match (hi, fail_at) {
        (Some(h), _) if (h as f64) <= pass_at => {
            r.verdict = Verdict::Pass;
            r.reason = format!(
                "{share}; {conf} upper bound {} <= the baseline's lower bound {} {margin}",
                duration(h),
                duration(base_lo)
            );
        }
        (_, Some(at)) if lo as f64 > at => {
            r.verdict = Verdict::Fail;
            r.reason = format!(
                "{share}; {conf} lower bound {} > the baseline's upper bound {} {margin}",
                duration(lo),
                duration(base_hi.unwrap_or(0))
            );
        }
        _ => {
            r.reason = format!(
                "{share}; one-sided {conf} bounds {}..{} against the baseline's {}..{} {margin}: neither decides",
                duration(lo),
                hi.map_or_else(|| "-".to_owned(), duration),
                duration(base_lo),
                base_hi.map_or_else(|| "-".to_owned(), duration)
            );
        }
    }
    r
}

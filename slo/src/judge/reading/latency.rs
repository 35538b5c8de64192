//! A latency quantile against its threshold, and the RTT increase under load (two
//! distributions' quantiles bounded apart).

use crate::evidence::{Distribution, Evidence};
use crate::objective::{Objective, Quantile};
use crate::stats::{lower_bound, lower_bound_dispersed, upper_bound, upper_bound_dispersed};
use crate::text::{duration, percent, percent_beside, signed_duration};

use super::{clustering, trials_dispersed};
use crate::judge::{count, need, need_more_text, Bound, Reading, Verdict};

pub(in crate::judge) fn read_latency(
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
        statistic: format!("fraction of samples <= {t}"),
        observed: (n > 0).then(|| k as f64 / n as f64),
        value: value.map(|v| v as f64 / 1e9),
        value_text: value.map_or_else(|| "-".to_owned(), duration),
        samples: n,
        ..Reading::open()
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

pub(in crate::judge) fn read_increase(
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
        statistic: format!("{quantile} under load - {quantile} idle"),
        observed: observed.map(|v| v as f64 / 1e9),
        value: observed.map(|v| v as f64 / 1e9),
        value_text: observed.map_or_else(|| "-".to_owned(), signed_duration),
        samples: nl.min(ni),
        ..Reading::open()
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

//! What each kind of objective's statistic says, before the data-quality guards: a latency
//! quantile (samples within the threshold, straddling ones against a pass), a ratio (loss,
//! duplicates, ...), scheduled-test goodput, and the RTT increase under load, each as a
//! [`Reading`] with its exact bound and the probes that would decide it.

use crate::evidence::{Distribution, Evidence};
use crate::objective::{Indicator, Objective, Quantile};
use crate::stats::{lower_bound, trials_to_decide, upper_bound};
use crate::text::{duration, percent, rate, signed_duration};

use super::{count, need, need_more_text, Bound, Reading, Verdict};

pub(super) fn read_latency(
    o: &Objective,
    d: &Distribution,
    exact: Option<crate::evidence::WithinCount>,
    quantile: Quantile,
    threshold: u64,
    covered_secs: f64,
) -> Reading {
    let c = o.judging.confidence;
    let (n, k, s) = match exact {
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
    let share = format!("{} of {} samples <= {t}", count(k), count(n));
    let straddle = if s > 0 {
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
    let lower = lower_bound(k, n, c);
    let upper = upper_bound(k + s, n, c);
    r.bound = Some(Bound {
        lower: Some(lower),
        upper: Some(upper),
        confidence: c,
    });
    let conf = percent(c);
    let qp = percent(q);
    if lower >= q {
        r.verdict = Verdict::Pass;
        r.reason = format!(
            "{share}{straddle}; {conf} lower bound {} >= {qp}",
            percent(lower)
        );
    } else if upper < q {
        r.verdict = Verdict::Fail;
        r.reason = format!(
            "{share}{straddle}; {conf} upper bound {} < {qp}",
            percent(upper)
        );
    } else {
        let heading_pass = k as f64 / n as f64 >= q;
        let probes = if heading_pass {
            trials_to_decide(k, n, false, |k, n| lower_bound(k, n, c) >= q)
        } else if ((k + s) as f64 / n as f64) < q {
            trials_to_decide(k + s, n, true, |k, n| upper_bound(k, n, c) < q)
        } else {
            None
        };
        r.need_more = need(probes, n, covered_secs);
        let tail = match &r.need_more {
            Some(m) => need_more_text(m, n, "probes"),
            None if s > 0 && !heading_pass => format!(
                "the samples within the histogram's resolution of {t} keep it open; a threshold off a bucket edge, or more probes, would decide"
            ),
            None => "the observed fraction sits too close to the objective for any practical number of probes to decide".to_owned(),
        };
        r.reason = format!(
            "{share}{straddle}; {conf} bounds {}..{} include {qp}: {tail}",
            percent(lower),
            percent(upper)
        );
    }
    r
}

pub(super) fn read_ratio(o: &Objective, e: &Evidence, at_most: f64, covered_secs: f64) -> Reading {
    let c = e.counters;
    let (x, n, what, of) = match o.indicator {
        Indicator::Loss(None) => (c.lost, c.received + c.lost, "loss", "probes"),
        Indicator::Loss(Some(crate::objective::Direction::Forward)) => (
            c.lost_forward,
            c.received + c.lost,
            "forward loss",
            "probes",
        ),
        Indicator::Loss(Some(crate::objective::Direction::Reverse)) => (
            c.lost_reverse,
            c.received + c.lost,
            "reverse loss",
            "probes",
        ),
        Indicator::Duplicates => (c.duplicated, c.received, "duplicates", "replies"),
        Indicator::Reorders => (c.reordered, c.received, "reordering", "replies"),
        _ => (c.late, c.received + c.lost, "late replies", "probes"),
    };
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
    };
    if n == 0 {
        r.reason = format!("no {of} resolved");
        return r;
    }
    let lower = lower_bound(x, n, o.judging.confidence);
    let upper = upper_bound(x, n, o.judging.confidence);
    r.bound = Some(Bound {
        lower: Some(lower),
        upper: Some(upper),
        confidence: o.judging.confidence,
    });
    let share = format!(
        "{what} {} ({} of {} {of})",
        r.value_text,
        count(x),
        count(n)
    );
    let limit = percent(at_most);
    if upper <= at_most {
        r.verdict = Verdict::Pass;
        r.reason = format!("{share}; {conf} upper bound {} <= {limit}", percent(upper));
    } else if lower > at_most {
        r.verdict = Verdict::Fail;
        r.reason = format!("{share}; {conf} lower bound {} > {limit}", percent(lower));
    } else {
        let p = x as f64 / n as f64;
        let cf = o.judging.confidence;
        let probes = if p < at_most {
            trials_to_decide(x, n, true, |k, n| upper_bound(k, n, cf) <= at_most)
        } else if p > at_most {
            trials_to_decide(x, n, false, |k, n| lower_bound(k, n, cf) > at_most)
        } else {
            None
        };
        r.need_more = need(probes, n, covered_secs);
        let tail = match &r.need_more {
            Some(m) => need_more_text(m, n, of),
            None => format!("the observed {what} sits too close to {limit} to decide"),
        };
        r.reason = format!(
            "{share}; {conf} bounds {}..{} include {limit}: {tail}",
            percent(lower),
            percent(upper)
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
            percent(lower),
            percent(want)
        );
    } else if upper < want {
        r.verdict = Verdict::Fail;
        r.reason = format!(
            "{share}; {conf} upper bound {} < {}",
            percent(upper),
            percent(want)
        );
    } else {
        r.reason = format!(
            "{share}; {conf} bounds {}..{} include {}: more tests needed",
            percent(lower),
            percent(upper),
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

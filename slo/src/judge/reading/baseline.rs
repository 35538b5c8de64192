//! An objective against a baseline window: the window's quantile or ratio no worse than the
//! baseline's by a margin.

use crate::evidence::{Distribution, Evidence};
use crate::objective::{Objective, Quantile};
use crate::stats::{lower_bound, upper_bound};
use crate::text::{duration, percent, percent_beside};

use super::ratio::ratio_counts;
use crate::judge::{count, Bound, Reading, Verdict};

/// Against a baseline window: the window's value may exceed the baseline's by at most the
/// margin. Each side is bounded exactly (order statistics for a quantile, Clopper-Pearson
/// for a ratio) at half the error allowance, so the two together hold at the confidence:
/// pass only when the window's upper bound is within the margin of the baseline's lower
/// bound, fail only when its lower bound is beyond the margin of the baseline's upper one.
pub(in crate::judge) fn read_no_worse(
    o: &Objective,
    e: &Evidence,
    quantile: Option<Quantile>,
    margin: crate::objective::Margin,
) -> Reading {
    let c = 1.0 - (1.0 - o.judging.confidence) / 2.0;
    let conf = percent(o.judging.confidence);
    let mut r = Reading::open();
    let Some(q) = quantile else {
        let none = xcbench_snapshot::Counters::default();
        let (now, before) = match (
            ratio_counts(o.indicator, &e.counters),
            ratio_counts(o.indicator, e.baseline_counters.as_ref().unwrap_or(&none)),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(disagree), _) | (_, Err(disagree)) => {
                r.reason = disagree.to_string();
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

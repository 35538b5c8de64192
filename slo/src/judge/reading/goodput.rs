//! Goodput of scheduled throughput tests: a census (`min`) or a bound on the share of tests
//! at the rate.

use crate::evidence::Evidence;
use crate::objective::{Objective, Quantile};
use crate::stats::{lower_bound, upper_bound};
use crate::text::{percent, percent_beside, rate};

use crate::judge::{Bound, Reading, Verdict};

pub(in crate::judge) fn read_goodput(
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
        statistic: format!("fraction of tests >= {limit}"),
        observed: (n > 0).then(|| k as f64 / n as f64),
        value: (n > 0).then_some(slowest),
        value_text: if n > 0 {
            format!("slowest {}", rate(slowest))
        } else {
            "-".to_owned()
        },
        samples: n,
        ..Reading::open()
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

//! Ratio objectives: loss (overall, or per direction with losses of unknown direction),
//! duplicates, reorders, late replies.

use crate::evidence::Evidence;
use crate::objective::{Indicator, Objective};
use crate::stats::{lower_bound, lower_bound_dispersed, upper_bound, upper_bound_dispersed};
use crate::text::{percent, percent_beside};

use super::{clustering, trials_dispersed};
use crate::judge::{count, need, need_more_text, Bound, Reading, Verdict};

/// A ratio's counts: what is certainly counted (`x` of `n`, for a fail) and the worst case
/// the data allows (`x_worst` of `n_worst`, for a pass). They differ for directional loss
/// when some losses have no direction.
pub(super) struct RatioCounts {
    pub(super) x: u64,
    pub(super) n: u64,
    pub(super) x_worst: u64,
    pub(super) n_worst: u64,
    /// Losses of unknown direction, for the reason text.
    pub(super) unattributed: u64,
}

/// Counters that contradict each other: more losses with a direction than losses (a snapshot
/// carrying the losses missing, its directions present).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the source's counts do not add up: {} lost forward and {} in reverse of {} lost (a snapshot missing?)",
    count(*.forward),
    count(*.reverse),
    count(*.lost)
)]
pub(super) struct CountsDisagree {
    forward: u64,
    reverse: u64,
    lost: u64,
}

/// The counts of a ratio objective, unless the counters contradict each other.
pub(super) fn ratio_counts(
    indicator: Indicator,
    c: &xcbench_snapshot::Counters,
) -> Result<RatioCounts, CountsDisagree> {
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
                return Err(CountsDisagree {
                    forward: c.lost_forward,
                    reverse: c.lost_reverse,
                    lost: c.lost,
                });
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

pub(in crate::judge) fn read_ratio(
    o: &Objective,
    e: &Evidence,
    at_most: f64,
    covered_secs: f64,
) -> Reading {
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
        statistic: format!("{what} ratio"),
        observed,
        value: observed,
        value_text: observed.map_or_else(|| "-".to_owned(), percent),
        samples: n,
        ..Reading::open()
    };
    let k = match counts {
        Ok(k) => k,
        Err(disagree) => {
            r.reason = disagree.to_string();
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

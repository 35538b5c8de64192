//! What each kind of objective's statistic says, before the data-quality guards, each as a
//! [`Reading`] with its exact bound and the probes that would decide it.
//!
//! # Layout
//! - `latency`: a latency quantile (samples within the threshold, straddling ones against a
//!   pass) and the RTT increase under load.
//! - `ratio`: loss, duplicates, reorders, late; directional loss with losses of unknown
//!   direction.
//! - `goodput`: scheduled throughput tests.
//! - `baseline`: a quantile or a ratio against a baseline window.
//! - this file: what they share: dispersion from the slots, and the probes that decide at it.

mod baseline;
mod goodput;
mod latency;
mod ratio;

pub(super) use baseline::read_no_worse;
pub(super) use goodput::read_goodput;
pub(super) use latency::{read_increase, read_latency};
pub(super) use ratio::read_ratio;

use crate::stats::{dispersion, trials_to_decide};

use super::count;

/// The dispersion of per-slot counts `(bad, of)` when they show any (phi > 1), and the text
/// that says so: "; the losses cluster in time (dispersion 60 over 360 slots): worth 600
/// independent probes, the bounds widened to match".
pub(super) fn clustering(
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
pub(super) fn trials_dispersed(
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

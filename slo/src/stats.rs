//! Exact binomial (Clopper-Pearson) bounds on a fraction, and how many more trials would
//! decide a question the current ones leave open.
//!
//! The bounds are one-sided at the confidence level asked for: with 95%, a "pass" drawn from
//! a lower bound is wrong at most 5% of the time when the true fraction sits just below the
//! objective (and the same for "fail" from an upper bound), for independent trials. Probes a
//! few milliseconds apart on one path are not that: [`dispersion`] estimates from per-slot
//! counts how much less they are worth, and the `_dispersed` bounds take it into account.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients: about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let mut a = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..100_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b), a, b > 0.
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The fraction converges fast below (a + 1) / (a + b + 2); above, use the symmetry.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The x with I_x(a, b) = p (bisection: monotone, 100 halvings reach f64's resolution).
fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if incomplete_beta(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-15 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The fraction's lower bound at `confidence` after `k` successes in `n` trials.
pub fn lower_bound(k: u64, n: u64, confidence: f64) -> f64 {
    lower_bound_of(k as f64, n as f64, confidence)
}

/// The fraction's upper bound at `confidence` after `k` successes in `n` trials.
pub fn upper_bound(k: u64, n: u64, confidence: f64) -> f64 {
    upper_bound_of(k as f64, n as f64, confidence)
}

/// [`lower_bound`] over counts divided by the dispersion `phi` (an effective sample: the
/// quasi-binomial widening; `phi` = 1 is the exact bound).
pub fn lower_bound_dispersed(k: u64, n: u64, phi: f64, confidence: f64) -> f64 {
    lower_bound_of(k as f64 / phi, n as f64 / phi, confidence)
}

/// [`upper_bound`] over counts divided by the dispersion `phi`.
pub fn upper_bound_dispersed(k: u64, n: u64, phi: f64, confidence: f64) -> f64 {
    upper_bound_of(k as f64 / phi, n as f64 / phi, confidence)
}

fn lower_bound_of(k: f64, n: f64, confidence: f64) -> f64 {
    if k <= 0.0 || n <= 0.0 {
        return 0.0;
    }
    let k = k.min(n);
    beta_quantile(1.0 - confidence, k, n - k + 1.0)
}

fn upper_bound_of(k: f64, n: f64, confidence: f64) -> f64 {
    if n <= 0.0 || k >= n {
        return 1.0;
    }
    beta_quantile(confidence, k + 1.0, n - k)
}

/// Fewest slots holding trials from which [`dispersion`] estimates anything.
pub const MIN_DISPERSION_SLOTS: usize = 10;

/// How much more the per-slot counts `(x_i, n_i)` vary than independent trials would:
/// Pearson's chi-square over its degrees of freedom, the quasi-binomial dispersion phi.
/// Probes seconds apart on one path are lost (or slow) together in a burst or an outage, so
/// `n` of them carry the information of about `n / phi` independent ones. Slots holding less
/// than half the median slot's trials are left out: the part-filled slots where a run starts
/// or stops, whose losses (declared a timeout after the send) and replies do not line up.
/// At least 1 (never narrower than the exact bound), with the slots it used; `None` from
/// fewer than [`MIN_DISPERSION_SLOTS`] slots, or when every trial went one way.
pub fn dispersion(slots: impl IntoIterator<Item = (u64, u64)>) -> Option<(f64, usize)> {
    let slots: Vec<(u64, u64)> = slots.into_iter().filter(|&(_, n)| n > 0).collect();
    let mut sizes: Vec<u64> = slots.iter().map(|s| s.1).collect();
    sizes.sort_unstable();
    let median = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
    let slots: Vec<(f64, f64)> = slots
        .into_iter()
        .filter(|&(_, n)| n.saturating_mul(2) >= median)
        .map(|(x, n)| (x.min(n) as f64, n as f64))
        .collect();
    if slots.len() < MIN_DISPERSION_SLOTS {
        return None;
    }
    let (x, n) = slots
        .iter()
        .fold((0.0, 0.0), |(x, n), s| (x + s.0, n + s.1));
    let p = x / n;
    if p <= 0.0 || p >= 1.0 {
        return None;
    }
    let chi2: f64 = slots
        .iter()
        .map(|&(x, n)| (x - n * p).powi(2) / (n * p * (1.0 - p)))
        .sum();
    Some(((chi2 / (slots.len() - 1) as f64).max(1.0), slots.len()))
}

/// The most trials this module searches for (beyond it, "too close to decide").
pub const MAX_TRIALS: u64 = 1_000_000_000;

/// The fewest trials `n' >= n` at which the observed fraction `k / n`, kept as it is,
/// would give `decides(k', n')`; `None` past [`MAX_TRIALS`]. `round_up` rounds k' up
/// (use it when more successes hurt the decision sought).
pub fn trials_to_decide(
    k: u64,
    n: u64,
    round_up: bool,
    decides: impl Fn(u64, u64) -> bool,
) -> Option<u64> {
    if n == 0 {
        return None;
    }
    let p = k as f64 / n as f64;
    let at = |m: u64| {
        let x = p * m as f64;
        let k = if round_up { x.ceil() } else { x.floor() } as u64;
        decides(k.min(m), m)
    };
    if at(n) {
        return Some(n);
    }
    // Exponential search for a deciding count, then bisection (the bounds tighten
    // monotonically with n at a fixed fraction, up to rounding).
    let mut hi = n.max(1);
    loop {
        hi = hi.saturating_mul(2);
        if hi > MAX_TRIALS {
            if at(MAX_TRIALS) {
                hi = MAX_TRIALS;
                break;
            }
            return None;
        }
        if at(hi) {
            break;
        }
    }
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if at(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    #[test]
    fn the_gamma_and_beta_functions_match_known_values() {
        close(ln_gamma(1.0), 0.0, 1e-13);
        close(ln_gamma(5.0), 24f64.ln(), 1e-12);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-12);
        close(ln_gamma(1e6), 12_815_504.569_147_61, 1e-5);
        // I_x(1, 1) = x; I_x(a, 1) = x^a; I_0.5(a, a) = 0.5.
        close(incomplete_beta(0.3, 1.0, 1.0), 0.3, 1e-14);
        close(incomplete_beta(0.9, 3.0, 1.0), 0.729, 1e-13);
        close(incomplete_beta(0.5, 40.0, 40.0), 0.5, 1e-12);
        close(incomplete_beta(0.5, 2e5, 2e5), 0.5, 1e-9);
    }

    #[test]
    fn clopper_pearson_bounds_match_closed_forms() {
        // All n trials succeed: the lower bound is (1 - c)^(1/n); 299 probes all within
        // the threshold show p99 at 95% (the "rule of three": 3/n).
        for n in [1u64, 10, 299, 5_000] {
            close(lower_bound(n, n, 0.95), 0.05f64.powf(1.0 / n as f64), 1e-12);
            close(
                upper_bound(0, n, 0.95),
                1.0 - 0.05f64.powf(1.0 / n as f64),
                1e-12,
            );
        }
        assert!(lower_bound(299, 299, 0.95) >= 0.99);
        assert!(lower_bound(298, 298, 0.95) < 0.99);
        assert_eq!(lower_bound(0, 10, 0.95), 0.0);
        assert_eq!(upper_bound(10, 10, 0.95), 1.0);
        // 50 of 100 at 95% one-sided, from exact binomial tail sums computed apart
        // (P(X >= 50 | p) = 0.05 and P(X <= 50 | p) = 0.05, bisected in Python).
        close(lower_bound(50, 100, 0.95), 0.413_621_714_630_911_8, 1e-10);
        close(upper_bound(50, 100, 0.95), 0.586_378_285_369_088_2, 1e-10);
        // Large counts stay accurate and ordered.
        let (lo, hi) = (
            lower_bound(9_990_000, 10_000_000, 0.95),
            upper_bound(9_990_000, 10_000_000, 0.95),
        );
        assert!(lo < 0.999 && 0.999 < hi && hi - lo < 4e-5, "{lo} {hi}");
    }

    #[test]
    fn the_bounds_hold_their_confidence_by_simulation() {
        // A fixed-seed LCG: 2,000 experiments of 200 trials at p = 0.97; the 95% lower
        // bound must exceed p in at most about 5% of them (exact bounds are conservative).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut wrong = 0;
        for _ in 0..2_000 {
            let k = (0..200).filter(|_| next() < 0.97).count() as u64;
            if lower_bound(k, 200, 0.95) > 0.97 {
                wrong += 1;
            }
        }
        assert!(wrong <= 100, "{wrong} of 2000 lower bounds above the truth");
    }

    #[test]
    fn trials_to_decide_finds_the_smallest_deciding_count() {
        // No failures: p99 at 95% needs 299 probes.
        let n = trials_to_decide(50, 50, false, |k, n| lower_bound(k, n, 0.95) >= 0.99);
        assert_eq!(n, Some(299));
        // A fraction sitting on the objective never decides.
        assert_eq!(
            trials_to_decide(99, 100, false, |k, n| lower_bound(k, n, 0.95) > 0.99),
            None
        );
        // Already decided: the count itself.
        assert_eq!(
            trials_to_decide(1_000, 1_000, false, |k, n| lower_bound(k, n, 0.95) >= 0.99),
            Some(1_000)
        );
    }

    #[test]
    fn dispersion_sees_a_burst_and_not_independent_losses() {
        // 360 slots of 100 probes: one 6 s burst (60 lost in one slot) against the same 60
        // spread over the hour.
        let burst = (0..360).map(|i| (if i == 100 { 60 } else { 0 }, 100));
        let (phi, used) = dispersion(burst).unwrap();
        assert_eq!(used, 360);
        assert!((55.0..65.0).contains(&phi), "{phi}");
        let spread = (0..360).map(|i| (u64::from(i % 6 == 0), 100));
        assert_eq!(dispersion(spread), Some((1.0, 360)));
        // A part-filled slot at either end is left out.
        let edges = (0..12).map(|i| match i {
            0 => (0, 30),
            11 => (30, 30),
            _ => (u64::from(i % 2 == 0), 100),
        });
        assert_eq!(dispersion(edges), Some((1.0, 10)));
        assert_eq!(dispersion((0..9).map(|_| (1, 10))), None, "too few slots");
        assert_eq!(dispersion((0..20).map(|_| (0, 10))), None, "nothing varies");
        // The review's example: 60 of 36,000 fails a 0.1% objective as if iid (lower bound
        // 0.133%), and with phi = 60 (600 effective probes, 1 loss) it cannot.
        assert!(lower_bound(60, 36_000, 0.95) > 0.001);
        let lo = lower_bound_dispersed(60, 36_000, phi, 0.95);
        let hi = upper_bound_dispersed(60, 36_000, phi, 0.95);
        assert!(lo < 0.001 && hi > 0.001, "{lo} {hi}");
        assert_eq!(
            lower_bound_dispersed(60, 36_000, 1.0, 0.95),
            lower_bound(60, 36_000, 0.95)
        );
    }
}

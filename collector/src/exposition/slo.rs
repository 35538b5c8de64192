//! SLO families, when the collector is given an SLO file: per series and latency metric the
//! exact count of samples at or below each SLO threshold (and the straddling ones), from
//! the full-resolution histograms, so Prometheus rules need no bucket edge; and each
//! objective's verdict, reasons and bounds as last judged from the history.

use xcbench_slo::judge::ReasonCode;
use xcbench_slo::objective::Comparison;
use xcbench_slo::text::threshold_label;
use xcbench_slo::Verdict;

use super::catalog;
use super::series::series_labels;
use super::{seconds, Families, Labels};
use crate::store::{SeriesKey, SeriesState, Store};

pub(super) fn push_families(f: &mut Families, store: &Store) {
    for (key, s) in store.series_range(f.series) {
        push_series(f, key, s);
    }
    if !f.first {
        return;
    }
    let Some((at, results)) = store.verdicts() else {
        return;
    };
    f.gauge(
        &catalog::SLO_EVALUATED_TIMESTAMP_SECONDS,
        Labels::new(&[]),
        seconds(*at),
    );
    for r in results {
        let key = if r.key { "true" } else { "false" };
        for v in [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive] {
            f.gauge(
                &catalog::SLO_VERDICT,
                Labels::new(&[
                    ("objective", r.name.as_str()),
                    ("key", key),
                    ("verdict", v.as_str()),
                ]),
                if r.verdict == v { 1.0 } else { 0.0 },
            );
        }
        for code in ReasonCode::ALL {
            f.gauge(
                &catalog::SLO_REASON,
                Labels::new(&[("objective", r.name.as_str()), ("reason", code.as_str())]),
                if r.codes.contains(&code) { 1.0 } else { 0.0 },
            );
        }
        // Fractions and ratios only: an increase under load is bounded in seconds.
        let ratio = matches!(
            r.comparison,
            Comparison::Ratio { .. }
                | Comparison::Goodput { .. }
                | Comparison::NoWorse { quantile: None, .. }
        ) || matches!(r.comparison, Comparison::Latency { .. })
            && r.indicator != xcbench_slo::objective::Indicator::RttIncreaseUnderLoad;
        if let (Some(b), true) = (r.bound, ratio) {
            if let Some(l) = b.lower {
                f.gauge(
                    &catalog::SLO_BOUND,
                    Labels::new(&[("objective", r.name.as_str()), ("side", "lower")]),
                    l,
                );
            }
            if let Some(u) = b.upper {
                f.gauge(
                    &catalog::SLO_BOUND,
                    Labels::new(&[("objective", r.name.as_str()), ("side", "upper")]),
                    u,
                );
            }
        }
    }
}

/// One series' exact counts against the SLO thresholds, per latency metric.
pub(super) fn push_series(f: &mut Families, key: &SeriesKey, s: &SeriesState) {
    for (metric, m) in &s.metrics {
        if m.within.is_empty() {
            continue;
        }
        let mut pairs = series_labels(key);
        pairs.push(("metric", metric.as_str()));
        let base = Labels::new(&pairs);
        f.counter(&catalog::SLO_SAMPLES_TOTAL, base, m.count);
        for w in &m.within {
            let threshold = threshold_label(w.threshold_ns);
            let threshold = [("threshold", threshold.as_str())];
            let labels = base.and(&threshold);
            f.counter(&catalog::SLO_WITHIN_TOTAL, labels, w.at_most);
            f.counter(&catalog::SLO_STRADDLING_TOTAL, labels, w.straddling);
        }
    }
}

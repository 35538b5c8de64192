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
use super::{label, seconds, with, Families};
use crate::store::Store;

pub(super) fn push_families(f: &mut Families, store: &Store) {
    for (key, s) in store.series() {
        for (metric, m) in &s.metrics {
            if m.within.is_empty() {
                continue;
            }
            let base = with(series_labels(key), &[("metric", metric.as_str())]);
            f.counter(&catalog::SLO_SAMPLES_TOTAL, base.clone(), m.count);
            for w in &m.within {
                let labels = with(
                    base.clone(),
                    &[("threshold", &threshold_label(w.threshold_ns))],
                );
                f.counter(&catalog::SLO_WITHIN_TOTAL, labels.clone(), w.at_most);
                f.counter(&catalog::SLO_STRADDLING_TOTAL, labels, w.straddling);
            }
        }
    }
    let Some((at, results)) = store.verdicts() else {
        return;
    };
    f.gauge(
        &catalog::SLO_EVALUATED_TIMESTAMP_SECONDS,
        vec![],
        seconds(*at),
    );
    for r in results {
        let key = if r.key { "true" } else { "false" };
        for v in [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive] {
            f.gauge(
                &catalog::SLO_VERDICT,
                vec![
                    label("objective", &r.name),
                    label("key", key),
                    label("verdict", v.as_str()),
                ],
                if r.verdict == v { 1.0 } else { 0.0 },
            );
        }
        for code in ReasonCode::ALL {
            f.gauge(
                &catalog::SLO_REASON,
                vec![label("objective", &r.name), label("reason", code.as_str())],
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
                    vec![label("objective", &r.name), label("side", "lower")],
                    l,
                );
            }
            if let Some(u) = b.upper {
                f.gauge(
                    &catalog::SLO_BOUND,
                    vec![label("objective", &r.name), label("side", "upper")],
                    u,
                );
            }
        }
    }
}

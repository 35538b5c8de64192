//! The gate's fail over several key objectives. Each objective fails at its own confidence;
//! with K of them sitting at their limits, the chance that at least one fails falsely grows
//! to about K times the single one (Bonferroni bounds it: the gate's fail is at least
//! `1 - sum(1 - c_i)` sure). `family: holm` holds the gate's fail to each objective's
//! confidence as a whole, by Holm's step-down: with m objectives left, a fail stands only if
//! it still fails at confidence `1 - (1 - c)/m`; those that do leave m smaller for the rest,
//! and the first round in which none does ends it: the rest are not fails for the gate.
//! A gate's pass needs every key objective to pass, so it is already at each confidence.

use serde::Serialize;

use super::{judge, ObjectiveResult, Verdict};
use crate::objective::Objective;
use crate::text::percent;

/// How the key objectives' fails combine into the gate's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Each objective at its own confidence (`family: none`, the default).
    #[default]
    PerObjective,
    /// Holm's step-down over the key objectives (`family: holm`).
    Holm,
}

/// How sure a gate's fail is over key objectives at these confidences: at least
/// `1 - sum(1 - c_i)` (Bonferroni), or the least of them under Holm.
pub(super) fn fail_confidence(family: Family, keys: impl Iterator<Item = f64>) -> f64 {
    match family {
        Family::Holm => keys.fold(1.0, f64::min),
        Family::PerObjective => (1.0 - keys.map(|c| 1.0 - c).sum::<f64>()).max(0.0),
    }
}

/// Holm's step-down over the key objectives that failed: each result judged again from its
/// evidence at the confidence its step asks for; a fail that does not hold there becomes
/// that judgement (inconclusive), with the reason. `objectives[i]` is `results[i]`'s.
pub fn holm(objectives: &[Objective], results: &mut [ObjectiveResult], now: u64) {
    let keys = objectives.iter().filter(|o| o.key).count();
    let mut candidates: Vec<usize> = (0..results.len())
        .filter(|&i| objectives[i].key && results[i].verdict == Verdict::Fail)
        .collect();
    // Passes and inconclusives are hypotheses too: m counts every key objective.
    let mut m = keys;
    while !candidates.is_empty() && m > 0 {
        let mut held = Vec::new();
        let mut rest = Vec::new();
        for &i in &candidates {
            let o = &objectives[i];
            let level = 1.0 - (1.0 - o.judging.confidence) / m as f64;
            let again = judge(&at_confidence(o, level), results[i].evidence.clone(), now);
            if again.verdict == Verdict::Fail {
                held.push((i, level));
            } else {
                rest.push((i, level, again));
            }
        }
        if held.is_empty() {
            for (i, level, again) in rest {
                let alone = percent(objectives[i].judging.confidence);
                let mut r = again;
                r.reasons.insert(
                    0,
                    format!(
                        "a fail at {alone} alone, not for the gate as a whole: with {m} key objectives left, Holm's step asks for {}",
                        percent(level)
                    ),
                );
                r.confidence_tested = Some(level);
                results[i] = r;
            }
            return;
        }
        m -= held.len();
        for (i, level) in held {
            results[i].confidence_tested = Some(level);
            results[i].reasons.push(format!(
                "a fail for the gate as a whole too (Holm: still a fail at {})",
                percent(level)
            ));
        }
        candidates = rest.into_iter().map(|(i, _, _)| i).collect();
    }
}

fn at_confidence(o: &Objective, confidence: f64) -> Objective {
    let mut o = o.clone();
    o.judging.confidence = confidence.min(0.999_999_999);
    o
}

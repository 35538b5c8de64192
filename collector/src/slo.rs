//! The SLO file at the collector: the verdicts it judges on a timer from its own history
//! ([`judge_all`]), for `/metrics`. How a history answer becomes evidence, which selections
//! an objective reads and the thresholds the store counts exactly are the `slo` crate's
//! (the gate reads the same answers over HTTP).

use xcbench_slo::evidence::{combine, from_history};
use xcbench_slo::{judge, ObjectiveResult, SloFile};
use xcbench_snapshot::{HdrCodecError, Metric};

use crate::db::{History, HistoryError};

/// Why the collector could not judge an objective.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("a merged histogram does not decode")]
    Histogram(#[from] HdrCodecError),
}

/// Every objective of `slo` judged at `now` from the history, taking the lock for each
/// query only, so ingest and scrapes wait for one query at most.
pub fn judge_all(
    history: &std::sync::Mutex<History>,
    slo: &SloFile,
    now: u64,
    lowest: impl Fn(u64) -> u64 + Copy,
) -> Result<Vec<ObjectiveResult>, JudgeError> {
    let mut results = Vec::with_capacity(slo.objectives.len());
    for o in &slo.objectives {
        let (from, to) = o.window.range(now);
        let metrics: Vec<Metric> = o.indicator.metric().into_iter().collect();
        let thresholds: Vec<u64> = o.threshold_ns().into_iter().collect();
        let read = |from: u64, to: u64| -> Result<xcbench_slo::Evidence, JudgeError> {
            let mut found = Vec::new();
            for select in o.selections() {
                let span = crate::store::history::Span { from, to, now };
                let answer = history.lock().unwrap_or_else(|p| p.into_inner()).query(
                    &select.selection(),
                    span,
                    &metrics,
                    &thresholds,
                    lowest,
                )?;
                found.push(from_history(o, answer)?);
            }
            Ok(combine(found))
        };
        let mut evidence = read(from, to)?;
        if let Some(b) = o.baseline {
            let (bf, bt) = b.range((from, to));
            evidence = xcbench_slo::evidence::against(evidence, read(bf, bt)?);
        }
        results.push(judge(o, evidence, now));
    }
    Ok(results)
}

//! The collector's history as the gate's source: one `GET /api/v1/history` per objective
//! (two for an increase under load), answered with the merged full-resolution histogram,
//! the counters, the slots, the agents' gaps and the throughput tests, and turned into
//! [`Evidence`]. Nothing is re-bucketed: the histogram arrives as the agents recorded it.

use xcbench_slo::evidence::{combine, from_history, Evidence};
use xcbench_slo::objective::Objective;
use xcbench_snapshot::history::HistoryAnswer;

use super::{Api, SourceError};

/// A collector's history API.
pub struct CollectorSource {
    api: Api,
}

impl CollectorSource {
    pub fn new(url: &str, https: &super::HttpsTrust) -> Result<CollectorSource, SourceError> {
        Ok(CollectorSource {
            api: Api::new("collector", url, https)?,
        })
    }

    /// Everything the history holds for `o` between `from` and `to` (Unix ns): one query,
    /// or two for an increase under load (loaded, then idle), read the way the collector
    /// itself reads its history (`xcbench_slo::evidence::from_history`).
    pub async fn evidence(
        &self,
        o: &Objective,
        from: u64,
        to: u64,
    ) -> Result<Evidence, SourceError> {
        let threshold = o.threshold_ns();
        let mut found = Vec::new();
        for select in o.selections() {
            let answer = self.query(&select.pairs(), o, from, to, threshold).await?;
            found.push(
                from_history(o, answer).map_err(|source| SourceError::Histogram {
                    kind: self.api.kind,
                    url: self.api.base.clone(),
                    source,
                })?,
            );
        }
        Ok(combine(found))
    }

    async fn query(
        &self,
        labels: &[(&'static str, String)],
        o: &Objective,
        from: u64,
        to: u64,
        threshold_ns: Option<u64>,
    ) -> Result<HistoryAnswer, SourceError> {
        let mut params: Vec<(&str, String)> = labels.to_vec();
        let seconds = super::unix_seconds;
        params.push(("from", seconds(from)));
        params.push(("to", seconds(to)));
        if let Some(m) = o.indicator.metric() {
            params.push(("metric", m.to_string()));
        }
        if let Some(t) = threshold_ns {
            params.push(("le", seconds(t)));
        }
        let (status, body) = self.api.get("/api/v1/history", &params).await?;
        if !status.is_success() {
            return Err(self.api.status_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| self.api.answer_error(e))
    }
}

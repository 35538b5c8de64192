//! The collector's history as the gate's source: one `GET /api/v1/history` per objective
//! (two for an increase under load), answered with the merged full-resolution histogram,
//! the counters, the slots, the agents' gaps and the throughput tests, and turned into
//! [`Evidence`]. Nothing is re-bucketed: the histogram arrives as the agents recorded it.
//!
//! The collectors of a sharded mesh are asked the same query each, and their answers
//! merged into the one a single collector holding every snapshot would give
//! ([`HistoryAnswer::merge`]): sums, buckets and gaps exact.

use xcbench_slo::evidence::{combine, from_history, Evidence};
use xcbench_slo::objective::Objective;
use xcbench_snapshot::history::HistoryAnswer;

use super::{Api, SourceError};

/// The history APIs of one collector, or of every collector of a sharded mesh.
pub struct CollectorSource {
    apis: Vec<Api>,
}

impl CollectorSource {
    /// One collector.
    pub fn new(url: &str, https: &super::HttpsTrust) -> Result<CollectorSource, SourceError> {
        CollectorSource::sharded(&[(url.to_owned(), https.clone())])
    }

    /// Several collectors, each with how it is known.
    pub fn sharded(
        collectors: &[(String, super::HttpsTrust)],
    ) -> Result<CollectorSource, SourceError> {
        Ok(CollectorSource {
            apis: collectors
                .iter()
                .map(|(url, https)| Api::new("collector", url, https))
                .collect::<Result<_, _>>()?,
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
            let mut answers = Vec::with_capacity(self.apis.len());
            for api in &self.apis {
                answers.push(query(api, &select.pairs(), o, from, to, threshold).await?);
            }
            let urls = || {
                self.apis
                    .iter()
                    .map(|a| a.base.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            };
            let answer = HistoryAnswer::merge(answers).map_err(|e| SourceError::Query {
                kind: "collector",
                url: urls(),
                message: format!("answers could not be merged: {e}"),
            })?;
            found.push(
                from_history(o, answer).map_err(|source| SourceError::Histogram {
                    kind: "collector",
                    url: urls(),
                    source,
                })?,
            );
        }
        Ok(combine(found))
    }
}

/// One collector's answer for `labels` over `[from, to]`.
async fn query(
    api: &Api,
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
    let (status, body) = api.get("/api/v1/history", &params).await?;
    if !status.is_success() {
        return Err(api.status_error(status, &body));
    }
    serde_json::from_slice(&body).map_err(|e| api.answer_error(e))
}

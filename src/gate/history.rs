//! The collector's history as the gate's source: one `GET /api/v1/history` per objective
//! (two for an increase under load), answered with the merged full-resolution histogram,
//! the counters, the slots, the agents' gaps and the throughput tests, and turned into
//! [`Evidence`]. Nothing is re-bucketed: the histogram arrives as the agents recorded it.

use std::time::Duration;

use xcbench_collector::slo;
use xcbench_collector::store::history::HistoryAnswer;
use xcbench_slo::evidence::Evidence;
use xcbench_slo::objective::Objective;

use super::SourceError;

const KIND: &str = "collector";

/// A collector's history API.
pub struct CollectorSource {
    base: String,
    client: reqwest::Client,
}

/// How long one query may take (a year of 10-minute slots answers in well under this).
pub(super) const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl CollectorSource {
    pub fn new(url: &str) -> Result<CollectorSource, SourceError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SourceError::Url {
                kind: KIND,
                url: url.into(),
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(QUERY_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|source| SourceError::Unreachable {
                kind: KIND,
                url: url.into(),
                source,
            })?;
        Ok(CollectorSource { base, client })
    }

    /// Everything the history holds for `o` between `from` and `to` (Unix ns): one query,
    /// or two for an increase under load (loaded, then idle), read the way the collector
    /// itself reads its history (`xcbench_collector::slo`).
    pub async fn evidence(
        &self,
        o: &Objective,
        from: u64,
        to: u64,
    ) -> Result<Evidence, SourceError> {
        let threshold = slo::threshold_ns(o);
        let mut found = Vec::new();
        for select in slo::selections(o) {
            let answer = self.query(&select.pairs(), o, from, to, threshold).await?;
            found.push(
                slo::evidence(o, answer).map_err(|source| SourceError::Histogram {
                    kind: KIND,
                    url: self.base.clone(),
                    source,
                })?,
            );
        }
        let mut found = found.into_iter();
        let first = found.next().unwrap_or_default();
        Ok(match found.next() {
            Some(idle) => slo::with_baseline(first, idle),
            None => first,
        })
    }

    async fn query(
        &self,
        labels: &[(&'static str, String)],
        o: &Objective,
        from: u64,
        to: u64,
        threshold_ns: Option<u64>,
    ) -> Result<HistoryAnswer, SourceError> {
        let url = format!("{}/api/v1/history", self.base);
        let mut params: Vec<(&str, String)> = labels.to_vec();
        let seconds = |ns: u64| format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
        params.push(("from", seconds(from)));
        params.push(("to", seconds(to)));
        if let Some(m) = o.indicator.metric() {
            params.push(("metric", m.to_string()));
        }
        if let Some(t) = threshold_ns {
            params.push(("le", seconds(t)));
        }
        let unreachable = |source| SourceError::Unreachable {
            kind: KIND,
            url: self.base.clone(),
            source,
        };
        let response = self
            .client
            .get(&url)
            .query(&params)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(SourceError::Status {
                kind: KIND,
                url: self.base.clone(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body)
                    .trim()
                    .chars()
                    .take(500)
                    .collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|source| SourceError::Answer {
            kind: KIND,
            url: self.base.clone(),
            source,
        })
    }
}

//! The collector's history as the gate's source: one `GET /api/v1/history` per objective
//! (two for an increase under load), answered with the merged full-resolution histogram,
//! the counters, the slots, the agents' gaps and the throughput tests, and turned into
//! [`Evidence`]. Nothing is re-bucketed: the histogram arrives as the agents recorded it.

use std::time::Duration;

use xcbench_collector::store::history::HistoryAnswer;
use xcbench_slo::evidence::{AgentRecord, Distribution, Evidence, Gap, SlotPoint, TestRecord};
use xcbench_slo::objective::{Comparison, Direction, Indicator, LoadChoice, Objective};
use xcbench_snapshot::{Flow, LatencyHistogram, ThroughputOutcome};

/// Why the collector's history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("collector {url}: not a base URL such as http://127.0.0.1:9862")]
    Url { url: String },
    #[error("collector {url}: cannot be reached")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("collector {url}: answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("collector {url}: the answer is not a history answer")]
    Answer {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("collector {url}: a histogram in the answer does not decode")]
    Histogram {
        url: String,
        #[source]
        source: xcbench_snapshot::HdrCodecError,
    },
}

/// A collector's history API.
pub struct CollectorSource {
    base: String,
    client: reqwest::Client,
}

/// How long one query may take (a year of 10-minute slots answers in well under this).
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl CollectorSource {
    pub fn new(url: &str) -> Result<CollectorSource, SourceError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SourceError::Url { url: url.into() });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(QUERY_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|source| SourceError::Unreachable {
                url: url.into(),
                source,
            })?;
        Ok(CollectorSource { base, client })
    }

    /// Everything the history holds for `o` between `from` and `to` (Unix ns).
    pub async fn evidence(
        &self,
        o: &Objective,
        from: u64,
        to: u64,
    ) -> Result<Evidence, SourceError> {
        let threshold = match o.comparison {
            Comparison::Latency { at_most_ns, .. } => Some(at_most_ns),
            _ => None,
        };
        let mut select = o.select.clone();
        if o.indicator == Indicator::RttIncreaseUnderLoad {
            select.load = LoadChoice::Bench;
        }
        let answer = self.query(&select.pairs(), o, from, to, threshold).await?;
        let mut evidence = self.to_evidence(o, answer)?;
        if o.indicator == Indicator::RttIncreaseUnderLoad {
            select.load = LoadChoice::Idle;
            let idle = self.query(&select.pairs(), o, from, to, threshold).await?;
            let idle = self.to_evidence(o, idle)?;
            evidence.baseline = Some(idle.distribution);
            evidence.series += idle.series;
            // The window's coverage, agents and their gaps are those of both.
            evidence.covered = match (evidence.covered, idle.covered) {
                (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
                (a, b) => a.or(b),
            };
            for a in idle.agents {
                if !evidence.agents.iter().any(|x| x.agent == a.agent) {
                    evidence.agents.push(a);
                }
            }
        }
        Ok(evidence)
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
            url: self.base.clone(),
            source,
        })
    }

    fn to_evidence(&self, o: &Objective, a: HistoryAnswer) -> Result<Evidence, SourceError> {
        let distribution = match a.metrics.first() {
            Some(m) if m.count > 0 => {
                let h = LatencyHistogram::decode_base64(&m.hdr).map_err(|source| {
                    SourceError::Histogram {
                        url: self.base.clone(),
                        source,
                    }
                })?;
                let layout = h.inner();
                Distribution::from_buckets(h.buckets(), |v| layout.lowest_equivalent(v))
            }
            _ => Distribution::default(),
        };
        let direction = match o.indicator {
            Indicator::Goodput(d) => d,
            _ => None,
        };
        let tests = a
            .tests
            .iter()
            .filter(|t| match direction {
                None => true,
                Some(Direction::Forward) => t.flow == Flow::Forward,
                Some(Direction::Reverse) => t.flow == Flow::Reverse,
            })
            .map(|t| TestRecord {
                started_unix_ns: t.started_unix_ns,
                outcome: match t.outcome {
                    ThroughputOutcome::Ok => "ok",
                    ThroughputOutcome::Refused => "refused",
                    ThroughputOutcome::Failed => "failed",
                }
                .to_owned(),
                goodput_bits_per_second: if t.receiver_ns > 0 {
                    t.receiver_bytes as f64 * 8.0 / (t.receiver_ns as f64 / 1e9)
                } else {
                    0.0
                },
            })
            .collect();
        Ok(Evidence {
            from_unix_ns: a.from_unix_ns,
            to_unix_ns: a.to_unix_ns,
            covered: a.covered_from_unix_ns.zip(a.covered_to_unix_ns),
            series: a.series.len(),
            counters: a.counters,
            distribution,
            baseline: None,
            slots: a
                .slots
                .iter()
                .map(|s| SlotPoint {
                    start_unix_ns: s.start_ns,
                    slot_ns: s.slot_ns,
                    sent: s.sent,
                    lost: s.lost,
                    samples: s.samples,
                    sum_ns: s.sum_ns,
                    within: s.within,
                })
                .collect(),
            clock_error_max_ns: a.clock_error_max_ns,
            agents: a
                .agents
                .iter()
                .map(|g| AgentRecord {
                    agent: g.agent.clone(),
                    last_report_unix_ns: g.last_report_unix_ns,
                    gaps: g
                        .gaps
                        .iter()
                        .map(|x| Gap {
                            from_unix_ns: x.from_unix_ns,
                            to_unix_ns: x.to_unix_ns,
                            dropped_snapshots: x.dropped_snapshots,
                        })
                        .collect(),
                })
                .collect(),
            tests,
            source_notes: Vec::new(),
        })
    }
}

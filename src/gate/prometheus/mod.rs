//! A Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir) as the gate's source. Counts
//! are counter differences between the window's ends (instant queries at `from` and `to`,
//! no `increase()` extrapolation). Latency objectives read the collector's exact
//! within-threshold counters (`xcbench_slo_within_total`, present when the collector was
//! given the SLO file); without them, the histogram buckets around the threshold (classic
//! `_bucket` series, or native histograms where the collector remote-writes them), and the
//! samples of a bucket holding the threshold count as straddling: that is the whole error
//! the bucket edges add, and the verdict never rests on it. The coverage and the series over
//! the window come from range queries; the agents' dropped snapshots and restarts from the
//! collector's per-agent counters. What Prometheus does not carry (each scheduled test's
//! goodput, loss directions dated with the losses) makes the objective inconclusive.
//!
//! - this file: the queries, the counts and the verdict's evidence.
//! - `buckets`: a latency family's buckets over the window, classic or native.

use std::collections::BTreeMap;

use serde::Deserialize;
use xcbench_slo::evidence::{
    AgentRecord, Bucket, Distribution, Evidence, Gap, SlotPoint, WithinCount,
};
use xcbench_slo::objective::{Indicator, Objective, Select};
use xcbench_slo::text::{duration, threshold_label};
use xcbench_snapshot::metrics::{
    AGENT_LAST_REPORT_TIMESTAMP_SECONDS, AGENT_RESTARTS_TOTAL, AGENT_SNAPSHOTS_DROPPED_TOTAL,
    CLOCK_ERROR_SECONDS, IPDV_SECONDS, ONE_WAY_DELAY_SECONDS, PROBES_ABANDONED_TOTAL,
    PROBES_DUPLICATED_TOTAL, PROBES_LATE_TOTAL, PROBES_LOST_TOTAL, PROBES_RECEIVED_TOTAL,
    PROBES_REORDERED_TOTAL, PROBES_SENT_TOTAL, PROBES_SKIPPED_TOTAL, RTT_SECONDS,
    SLO_SAMPLES_TOTAL, SLO_STRADDLING_TOTAL, SLO_WITHIN_TOTAL,
};
use xcbench_snapshot::{Counters, LatencyHistogram, Metric};

use super::{unix_seconds as at, Api, SourceError};

mod buckets;

use buckets::Form;

const KIND: &str = "prometheus";

/// A Prometheus HTTP API.
pub struct PrometheusSource {
    api: Api,
}

/// Prometheus' answer: its `data` (a query's result, or the series API's label sets).
#[derive(Deserialize)]
struct Answer<T> {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default = "Option::default")]
    data: Option<T>,
}

#[derive(Deserialize)]
struct Data {
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
    /// A native histogram's value at the query's time (instant queries).
    #[serde(default)]
    histogram: Option<(f64, NativeHistogram)>,
    /// A native histogram's samples (a range selector's).
    #[serde(default)]
    histograms: Vec<(f64, NativeHistogram)>,
}

/// Prometheus' JSON of a native histogram: its buckets as (boundary rule, lower, upper,
/// count), bounds and counts as strings.
#[derive(Deserialize)]
struct NativeHistogram {
    #[serde(default)]
    buckets: Vec<(u8, String, String, String)>,
}

/// Prometheus' default lookback: an instant query sees a series' last sample up to this
/// long before.
const LOOKBACK_S: u64 = 300;

/// A counter selector as read at the window's two ends, each series at its last sample:
/// at `from` within the lookback before it, at `to` within the window and that lookback. A
/// series that ended inside the window (an agent that moved to another collector of a
/// sharded mesh, whose series there carry that collector's external label; a pair that
/// left) still counts what it counted until then, and one that began inside it counts
/// from 0.
fn ends(expr: &str, from: u64, to: u64) -> (String, String) {
    let window_s = to.saturating_sub(from).div_ceil(1_000_000_000);
    (
        format!("last_over_time({expr}[{LOOKBACK_S}s])"),
        format!("last_over_time({expr}[{}s])", window_s + LOOKBACK_S),
    )
}

/// `{src_cloud="azure",protocol="udp",...}`: the objective's selection as matchers.
fn matchers(select: &Select, extra: &[(&str, String)]) -> String {
    let mut pairs: Vec<String> = select
        .pairs()
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .chain(extra.iter().map(|(k, v)| (*k, v.clone())))
        .map(|(k, v)| matcher(k, &v))
        .collect();
    pairs.sort();
    format!("{{{}}}", pairs.join(","))
}

/// `k="v"`, the value escaped as PromQL reads it.
fn matcher(k: &str, v: &str) -> String {
    format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The classic histogram family of a latency metric, and its direction label.
fn family(metric: Metric) -> (&'static str, Option<&'static str>) {
    match metric {
        Metric::Rtt => (RTT_SECONDS.name(), None),
        Metric::OneWayForward => (ONE_WAY_DELAY_SECONDS.name(), Some("forward")),
        Metric::OneWayReverse => (ONE_WAY_DELAY_SECONDS.name(), Some("reverse")),
        Metric::IpdvForward => (IPDV_SECONDS.name(), Some("forward")),
        Metric::IpdvReverse => (IPDV_SECONDS.name(), Some("reverse")),
    }
}

impl PrometheusSource {
    pub fn new(url: &str, https: &super::HttpsTrust) -> Result<PrometheusSource, SourceError> {
        Ok(PrometheusSource {
            api: Api::new(KIND, url, https)?,
        })
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<Series>, SourceError> {
        Ok(self
            .answer::<Data>(path, params)
            .await?
            .map(|d| d.result)
            .unwrap_or_default())
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Option<T>, SourceError> {
        let (status, body) = self.api.get(path, params).await?;
        // Prometheus answers errors (400, 422, 503) in the same JSON shape.
        let answer: Answer<T> = serde_json::from_slice(&body).map_err(|e| {
            if status.is_success() {
                self.api.answer_error(e)
            } else {
                self.api.status_error(status, &body)
            }
        })?;
        if answer.status != "success" {
            return Err(SourceError::Query {
                kind: KIND,
                url: self.api.base.clone(),
                message: answer.error.unwrap_or(answer.status),
            });
        }
        Ok(answer.data)
    }

    /// The label sets of the series `selector` matches between `from` and `to` (Unix ns).
    async fn series_of(
        &self,
        selector: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<BTreeMap<String, String>>, SourceError> {
        Ok(self
            .answer(
                "/api/v1/series",
                &[
                    ("match[]", selector.to_owned()),
                    ("start", at(from)),
                    ("end", at(to)),
                ],
            )
            .await?
            .unwrap_or_default())
    }

    /// An instant query's series at `t` (Unix ns).
    async fn instant(&self, query: &str, t: u64) -> Result<Vec<Series>, SourceError> {
        self.get(
            "/api/v1/query",
            &[("query", query.to_owned()), ("time", at(t))],
        )
        .await
    }

    /// The one value of a `sum(...)` at `t`; 0 when nothing matched.
    async fn scalar(&self, query: &str, t: u64) -> Result<f64, SourceError> {
        Ok(self
            .instant(query, t)
            .await?
            .first()
            .and_then(|s| s.value.as_ref())
            .and_then(|v| v.1.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .unwrap_or(0.0))
    }

    /// `sum(expr)` at `to` minus at `from` (resets are found apart, with `resets()`), each
    /// series read at its last sample by then ([`ends`]).
    async fn delta(&self, expr: &str, from: u64, to: u64) -> Result<u64, SourceError> {
        let (at_from, at_to) = ends(expr, from, to);
        let (a, b) = (
            self.scalar(&format!("sum({at_from})"), from).await?,
            self.scalar(&format!("sum({at_to})"), to).await?,
        );
        Ok((b - a).max(0.0).round() as u64)
    }

    /// Points of `sum(expr)` every `step_s` seconds over the window.
    async fn range(
        &self,
        expr: &str,
        from: u64,
        to: u64,
        step_s: u64,
    ) -> Result<Vec<(u64, f64)>, SourceError> {
        let series = self
            .get(
                "/api/v1/query_range",
                &[
                    ("query", format!("sum({expr})")),
                    ("start", at(from)),
                    ("end", at(to)),
                    ("step", format!("{step_s}s")),
                ],
            )
            .await?;
        Ok(series
            .first()
            .map(|s| {
                s.values
                    .iter()
                    .filter_map(|(t, v)| Some(((t * 1e9) as u64, v.parse::<f64>().ok()?)))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// What Prometheus holds for `o` between `from` and `to` (Unix ns).
    pub async fn evidence(
        &self,
        o: &Objective,
        from: u64,
        to: u64,
    ) -> Result<Evidence, SourceError> {
        let mut notes = Vec::new();
        if let Indicator::Goodput(_) = o.indicator {
            return Ok(Evidence {
                from_unix_ns: from,
                to_unix_ns: to,
                unsupported: Some(
                    "each scheduled test's goodput is not in Prometheus (only the last test's): judge goodput from the collector"
                        .to_owned(),
                ),
                ..Evidence::default()
            });
        }
        if let Indicator::Loss(Some(_)) = o.indicator {
            return Ok(Evidence {
                from_unix_ns: from,
                to_unix_ns: to,
                unsupported: Some(
                    "loss directions are learnt when a later probe is answered and Prometheus dates them then, maybe in another window (the collector's history dates them with the losses): judge directional loss from the collector"
                        .to_owned(),
                ),
                ..Evidence::default()
            });
        }
        let selects = o.selections();
        let mut found = Vec::new();
        for select in &selects {
            found.push(self.one(o, select, from, to, &mut notes).await?);
        }
        let mut e = xcbench_slo::evidence::combine(found);
        notes.dedup();
        e.source_notes = notes;
        Ok(e)
    }

    async fn one(
        &self,
        o: &Objective,
        select: &Select,
        from: u64,
        to: u64,
        notes: &mut Vec<String>,
    ) -> Result<Evidence, SourceError> {
        let m = matchers(select, &[]);
        let mut c = Counters::default();
        for (name, target) in [
            (&PROBES_SENT_TOTAL, &mut c.sent),
            (&PROBES_RECEIVED_TOTAL, &mut c.received),
            (&PROBES_LOST_TOTAL, &mut c.lost),
            (&PROBES_DUPLICATED_TOTAL, &mut c.duplicated),
            (&PROBES_REORDERED_TOTAL, &mut c.reordered),
            (&PROBES_LATE_TOTAL, &mut c.late),
            (&PROBES_SKIPPED_TOTAL, &mut c.skipped),
            (&PROBES_ABANDONED_TOTAL, &mut c.abandoned),
        ] {
            *target = self.delta(&format!("{name}{m}"), from, to).await?;
        }
        let window_s = (to.saturating_sub(from) / 1_000_000_000).max(1);
        // Series seen anywhere in the window, not only at its end; agents seen there or
        // within one window's length before it (as the collector's history lists them): an
        // agent whose series went stale, even just before the window, must be found silent.
        let series = self
            .instant(
                &format!("count_over_time({PROBES_SENT_TOTAL}{m}[{window_s}s])"),
                to,
            )
            .await?;
        let lookback_s = 2 * window_s;
        let seen = self
            .instant(
                &format!("count_over_time({PROBES_SENT_TOTAL}{m}[{lookback_s}s])"),
                to,
            )
            .await?;
        let agents: Vec<String> = {
            let mut a: Vec<String> = seen
                .iter()
                .filter_map(|s| s.metric.get("src_agent").cloned())
                .collect();
            a.sort();
            a.dedup();
            a
        };
        let mut records = Vec::new();
        for agent in &agents {
            let q = format!(
                "max(max_over_time({AGENT_LAST_REPORT_TIMESTAMP_SECONDS}{{agent=\"{}\"}}[{lookback_s}s]))",
                agent.replace('"', "")
            );
            let last = self.instant(&q, to).await?;
            // No figure at all says nothing about the agent: leave it out rather than
            // call it silent since 1970.
            if let Some(last) = last
                .first()
                .and_then(|s| s.value.as_ref())
                .and_then(|v| v.1.parse::<f64>().ok())
            {
                // Snapshots that never arrived and restarts inside the window: how many,
                // not when.
                let label = format!("{{agent=\"{}\"}}", agent.replace('"', ""));
                let dropped = self
                    .delta(&format!("{AGENT_SNAPSHOTS_DROPPED_TOTAL}{label}"), from, to)
                    .await?;
                let restarts = self
                    .delta(&format!("{AGENT_RESTARTS_TOTAL}{label}"), from, to)
                    .await?;
                let gaps = if dropped + restarts > 0 {
                    vec![Gap {
                        from_unix_ns: from,
                        to_unix_ns: to,
                        dropped_snapshots: dropped,
                        restarts,
                        elsewhere_snapshots: 0,
                    }]
                } else {
                    Vec::new()
                };
                records.push(AgentRecord {
                    agent: agent.clone(),
                    last_report_unix_ns: (last * 1e9) as u64,
                    gaps,
                });
            }
        }
        // A reset inside the window (a collector restarted without a data_dir) makes the
        // ends' difference meaningless: say so rather than count it.
        let resets = self
            .scalar(
                &format!("sum(resets({PROBES_SENT_TOTAL}{m}[{window_s}s]))"),
                to,
            )
            .await?;
        // Between scrapes a range query repeats the last sample: a step shorter than the
        // scrape interval would read as a hole. The interval is read from the data: the
        // most samples any selected series holds over the last five minutes (or the
        // window).
        let look_s = window_s.min(300);
        let scraped = self
            .scalar(
                &format!("max(count_over_time({PROBES_SENT_TOTAL}{m}[{look_s}s]))"),
                to,
            )
            .await?;
        let scrape_s = if scraped >= 2.0 {
            (look_s as f64 / (scraped - 1.0)).ceil() as u64
        } else {
            1
        };
        let step_s = (window_s / 240).max(scrape_s).max(1);
        let sent_points = self
            .range(&format!("{PROBES_SENT_TOTAL}{m}"), from, to, step_s)
            .await?;
        let lost_points = self
            .range(&format!("{PROBES_LOST_TOTAL}{m}"), from, to, step_s)
            .await?;
        let covered = match (sent_points.first(), sent_points.last()) {
            (Some(a), Some(b)) => Some((a.0, b.0.max(a.0 + step_s * 1_000_000_000))),
            _ => None,
        };
        let clock_error_max_ns = {
            let q = format!("max(max_over_time({CLOCK_ERROR_SECONDS}{m}[{window_s}s]))");
            let v = self.instant(&q, to).await?;
            v.first()
                .and_then(|s| s.value.as_ref())
                .and_then(|v| v.1.parse::<f64>().ok())
                .map(|s| (s * 1e9) as u64)
        };
        let mut e = Evidence {
            unsupported: (resets > 0.0).then(|| {
                format!(
                    "the counters were reset {resets} times inside the window (the collector restarted without a data_dir): the counts cannot be differenced; judge from the collector, or a window after the restart"
                )
            }),
            from_unix_ns: from,
            to_unix_ns: to,
            covered,
            series: series.len(),
            counters: c,
            clock_error_max_ns,
            agents: records,
            ..Evidence::default()
        };
        let lost: BTreeMap<u64, f64> = lost_points.into_iter().collect();
        let mut slots: Vec<SlotPoint> = sent_points
            .windows(2)
            .map(|w| {
                let sent = (w[1].1 - w[0].1).max(0.0) as u64;
                let lost = match (lost.get(&w[0].0), lost.get(&w[1].0)) {
                    (Some(a), Some(b)) => (b - a).max(0.0) as u64,
                    _ => 0,
                };
                SlotPoint {
                    start_unix_ns: w[0].0,
                    slot_ns: w[1].0 - w[0].0,
                    sent,
                    // Not queried: the probes sent, less those lost, stand in for it.
                    received: sent.saturating_sub(lost),
                    lost,
                    samples: 0,
                    sum_ns: 0,
                    within: 0,
                }
            })
            .collect();
        let Some(metric) = o.indicator.metric() else {
            e.slots = slots;
            return Ok(e);
        };
        // The distribution from the store's histograms (coarse: it draws the report and
        // gives the value), and the counts within the threshold.
        let (fam, dir) = family(metric);
        let bm = match dir {
            Some(d) => matchers(select, &[("direction", d.to_owned())]),
            None => m.clone(),
        };
        let (form, bands) = match self.latency_bands(fam, &bm, from, to).await? {
            Ok(found) => found,
            Err(why) => {
                e.unsupported = Some(why.to_string());
                e.slots = slots;
                return Ok(e);
            }
        };
        let layout = LatencyHistogram::new();
        e.distribution = Distribution {
            buckets: bands
                .iter()
                .filter(|b| b.count > 0)
                .map(|b| Bucket {
                    low_ns: b.lowest_held(&layout),
                    high_ns: b.highest_held(&layout),
                    count: b.count,
                })
                .collect(),
        };
        let Some(threshold) = o.threshold_ns() else {
            e.slots = slots;
            return Ok(e);
        };
        if o.indicator == Indicator::RttIncreaseUnderLoad {
            notes.push(format!(
                "the increase under load is read from the {} ({fam}): quantiles to a bucket's width",
                form.buckets()
            ));
            e.slots = slots;
            return Ok(e);
        }
        let exact = matchers(
            select,
            &[
                ("metric", metric.as_str().to_owned()),
                ("threshold", threshold_label(threshold)),
            ],
        );
        let has_exact = !self
            .instant(&format!("{SLO_WITHIN_TOTAL}{exact}"), to)
            .await?
            .is_empty();
        let sm = matchers(select, &[("metric", metric.as_str().to_owned())]);
        let histogram_samples = e.distribution.count();
        let exact_samples = match has_exact {
            true => Some(
                self.delta(&format!("{SLO_SAMPLES_TOTAL}{sm}"), from, to)
                    .await?,
            ),
            false => None,
        };
        // Exact counters missing at `from` are no count: a collector given the SLO file (or
        // a threshold) since starts them at the series' lifetime totals, and a difference
        // from nothing would judge all of it. They must exist at both ends and count the
        // samples the histogram counts; otherwise the classic buckets judge.
        // A series new inside the window starts every counter at 0 (both missing at
        // `from` is fine); one that had samples at `from` must have had this threshold's
        // count too.
        let within_at_from = has_exact
            && self
                .scalar(&format!("count({SLO_WITHIN_TOTAL}{exact})"), from)
                .await?
                == self
                    .scalar(&format!("count({SLO_SAMPLES_TOTAL}{sm})"), from)
                    .await?;
        let exact_samples = match exact_samples {
            Some(n) if n != histogram_samples || !within_at_from => {
                let how = if n != histogram_samples {
                    format!("{n} samples counted where the histogram counted {histogram_samples}")
                } else {
                    format!(
                        "{SLO_WITHIN_TOTAL} for {} missing at its start",
                        duration(threshold)
                    )
                };
                notes.push(format!(
                    "the exact counters did not exist through the whole window (the collector was given the SLO file, or this threshold, inside it: {how}), so the {} judge",
                    form.buckets()
                ));
                None
            }
            other => other,
        };
        if let Some(samples) = exact_samples {
            let within = self
                .delta(&format!("{SLO_WITHIN_TOTAL}{exact}"), from, to)
                .await?;
            let straddling = self
                .delta(&format!("{SLO_STRADDLING_TOTAL}{exact}"), from, to)
                .await?;
            e.exact_within = Some(WithinCount {
                samples,
                within,
                straddling,
            });
            let within_points: BTreeMap<u64, f64> = self
                .range(&format!("{SLO_WITHIN_TOTAL}{exact}"), from, to, step_s)
                .await?
                .into_iter()
                .collect();
            let sample_points: BTreeMap<u64, f64> = self
                .range(&format!("{SLO_SAMPLES_TOTAL}{sm}"), from, to, step_s)
                .await?
                .into_iter()
                .collect();
            for s in &mut slots {
                let end = s.start_unix_ns + s.slot_ns;
                let d = |p: &BTreeMap<u64, f64>| match (p.get(&s.start_unix_ns), p.get(&end)) {
                    (Some(a), Some(b)) => (b - a).max(0.0) as u64,
                    _ => 0,
                };
                s.samples = d(&sample_points);
                s.within = d(&within_points);
            }
            notes.push(format!(
                "counts within {} from the collector's exact counters ({SLO_WITHIN_TOTAL}); the value shown is the {}' quantile",
                duration(threshold),
                form.buckets()
            ));
        } else {
            // The histogram's buckets. The collector files a sample under an edge when its
            // 0.1%-wide HdrHistogram bucket starts at or below it, so a bucket is certainly
            // within the threshold only when everything its edge can hold is; a bucket
            // holding values on both sides of the threshold straddles it.
            let (within, straddling) = e.distribution.within(threshold);
            e.exact_within = Some(WithinCount {
                samples: histogram_samples,
                within,
                straddling,
            });
            let why = match has_exact {
                true => "the exact counters cannot be differenced",
                false => "no exact counters (give the collector the SLO file)",
            };
            let band = match form {
                Form::Classic => {
                    let lower = bands
                        .iter()
                        .filter(|b| b.highest_held(&layout) <= threshold)
                        .map(|b| b.upper)
                        .next_back()
                        .unwrap_or(0);
                    let upper = bands
                        .iter()
                        .find(|b| b.highest_held(&layout) > threshold)
                        .map_or(u64::MAX, |b| b.upper);
                    format!(
                        "the samples filed between the edges {} and {}",
                        duration(lower),
                        if upper == u64::MAX {
                            "+Inf".to_owned()
                        } else {
                            duration(upper)
                        },
                    )
                }
                Form::Native => {
                    format!("the samples of the bucket holding {}", duration(threshold))
                }
            };
            notes.push(format!(
                "{why} for {}: {}; {band} ({straddling}) count as straddling",
                duration(threshold),
                form.buckets(),
            ));
        }
        e.slots = slots;
        Ok(e)
    }
}

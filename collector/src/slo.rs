//! The SLO file at the collector, and the one reading of the history every judge shares:
//! an objective's selection as a history [`Selection`], a [`HistoryAnswer`] as the gate's
//! [`Evidence`] ([`evidence`]; `xcbench gate` reads the same answer over HTTP), the idle
//! baseline an increase under load needs ([`combine`]), the thresholds the store
//! counts exactly ([`thresholds`]), and the verdicts the collector judges on a timer
//! ([`judge_all`]).

use std::collections::BTreeMap;

use xcbench_slo::evidence::{AgentRecord, Distribution, Evidence, Gap, SlotPoint, TestRecord};
use xcbench_slo::objective::{Comparison, Direction, Indicator, LoadChoice, Objective, Select};
use xcbench_slo::{judge, ObjectiveResult, SloFile};
use xcbench_snapshot::{Flow, HdrCodecError, LatencyHistogram, Metric, ThroughputOutcome};

use crate::db::{History, HistoryError};
use crate::store::history::{HistoryAnswer, Selection};

/// The history selection of an objective's labels (`load` as given; `Any` reads both).
pub fn selection(s: &Select) -> Selection {
    Selection {
        src_agent: s.src_agent.clone(),
        src_cloud: s.src_cloud.clone(),
        src_region: s.src_region.clone(),
        dst_agent: s.dst_agent.clone(),
        dst_cloud: s.dst_cloud.clone(),
        dst_region: s.dst_region.clone(),
        protocol: s.protocol,
        kind: s.kind,
        load: s.load.load(),
    }
}

/// The selections an objective reads: one, or for an increase under load the loaded
/// samples and then the idle ones.
pub fn selections(o: &Objective) -> Vec<Select> {
    if o.indicator != Indicator::RttIncreaseUnderLoad {
        return vec![o.select.clone()];
    }
    [LoadChoice::Bench, LoadChoice::Idle]
        .into_iter()
        .map(|load| Select {
            load,
            ..o.select.clone()
        })
        .collect()
}

/// The latency threshold an objective counts samples against.
pub fn threshold_ns(o: &Objective) -> Option<u64> {
    match o.comparison {
        Comparison::Latency { at_most_ns, .. } => Some(at_most_ns),
        _ => None,
    }
}

/// What a history answer says about `o`.
pub fn evidence(o: &Objective, a: HistoryAnswer) -> Result<Evidence, HdrCodecError> {
    let distribution = match a.metrics.first() {
        Some(m) if m.count > 0 => {
            let h = LatencyHistogram::decode_base64(&m.hdr)?;
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
        exact_within: None,
        unsupported: None,
    })
}

/// One objective's evidence from what its [`selections`] found: the one, or for an increase
/// under load the loaded samples with the idle ones as baseline (the coverage and agents
/// of both; the series and counters stay the loaded ones, which the guards divide).
pub fn combine(found: Vec<Evidence>) -> Evidence {
    let mut found = found.into_iter();
    let first = found.next().unwrap_or_default();
    match found.next() {
        Some(idle) => with_baseline(first, idle),
        None => first,
    }
}

fn with_baseline(mut load: Evidence, idle: Evidence) -> Evidence {
    load.baseline = Some(idle.distribution);
    load.covered = match (load.covered, idle.covered) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, b) => a.or(b),
    };
    for a in idle.agents {
        if !load.agents.iter().any(|x| x.agent == a.agent) {
            load.agents.push(a);
        }
    }
    load
}

/// The latency thresholds of an SLO file, per metric: what the store counts exactly.
pub fn thresholds(slo: &SloFile) -> BTreeMap<Metric, Vec<u64>> {
    let mut out: BTreeMap<Metric, Vec<u64>> = BTreeMap::new();
    for o in &slo.objectives {
        if let (Some(metric), Some(t)) = (o.indicator.metric(), threshold_ns(o)) {
            if o.indicator != Indicator::RttIncreaseUnderLoad {
                out.entry(metric).or_default().push(t);
            }
        }
    }
    out
}

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
        let thresholds: Vec<u64> = threshold_ns(o).into_iter().collect();
        let mut found = Vec::new();
        for select in selections(o) {
            let answer = history.lock().unwrap_or_else(|p| p.into_inner()).query(
                &selection(&select),
                from,
                to,
                &metrics,
                &thresholds,
                lowest,
            )?;
            found.push(evidence(o, answer)?);
        }
        results.push(judge(o, combine(found), now));
    }
    Ok(results)
}

//! One answer from the answers of several collectors of a sharded mesh to the same query.
//!
//! Every snapshot is taken by exactly one collector (an agent reports to one at a time, and
//! moves to another only when a request could not reach its own: nothing was delivered),
//! so the merge is a sum: counters and slots add, histograms add bucket by bucket (lossless,
//! HdrHistogram addition), within-threshold counts add, quantiles are read again from the
//! merged histogram the way a collector reads them. An agent's gap in one collector that
//! another collector filled (the snapshots it reported there) is no gap of the merged
//! answer; its dropped snapshots and restarts stay.

use std::collections::BTreeMap;

use super::{AgentSeen, HistoryAnswer, MetricAnswer, SlotPoint, Within, ANSWER_QUANTILES};
use crate::histogram::{quantile_of, HdrCodecError, LatencyHistogram};

/// Why answers could not be merged.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("no answer to merge")]
    Empty,
    #[error("metric {index} is {found:?} in one answer and {expected:?} in another: the answers are to different queries")]
    Metrics {
        index: usize,
        expected: String,
        found: String,
    },
    #[error("metric {metric}: histogram {source}")]
    Histogram {
        metric: String,
        source: HdrCodecError,
    },
}

impl HistoryAnswer {
    /// The answer one collector holding every snapshot would have given (see the module
    /// comment); one answer is returned as it is.
    pub fn merge(answers: Vec<HistoryAnswer>) -> Result<HistoryAnswer, MergeError> {
        let mut answers = answers.into_iter();
        let mut merged = answers.next().ok_or(MergeError::Empty)?;
        let rest: Vec<HistoryAnswer> = answers.collect();
        if rest.is_empty() {
            return Ok(merged);
        }
        let mut histograms = merged
            .metrics
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        let mut slots: BTreeMap<(u64, u64), SlotPoint> = merged
            .slots
            .iter()
            .map(|s| ((s.start_ns, s.slot_ns), *s))
            .collect();
        // Agents by id, with the answers (by index) that saw them.
        let mut agents: BTreeMap<String, (AgentSeen, usize)> = BTreeMap::new();
        for a in std::mem::take(&mut merged.agents) {
            agents.insert(a.agent.clone(), (a, 1));
        }
        for a in rest {
            merged.from_unix_ns = merged.from_unix_ns.min(a.from_unix_ns);
            merged.to_unix_ns = merged.to_unix_ns.max(a.to_unix_ns);
            merged.covered_from_unix_ns =
                min_some(merged.covered_from_unix_ns, a.covered_from_unix_ns);
            merged.covered_to_unix_ns = max_some(merged.covered_to_unix_ns, a.covered_to_unix_ns);
            for s in a.series {
                if !merged.series.contains(&s) {
                    merged.series.push(s);
                }
            }
            merged.counters.add(&a.counters);
            if a.metrics.len() != merged.metrics.len() {
                return Err(MergeError::Metrics {
                    index: a.metrics.len().min(merged.metrics.len()),
                    expected: format!("{} metrics", merged.metrics.len()),
                    found: format!("{} metrics", a.metrics.len()),
                });
            }
            for (i, m) in a.metrics.iter().enumerate() {
                let into = &mut merged.metrics[i];
                if into.metric != m.metric || !same_thresholds(&into.within, &m.within) {
                    return Err(MergeError::Metrics {
                        index: i,
                        expected: format!("{:?}", into.metric),
                        found: format!("{:?}", m.metric),
                    });
                }
                into.count += m.count;
                into.sum_ns = into.sum_ns.saturating_add(m.sum_ns);
                for (w, x) in into.within.iter_mut().zip(&m.within) {
                    w.at_most += x.at_most;
                    w.straddling += x.straddling;
                }
                histograms[i].add(&decode(m)?);
            }
            for s in a.slots {
                slots
                    .entry((s.start_ns, s.slot_ns))
                    .and_modify(|into| {
                        into.sent += s.sent;
                        into.received += s.received;
                        into.lost += s.lost;
                        into.samples += s.samples;
                        into.sum_ns = into.sum_ns.saturating_add(s.sum_ns);
                        into.within += s.within;
                    })
                    .or_insert(s);
            }
            merged.clock_error_max_ns = max_some(merged.clock_error_max_ns, a.clock_error_max_ns);
            for seen in a.agents {
                match agents.get_mut(&seen.agent) {
                    Some((into, answers)) => {
                        into.last_report_unix_ns =
                            into.last_report_unix_ns.max(seen.last_report_unix_ns);
                        into.gaps.extend(seen.gaps);
                        *answers += 1;
                    }
                    None => {
                        agents.insert(seen.agent.clone(), (seen, 1));
                    }
                }
            }
            merged.tests.extend(a.tests);
            for q in a.quiet {
                if !merged.quiet.contains(&q) {
                    merged.quiet.push(q);
                }
            }
            for s in a.scheduled {
                if !merged.scheduled.contains(&s) {
                    merged.scheduled.push(s);
                }
            }
        }
        for (m, h) in merged.metrics.iter_mut().zip(&histograms) {
            m.hdr = h.encode_base64();
            m.quantiles = ANSWER_QUANTILES
                .iter()
                .filter_map(|q| quantile_of(h.buckets(), m.count, *q).map(|v| (*q, v)))
                .collect();
        }
        merged.slots = slots.into_values().collect();
        // A series quiet in one collector that held data in another is not quiet.
        let series = &merged.series;
        merged.quiet.retain(|q| !series.contains(q));
        merged.tests.sort_by(|a, b| {
            (a.started_unix_ns, &a.src_agent, &a.dst_agent).cmp(&(
                b.started_unix_ns,
                &b.src_agent,
                &b.dst_agent,
            ))
        });
        merged.agents = agents
            .into_values()
            .map(|(mut a, answers)| {
                if answers > 1 {
                    // Another collector answered for this agent: what it reported there is
                    // in the merge, and a gap that was only that is no gap. (A restart inside
                    // such a gap is not told apart from the move: both drop nothing.)
                    a.gaps
                        .retain(|g| g.elsewhere_snapshots == 0 || g.dropped_snapshots > 0);
                    for g in &mut a.gaps {
                        g.elsewhere_snapshots = 0;
                    }
                }
                a.gaps.sort_by_key(|g| (g.from_unix_ns, g.to_unix_ns));
                a
            })
            .collect();
        Ok(merged)
    }
}

fn decode(m: &MetricAnswer) -> Result<LatencyHistogram, MergeError> {
    if m.hdr.is_empty() {
        return Ok(LatencyHistogram::new());
    }
    LatencyHistogram::decode_base64(&m.hdr).map_err(|source| MergeError::Histogram {
        metric: format!("{:?}", m.metric),
        source,
    })
}

fn same_thresholds(a: &[Within], b: &[Within]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.threshold_ns == y.threshold_ns)
}

fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a.max(b)
}

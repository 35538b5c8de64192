//! What a source hands the gate for one objective: the samples' distribution at full
//! resolution, the counters, the series over the window, the agents' reporting record and
//! the throughput tests. The collector's history, a Prometheus server and a local
//! measurement all reduce to this; judging it is the same code for all three. A history
//! answer becomes evidence here ([`from_history`]), and two selections' evidence one
//! ([`combine`]).

use serde::Serialize;
use xcbench_snapshot::history::HistoryAnswer;
use xcbench_snapshot::{Counters, Flow, HdrCodecError, LatencyHistogram, ThroughputOutcome};

use crate::objective::{Direction, Indicator, Objective};

/// One histogram bucket: every sample in it lies in `low..=high` (HdrHistogram's
/// equivalent range: 0.1% wide, or 512 ns at the bottom; a classic bucket's edges when a
/// source has only those; `high` = `u64::MAX` for an unbounded one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub low_ns: u64,
    pub high_ns: u64,
    pub count: u64,
}

/// A latency distribution as buckets in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Distribution {
    pub buckets: Vec<Bucket>,
}

impl Distribution {
    /// From (highest equivalent value, count) pairs and the layout's lowest-equivalent map.
    pub fn from_buckets(
        buckets: impl IntoIterator<Item = (u64, u64)>,
        lowest: impl Fn(u64) -> u64,
    ) -> Distribution {
        let mut buckets: Vec<Bucket> = buckets
            .into_iter()
            .filter(|(_, c)| *c > 0)
            .map(|(high_ns, count)| Bucket {
                low_ns: lowest(high_ns).min(high_ns),
                high_ns,
                count,
            })
            .collect();
        buckets.sort_by_key(|b| b.high_ns);
        Distribution { buckets }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }

    /// Samples certainly at or below `t`, and samples whose bucket straddles `t` (known to
    /// lie within the bucket's 0.1% of it, but not on which side).
    pub fn within(&self, t: u64) -> (u64, u64) {
        let (mut certain, mut straddling) = (0, 0);
        for b in &self.buckets {
            if b.high_ns <= t {
                certain += b.count;
            } else if b.low_ns <= t {
                straddling += b.count;
            }
        }
        (certain, straddling)
    }

    /// The value at quantile `q` as HdrHistogram reports it: the highest equivalent value
    /// of the bucket holding the sample of rank ceil(q * n).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for b in &self.buckets {
            seen += b.count;
            if seen >= rank {
                return Some(b.high_ns);
            }
        }
        self.buckets.last().map(|b| b.high_ns)
    }

    /// Distribution-free bounds on the `q` quantile at `confidence` each: the lower bound
    /// is the largest bucket edge below which the fraction is shown to be under `q`; the
    /// upper bound the smallest edge at or below which it is shown to reach `q` (`None`
    /// when the samples show no such edge).
    pub fn quantile_bounds(&self, q: f64, confidence: f64) -> (u64, Option<u64>) {
        let n = self.count();
        let (mut lower, mut upper) = (0, None);
        let mut cumulative = 0;
        for b in &self.buckets {
            // Below this bucket: `cumulative` samples.
            if crate::stats::upper_bound(cumulative, n, confidence) < q {
                lower = b.low_ns.saturating_sub(1).max(lower);
            }
            cumulative += b.count;
            if upper.is_none()
                && b.high_ns < u64::MAX
                && crate::stats::lower_bound(cumulative, n, confidence) >= q
            {
                upper = Some(b.high_ns);
            }
        }
        (lower, upper)
    }
}

/// A stretch of time in which an agent's data is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub from_unix_ns: u64,
    pub to_unix_ns: u64,
    /// Snapshots the agent dropped from its queue (a jump in its report sequence); 0 when
    /// the agent restarted (a new instance) and the gap is the time it was down.
    pub dropped_snapshots: u64,
    /// Restarts counted somewhere in this stretch when the source knows only how many, not
    /// when (Prometheus: the window); 0 from the history, whose gaps are the time down.
    pub restarts: u64,
    /// Snapshots the agent reported to another collector of a sharded mesh in this stretch,
    /// which the source does not hold (0 once the histories of every collector are merged).
    pub elsewhere_snapshots: u64,
}

/// An agent whose series an objective reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    pub agent: String,
    pub last_report_unix_ns: u64,
    /// Gaps that overlap the window.
    pub gaps: Vec<Gap>,
}

/// One slot of the window, summed over the selected series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlotPoint {
    pub start_unix_ns: u64,
    pub slot_ns: u64,
    pub sent: u64,
    /// Replies accepted and probes lost in the slot: the probes it resolved.
    #[serde(skip)]
    pub received: u64,
    pub lost: u64,
    /// Samples of the indicator's distribution, their exact sum, and how many lay at or
    /// below the objective's threshold.
    pub samples: u64,
    pub sum_ns: u64,
    pub within: u64,
}

/// One direction of a scheduled throughput test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestRecord {
    pub started_unix_ns: u64,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// Receiver bytes * 8 / receiver time; 0 when the test did not run.
    pub goodput_bits_per_second: f64,
}

/// Everything a source found for one objective.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// The range asked for, and the part the data covers.
    pub from_unix_ns: u64,
    pub to_unix_ns: u64,
    pub covered: Option<(u64, u64)>,
    /// Series the selection matched.
    pub series: usize,
    pub counters: Counters,
    /// The indicator's distribution (latency indicators).
    pub distribution: Distribution,
    /// The idle distribution an increase under load is measured against, or the baseline
    /// window's distribution (`no_worse_than` objectives).
    pub baseline: Option<Distribution>,
    /// The baseline window's counters (`no_worse_than` objectives).
    pub baseline_counters: Option<Counters>,
    pub slots: Vec<SlotPoint>,
    pub clock_error_max_ns: Option<u64>,
    pub agents: Vec<AgentRecord>,
    pub tests: Vec<TestRecord>,
    /// The samples within the objective's threshold counted by the source itself, when its
    /// distribution is coarser than the threshold (Prometheus: the collector's exact
    /// counters, or classic buckets around the threshold). The judge reads these instead of
    /// `distribution`, which then only draws the report and gives the value.
    pub exact_within: Option<WithinCount>,
    /// What the source itself says about the figures' exactness (e.g. Prometheus buckets);
    /// listed after the reasons.
    pub source_notes: Vec<String>,
    /// The source cannot judge this indicator at all (why): inconclusive.
    pub unsupported: Option<String>,
    /// Selected series that held data before the window and none in it, as
    /// `src -> dst protocol/kind`.
    pub quiet_series: Vec<String>,
    /// The fewest scheduled tests the window must hold (goodput), from the schedules the
    /// selected agents declare: a round every period, jittered by up to 10%, the first
    /// anywhere in the window's first period.
    pub expected_tests: Option<u64>,
}

/// Samples of a latency metric against one threshold, as a source counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WithinCount {
    pub samples: u64,
    /// Certainly at or below the threshold.
    pub within: u64,
    /// On neither side for sure (a bucket straddles the threshold).
    pub straddling: u64,
}

/// What a collector's history answer says about `o` (the collector's own judge and the
/// gate's collector source read it the same way).
pub fn from_history(o: &Objective, a: HistoryAnswer) -> Result<Evidence, HdrCodecError> {
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
    let expected_tests = direction_tests(&a, direction);
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
        baseline_counters: None,
        slots: a
            .slots
            .iter()
            .map(|s| SlotPoint {
                start_unix_ns: s.start_ns,
                slot_ns: s.slot_ns,
                sent: s.sent,
                received: s.received,
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
                        restarts: 0,
                        elsewhere_snapshots: x.elsewhere_snapshots,
                    })
                    .collect(),
            })
            .collect(),
        tests,
        source_notes: Vec::new(),
        exact_within: None,
        unsupported: None,
        quiet_series: a
            .quiet
            .iter()
            .map(|q| {
                format!(
                    "{} -> {} {}/{}",
                    q.src_agent, q.dst_agent, q.protocol, q.kind
                )
            })
            .collect(),
        expected_tests,
    })
}

/// The fewest tests the answer's schedules put in its window, for goodput in `direction`
/// (`None` for both): per declared direction, a round every period jittered by up to 10%
/// and the first anywhere in the first period, so at least `window / (1.1 period) - 1`.
fn direction_tests(a: &HistoryAnswer, direction: Option<Direction>) -> Option<u64> {
    let window = a.to_unix_ns.saturating_sub(a.from_unix_ns) as f64;
    let flows: Vec<u64> = a
        .scheduled
        .iter()
        .filter(|s| match direction {
            None => true,
            Some(Direction::Forward) => s.flow == Flow::Forward,
            Some(Direction::Reverse) => s.flow == Flow::Reverse,
        })
        .map(|s| ((window / (1.1 * s.every_ns.max(1) as f64)).floor() as u64).saturating_sub(1))
        .collect();
    (!flows.is_empty()).then(|| flows.iter().sum())
}

/// One objective's evidence from what its [`Objective::selections`] found: the one, or for an increase
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

/// `window`'s evidence with what `baseline` (the same objective over its baseline window)
/// found beside it.
pub fn against(mut window: Evidence, baseline: Evidence) -> Evidence {
    window.baseline = Some(baseline.distribution);
    window.baseline_counters = Some(baseline.counters);
    window
}

fn with_baseline(mut load: Evidence, idle: Evidence) -> Evidence {
    load.baseline = Some(idle.distribution);
    load.quiet_series.extend(idle.quiet_series);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_tells_certain_from_straddling_samples() {
        let d = Distribution::from_buckets([(1_000, 5), (2_001, 3), (3_000, 2)], |h| {
            if h == 2_001 {
                1_999
            } else {
                h
            }
        });
        assert_eq!(d.count(), 10);
        assert_eq!(d.within(2_000), (5, 3));
        assert_eq!(d.within(2_001), (8, 0));
        assert_eq!(d.within(500), (0, 0));
        assert_eq!(d.quantile(0.5), Some(1_000));
        assert_eq!(d.quantile(0.51), Some(2_001));
        assert_eq!(d.quantile(1.0), Some(3_000));
    }

    #[test]
    fn quantile_bounds_bracket_the_quantile() {
        // 1,000 samples, one per microsecond from 1 us to 1 ms.
        let d = Distribution::from_buckets((1..=1_000u64).map(|i| (i * 1_000, 1)), |h| h);
        let (lo, hi) = d.quantile_bounds(0.5, 0.95);
        let hi = hi.unwrap();
        assert!(lo < 500_000 && hi >= 500_000, "{lo} {hi}");
        assert!(500_000 - lo < 40_000 && hi - 500_000 < 40_000, "{lo} {hi}");
        // Too few samples for p99.9: no upper bound.
        assert_eq!(d.quantile_bounds(0.999, 0.95).1, None);
    }
}

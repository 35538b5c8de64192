//! The collector's state, sans-IO (every method takes `now`): merged histograms and counters
//! per series, a sliding window of recent histograms for quantiles, per-agent counters,
//! scheduled throughput tests' totals per direction, and the (agent, instance, seq)
//! high-water marks that make ingest idempotent.
//!
//! - this file: [`Store`] and ingest; series (by [`SeriesKey`]) and agents; the classic
//!   buckets all-time samples are counted in ([`BucketBounds`]).
//! - `sparse`: the sparse histogram every latency metric is kept in, and its merge.
//! - `throughput`: scheduled throughput tests per direction: by outcome, summed, the last.
//! - `window`: the sliding window of recent samples behind the quantiles.

pub mod history;
mod sparse;
mod throughput;
mod window;

pub use sparse::Sparse;
pub use throughput::{LastTest, TestOutcomes, ThroughputKey, ThroughputState};
use window::{Window, WindowSpan};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use xcbench_snapshot::{
    AgentId, Counters, Histograms, Identity, LatencyHistogram, Load, Metric, ProbeKind, Protocol,
    QuicPath, ResponderCounters, SenderCounters, SeriesSnapshot, Snapshot, TcpInfo,
    ThroughputResult, TimestampSource,
};

/// Upper bounds (ns, ascending) of the classic histogram buckets every latency metric's
/// all-time samples are counted into; a last, unbounded bucket is implied. The store is given
/// them because what Prometheus sees is exposition's choice, but counts them at ingest: a
/// scrape then reads a few dozen counters per metric instead of an all-time histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketBounds(&'static [u64]);

impl BucketBounds {
    /// Panics unless the bounds ascend strictly, which in a `const` is a build error.
    pub const fn new(bounds_ns: &'static [u64]) -> BucketBounds {
        let mut i = 1;
        while i < bounds_ns.len() {
            assert!(
                bounds_ns[i - 1] < bounds_ns[i],
                "bucket bounds must ascend strictly"
            );
            i += 1;
        }
        BucketBounds(bounds_ns)
    }

    pub fn ns(&self) -> &'static [u64] {
        self.0
    }

    /// The bucket of a sample whose HdrHistogram bucket starts at `lowest_ns`: the bound falls
    /// inside at most one 0.1%-wide HdrHistogram bucket, which counts as at or below it.
    fn index_of(&self, lowest_ns: u64) -> usize {
        self.0.partition_point(|b| *b < lowest_ns)
    }
}

/// A series: who measured whom, over what.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SeriesKey {
    pub source: Identity,
    pub peer: Identity,
    pub protocol: Protocol,
    pub kind: ProbeKind,
    pub load: Load,
}

impl SeriesKey {
    /// The key `source` reports `series` under.
    pub fn of(source: &Identity, series: &SeriesSnapshot) -> SeriesKey {
        SeriesKey {
            source: source.clone(),
            peer: series.peer.clone(),
            protocol: series.protocol,
            kind: series.kind,
            load: series.load,
        }
    }
}

/// One latency metric of one series.
#[derive(Debug, Clone, Default)]
pub struct MetricState {
    /// Counts per bucket of the store's [`BucketBounds`] (not cumulative); the last entry is
    /// +Inf.
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum_ns: u64,
    /// Samples since the start at or below each SLO threshold of this metric (the store's
    /// [`Store::thresholds`], in order), counted exactly from the full-resolution buckets.
    pub within: Vec<xcbench_snapshot::history::Within>,
    window: Window,
}

impl MetricState {
    /// Counts `count` samples of the HdrHistogram bucket `lowest_ns..=value` against each
    /// threshold.
    fn count_within(&mut self, thresholds: &[u64], value: u64, lowest_ns: u64, count: u64) {
        if self.within.len() != thresholds.len() {
            self.within = thresholds
                .iter()
                .map(|t| xcbench_snapshot::history::Within {
                    threshold_ns: *t,
                    at_most: 0,
                    straddling: 0,
                })
                .collect();
        }
        for w in &mut self.within {
            if value <= w.threshold_ns {
                w.at_most += count;
            } else if lowest_ns <= w.threshold_ns {
                w.straddling += count;
            }
        }
    }
}

impl MetricState {
    /// Samples in the current window (see also the impl above).
    pub fn window(&self) -> &Sparse {
        self.window.total()
    }
}

/// Everything known about one series.
#[derive(Debug, Clone)]
pub struct SeriesState {
    pub timestamping: TimestampSource,
    pub counters: Counters,
    pub metrics: BTreeMap<Metric, MetricState>,
    pub jitter_forward_ns: Option<u64>,
    pub jitter_reverse_ns: Option<u64>,
    pub clock_error_ns: Option<u64>,
    pub clock_synchronized: Option<bool>,
    pub tcp: Option<TcpInfo>,
    pub quic: Option<QuicPath>,
}

impl SeriesState {
    /// A series nothing is known of yet.
    fn empty() -> SeriesState {
        SeriesState {
            timestamping: TimestampSource::Kernel,
            counters: Counters::default(),
            metrics: BTreeMap::new(),
            jitter_forward_ns: None,
            jitter_reverse_ns: None,
            clock_error_ns: None,
            clock_synchronized: None,
            tcp: None,
            quic: None,
        }
    }
}

/// Everything known about one agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentState {
    pub identity: Identity,
    pub instance: u64,
    pub last_seq: u64,
    pub responders: ResponderCounters,
    pub sender: SenderCounters,
    pub last_report_ns: u64,
    /// The end of the latest interval reported (the agent's clock, Unix ns).
    #[serde(default)]
    pub last_interval_end_ns: u64,
    /// Stretches with no data from the agent: snapshots it dropped (a jump in its report
    /// sequence) or the time it was down (a new instance); the latest [`MAX_GAPS`].
    #[serde(default)]
    pub gaps: Vec<xcbench_snapshot::history::AgentGap>,
}

/// Gaps kept per agent.
pub const MAX_GAPS: usize = 256;

impl AgentState {
    /// An agent's state before its first report.
    pub fn new(snapshot: &Snapshot, now: u64) -> AgentState {
        AgentState {
            identity: snapshot.agent.clone(),
            instance: snapshot.instance,
            last_seq: 0,
            responders: ResponderCounters::default(),
            sender: SenderCounters::default(),
            last_report_ns: now,
            last_interval_end_ns: 0,
            gaps: Vec::new(),
        }
    }

    /// Takes an accepted report received at `now`: counters, high-water mark, and a gap
    /// when reports are missing before it.
    pub fn take_report(&mut self, snapshot: &Snapshot, now: u64) {
        let restarted = snapshot.instance != self.instance;
        let dropped = if restarted {
            snapshot.seq.saturating_sub(1)
        } else {
            snapshot.seq.saturating_sub(self.last_seq.saturating_add(1))
        };
        if self.last_interval_end_ns > 0
            && (restarted || dropped > 0)
            && snapshot.interval_start_unix_ns > self.last_interval_end_ns
        {
            if self.gaps.len() == MAX_GAPS {
                self.gaps.remove(0);
            }
            self.gaps.push(xcbench_snapshot::history::AgentGap {
                from_unix_ns: self.last_interval_end_ns,
                to_unix_ns: snapshot.interval_start_unix_ns,
                dropped_snapshots: dropped,
            });
        }
        self.identity = snapshot.agent.clone();
        self.instance = snapshot.instance;
        self.last_seq = snapshot.seq;
        self.last_report_ns = now;
        self.last_interval_end_ns = self.last_interval_end_ns.max(snapshot.interval_end_unix_ns);
        self.responders.add(&snapshot.responders);
        self.sender.malformed += snapshot.sender.malformed;
        self.sender.unmatched += snapshot.sender.unmatched;
    }
}

/// Result of one ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    Accepted,
    /// Already taken (same or older report of this agent): acknowledged, not counted again.
    Duplicate,
}

/// Why a decoded snapshot was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("series limit {limit} reached: snapshot would add {new} series")]
    SeriesLimit { limit: usize, new: usize },
}

/// Ingest outcomes since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounters {
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// Refused because the client's certificate is not that agent's (403).
    pub forbidden: u64,
}

/// The store.
pub struct Store {
    window: WindowSpan,
    buckets: BucketBounds,
    max_series: usize,
    template: LatencyHistogram,
    series: BTreeMap<SeriesKey, SeriesState>,
    throughput: BTreeMap<ThroughputKey, ThroughputState>,
    agents: HashMap<AgentId, AgentState>,
    /// SLO thresholds counted exactly per metric (see [`Store::set_thresholds`]).
    thresholds: BTreeMap<Metric, Vec<u64>>,
    verdicts: Option<(u64, Vec<xcbench_slo::ObjectiveResult>)>,
    /// The agents the collector's mesh file lists (none without one).
    mesh_agents: Vec<Identity>,
    pub ingest: IngestCounters,
}

impl Store {
    /// `window_ns`: how far back quantiles look; it is kept in `slot_ns` slices. `buckets`:
    /// the classic buckets latency samples since the start are counted in.
    pub fn new(window_ns: u64, slot_ns: u64, max_series: usize, buckets: BucketBounds) -> Store {
        Store {
            window: WindowSpan::new(window_ns, slot_ns),
            buckets,
            thresholds: BTreeMap::new(),
            verdicts: None,
            mesh_agents: Vec::new(),
            max_series,
            template: LatencyHistogram::new(),
            series: BTreeMap::new(),
            throughput: BTreeMap::new(),
            agents: HashMap::new(),
            ingest: IngestCounters::default(),
        }
    }

    pub fn window_ns(&self) -> u64 {
        self.window.length_ns()
    }

    /// The classic buckets every [`MetricState::buckets`] counts in.
    pub fn bucket_bounds(&self) -> BucketBounds {
        self.buckets
    }

    /// Latency thresholds (per metric, ascending, no repeats) whose samples
    /// [`MetricState::within`] counts exactly: the SLO file's. Set before anything is
    /// ingested or restored.
    pub fn set_thresholds(&mut self, mut thresholds: BTreeMap<Metric, Vec<u64>>) {
        for t in thresholds.values_mut() {
            t.sort_unstable();
            t.dedup();
        }
        self.thresholds = thresholds;
    }

    pub fn thresholds(&self, metric: Metric) -> &[u64] {
        self.thresholds.get(&metric).map_or(&[], Vec::as_slice)
    }

    /// The SLO file's verdicts, as last judged (Unix ns of the judgement, the results).
    pub fn set_verdicts(&mut self, at_unix_ns: u64, results: Vec<xcbench_slo::ObjectiveResult>) {
        self.verdicts = Some((at_unix_ns, results));
    }

    pub fn verdicts(&self) -> Option<&(u64, Vec<xcbench_slo::ObjectiveResult>)> {
        self.verdicts.as_ref()
    }

    /// The agents the mesh file lists, as last read: configured, reporting or not.
    pub fn set_mesh_agents(&mut self, agents: Vec<Identity>) {
        self.mesh_agents = agents;
    }

    pub fn mesh_agents(&self) -> &[Identity] {
        &self.mesh_agents
    }

    /// Adds a decoded snapshot received at `now` (collector clock). Idempotent on
    /// (agent id, instance, seq): anything not newer than what was taken is a duplicate.
    /// A snapshot that would take the store past its series limit is refused whole, so an
    /// agent's counters never count half a report. (With a durable history, [`Store::check`]
    /// first, write it, then [`Store::apply`].)
    pub fn handle_snapshot(
        &mut self,
        snapshot: &Snapshot,
        histograms: &Histograms,
        now: u64,
    ) -> Result<Ingest, IngestError> {
        let verdict = self.check(snapshot);
        if verdict == Ok(Ingest::Accepted) {
            self.apply(snapshot, histograms, now);
        }
        verdict
    }

    /// Whether `snapshot` is new and fits the series limit; counts duplicates and refusals,
    /// changes nothing else.
    pub fn check(&mut self, snapshot: &Snapshot) -> Result<Ingest, IngestError> {
        if let Some(a) = self.agents.get(&snapshot.agent.id) {
            if (snapshot.instance, snapshot.seq) <= (a.instance, a.last_seq) {
                self.ingest.duplicate += 1;
                return Ok(Ingest::Duplicate);
            }
        }
        let series_keys: Vec<SeriesKey> = snapshot
            .series
            .iter()
            .map(|s| SeriesKey::of(&snapshot.agent, s))
            .collect();
        let throughput_keys: Vec<ThroughputKey> = snapshot
            .throughput
            .iter()
            .map(|t| ThroughputKey::of(&snapshot.agent, t))
            .chain(
                snapshot
                    .throughput_flows
                    .iter()
                    .map(|f| ThroughputKey::scheduled(&snapshot.agent, f)),
            )
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let new = self.count_new(&series_keys, &throughput_keys);
        if self.series_count() + new > self.max_series {
            self.ingest.rejected += 1;
            return Err(IngestError::SeriesLimit {
                limit: self.max_series,
                new,
            });
        }
        Ok(Ingest::Accepted)
    }

    /// Adds a snapshot [`Store::check`] accepted.
    pub fn apply(&mut self, snapshot: &Snapshot, histograms: &Histograms, now: u64) {
        for (s, hists) in snapshot.series.iter().zip(histograms) {
            self.add_series(SeriesKey::of(&snapshot.agent, s), s, hists, now);
        }
        for f in &snapshot.throughput_flows {
            self.throughput
                .entry(ThroughputKey::scheduled(&snapshot.agent, f))
                .or_default();
        }
        for t in &snapshot.throughput {
            self.add_test(ThroughputKey::of(&snapshot.agent, t), t);
        }
        self.add_agent_report(snapshot, now);
        self.ingest.accepted += 1;
        self.expire(now);
    }

    /// Takes back what a durable history held before a restart: each series' totals and
    /// recent slots (samples of the last window, stamped with their slot's start), the
    /// agents' high-water marks and counters, and the scheduled tests.
    pub fn restore(&mut self, restored: history::Restored, now: u64) {
        for (key, total, recent) in restored.series {
            let state = self.series.entry(key).or_insert_with(SeriesState::empty);
            state.counters = total.counters;
            state.clock_error_ns = total.clock_error_max_ns;
            for (metric, h) in &total.metrics {
                let m = state.metrics.entry(*metric).or_default();
                m.buckets = vec![0; self.buckets.ns().len() + 1];
                let thresholds = self.thresholds.get(metric).map_or(&[][..], Vec::as_slice);
                for (value, count) in h.buckets() {
                    let lowest_ns = self.template.inner().lowest_equivalent(value);
                    m.buckets[self.buckets.index_of(lowest_ns)] += count;
                    m.count_within(thresholds, value, lowest_ns, count);
                }
                m.count = h.count();
                m.sum_ns = h.sum_ns();
            }
            for (start, slot) in recent {
                for (metric, h) in slot.metrics {
                    let m = state.metrics.entry(metric).or_default();
                    m.window.handle_samples(&self.window, h, start.min(now));
                }
            }
        }
        for agent in restored.agents {
            self.agents.insert(agent.identity.id.clone(), agent);
        }
        for (key, t) in restored.tests {
            self.add_test(key, &t);
        }
        self.expire(now);
    }

    /// The lowest value of the HdrHistogram bucket whose highest equivalent value is `value`.
    pub fn lowest_equivalent(&self, value: u64) -> u64 {
        self.template.inner().lowest_equivalent(value)
    }

    /// Counts a snapshot refused before it reached the store (undecodable).
    pub fn handle_rejected(&mut self) {
        self.ingest.rejected += 1;
    }

    /// A snapshot refused because the client may not report in that agent's name.
    pub fn handle_forbidden(&mut self) {
        self.ingest.forbidden += 1;
    }

    /// Drops window slots that ended before `now - window`.
    pub fn expire(&mut self, now: u64) {
        for state in self.series.values_mut() {
            for m in state.metrics.values_mut() {
                m.window.expire(&self.window, now);
            }
        }
    }

    pub fn series(&self) -> impl Iterator<Item = (&SeriesKey, &SeriesState)> {
        self.series.iter()
    }

    pub fn throughput(&self) -> impl Iterator<Item = (&ThroughputKey, &ThroughputState)> {
        self.throughput.iter()
    }

    pub fn agents(&self) -> impl Iterator<Item = &AgentState> {
        self.agents.values()
    }

    /// Series held: probe series and scheduled-test directions (both count against the
    /// limit).
    pub fn series_count(&self) -> usize {
        self.series.len() + self.throughput.len()
    }

    /// Keys not held yet; a test direction reported twice in one snapshot is one key.
    fn count_new(&self, series: &[SeriesKey], throughput: &[ThroughputKey]) -> usize {
        let new_series = series
            .iter()
            .filter(|k| !self.series.contains_key(k))
            .count();
        let new_throughput = throughput
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| !self.throughput.contains_key(k))
            .count();
        new_series + new_throughput
    }

    fn add_series(
        &mut self,
        key: SeriesKey,
        s: &SeriesSnapshot,
        hists: &[Vec<(u64, u64)>],
        now: u64,
    ) {
        let state = self.series.entry(key).or_insert_with(|| SeriesState {
            timestamping: s.timestamping,
            ..SeriesState::empty()
        });
        state.counters.add(&s.counters);
        if !s.histograms.is_empty() {
            state.timestamping = s.timestamping;
        }
        state.jitter_forward_ns = s.jitter_forward_ns.or(state.jitter_forward_ns);
        state.jitter_reverse_ns = s.jitter_reverse_ns.or(state.jitter_reverse_ns);
        state.clock_error_ns = s.clock_error_ns.or(state.clock_error_ns);
        state.clock_synchronized = s.clock_synchronized.or(state.clock_synchronized);
        state.tcp = s.tcp.or(state.tcp);
        state.quic = s.quic.or(state.quic);
        for (delta, hist) in s.histograms.iter().zip(hists) {
            let m = state.metrics.entry(delta.metric).or_default();
            if m.buckets.is_empty() {
                m.buckets = vec![0; self.buckets.ns().len() + 1];
            }
            let thresholds = self
                .thresholds
                .get(&delta.metric)
                .map_or(&[][..], Vec::as_slice);
            for &(value, count) in hist {
                let lowest_ns = self.template.inner().lowest_equivalent(value);
                m.buckets[self.buckets.index_of(lowest_ns)] += count;
                m.count_within(thresholds, value, lowest_ns, count);
            }
            m.count += delta.count;
            m.sum_ns = m.sum_ns.saturating_add(delta.sum_ns);
            m.window
                .handle_samples(&self.window, Sparse::from_buckets(hist, delta.sum_ns), now);
        }
    }

    fn add_test(&mut self, key: ThroughputKey, t: &ThroughputResult) {
        self.throughput.entry(key).or_default().add(t);
    }

    fn add_agent_report(&mut self, snapshot: &Snapshot, now: u64) {
        self.agents
            .entry(snapshot.agent.id.clone())
            .or_insert_with(|| AgentState::new(snapshot, now))
            .take_report(snapshot, now);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use xcbench_snapshot::{Cloud, HistogramDelta, FORMAT_VERSION};

    pub(crate) fn identity(id: &str, cloud: Cloud, region: &str) -> Identity {
        Identity {
            id: id.parse().unwrap(),
            cloud,
            region: region.into(),
            zone: String::new(),
        }
    }

    pub(crate) fn snapshot(seq: u64, rtts_ns: &[u64], counters: Counters) -> Snapshot {
        let mut h = LatencyHistogram::new();
        for v in rtts_ns {
            h.record_ns(*v);
        }
        let histograms = if rtts_ns.is_empty() {
            vec![]
        } else {
            vec![HistogramDelta {
                metric: Metric::Rtt,
                count: h.len(),
                sum_ns: rtts_ns.iter().sum(),
                hdr: h.encode_base64(),
            }]
        };
        Snapshot {
            format: FORMAT_VERSION,
            agent: identity("az-eastus-app1", Cloud::Azure, "eastus"),
            instance: 1,
            seq,
            interval_start_unix_ns: 0,
            interval_end_unix_ns: 0,
            responders: ResponderCounters::default(),
            sender: SenderCounters::default(),
            throughput: vec![],
            throughput_flows: vec![],
            series: vec![SeriesSnapshot {
                peer: identity("oci-ashburn-db1", Cloud::Oci, "us-ashburn-1"),
                protocol: Protocol::Udp,
                kind: ProbeKind::Stamp,
                load: Load::Idle,
                timestamping: TimestampSource::Kernel,
                counters,
                histograms,
                jitter_forward_ns: Some(12_000),
                jitter_reverse_ns: Some(8_000),
                clock_error_ns: Some(32_000_000_000),
                clock_synchronized: Some(false),
                tcp: None,
                quic: None,
            }],
        }
    }

    const S: u64 = 1_000_000_000;

    /// A few bounds around the interesting cases; exposition's layout has its own tests.
    const BUCKETS: BucketBounds = BucketBounds::new(&[25_000, 1_000_000, 10 * S]);

    /// Ingests as the HTTP path does: checked and decoded first.
    pub(crate) fn ingest(store: &mut Store, s: &Snapshot, now: u64) -> Result<Ingest, IngestError> {
        let histograms = s.decode_histograms().expect("valid test snapshot");
        store.handle_snapshot(s, &histograms, now)
    }

    #[test]
    fn ingest_is_idempotent_and_merges_by_addition() {
        let mut store = Store::new(60 * S, 10 * S, 100, BUCKETS);
        let c = Counters {
            sent: 3,
            received: 3,
            ..Counters::default()
        };
        let a = snapshot(1, &[1_000_000, 2_000_000, 3_000_000], c);
        assert_eq!(ingest(&mut store, &a, 100 * S), Ok(Ingest::Accepted));
        assert_eq!(ingest(&mut store, &a, 101 * S), Ok(Ingest::Duplicate));
        let b = snapshot(
            2,
            &[4_000_000],
            Counters {
                sent: 1,
                received: 1,
                ..c
            },
        );
        assert_eq!(ingest(&mut store, &b, 102 * S), Ok(Ingest::Accepted));
        // An older seq arriving late is still a duplicate.
        assert_eq!(ingest(&mut store, &a, 103 * S), Ok(Ingest::Duplicate));
        // A restarted agent (new instance) starts again at seq 1.
        let mut restarted = snapshot(
            1,
            &[5_000_000],
            Counters {
                sent: 1,
                received: 1,
                ..c
            },
        );
        restarted.instance = 2;
        assert_eq!(
            ingest(&mut store, &restarted, 104 * S),
            Ok(Ingest::Accepted)
        );

        let (_, s) = store.series().next().unwrap();
        assert_eq!(s.counters.sent, 5);
        let rtt = &s.metrics[&Metric::Rtt];
        assert_eq!((rtt.count, rtt.sum_ns), (5, 15_000_000));
        assert_eq!(rtt.buckets.iter().sum::<u64>(), 5);
        let w = rtt.window();
        assert_eq!(w.count(), 5);
        let p50 = w.quantile(0.5).unwrap();
        assert!((3_000_000..=3_003_000).contains(&p50), "{p50}");
        assert!(w.quantile(1.0).unwrap() >= 5_000_000);
        assert_eq!(
            store.ingest,
            IngestCounters {
                accepted: 3,
                duplicate: 2,
                rejected: 0,
                forbidden: 0,
            }
        );
    }

    #[test]
    fn window_slides_but_totals_stay() {
        let mut store = Store::new(60 * S, 10 * S, 100, BUCKETS);
        let c = Counters::default();
        ingest(&mut store, &snapshot(1, &[1_000_000], c), 100 * S).unwrap();
        ingest(&mut store, &snapshot(2, &[9_000_000], c), 135 * S).unwrap();
        // The slot [100 s, 110 s) overlaps a 60 s window ending at 165 s, but not one at 175 s.
        store.expire(165 * S);
        let (_, s) = store.series().next().unwrap();
        assert_eq!(s.metrics[&Metric::Rtt].window().count(), 2);
        store.expire(175 * S);
        let (_, s) = store.series().next().unwrap();
        let rtt = &s.metrics[&Metric::Rtt];
        assert_eq!(rtt.count, 2, "cumulative");
        assert_eq!(
            rtt.window().count(),
            1,
            "the 100 s slot left the 60 s window"
        );
        assert!(rtt.window().quantile(0.5).unwrap() >= 9_000_000);
        store.expire(200 * S);
        let (_, s) = store.series().next().unwrap();
        assert_eq!(s.metrics[&Metric::Rtt].window().quantile(0.5), None);
        assert_eq!(s.metrics[&Metric::Rtt].window().sum_ns(), 0);
    }

    #[test]
    fn classic_buckets_put_exact_bounds_inside() {
        let mut store = Store::new(60 * S, 10 * S, 100, BUCKETS);
        ingest(
            &mut store,
            &snapshot(
                1,
                &[1_000_000, 1_000_001, 24_000, 20 * S],
                Counters::default(),
            ),
            0,
        )
        .unwrap();
        let (_, s) = store.series().next().unwrap();
        let b = &s.metrics[&Metric::Rtt].buckets;
        assert_eq!(b[0], 1, "24 us <= 25 us");
        assert_eq!(b[1], 2, "1 ms and 1 ms + 1 ns share a 0.1% bucket");
        assert_eq!(b[2], 0, "nothing between 1 ms and 10 s");
        assert_eq!(b[3], 1, "20 s only in +Inf");
    }

    #[test]
    fn series_limit_refuses_whole_snapshot() {
        let mut store = Store::new(60 * S, 10 * S, 0, BUCKETS);
        let err = ingest(&mut store, &snapshot(1, &[], Counters::default()), 0);
        assert_eq!(err, Err(IngestError::SeriesLimit { limit: 0, new: 1 }));
        assert_eq!(store.series_count(), 0);
        assert_eq!(store.ingest.rejected, 1);
    }

    #[test]
    fn a_test_direction_counts_once_against_the_limit() {
        let mut s = snapshot(1, &[], Counters::default());
        let result = ThroughputResult {
            peer: s.series[0].peer.clone(),
            protocol: Protocol::Tcp,
            flow: xcbench_snapshot::Flow::Forward,
            outcome: xcbench_snapshot::ThroughputOutcome::Refused,
            started_unix_ns: 0,
            counts: Default::default(),
            interval_min_bytes_per_second: 0,
        };
        s.throughput = vec![result.clone(), result];
        let mut store = Store::new(60 * S, 10 * S, 1, BUCKETS);
        let err = ingest(&mut store, &s, 0);
        assert_eq!(err, Err(IngestError::SeriesLimit { limit: 1, new: 2 }));
        let mut store = Store::new(60 * S, 10 * S, 2, BUCKETS);
        ingest(&mut store, &s, 0).unwrap();
        assert_eq!(
            store.series_count(),
            2,
            "one probe series, one test direction"
        );
        assert_eq!(store.throughput().next().unwrap().1.tests.refused, 2);
    }

    /// A scheduled direction is held at zero before its first test (so Prometheus sees the
    /// first test as an increase), counts once against the limit with its results, and
    /// counts no test by being declared.
    #[test]
    fn scheduled_directions_exist_at_zero_before_a_test() {
        let mut s = snapshot(1, &[], Counters::default());
        let flow = xcbench_snapshot::ThroughputFlow {
            peer: s.series[0].peer.clone(),
            protocol: Protocol::Udp,
            flow: xcbench_snapshot::Flow::Forward,
        };
        s.throughput_flows = vec![flow.clone(), flow.clone()];
        let mut store = Store::new(60 * S, 10 * S, 2, BUCKETS);
        ingest(&mut store, &s, 0).unwrap();
        assert_eq!(
            store.series_count(),
            2,
            "one probe series, one test direction"
        );
        let (key, t) = store.throughput().next().unwrap();
        assert_eq!((key.protocol, key.flow), (Protocol::Udp, flow.flow));
        assert_eq!(*t, ThroughputState::default());
        // Its first result lands in the same series.
        let mut s = snapshot(2, &[], Counters::default());
        s.throughput_flows = vec![flow.clone()];
        s.throughput = vec![ThroughputResult {
            peer: flow.peer.clone(),
            protocol: Protocol::Udp,
            flow: flow.flow,
            outcome: xcbench_snapshot::ThroughputOutcome::Ok,
            started_unix_ns: 1,
            counts: Default::default(),
            interval_min_bytes_per_second: 0,
        }];
        ingest(&mut store, &s, 1).unwrap();
        assert_eq!(store.series_count(), 2);
        assert_eq!(store.throughput().next().unwrap().1.tests.ok, 1);
    }
}

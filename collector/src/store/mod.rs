//! The collector's state, sans-IO (every method takes `now`): merged histograms and counters
//! per series, a sliding window of recent histograms for quantiles, per-agent counters,
//! scheduled throughput tests' totals per direction, and the (agent, instance, seq)
//! high-water marks that make ingest idempotent.
//!
//! - this file: [`Store`] and ingest (idempotent on the high-water marks, all or nothing
//!   against the series limit), restore, expiry, and what a scrape reads.
//! - `series`: a series (by [`SeriesKey`]) and its latency metrics; the classic buckets
//!   all-time samples are counted in ([`BucketBounds`]).
//! - `agent`: one agent's high-water mark, counters and gaps ([`AgentState`]).
//! - `sparse`: the sparse histogram every latency metric is kept in, and its merge.
//! - `throughput`: scheduled throughput tests per direction: by outcome, summed, the last.
//! - `window`: the sliding window of recent samples behind the quantiles.
mod agent;
pub mod history;
mod series;
mod sparse;
mod throughput;
mod window;

pub use agent::{AgentState, MAX_GAPS};
pub use series::{native_index, BucketBounds, FlowState, MetricState, SeriesKey, SeriesState};
pub use sparse::Sparse;
pub use throughput::{LastTest, TestOutcomes, ThroughputKey, ThroughputState};
use window::WindowSpan;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use xcbench_snapshot::{
    AgentId, Histograms, Identity, LatencyHistogram, Metric, SeriesSnapshot, Snapshot,
    ThroughputResult,
};

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
    /// The metrics whose recent samples are kept in a window (see [`Store::set_windowed`]).
    windowed: BTreeSet<Metric>,
    /// With native histograms: their schema (see [`Store::set_native_schema`]).
    native_schema: Option<i8>,
    pub ingest: IngestCounters,
    /// With `[remote_write]`: what it sent, retried, dropped and holds (for `/metrics`).
    pub remote_write: Option<std::sync::Arc<crate::remote_write::Stats>>,
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
            windowed: Metric::ALL.iter().copied().collect(),
            native_schema: None,
            max_series,
            template: LatencyHistogram::new(),
            series: BTreeMap::new(),
            throughput: BTreeMap::new(),
            agents: HashMap::new(),
            ingest: IngestCounters::default(),
            remote_write: None,
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

    /// Keeps windows (the recent slots behind window quantiles) only for `metrics`; every
    /// metric's by default. A window holds a histogram per slot, most of a series' memory,
    /// so the exposition asks only for those it serves a summary of. Set before ingest.
    pub fn set_windowed(&mut self, metrics: BTreeSet<Metric>) {
        self.windowed = metrics;
    }

    /// Counts every latency sample into native histogram buckets of `schema` too (see
    /// [`series::native_index`]). Set before ingest.
    pub fn set_native_schema(&mut self, schema: Option<i8>) {
        self.native_schema = schema;
    }

    pub fn native_schema(&self) -> Option<i8> {
        self.native_schema
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
                    if let Some(schema) = self.native_schema {
                        *m.native.entry(native_index(schema, lowest_ns)).or_insert(0) += count;
                    }
                }
                m.count = h.count();
                m.sum_ns = h.sum_ns();
            }
            for (start, slot) in recent {
                for (metric, h) in slot.metrics {
                    if self.windowed.contains(&metric) {
                        let m = state.metrics.entry(metric).or_default();
                        m.window.handle_samples(&self.window, h, start.min(now));
                    }
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
            for f in state.flows.values_mut() {
                f.rtt.expire(&self.window, now);
            }
        }
    }

    pub fn series_state(&self, key: &SeriesKey) -> Option<&SeriesState> {
        self.series.get(key)
    }

    pub fn test_state(&self, key: &ThroughputKey) -> Option<&ThroughputState> {
        self.throughput.get(key)
    }

    pub fn agent(&self, id: &AgentId) -> Option<&AgentState> {
        self.agents.get(id)
    }

    pub fn series(&self) -> impl Iterator<Item = (&SeriesKey, &SeriesState)> {
        self.series.iter()
    }

    /// The probe series within `range`, in key order (a scrape written in parts).
    pub fn series_range<'s>(
        &'s self,
        range: (Bound<&SeriesKey>, Bound<&SeriesKey>),
    ) -> impl Iterator<Item = (&'s SeriesKey, &'s SeriesState)> {
        self.series.range::<SeriesKey, _>(range)
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
        // Directions learnt late for earlier losses count on arrival here (the history
        // dates them to the slot of those losses).
        state.counters.add(&s.counters_with_earlier());
        if !s.histograms.is_empty() {
            state.timestamping = s.timestamping;
        }
        state.jitter_forward_ns = s.jitter_forward_ns.or(state.jitter_forward_ns);
        state.jitter_reverse_ns = s.jitter_reverse_ns.or(state.jitter_reverse_ns);
        state.dscp_forward = s.dscp_forward.or(state.dscp_forward);
        state.dscp_reverse = s.dscp_reverse.or(state.dscp_reverse);
        state.ecn_forward = s.ecn_forward.or(state.ecn_forward);
        state.ecn_reverse = s.ecn_reverse.or(state.ecn_reverse);
        state.clock_error_ns = s.clock_error_ns.or(state.clock_error_ns);
        state.clock_synchronized = s.clock_synchronized.or(state.clock_synchronized);
        state.tcp = s.tcp.or(state.tcp);
        state.quic = s.quic.or(state.quic);
        // The flows' RTTs follow the series' own histograms (as `decode_histograms` put them).
        let mut flow_hists = hists.iter().skip(s.histograms.len());
        for f in &s.flows {
            let flow = state.flows.entry(f.flow).or_default();
            flow.sent += f.sent;
            flow.received += f.received;
            flow.lost += f.lost;
            if let (Some(delta), Some(hist)) = (&f.rtt, flow_hists.next()) {
                flow.rtt.handle_samples(
                    &self.window,
                    Sparse::from_buckets(hist, delta.sum_ns),
                    now,
                );
            }
        }
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
                if let Some(schema) = self.native_schema {
                    *m.native.entry(native_index(schema, lowest_ns)).or_insert(0) += count;
                }
            }
            m.count += delta.count;
            m.sum_ns = m.sum_ns.saturating_add(delta.sum_ns);
            if self.windowed.contains(&delta.metric) {
                m.window.handle_samples(
                    &self.window,
                    Sparse::from_buckets(hist, delta.sum_ns),
                    now,
                );
            }
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
pub(crate) mod tests;

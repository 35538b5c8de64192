//! The exposition's families as remote-write samples: those of what one snapshot changed,
//! stamped with its interval's end, or stale markers for the series of agents that left the
//! mesh; latency histograms as classic buckets or as native histograms
//! (`remote_write.histograms`); encoded `WriteRequest` bodies in requests of a bounded number
//! of samples, written into one buffer the caller keeps ([`Requests`]).

use xcbench_snapshot::Identity;

use super::{agents, proto, series, slo, throughput, Classic, Families, Format, Labels, Options};
use crate::remote_write::{Histograms, RemoteWriteConfig};
use crate::store::Store;

/// The remote-write samples of what `snapshot` changed, as the store holds it once the
/// snapshot is applied: its series (probe families and exact SLO counts), its scheduled
/// tests and its agent, each sample stamped with the end of the snapshot's interval (the
/// agent's clock: a backlog lands where it was measured). Window summaries, the mesh list,
/// the SLO verdicts and the collector's own families are not in it: they are of the
/// collector's moment, not of a measured interval. Into `into` (emptied first): encoded
/// `WriteRequest` bodies (uncompressed) of at most `max_samples_per_send` samples each (a
/// native histogram is one), with their sample counts. Every sample also carries the
/// `external_labels` it does not have (a shard's name).
pub fn remote_write(
    store: &Store,
    options: &Options,
    snapshot: &xcbench_snapshot::Snapshot,
    config: &RemoteWriteConfig,
    into: &mut Requests,
) {
    let mut f = Families::new(store, options, Format::Text);
    f.remote = Some(Remote::new(
        store,
        config,
        snapshot.interval_end_unix_ns,
        false,
        std::mem::take(into),
    ));
    for s in &snapshot.series {
        let key = crate::store::SeriesKey::of(&snapshot.agent, s);
        if let Some(state) = store.series_state(&key) {
            series::push_series(&mut f, &key, state);
            slo::push_series(&mut f, &key, state);
        }
    }
    let mut tests: Vec<crate::store::ThroughputKey> = snapshot
        .throughput
        .iter()
        .map(|t| crate::store::ThroughputKey::of(&snapshot.agent, t))
        .collect();
    tests.sort();
    tests.dedup();
    for key in &tests {
        if let Some(state) = store.test_state(key) {
            throughput::push_test(&mut f, key, state);
        }
    }
    if let Some(agent) = store.agent(&snapshot.agent.id) {
        agents::push_agent(&mut f, agent);
    }
    *into = f.remote.map(|r| r.requests).unwrap_or_default();
}

/// Prometheus' stale marker: the NaN a series' last sample is written as when it ends.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Stale markers at `now_unix_ns` (collector clock) for every remote-written series of the
/// agents in `gone` (left the mesh): their probe series as prober or reflector, their tests
/// either way, and their own families; a store then ends those series at once instead of
/// showing their last value for its lookback. Into `into`, as [`remote_write`].
pub fn remote_write_stale(
    store: &Store,
    options: &Options,
    gone: &[xcbench_snapshot::AgentId],
    now_unix_ns: u64,
    config: &RemoteWriteConfig,
    into: &mut Requests,
) {
    let mut f = Families::new(store, options, Format::Text);
    f.remote = Some(Remote::new(
        store,
        config,
        now_unix_ns,
        true,
        std::mem::take(into),
    ));
    let left = |a: &Identity| gone.contains(&a.id);
    for (key, state) in store.series() {
        if left(&key.source) || left(&key.peer) {
            series::push_series(&mut f, key, state);
            slo::push_series(&mut f, key, state);
        }
    }
    for (key, state) in store.throughput() {
        if left(&key.source) || left(&key.peer) {
            throughput::push_test(&mut f, key, state);
        }
    }
    for agent in store.agents().filter(|a| left(&a.identity)) {
        agents::push_agent(&mut f, agent);
    }
    *into = f.remote.map(|r| r.requests).unwrap_or_default();
}

/// Encoded `WriteRequest` bodies (uncompressed) one after another in one buffer, with each
/// one's sample count. The writer keeps one and fills it again for the next snapshot, so
/// once grown it costs no allocation per snapshot (a request body of 500 samples is 50 to
/// 300 kB, grown by doubling when each was a vector of its own).
#[derive(Debug, Default)]
pub struct Requests {
    body: Vec<u8>,
    /// Per request: its samples, and where its body ends in `body`.
    ends: Vec<(usize, usize)>,
}

impl Requests {
    /// Each request's sample count and body, in order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8])> {
        let mut start = 0;
        self.ends.iter().map(move |&(samples, end)| {
            let body = &self.body[start..end];
            start = end;
            (samples, body)
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The body of the request the next sample goes into: the last, or a new one when it
    /// holds `max_samples`. [`Requests::written`] counts the sample once it is written.
    fn next(&mut self, max_samples: usize) -> &mut Vec<u8> {
        if self.ends.last().is_none_or(|(n, _)| *n >= max_samples) {
            self.ends.push((0, self.body.len()));
        }
        &mut self.body
    }

    fn written(&mut self) {
        if let Some(last) = self.ends.last_mut() {
            last.0 += 1;
            last.1 = self.body.len();
        }
    }
}

/// Samples for remote write: one `TimeSeries` per sample, stamped alike, in requests of at
/// most `max_samples`.
pub(super) struct Remote {
    timestamp_ms: i64,
    /// Every value written as Prometheus' stale marker: the series ended.
    stale: bool,
    max_samples: usize,
    /// Labels every sample carries unless it has one of that name (Prometheus' external
    /// labels): what tells the shards of a sharded mesh apart in a shared store.
    external: Vec<(String, String)>,
    /// Latency histograms as native ones of this schema, instead of classic buckets (the
    /// store counts native buckets whenever the writer asks for them:
    /// `CollectorConfig::native_schema`).
    native: Option<i8>,
    /// Encoded `WriteRequest` bodies and their sample counts; the last is being filled.
    requests: Requests,
}

impl Remote {
    /// Writes into `requests` (emptied; its buffers kept).
    fn new(
        store: &Store,
        config: &RemoteWriteConfig,
        at_unix_ns: u64,
        stale: bool,
        mut requests: Requests,
    ) -> Remote {
        requests.body.clear();
        requests.ends.clear();
        Remote {
            timestamp_ms: (at_unix_ns / 1_000_000) as i64,
            stale,
            max_samples: config.max_samples_per_send.max(1),
            external: config.external_labels.clone(),
            native: match config.histograms {
                Histograms::Classic => None,
                Histograms::Native => store.native_schema(),
            },
            requests,
        }
    }
}

/// `labels` and `extra`, with the `external` labels they lack, sorted by name.
fn sorted_labels<'a>(
    external: &'a [(String, String)],
    labels: Labels<'a>,
    extra: Option<(&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    let mut sorted: Vec<(&str, &str)> = labels.iter().chain(extra).collect();
    for (name, value) in external {
        if !sorted.iter().any(|l| l.0 == name) {
            sorted.push((name, value));
        }
    }
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    sorted
}

impl Families<'_> {
    /// A latency histogram as remote-write samples: one native histogram when the writer
    /// writes them (a stale marker ends it as a float sample would), else `_bucket` per
    /// bound (cumulative) and `+Inf`, `_sum` and `_count`.
    pub(super) fn remote_histogram(&mut self, name: &str, labels: Labels<'_>, h: &Classic<'_>) {
        let Some(remote) = self.remote.as_mut() else {
            return;
        };
        if let Some(schema) = remote.native.filter(|_| !remote.stale) {
            let sorted = sorted_labels(&remote.external, labels, None);
            let empty = std::collections::BTreeMap::new();
            proto::time_series_histogram(
                remote.requests.next(remote.max_samples),
                &mut self.scratch,
                name,
                &sorted,
                (h.count, super::seconds(h.sum_ns)),
                (schema, h.native.unwrap_or(&empty)),
                remote.timestamp_ms,
            );
            remote.requests.written();
            return;
        }
        if remote.native.is_some() {
            // Stale: the float marker (remote_sample writes it) on the histogram's own name.
            self.remote_sample(name, "", labels, None, f64::NAN);
            return;
        }
        let mut cumulative = 0;
        for i in 0..self.bounds.len() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            let le = std::mem::take(&mut self.bounds[i].1);
            self.remote_sample(
                name,
                "_bucket",
                labels,
                Some(("le", &le)),
                cumulative as f64,
            );
            self.bounds[i].1 = le;
        }
        self.remote_sample(
            name,
            "_bucket",
            labels,
            Some(("le", "+Inf")),
            h.count as f64,
        );
        self.remote_sample(name, "_sum", labels, None, super::seconds(h.sum_ns));
        self.remote_sample(name, "_count", labels, None, h.count as f64);
    }

    /// One remote-write sample: a `TimeSeries` of its labels (sorted by name, `__name__`
    /// among them) and one sample at the request's time.
    pub(super) fn remote_sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: Labels<'_>,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        let Some(remote) = self.remote.as_mut() else {
            return;
        };
        let sorted = sorted_labels(&remote.external, labels, extra);
        let value = match remote.stale {
            true => f64::from_bits(STALE_NAN),
            false => value,
        };
        proto::time_series(
            remote.requests.next(remote.max_samples),
            &mut self.scratch,
            [name, suffix],
            &sorted,
            value,
            remote.timestamp_ms,
        );
        remote.requests.written();
    }
}

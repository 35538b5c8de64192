//! The exposition's families as remote-write samples: those of what one snapshot changed,
//! stamped with its interval's end, or stale markers for the series of agents that left the
//! mesh; encoded `WriteRequest` bodies in requests of a bounded number of samples.

use xcbench_snapshot::Identity;

use super::{agents, proto, series, slo, throughput, Families, Format, Labels, Options};
use crate::store::Store;

/// The remote-write samples of what `snapshot` changed, as the store holds it once the
/// snapshot is applied: its series (probe families and exact SLO counts), its scheduled
/// tests and its agent, each sample stamped with the end of the snapshot's interval (the
/// agent's clock: a backlog lands where it was measured). Window summaries, the mesh list,
/// the SLO verdicts and the collector's own families are not in it: they are of the
/// collector's moment, not of a measured interval. Encoded `WriteRequest` bodies
/// (uncompressed) of at most `max_samples` samples each, with their sample counts. Every
/// sample also carries the `external` labels it does not have (a shard's name).
pub fn remote_write(
    store: &Store,
    options: &Options,
    snapshot: &xcbench_snapshot::Snapshot,
    max_samples: usize,
    external: &[(String, String)],
) -> Vec<(usize, Vec<u8>)> {
    let mut f = Families::new(store, options, Format::Text);
    f.remote = Some(Remote {
        timestamp_ms: (snapshot.interval_end_unix_ns / 1_000_000) as i64,
        stale: false,
        max_samples: max_samples.max(1),
        external: external.to_vec(),
        requests: Vec::new(),
    });
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
    f.remote.map(|r| r.requests).unwrap_or_default()
}

/// Prometheus' stale marker: the NaN a series' last sample is written as when it ends.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Stale markers at `now_unix_ns` (collector clock) for every remote-written series of the
/// agents in `gone` (left the mesh): their probe series as prober or reflector, their tests
/// either way, and their own families; a store then ends those series at once instead of
/// showing their last value for its lookback.
pub fn remote_write_stale(
    store: &Store,
    options: &Options,
    gone: &[xcbench_snapshot::AgentId],
    now_unix_ns: u64,
    max_samples: usize,
    external: &[(String, String)],
) -> Vec<(usize, Vec<u8>)> {
    let mut f = Families::new(store, options, Format::Text);
    f.remote = Some(Remote {
        timestamp_ms: (now_unix_ns / 1_000_000) as i64,
        stale: true,
        max_samples: max_samples.max(1),
        external: external.to_vec(),
        requests: Vec::new(),
    });
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
    f.remote.map(|r| r.requests).unwrap_or_default()
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
    /// Encoded `WriteRequest` bodies and their sample counts; the last is being filled.
    requests: Vec<(usize, Vec<u8>)>,
}

impl Families<'_> {
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
        let mut sorted: Vec<(&str, &str)> = labels.iter().chain(extra).collect();
        for (name, value) in &remote.external {
            if !sorted.iter().any(|l| l.0 == name) {
                sorted.push((name, value));
            }
        }
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if remote
            .requests
            .last()
            .is_none_or(|(n, _)| *n >= remote.max_samples)
        {
            remote.requests.push((0, Vec::new()));
        }
        let (n, body) = remote.requests.last_mut().expect("pushed above");
        let value = match remote.stale {
            true => f64::from_bits(STALE_NAN),
            false => value,
        };
        proto::time_series(
            body,
            &mut self.scratch,
            [name, suffix],
            &sorted,
            value,
            remote.timestamp_ms,
        );
        *n += 1;
    }
}

//! A series as the store keeps it: its key (who measured whom, over what), its counters and
//! path facts, and each latency metric's all-time classic buckets, exact counts against the
//! SLO thresholds and recent window; the classic buckets themselves ([`BucketBounds`]).

use std::collections::BTreeMap;

use xcbench_snapshot::{
    Counters, Identity, Load, Metric, ProbeKind, Protocol, QuicPath, SeriesSnapshot, TcpInfo,
    TimestampSource,
};

use super::sparse::Sparse;
use super::window::Window;

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
    pub(super) fn index_of(&self, lowest_ns: u64) -> usize {
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
    /// [`Store::thresholds`](super::Store::thresholds), in order), counted exactly from the
    /// full-resolution buckets.
    pub within: Vec<xcbench_snapshot::history::Within>,
    /// With native histograms: samples since the start per native bucket index of the
    /// store's schema (see [`native_index`]).
    pub native: BTreeMap<i32, u64>,
    pub(super) window: Window,
}

/// The native histogram bucket (Prometheus' exponential buckets: index `i` holds
/// `(base^(i-1), base^i]` seconds, `base = 2^(2^-schema)`) of a sample whose HdrHistogram
/// bucket starts at `lowest_ns`: like the classic buckets, an HdrHistogram bucket a bound
/// falls inside counts as below it (within 0.1% or 512 ns).
pub fn native_index(schema: i8, lowest_ns: u64) -> i32 {
    let seconds = (lowest_ns.max(1) as f64) / 1e9;
    let scaled = seconds.log2() * 2f64.powi(i32::from(schema));
    scaled.ceil() as i32
}

impl MetricState {
    /// Counts `count` samples of the HdrHistogram bucket `lowest_ns..=value` against each
    /// threshold.
    pub(super) fn count_within(
        &mut self,
        thresholds: &[u64],
        value: u64,
        lowest_ns: u64,
        count: u64,
    ) {
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
    /// The DSCP last seen each way (RFC 8972 Class of Service).
    pub dscp_forward: Option<u8>,
    pub dscp_reverse: Option<u8>,
    /// The ECN last seen each way.
    pub ecn_forward: Option<u8>,
    pub ecn_reverse: Option<u8>,
    pub clock_error_ns: Option<u64>,
    pub clock_synchronized: Option<bool>,
    pub tcp: Option<TcpInfo>,
    pub quic: Option<QuicPath>,
    /// A STAMP series probed over several flows: each flow's counts and recent RTTs.
    pub flows: BTreeMap<u8, FlowState>,
}

/// One flow (source port) of a series: probes since the start, and a window of round trips,
/// so flows that ECMP carried over different paths can be told apart. Not kept in the
/// history: a restarted collector starts them again (the series' own figures are whole).
#[derive(Debug, Clone, Default)]
pub struct FlowState {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub(super) rtt: Window,
}

impl FlowState {
    /// Round trips in the current window.
    pub fn rtt_window(&self) -> &Sparse {
        self.rtt.total()
    }
}

impl SeriesState {
    /// A series nothing is known of yet.
    pub(super) fn empty() -> SeriesState {
        SeriesState {
            timestamping: TimestampSource::Kernel,
            counters: Counters::default(),
            metrics: BTreeMap::new(),
            jitter_forward_ns: None,
            jitter_reverse_ns: None,
            dscp_forward: None,
            dscp_reverse: None,
            ecn_forward: None,
            ecn_reverse: None,
            clock_error_ns: None,
            clock_synchronized: None,
            tcp: None,
            quic: None,
            flows: BTreeMap::new(),
        }
    }
}

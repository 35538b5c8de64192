//! Probe series families, one set per series key: probe counters, a latency histogram since
//! the start and a summary over the window per metric, jitter, the clock, TCP_INFO and quinn
//! path figures. Owns the latency bucket layout and the window quantiles.

use prometheus::proto::{Bucket, Histogram, LabelPair, Quantile, Summary};
use xcbench_snapshot::{Metric, ProbeKind, Protocol};

use super::catalog::{self, MetricDef};
use super::{pair_labels, seconds, with, Families};
use crate::store::{BucketBounds, MetricState, SeriesKey, SeriesState, Store};

/// Classic histogram buckets for interconnect latencies: fine between 0.5 and 5 ms where
/// ExpressRoute/FastConnect pairs sit, coarse out to 10 s. The store is built with them and
/// counts samples into them at ingest (see [`BucketBounds`]).
pub const LATENCY_BUCKETS: BucketBounds = BucketBounds::new(&[
    25_000,
    50_000,
    100_000,
    200_000,
    300_000,
    400_000,
    500_000,
    750_000,
    1_000_000,
    1_250_000,
    1_500_000,
    1_750_000,
    2_000_000,
    2_500_000,
    3_000_000,
    4_000_000,
    5_000_000,
    7_500_000,
    10_000_000,
    15_000_000,
    20_000_000,
    30_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
]);

/// Quantiles published over the window; 1.0 is the maximum.
pub const WINDOW_QUANTILES: &[f64] = &[0.5, 0.9, 0.99, 0.999, 1.0];

/// Every probe series' families.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    let bounds = store.bucket_bounds();
    for (key, s) in store.series() {
        let base = series_labels(key);
        push_probe_counts(f, key, s, &base);
        push_path(f, s, &base);
        push_transport(f, key, s, &base);
        for &metric in key.kind.metrics() {
            push_latency(f, metric, s.metrics.get(&metric), bounds, &base);
        }
    }
}

pub(super) fn series_labels(k: &SeriesKey) -> Vec<LabelPair> {
    with(
        pair_labels(&k.source, &k.peer, k.protocol),
        &[("kind", k.kind.as_str()), ("load", k.load.as_str())],
    )
}

/// Probe outcomes, and losses by direction where the reflector can tell.
fn push_probe_counts(f: &mut Families, key: &SeriesKey, s: &SeriesState, base: &[LabelPair]) {
    let c = &s.counters;
    for (def, value) in [
        (&catalog::PROBES_SENT_TOTAL, c.sent),
        (&catalog::PROBES_RECEIVED_TOTAL, c.received),
        (&catalog::PROBES_LOST_TOTAL, c.lost),
        (&catalog::PROBES_DUPLICATED_TOTAL, c.duplicated),
        (&catalog::PROBES_REORDERED_TOTAL, c.reordered),
        (&catalog::PROBES_LATE_TOTAL, c.late),
        (&catalog::PROBES_SKIPPED_TOTAL, c.skipped),
        (&catalog::PROBES_ABANDONED_TOTAL, c.abandoned),
    ] {
        f.counter(def, base.to_vec(), value);
    }
    // Only STAMP's stateful reflector tells which way a probe was lost, and only STAMP
    // measures one-way delay, which a clock step can spoil.
    if key.kind == ProbeKind::Stamp {
        for (dir, value) in [("forward", c.lost_forward), ("reverse", c.lost_reverse)] {
            f.counter(
                &catalog::PROBES_LOST_DIRECTION_TOTAL,
                with(base.to_vec(), &[("direction", dir)]),
                value,
            );
        }
        f.counter(
            &catalog::PROBES_CLOCK_STEPS_TOTAL,
            base.to_vec(),
            c.clock_steps,
        );
    }
}

/// How the series is measured, and what the last report said about the path and the clocks.
fn push_path(f: &mut Families, s: &SeriesState, base: &[LabelPair]) {
    f.gauge(
        &catalog::PROBE_INFO,
        with(base.to_vec(), &[("timestamping", s.timestamping.as_str())]),
        1.0,
    );
    for (dir, value) in [
        ("forward", s.jitter_forward_ns),
        ("reverse", s.jitter_reverse_ns),
    ] {
        if let Some(v) = value {
            f.gauge(
                &catalog::JITTER_SECONDS,
                with(base.to_vec(), &[("direction", dir)]),
                seconds(v),
            );
        }
    }
    if let Some(v) = s.clock_error_ns {
        f.gauge(&catalog::CLOCK_ERROR_SECONDS, base.to_vec(), seconds(v));
    }
    if let Some(v) = s.clock_synchronized {
        let flag = if v { 1.0 } else { 0.0 };
        f.gauge(&catalog::CLOCK_SYNCHRONIZED, base.to_vec(), flag);
    }
}

/// What TCP and quinn said about the probe connections.
fn push_transport(f: &mut Families, key: &SeriesKey, s: &SeriesState, base: &[LabelPair]) {
    let c = &s.counters;
    if let Some(t) = s.tcp {
        for (def, value) in [
            (&catalog::TCP_SRTT_SECONDS, seconds(t.srtt_ns)),
            (&catalog::TCP_RTTVAR_SECONDS, seconds(t.rttvar_ns)),
            (&catalog::TCP_MIN_RTT_SECONDS, seconds(t.min_rtt_ns)),
            (&catalog::TCP_PMTU_BYTES, f64::from(t.pmtu_bytes)),
            (
                &catalog::TCP_SND_CWND_SEGMENTS,
                f64::from(t.snd_cwnd_segments),
            ),
            (
                &catalog::TCP_DELIVERY_RATE_BYTES_PER_SECOND,
                t.delivery_rate_bytes_per_second as f64,
            ),
        ] {
            f.gauge(def, base.to_vec(), value);
        }
    }
    if let Some(q) = s.quic {
        for (def, value) in [
            (&catalog::QUIC_RTT_SECONDS, seconds(q.rtt_ns)),
            (&catalog::QUIC_CWND_BYTES, q.cwnd_bytes as f64),
            (&catalog::QUIC_MTU_BYTES, f64::from(q.mtu_bytes)),
        ] {
            f.gauge(def, base.to_vec(), value);
        }
    }
    if key.protocol == Protocol::Quic {
        for (def, value) in [
            (&catalog::QUIC_LOST_PACKETS_TOTAL, c.quic_lost_packets),
            (
                &catalog::QUIC_CONGESTION_EVENTS_TOTAL,
                c.quic_congestion_events,
            ),
            (&catalog::QUIC_BLACK_HOLES_TOTAL, c.quic_black_holes),
        ] {
            f.counter(def, base.to_vec(), value);
        }
    }
    if key.kind == ProbeKind::Resume {
        for (result, value) in [
            ("accepted", c.zero_rtt_accepted),
            ("rejected", c.zero_rtt_rejected),
            ("unavailable", c.zero_rtt_unavailable),
        ] {
            f.counter(
                &catalog::QUIC_ZERO_RTT_TOTAL,
                with(base.to_vec(), &[("result", result)]),
                value,
            );
        }
    }
    if key.protocol == Protocol::Tcp {
        f.counter(
            &catalog::TCP_RETRANSMITS_TOTAL,
            base.to_vec(),
            c.retransmits,
        );
    }
}

/// The families a latency metric is served in, and its direction label.
struct LatencyFamilies {
    /// Since the collector started, in [`LATENCY_BUCKETS`].
    histogram: &'static MetricDef,
    /// Quantiles over the window.
    window: &'static MetricDef,
    direction: Option<&'static str>,
}

impl LatencyFamilies {
    fn of(metric: Metric) -> LatencyFamilies {
        let (histogram, window, direction) = match metric {
            Metric::Rtt => (&catalog::RTT_SECONDS, &catalog::RTT_WINDOW_SECONDS, None),
            Metric::OneWayForward => (
                &catalog::ONE_WAY_DELAY_SECONDS,
                &catalog::ONE_WAY_DELAY_WINDOW_SECONDS,
                Some("forward"),
            ),
            Metric::OneWayReverse => (
                &catalog::ONE_WAY_DELAY_SECONDS,
                &catalog::ONE_WAY_DELAY_WINDOW_SECONDS,
                Some("reverse"),
            ),
            Metric::IpdvForward => (
                &catalog::IPDV_SECONDS,
                &catalog::IPDV_WINDOW_SECONDS,
                Some("forward"),
            ),
            Metric::IpdvReverse => (
                &catalog::IPDV_SECONDS,
                &catalog::IPDV_WINDOW_SECONDS,
                Some("reverse"),
            ),
        };
        LatencyFamilies {
            histogram,
            window,
            direction,
        }
    }
}

/// A metric's histogram since the start and its summary over the window; both at zero when
/// the series has no samples of it yet, so every configured peer has them.
fn push_latency(
    f: &mut Families,
    metric: Metric,
    state: Option<&MetricState>,
    bounds: BucketBounds,
    base: &[LabelPair],
) {
    let families = LatencyFamilies::of(metric);
    let labels = match families.direction {
        Some(d) => with(base.to_vec(), &[("direction", d)]),
        None => base.to_vec(),
    };
    let mut h = Histogram::default();
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(bounds.ns().len());
    for (i, bound) in bounds.ns().iter().enumerate() {
        cumulative += state.map_or(0, |m| m.buckets.get(i).copied().unwrap_or(0));
        let mut b = Bucket::default();
        b.set_upper_bound(seconds(*bound));
        b.set_cumulative_count(cumulative);
        buckets.push(b);
    }
    h.set_bucket(buckets);
    h.set_sample_count(state.map_or(0, |m| m.count));
    h.set_sample_sum(state.map_or(0.0, |m| seconds(m.sum_ns)));
    f.histogram(families.histogram, labels.clone(), h);

    let window = state.map(|m| m.window());
    let mut summary = Summary::default();
    summary.set_quantile(
        WINDOW_QUANTILES
            .iter()
            .map(|q| {
                let mut quantile = Quantile::default();
                quantile.set_quantile(*q);
                quantile.set_value(
                    window
                        .and_then(|w| w.quantile(*q))
                        .map_or(f64::NAN, seconds),
                );
                quantile
            })
            .collect(),
    );
    summary.set_sample_count(window.map_or(0, |w| w.count()));
    summary.set_sample_sum(window.map_or(0.0, |w| seconds(w.sum_ns())));
    f.summary(families.window, labels, summary);
}

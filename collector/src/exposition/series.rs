//! Probe series families, one set per series key: probe counters, a latency histogram since
//! the start and a summary over the window per metric, jitter, the clock, TCP_INFO and quinn
//! path figures. Owns the latency bucket layout and the window quantiles.

use xcbench_snapshot::{Metric, ProbeKind, Protocol};

use super::catalog::{self, MetricDef};
use super::{pair_labels, seconds, Classic, Families, Labels};
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

/// Every probe series' families (of those the rendering writes: `f.series`).
pub(super) fn push_families(f: &mut Families, store: &Store) {
    for (key, s) in store.series_range(f.series) {
        push_series(f, key, s);
    }
}

/// One probe series' families.
pub(super) fn push_series(f: &mut Families, key: &SeriesKey, s: &SeriesState) {
    let pairs = series_labels(key);
    let base = Labels::new(&pairs);
    push_probe_counts(f, key, s, base);
    push_path(f, s, base);
    push_transport(f, key, s, base);
    for &metric in key.kind.metrics() {
        push_latency(f, metric, s.metrics.get(&metric), &pairs);
    }
    push_flows(f, s, &pairs);
}

/// Each flow of a series probed over several: its counts, and its RTT over the window
/// (where window summaries are served), labelled `flow` (0 to 15).
fn push_flows(f: &mut Families, s: &SeriesState, pairs: &[(&str, &str)]) {
    let mut number = itoa::Buffer::new();
    for (flow, state) in &s.flows {
        let flow_label = [("flow", number.format(*flow))];
        let labels = Labels::new(pairs).and(&flow_label);
        for (def, value) in [
            (&catalog::FLOW_PROBES_SENT_TOTAL, state.sent),
            (&catalog::FLOW_PROBES_RECEIVED_TOTAL, state.received),
            (&catalog::FLOW_PROBES_LOST_TOTAL, state.lost),
        ] {
            f.counter(def, labels, value);
        }
        if !f.summarized(Metric::Rtt) || !f.wants(&catalog::FLOW_RTT_WINDOW_SECONDS) {
            continue;
        }
        let w = state.rtt_window();
        let values: Vec<f64> = WINDOW_QUANTILES
            .iter()
            .map(|q| w.quantile(*q).map_or(f64::NAN, seconds))
            .collect();
        f.summary(
            &catalog::FLOW_RTT_WINDOW_SECONDS,
            labels,
            &values,
            w.count(),
            seconds(w.sum_ns()),
        );
    }
}

/// The pair, `kind` and `load`.
pub(super) fn series_labels(k: &SeriesKey) -> Vec<(&str, &str)> {
    let mut v = pair_labels(&k.source, &k.peer, k.protocol);
    v.extend([("kind", k.kind.as_str()), ("load", k.load.as_str())]);
    v
}

/// Probe outcomes, and losses by direction where the reflector can tell.
fn push_probe_counts(f: &mut Families, key: &SeriesKey, s: &SeriesState, base: Labels<'_>) {
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
        f.counter(def, base, value);
    }
    // Only STAMP's stateful reflector tells which way a probe was lost, and only STAMP
    // measures one-way delay, which a clock step can spoil.
    if key.kind == ProbeKind::Stamp {
        for (dir, value) in [("forward", c.lost_forward), ("reverse", c.lost_reverse)] {
            f.counter(
                &catalog::PROBES_LOST_DIRECTION_TOTAL,
                base.and(&[("direction", dir)]),
                value,
            );
        }
        f.counter(&catalog::PROBES_CLOCK_STEPS_TOTAL, base, c.clock_steps);
        for (dir, value) in [
            ("forward", c.remarked_forward),
            ("reverse", c.remarked_reverse),
        ] {
            f.counter(
                &catalog::PROBES_REMARKED_TOTAL,
                base.and(&[("direction", dir)]),
                value,
            );
        }
    }
}

/// How the series is measured, and what the last report said about the path and the clocks.
fn push_path(f: &mut Families, s: &SeriesState, base: Labels<'_>) {
    f.gauge(
        &catalog::PROBE_INFO,
        base.and(&[("timestamping", s.timestamping.as_str())]),
        1.0,
    );
    for (dir, value) in [
        ("forward", s.jitter_forward_ns),
        ("reverse", s.jitter_reverse_ns),
    ] {
        if let Some(v) = value {
            f.gauge(
                &catalog::JITTER_SECONDS,
                base.and(&[("direction", dir)]),
                seconds(v),
            );
        }
    }
    for (def, dir, value) in [
        (&catalog::PROBES_RECEIVED_DSCP, "forward", s.dscp_forward),
        (&catalog::PROBES_RECEIVED_DSCP, "reverse", s.dscp_reverse),
        (&catalog::PROBES_RECEIVED_ECN, "forward", s.ecn_forward),
        (&catalog::PROBES_RECEIVED_ECN, "reverse", s.ecn_reverse),
    ] {
        if let Some(v) = value {
            f.gauge(def, base.and(&[("direction", dir)]), f64::from(v));
        }
    }
    if let Some(v) = s.clock_error_ns {
        f.gauge(&catalog::CLOCK_ERROR_SECONDS, base, seconds(v));
    }
    if let Some(v) = s.clock_synchronized {
        let flag = if v { 1.0 } else { 0.0 };
        f.gauge(&catalog::CLOCK_SYNCHRONIZED, base, flag);
    }
}

/// What TCP and quinn said about the probe connections.
fn push_transport(f: &mut Families, key: &SeriesKey, s: &SeriesState, base: Labels<'_>) {
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
            f.gauge(def, base, value);
        }
    }
    if let Some(q) = s.quic {
        for (def, value) in [
            (&catalog::QUIC_RTT_SECONDS, seconds(q.rtt_ns)),
            (&catalog::QUIC_CWND_BYTES, q.cwnd_bytes as f64),
            (&catalog::QUIC_MTU_BYTES, f64::from(q.mtu_bytes)),
        ] {
            f.gauge(def, base, value);
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
            f.counter(def, base, value);
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
                base.and(&[("result", result)]),
                value,
            );
        }
    }
    if key.protocol == Protocol::Tcp {
        f.counter(&catalog::TCP_RETRANSMITS_TOTAL, base, c.retransmits);
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

/// A metric's histogram since the start and (where served) its summary over the window;
/// both at zero when the series has no samples of it yet, so every configured peer has them.
fn push_latency(
    f: &mut Families,
    metric: Metric,
    state: Option<&MetricState>,
    pairs: &[(&str, &str)],
) {
    let families = LatencyFamilies::of(metric);
    let direction;
    let labels = match families.direction {
        Some(d) => {
            direction = [("direction", d)];
            Labels::new(pairs).and(&direction)
        }
        None => Labels::new(pairs),
    };
    f.histogram(
        families.histogram,
        labels,
        &Classic {
            buckets: state.map_or(&[][..], |m| m.buckets.as_slice()),
            count: state.map_or(0, |m| m.count),
            sum_ns: state.map_or(0, |m| m.sum_ns),
            native: state.map(|m| &m.native),
        },
    );
    // The window's quantiles are the costly part: not computed for an answer without them.
    if !f.summarized(metric) || !f.wants(families.window) {
        return;
    }
    let window = state.map(|m| m.window());
    let values: Vec<f64> = WINDOW_QUANTILES
        .iter()
        .map(|q| {
            window
                .and_then(|w| w.quantile(*q))
                .map_or(f64::NAN, seconds)
        })
        .collect();
    f.summary(
        families.window,
        labels,
        &values,
        window.map_or(0, |w| w.count()),
        window.map_or(0.0, |w| seconds(w.sum_ns())),
    );
}

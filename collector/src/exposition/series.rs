//! Probe series families: probe counters, latency histograms and window summaries per
//! metric, jitter, the clock, TCP_INFO and quinn path figures, one set per series key.

use prometheus::proto::{
    Bucket, Histogram, LabelPair, Metric as PMetric, MetricType, Quantile, Summary,
};
use xcbench_snapshot::{Metric, ProbeKind, Protocol};

use super::{pair_labels, seconds, with, Families, WINDOW_QUANTILES};
use crate::store::{SeriesKey, Store};

/// Every probe series' families.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    let window_s = store.window_ns() / 1_000_000_000;
    for (key, s) in store.series() {
        let base = series_labels(key);
        let c = &s.counters;
        let counters: [(&str, &str, u64); 6] = [
            ("xcbench_probes_sent_total", "Probes transmitted.", c.sent),
            (
                "xcbench_probes_received_total",
                "Replies received within the loss timeout (first copy).",
                c.received,
            ),
            (
                "xcbench_probes_lost_total",
                "Probes whose own loss timeout expired without a reply.",
                c.lost,
            ),
            (
                "xcbench_probes_duplicated_total",
                "Extra copies of replies already received.",
                c.duplicated,
            ),
            (
                "xcbench_probes_reordered_total",
                "Replies that arrived after the reply to a later probe.",
                c.reordered,
            ),
            (
                "xcbench_probes_late_total",
                "Replies that arrived after their probe was counted lost.",
                c.late,
            ),
        ];
        for (name, help, value) in counters {
            f.counter(name, help, base.clone(), value);
        }
        // Only STAMP's stateful reflector tells which way a probe was lost.
        let directions = if key.kind == ProbeKind::Stamp {
            &[("forward", c.lost_forward), ("reverse", c.lost_reverse)][..]
        } else {
            &[]
        };
        for &(dir, value) in directions {
            f.counter(
                "xcbench_probes_lost_direction_total",
                "Lost probes by direction, attributed with the stateful reflector's sequence number once a later probe is answered.",
                with(base.clone(), &[("direction", dir)]),
                value,
            );
        }
        f.gauge(
            "xcbench_probe_info",
            "How a series is measured: timestamping=kernel (SO_TIMESTAMPNS) or user (clock read after recvmsg).",
            with(base.clone(), &[("timestamping", s.timestamping.as_str())]),
            1.0,
        );
        for (dir, value) in [
            ("forward", s.jitter_forward_ns),
            ("reverse", s.jitter_reverse_ns),
        ] {
            if let Some(v) = value {
                f.gauge(
                    "xcbench_jitter_seconds",
                    "RFC 3550 interarrival jitter estimate at the last report, per direction.",
                    with(base.clone(), &[("direction", dir)]),
                    seconds(v),
                );
            }
        }
        if let Some(v) = s.clock_error_ns {
            f.gauge(
                "xcbench_clock_error_seconds",
                "Combined clock error estimate of both ends (RFC 8762 Error Estimate fields) from the last reply; bounds one-way delay error.",
                base.clone(),
                seconds(v),
            );
        }
        if let Some(v) = s.clock_synchronized {
            f.gauge(
                "xcbench_clock_synchronized",
                "1 when both ends reported clocks synchronized to UTC in the last reply.",
                base.clone(),
                if v { 1.0 } else { 0.0 },
            );
        }
        if let Some(t) = s.tcp {
            let gauges: [(&str, &str, f64); 6] = [
                (
                    "xcbench_tcp_srtt_seconds",
                    "TCP_INFO smoothed RTT of the last probe connection.",
                    seconds(t.srtt_ns),
                ),
                (
                    "xcbench_tcp_rttvar_seconds",
                    "TCP_INFO RTT variance of the last probe connection.",
                    seconds(t.rttvar_ns),
                ),
                (
                    "xcbench_tcp_min_rtt_seconds",
                    "TCP_INFO minimum RTT of the last probe connection.",
                    seconds(t.min_rtt_ns),
                ),
                (
                    "xcbench_tcp_pmtu_bytes",
                    "TCP_INFO path MTU of the last probe connection.",
                    f64::from(t.pmtu_bytes),
                ),
                (
                    "xcbench_tcp_snd_cwnd_segments",
                    "TCP_INFO congestion window of the last probe connection.",
                    f64::from(t.snd_cwnd_segments),
                ),
                (
                    "xcbench_tcp_delivery_rate_bytes_per_second",
                    "TCP_INFO delivery-rate estimate of the last probe connection.",
                    t.delivery_rate_bytes_per_second as f64,
                ),
            ];
            for (name, help, value) in gauges {
                f.gauge(name, help, base.clone(), value);
            }
        }
        if let Some(q) = s.quic {
            let gauges: [(&str, &str, f64); 3] = [
                (
                    "xcbench_quic_rtt_seconds",
                    "quinn's smoothed RTT estimate of the last QUIC probe connection.",
                    seconds(q.rtt_ns),
                ),
                (
                    "xcbench_quic_cwnd_bytes",
                    "Congestion window of the last QUIC probe connection.",
                    q.cwnd_bytes as f64,
                ),
                (
                    "xcbench_quic_mtu_bytes",
                    "Largest UDP payload the last QUIC probe connection's path carries (PLPMTUD).",
                    f64::from(q.mtu_bytes),
                ),
            ];
            for (name, help, value) in gauges {
                f.gauge(name, help, base.clone(), value);
            }
        }
        if key.protocol == Protocol::Quic {
            let counters: [(&str, &str, u64); 3] = [
                (
                    "xcbench_quic_lost_packets_total",
                    "QUIC packets the probe connections declared lost (quinn path stats).",
                    c.quic_lost_packets,
                ),
                (
                    "xcbench_quic_congestion_events_total",
                    "Congestion events on the QUIC probe connections.",
                    c.quic_congestion_events,
                ),
                (
                    "xcbench_quic_black_holes_total",
                    "MTU black holes quinn detected on the QUIC probe connections.",
                    c.quic_black_holes,
                ),
            ];
            for (name, help, value) in counters {
                f.counter(name, help, base.clone(), value);
            }
        }
        if key.kind == ProbeKind::Resume {
            for (result, value) in [
                ("accepted", c.zero_rtt_accepted),
                ("rejected", c.zero_rtt_rejected),
                ("unavailable", c.zero_rtt_unavailable),
            ] {
                f.counter(
                    "xcbench_quic_zero_rtt_total",
                    "Resume probes by 0-RTT outcome: accepted, rejected by the peer (data sent again after the handshake), unavailable (no session ticket, full handshake).",
                    with(base.clone(), &[("result", result)]),
                    value,
                );
            }
        }
        if key.protocol == Protocol::Tcp {
            f.counter(
                "xcbench_tcp_retransmits_total",
                "TCP segments retransmitted on probe connections (TCP_INFO total_retrans; SYN retransmissions for kind=connect).",
                base.clone(),
                c.retransmits,
            );
        }
        for metric in key.kind.metrics() {
            let (family, dir) = metric_family(*metric);
            let labels = match dir {
                Some(d) => with(base.clone(), &[("direction", d)]),
                None => base.clone(),
            };
            let state = s.metrics.get(metric);
            // Histogram over everything since the collector started.
            let mut h = Histogram::default();
            let mut cumulative = 0;
            let bounds = store.bucket_bounds().ns();
            let mut buckets = Vec::with_capacity(bounds.len());
            for (i, bound) in bounds.iter().enumerate() {
                cumulative += state.map_or(0, |m| m.buckets.get(i).copied().unwrap_or(0));
                let mut b = Bucket::default();
                b.set_upper_bound(seconds(*bound));
                b.set_cumulative_count(cumulative);
                buckets.push(b);
            }
            h.set_bucket(buckets);
            h.set_sample_count(state.map_or(0, |m| m.count));
            h.set_sample_sum(state.map_or(0.0, |m| seconds(m.sum_ns)));
            let mut m = PMetric::from_label(labels.clone());
            m.set_histogram(h);
            f.push(
                &format!("{family}_seconds"),
                help_for(family),
                MetricType::HISTOGRAM,
                m,
            );

            // Quantiles over the sliding window from the merged HdrHistograms.
            let mut summary = Summary::default();
            let window = state.map(|m| m.window());
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
            let mut m = PMetric::from_label(labels);
            m.set_summary(summary);
            let help = format!(
                "Quantiles (p50, p90, p99, p99.9, max=1) over the last {window_s}s from merged HdrHistograms (bucket upper values, 0.1% or 512 ns resolution); _sum/_count cover the same window."
            );
            f.push(
                &format!("{family}_window_seconds"),
                &help,
                MetricType::SUMMARY,
                m,
            );
        }
    }
}

/// Histogram family name and direction label for a metric.
fn metric_family(metric: Metric) -> (&'static str, Option<&'static str>) {
    match metric {
        Metric::Rtt => ("xcbench_rtt", None),
        Metric::OneWayForward => ("xcbench_one_way_delay", Some("forward")),
        Metric::OneWayReverse => ("xcbench_one_way_delay", Some("reverse")),
        Metric::IpdvForward => ("xcbench_ipdv", Some("forward")),
        Metric::IpdvReverse => ("xcbench_ipdv", Some("reverse")),
    }
}

const HELP_RTT: &str = "Round-trip time (T4-T1)-(T3-T2): reflector dwell excluded; T4 kernel receive timestamp where available.";
const HELP_OWD: &str = "One-way delay, forward T2-T1 and reverse T4-T3; as exact as the two clocks agree (see xcbench_clock_error_seconds).";
const HELP_IPDV: &str =
    "Absolute IP packet delay variation (RFC 5481) between consecutive probes, per direction.";

fn help_for(family: &str) -> &'static str {
    match family {
        "xcbench_rtt" => HELP_RTT,
        "xcbench_one_way_delay" => HELP_OWD,
        _ => HELP_IPDV,
    }
}

fn series_labels(k: &SeriesKey) -> Vec<LabelPair> {
    with(
        pair_labels(&k.source, &k.peer, k.protocol),
        &[("kind", k.kind.as_str()), ("load", k.load.as_str())],
    )
}

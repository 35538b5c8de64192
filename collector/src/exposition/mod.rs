//! `/metrics`: a custom `prometheus` Collector that builds every metric family from the store
//! at scrape time (no global registry, nothing cached between scrapes).
//!
//! Series labels: `src_agent`, `src_cloud`, `src_region` (the prober), `dst_agent`,
//! `dst_cloud`, `dst_region` (the reflector), `protocol`, `kind`, and `load` (`idle`, or
//! `bench` for outcomes recorded while a throughput test between the pair ran). "forward" is
//! src -> dst. Scheduled throughput tests (`xcbench_bench_*`) carry the pair, `protocol` and
//! `direction` (forward: the testing agent sent).

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric as PMetric, MetricFamily, MetricType,
    Quantile, Summary,
};
use xcbench_snapshot::{BenchOutcome, Identity, Metric, ProbeKind, Protocol};

use crate::store::{BucketBounds, SeriesKey, Store, ThroughputKey};

/// Classic histogram buckets for interconnect latencies: fine between 0.5 and 5 ms where
/// ExpressRoute/FastConnect pairs sit, coarse out to 10 s. The store counts samples into
/// them at ingest (see [`BucketBounds`]).
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

/// Reads the clock for window expiry; a parameter so tests can pin it.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The scrape-time collector over a shared store.
pub struct StoreCollector {
    store: Arc<Mutex<Store>>,
    clock: Clock,
}

impl StoreCollector {
    pub fn new(store: Arc<Mutex<Store>>, clock: Clock) -> StoreCollector {
        StoreCollector { store, clock }
    }
}

impl Collector for StoreCollector {
    fn desc(&self) -> Vec<&Desc> {
        Vec::new()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let now = (self.clock)();
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        store.expire(now);
        families(&store)
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

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_owned());
    l.set_value(value.to_owned());
    l
}

/// Who measured whom, over what: the labels probe series and scheduled tests share.
fn pair_labels(source: &Identity, peer: &Identity, protocol: Protocol) -> Vec<LabelPair> {
    vec![
        label("src_agent", source.id.as_str()),
        label("src_cloud", source.cloud.as_str()),
        label("src_region", &source.region),
        label("dst_agent", peer.id.as_str()),
        label("dst_cloud", peer.cloud.as_str()),
        label("dst_region", &peer.region),
        label("protocol", protocol.as_str()),
    ]
}

fn series_labels(k: &SeriesKey) -> Vec<LabelPair> {
    with(
        pair_labels(&k.source, &k.peer, k.protocol),
        &[("kind", k.kind.as_str()), ("load", k.load.as_str())],
    )
}

fn bench_labels(k: &ThroughputKey) -> Vec<LabelPair> {
    with(
        pair_labels(&k.source, &k.peer, k.protocol),
        &[("direction", k.flow.as_str())],
    )
}

/// Scheduled throughput tests, per direction: totals and the last test's figures.
fn bench_families(f: &mut Families, store: &Store) {
    for (key, b) in store.throughput() {
        let base = bench_labels(key);
        for &outcome in BenchOutcome::ALL {
            let n = b.tests.get(outcome);
            f.counter(
                "xcbench_bench_tests_total",
                "Scheduled throughput tests, by outcome (refused: the peer or this agent was busy or declined; failed: no connection or the peer was lost).",
                with(base.clone(), &[("result", outcome.as_str())]),
                n,
            );
        }
        for (side, bytes, ns) in [
            ("sender", b.counts.sender_bytes, b.counts.sender_ns),
            ("receiver", b.counts.receiver_bytes, b.counts.receiver_ns),
        ] {
            let labels = with(base.clone(), &[("side", side)]);
            f.counter(
                "xcbench_bench_bytes_total",
                "Bytes of scheduled tests over their counted intervals: sender = accepted by the sending kernel or QUIC stack, receiver = delivered to the receiving application. Goodput = rate(bytes) / rate(seconds).",
                labels.clone(),
                bytes,
            );
            f.counter_f64(
                "xcbench_bench_seconds_total",
                "Counted time of scheduled tests (after the omitted warm-up), by each side's clock.",
                labels,
                seconds(ns),
            );
        }
        f.counter(
            "xcbench_bench_retransmits_total",
            "TCP segments retransmitted (TCP_INFO), or QUIC packets quinn declared lost, by senders of scheduled tests.",
            base.clone(),
            b.counts.retransmits,
        );
        f.counter(
            "xcbench_bench_datagrams_total",
            "UDP datagrams the receivers of scheduled tests counted.",
            base.clone(),
            b.counts.datagrams,
        );
        f.counter(
            "xcbench_bench_datagrams_lost_total",
            "UDP datagrams missing from the sequence at the receivers of scheduled tests.",
            base.clone(),
            b.counts.datagrams_lost,
        );
        if let Some(last) = b.last {
            f.gauge(
                "xcbench_bench_goodput_bytes_per_second",
                "The last scheduled test's goodput: bytes delivered to the receiving application over its counted time.",
                base.clone(),
                last.goodput_bytes_per_second,
            );
            f.gauge(
                "xcbench_bench_interval_goodput_min_bytes_per_second",
                "The last scheduled test's slowest counted interval at the receiver.",
                base.clone(),
                last.interval_min_bytes_per_second as f64,
            );
            f.gauge(
                "xcbench_bench_last_test_timestamp_seconds",
                "When the last scheduled test that ran started (the testing agent's clock, Unix time).",
                base,
                seconds(last.started_unix_ns),
            );
        }
    }
}

fn with(mut labels: Vec<LabelPair>, extra: &[(&str, &str)]) -> Vec<LabelPair> {
    labels.extend(extra.iter().map(|(n, v)| label(n, v)));
    labels
}

struct Families(std::collections::BTreeMap<String, MetricFamily>);

impl Families {
    fn push(&mut self, name: &str, help: &str, kind: MetricType, metric: PMetric) {
        let f = self.0.entry(name.to_owned()).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(name.to_owned());
            f.set_help(help.to_owned());
            f.set_type(kind);
            f
        });
        f.mut_metric().push(metric);
    }

    fn counter(&mut self, name: &str, help: &str, labels: Vec<LabelPair>, value: u64) {
        self.counter_f64(name, help, labels, value as f64);
    }

    fn counter_f64(&mut self, name: &str, help: &str, labels: Vec<LabelPair>, value: f64) {
        let mut c = Counter::default();
        c.set_value(value);
        let mut m = PMetric::from_label(labels);
        m.set_counter(c);
        self.push(name, help, MetricType::COUNTER, m);
    }

    fn gauge(&mut self, name: &str, help: &str, labels: Vec<LabelPair>, value: f64) {
        let mut g = Gauge::default();
        g.set_value(value);
        let mut m = PMetric::from_label(labels);
        m.set_gauge(g);
        self.push(name, help, MetricType::GAUGE, m);
    }
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Every family for the store's current content, sorted by name.
pub fn families(store: &Store) -> Vec<MetricFamily> {
    let mut f = Families(Default::default());
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
    bench_families(&mut f, store);
    for a in store.agents() {
        let base = vec![
            label("agent", a.identity.id.as_str()),
            label("cloud", a.identity.cloud.as_str()),
            label("region", &a.identity.region),
        ];
        let r = &a.reflector;
        for (proto, reflected, malformed, refused) in [
            ("udp", r.reflected, r.malformed, r.refused),
            ("tcp", r.tcp_reflected, r.tcp_malformed, r.tcp_refused),
            ("quic", r.quic_reflected, r.quic_malformed, r.quic_refused),
        ] {
            let labels = with(base.clone(), &[("protocol", proto)]);
            f.counter(
                "xcbench_reflector_reflected_total",
                "Probes answered by the agent's reflector (STAMP test packets, TCP requests, QUIC stream and DATAGRAM requests).",
                labels.clone(),
                reflected,
            );
            f.counter(
                "xcbench_reflector_malformed_total",
                "Datagrams dropped, or TCP and QUIC connections closed, for not being probe framing.",
                labels.clone(),
                malformed,
            );
            f.counter("xcbench_reflector_refused_total", "UDP sessions refused (session table full); TCP connections refused (per-source cap) or closed idle; QUIC connections refused (per-source cap, unknown client certificate, handshake timeout).", labels, refused);
        }
        f.counter(
            "xcbench_sender_malformed_total",
            "Datagrams on probe sockets that were not reflected STAMP packets.",
            base.clone(),
            a.sender.malformed,
        );
        f.counter("xcbench_sender_unmatched_total", "Reflected packets that matched no probe sent (unknown sequence, wrong timestamp or source).", base.clone(), a.sender.unmatched);
        f.gauge("xcbench_agent_last_report_timestamp_seconds", "When the collector last accepted a snapshot from the agent (collector clock, Unix time).", base, seconds(a.last_report_ns));
    }
    for (result, value) in [
        ("accepted", store.ingest.accepted),
        ("duplicate", store.ingest.duplicate),
        ("rejected", store.ingest.rejected),
    ] {
        f.counter(
            "xcbench_collector_snapshots_total",
            "Snapshots received, by result (duplicate = already taken, acknowledged, not counted again).",
            vec![label("result", result)],
            value,
        );
    }
    f.gauge(
        "xcbench_collector_series",
        "Series held by the collector.",
        vec![],
        store.series_count() as f64,
    );
    f.0.into_values().collect()
}

/// Renders families in the Prometheus text format.
pub fn render(families: &[MetricFamily]) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    // Encoding well-formed families into a Vec cannot fail.
    prometheus::TextEncoder::new()
        .encode(families, &mut out)
        .expect("text encoding");
    String::from_utf8(out).expect("text format is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::snapshot;
    use xcbench_snapshot::{
        BenchCounts, BenchResult, Counters, Flow, Load, QuicPath, ReflectorCounters,
        SeriesSnapshot, TcpInfo, TimestampSource,
    };

    const S: u64 = 1_000_000_000;

    fn fixed_store() -> Store {
        let mut store = Store::new(300 * S, 10 * S, 100, LATENCY_BUCKETS);
        let counters = Counters {
            sent: 100,
            received: 97,
            lost: 3,
            lost_forward: 1,
            lost_reverse: 2,
            duplicated: 1,
            reordered: 2,
            late: 1,
            ..Counters::default()
        };
        let rtts: Vec<u64> = (0..97).map(|i| 1_500_000 + i * 10_000).collect();
        let mut s = snapshot(1, &rtts, counters);
        // One series per TCP and QUIC family shape: TCP_INFO, quinn path stats, 0-RTT.
        let udp = s.series[0].clone();
        let only_rtt = |protocol, kind, timestamping| SeriesSnapshot {
            protocol,
            kind,
            timestamping,
            counters: Counters {
                sent: 10,
                received: 10,
                ..Counters::default()
            },
            jitter_forward_ns: None,
            jitter_reverse_ns: None,
            clock_error_ns: None,
            clock_synchronized: None,
            ..udp.clone()
        };
        let mut tcp = only_rtt(Protocol::Tcp, ProbeKind::Rr, TimestampSource::Kernel);
        tcp.counters.retransmits = 2;
        tcp.tcp = Some(TcpInfo {
            srtt_ns: 2_087_000,
            rttvar_ns: 250_000,
            min_rtt_ns: 2_001_000,
            pmtu_bytes: 1400,
            snd_cwnd_segments: 10,
            delivery_rate_bytes_per_second: 1_250_000,
        });
        let mut quic = only_rtt(Protocol::Quic, ProbeKind::Rr, TimestampSource::User);
        quic.counters.quic_lost_packets = 3;
        quic.counters.quic_congestion_events = 1;
        quic.quic = Some(QuicPath {
            rtt_ns: 2_100_000,
            cwnd_bytes: 14_720,
            mtu_bytes: 1_372,
        });
        let mut resume = only_rtt(Protocol::Quic, ProbeKind::Resume, TimestampSource::User);
        resume.counters.zero_rtt_accepted = 9;
        resume.counters.zero_rtt_rejected = 1;
        // The same TCP series while a throughput test ran: latency under load.
        let loaded = SeriesSnapshot {
            load: Load::Bench,
            tcp: None,
            ..tcp.clone()
        };
        s.series.extend([tcp, quic, resume, loaded]);
        s.bench = vec![BenchResult {
            peer: udp.peer.clone(),
            protocol: Protocol::Tcp,
            flow: Flow::Forward,
            outcome: BenchOutcome::Ok,
            started_unix_ns: 1_699_999_990 * S,
            counts: BenchCounts {
                sender_bytes: 240_000_000,
                sender_ns: 10 * S,
                receiver_bytes: 239_000_000,
                receiver_ns: 10 * S,
                retransmits: 12,
                datagrams: 0,
                datagrams_lost: 0,
            },
            interval_min_bytes_per_second: 22_500_000,
        }];
        s.reflector = ReflectorCounters {
            reflected: 50,
            tcp_reflected: 20,
            quic_reflected: 30,
            quic_refused: 1,
            ..ReflectorCounters::default()
        };
        let hists: Vec<Vec<u64>> = vec![
            rtts,
            vec![2_050_000; 10],
            vec![2_300_000; 10],
            vec![2_200_000; 10],
            vec![2_900_000; 10],
        ];
        for (series, values) in s.series.iter_mut().zip(&hists).skip(1) {
            let mut h = xcbench_snapshot::LatencyHistogram::new();
            values.iter().for_each(|v| h.record_ns(*v));
            series.histograms = vec![xcbench_snapshot::HistogramDelta {
                metric: Metric::Rtt,
                count: h.len(),
                sum_ns: values.iter().sum(),
                hdr: h.encode_base64(),
            }];
        }
        crate::store::tests::ingest(&mut store, &s, 1_700_000_000 * S).unwrap();
        store
    }

    #[test]
    fn golden_metrics() {
        let text = render(&families(&fixed_store()));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/metrics.txt");
        if std::env::var_os("XCBENCH_UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let want =
            std::fs::read_to_string(path).expect("golden file; XCBENCH_UPDATE_GOLDEN=1 writes it");
        assert_eq!(
            text, want,
            "/metrics changed; review, then XCBENCH_UPDATE_GOLDEN=1"
        );
    }

    #[test]
    fn counts_and_quantiles_in_text() {
        let text = render(&families(&fixed_store()));
        let labels = r#"src_agent="az-eastus-app1",src_cloud="azure",src_region="eastus",dst_agent="oci-ashburn-db1",dst_cloud="oci",dst_region="us-ashburn-1",protocol="udp",kind="stamp",load="idle""#;
        assert!(
            text.contains(&format!("xcbench_probes_sent_total{{{labels}}} 100\n")),
            "no probes_sent line with {labels}"
        );
        // Latency under load: the TCP series while a test ran, beside the idle one.
        let pair = r#"src_agent="az-eastus-app1",src_cloud="azure",src_region="eastus",dst_agent="oci-ashburn-db1",dst_cloud="oci",dst_region="us-ashburn-1",protocol="tcp""#;
        assert!(text.contains(&format!(
            "xcbench_rtt_seconds_sum{{{pair},kind=\"rr\",load=\"bench\"}} 0.029\n"
        )));
        assert!(text.contains(&format!(
            "xcbench_rtt_seconds_sum{{{pair},kind=\"rr\",load=\"idle\"}} 0.0205\n"
        )));
        // The scheduled test: 239 MB delivered in 10 counted seconds.
        assert!(text.contains(&format!(
            "xcbench_bench_goodput_bytes_per_second{{{pair},direction=\"forward\"}} 23900000\n"
        )));
        assert!(text.contains(&format!("xcbench_rtt_seconds_count{{{labels}}} 97\n")));
        // p50 of 1.5 ms + i*10 us, i in 0..97, is the 49th value: 1.98 ms (bucket top <= +0.1%).
        let p50 = text
            .lines()
            .find(|l| {
                l.starts_with("xcbench_rtt_window_seconds{") && l.contains("quantile=\"0.5\"")
            })
            .unwrap();
        let v: f64 = p50.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((0.00198..=0.00198 * 1.001).contains(&v), "{p50}");
    }
}

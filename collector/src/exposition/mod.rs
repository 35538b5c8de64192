//! `/metrics`: a custom `prometheus` Collector that builds every metric family from the store
//! at scrape time (no global registry, nothing cached between scrapes).
//!
//! Series labels: `src_agent`, `src_cloud`, `src_region` (the prober), `dst_agent`,
//! `dst_cloud`, `dst_region` (the reflector), `protocol`, `kind`, and `load` (`idle`, or
//! `bench` for outcomes recorded while a throughput test between the pair ran). "forward" is
//! src -> dst. Scheduled throughput tests (`xcbench_bench_*`) carry the pair, `protocol` and
//! `direction` (forward: the testing agent sent).
//!
//! - this file: [`StoreCollector`], [`families`] (the areas composed), [`render`], and the
//!   `Families` builder every area pushes through.
//! - `catalog` (`xcbench_snapshot::metrics`): every family's name, type, unit and help, in
//!   one table shared with the SLO rules, the gate and the dashboards.
//! - one file per area, as node_exporter has one per collector: `series` (probe series:
//!   counters, latency histograms and window summaries, jitter, clock, TCP_INFO, quinn path),
//!   `throughput` (scheduled tests, `xcbench_bench_*`), `agents` (reflector and sender
//!   counters, last report), `slo` (exact within-threshold counters and the SLO file's
//!   verdicts), `collector` (the collector's own ingest and series).

mod agents;
mod collector;
mod series;
mod slo;
mod throughput;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Counter, Gauge, Histogram, LabelPair, Metric as PMetric, MetricFamily, Summary,
};
use xcbench_snapshot::{Identity, Protocol};

use crate::store::Store;
use catalog::{Kind, MetricDef};
pub use xcbench_snapshot::metrics as catalog;

pub use series::{LATENCY_BUCKETS, WINDOW_QUANTILES};

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

/// Every family for the store's current content, sorted by name.
pub fn families(store: &Store) -> Vec<MetricFamily> {
    let mut f = Families::new(store.window_ns());
    series::push_families(&mut f, store);
    throughput::push_families(&mut f, store);
    agents::push_families(&mut f, store);
    slo::push_families(&mut f, store);
    collector::push_families(&mut f, store);
    f.into_sorted()
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

/// Families being built for one scrape, by name. Every push names a catalog entry, which
/// gives the family its name, type and help.
struct Families {
    window_seconds: u64,
    by_name: BTreeMap<&'static str, MetricFamily>,
}

impl Families {
    fn new(window_ns: u64) -> Families {
        Families {
            window_seconds: window_ns / 1_000_000_000,
            by_name: BTreeMap::new(),
        }
    }

    fn counter(&mut self, def: &'static MetricDef, labels: Vec<LabelPair>, value: u64) {
        self.counter_f64(def, labels, value as f64);
    }

    fn counter_f64(&mut self, def: &'static MetricDef, labels: Vec<LabelPair>, value: f64) {
        let mut c = Counter::default();
        c.set_value(value);
        let mut m = PMetric::from_label(labels);
        m.set_counter(c);
        self.push(def, Kind::Counter, m);
    }

    fn gauge(&mut self, def: &'static MetricDef, labels: Vec<LabelPair>, value: f64) {
        let mut g = Gauge::default();
        g.set_value(value);
        let mut m = PMetric::from_label(labels);
        m.set_gauge(g);
        self.push(def, Kind::Gauge, m);
    }

    fn histogram(&mut self, def: &'static MetricDef, labels: Vec<LabelPair>, histogram: Histogram) {
        let mut m = PMetric::from_label(labels);
        m.set_histogram(histogram);
        self.push(def, Kind::Histogram, m);
    }

    fn summary(&mut self, def: &'static MetricDef, labels: Vec<LabelPair>, summary: Summary) {
        let mut m = PMetric::from_label(labels);
        m.set_summary(summary);
        self.push(def, Kind::Summary, m);
    }

    /// `kind` is what the metric holds; a catalog entry of another type would be served with
    /// a TYPE line that contradicts its samples.
    fn push(&mut self, def: &'static MetricDef, kind: Kind, metric: PMetric) {
        debug_assert_eq!(def.kind(), kind, "{} pushed as a {kind:?}", def.name());
        let window_seconds = self.window_seconds;
        let family = self.by_name.entry(def.name()).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(def.name().to_owned());
            f.set_help(def.help(window_seconds).into_owned());
            f.set_type(metric_type(def.kind()));
            f
        });
        family.mut_metric().push(metric);
    }

    fn into_sorted(self) -> Vec<MetricFamily> {
        self.by_name.into_values().collect()
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_owned());
    l.set_value(value.to_owned());
    l
}

/// `labels` and then `extra`.
fn with(mut labels: Vec<LabelPair>, extra: &[(&str, &str)]) -> Vec<LabelPair> {
    labels.extend(extra.iter().map(|(n, v)| label(n, v)));
    labels
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

/// Prometheus' base unit for nanoseconds.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// How the prometheus crate types a family of `kind`.
fn metric_type(kind: Kind) -> prometheus::proto::MetricType {
    use prometheus::proto::MetricType;
    match kind {
        Kind::Counter => MetricType::COUNTER,
        Kind::Gauge => MetricType::GAUGE,
        Kind::Histogram => MetricType::HISTOGRAM,
        Kind::Summary => MetricType::SUMMARY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::snapshot;
    use xcbench_snapshot::{
        Counters, Flow, Load, Metric, ProbeKind, QuicPath, ResponderCount, SeriesSnapshot, TcpInfo,
        ThroughputCounts, ThroughputOutcome, ThroughputResult, TimestampSource,
    };

    const S: u64 = 1_000_000_000;

    fn fixed_store() -> Store {
        let mut store = Store::new(300 * S, 10 * S, 100, LATENCY_BUCKETS);
        // An SLO threshold of 2 ms on RTT, counted exactly per series.
        store.set_thresholds([(Metric::Rtt, vec![2_000_000])].into());
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
        s.throughput = vec![ThroughputResult {
            peer: udp.peer.clone(),
            protocol: Protocol::Tcp,
            flow: Flow::Forward,
            outcome: ThroughputOutcome::Ok,
            started_unix_ns: 1_699_999_990 * S,
            counts: ThroughputCounts {
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
        s.responders.udp.reflected = 50;
        s.responders.tcp.reflected = 20;
        s.responders.quic = ResponderCount {
            reflected: 30,
            refused: 1,
            ..ResponderCount::default()
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
        // One objective as the collector last judged it: 97 RTTs, 51 within 2 ms.
        let slo = xcbench_slo::SloFile::parse(
            "slo.yaml",
            "objectives:\n  - { name: rtt-p50, indicator: rtt, quantile: p50, at_most: 2ms, min_probes: 10 }\n",
        )
        .unwrap();
        let now = 1_700_000_000 * S;
        let evidence = xcbench_slo::Evidence {
            from_unix_ns: now - 3_600 * S,
            to_unix_ns: now,
            covered: Some((now - 3_600 * S, now)),
            series: 1,
            counters,
            distribution: xcbench_slo::evidence::Distribution::from_buckets(
                (0..97u64).map(|i| (1_500_000 + i * 10_000, 1)),
                |h| h,
            ),
            ..xcbench_slo::Evidence::default()
        };
        let result = xcbench_slo::judge(&slo.objectives[0], evidence, now);
        store.set_verdicts(now, vec![result]);
        // The mesh lists the pair and an agent that has not reported.
        let listed = |id: &str, cloud, region: &str| Identity {
            id: id.parse().unwrap(),
            cloud,
            region: region.into(),
            zone: String::new(),
        };
        store.set_mesh_agents(vec![
            listed("az-eastus-app1", xcbench_snapshot::Cloud::Azure, "eastus"),
            listed(
                "oci-ashburn-db1",
                xcbench_snapshot::Cloud::Oci,
                "us-ashburn-1",
            ),
            listed(
                "oci-ashburn-db2",
                xcbench_snapshot::Cloud::Oci,
                "us-ashburn-1",
            ),
        ]);
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

    /// The golden file's families are the catalog's, with the catalog's types: nothing is
    /// served that the catalog lacks, and the fixed store exercises every entry.
    #[test]
    fn golden_families_are_the_catalog() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/metrics.txt");
        let golden = std::fs::read_to_string(path).expect("golden file");
        let served: BTreeMap<&str, &str> = golden
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split_once(' ').expect("# TYPE name type"))
            .collect();
        for (name, kind) in &served {
            let def = catalog::ALL
                .iter()
                .find(|d| d.name() == *name)
                .unwrap_or_else(|| panic!("{name} is served but not in the catalog"));
            assert_eq!(*kind, def.kind().as_str(), "{name}");
        }
        for def in catalog::ALL {
            assert!(
                served.contains_key(def.name()),
                "{}: in the catalog but not in the golden file (give fixed_store a series that has it)",
                def.name()
            );
        }
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

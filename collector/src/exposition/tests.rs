//! The exposition against a fixed store: the golden answer, lean against full, protobuf
//! against text, remote-write samples against the answer, stale markers, native indexes.

use super::*;
use crate::remote_write::{Histograms, RemoteWriteConfig};
use crate::store::tests::snapshot;
use xcbench_snapshot::{
    Counters, Flow, Load, Metric, ProbeKind, QuicPath, ResponderCount, SeriesSnapshot, TcpInfo,
    ThroughputCounts, ThroughputOutcome, ThroughputResult, TimestampSource,
};

const S: u64 = 1_000_000_000;

fn fixed_store() -> Store {
    fixed().0
}

/// The fixed store, and the snapshot it took.
fn fixed() -> (Store, xcbench_snapshot::Snapshot) {
    fixed_native(None)
}

/// The fixed store counting native buckets at `schema` too, and the snapshot it took.
fn fixed_native(schema: Option<i8>) -> (Store, xcbench_snapshot::Snapshot) {
    let mut store = Store::new(300 * S, 10 * S, 100, LATENCY_BUCKETS);
    store.set_native_schema(schema);
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
    // Remote write after 3 requests: 1,500 samples sent, one retry, 20 refused.
    let rw = crate::remote_write::Stats::default();
    rw.sent_samples
        .store(1_500, std::sync::atomic::Ordering::Relaxed);
    rw.sent_bytes
        .store(41_234, std::sync::atomic::Ordering::Relaxed);
    rw.retries.store(1, std::sync::atomic::Ordering::Relaxed);
    rw.rejected_samples
        .store(20, std::sync::atomic::Ordering::Relaxed);
    rw.queue_samples
        .store(480, std::sync::atomic::Ordering::Relaxed);
    rw.queue_bytes
        .store(52_000, std::sync::atomic::Ordering::Relaxed);
    rw.last_sent_ns
        .store(now, std::sync::atomic::Ordering::Relaxed);
    store.remote_write = Some(std::sync::Arc::new(rw));
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
    (store, s)
}

#[test]
fn golden_metrics() {
    let text = render_text(&fixed_store(), &Options::full());
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
    let text = render_text(&fixed_store(), &Options::default());
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
        .find(|l| l.starts_with("xcbench_rtt_window_seconds{") && l.contains("quantile=\"0.5\""))
        .unwrap();
    let v: f64 = p50.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((0.00198..=0.00198 * 1.001).contains(&v), "{p50}");
}

/// `lean` is `full` without the window summaries it was not asked for: the same lines
/// otherwise, in the same order.
#[test]
fn lean_drops_only_the_summaries_not_asked_for() {
    let store = fixed_store();
    let full = render_text(&store, &Options::full());
    let lean = render_text(&store, &Options::default());
    let unasked = [
        "xcbench_one_way_delay_window_seconds",
        "xcbench_ipdv_window_seconds",
    ];
    let kept: Vec<&str> = full
        .lines()
        .filter(|l| {
            let name = l
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ")
                .split(['{', ' '])
                .next()
                .unwrap();
            !unasked.iter().any(|u| {
                name.strip_prefix(u)
                    .is_some_and(|rest| rest.is_empty() || rest == "_sum" || rest == "_count")
            })
        })
        .collect();
    assert!(
        kept.len() < full.lines().count(),
        "the fixed store has one-way and IPDV windows"
    );
    assert_eq!(lean.lines().collect::<Vec<_>>(), kept);
    assert!(lean.contains("xcbench_rtt_window_seconds{"));
    // Asked for none: no window family at all.
    let none = Options {
        window_summaries: Default::default(),
        ..Options::default()
    };
    assert!(!render_text(&store, &none).contains("_window_seconds{"));
}

/// The protobuf answer, read by the prometheus crate's own decoder and written out by its
/// own text encoder, is the text answer line for line: the same families, metrics,
/// labels and values.
#[test]
fn protobuf_decodes_to_the_text_answer() {
    use prometheus::Encoder;
    use protobuf::Message;
    let mut store = fixed_store();
    store.set_native_schema(Some(6));
    let beside = Options {
        native: Native::Beside { schema: 6 },
        ..Options::default()
    };
    for options in [Options::default(), Options::full(), beside] {
        let bytes = render(&store, &options, Format::Protobuf).concat();
        let mut families = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (len, used) = read_varint(rest);
            let end = used + len as usize;
            families
                .push(prometheus::proto::MetricFamily::parse_from_bytes(&rest[used..end]).unwrap());
            rest = &rest[end..];
        }
        let mut theirs = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&families, &mut theirs)
            .unwrap();
        // The text format has no native histograms, nor their note in the help.
        let note = format!(
            " Native buckets: schema 6, a value within {:.2}% of its bucket's middle (after HdrHistogram's 0.1% or 512 ns).",
            100.0 * Native::error_of(6)
        );
        let theirs = String::from_utf8(theirs).unwrap().replace(&note, "");
        assert!(
            theirs == render_text(&store, &options),
            "protobuf and text differ ({:?})",
            options.native
        );
    }
}

fn read_varint(b: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    panic!("truncated varint");
}

#[test]
fn accept_chooses_the_format() {
    let prometheus_native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
    let prometheus_text = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
    for (accept, want) in [
        (None, Format::Text),
        (Some(prometheus_native), Format::Protobuf),
        (Some(prometheus_text), Format::Text),
        (Some("*/*"), Format::Text),
        // Protobuf without the delimited MetricFamily parameters is another format.
        (Some("application/vnd.google.protobuf"), Format::Text),
        (Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"), Format::Protobuf),
        (Some("garbage;;q=x,"), Format::Text),
    ] {
        assert_eq!(Format::negotiate(accept), want, "{accept:?}");
    }
}

/// A protobuf reader just big enough for a `WriteRequest`: (labels, value, timestamp)
/// per `TimeSeries`.
type Labeled = (Vec<(String, String)>, f64, i64);

fn read_write_request(b: &[u8]) -> Vec<Labeled> {
    let (samples, histograms) = read_write_request_with_histograms(b);
    assert!(
        histograms.is_empty(),
        "native histograms in a classic write"
    );
    samples
}

/// A remote-write native histogram as read back: labels, count, sum, schema, bucket index
/// -> count, timestamp.
type NativeRead = (
    Vec<(String, String)>,
    u64,
    f64,
    i64,
    BTreeMap<i64, u64>,
    i64,
);

fn read_write_request_with_histograms(mut b: &[u8]) -> (Vec<Labeled>, Vec<NativeRead>) {
    fn field(b: &mut &[u8]) -> (u64, u64, Vec<u8>) {
        let (key, n) = read_varint(b);
        *b = &b[n..];
        match key & 7 {
            0 => {
                let (v, n) = read_varint(b);
                *b = &b[n..];
                (key >> 3, v, vec![])
            }
            1 => {
                let v = u64::from_le_bytes(b[..8].try_into().unwrap());
                *b = &b[8..];
                (key >> 3, v, vec![])
            }
            2 => {
                let (len, n) = read_varint(b);
                let body = b[n..n + len as usize].to_vec();
                *b = &b[n + len as usize..];
                (key >> 3, 0, body)
            }
            w => panic!("wire type {w}"),
        }
    }
    fn unzigzag(v: u64) -> i64 {
        ((v >> 1) as i64) ^ -((v & 1) as i64)
    }
    let (mut out, mut natives) = (Vec::new(), Vec::new());
    while !b.is_empty() {
        let (f, _, ts) = field(&mut b);
        assert_eq!(f, 1, "WriteRequest holds only timeseries");
        let mut ts = &ts[..];
        let (mut labels, mut samples) = (Vec::new(), Vec::new());
        let mut histograms = Vec::new();
        while !ts.is_empty() {
            let (f, _, body) = field(&mut ts);
            let mut body = &body[..];
            if f == 4 {
                // prompb.Histogram: count_int 1, sum 3, schema 4 (sint32), zero_threshold 5,
                // zero_count_int 6, positive_spans 11, positive_deltas 12, timestamp 15.
                let (mut count, mut sum, mut schema, mut at) = (0, 0.0, 0, 0);
                let (mut spans, mut deltas) = (Vec::new(), Vec::new());
                while !body.is_empty() {
                    match field(&mut body) {
                        (1, v, _) => count = v,
                        (3, bits, _) => sum = f64::from_bits(bits),
                        (4, v, _) => schema = unzigzag(v),
                        (5, _, _) => {}
                        (6, v, _) => assert_eq!(v, 0, "nothing in the zero bucket"),
                        (11, _, span) => {
                            let (mut offset, mut length) = (0, 0);
                            let mut span = &span[..];
                            while !span.is_empty() {
                                match field(&mut span) {
                                    (1, v, _) => offset = unzigzag(v),
                                    (2, v, _) => length = v,
                                    other => panic!("unexpected {other:?} in a span"),
                                }
                            }
                            spans.push((offset, length));
                        }
                        (12, v, _) => deltas.push(unzigzag(v)),
                        (15, v, _) => at = v as i64,
                        other => panic!("unexpected {other:?} in a histogram"),
                    }
                }
                // The first span starts at its offset; each later one that many empty
                // buckets after the one before ends.
                let mut buckets = BTreeMap::new();
                let (mut next, mut value, mut d) = (0i64, 0i64, deltas.iter());
                for (offset, length) in spans {
                    next += offset;
                    for _ in 0..length {
                        value += d.next().expect("a delta per bucket");
                        buckets.insert(next, value as u64);
                        next += 1;
                    }
                }
                assert!(d.next().is_none(), "a delta per bucket, no more");
                histograms.push((count, sum, schema, buckets, at));
                continue;
            }
            let mut parts = (String::new(), String::new(), 0.0, 0i64);
            while !body.is_empty() {
                match (f, field(&mut body)) {
                    (1, (1, _, n)) => parts.0 = String::from_utf8(n).unwrap(),
                    (1, (2, _, v)) => parts.1 = String::from_utf8(v).unwrap(),
                    (2, (1, bits, _)) => parts.2 = f64::from_bits(bits),
                    (2, (2, t, _)) => parts.3 = t as i64,
                    other => panic!("unexpected {other:?}"),
                }
            }
            match f {
                1 => labels.push((parts.0, parts.1)),
                2 => samples.push((parts.2, parts.3)),
                _ => panic!("field {f} in a TimeSeries"),
            }
        }
        match (samples.len(), histograms.len()) {
            (1, 0) => out.push((labels, samples[0].0, samples[0].1)),
            (0, 1) => {
                let (count, sum, schema, buckets, at) = histograms.pop().unwrap();
                natives.push((labels, count, sum, schema, buckets, at));
            }
            other => panic!("a TimeSeries of {other:?} samples and histograms"),
        }
    }
    (out, natives)
}

/// A writer's settings: `max` samples a request, classic or native histograms.
fn rw(max: usize, histograms: Histograms) -> RemoteWriteConfig {
    RemoteWriteConfig {
        max_samples_per_send: max,
        histograms,
        ..RemoteWriteConfig::new("http://receiver:9090/api/v1/write")
    }
}

/// Written as native histograms, each latency histogram is one sample instead of its
/// `_bucket`, `_sum` and `_count` series: its count and sum are those, its buckets (at the
/// store's schema) add up to its count, every other sample is the classic write's, and a
/// stale marker ends the histogram's own series.
#[test]
fn native_remote_write_is_one_histogram_for_the_classic_series() {
    let (store, snapshot) = fixed_native(Some(6));
    let options = Options::default();
    let classic = remote_write(&store, &options, &snapshot, &rw(1_000, Histograms::Classic));
    let native = remote_write(&store, &options, &snapshot, &rw(1_000, Histograms::Native));
    let read = |requests: &[(usize, Vec<u8>)]| {
        let (mut samples, mut histograms) = (Vec::new(), Vec::new());
        for (n, body) in requests {
            let (s, h) = read_write_request_with_histograms(body);
            assert_eq!(s.len() + h.len(), *n);
            samples.extend(s);
            histograms.extend(h);
        }
        (samples, histograms)
    };
    let (classic, none) = read(&classic);
    assert!(none.is_empty());
    let (floats, histograms) = read(&native);
    assert!(histograms.len() >= 5, "{} histograms", histograms.len());
    let name_of = |labels: &[(String, String)]| {
        labels
            .iter()
            .find(|(n, _)| n == "__name__")
            .unwrap()
            .1
            .clone()
    };
    let without = |labels: &[(String, String)], drop: &str| -> Vec<(String, String)> {
        labels
            .iter()
            .filter(|(n, _)| n != "__name__" && n != drop)
            .cloned()
            .collect()
    };
    let at = (snapshot.interval_end_unix_ns / 1_000_000) as i64;
    let mut covered = 0;
    for (labels, count, sum, schema, buckets, ts) in &histograms {
        let name = name_of(labels);
        let rest = without(labels, "");
        let classic_value = |suffix: &str| {
            classic
                .iter()
                .find(|(l, _, _)| name_of(l) == format!("{name}{suffix}") && without(l, "") == rest)
                .map(|s| s.1)
                .unwrap_or_else(|| panic!("no {name}{suffix} {rest:?} in the classic write"))
        };
        assert_eq!(*count as f64, classic_value("_count"), "{name}");
        assert_eq!(*sum, classic_value("_sum"), "{name}");
        assert_eq!((*schema, *ts), (6, at));
        assert_eq!(buckets.values().sum::<u64>(), *count, "{name} {buckets:?}");
        covered += classic
            .iter()
            .filter(|(l, _, _)| {
                let n = name_of(l);
                [
                    format!("{name}_bucket"),
                    format!("{name}_sum"),
                    format!("{name}_count"),
                ]
                .contains(&n)
                    && without(l, "le") == rest
            })
            .count();
    }
    // Every other classic sample is written as it was; the histograms stand for the rest.
    assert_eq!(floats.len() + covered, classic.len());
    for f in &floats {
        assert!(classic.contains(f), "{f:?} not in the classic write");
    }
    assert!(
        floats.len() + histograms.len() < classic.len() / 3,
        "{} floats and {} histograms for {} classic samples",
        floats.len(),
        histograms.len(),
        classic.len()
    );
    // Ended: a float stale marker on the histogram's own name.
    let gone = vec![snapshot.agent.id.clone()];
    let stale = remote_write_stale(
        &store,
        &options,
        &gone,
        5 * S,
        &rw(1_000, Histograms::Native),
    );
    let (ended, none) = read(&stale);
    assert!(none.is_empty());
    for (labels, ..) in &histograms {
        assert!(
            ended
                .iter()
                .any(|(l, v, _)| l == labels && v.to_bits() == STALE_NAN),
            "{labels:?} not ended"
        );
    }
}

/// A snapshot's remote-write samples are the text answer's lines for its series, tests
/// and agent (all but the window summaries), each stamped with the interval's end, in
/// requests of at most the size asked, labels sorted by name.
#[test]
fn remote_write_samples_are_the_answers_lines_of_the_snapshot() {
    let (store, snapshot) = fixed();
    let text = render_text(&store, &Options::default());
    let requests = remote_write(
        &store,
        &Options::default(),
        &snapshot,
        &rw(100, Histograms::Classic),
    );
    assert!(requests.len() > 3, "{} requests", requests.len());
    let mut seen = 0;
    for (n, body) in &requests {
        let samples = read_write_request(body);
        assert_eq!(samples.len(), *n);
        assert!(*n <= 100);
        for (labels, value, ts) in samples {
            assert_eq!(ts, (snapshot.interval_end_unix_ns / 1_000_000) as i64);
            let names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted);
            let name = &labels.iter().find(|(n, _)| n == "__name__").unwrap().1;
            let rest: Vec<String> = labels
                .iter()
                .filter(|(n, _)| n != "__name__")
                .map(|(n, v)| format!("{n}=\"{v}\""))
                .collect();
            // The same sample among the text lines (label order aside).
            let found = text.lines().any(|l| {
                let Some((series, v)) = l.rsplit_once(' ') else {
                    return false;
                };
                let (n, ls) = series.split_once('{').unwrap_or((series, "}"));
                let mut ls: Vec<&str> = ls
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .collect();
                ls.sort_unstable();
                let mut want: Vec<&str> = rest.iter().map(String::as_str).collect();
                want.sort_unstable();
                n == name
                    && ls == want
                    && v.parse::<f64>()
                        .is_ok_and(|x| x == value || (x.is_nan() && value.is_nan()))
            });
            assert!(found, "{name} {rest:?} {value} not in the text answer");
            seen += 1;
        }
    }
    // Everything of the snapshot's series: the text lines that name its source agent
    // (as src_agent or agent), but for window summaries and the mesh's list.
    let own = text
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && !l.contains("_window_seconds")
                && !l.starts_with("xcbench_mesh_agent_info")
        })
        .filter(|l| {
            l.contains("src_agent=\"az-eastus-app1\"") || l.contains("agent=\"az-eastus-app1\"")
        })
        .count();
    assert_eq!(seen, own);
}

/// Every value lies in the native bucket its index names: `(base^(i-1), base^i]`.
#[test]
fn native_indexes_hold_their_values() {
    for schema in [0i8, 3, 6, 8] {
        let base = 2f64.powf(2f64.powi(-i32::from(schema)));
        let mut v = 1_000u64;
        while v < 10_000_000_000 {
            let i = crate::store::native_index(schema, v);
            let s = v as f64 / 1e9;
            let (low, high) = (base.powi(i - 1), base.powi(i));
            assert!(
                low < s * (1.0 + 1e-12) && s <= high * (1.0 + 1e-12),
                "schema {schema}: {v} ns in bucket {i} ({low}, {high}]"
            );
            v = v * 1_013 / 1_000 + 1;
        }
    }
    assert_eq!(Native::schema_for(0.01), Some(6));
    assert_eq!(Native::schema_for(0.001), None);
    assert!((Native::error_of(6) - 0.005415).abs() < 1e-6);
}

/// A peer that left the mesh: every written series it is part of (as prober or as
/// reflector) ends with a stale marker at the collector's time; its prober's own
/// families stay (that agent is still in the mesh).
#[test]
fn agents_that_left_the_mesh_end_their_series_with_stale_markers() {
    let (store, snapshot) = fixed();
    let options = Options::default();
    let gone: Vec<xcbench_snapshot::AgentId> = vec!["oci-ashburn-db1".parse().unwrap()];
    let stale = remote_write_stale(
        &store,
        &options,
        &gone,
        1_700_000_123 * S,
        &rw(1_000, Histograms::Classic),
    );
    let live = remote_write(&store, &options, &snapshot, &rw(1_000, Histograms::Classic));
    let names = |requests: &[(usize, Vec<u8>)]| {
        let mut v: Vec<String> = requests
            .iter()
            .flat_map(|(_, b)| read_write_request(b))
            .map(|(labels, _, _)| format!("{labels:?}"))
            .collect();
        v.sort();
        v
    };
    let ended: Vec<Labeled> = stale
        .iter()
        .flat_map(|(_, b)| read_write_request(b))
        .collect();
    assert!(!ended.is_empty());
    for (labels, value, ts) in &ended {
        assert_eq!(value.to_bits(), STALE_NAN, "{labels:?}");
        assert_eq!(*ts, 1_700_000_123_000);
    }
    let agent_families = |l: &String| l.contains("\"agent\"");
    let want: Vec<String> = names(&live)
        .into_iter()
        .filter(|l| !agent_families(l))
        .collect();
    assert_eq!(names(&stale), want);
    assert!(
        remote_write_stale(&store, &options, &[], 0, &rw(1_000, Histograms::Classic)).is_empty()
    );
}

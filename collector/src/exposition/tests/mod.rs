//! The exposition against a fixed store: the golden answer, lean against full, protobuf
//! against text, native indexes; the fixture the remote-write tests share.
//!
//! - `remote`: remote-write samples against the answer, native histograms, stale markers.

mod remote;

use super::*;
use crate::store::tests::snapshot;
use xcbench_snapshot::{
    Counters, Flow, Load, Metric, ProbeKind, QuicPath, ResponderCount, SeriesSnapshot, TcpInfo,
    ThroughputCounts, ThroughputOutcome, ThroughputResult, TimestampSource,
};

pub(super) const S: u64 = 1_000_000_000;

fn fixed_store() -> Store {
    fixed().0
}

/// The fixed store, and the snapshot it took.
pub(super) fn fixed() -> (Store, xcbench_snapshot::Snapshot) {
    fixed_native(None)
}

/// The fixed store counting native buckets at `schema` too, and the snapshot it took.
pub(super) fn fixed_native(schema: Option<i8>) -> (Store, xcbench_snapshot::Snapshot) {
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
        remarked_forward: 97,
        ..Counters::default()
    };
    let rtts: Vec<u64> = (0..97).map(|i| 1_500_000 + i * 10_000).collect();
    let mut s = snapshot(1, &rtts, counters);
    // Sent with DSCP 46 (EF), re-marked to 0 on the way out; the reply kept 46.
    s.series[0].dscp_forward = Some(0);
    s.series[0].dscp_reverse = Some(46);
    s.series[0].ecn_forward = Some(0);
    s.series[0].ecn_reverse = Some(0);
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
        dscp_forward: None,
        dscp_reverse: None,
        ecn_forward: None,
        ecn_reverse: None,
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
    // The STAMP series over two flows, the second on a slower path that loses some.
    let flow = |flow: u8, rtt_ns: u64, received: u64, lost: u64| {
        let mut h = xcbench_snapshot::LatencyHistogram::new();
        (0..received).for_each(|_| h.record_ns(rtt_ns));
        xcbench_snapshot::FlowSnapshot {
            flow,
            sent: received + lost,
            received,
            lost,
            rtt: Some(xcbench_snapshot::HistogramDelta {
                metric: Metric::Rtt,
                count: h.len(),
                sum_ns: rtt_ns * received,
                hdr: h.encode_base64(),
            }),
        }
    };
    s.series[0].flows = vec![flow(0, 1_500_000, 50, 0), flow(1, 3_100_000, 47, 3)];
    s.responders.udp.reflected = 50;
    s.responders.udp.unauthenticated = 3;
    s.responders.udp.replayed = 2;
    s.responders.udp.rate_limited = 7;
    s.sender.unauthenticated = 4;
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

/// The answer sent part by part (as `/metrics` sends it) is the whole answer, byte for
/// byte, in both formats and every exposition, whatever the series per part: every family
/// in one group, in order, and a latency histogram or summary in a group of its own, in
/// text written in parts of that many series, its header once.
#[test]
fn part_by_part_is_the_whole_answer() {
    let store = fixed_store();
    let groups = family_groups();
    let flat: Vec<&str> = groups.concat();
    let mut sorted = flat.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(flat, sorted);
    assert!(groups.contains(&vec!["xcbench_rtt_seconds"]));
    assert!(groups.len() < flat.len() / 2, "{} groups", groups.len());
    let series = store.series().count();
    assert!(series >= 3, "{series} series: too few to write in parts");
    for options in [Options::default(), Options::full()] {
        for format in [Format::Text, Format::Protobuf] {
            let whole = render(&store, &options, format, Areas::ALL).concat();
            for per_part in [1, 2, SERIES_PER_PART] {
                let mut written = Vec::new();
                let mut rendered = 0;
                let mut groups = Vec::new();
                for mut part in parts(format, per_part) {
                    groups.push(part.families().to_vec());
                    while !part.done() {
                        written
                            .extend(render_part(&store, &options, Areas::ALL, &mut part).concat());
                        rendered += 1;
                    }
                }
                let what = format!("{format:?}, {per_part} series per part");
                assert_eq!(
                    String::from_utf8_lossy(&written),
                    String::from_utf8_lossy(&whole),
                    "{what}"
                );
                assert_eq!(groups, family_groups(), "{what}");
                let chunked = groups.iter().filter(|g| g.len() == 1).count();
                if format == Format::Text && per_part < series {
                    // A part per `per_part` series, and one more finding none after the last.
                    let least = groups.len() + chunked * (series.div_ceil(per_part) - 1);
                    assert!(
                        rendered >= least,
                        "{what}: {rendered} parts, {least} at least"
                    );
                } else {
                    assert_eq!(rendered, groups.len(), "{what}");
                }
            }
        }
    }
}

/// `collect[]` areas: the collector's own families alone are the full answer's lines of
/// those families; several areas add up to their lines; an unknown area is named.
#[test]
fn collect_serves_the_areas_asked_for() {
    let store = fixed_store();
    let options = Options::default();
    let areas = |q: &[(&str, &str)]| Areas::from_query(q.iter().copied());
    let text =
        |a: Areas| String::from_utf8(render(&store, &options, Format::Text, a).concat()).unwrap();
    let full = render_text(&store, &options);
    assert_eq!(areas(&[]), Ok(Areas::ALL));
    assert_eq!(areas(&[("other", "x")]), Ok(Areas::ALL));
    let own = text(areas(&[("collect[]", "collector")]).unwrap());
    let of_collector = |l: &&str| {
        let name = l
            .trim_start_matches("# HELP ")
            .trim_start_matches("# TYPE ")
            .split(['{', ' '])
            .next()
            .unwrap();
        name.starts_with("xcbench_collector_") || name.starts_with("xcbench_remote_write_")
    };
    assert!(own.contains("xcbench_collector_series "), "{own}");
    assert!(!own.contains("xcbench_rtt_seconds"));
    assert_eq!(
        own.lines().collect::<Vec<_>>(),
        full.lines().filter(of_collector).collect::<Vec<_>>()
    );
    let two = text(areas(&[("collect[]", "series"), ("collect[]", "collector")]).unwrap());
    assert!(
        two.contains("xcbench_rtt_seconds_bucket{") && two.contains("xcbench_collector_series ")
    );
    assert!(two.lines().count() < full.lines().count());
    assert_eq!(
        areas(&[("collect[]", "everything")]),
        Err(
            "collect[] = \"everything\": must be one of series, throughput, agents, slo, collector"
                .to_owned()
        )
    );
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
        let bytes = render(&store, &options, Format::Protobuf, Areas::ALL).concat();
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

pub(super) fn read_varint(b: &[u8]) -> (u64, usize) {
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

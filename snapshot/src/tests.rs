//! The snapshot format held to its contract: round trips, the wire text, and what decoding
//! refuses.

use super::*;

pub(crate) fn sample() -> Snapshot {
    let mut h = LatencyHistogram::new();
    h.record_ns(1_500_000);
    h.record_ns(2_000_000);
    Snapshot {
        format: FORMAT_VERSION,
        agent: Identity {
            id: "az-eastus-1".parse().unwrap(),
            cloud: Cloud::Azure,
            region: "eastus".into(),
            zone: "1".into(),
        },
        instance: 7,
        seq: 3,
        interval_start_unix_ns: 10,
        interval_end_unix_ns: 20,
        responders: ResponderCounters::default(),
        sender: SenderCounters::default(),
        throughput: vec![],
        throughput_flows: vec![],
        given_up: None,
        series: vec![SeriesSnapshot {
            peer: Identity {
                id: "oci-ashburn-1".parse().unwrap(),
                cloud: Cloud::Oci,
                region: "us-ashburn-1".into(),
                zone: String::new(),
            },
            protocol: Protocol::Udp,
            kind: ProbeKind::Stamp,
            load: Load::Idle,
            timestamping: TimestampSource::Kernel,
            counters: Counters {
                sent: 3,
                received: 2,
                lost: 1,
                ..Counters::default()
            },
            histograms: vec![HistogramDelta {
                metric: Metric::Rtt,
                count: 2,
                sum_ns: 3_500_000,
                hdr: h.encode_base64(),
            }],
            jitter_forward_ns: Some(1000),
            jitter_reverse_ns: None,
            dscp_forward: None,
            dscp_reverse: None,
            ecn_forward: None,
            ecn_reverse: None,
            flows: Vec::new(),
            clock_error_ns: Some(5000),
            clock_synchronized: Some(false),
            tcp: None,
            quic: None,
            earlier_directions: Vec::new(),
        }],
    }
}

#[test]
fn round_trip() {
    let s = sample();
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert_eq!(Snapshot::decode(&buf).unwrap(), s);
}

#[test]
fn responder_counts_keep_the_flat_wire_names() {
    let mut s = sample();
    s.responders.tcp.refused = 3;
    s.responders.udp.reflected = 9;
    s.responders.udp.unauthenticated = 4;
    s.responders.udp.replayed = 5;
    s.responders.udp.rate_limited = 8;
    s.sender.unauthenticated = 6;
    let mut buf = Vec::new();
    s.encode(&mut buf);
    let text = String::from_utf8(buf.clone()).unwrap();
    assert!(text.contains(r#""reflector":{"reflected":9,"#), "{text}");
    assert!(text.contains(r#""tcp_refused":3"#), "{text}");
    assert_eq!(Snapshot::decode(&buf).unwrap(), s);
    // A format-1 agent that never heard of TCP or QUIC responders.
    let old = text.replace(
        r#""reflector":{"reflected":9,"malformed":0,"refused":0,"unauthenticated":4,"replayed":5,"rate_limited":8,"tcp_reflected":0,"tcp_malformed":0,"tcp_refused":3,"quic_reflected":0,"quic_malformed":0,"quic_refused":0}"#,
        r#""reflector":{"reflected":9,"malformed":0,"refused":0}"#,
    );
    assert_ne!(old, text);
    let decoded = Snapshot::decode(old.as_bytes()).unwrap();
    assert_eq!(decoded.responders.udp.reflected, 9);
    assert_eq!(decoded.responders.tcp, ResponderCount::default());
    assert_eq!(decoded.responders.udp.unauthenticated, 0);
    assert_eq!(decoded.sender.unauthenticated, 6);
    let mut sum = decoded.responders;
    sum.add(&s.responders);
    assert_eq!((sum.udp.reflected, sum.get(Protocol::Tcp).refused), (18, 3));
    assert_eq!((sum.udp.unauthenticated, sum.udp.replayed), (4, 5));
    assert_eq!(sum.udp.rate_limited, 8);
}

#[test]
fn rejects_count_mismatch_naming_field() {
    let mut s = sample();
    s.series[0].histograms[0].count = 5;
    let mut buf = Vec::new();
    s.encode(&mut buf);
    let err = Snapshot::decode(&buf).unwrap_err().to_string();
    assert_eq!(
        err,
        "snapshot series[0].histograms[0].count = 5: must equal the histogram's total count 2"
    );
}

#[test]
fn rejects_bad_identifier_and_duplicates() {
    let mut buf = Vec::new();
    let mut s = sample();
    s.series.push(s.series[0].clone());
    s.encode(&mut buf);
    let err = Snapshot::decode(&buf).unwrap_err().to_string();
    assert!(err.contains("series[1].peer.id"), "{err}");

    let text = String::from_utf8(buf)
        .unwrap()
        .replace("az-eastus-1", "bad id!");
    let err = Snapshot::decode(text.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("agent"), "{err}");
}

/// A declared test direction's peer is held to the same label rules as a series' peer,
/// and an older agent's snapshot without the field still decodes.
#[test]
fn declared_test_directions_are_checked_and_optional() {
    let mut s = sample();
    let mut peer = s.series[0].peer.clone();
    peer.region = "bad\"region".into();
    s.throughput_flows = vec![ThroughputFlow {
        peer,
        protocol: Protocol::Udp,
        flow: Flow::Forward,
        every_ns: None,
    }];
    let mut buf = Vec::new();
    s.encode(&mut buf);
    let err = Snapshot::decode(&buf).unwrap_err().to_string();
    assert!(err.contains("bench_flows[0].peer"), "{err}");
    let mut buf = Vec::new();
    sample().encode(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("bench_flows"));
    assert!(Snapshot::decode(&buf).unwrap().throughput_flows.is_empty());
}

#[test]
fn rejects_garbage_and_oversize() {
    assert!(matches!(
        Snapshot::decode(b"{not json"),
        Err(SnapshotError::Json(_))
    ));
    let big = vec![b' '; MAX_SNAPSHOT_BYTES + 1];
    assert!(matches!(
        Snapshot::decode(&big),
        Err(SnapshotError::TooLarge { .. })
    ));
    let mut s = sample();
    s.seq = 0;
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert!(Snapshot::decode(&buf)
        .unwrap_err()
        .to_string()
        .contains("seq = 0"));
}

#[test]
fn directions_learnt_late_must_be_dated_before_the_interval() {
    let mut s = sample();
    let earlier = EarlierDirections {
        interval_end_unix_ns: 10,
        lost_forward: 3,
        lost_reverse: 1,
    };
    s.series[0].earlier_directions = vec![earlier];
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert_eq!(Snapshot::decode(&buf).unwrap(), s, "round trip");
    assert_eq!(s.series[0].counters_with_earlier().lost_reverse, 1);
    s.series[0].earlier_directions[0].interval_end_unix_ns = 11;
    buf.clear();
    s.encode(&mut buf);
    assert_eq!(
        Snapshot::decode(&buf).unwrap_err().to_string(),
        "snapshot series[0].earlier_directions[0].interval_end_unix_ns = 11: must not be \
         after this snapshot's interval_start_unix_ns 10"
    );
    s.series[0].earlier_directions = vec![earlier; MAX_EARLIER_DIRECTIONS + 1];
    buf.clear();
    s.encode(&mut buf);
    assert!(Snapshot::decode(&buf)
        .unwrap_err()
        .to_string()
        .contains("at most 1024"));
}

#[test]
fn flows_carry_their_rtts_after_the_series_histograms_and_are_checked() {
    let mut s = sample();
    let rtt = s.series[0].histograms[0].clone();
    assert_eq!(rtt.metric, Metric::Rtt);
    let flow = |flow: u8| FlowSnapshot {
        flow,
        sent: 10,
        received: 9,
        lost: 1,
        rtt: Some(rtt.clone()),
    };
    s.series[0].flows = vec![flow(0), flow(3)];
    s.series[0].flows[1].rtt = None;
    let mut buf = Vec::new();
    s.encode(&mut buf);
    let back = Snapshot::decode(&buf).unwrap();
    assert_eq!(back, s, "round trip");
    let hists = back.decode_histograms().unwrap();
    let own = s.series[0].histograms.len();
    assert_eq!(hists[0].len(), own + 1, "the one flow with RTTs follows");
    assert_eq!(hists[0][own], hists[0][0]);
    let refused = |s: &Snapshot| {
        let mut buf = Vec::new();
        s.encode(&mut buf);
        Snapshot::decode(&buf).unwrap_err().to_string()
    };
    let mut bad = s.clone();
    bad.series[0].flows = vec![flow(2), flow(2)];
    assert_eq!(
        refused(&bad),
        "snapshot series[0].flows[1].flow = 2: must be below 16 and above the flow before it"
    );
    bad.series[0].flows = vec![flow(16)];
    assert!(refused(&bad).contains("flows[0].flow = 16"));
    bad.series[0].flows = (0..17).map(|_| flow(0)).collect();
    assert!(refused(&bad).contains("flows = 17 entries: at most 16"));
    bad.series[0].flows = vec![flow(0)];
    bad.series[0].flows[0].rtt.as_mut().unwrap().metric = Metric::OneWayForward;
    assert!(refused(&bad).contains("flows[0].rtt.metric"));
    bad.series[0].flows[0].rtt = Some(HistogramDelta {
        count: rtt.count + 1,
        ..rtt.clone()
    });
    assert!(refused(&bad).contains("flows[0].rtt.count"));
}

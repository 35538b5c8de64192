//! The store's tests, and the snapshots and ingest other modules' tests build on.

use super::*;
use xcbench_snapshot::{
    Cloud, Counters, HistogramDelta, Load, ProbeKind, Protocol, ResponderCounters, SenderCounters,
    TimestampSource, FORMAT_VERSION,
};

pub(crate) fn identity(id: &str, cloud: Cloud, region: &str) -> Identity {
    Identity {
        id: id.parse().unwrap(),
        cloud,
        region: region.into(),
        zone: String::new(),
    }
}

pub(crate) fn snapshot(seq: u64, rtts_ns: &[u64], counters: Counters) -> Snapshot {
    let mut h = LatencyHistogram::new();
    for v in rtts_ns {
        h.record_ns(*v);
    }
    let histograms = if rtts_ns.is_empty() {
        vec![]
    } else {
        vec![HistogramDelta {
            metric: Metric::Rtt,
            count: h.len(),
            sum_ns: rtts_ns.iter().sum(),
            hdr: h.encode_base64(),
        }]
    };
    Snapshot {
        format: FORMAT_VERSION,
        agent: identity("az-eastus-app1", Cloud::Azure, "eastus"),
        instance: 1,
        seq,
        interval_start_unix_ns: 0,
        interval_end_unix_ns: 0,
        responders: ResponderCounters::default(),
        sender: SenderCounters::default(),
        throughput: vec![],
        throughput_flows: vec![],
        given_up: None,
        series: vec![SeriesSnapshot {
            peer: identity("oci-ashburn-db1", Cloud::Oci, "us-ashburn-1"),
            protocol: Protocol::Udp,
            kind: ProbeKind::Stamp,
            load: Load::Idle,
            timestamping: TimestampSource::Kernel,
            counters,
            histograms,
            jitter_forward_ns: Some(12_000),
            jitter_reverse_ns: Some(8_000),
            dscp_forward: None,
            dscp_reverse: None,
            ecn_forward: None,
            ecn_reverse: None,
            flows: Vec::new(),
            clock_error_ns: Some(32_000_000_000),
            clock_synchronized: Some(false),
            tcp: None,
            quic: None,
            earlier_directions: Vec::new(),
        }],
    }
}

const S: u64 = 1_000_000_000;

/// A few bounds around the interesting cases; exposition's layout has its own tests.
const BUCKETS: BucketBounds = BucketBounds::new(&[25_000, 1_000_000, 10 * S]);

/// Ingests as the HTTP path does: checked and decoded first.
pub(crate) fn ingest(store: &mut Store, s: &Snapshot, now: u64) -> Result<Ingest, IngestError> {
    let histograms = s.decode_histograms().expect("valid test snapshot");
    store.handle_snapshot(s, &histograms, now)
}

#[test]
fn ingest_is_idempotent_and_merges_by_addition() {
    let mut store = Store::new(60 * S, 10 * S, 100, BUCKETS);
    let c = Counters {
        sent: 3,
        received: 3,
        ..Counters::default()
    };
    let a = snapshot(1, &[1_000_000, 2_000_000, 3_000_000], c);
    assert_eq!(ingest(&mut store, &a, 100 * S), Ok(Ingest::Accepted));
    assert_eq!(ingest(&mut store, &a, 101 * S), Ok(Ingest::Duplicate));
    let b = snapshot(
        2,
        &[4_000_000],
        Counters {
            sent: 1,
            received: 1,
            ..c
        },
    );
    assert_eq!(ingest(&mut store, &b, 102 * S), Ok(Ingest::Accepted));
    // An older seq arriving late is still a duplicate.
    assert_eq!(ingest(&mut store, &a, 103 * S), Ok(Ingest::Duplicate));
    // A restarted agent (new instance) starts again at seq 1.
    let mut restarted = snapshot(
        1,
        &[5_000_000],
        Counters {
            sent: 1,
            received: 1,
            ..c
        },
    );
    restarted.instance = 2;
    assert_eq!(
        ingest(&mut store, &restarted, 104 * S),
        Ok(Ingest::Accepted)
    );

    let (_, s) = store.series().next().unwrap();
    assert_eq!(s.counters.sent, 5);
    let rtt = &s.metrics[&Metric::Rtt];
    assert_eq!((rtt.count, rtt.sum_ns), (5, 15_000_000));
    assert_eq!(rtt.buckets.iter().sum::<u64>(), 5);
    let w = rtt.window();
    assert_eq!(w.count(), 5);
    let p50 = w.quantile(0.5).unwrap();
    assert!((3_000_000..=3_003_000).contains(&p50), "{p50}");
    assert!(w.quantile(1.0).unwrap() >= 5_000_000);
    assert_eq!(
        store.ingest,
        IngestCounters {
            accepted: 3,
            duplicate: 2,
            rejected: 0,
            forbidden: 0,
        }
    );
}

#[test]
fn window_slides_but_totals_stay() {
    let mut store = Store::new(60 * S, 10 * S, 100, BUCKETS);
    let c = Counters::default();
    ingest(&mut store, &snapshot(1, &[1_000_000], c), 100 * S).unwrap();
    ingest(&mut store, &snapshot(2, &[9_000_000], c), 135 * S).unwrap();
    // The slot [100 s, 110 s) overlaps a 60 s window ending at 165 s, but not one at 175 s.
    store.expire(165 * S);
    let (_, s) = store.series().next().unwrap();
    assert_eq!(s.metrics[&Metric::Rtt].window().count(), 2);
    store.expire(175 * S);
    let (_, s) = store.series().next().unwrap();
    let rtt = &s.metrics[&Metric::Rtt];
    assert_eq!(rtt.count, 2, "cumulative");
    assert_eq!(
        rtt.window().count(),
        1,
        "the 100 s slot left the 60 s window"
    );
    assert!(rtt.window().quantile(0.5).unwrap() >= 9_000_000);
    store.expire(200 * S);
    let (_, s) = store.series().next().unwrap();
    assert_eq!(s.metrics[&Metric::Rtt].window().quantile(0.5), None);
    assert_eq!(s.metrics[&Metric::Rtt].window().sum_ns(), 0);
}

#[test]
fn classic_buckets_put_exact_bounds_inside() {
    let mut store = Store::new(60 * S, 10 * S, 100, BUCKETS);
    ingest(
        &mut store,
        &snapshot(
            1,
            &[1_000_000, 1_000_001, 24_000, 20 * S],
            Counters::default(),
        ),
        0,
    )
    .unwrap();
    let (_, s) = store.series().next().unwrap();
    let b = &s.metrics[&Metric::Rtt].buckets;
    assert_eq!(b[0], 1, "24 us <= 25 us");
    assert_eq!(b[1], 2, "1 ms and 1 ms + 1 ns share a 0.1% bucket");
    assert_eq!(b[2], 0, "nothing between 1 ms and 10 s");
    assert_eq!(b[3], 1, "20 s only in +Inf");
}

#[test]
fn series_limit_refuses_whole_snapshot() {
    let mut store = Store::new(60 * S, 10 * S, 0, BUCKETS);
    let err = ingest(&mut store, &snapshot(1, &[], Counters::default()), 0);
    assert_eq!(err, Err(IngestError::SeriesLimit { limit: 0, new: 1 }));
    assert_eq!(store.series_count(), 0);
    assert_eq!(store.ingest.rejected, 1);
}

#[test]
fn a_test_direction_counts_once_against_the_limit() {
    let mut s = snapshot(1, &[], Counters::default());
    let result = ThroughputResult {
        peer: s.series[0].peer.clone(),
        protocol: Protocol::Tcp,
        flow: xcbench_snapshot::Flow::Forward,
        outcome: xcbench_snapshot::ThroughputOutcome::Refused,
        started_unix_ns: 0,
        counts: Default::default(),
        interval_min_bytes_per_second: 0,
    };
    s.throughput = vec![result.clone(), result];
    let mut store = Store::new(60 * S, 10 * S, 1, BUCKETS);
    let err = ingest(&mut store, &s, 0);
    assert_eq!(err, Err(IngestError::SeriesLimit { limit: 1, new: 2 }));
    let mut store = Store::new(60 * S, 10 * S, 2, BUCKETS);
    ingest(&mut store, &s, 0).unwrap();
    assert_eq!(
        store.series_count(),
        2,
        "one probe series, one test direction"
    );
    assert_eq!(store.throughput().next().unwrap().1.tests.refused, 2);
}

/// A scheduled direction is held at zero before its first test (so Prometheus sees the
/// first test as an increase), counts once against the limit with its results, and
/// counts no test by being declared.
#[test]
fn scheduled_directions_exist_at_zero_before_a_test() {
    let mut s = snapshot(1, &[], Counters::default());
    let flow = xcbench_snapshot::ThroughputFlow {
        peer: s.series[0].peer.clone(),
        protocol: Protocol::Udp,
        flow: xcbench_snapshot::Flow::Forward,
        every_ns: None,
    };
    s.throughput_flows = vec![flow.clone(), flow.clone()];
    let mut store = Store::new(60 * S, 10 * S, 2, BUCKETS);
    ingest(&mut store, &s, 0).unwrap();
    assert_eq!(
        store.series_count(),
        2,
        "one probe series, one test direction"
    );
    let (key, t) = store.throughput().next().unwrap();
    assert_eq!((key.protocol, key.flow), (Protocol::Udp, flow.flow));
    assert_eq!(*t, ThroughputState::default());
    // Its first result lands in the same series.
    let mut s = snapshot(2, &[], Counters::default());
    s.throughput_flows = vec![flow.clone()];
    s.throughput = vec![ThroughputResult {
        peer: flow.peer.clone(),
        protocol: Protocol::Udp,
        flow: flow.flow,
        outcome: xcbench_snapshot::ThroughputOutcome::Ok,
        started_unix_ns: 1,
        counts: Default::default(),
        interval_min_bytes_per_second: 0,
    }];
    ingest(&mut store, &s, 1).unwrap();
    assert_eq!(store.series_count(), 2);
    assert_eq!(store.throughput().next().unwrap().1.tests.ok, 1);
}

#[test]
fn dropped_snapshots_and_restarts_are_counted_per_agent() {
    let mut store = Store::new(60 * S, 10 * S, 100, BUCKETS);
    let c = Counters::default();
    for (seq, instance) in [(1, 1), (2, 1), (5, 1), (2, 2)] {
        let mut s = snapshot(seq, &[], c);
        s.instance = instance;
        assert_eq!(ingest(&mut store, &s, seq * S), Ok(Ingest::Accepted));
    }
    let a = store.agents().next().unwrap();
    // 3 and 4 never came; the new instance's 1 never came either.
    assert_eq!((a.snapshots_dropped, a.restarts), (3, 1));
}

//! Load generator for collector benchmarks: posts snapshots from `agents` agents with
//! `peers` peers each (agents x peers series) for `rounds` report intervals, with RTT,
//! one-way and IPDV histograms of `samples` samples per series and round, shaped like an
//! interconnect (about 1.5 ms RTT with a tail).
//!
//!   cargo run --release --example load_collector -- URL AGENTS PEERS ROUNDS SAMPLES

// A load generator times its own run.
#![allow(clippy::disallowed_methods)]

mod common;

use common::Rng;

use xcbench_snapshot::{
    Cloud, Counters, HistogramDelta, Identity, LatencyHistogram, Load, Metric, ProbeKind, Protocol,
    ResponderCounters, SenderCounters, SeriesSnapshot, Snapshot, TimestampSource, FORMAT_VERSION,
};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn delta(metric: Metric, values: &[u64]) -> HistogramDelta {
    let mut h = LatencyHistogram::new();
    for v in values {
        h.record_ns(*v);
    }
    HistogramDelta {
        metric,
        count: h.len(),
        sum_ns: values.iter().sum(),
        hdr: h.encode_base64(),
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:9862".into());
    let (agents, peers, rounds, samples) = (arg(2, 10), arg(3, 100), arg(4, 30), arg(5, 100));
    let client = reqwest::Client::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Reports every 10 s, the last one now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let t0 = now - rounds * 10_000_000_000;
    let mut bodies = Vec::new();
    for round in 1..=rounds {
        for a in 0..agents {
            let series = (0..peers)
                .map(|p| {
                    let mut rtt = Vec::new();
                    let mut fwd = Vec::new();
                    let mut rev = Vec::new();
                    let mut ipdv = Vec::new();
                    for _ in 0..samples {
                        let (base, tail) = rng.interconnect();
                        let f = base / 2 + tail;
                        rtt.push(base + tail);
                        fwd.push(f);
                        rev.push(base / 2);
                        ipdv.push(rng.next() % 50_000);
                    }
                    SeriesSnapshot {
                        peer: Identity {
                            id: format!("oci-{p}").parse().unwrap(),
                            cloud: Cloud::Oci,
                            region: "us-ashburn-1".into(),
                            zone: String::new(),
                        },
                        protocol: Protocol::Udp,
                        kind: ProbeKind::Stamp,
                        load: Load::Idle,
                        timestamping: TimestampSource::Kernel,
                        counters: Counters {
                            sent: samples,
                            received: samples,
                            ..Counters::default()
                        },
                        histograms: vec![
                            delta(Metric::Rtt, &rtt),
                            delta(Metric::OneWayForward, &fwd),
                            delta(Metric::OneWayReverse, &rev),
                            delta(Metric::IpdvForward, &ipdv),
                            delta(Metric::IpdvReverse, &ipdv),
                        ],
                        jitter_forward_ns: Some(10_000),
                        jitter_reverse_ns: Some(9_000),
                        dscp_forward: None,
                        dscp_reverse: None,
                        ecn_forward: None,
                        ecn_reverse: None,
                        flows: Vec::new(),
                        clock_error_ns: Some(1_000_000),
                        clock_synchronized: Some(true),
                        tcp: None,
                        quic: None,
                        earlier_directions: Vec::new(),
                    }
                })
                .collect();
            let snapshot = Snapshot {
                format: FORMAT_VERSION,
                agent: Identity {
                    id: format!("az-{a}").parse().unwrap(),
                    cloud: Cloud::Azure,
                    region: "eastus".into(),
                    zone: String::new(),
                },
                instance: 1,
                seq: round,
                interval_start_unix_ns: t0 + (round - 1) * 10_000_000_000,
                interval_end_unix_ns: t0 + round * 10_000_000_000,
                responders: ResponderCounters::default(),
                sender: SenderCounters::default(),
                series,
                throughput: vec![],
                throughput_flows: vec![],
                given_up: None,
            };
            let mut body = Vec::new();
            snapshot.encode(&mut body);
            bodies.push(body);
        }
    }
    // Built first, so the clock below times the collector, not this generator.
    let started = std::time::Instant::now();
    for body in bodies {
        let r = client
            .post(format!("{url}/api/v1/snapshots"))
            .body(body)
            .send()
            .await
            .expect("collector reachable");
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "posted {} snapshots ({} series x {} rounds) in {:.2}s: {:.1} snapshots/s",
        agents * rounds,
        agents * peers,
        rounds,
        secs,
        (agents * rounds) as f64 / secs
    );
}

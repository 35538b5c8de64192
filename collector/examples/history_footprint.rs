//! What one series costs the history per day: a day of 10 s reports of 10 probes/s (100
//! samples per report; RTT around 1.5 ms with a 1% tail, one-way delays around half of it,
//! IPDV around 20 us), then downsampled, bytes per tier (keys and values; the database file
//! adds its page slack). Prints the steady-state size per series under the default tiers
//! (see `Tiers::default`). `wide`: a congested path instead, every latency spread over
//! 2..22 ms (RTT) and IPDV over 0..5 ms, the most distinct buckets a slot can fill.
//!
//!   cargo run --release -p xcbench-collector --example history_footprint [wide]

use xcbench_collector::db::History;
use xcbench_collector::store::history::Tiers;
use xcbench_snapshot::{
    Cloud, Counters, HistogramDelta, Identity, LatencyHistogram, Load, Metric, ProbeKind, Protocol,
    ResponderCounters, SenderCounters, SeriesSnapshot, Snapshot, TimestampSource, FORMAT_VERSION,
};

const S: u64 = 1_000_000_000;

/// A small deterministic generator (xorshift), so runs repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn delta(metric: Metric, values: &[u64]) -> HistogramDelta {
    let mut h = LatencyHistogram::new();
    values.iter().for_each(|v| h.record_ns(*v));
    HistogramDelta {
        metric,
        count: h.len(),
        sum_ns: values.iter().sum(),
        hdr: h.encode_base64(),
    }
}

fn identity(id: &str, cloud: Cloud) -> Identity {
    Identity {
        id: id.parse().unwrap(),
        cloud,
        region: "r".into(),
        zone: String::new(),
    }
}

fn main() {
    let wide = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("wide") => true,
        Some(other) => {
            eprintln!("history_footprint: argument = \"{other}\": expected nothing or \"wide\"");
            std::process::exit(2);
        }
    };
    let mut h = History::in_memory(Tiers::default()).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0 = 1_700_000_000 * S;
    let reports = 8_640u64;
    for seq in 1..=reports {
        let (mut rtt, mut fwd, mut rev, mut ipdv) = (vec![], vec![], vec![], vec![]);
        for _ in 0..100 {
            let (r, f, b, i) = if wide {
                // A congested path: queueing spreads every sample over 2..22 ms.
                let queue = rng.next() % 20_000_000;
                let f = 500_000 + queue / 2 + rng.next() % 500_000;
                let b = 500_000 + queue / 2 + rng.next() % 500_000;
                (f + b + 1_000_000, f, b, rng.next() % 5_000_000)
            } else {
                let base = 1_450_000 + (rng.next() % 100_000 + rng.next() % 100_000) / 2;
                let tail = if rng.next().is_multiple_of(100) {
                    rng.next() % 3_000_000
                } else {
                    0
                };
                (base + tail, base / 2 + tail, base / 2, rng.next() % 40_000)
            };
            rtt.push(r);
            fwd.push(f);
            rev.push(b);
            ipdv.push(i);
        }
        let snapshot = Snapshot {
            format: FORMAT_VERSION,
            agent: identity("az-1", Cloud::Azure),
            instance: 1,
            seq,
            interval_start_unix_ns: t0 + (seq - 1) * 10 * S,
            interval_end_unix_ns: t0 + seq * 10 * S,
            responders: ResponderCounters::default(),
            sender: SenderCounters::default(),
            throughput: vec![],
            throughput_flows: vec![],
            given_up: None,
            series: vec![SeriesSnapshot {
                peer: identity("oci-1", Cloud::Oci),
                protocol: Protocol::Udp,
                kind: ProbeKind::Stamp,
                load: Load::Idle,
                timestamping: TimestampSource::Kernel,
                counters: Counters {
                    sent: 100,
                    received: 100,
                    ..Counters::default()
                },
                histograms: vec![
                    delta(Metric::Rtt, &rtt),
                    delta(Metric::OneWayForward, &fwd),
                    delta(Metric::OneWayReverse, &rev),
                    delta(Metric::IpdvForward, &ipdv),
                    delta(Metric::IpdvReverse, &ipdv),
                ],
                jitter_forward_ns: None,
                jitter_reverse_ns: None,
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
            }],
        };
        let hist = snapshot.decode_histograms().unwrap();
        h.append(&snapshot, &hist, snapshot.interval_end_unix_ns)
            .unwrap();
    }
    let day_end = t0 + reports * 10 * S;
    let tiers = Tiers::default();
    let mb = |b: f64| b / 1e6;
    let human = |ns: u64| match ns / S {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    };
    let path = if wide {
        "a congested path (RTT 2..22 ms)"
    } else {
        "RTT around 1.5 ms"
    };
    println!("one series, one day of 10 probes/s, five latency histograms, {path}:");
    let mut steady = 0.0;
    let mut passed = 0;
    for (i, tier) in tiers.get().iter().enumerate() {
        // Past the tiers before this one: the day's slots are now this tier's.
        if i > 0 {
            h.migrate(day_end + passed + tier.slot_ns).unwrap();
        }
        passed += tier.keep_ns;
        let per_day = h.footprint().unwrap()[i].1 as f64;
        let kept = per_day * tier.keep_ns as f64 / (86_400 * S) as f64;
        steady += kept;
        println!(
            "  as {} slots: {:.2} MB/day, kept {}: {:.2} MB",
            human(tier.slot_ns),
            mb(per_day),
            human(tier.keep_ns),
            mb(kept)
        );
    }
    println!(
        "  steady state under the default tiers: {:.1} MB per series",
        mb(steady)
    );
}

//! Fleet load for one collector: every agent of a mesh file simulated, each posting a real
//! snapshot (the series its peers and protocols give it, as a real agent declares them)
//! every report interval for a while, through the agent's own report client
//! (`xcbench_agent::http::collector_client`): over mutual TLS with its own key pair when the
//! collector is `https://`, so the cost measured is the real path's. Prints the ingest
//! latency (request sent to answer read, HdrHistogram) at p50/p99/max, the snapshots and
//! series posted, and the refusals.
//!
//!   load_fleet identities DIR MESH_IDS...      key pairs under DIR/<id>/ (made once); prints
//!                                              "<id> <fingerprint>" per agent
//!   load_fleet run URL MESH SECONDS [DIR PIN]  DIR: the key pairs, PIN: the collector's
//!
//! Histograms are drawn once into a pool of 32 variants per metric (an interconnect's
//! shape: about 1.5 ms RTT, a 1% tail to 6.5 ms) and picked per series and interval, so the
//! generator spends its time on what an agent spends it on: encoding and sending.

// A load generator times its own run.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Rng;
use xcbench_agent::config::mesh::MeshFile;
use xcbench_agent::http::{collector_client, ClientKeys};
use xcbench_agent::record::probe_kinds;
use xcbench_agent::tls::{Fingerprint, KeySource, TlsIdentity};
use xcbench_snapshot::{
    Counters, HistogramDelta, LatencyHistogram, Load, Metric, ProbeKind, ResponderCounters,
    SenderCounters, SeriesSnapshot, Snapshot, TimestampSource, FORMAT_VERSION,
};

/// Samples per series per interval (a 100 ms probe interval over 10 s).
const SAMPLES: u64 = 100;
const VARIANTS: usize = 32;

/// `VARIANTS` histograms of `SAMPLES` values each, per metric, encoded once.
fn pool(rng: &mut Rng, metric: Metric) -> Vec<HistogramDelta> {
    (0..VARIANTS)
        .map(|_| {
            let mut h = LatencyHistogram::new();
            let mut sum = 0;
            for _ in 0..SAMPLES {
                let (base, tail) = rng.interconnect();
                let v = match metric {
                    Metric::Rtt => base + tail,
                    Metric::OneWayForward | Metric::OneWayReverse => base / 2 + tail / 2,
                    _ => rng.next() % 50_000,
                };
                h.record_ns(v);
                sum += v;
            }
            HistogramDelta {
                metric,
                count: h.len(),
                sum_ns: sum,
                hdr: h.encode_base64(),
            }
        })
        .collect()
}

fn metrics_of(kind: ProbeKind) -> &'static [Metric] {
    match kind {
        ProbeKind::Stamp => &[
            Metric::Rtt,
            Metric::OneWayForward,
            Metric::OneWayReverse,
            Metric::IpdvForward,
            Metric::IpdvReverse,
        ],
        _ => &[Metric::Rtt],
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("identities") => {
            let dir = PathBuf::from(&args[2]);
            for id in &args[3..] {
                let key = TlsIdentity::load(&KeySource::Dir(dir.join(id)), id).unwrap();
                println!("{id} {}", key.fingerprint);
            }
        }
        Some("run") => run(&args[2..]).await,
        _ => {
            eprintln!("usage: load_fleet identities DIR IDS... | load_fleet run URL MESH SECONDS [DIR PIN]");
            std::process::exit(2);
        }
    }
}

async fn run(args: &[String]) {
    let url = args[0].trim_end_matches('/').to_owned();
    let mesh = MeshFile::load(std::path::Path::new(&args[1])).unwrap();
    let seconds: u64 = args[2].parse().unwrap();
    let keys_dir = args.get(3).map(PathBuf::from);
    let pin: Option<Fingerprint> = args.get(4).map(|p| p.parse().unwrap());
    let interval = mesh
        .collector
        .as_ref()
        .map_or(Duration::from_secs(10), |c| c.report_interval);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pools: Arc<Vec<(Metric, Vec<HistogramDelta>)>> = Arc::new(
        [
            Metric::Rtt,
            Metric::OneWayForward,
            Metric::OneWayReverse,
            Metric::IpdvForward,
            Metric::IpdvReverse,
        ]
        .into_iter()
        .map(|m| (m, pool(&mut rng, m)))
        .collect(),
    );
    let agents: Vec<_> = mesh
        .azure
        .agents
        .iter()
        .chain(&mesh.oci.agents)
        .map(|a| {
            let peers: Vec<_> = mesh
                .peers_of(&a.identity.id)
                .into_iter()
                .map(|p| (p.identity.clone(), p.probe.protocols))
                .collect();
            (a.identity.clone(), peers)
        })
        .collect();
    let n = agents.len() as u64;
    let series: usize = agents
        .iter()
        .flat_map(|(_, peers)| peers)
        .map(|(_, protocols)| {
            protocols
                .chosen()
                .map(|p| probe_kinds(p).len())
                .sum::<usize>()
        })
        .sum();
    eprintln!(
        "{n} agents, {series} series, a snapshot each every {interval:?} for {seconds} s, {}",
        if keys_dir.is_some() {
            "mutual TLS"
        } else {
            "plain HTTP"
        }
    );
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, (agent, peers)) in agents.into_iter().enumerate() {
        let identity = keys_dir.as_ref().map(|d| {
            TlsIdentity::load(
                &KeySource::Dir(d.join(agent.id.as_str())),
                agent.id.as_str(),
            )
            .unwrap()
        });
        let keys = identity
            .as_ref()
            .map(|identity| ClientKeys { identity, ca: None });
        let client = collector_client(Duration::from_secs(10), keys, pin).unwrap();
        let url = format!("{url}/api/v1/snapshots");
        let pools = pools.clone();
        // Agents start spread over one interval, as a fleet does.
        let offset = interval.mul_f64(i as f64 / n as f64);
        let seed = 0x2545_f491_4f6c_dd1d ^ (i as u64 + 1);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed);
            let mut latencies = LatencyHistogram::new();
            let (mut posted, mut refused, mut unreachable) = (0u64, 0u64, 0u64);
            tokio::time::sleep(offset).await;
            let mut ticker = tokio::time::interval(interval);
            let instance = now_ns();
            let mut start = instance;
            let mut seq = 0;
            loop {
                ticker.tick().await;
                if Instant::now() >= until {
                    break;
                }
                seq += 1;
                let end = now_ns();
                let mut out = Vec::new();
                for (peer, protocols) in &peers {
                    for protocol in protocols.chosen() {
                        for &kind in probe_kinds(protocol) {
                            let histograms = metrics_of(kind)
                                .iter()
                                .map(|m| {
                                    let p = &pools.iter().find(|(pm, _)| pm == m).unwrap().1;
                                    p[(rng.next() % VARIANTS as u64) as usize].clone()
                                })
                                .collect();
                            out.push(SeriesSnapshot {
                                peer: peer.clone(),
                                protocol,
                                kind,
                                load: Load::Idle,
                                timestamping: TimestampSource::Kernel,
                                counters: Counters {
                                    sent: SAMPLES,
                                    received: SAMPLES,
                                    ..Counters::default()
                                },
                                histograms,
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
                            });
                        }
                    }
                }
                let snapshot = Snapshot {
                    format: FORMAT_VERSION,
                    agent: agent.clone(),
                    instance,
                    seq,
                    interval_start_unix_ns: start,
                    interval_end_unix_ns: end,
                    responders: ResponderCounters::default(),
                    sender: SenderCounters::default(),
                    series: out,
                    throughput: vec![],
                    throughput_flows: vec![],
                    given_up: Some(0),
                };
                start = end;
                let mut body = Vec::new();
                snapshot.encode(&mut body);
                let sent = Instant::now();
                match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let _ = r.bytes().await;
                        latencies.record_ns(sent.elapsed().as_nanos() as u64);
                        match ok {
                            true => posted += 1,
                            false => refused += 1,
                        }
                    }
                    Err(_) => unreachable += 1,
                }
            }
            (latencies, posted, refused, unreachable)
        }));
    }
    let mut all = LatencyHistogram::new();
    let (mut posted, mut refused, mut unreachable) = (0, 0, 0);
    for t in tasks {
        let (h, p, r, u) = t.await.unwrap();
        all.add(&h);
        posted += p;
        refused += r;
        unreachable += u;
    }
    let q = |q: f64| all.inner().value_at_quantile(q) as f64 / 1e6;
    println!(
        "agents={n} series={series} seconds={:.0} snapshots={posted} refused={refused} unreachable={unreachable} ingest_p50_ms={:.2} ingest_p99_ms={:.2} ingest_max_ms={:.2}",
        started.elapsed().as_secs_f64(),
        q(0.5),
        q(0.99),
        all.inner().max() as f64 / 1e6
    );
}

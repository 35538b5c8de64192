//! `xcbench demo`: the embedded main job, composition only. An `azure` agent and an `oci`
//! agent on loopback probe each other through a collector in this process, with live
//! progress, then one row per series from the collector's merged histograms (the same data
//! `/metrics` serves), and the verdict of a built-in SLO ([`DEMO_SLO`]) judged over the run;
//! [`crate::output::demo`] prints them.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use xcbench_agent::config::{
    AgentConfig, CollectorLink, ConnectInterval, KeySource, LossTimeout, OutOfRange, PayloadSize,
    PeerConfig, ProbeInterval, ProbeSettings, Protocols, ReflectorConfig, ThroughputLimits,
    TlsConfig,
};
use xcbench_agent::Agent;
use xcbench_collector::store::Store;
use xcbench_collector::{Collector, CollectorConfig};
use xcbench_snapshot::{Cloud, Identity, Metric, TimestampSource};

/// Demo knobs (from the command line).
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub duration: Duration,
    pub interval: Duration,
    pub payload_size: usize,
    /// Receive timestamps of both agents.
    pub timestamps: TimestampSource,
    /// Print a progress line every second.
    pub progress: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            duration: Duration::from_secs(10),
            interval: Duration::from_millis(10),
            payload_size: 44,
            timestamps: TimestampSource::Kernel,
            progress: true,
        }
    }
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Agent(#[from] xcbench_agent::AgentError),
    #[error(transparent)]
    Collector(#[from] xcbench_collector::CollectorError),
    #[error("--{field}")]
    Setting {
        field: &'static str,
        #[source]
        source: OutOfRange,
    },
    #[error("no probe was answered: nothing to report")]
    NoReplies,
}

/// One direction of one pair, as the table shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairRow {
    pub source: String,
    pub destination: String,
    pub protocol: String,
    pub timestamping: String,
    pub sent: u64,
    pub received: u64,
    pub rtt_ns: Quantiles,
    pub one_way_forward_p50_ns: Option<u64>,
    pub one_way_reverse_p50_ns: Option<u64>,
    pub jitter_forward_ns: Option<u64>,
    pub jitter_reverse_ns: Option<u64>,
    pub lost: u64,
    pub lost_forward: u64,
    pub lost_reverse: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub late: u64,
    pub clock_error_ns: Option<u64>,
}

/// RTT p50, p90, p99, p99.9 and max (ns).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
    pub max: Option<u64>,
}

/// Output of a finished demo.
pub struct DemoReport {
    pub rows: Vec<PairRow>,
    pub metrics_url: String,
    /// The built-in SLO ([`DEMO_SLO`]) judged over the run from the collector's history.
    pub gate: Result<xcbench_slo::GateResult, crate::gate::GateError>,
}

/// The SLO the demo ends with (`slo/demo.slo.yaml`).
pub const DEMO_SLO: &str = include_str!("../slo/demo.slo.yaml");

/// What the demo tells while it runs.
pub enum Progress<'a> {
    /// The agents and the collector are up.
    Started {
        agents: [&'a str; 2],
        collector_url: &'a str,
        config: &'a DemoConfig,
    },
    /// Every second: one row per series so far.
    Tick {
        elapsed: Duration,
        rows: &'a [PairRow],
    },
}

/// Runs the demo; `progress` hears of it as it goes. Returns once agents have drained and sent
/// their final snapshots.
pub async fn run(
    config: DemoConfig,
    shutdown: impl Future<Output = ()>,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<DemoReport, DemoError> {
    let collector = Collector::bind(&CollectorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        window: Duration::from_secs(300),
        // The table reads one-way windows from the store.
        exposition: xcbench_collector::exposition::Options::full(),
        ..CollectorConfig::default()
    })
    .await?;
    let collector_addr = collector.local_addr();
    let store = collector.store();
    let (stop_collector, collector_stop) = tokio::sync::oneshot::channel::<()>();
    let collector_task = tokio::spawn(collector.serve(async {
        let _ = collector_stop.await;
    }));
    let url = format!("http://{collector_addr}");

    let identities = [
        identity("azure-demo", Cloud::Azure, "eastus"),
        identity("oci-demo", Cloud::Oci, "us-ashburn-1"),
    ];
    // The judged span holds every report the agents make: their first is measured from
    // when they are bound, their last when their shutdown drained the probes still out.
    let first_report_unix_ns = xcbench_agent::net::clock::now_unix_ns();
    let mut agents = Vec::new();
    for id in &identities {
        let config = AgentConfig {
            identity: id.clone(),
            auto: None,
            timestamps: config.timestamps,
            clock_error: Default::default(),
            reflector: ReflectorConfig {
                listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
                max_sessions: 16,
                rate: Default::default(),
                tcp: true,
                quic: true,
                stamp_keys: None,
            },
            collector: Some(CollectorLink {
                url: url.clone(),
                report_interval: Duration::from_millis(500),
                // The in-process collector on loopback: plain HTTP needs no opt-out there.
                fingerprint: None,
                plain_http: false,
                fallbacks: Vec::new(),
            }),
            // Key pairs live in memory for the demo; each agent pins the other's fingerprint.
            tls: Some(TlsConfig {
                key: KeySource::Ephemeral,
                ca: None,
                allow: Vec::new(),
            }),
            throughput: ThroughputLimits::default(),
            peers: Vec::new(),
            mesh: None,
            spool: None,
        };
        // The TCP responder takes the port number the kernel chose for UDP; that number can
        // be busy on TCP (another program's connection), so try a few ports.
        let mut attempt = 0;
        let resolved = xcbench_agent::Resolved::already(config)
            .expect("the demo's agents need no start-up step: no metadata, no mesh");
        agents.push(loop {
            match Agent::bind(resolved.clone()) {
                Err(xcbench_agent::AgentError::Bind { .. }) if attempt < 10 => attempt += 1,
                other => break other?,
            }
        });
    }
    let addrs: Vec<SocketAddr> = agents.iter().map(|a| a.reflector_addrs()[0]).collect();
    let quic_addrs: Vec<SocketAddr> = agents.iter().map(|a| a.quic_addrs()[0]).collect();
    let fingerprints: Vec<_> = agents.iter().map(|a| a.fingerprint()).collect();
    let setting = |field| move |source| DemoError::Setting { field, source };
    let probe = ProbeSettings {
        interval: ProbeInterval::try_from(config.interval).map_err(setting("interval"))?,
        payload_size: PayloadSize::try_from(config.payload_size)
            .map_err(setting("payload-size"))?,
        loss_timeout: LossTimeout::try_from(Duration::from_secs(1)).map_err(setting("interval"))?,
        protocols: Protocols {
            udp: true,
            tcp: true,
            quic: true,
        },
        connect_interval: ConnectInterval::try_from(Duration::from_millis(100))
            .map_err(setting("interval"))?,
        ..ProbeSettings::default()
    };
    for (i, agent) in agents.iter_mut().enumerate() {
        let other = 1 - i;
        agent.set_peers(vec![PeerConfig {
            identity: identities[other].clone(),
            address: addrs[other],
            quic_address: quic_addrs[other],
            fingerprint: fingerprints[other],
            probe: probe.clone(),
        }])?;
    }
    if config.progress {
        progress(Progress::Started {
            agents: [identities[0].id.as_str(), identities[1].id.as_str()],
            collector_url: &url,
            config: &config,
        });
    }
    let (stop_agents, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for agent in agents {
        let mut rx = stop_agents.subscribe();
        tasks.push(tokio::spawn(agent.run(async move {
            let _ = rx.recv().await;
        })));
    }

    let started = tokio::time::Instant::now();
    let deadline = started + config.duration;
    tokio::pin!(shutdown);
    let mut tick =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tick.tick() => {
                if config.progress {
                    let rows = rows(&lock(&store));
                    progress(Progress::Tick { elapsed: started.elapsed(), rows: &rows });
                }
            }
        }
    }
    let _ = stop_agents.send(());
    for t in tasks {
        if let Ok(result) = t.await {
            result?;
        }
    }
    let last_report_unix_ns = xcbench_agent::net::clock::now_unix_ns();
    let rows = rows(&lock(&store));
    // The demo's collector holds this run alone: judged over all of it.
    let gate = judge_run(&url, first_report_unix_ns, last_report_unix_ns).await;
    let _ = stop_collector.send(());
    let _ = collector_task.await;
    if rows.iter().all(|r| r.received == 0) {
        return Err(DemoError::NoReplies);
    }
    Ok(DemoReport {
        rows,
        metrics_url: format!("{url}/metrics"),
        gate,
    })
}

/// [`DEMO_SLO`] over the run, read from the collector's history as `xcbench gate` reads it.
async fn judge_run(
    url: &str,
    from_unix_ns: u64,
    to_unix_ns: u64,
) -> Result<xcbench_slo::GateResult, crate::gate::GateError> {
    let slo = xcbench_slo::SloFile::parse("slo/demo.slo.yaml", DEMO_SLO)?;
    let now = xcbench_agent::net::clock::now_unix_ns();
    let source =
        crate::gate::history::CollectorSource::new(url, &crate::gate::HttpsTrust::default())?;
    let results = crate::gate::judge_run(&source, &slo, from_unix_ns, to_unix_ns, now).await?;
    Ok(xcbench_slo::GateResult::new(
        "the demo's collector".to_owned(),
        now,
        results,
        slo.family,
    ))
}

fn identity(id: &str, cloud: Cloud, region: &str) -> Identity {
    Identity {
        id: id.parse().expect("constant id"),
        cloud,
        region: region.to_owned(),
        zone: String::new(),
    }
}

fn lock(store: &std::sync::Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// One row per series, from the collector's store.
pub fn rows(store: &Store) -> Vec<PairRow> {
    store
        .series()
        .map(|(key, s)| {
            let window = |m: Metric| s.metrics.get(&m).map(|m| m.window());
            let q = |m: Metric, q: f64| window(m).and_then(|w| w.quantile(q));
            PairRow {
                source: key.source.id.to_string(),
                destination: key.peer.id.to_string(),
                protocol: format!("{}/{}", key.protocol, key.kind),
                timestamping: s.timestamping.to_string(),
                sent: s.counters.sent,
                received: s.counters.received,
                rtt_ns: Quantiles {
                    p50: q(Metric::Rtt, 0.5),
                    p90: q(Metric::Rtt, 0.9),
                    p99: q(Metric::Rtt, 0.99),
                    p999: q(Metric::Rtt, 0.999),
                    max: q(Metric::Rtt, 1.0),
                },
                one_way_forward_p50_ns: q(Metric::OneWayForward, 0.5),
                one_way_reverse_p50_ns: q(Metric::OneWayReverse, 0.5),
                jitter_forward_ns: s.jitter_forward_ns,
                jitter_reverse_ns: s.jitter_reverse_ns,
                lost: s.counters.lost,
                lost_forward: s.counters.lost_forward,
                lost_reverse: s.counters.lost_reverse,
                duplicated: s.counters.duplicated,
                reordered: s.counters.reordered,
                late: s.counters.late,
                clock_error_ns: s.clock_error_ns,
            }
        })
        .collect()
}

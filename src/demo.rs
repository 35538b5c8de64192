//! `xcbench demo`: the embedded main job. An `azure` agent and an `oci` agent on loopback
//! probe each other through a collector in this process, with live progress, then a per-pair
//! table built from the collector's merged histograms (the same data `/metrics` serves).

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use xcbench_agent::config::{
    AgentConfig, CollectorLink, KeySource, LossTimeout, PayloadSize, PeerConfig, ProbeInterval,
    ProbeSettings, Protocols, ReflectorConfig, TlsConfig,
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
    #[error("{0}")]
    Config(#[from] xcbench_agent::ConfigError),
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
}

/// Runs the demo; `out` receives progress lines. Returns once agents have drained and sent
/// their final snapshots.
pub async fn run(
    config: DemoConfig,
    shutdown: impl Future<Output = ()>,
    mut out: impl FnMut(&str),
) -> Result<DemoReport, DemoError> {
    let collector = Collector::bind(&CollectorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        window: Duration::from_secs(300),
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
    let mut agents = Vec::new();
    for id in &identities {
        let config = AgentConfig {
            identity: id.clone(),
            timestamps: config.timestamps,
            reflector: ReflectorConfig {
                listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
                max_sessions: 16,
                tcp: true,
                quic: true,
            },
            collector: Some(CollectorLink {
                url: url.clone(),
                report_interval: Duration::from_millis(500),
            }),
            // Key pairs live in memory for the demo; each agent pins the other's fingerprint.
            tls: Some(TlsConfig {
                key: KeySource::Ephemeral,
                ca: None,
                allow: Vec::new(),
            }),
            bench: Default::default(),
            peers: Vec::new(),
        };
        // The TCP responder takes the port number the kernel chose for UDP; that number can
        // be busy on TCP (another program's connection), so try a few ports.
        let mut attempt = 0;
        agents.push(loop {
            match Agent::bind(config.clone()) {
                Err(xcbench_agent::AgentError::Bind { .. }) if attempt < 10 => attempt += 1,
                other => break other?,
            }
        });
    }
    let addrs: Vec<SocketAddr> = agents.iter().map(|a| a.reflector_addrs()[0]).collect();
    let quic_addrs: Vec<SocketAddr> = agents.iter().map(|a| a.quic_addrs()[0]).collect();
    let fingerprints: Vec<_> = agents.iter().map(|a| a.fingerprint()).collect();
    let probe = ProbeSettings {
        interval: ProbeInterval(config.interval),
        payload_size: PayloadSize(config.payload_size),
        loss_timeout: LossTimeout(Duration::from_secs(1)),
        protocols: Protocols {
            udp: true,
            tcp: true,
            quic: true,
        },
        connect_interval: ProbeInterval(Duration::from_millis(100)),
        ..ProbeSettings::default()
    };
    for (i, agent) in agents.iter_mut().enumerate() {
        let other = 1 - i;
        agent.set_peers(vec![PeerConfig {
            identity: identities[other].clone(),
            address: addrs[other],
            quic_address: quic_addrs[other],
            fingerprint: fingerprints[other],
            probe,
        }])?;
    }
    if config.progress {
        out(&format!(
        "xcbench demo: {} <-> {} over loopback, STAMP/UDP, TCP and QUIC, probe every {:?}, {} bytes, for {:?}; collector {url}",
        identities[0].id, identities[1].id, config.interval, config.payload_size, config.duration
    ));
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
                    out(&progress_line(started.elapsed(), &rows));
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
    let rows = rows(&lock(&store));
    let _ = stop_collector.send(());
    let _ = collector_task.await;
    if rows.iter().all(|r| r.received == 0) {
        return Err(DemoError::NoReplies);
    }
    Ok(DemoReport {
        rows,
        metrics_url: format!("{url}/metrics"),
    })
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

/// `41.2us`, `1.234ms`, `2.500s`, or `-` when there is no value.
pub fn format_ns(ns: Option<u64>) -> String {
    match ns {
        None => "-".to_owned(),
        Some(v) if v < 1_000_000 => format!("{:.1}us", v as f64 / 1e3),
        Some(v) if v < 1_000_000_000 => format!("{:.3}ms", v as f64 / 1e6),
        Some(v) => format!("{:.3}s", v as f64 / 1e9),
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

fn progress_line(elapsed: Duration, rows: &[PairRow]) -> String {
    let mut line = format!("{:>4}s", elapsed.as_secs());
    // STAMP only, to keep the line short; the final table has every series.
    for r in rows.iter().filter(|r| r.protocol == "udp/stamp") {
        let _ = write!(
            line,
            "  {}->{} sent {:>5} rtt p50 {:>8} p99 {:>8} lost {}",
            r.source,
            r.destination,
            r.sent,
            format_ns(r.rtt_ns.p50),
            format_ns(r.rtt_ns.p99),
            r.lost
        );
    }
    line
}

/// The final table: one line per direction of each pair, then how figures were obtained.
pub fn render_table(rows: &[PairRow]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<24} {:<13} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>9} {:>9}  {:>8} {:>8}  {:>7} {:>7} {:>7}  {:>3} {:>3} {:>4}",
        "pair (src->dst)", "proto", "sent", "rtt p50", "p90", "p99", "p99.9", "max",
        "owd fwd", "owd rev", "jit fwd", "jit rev", "loss", "loss fw", "loss rv", "dup", "reo", "late"
    );
    for r in rows {
        let stamp = r.protocol.ends_with("/stamp");
        let _ = writeln!(
            t,
            "{:<24} {:<13} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>9} {:>9}  {:>8} {:>8}  {:>7} {:>7} {:>7}  {:>3} {:>3} {:>4}",
            format!("{}->{}", r.source, r.destination),
            r.protocol,
            r.sent,
            format_ns(r.rtt_ns.p50),
            format_ns(r.rtt_ns.p90),
            format_ns(r.rtt_ns.p99),
            format_ns(r.rtt_ns.p999),
            format_ns(r.rtt_ns.max),
            format_ns(r.one_way_forward_p50_ns),
            format_ns(r.one_way_reverse_p50_ns),
            format_ns(r.jitter_forward_ns),
            format_ns(r.jitter_reverse_ns),
            percent(r.lost, r.sent),
            // Only STAMP's stateful reflector lets loss be split by direction.
            if stamp { percent(r.lost_forward, r.sent) } else { "-".to_owned() },
            if stamp { percent(r.lost_reverse, r.sent) } else { "-".to_owned() },
            r.duplicated,
            r.reordered,
            r.late,
        );
    }
    // QUIC (quinn has no kernel receive timestamps) and connect times are user space by design.
    let ts: Vec<&str> = rows
        .iter()
        .filter(|r| !r.protocol.ends_with("/connect") && !r.protocol.starts_with("quic/"))
        .map(|r| r.timestamping.as_str())
        .collect();
    let _ = writeln!(
        t,
        "\nRTT = (T4-T1)-(T3-T2), reflector dwell excluded; receive timestamps for udp and tcp/rr: {}; \
         quic/* and */connect times are read in user space; quantiles are HdrHistogram bucket tops (512 ns below 1 ms, 0.1% above).",
        if ts.iter().all(|s| *s == "kernel") {
            "kernel (SO_TIMESTAMPNS)"
        } else {
            "user space for some series"
        }
    );
    let _ = writeln!(
        t,
        "One-way delay (owd) p50 per direction: both agents read this host's clock, so no clock offset \
         enters it here; across hosts trust it only to the clock error estimate ({}).",
        format_ns(rows.iter().filter_map(|r| r.clock_error_ns).max())
    );
    let _ = writeln!(
        t,
        "Jitter = RFC 3550 estimate; loss fw/rv = share of sent STAMP probes lost on the way out / back \
         (split by the reflector's own sequence number; a loss with no later reply stays unsplit). \
         */connect = handshake time of a fresh connection (QUIC: TLS 1.3 with both certificates checked); \
         */rr = request/response on one connection (QUIC: a stream per request); \
         quic/resume = a resumed connection's first request sent as 0-RTT data, connect to response; \
         quic/datagram = RFC 9221 DATAGRAM request/response."
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_golden;

    fn row() -> PairRow {
        PairRow {
            source: "azure-demo".into(),
            destination: "oci-demo".into(),
            protocol: "udp/stamp".into(),
            timestamping: "kernel".into(),
            sent: 1000,
            received: 997,
            rtt_ns: Quantiles {
                p50: Some(41_215),
                p90: Some(55_000),
                p99: Some(1_234_567),
                p999: Some(2_000_000_000),
                max: None,
            },
            one_way_forward_p50_ns: Some(20_001),
            one_way_reverse_p50_ns: Some(19_999),
            jitter_forward_ns: Some(3_000),
            jitter_reverse_ns: None,
            lost: 3,
            lost_forward: 1,
            lost_reverse: 2,
            duplicated: 0,
            reordered: 4,
            late: 1,
            clock_error_ns: Some(32_000_000_000),
        }
    }

    /// A QUIC row: user-space timestamps, no one-way delay or direction split.
    fn quic_row() -> PairRow {
        PairRow {
            protocol: "quic/datagram".into(),
            timestamping: "user".into(),
            one_way_forward_p50_ns: None,
            one_way_reverse_p50_ns: None,
            jitter_forward_ns: None,
            clock_error_ns: None,
            ..row()
        }
    }

    #[test]
    fn golden_table() {
        check_golden("demo_table.txt", &render_table(&[row(), quic_row()]));
    }

    #[test]
    fn golden_json() {
        check_golden(
            "demo.json",
            &(serde_json::to_string_pretty(&[row()]).unwrap() + "\n"),
        );
    }

    #[test]
    fn durations_format() {
        assert_eq!(format_ns(Some(41_215)), "41.2us");
        assert_eq!(format_ns(Some(1_234_567)), "1.235ms");
        assert_eq!(format_ns(Some(2_500_000_000)), "2.500s");
        assert_eq!(format_ns(None), "-");
        assert_eq!(percent(1, 3), "33.33%");
        assert_eq!(percent(1, 0), "-");
    }
}

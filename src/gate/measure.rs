//! `xcbench gate --measure DURATION -c agent.toml`: no collector needed. The agent of the
//! configuration runs in this process toward its configured peers for DURATION, reporting
//! to a collector in this process (history in memory); the gate then judges that
//! collector's history over the measurement, exactly as it judges any collector's. A
//! pre-migration check from a runner inside the VNet, against agents already answering on
//! the other side.

use std::net::SocketAddr;
use std::time::Duration;

use xcbench_agent::config::CollectorLink;
use xcbench_agent::{Agent, AgentConfig, AgentError};
use xcbench_collector::{Collector, CollectorConfig, CollectorError};

/// Why the measurement gave no data.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("--measure: the agent")]
    Agent(#[from] AgentError),
    #[error("--measure: the in-process collector")]
    Collector(#[from] CollectorError),
    #[error("--measure: {0} has no peers to probe")]
    NoPeers(String),
}

/// A finished measurement: where its collector still answers, and its time range.
pub struct Measured {
    pub url: String,
    pub from_unix_ns: u64,
    pub to_unix_ns: u64,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), CollectorError>>,
}

impl Measured {
    /// Stops the in-process collector.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// How often the agent reports to the in-process collector.
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// Runs the agent of `config` for `duration`, reporting to a collector in this process.
pub async fn measure(
    config: AgentConfig,
    file: &str,
    duration: Duration,
) -> Result<Measured, MeasureError> {
    // Labels from instance metadata, then a mesh's peers (and its collector, replaced below
    // by the one in this process).
    let mut config = xcbench_agent::resolve(config, &Default::default()).await?;
    if config.config().peers.is_empty() {
        return Err(MeasureError::NoPeers(file.to_owned()));
    }
    let collector = Collector::bind(&CollectorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..CollectorConfig::default()
    })
    .await?;
    let url = format!("http://{}", collector.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector.serve(async {
        let _ = stopped.await;
    }));
    config.set_collector(Some(CollectorLink {
        url: url.clone(),
        report_interval: REPORT_EVERY,
        // The gate's own collector on loopback.
        fingerprint: None,
        plain_http: false,
        fallbacks: Vec::new(),
    }));
    let from_unix_ns = xcbench_agent::net::clock::now_unix_ns();
    let agent = Agent::bind(config)?;
    tracing::info!(
        seconds = duration.as_secs_f64(),
        "measuring toward the configured peers"
    );
    // The agent drains (every probe out settles at its timeout) and sends its last
    // snapshot before `run` returns.
    agent.run(tokio::time::sleep(duration)).await?;
    let to_unix_ns = xcbench_agent::net::clock::now_unix_ns();
    Ok(Measured {
        url,
        from_unix_ns,
        to_unix_ns,
        stop,
        task,
    })
}

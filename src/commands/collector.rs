//! `xcbench collector`: bound, then served as a service until a signal.

use std::path::PathBuf;

use xcbench_collector::{Collector, CollectorConfig};

use super::{shutdown_signal, CommandError, Outcome};

pub(crate) async fn run(config: Option<PathBuf>) -> Result<Outcome, CommandError> {
    let config = match config {
        None => CollectorConfig::default(),
        Some(path) => CollectorConfig::load(&path).map_err(CommandError::usage)?,
    };
    let shutdown = shutdown_signal();
    let collector = Collector::bind(&config)
        .await
        .map_err(CommandError::failed)?;
    let addr = collector.local_addr();
    tracing::info!(%addr, "collector listening");
    xcbench::service::serve(&format!("listening on {addr}"), shutdown, |stop| {
        collector.serve(stop)
    })
    .await
    .map_err(CommandError::failed)?;
    Ok(Outcome::OK)
}

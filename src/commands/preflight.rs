//! `xcbench preflight`: exit 0 when every peer is reachable as the agent needs, 1 when not.

use std::path::PathBuf;
use std::time::Duration;

use xcbench_agent::net::metadata::Lookup;

use super::{CommandError, Outcome};
use xcbench::output;

pub(crate) async fn run(
    config: PathBuf,
    timeout: Duration,
    json: bool,
) -> Result<Outcome, CommandError> {
    let config = xcbench_agent::AgentConfig::load(&config).map_err(CommandError::usage)?;
    // Its peers as the agent would have them: labels from instance metadata, then the mesh
    // (read from the file or fetched from the collector).
    let resolved = xcbench_agent::resolve(config, &Lookup::default())
        .await
        .map_err(CommandError::usage)?;
    let report =
        tokio::task::spawn_blocking(move || xcbench::preflight::run(resolved.config(), timeout))
            .await
            .map_err(|e| {
                CommandError::failed(anyhow::Error::new(e).context("preflight stopped"))
            })?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        );
    } else {
        print!("{}", output::preflight::render(&report));
    }
    Ok(Outcome::ok_if(report.ok()))
}

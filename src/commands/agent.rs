//! `xcbench agent`: start-up resolved (instance metadata, then the mesh), every port bound,
//! then the agent runs as a service until a signal.

use std::path::PathBuf;

use xcbench_agent::net::metadata::Lookup;
use xcbench_agent::{Agent, AgentConfig, AgentError};

use super::{shutdown_signal, CommandError, Outcome};

pub(crate) async fn run(config: PathBuf) -> Result<Outcome, CommandError> {
    let config = AgentConfig::load(&config).map_err(CommandError::usage)?;
    // Signals first: a SIGTERM while the metadata is read or ports bound stops it cleanly.
    let shutdown = shutdown_signal();
    let started = async {
        let resolved = xcbench_agent::resolve(config, &Lookup::default()).await?;
        Agent::bind(resolved)
    };
    let agent = match started.await {
        Ok(a) => a,
        // cloud = "auto" without instance metadata: the remedy is the config file.
        Err(e @ AgentError::Metadata(_)) => return Err(CommandError::usage(e)),
        // A STAMP key file missing, open to others or malformed.
        Err(e @ AgentError::Keys(_)) => return Err(CommandError::usage(e)),
        // A mesh that does not parse or apply, or a collector serving none.
        Err(AgentError::Mesh(e)) if e.is_config() => return Err(CommandError::usage(e)),
        Err(e) => return Err(CommandError::failed(e)),
    };
    xcbench::service::serve("probing and answering probes", shutdown, |stop| {
        agent.run(stop)
    })
    .await
    .map_err(CommandError::failed)?;
    Ok(Outcome::OK)
}

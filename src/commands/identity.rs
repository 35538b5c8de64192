//! `xcbench identity`: the certificate fingerprint peers pin (`--config`, an agent's), or
//! the collector's (`--collector`); the key pair is generated in tls.dir at first use.

use std::path::{Path, PathBuf};

use xcbench_agent::tls::{KeySource, TlsIdentity};

use super::{CommandError, Outcome};

pub(crate) fn run(
    config: Option<PathBuf>,
    collector: Option<PathBuf>,
) -> Result<Outcome, CommandError> {
    let (path, key, name, why) = match (config, collector) {
        (Some(path), _) => {
            let c = xcbench_agent::AgentConfig::load(&path).map_err(CommandError::usage)?;
            let name = c.identity.id.to_string();
            (path, c.tls.map(|t| t.key), name, "QUIC needs")
        }
        (None, Some(path)) => {
            let c = xcbench_collector::CollectorConfig::load(&path).map_err(CommandError::usage)?;
            (
                path,
                c.tls.map(|t| t.key),
                "xcbench-collector".to_owned(),
                "an HTTPS collector needs",
            )
        }
        (None, None) => {
            return Err(CommandError::usage(
                "identity needs --config or --collector",
            ))
        }
    };
    let id = load(&path, key.as_ref(), &name, why)?;
    println!("{}", id.fingerprint);
    Ok(Outcome::OK)
}

fn load(
    path: &Path,
    key: Option<&KeySource>,
    name: &str,
    why: &str,
) -> Result<TlsIdentity, CommandError> {
    let Some(key) = key else {
        return Err(CommandError::usage(format_args!(
            "{}: tls is not set: {why} a [tls] section with dir, or cert and key",
            path.display()
        )));
    };
    TlsIdentity::load(key, name).map_err(CommandError::failed)
}

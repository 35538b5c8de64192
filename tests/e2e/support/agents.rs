//! The processes a test measures with: agent configs (loopback or namespace addresses), a
//! collector, and a pair of agents probing each other.

use std::net::SocketAddr;
use std::process::Command;

use super::proc::{Proc, TempDir, BIN};

/// `xcbench collector` listening on `addr`, with more config lines `extra`.
pub(crate) fn spawn_collector(dir: &TempDir, addr: SocketAddr, extra: &str) -> Proc {
    let cfg = dir.write("collector.toml", &format!("listen = \"{addr}\"\n{extra}"));
    Proc::spawn(
        "collector",
        Command::new(BIN).args(["collector", "--config"]).arg(&cfg),
    )
}

/// Agent TOML for a loopback (or namespace) agent.
pub(crate) fn agent_toml(
    id: &str,
    cloud: &str,
    listen: SocketAddr,
    collector: &str,
    peers: &[(&str, &str, SocketAddr)],
    interval: &str,
) -> String {
    let mut t = format!(
        "[agent]\nid = \"{id}\"\ncloud = \"{cloud}\"\nregion = \"r-{cloud}\"\n\n[reflector]\nlisten = [\"{listen}\"]\n\n[collector]\nurl = \"{collector}\"\nreport_interval = \"200ms\"\n\n[probe_defaults]\ninterval = \"{interval}\"\nloss_timeout = \"500ms\"\n"
    );
    for (pid, pcloud, addr) in peers {
        t.push_str(&format!(
            "\n[[peers]]\nid = \"{pid}\"\ncloud = \"{pcloud}\"\nregion = \"r-{pcloud}\"\naddress = \"{addr}\"\n"
        ));
    }
    t
}

/// Agents "az-1" (azure, reflector at `a`) and "oci-1" (oci, at `b`) probing each other every
/// `interval` and reporting to `collector_url`, started by `commands` (the binary, or the
/// binary inside a namespace), az-1's first; their configs are written to `dir`.
pub(crate) fn spawn_pair(
    dir: &TempDir,
    collector_url: &str,
    [a, b]: [SocketAddr; 2],
    interval: &str,
    commands: [Command; 2],
) -> Vec<Proc> {
    let acfg = dir.write(
        "a.toml",
        &agent_toml(
            "az-1",
            "azure",
            a,
            collector_url,
            &[("oci-1", "oci", b)],
            interval,
        ),
    );
    let bcfg = dir.write(
        "b.toml",
        &agent_toml(
            "oci-1",
            "oci",
            b,
            collector_url,
            &[("az-1", "azure", a)],
            interval,
        ),
    );
    let [mut command_a, mut command_b] = commands;
    vec![
        Proc::spawn("agent a", command_a.args(["agent", "--config"]).arg(&acfg)),
        Proc::spawn("agent b", command_b.args(["agent", "--config"]).arg(&bcfg)),
    ]
}

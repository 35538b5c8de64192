//! The processes a test measures with: agent configs (loopback or namespace addresses) and a
//! collector.

use std::net::SocketAddr;
use std::process::Command;

use super::proc::{Proc, TempDir, BIN};

/// `xcbench collector` listening on `addr`, with more config lines `extra`.
pub fn spawn_collector(dir: &TempDir, addr: SocketAddr, extra: &str) -> Proc {
    let cfg = dir.write("collector.toml", &format!("listen = \"{addr}\"\n{extra}"));
    Proc::spawn(
        "collector",
        Command::new(BIN).args(["collector", "--config"]).arg(&cfg),
    )
}

/// Agent TOML for a loopback (or namespace) agent.
pub fn agent_toml(
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

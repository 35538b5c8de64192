//! The processes a test measures with: agent configs (loopback or namespace addresses), a
//! collector, and a pair of agents probing each other.

use std::net::SocketAddr;
use std::process::Command;

use super::proc::{bin, Proc, TempDir};

/// `xcbench collector` listening on `addr`, with more config lines `extra`.
pub(crate) fn spawn_collector(dir: &TempDir, addr: SocketAddr, extra: &str) -> Proc {
    let cfg = dir.write("collector.toml", &format!("listen = \"{addr}\"\n{extra}"));
    Proc::spawn(
        "collector",
        Command::new(bin())
            .args(["collector", "--config"])
            .arg(&cfg),
    )
}

/// [`spawn_collector`] on a free loopback port, once it answers `/healthz`.
pub(crate) fn ready_collector(dir: &TempDir, extra: &str) -> (Proc, SocketAddr) {
    let addr: SocketAddr = ([127, 0, 0, 1], super::ports::free_tcp_port()).into();
    let proc = spawn_collector(dir, addr, extra);
    super::wait_for(std::time::Duration::from_secs(10), || {
        super::http::http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    (proc, addr)
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
    // Namespace addresses are not loopback: such a collector is plain HTTP on purpose
    // (the lab's), or https:// with the agents' key pairs (netns).
    let loopback = collector.starts_with("http://127.") || collector.starts_with("http://[::1]");
    let plain = match collector.starts_with("http://") && !loopback {
        true => "plain_http = true\n",
        false => "",
    };
    let mut t = format!(
        "[agent]\nid = \"{id}\"\ncloud = \"{cloud}\"\nregion = \"r-{cloud}\"\n{plain}\n[reflector]\nlisten = [\"{listen}\"]\n\n[collector]\nurl = \"{collector}\"\nreport_interval = \"200ms\"\n\n[probe_defaults]\ninterval = \"{interval}\"\nloss_timeout = \"500ms\"\n"
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
    addrs: [SocketAddr; 2],
    interval: &str,
    commands: [Command; 2],
) -> Vec<Proc> {
    spawn_pair_with(dir, collector_url, None, addrs, interval, commands)
}

/// As [`spawn_pair`], reporting to an `https://` collector pinned by `pin`: each agent
/// presents the key pair `support::tls::tls_identity` made for its id in `dir`.
pub(crate) fn spawn_pair_tls(
    dir: &TempDir,
    collector_url: &str,
    pin: &str,
    addrs: [SocketAddr; 2],
    interval: &str,
    commands: [Command; 2],
) -> Vec<Proc> {
    spawn_pair_with(dir, collector_url, Some(pin), addrs, interval, commands)
}

fn spawn_pair_with(
    dir: &TempDir,
    collector_url: &str,
    pin: Option<&str>,
    [a, b]: [SocketAddr; 2],
    interval: &str,
    commands: [Command; 2],
) -> Vec<Proc> {
    let config = |id: &str, cloud: &str, listen, peer: (&str, &str, SocketAddr)| {
        let toml = agent_toml(id, cloud, listen, collector_url, &[peer], interval);
        match pin {
            None => toml,
            Some(pin) => {
                toml.replace(
                    "report_interval = \"200ms\"\n",
                    &format!("report_interval = \"200ms\"\nfingerprint = \"{pin}\"\n"),
                ) + &super::tls::tls_section(dir, id, &[])
            }
        }
    };
    let acfg = dir.write("a.toml", &config("az-1", "azure", a, ("oci-1", "oci", b)));
    let bcfg = dir.write("b.toml", &config("oci-1", "oci", b, ("az-1", "azure", a)));
    let [mut command_a, mut command_b] = commands;
    vec![
        Proc::spawn("agent a", command_a.args(["agent", "--config"]).arg(&acfg)),
        Proc::spawn("agent b", command_b.args(["agent", "--config"]).arg(&bcfg)),
    ]
}

//! Crate `xcbench-lab`, behind `xcbench lab`: an emulated Azure-OCI interconnect on one Linux
//! machine, for proving xcbench's figures against a known ground truth. Needs CAP_NET_ADMIN.
//! Of xcbench's crates it uses only `xcbench-snapshot` (the ground truth's histograms); `up`
//! starts the emulator by running the current executable, `xcbench`, as `xcbench lab emulate`.
//!
//! Every host is a network namespace (`NAME-azure`, `NAME-oci`, or `NAME-azure-2`, ... with
//! `--hosts 2`) with one TUN device, `xcb0`, an address from 198.18.0.0/15 (azure hosts
//! 198.18.1.N, oci hosts 198.18.2.N) and one route, 198.18.0.0/15 via `xcb0`: nothing in the
//! lab reaches anything but the emulator. The emulator process (`lab emulate`, started by
//! `lab up`) holds every TUN device, forwards azure <-> oci through the per-direction
//! [`link`] model, and answers the ground truth on `/run/xcbench/lab-NAME/truth.sock`.
//!
//! # Layout
//! - [`link`]: sans-IO impairment model and ground-truth counters.
//! - [`profile`]: named profiles and `--set KEY=VALUE`.
//! - [`emulator`]: TUN devices, forwarding and delivery threads, the truth socket.
//! - `lib.rs` (this file): namespaces, the emulator's lifecycle, `up`/`down`/`exec`/`truth`.

// The lab runs in real time: the emulator schedules deliveries and the lifecycle waits on
// std::time::Instant, nothing here measures a figure xcbench reports.
#![allow(clippy::disallowed_methods)]

pub mod emulator;
pub mod link;
pub mod profile;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use profile::LinkProfile;

/// The TUN device name inside every host namespace.
pub const TUN_NAME: &str = "xcb0";

/// Why a lab command failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (CAP_NET_ADMIN) and iproute2: `ip netns add` failed: {0}")]
    NeedsCapability(String),
    #[error("lab name {0:?}: must be 1 to 8 characters of a-z 0-9")]
    BadName(String),
    #[error("`ip {args}` failed: {stderr}")]
    Ip { args: String, stderr: String },
    #[error("{0}")]
    Io(String),
    #[error("lab {name}: no host {host:?}; hosts are {hosts}")]
    UnknownHost {
        name: String,
        host: String,
        hosts: String,
    },
    #[error("lab {0} is not up (no emulator answers on its truth socket)")]
    NotUp(String),
    #[error("emulator did not start: {0}")]
    Emulator(String),
}

/// Which cloud a lab host stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Azure,
    Oci,
}

/// One host of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// `azure`, `oci`, `azure-2`, ...
    pub name: String,
    pub side: Side,
    pub namespace: String,
    pub addr: [u8; 4],
}

impl Host {
    pub fn addr_text(&self) -> String {
        let [a, b, c, d] = self.addr;
        format!("{a}.{b}.{c}.{d}")
    }
}

/// What `lab up` builds; written to the state directory for the emulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabSpec {
    pub name: String,
    pub hosts_per_side: u8,
    pub profile: LinkProfile,
    pub seed: u64,
}

impl LabSpec {
    /// The lab's hosts, azure first.
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts = Vec::new();
        for (side, label, net) in [(Side::Azure, "azure", 1u8), (Side::Oci, "oci", 2u8)] {
            for i in 1..=self.hosts_per_side {
                let name = if i == 1 {
                    label.to_owned()
                } else {
                    format!("{label}-{i}")
                };
                hosts.push(Host {
                    namespace: format!("{}-{name}", self.name),
                    name,
                    side,
                    addr: [198, 18, net, i],
                });
            }
        }
        hosts
    }
}

/// Where a lab keeps its pid, spec, log and truth socket.
pub fn state_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/xcbench/lab-{name}"))
}

fn check_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= 8
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(LabError::BadName(name.to_owned()))
    }
}

/// Runs `ip ARGS`, turning a failure into an error with its stderr.
pub(crate) fn ip(args: &[&str]) -> Result<(), LabError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| LabError::Io(format!("cannot run ip: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Ip {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Builds the lab: removes what a previous (possibly crashed) lab of the same name left,
/// creates the namespaces, starts the emulator and waits until it answers.
pub fn up(spec: &LabSpec) -> Result<Vec<Host>, LabError> {
    check_name(&spec.name)?;
    down(&spec.name)?;
    let probe = format!("{}-cap", spec.name);
    ip(&["netns", "add", &probe]).map_err(|e| LabError::NeedsCapability(e.to_string()))?;
    ip(&["netns", "del", &probe])?;
    let dir = state_dir(&spec.name);
    std::fs::create_dir_all(&dir).map_err(|e| LabError::Io(format!("{}: {e}", dir.display())))?;
    let hosts = spec.hosts();
    for h in &hosts {
        ip(&["netns", "add", &h.namespace])?;
        ip(&["-n", &h.namespace, "link", "set", "lo", "up"])?;
        // The lab is IPv4 (198.18.0.0/15); no IPv6 chatter on the emulated link.
        ip(&[
            "netns", "exec", &h.namespace, "sh", "-c",
            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
        ])?;
    }
    let spec_path = dir.join("lab.json");
    std::fs::write(
        &spec_path,
        serde_json::to_vec_pretty(spec).expect("spec serializes"),
    )
    .map_err(|e| LabError::Io(format!("{}: {e}", spec_path.display())))?;
    let log = std::fs::File::create(dir.join("emulator.log"))
        .map_err(|e| LabError::Io(format!("emulator.log: {e}")))?;
    let exe = std::env::current_exe().map_err(|e| LabError::Io(format!("own executable: {e}")))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(exe)
            .args(["lab", "emulate", "--state-dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| LabError::Io(e.to_string()))?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| LabError::Emulator(e.to_string()))?
    };
    std::fs::write(dir.join("emulator.pid"), child.id().to_string())
        .map_err(|e| LabError::Io(format!("emulator.pid: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if truth(&spec.name).is_ok() {
            return Ok(hosts);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("emulator.log")).unwrap_or_default();
            let _ = down(&spec.name);
            return Err(LabError::Emulator(format!(
                "exited with {status}: {}",
                log.trim()
            )));
        }
        if Instant::now() > deadline {
            let _ = down(&spec.name);
            return Err(LabError::Emulator("no answer within 10 s".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the emulator and deletes every namespace of the lab; fine when nothing is there.
pub fn down(name: &str) -> Result<(), LabError> {
    check_name(name)?;
    let dir = state_dir(name);
    if let Ok(pid) = std::fs::read_to_string(dir.join("emulator.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: signalling a pid we recorded; harmless if it is gone.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                // Reap it if it is our child (lab up in the same process).
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        let prefix = format!("{name}-");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let ns = line.split_whitespace().next().unwrap_or("");
            if ns.starts_with(&prefix) {
                let _ = ip(&["netns", "del", ns]);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The emulator's ground truth as JSON.
pub fn truth(name: &str) -> Result<String, LabError> {
    use std::io::Read;
    let sock = state_dir(name).join("truth.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&sock)
        .map_err(|_| LabError::NotUp(name.to_owned()))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| LabError::Io(e.to_string()))?;
    Ok(text)
}

/// The command that runs `argv` inside host `host` of lab `name` (`ip netns exec`).
pub fn exec_command(name: &str, host: &str, argv: &[String]) -> Result<Command, LabError> {
    check_name(name)?;
    let spec = read_spec(name)?;
    let hosts = spec.hosts();
    let h = hosts
        .iter()
        .find(|h| h.name == host)
        .ok_or_else(|| LabError::UnknownHost {
            name: name.to_owned(),
            host: host.to_owned(),
            hosts: hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &h.namespace]).args(argv);
    Ok(c)
}

/// Runs as the emulator process of the lab whose state is in `dir`.
pub fn emulate(dir: &Path) -> Result<(), LabError> {
    let text = std::fs::read_to_string(dir.join("lab.json"))
        .map_err(|e| LabError::Io(format!("lab.json: {e}")))?;
    let spec: LabSpec =
        serde_json::from_str(&text).map_err(|e| LabError::Io(format!("lab.json: {e}")))?;
    emulator::run(&spec, dir)
}

fn read_spec(name: &str) -> Result<LabSpec, LabError> {
    let text = std::fs::read_to_string(state_dir(name).join("lab.json"))
        .map_err(|_| LabError::NotUp(name.to_owned()))?;
    serde_json::from_str(&text).map_err(|e| LabError::Io(format!("lab.json: {e}")))
}

//! Deployment: the agent and collector speak systemd's notify protocol (ready once bound,
//! watchdog pings at half the period, stopping on SIGTERM), and the Debian package builds,
//! installs with `dpkg -i` (root), runs its binary, registers its conffiles, and carries
//! units that `systemd-analyze verify` accepts and `systemd-analyze security` rates OK.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::https::https;
use crate::support::machine;
use crate::support::ports::{free_tcp_port, free_udp_port_pair};
use crate::support::proc::{bin, Proc, TempDir};
use crate::support::tls::identity_with;
use crate::support::{repo_path, required, tool, wait_for};

/// The messages a notify socket receives until `until` says stop or `within` passes.
fn collect(
    socket: &UnixDatagram,
    within: Duration,
    until: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline && !until(&got) {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

/// Starts `command` under a fake systemd (a notify socket, a 400 ms watchdog), checks it
/// says READY=1 (with `status`), pings the watchdog, and says STOPPING=1 on SIGTERM.
fn notifies(dir: &TempDir, name: &str, command: &mut Command, status: &str) {
    let path = dir.path().join(format!("{name}.notify"));
    let socket = UnixDatagram::bind(&path).unwrap();
    command
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID");
    let proc = Proc::spawn(name, command);
    let started = Instant::now();
    let got = collect(&socket, Duration::from_secs(10), |g| {
        g.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3
    });
    assert!(
        got.first()
            .is_some_and(|m| m.starts_with("READY=1\nSTATUS=") && m.contains(status)),
        "{name}: {got:?}"
    );
    let pings = got.iter().filter(|m| *m == "WATCHDOG=1").count();
    let took = started.elapsed();
    eprintln!("{name}: {got:?} in {took:?}");
    assert!(pings >= 3, "{name}: {pings} watchdog pings: {got:?}");
    // Three pings at 200 ms take 400 ms or more after the first, which comes at once.
    assert!(
        took >= Duration::from_millis(350),
        "{name}: pinged too fast ({took:?})"
    );
    let out = proc.terminate(Duration::from_secs(10));
    let after = collect(&socket, Duration::from_secs(2), |g| {
        g.iter().any(|m| m == "STOPPING=1")
    });
    assert!(after.iter().any(|m| m == "STOPPING=1"), "{name}: {after:?}");
    assert!(out.status.success(), "{name}: {out:?}");
}

#[test]
fn agent_and_collector_tell_systemd_they_are_ready_alive_and_stopping() {
    let _turn = machine::shared();
    let dir = TempDir::new("notify");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let cfg = dir.write("collector.toml", &format!("listen = \"{addr}\"\n"));
    notifies(
        &dir,
        "collector",
        Command::new(bin())
            .args(["collector", "--config"])
            .arg(&cfg),
        &format!("listening on {addr}"),
    );
    let port = free_udp_port_pair();
    let cfg = dir.write(
        "agent.toml",
        &format!("[agent]\nid = \"az-1\"\ncloud = \"azure\"\nregion = \"eastus\"\n\n[reflector]\nlisten = [\"127.0.0.1:{port}\"]\n"),
    );
    notifies(
        &dir,
        "agent",
        Command::new(bin()).args(["agent", "--config"]).arg(&cfg),
        "probing",
    );
    // A watchdog meant for another process (WATCHDOG_PID) is not pinged; readiness still is.
    let path = dir.path().join("other.notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    let _collector = Proc::spawn(
        "collector for pid 1",
        Command::new(bin())
            .args(["collector", "--config"])
            .arg(dir.path().join("collector.toml"))
            .env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "100000")
            .env("WATCHDOG_PID", "1"),
    );
    let got = collect(&socket, Duration::from_secs(2), |_| false);
    assert!(got.len() == 1 && got[0].starts_with("READY=1"), "{got:?}");
}

/// `systemd-analyze security --offline=true UNIT`'s overall exposure (0 safest .. 10).
fn exposure(analyze: &std::path::Path, unit: &std::path::Path) -> f64 {
    let out = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("{}", line.trim());
    line.rsplit(':')
        .next()
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_package_installs_runs_and_its_units_are_hardened() {
    // The package's release build keeps both cores busy for minutes (from a clean clone):
    // beside it, the demo's 5 ms probes and the loopback timing checks skip and stall.
    let _turn = machine::alone();
    let Some(analyze) = tool("systemd-analyze", "CI") else {
        return;
    };
    let dir = TempDir::new("package");
    let deb = run(Command::new(repo_path("scripts/package"))
        .args(["--fast", "--binary", bin(), "--out"])
        .arg(dir.path()));
    let deb = std::path::PathBuf::from(deb.trim());
    eprintln!(
        "package: {} bytes, from a {}-byte binary",
        std::fs::metadata(&deb).unwrap().len(),
        std::fs::metadata(bin()).unwrap().len()
    );
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/xcbench",
        "./lib/systemd/system/xcbench-agent.service",
        "./lib/systemd/system/xcbench-collector.service",
        "./etc/xcbench/agent.toml",
        "./etc/xcbench/collector.toml",
        "./usr/share/xcbench/dashboards/grafana/xcbench-overview.json",
        "./usr/share/xcbench/dashboards/provisioning/datasources/xcbench.yaml",
        "./usr/share/xcbench/dashboards/xcbench.rules.yml",
        "./usr/share/doc/xcbench/copyright",
        "./usr/share/doc/xcbench/docs/gate.md",
        "./usr/share/man/man1/xcbench.1.gz",
        "./usr/share/man/man1/xcbench-mesh-rules.1.gz",
        "./usr/share/bash-completion/completions/xcbench",
        "./usr/share/zsh/vendor-completions/_xcbench",
        "./usr/share/fish/vendor_completions.d/xcbench.fish",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }
    let conffiles = run(Command::new("dpkg-deb")
        .args(["--info"])
        .arg(&deb)
        .arg("conffiles"));
    assert_eq!(
        conffiles,
        "/etc/xcbench/agent.toml\n/etc/xcbench/collector.toml\n"
    );
    // Both units rate OK (2.x or lower) from the package's copy.
    let unpacked = dir.path().join("unpacked");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    // The packaged binary carries no debug info (the release profile's line tables), but
    // its symbol table, which backtraces name functions from.
    let sections = run(Command::new("readelf")
        .args(["--section-headers", "--wide"])
        .arg(unpacked.join("usr/bin/xcbench")));
    assert!(!sections.contains(".debug_info"), "{sections}");
    assert!(sections.contains(".symtab"), "{sections}");
    // A man page per subcommand, each naming its flags as --help does; completions that
    // know the subcommands.
    let page = run(Command::new("gzip")
        .arg("-dc")
        .arg(unpacked.join("usr/share/man/man1/xcbench-gate.1.gz")));
    assert!(
        page.contains(".TH xcbench-gate 1") && page.contains("\\-\\-prometheus"),
        "{page}"
    );
    let bash =
        std::fs::read_to_string(unpacked.join("usr/share/bash-completion/completions/xcbench"))
            .unwrap();
    assert!(bash.contains("preflight") && bash.contains("--collector-fingerprint"));
    for unit in ["xcbench-agent.service", "xcbench-collector.service"] {
        let score = exposure(&analyze, &unpacked.join("lib/systemd/system").join(unit));
        assert!(
            score < 3.0,
            "{unit}: exposure {score}, expected OK (below 3.0)"
        );
    }

    // Installing touches the system: root only, and never over a real installation.
    let root = unsafe { libc::geteuid() } == 0;
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "xcbench"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"));
    if !root || installed {
        let why = if root {
            "an xcbench package is already installed here"
        } else {
            "not root"
        };
        assert!(!required("CI") || (root && !installed), "dpkg -i: {why}");
        eprintln!("skipped dpkg -i: {why}");
        return;
    }
    struct Purge;
    impl Drop for Purge {
        fn drop(&mut self) {
            let _ = Command::new("dpkg").args(["--purge", "xcbench"]).output();
        }
    }
    let _purge = Purge;
    eprintln!("{}", run(Command::new("dpkg").arg("-i").arg(&deb)));
    let version = run(Command::new("/usr/bin/xcbench").arg("--version"));
    assert!(version.starts_with("xcbench "), "{version}");
    let user = run(Command::new("getent").args(["passwd", "xcbench"]));
    assert!(
        user.contains("/var/lib/xcbench") && user.contains("nologin"),
        "{user}"
    );
    let owner = run(Command::new("stat").args(["-c", "%U:%G %a", "/var/lib/xcbench"]));
    assert_eq!(owner.trim(), "xcbench:xcbench 750");
    let registered = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "xcbench"]));
    assert!(
        registered.contains("/etc/xcbench/agent.toml")
            && registered.contains("/etc/xcbench/collector.toml"),
        "{registered}"
    );
    let verify = Command::new(&analyze)
        .args([
            "verify",
            "/lib/systemd/system/xcbench-agent.service",
            "/lib/systemd/system/xcbench-collector.service",
        ])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    let ours: Vec<&str> = said.lines().filter(|l| l.contains("xcbench")).collect();
    assert!(ours.is_empty(), "systemd-analyze verify: {ours:?}");
    // The installed binary runs as the service would: a collector on the shipped config,
    // moved to a free loopback port and a scratch data directory.
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let shipped = std::fs::read_to_string("/etc/xcbench/collector.toml").unwrap();
    let cfg = dir.write(
        "collector.toml",
        &shipped.replace("0.0.0.0:9862", &addr.to_string()).replace(
            "/var/lib/xcbench/collector",
            &dir.path().join("data").display().to_string(),
        ),
    );
    // The shipped config serves HTTPS with a key pair made in the data directory at first
    // use; the installed binary prints its pin.
    let pin = identity_with("/usr/bin/xcbench", "--collector", &cfg)
        .parse()
        .unwrap();
    let _c = Proc::spawn(
        "installed collector",
        Command::new("/usr/bin/xcbench")
            .args(["collector", "--config"])
            .arg(&cfg),
    );
    wait_for(Duration::from_secs(10), || {
        https(addr, "GET", "/healthz", b"", pin, None)
            .ok()
            .filter(|r| r.0 == 200)
    })
    .expect("the installed collector answers over HTTPS");
    assert!(dir.path().join("data").join("history.redb").exists());
    assert!(dir
        .path()
        .join("data")
        .join("tls")
        .join("agent.key")
        .exists());
}

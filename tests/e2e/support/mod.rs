//! Harness for end-to-end tests: the real `xcbench` binary as child processes (killed on
//! drop), temporary directories, free loopback ports, HTTP polling, `/metrics` parsing,
//! external tools (promtool, prometheus) and network namespaces that clean up after
//! themselves. Skips print their reason; under CI (`CI` or `XCBENCH_REQUIRE_*`) a missing
//! tool or capability fails instead.

#![allow(dead_code)]

pub mod machine;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_xcbench");

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xcbench-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            child,
            name: name.to_owned(),
        }
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the output.
    pub fn terminate(mut self, within: Duration) -> Output {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("spawn true"),
        );
        child.wait_with_output().expect("wait")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERMs every process at once (agents that stop together drain cleanly) and asserts that
/// each exits successfully.
pub fn terminate_all(procs: Vec<Proc>) {
    let outs: Vec<(String, Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = procs
            .into_iter()
            .map(|p| s.spawn(move || (p.name.clone(), p.terminate(Duration::from_secs(10)))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, o) in outs {
        if std::env::var_os("XCBENCH_TEST_LOGS").is_some() {
            eprintln!("--- {name} stderr:\n{}", String::from_utf8_lossy(&o.stderr));
        }
        assert!(
            o.status.success(),
            "{name} exit {:?}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port whose successor is free too (the QUIC responder takes STAMP's port + 1).
pub fn free_udp_port_pair() -> u16 {
    for _ in 0..100 {
        let p = free_udp_port();
        if p < u16::MAX && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two adjacent free UDP ports on 127.0.0.1");
}

/// `xcbench collector` listening on `addr`, with more config lines `extra`.
pub fn spawn_collector(dir: &TempDir, addr: SocketAddr, extra: &str) -> Proc {
    let cfg = dir.write("collector.toml", &format!("listen = \"{addr}\"\n{extra}"));
    Proc::spawn(
        "collector",
        Command::new(BIN).args(["collector", "--config"]).arg(&cfg),
    )
}

/// Generates an agent's TLS key pair in `dir` with `xcbench identity`; its fingerprint.
pub fn tls_identity(dir: &TempDir, id: &str) -> String {
    let keys = dir.path().join(format!("keys-{id}"));
    let cfg = dir.write(
        &format!("identity-{id}.toml"),
        &format!(
            "[agent]\nid = \"{id}\"\ncloud = \"other\"\nregion = \"r\"\n\n[tls]\ndir = \"{}\"\n",
            keys.display()
        ),
    );
    let out = Command::new(BIN)
        .args(["identity", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The `[tls]` section for an agent whose keys `tls_identity` generated.
pub fn tls_section(dir: &TempDir, id: &str, allow: &[&str]) -> String {
    let allow: Vec<String> = allow.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "\n[tls]\ndir = \"{}\"\nallow = [{}]\n",
        dir.path().join(format!("keys-{id}")).display(),
        allow.join(", ")
    )
}

/// A CA in `dir` (`ca.pem`) and, for each of `names`, a certificate it issued naming it,
/// good as server and client (`NAME.crt`, `NAME.key`).
pub fn ca_issued(dir: &TempDir, names: &[&str]) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    dir.write("ca.pem", &ca.pem());
    for name in names {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        dir.write(
            &format!("{name}.crt"),
            &params.signed_by(&key, &ca).unwrap().pem(),
        );
        dir.write(&format!("{name}.key"), &key.serialize_pem());
    }
}

/// The `[tls]` section for an agent whose certificate `ca_issued` made.
pub fn tls_section_ca(dir: &TempDir, name: &str) -> String {
    let p = |f: &str| dir.path().join(f).display().to_string();
    format!(
        "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
        p(&format!("{name}.crt")),
        p(&format!("{name}.key")),
        p("ca.pem")
    )
}

/// The JSON a command printed on stdout, once it succeeded (its stderr shown if not).
pub fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON only on stdout")
}

/// True when the environment says a skip must be a failure.
pub fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "1" || v == "true")
}

/// Finds a tool on PATH, or skips (returns None) unless `require_var` is set.
pub fn tool(name: &str, require_var: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !required(require_var),
            "{name} not found on PATH and {require_var}=1: install it (scripts/test does)"
        );
        eprintln!("skipped: {name} not found on PATH (scripts/test installs it)");
    }
    found
}

/// Blocking HTTP GET on loopback (tests only): status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http(addr, "GET", path, &[])
}

pub fn http_post(addr: SocketAddr, path: &str, body: &[u8]) -> Option<(u16, String)> {
    http(addr, "POST", path, body)
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    let (headers, body) = text.split_once("\r\n\r\n")?;
    let body = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `f` every 50 ms until it returns Some or `within` passes.
pub fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sample lines of a Prometheus text exposition: `name{labels}` -> value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The value of the first sample whose key starts with `name{` and contains every fragment.
pub fn sample(metrics: &BTreeMap<String, f64>, name: &str, fragments: &[&str]) -> Option<f64> {
    metrics
        .iter()
        .find(|(k, _)| {
            (k.starts_with(&format!("{name}{{")) || k.as_str() == name)
                && fragments.iter().all(|f| k.contains(f))
        })
        .map(|(_, v)| *v)
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

/// Whether this process may create network namespaces; prints the reason when not, and
/// fails under `XCBENCH_REQUIRE_NETNS=1`.
pub fn netns_available() -> bool {
    static N: AtomicU32 = AtomicU32::new(0);
    let probe = format!(
        "xcbcap{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let _ = Command::new("ip").args(["netns", "del", &probe]).status();
        return true;
    }
    assert!(
        !required("XCBENCH_REQUIRE_NETNS"),
        "XCBENCH_REQUIRE_NETNS=1 but `ip netns add` failed: run as root (CAP_NET_ADMIN) with iproute2"
    );
    eprintln!(
        "skipped: cannot create network namespaces (needs root / CAP_NET_ADMIN and iproute2)"
    );
    false
}

/// Network namespaces and their veth links, deleted on drop (even when a test panics).
pub struct Netns {
    pub names: Vec<String>,
}

impl Netns {
    pub fn create(names: &[&str]) -> Netns {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        for n in &names {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
            run(&["ip", "netns", "add", n]);
            run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        Netns { names }
    }

    /// A veth pair between two namespaces with /24 addresses.
    pub fn link(&self, a: &str, a_addr: &str, b: &str, b_addr: &str) {
        let (va, vb) = (format!("v-{a}"), format!("v-{b}"));
        run(&[
            "ip", "link", "add", &va, "netns", a, "type", "veth", "peer", "name", &vb, "netns", b,
        ]);
        run(&[
            "ip",
            "-n",
            a,
            "addr",
            "add",
            &format!("{a_addr}/24"),
            "dev",
            &va,
        ]);
        run(&[
            "ip",
            "-n",
            b,
            "addr",
            "add",
            &format!("{b_addr}/24"),
            "dev",
            &vb,
        ]);
        run(&["ip", "-n", a, "link", "set", &va, "up"]);
        run(&["ip", "-n", b, "link", "set", &vb, "up"]);
    }

    /// A command that runs inside namespace `ns`.
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

pub fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Checks one direction's counters against the peer reflector's own count (a different
/// process): every probe settled, direction split consistent, and no more than
/// `max_startup_loss` probes lost (those sent before the peer's reflector was listening).
pub fn check_direction(
    m: &BTreeMap<String, f64>,
    src: &str,
    dst: &str,
    min_sent: f64,
    max_startup_loss: f64,
) {
    check_direction_with(m, src, dst, min_sent, max_startup_loss, 0.0);
}

/// As [`check_direction`], when the test itself had `test_packets` answered by `dst`.
pub fn check_direction_with(
    m: &BTreeMap<String, f64>,
    src: &str,
    dst: &str,
    min_sent: f64,
    max_startup_loss: f64,
    test_packets: f64,
) {
    let s = format!("src_agent=\"{src}\"");
    let d = format!("dst_agent=\"{dst}\"");
    let get = |name: &str, extra: &[&str]| {
        let mut sel = vec![s.as_str(), d.as_str()];
        sel.extend_from_slice(extra);
        sample(m, name, &sel).unwrap_or_else(|| panic!("{name} {sel:?} missing"))
    };
    let sent = get("xcbench_probes_sent_total", &[]);
    let received = get("xcbench_probes_received_total", &[]);
    let lost = get("xcbench_probes_lost_total", &[]);
    let forward = get(
        "xcbench_probes_lost_direction_total",
        &["direction=\"forward\""],
    );
    let reverse = get(
        "xcbench_probes_lost_direction_total",
        &["direction=\"reverse\""],
    );
    let reflected = sample(
        m,
        "xcbench_reflector_reflected_total",
        &[&format!("agent=\"{dst}\""), "protocol=\"udp\""],
    )
    .unwrap();
    assert!(sent >= min_sent, "{src}->{dst} sent {sent}");
    assert_eq!(
        received + lost,
        sent,
        "{src}->{dst}: every probe settles after the drain"
    );
    assert_eq!(
        forward + reverse,
        lost,
        "{src}->{dst}: every loss attributed; counters: {:#?}",
        m.iter()
            .filter(|(k, _)| k.contains("_total"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        reflected - test_packets,
        received + reverse,
        "{src}->{dst}: the peer reflected what came back or was lost back"
    );
    assert!(
        lost <= max_startup_loss && reverse == 0.0,
        "{src}->{dst}: lost {lost} (reverse {reverse})"
    );
    assert_eq!(get("xcbench_rtt_seconds_count", &[]), received);
}

/// GET /metrics from inside namespace `ns`, with the test's own HTTP client on a thread that
/// entered the namespace.
pub fn metrics_in(ns: &str, addr: SocketAddr) -> String {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns handle");
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        wait_for(Duration::from_secs(10), || {
            http_get(addr, "/metrics").filter(|r| r.0 == 200)
        })
        .expect("/metrics inside the namespace")
        .1
    })
    .join()
    .unwrap()
}

//! Network namespaces for tests that need real interfaces: whether this process may create
//! them, namespaces and veth links deleted on drop, and `/metrics` read from inside one.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::http::http_get;
use super::{required, wait_for};

/// Whether this process may create network namespaces; prints the reason when not, and
/// fails under `XCBENCH_REQUIRE_NETNS=1`.
pub(crate) fn netns_available() -> bool {
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
pub(crate) struct Netns {
    pub names: Vec<String>,
}

impl Netns {
    pub(crate) fn create(names: &[&str]) -> Netns {
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
    pub(crate) fn link(&self, a: &str, a_addr: &str, b: &str, b_addr: &str) {
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
    pub(crate) fn command(&self, ns: &str, program: &str) -> Command {
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

/// Runs a command (`ip ...`), failing the test with its stderr if it fails.
fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GET /metrics from inside namespace `ns`, with the test's own HTTP client on a thread that
/// entered the namespace.
pub(crate) fn metrics_in(ns: &str, addr: SocketAddr) -> String {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter(&ns);
        wait_for(Duration::from_secs(10), || {
            http_get(addr, "/metrics").filter(|r| r.0 == 200)
        })
        .expect("/metrics inside the namespace")
        .1
    })
    .join()
    .unwrap()
}

/// As [`metrics_in`], from a collector serving HTTPS, pinned by `pin`.
pub(crate) fn https_metrics_in(ns: &str, addr: SocketAddr, pin: &str) -> String {
    let (ns, pin) = (ns.to_owned(), pin.parse().unwrap());
    std::thread::spawn(move || {
        enter(&ns);
        wait_for(Duration::from_secs(10), || {
            super::https::https(addr, "GET", "/metrics", b"", pin, None)
                .ok()
                .filter(|r| r.0 == 200)
        })
        .expect("/metrics over HTTPS inside the namespace")
        .1
    })
    .join()
    .unwrap()
}

/// Moves the calling thread into namespace `ns`, for good: call it on a thread of its own.
pub(crate) fn enter(ns: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns handle");
    // SAFETY: setns on this thread with a descriptor we hold open.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

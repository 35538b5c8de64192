//! Harness for the end-to-end tests, one module per concern. Skips print their reason; under
//! CI (`CI` or `XCBENCH_REQUIRE_*`) a missing tool or capability fails instead.
//!
//! # Layout
//! - [`machine`]: which tests may run at the same time.
//! - [`proc`]: the real `xcbench` binary as child processes (killed on drop), temporary
//!   directories, a command's JSON output.
//! - [`ports`]: free loopback ports.
//! - [`http`]: a blocking HTTP/1.1 client for the collector and Prometheus.
//! - [`https`]: HTTPS to a collector with `[tls]`, as agents and the gate reach it.
//! - [`prometheus`]: a real Prometheus server for a test.
//! - [`metrics`]: `/metrics` parsed into samples, and one direction's counters checked
//!   against the peer's reflector.
//! - [`tls`]: agent key pairs and pins, a CA and the certificates it issues.
//! - [`netns`]: network namespaces and veth links that clean up after themselves; entering
//!   one from a test thread.
//! - [`agents`]: agent configs, a collector, a pair of agents probing each other.
//! - this file: the skip-or-fail rule for external tools, polling, paths in the repo.

pub(crate) mod agents;
pub(crate) mod http;
pub(crate) mod https;
pub(crate) mod machine;
pub(crate) mod metrics;
pub(crate) mod netns;
pub(crate) mod ports;
pub(crate) mod proc;
pub(crate) mod prometheus;
pub(crate) mod tls;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// True when the environment says a skip must be a failure.
pub(crate) fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "1" || v == "true")
}

/// Finds a tool on PATH, or skips (returns None) unless `require_var` is set.
pub(crate) fn tool(name: &str, require_var: &str) -> Option<PathBuf> {
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

/// Polls `f` every 50 ms until it returns Some or `within` passes.
pub(crate) fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
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

/// `rel` inside the repository (the root package's directory).
pub(crate) fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

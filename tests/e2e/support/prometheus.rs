//! A real Prometheus server (Debian's) for a test: its config written to the test's
//! directory, its data beside it, listening on a loopback port; as a scraper, or as a
//! remote-write receiver.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::http::http_get;
use super::ports::free_tcp_port;
use super::proc::{Proc, TempDir};
use super::wait_for;

/// `prometheus` (the binary `tool` found) with `config` as its prometheus.yml: the process
/// (stopped on drop) and the address of its HTTP API.
pub(crate) fn spawn(prometheus: &Path, dir: &TempDir, config: &str) -> (Proc, SocketAddr) {
    let port = free_tcp_port();
    let server = Proc::spawn("prometheus", &mut command(prometheus, dir, port, config));
    (server, ([127, 0, 0, 1], port).into())
}

/// `prometheus` as a remote-write receiver on `port` (a restarted one keeps its address),
/// with `config` (rules; it need scrape nothing) and more `flags` (native histograms), once
/// it is ready.
pub(crate) fn receiver(
    prometheus: &Path,
    dir: &TempDir,
    port: u16,
    config: &str,
    flags: &[&str],
) -> Proc {
    let p = Proc::spawn(
        "prometheus",
        command(prometheus, dir, port, config)
            .arg("--web.enable-remote-write-receiver")
            .args(flags),
    );
    wait_for(Duration::from_secs(30), || {
        http_get(([127, 0, 0, 1], port).into(), "/-/ready").filter(|r| r.0 == 200)
    })
    .expect("prometheus ready");
    p
}

fn command(prometheus: &Path, dir: &TempDir, port: u16, config: &str) -> Command {
    let cfg = dir.write("prometheus.yml", config);
    let mut c = Command::new(prometheus);
    c.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    c
}

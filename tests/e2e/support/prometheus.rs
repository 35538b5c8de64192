//! A real Prometheus server (Debian's) for a test: its config written to the test's
//! directory, its data beside it, listening on a free loopback port.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use super::ports::free_tcp_port;
use super::proc::{Proc, TempDir};

/// `prometheus` (the binary `tool` found) with `config` as its prometheus.yml: the process
/// (stopped on drop) and the address of its HTTP API.
pub(crate) fn spawn(prometheus: &Path, dir: &TempDir, config: &str) -> (Proc, SocketAddr) {
    let port = free_tcp_port();
    let cfg = dir.write("prometheus.yml", config);
    let server = Proc::spawn(
        "prometheus",
        Command::new(prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn"),
    );
    (server, ([127, 0, 0, 1], port).into())
}

//! End to end on loopback with the real binary: two agents and a collector as separate
//! processes; `/metrics` counts against each other (sender vs the peer's reflector),
//! `promtool check metrics`, a real Prometheus server scraping the collector, and bad input.
//!
//! # Layout
//! - this file: a collector and a pair of agents run for a while; `/metrics` read.
//! - `pair`: a UDP pair's counts against each other; `promtool check metrics`.
//! - `prometheus`: a real Prometheus scraping the collector; the shipped recording rules.
//! - `auth`: STAMP authenticated mode: a keyed pair measured, strangers and replays refused.
//! - `flood`: a flood from one source answered at its rate limit beside an undisturbed pair.
//! - `bad_input`: bad datagrams and bad snapshots, counted and refused.
//! - `tcp`: TCP probes; garbage closes only its own connection.
//! - `quic`: QUIC probes; each side pins its peer and refuses strangers.
//! - `outage`: a dead peer, a collector outage, a collector killed: nothing acknowledged is lost.

mod auth;
mod bad_input;
mod flood;
mod outage;
mod pair;
mod prometheus;
mod quic;
mod tcp;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use crate::support::agents::{ready_collector, spawn_pair};
use crate::support::http::http_get;
use crate::support::metrics::parse_metrics;
use crate::support::ports::free_udp_port;
use crate::support::proc::{bin, terminate_all, Proc, TempDir};

struct Pair {
    _dir: TempDir,
    collector: Proc,
    addr: SocketAddr,
}

/// Starts a collector and two agents probing each other every 5 ms for `probe_for`, then
/// stops the agents gracefully (drain + final snapshot). The collector keeps running.
fn run_pair(probe_for: Duration) -> Pair {
    run_pair_with(probe_for, "")
}

/// As [`run_pair`], with `extra` lines in the collector's configuration.
fn run_pair_with(probe_for: Duration, extra: &str) -> Pair {
    let dir = TempDir::new("pair");
    let (collector, addr) = ready_collector(
        &dir,
        &format!("window = \"5m\"\nwindow_slot = \"1s\"\n{extra}"),
    );
    let (a, b): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], free_udp_port()).into(),
        ([127, 0, 0, 1], free_udp_port()).into(),
    );
    let url = format!("http://{addr}");
    let agents = spawn_pair(
        &dir,
        &url,
        [a, b],
        "5ms",
        [Command::new(bin()), Command::new(bin())],
    );
    std::thread::sleep(probe_for);
    terminate_all(agents);
    Pair {
        _dir: dir,
        collector,
        addr,
    }
}

fn metrics(addr: SocketAddr) -> (String, BTreeMap<String, f64>) {
    let (status, text) = http_get(addr, "/metrics").expect("/metrics");
    assert_eq!(status, 200);
    let parsed = parse_metrics(&text);
    (text, parsed)
}

fn drain(s: &UdpSocket) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 65_536];
    while s.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

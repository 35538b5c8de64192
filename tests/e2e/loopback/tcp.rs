//! TCP probes on loopback: counted like UDP's, and garbage on one connection closes only it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::metrics;
use crate::support::agents::{agent_toml, spawn_collector};
use crate::support::metrics::sample;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::{machine, wait_for};

#[test]
fn tcp_probes_count_and_garbage_closes_only_its_connection() {
    let _turn = machine::shared();
    use std::io::{Read, Write};
    let dir = TempDir::new("tcp");
    let port = free_tcp_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let url = format!("http://{addr}");
    let _collector = spawn_collector(&dir, addr, "");
    let b: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let bcfg = dir.write("b.toml", &agent_toml("oci-1", "oci", b, &url, &[], "5ms"));
    let agent_b = Proc::spawn(
        "agent b",
        Command::new(bin()).args(["agent", "--config"]).arg(&bcfg),
    );
    // The responder listens on the same port number over TCP.
    let mut garbage = wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(b).ok()
    })
    .expect("tcp responder up");
    let a: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let acfg = dir.write(
        "a.toml",
        &(agent_toml("az-1", "azure", a, &url, &[("oci-1", "oci", b)], "5ms")
            + "protocols = [\"udp\", \"tcp\"]\nconnect_interval = \"50ms\"\n"),
    );
    let agent_a = Proc::spawn(
        "agent a",
        Command::new(bin()).args(["agent", "--config"]).arg(&acfg),
    );
    std::thread::sleep(Duration::from_millis(500));
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        garbage.read(&mut buf).unwrap_or(0),
        0,
        "closed, nothing sent back"
    );
    std::thread::sleep(Duration::from_millis(1500));
    terminate_all(vec![agent_a, agent_b]);
    let (_, m) = metrics(addr);
    let sel = |kind: &str| vec!["src_agent=\"az-1\"".to_owned(), format!("kind=\"{kind}\"")];
    let get = |name: &str, kind: &str| {
        let s = sel(kind);
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        sample(&m, name, &s).unwrap_or_else(|| panic!("{name} {kind}"))
    };
    let rr_sent = get("xcbench_probes_sent_total", "rr");
    let rr_received = get("xcbench_probes_received_total", "rr");
    assert!(rr_sent >= 200.0, "rr sent {rr_sent}");
    assert_eq!(
        rr_received, rr_sent,
        "garbage on another connection disturbed nothing"
    );
    assert_eq!(get("xcbench_rtt_seconds_count", "rr"), rr_received);
    let reflected = sample(
        &m,
        "xcbench_reflector_reflected_total",
        &["agent=\"oci-1\"", "protocol=\"tcp\""],
    )
    .unwrap();
    assert_eq!(
        reflected, rr_received,
        "the responder answered each request once"
    );
    assert_eq!(
        sample(
            &m,
            "xcbench_reflector_malformed_total",
            &["agent=\"oci-1\"", "protocol=\"tcp\""]
        ),
        Some(1.0)
    );
    let connects = get("xcbench_probes_sent_total", "connect");
    assert!(connects >= 20.0, "connects {connects}");
    assert_eq!(get("xcbench_probes_received_total", "connect"), connects);
    assert_eq!(get("xcbench_tcp_retransmits_total", "rr"), 0.0);
    assert!(get("xcbench_tcp_srtt_seconds", "rr") > 0.0);
    // STAMP keeps its own series beside TCP's.
    assert!(get("xcbench_probes_sent_total", "stamp") >= 200.0);
}

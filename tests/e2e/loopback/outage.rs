//! Failures on loopback: a dead peer delays no other, a collector outage loses no snapshot,
//! a collector killed five times loses nothing it acknowledged, and agents restarted while
//! their collector is unreachable lose no snapshot (their spool).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use super::{drain, metrics};
use crate::support::agents::{agent_toml, spawn_collector, spawn_pair};
use crate::support::http::http_get;
use crate::support::metrics::{check_direction, check_direction_with, sample};
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::{machine, wait_for};

#[test]
fn dead_peer_does_not_delay_others_and_collector_outage_loses_nothing() {
    let _turn = machine::shared();
    let dir = TempDir::new("outage");
    let port = free_tcp_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let url = format!("http://{addr}");
    let (a, b): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], free_udp_port()).into(),
        ([127, 0, 0, 1], free_udp_port()).into(),
    );
    // Nothing listens here: every probe to it is lost.
    let dead: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    // The reflector-only agent starts first, so the prober loses nothing at start-up.
    let bcfg = dir.write("b.toml", &agent_toml("oci-1", "oci", b, &url, &[], "5ms"));
    let agent_b = Proc::spawn(
        "agent b",
        Command::new(bin()).args(["agent", "--config"]).arg(&bcfg),
    );
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    wait_for(Duration::from_secs(10), || {
        probe.send_to(&[0u8; 44], b).ok()?;
        probe.recv_from(&mut [0u8; 64]).ok()
    })
    .expect("reflector up");
    let test_packets = 1 + drain(&probe);
    let acfg = dir.write(
        "a.toml",
        &agent_toml(
            "az-1",
            "azure",
            a,
            &url,
            &[("oci-1", "oci", b), ("oci-dead", "oci", dead)],
            "5ms",
        ),
    );
    let agent_a = Proc::spawn(
        "agent a",
        Command::new(bin()).args(["agent", "--config"]).arg(&acfg),
    );
    // The collector is down for the first 1.5 s: ~7 reports queue up in each agent.
    std::thread::sleep(Duration::from_millis(1500));
    let _collector = spawn_collector(&dir, addr, "");
    std::thread::sleep(Duration::from_millis(1500));
    terminate_all(vec![agent_a, agent_b]);
    let (_, m) = metrics(addr);
    // Every probe the live peer's reflector answered is in the collector, including those
    // reported while it was down, and the dead peer did not slow the live session down:
    // ~3 s at 5 ms is ~600 probes.
    check_direction_with(&m, "az-1", "oci-1", 450.0, 0.0, test_packets as f64);
    let live = sample(&m, "xcbench_probes_sent_total", &["dst_agent=\"oci-1\""]).unwrap();
    let dead_sent = sample(&m, "xcbench_probes_sent_total", &["dst_agent=\"oci-dead\""]).unwrap();
    let dead_lost = sample(&m, "xcbench_probes_lost_total", &["dst_agent=\"oci-dead\""]).unwrap();
    assert!(
        (dead_sent - live).abs() <= 2.0,
        "live {live}, dead {dead_sent}"
    );
    assert_eq!(dead_lost, dead_sent, "every probe to a dead peer is lost");
    assert_eq!(
        sample(
            &m,
            "xcbench_probes_received_total",
            &["dst_agent=\"oci-dead\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "xcbench_collector_snapshots_total",
            &["result=\"duplicate\""]
        ),
        Some(0.0)
    );
}
#[test]
fn collector_killed_five_times_loses_nothing_it_acknowledged() {
    let _turn = machine::shared();
    let dir = TempDir::new("kill");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let data = dir.path().join("data");
    let config = format!("data_dir = \"{}\"\n", data.display());
    let up = |dir: &TempDir| {
        let c = spawn_collector(dir, addr, &config);
        wait_for(Duration::from_secs(10), || {
            http_get(addr, "/healthz").filter(|r| r.0 == 200)
        })
        .expect("collector healthz");
        c
    };
    let mut collector = up(&dir);
    let started_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
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
    let sent = |m: &BTreeMap<String, f64>| {
        sample(
            m,
            "xcbench_probes_sent_total",
            &["src_agent=\"az-1\"", "kind=\"stamp\""],
        )
        .unwrap_or(0.0)
    };
    let mut last = 0.0;
    for round in 0..5 {
        std::thread::sleep(Duration::from_millis(600));
        let before = sent(&metrics(addr).1);
        assert!(
            before >= last,
            "round {round}: sent went back from {last} to {before}"
        );
        // SIGKILL, whatever it was doing (an ingest's commit, a scrape).
        drop(collector);
        std::thread::sleep(Duration::from_millis(300));
        collector = up(&dir);
        let after = sent(&metrics(addr).1);
        assert!(
            after >= before,
            "round {round}: the restart reset the series ({before} -> {after})"
        );
        last = after;
    }
    std::thread::sleep(Duration::from_millis(600));
    terminate_all(agents);
    let (_, m) = metrics(addr);
    // Every probe each agent sent settled, and what one counted agrees with what the other's
    // reflector answered: both sides' snapshots are all there, none twice.
    for (src, dst) in [("az-1", "oci-1"), ("oci-1", "az-1")] {
        check_direction(&m, src, dst, 500.0, 20.0);
    }
    // The history over the whole run holds every sample.
    let (status, body) = http_get(
        addr,
        &format!(
            "/api/v1/history?src_agent=az-1&dst_agent=oci-1&kind=stamp&from={}&to={}",
            started_s - 60,
            started_s + 3_600
        ),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let received = sample(
        &m,
        "xcbench_probes_received_total",
        &["src_agent=\"az-1\"", "kind=\"stamp\""],
    )
    .unwrap();
    assert_eq!(answer["counters"]["sent"].as_f64(), Some(sent(&m)));
    assert_eq!(answer["metrics"][0]["count"].as_f64(), Some(received));
    eprintln!(
        "5 kills: az-1 -> oci-1 sent {}, received {received}; duplicates acknowledged again {:?}",
        sent(&m),
        sample(
            &m,
            "xcbench_collector_snapshots_total",
            &["result=\"duplicate\""]
        )
    );
    drop(collector);
}

/// Two agents with a spool report to a collector that is not there, stop, start again (new
/// instances) and only then find it: every snapshot the first run spooled reached the
/// collector (sent again afterwards, each is a duplicate), and the spools end empty.
#[test]
fn agents_restarted_while_the_collector_is_unreachable_lose_no_snapshot() {
    let _turn = machine::shared();
    let dir = TempDir::new("spool");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let url = format!("http://{addr}");
    let (a, b): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], free_udp_port()).into(),
        ([127, 0, 0, 1], free_udp_port()).into(),
    );
    let spool = |id: &str| dir.path().join(format!("spool-{id}"));
    let cfg = |id: &str, cloud: &str, listen, peer: (&str, &str, SocketAddr)| {
        let t = agent_toml(id, cloud, listen, &url, &[peer], "10ms");
        let t = t.replacen(
            "[agent]\n",
            &format!("[agent]\nspool = \"{}\"\n", spool(id).display()),
            1,
        );
        dir.write(&format!("{id}.toml"), &t)
    };
    let configs = [
        cfg("az-1", "azure", a, ("oci-1", "oci", b)),
        cfg("oci-1", "oci", b, ("az-1", "azure", a)),
    ];
    let run = || -> Vec<Proc> {
        configs
            .iter()
            .map(|c| {
                Proc::spawn(
                    "agent",
                    Command::new(bin()).args(["agent", "--config"]).arg(c),
                )
            })
            .collect()
    };
    let files = |id: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(spool(id))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    let first = run();
    std::thread::sleep(Duration::from_millis(1500));
    for p in first {
        p.terminate(Duration::from_secs(10));
    }
    let spooled: Vec<Vec<u8>> = ["az-1", "oci-1"]
        .iter()
        .flat_map(|id| files(id))
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(
        spooled.len() >= 6,
        "{} snapshots spooled by the first run",
        spooled.len()
    );
    let _collector = spawn_collector(&dir, addr, "");
    let second = run();
    wait_for(Duration::from_secs(30), || {
        (files("az-1").is_empty() && files("oci-1").is_empty()).then_some(())
    })
    .expect("the spools never emptied");
    terminate_all(second);
    for body in &spooled {
        let (status, answer) =
            crate::support::http::http_post(addr, "/api/v1/snapshots", body).unwrap();
        assert_eq!(
            (status, answer.as_str()),
            (200, "duplicate\n"),
            "a spooled snapshot the collector never got"
        );
    }
    let m = metrics(addr).1;
    for id in ["az-1", "oci-1"] {
        assert_eq!(
            sample(
                &m,
                "xcbench_agent_restarts_total",
                &[&format!("agent=\"{id}\"")]
            ),
            Some(1.0),
            "{id}: the first run and the second, both seen"
        );
    }
    eprintln!(
        "spool: {} snapshots of a run that never reached its collector arrived after a restart",
        spooled.len()
    );
}

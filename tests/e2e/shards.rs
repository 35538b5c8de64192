//! Sharded collectors with the real binary: two agents of a mesh that lists two collectors
//! report to their rendezvous first; one collector goes away for a while and comes back.
//! Every snapshot either shard takes is also handed to a third collector (a tee in front of
//! each shard, the test's own), so the one-collector answer for the same run is at hand:
//! `xcbench gate --collector A --collector B` must judge exactly as the gate on the third
//! does, objective by objective, to the last figure; either shard alone says which agent
//! reported elsewhere instead of passing on half the data. Both shards remote-write to
//! one VictoriaMetrics, each under its own `collector` label, and `gate --prometheus` on it
//! counts what the reference's history counts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::gate::{gate, slo, FAIL, ONE_SECOND_SLOTS, PASS};
use crate::support::agents::spawn_collector;
use crate::support::http::{http_get, http_post};
use crate::support::metrics::parse_metrics;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::{machine, tool, wait_for};

/// A collector's stand-in address that hands each snapshot to `shard` and, once the shard
/// took it, to `reference` too, answering with the shard's answer. While `down`, nothing
/// listens there: connections are refused, as to a collector whose host is gone.
struct Tee {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Tee {
    fn start(shard: SocketAddr, reference: SocketAddr) -> Tee {
        let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
        let (down, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (d, s) = (down.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if d.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                // std sets SO_REUSEADDR: the port binds again at once after a down spell.
                let listener = TcpListener::bind(addr).expect("tee binds its port");
                listener.set_nonblocking(true).unwrap();
                while !d.load(Ordering::Relaxed) && !s.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => forward(conn, shard, reference),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
        });
        wait_for(Duration::from_secs(5), || TcpStream::connect(addr).ok()).expect("tee up");
        Tee { addr, down, stop }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One request on `conn`: a snapshot to the shard, then (taken) to the reference.
fn forward(mut conn: TcpStream, shard: SocketAddr, reference: SocketAddr) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (head_len, body_len) = loop {
        let Ok(n) = conn.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, len);
        }
    };
    while raw.len() < head_len + body_len {
        let Ok(n) = conn.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let path = String::from_utf8_lossy(&raw[..head_len])
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let body = &raw[head_len..head_len + body_len];
    let (status, text) = http_post(shard, &path, body).unwrap_or((502, "shard down\n".into()));
    if (200..300).contains(&status) {
        let taken = http_post(reference, &path, body).map(|r| r.0);
        assert!(
            matches!(taken, Some(200)),
            "the reference refused: {taken:?}"
        );
    }
    let _ = conn.write_all(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        )
        .as_bytes(),
    );
}

fn mesh(tees: [SocketAddr; 2], agents: &[(&str, &str, SocketAddr)]) -> String {
    let mut t = format!(
        "[mesh]\ncollectors = [{{ url = \"http://{}\" }}, {{ url = \"http://{}\" }}]\nreport_interval = \"300ms\"\nallow_loopback = true\n\n[mesh.probe]\ninterval = \"10ms\"\nloss_timeout = \"500ms\"\nprotocols = [\"udp\"]\n",
        tees[0], tees[1]
    );
    for (cloud, space) in [("azure", "127.0.0.1/32"), ("oci", "127.0.0.2/31")] {
        t.push_str(&format!("\n[{cloud}]\naddress_space = [\"{space}\"]\n"));
        for (id, _, addr) in agents.iter().filter(|a| a.1 == cloud) {
            t.push_str(&format!(
                "\n[[{cloud}.agents]]\nid = \"{id}\"\nregion = \"r-{cloud}\"\naddress = \"{addr}\"\n"
            ));
        }
    }
    t
}

#[test]
fn two_shards_judge_as_one_collector_and_an_agent_moves_only_while_its_own_is_down() {
    let _turn = machine::shared();
    let Some(vm) = tool("victoria-metrics", "CI") else {
        return;
    };
    let dir = TempDir::new("gate-shards");
    let slo_file = dir.write("slo.yaml", &slo(&[PASS, FAIL]));
    // The same objectives for the store (any coverage: it is dated by the reports).
    let store_slo = dir.write(
        "store.yaml",
        &format!(
            "defaults:\n  min_coverage: 0%\n  select: {{ src_cloud: azure, dst_cloud: oci }}\nobjectives:\n{PASS}{FAIL}"
        ),
    );
    let (_store, store) = crate::remote_write::victoria_metrics(&vm, &dir);
    let collector = |name: &str| {
        let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
        let sub = TempDir::new(&format!("gate-shards-{name}"));
        let data = sub.path().join("data");
        let writes = match name {
            "reference" => String::new(),
            shard => format!(
                "slo = \"{}\"\n[remote_write]\nurl = \"http://{store}/api/v1/write\"\nexternal_labels = {{ collector = \"{shard}\" }}\n",
                store_slo.display()
            ),
        };
        let proc = spawn_collector(
            &sub,
            addr,
            &format!(
                "data_dir = \"{}\"\n{ONE_SECOND_SLOTS}{writes}",
                data.display()
            ),
        );
        wait_for(Duration::from_secs(10), || {
            http_get(addr, "/healthz").filter(|r| r.0 == 200)
        })
        .expect("collector healthz");
        (addr, proc, sub)
    };
    let (reference, c0, _d0) = collector("reference");
    let (shard_a, c1, _d1) = collector("a");
    let (shard_b, c2, _d2) = collector("b");
    let tees = [
        Tee::start(shard_a, reference),
        Tee::start(shard_b, reference),
    ];
    let agents = [
        (
            "az-1",
            "azure",
            SocketAddr::from(([127, 0, 0, 1], free_udp_port())),
        ),
        (
            "oci-1",
            "oci",
            SocketAddr::from(([127, 0, 0, 2], free_udp_port())),
        ),
    ];
    let mesh_file = dir.write("mesh.toml", &mesh([tees[0].addr, tees[1].addr], &agents));
    // Which shard az-1 (whose probes the objectives read) ranks first: that one goes down.
    let parsed = xcbench_agent::config::mesh::MeshFile::load(&mesh_file).unwrap();
    let ranked = xcbench_agent::config::rendezvous(parsed.collector.as_ref().unwrap(), "az-1");
    let first = usize::from(ranked.url != format!("http://{}", tees[0].addr));
    let started = xcbench_agent::net::clock::now_unix_ns();
    let procs: Vec<Proc> = agents
        .iter()
        .map(|(id, _, _)| {
            let cfg = dir.write(
                &format!("{id}.toml"),
                &format!(
                    "[agent]\nid = \"{id}\"\nmesh = \"{}\"\n",
                    mesh_file.display()
                ),
            );
            Proc::spawn(
                id,
                Command::new(bin()).args(["agent", "--config"]).arg(&cfg),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    tees[first].down.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(3));
    tees[first].down.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(3));
    terminate_all(procs);
    let ended = xcbench_agent::net::clock::now_unix_ns();
    let shards = [shard_a, shard_b];
    // The shard az-1 left counted the snapshots it sent the other, and none lost.
    let (_, text) = http_get(shards[first], "/metrics").unwrap();
    let m = parse_metrics(&text);
    let labels = "{agent=\"az-1\",cloud=\"azure\",region=\"r-azure\"}";
    let elsewhere = m[&format!("xcbench_agent_snapshots_elsewhere_total{labels}")];
    assert!(
        elsewhere >= 5.0,
        "about 10 reports of 300 ms went elsewhere: {elsewhere}"
    );
    assert_eq!(
        m[&format!("xcbench_agent_snapshots_dropped_total{labels}")],
        0.0
    );

    let seconds = |ns: u64| format!("{}", ns / 1_000_000_000);
    // A range wholly past, so both judgements read the same: nothing depends on when.
    std::thread::sleep(Duration::from_millis(1_500));
    let (from, to) = (seconds(started), seconds(ended));
    let judge = |collectors: &[SocketAddr]| {
        let mut args = vec![
            "--slo",
            slo_file.to_str().unwrap(),
            "--json",
            "--from",
            &from,
            "--to",
            &to,
        ];
        let urls: Vec<String> = collectors.iter().map(|a| format!("http://{a}")).collect();
        for u in &urls {
            args.extend(["--collector", u.as_str()]);
        }
        let (code, out, err) = gate(&args, &[]);
        let json: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (code, json["objectives"].clone())
    };
    let (one_code, one) = judge(&[reference]);
    let (two_code, two) = judge(&shards);
    assert_eq!(one, two, "two shards merged judge as the one collector");
    assert_eq!(
        (one_code, two_code),
        (1, 1),
        "rtt-p50-1us fails, the rest pass: {one:#}"
    );
    let verdicts: Vec<&str> = one
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["pass", "pass", "fail"], "{one:#}");
    let samples = one[0]["samples"].as_u64().unwrap();
    assert!(samples > 300, "about 900 probes of 10 ms: {samples}");
    // Either shard alone: the part it holds, and a reason naming what it lacks.
    let (code, alone) = judge(&[shards[first]]);
    assert_eq!(code, 3, "no verdict on half the data: {alone:#}");
    for o in alone.as_array().unwrap() {
        assert_eq!(o["verdict"], "inconclusive", "{o:#}");
        assert!(
            o["codes"].to_string().contains("reported_elsewhere")
                && o["reasons"].to_string().contains("agent az-1 reported"),
            "{o:#}"
        );
    }
    let loss = &alone[0];
    assert!(loss["samples"].as_u64().unwrap() < samples);
    // The store both shards wrote to, read by the gate: the reference history's counts.
    for shard in shards {
        crate::remote_write::drained(shard);
    }
    let store_url = format!("http://{store}");
    let read = |source: &[&str]| {
        let mut args = vec![
            "--slo",
            store_slo.to_str().unwrap(),
            "--json",
            "--from",
            &from,
            "--to",
            &to,
        ];
        args.extend(source);
        let (code, out, err) = gate(&args, &[]);
        let json: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (code, json["objectives"].clone())
    };
    let reference_url = format!("http://{reference}");
    let (_, history) = read(&["--collector", &reference_url]);
    let fields = |o: &serde_json::Value| {
        (
            o["verdict"].clone(),
            o["samples"].clone(),
            o["observed"].clone(),
        )
    };
    // VictoriaMetrics makes what it took searchable within a second or so.
    let same = wait_for(Duration::from_secs(30), || {
        let (_, from_store) = read(&["--prometheus", &store_url]);
        (0..3)
            .all(|i| fields(&history[i]) == fields(&from_store[i]))
            .then_some(from_store)
    });
    assert!(
        same.is_some(),
        "the store's counts are the history's:\nhistory {history:#}\nstore {:#}",
        read(&["--prometheus", &store_url]).1
    );
    // Each shard wrote its own series: an agent that moved has one under each label.
    let (_, body) = http_get(
        store,
        "/api/v1/series?match%5B%5D=xcbench_probes_sent_total%7Bsrc_agent%3D%22az-1%22%7D",
    )
    .unwrap();
    assert!(
        body.contains("\"collector\":\"a\"") && body.contains("\"collector\":\"b\""),
        "{body}"
    );
    drop(tees);
    terminate_all(vec![c0, c1, c2]);
}

//! `xcbench bench` end to end on loopback with the real binary: a peer agent answers, the
//! command asks; both ends' byte counts must agree exactly, strangers and a second
//! concurrent test are refused, and garbage on the data port disturbs nothing.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::agents::spawn_collector;
use crate::support::http::http_get;
use crate::support::machine;
use crate::support::metrics::{parse_metrics, sample};
use crate::support::ports::{free_agent_ports, free_tcp_port, free_udp_port};
use crate::support::proc::{bin, stdout_json, Proc, TempDir};
use crate::support::tls::{ca_issued, tls_identity, tls_section, tls_section_ca};
use crate::support::wait_for;

struct Peer {
    dir: TempDir,
    _agent: Proc,
    port: u16,
    fingerprint: String,
}

/// An agent "oci" answering tests, trusting the client identities `allow` names.
fn peer(allow: &[&str]) -> Peer {
    peer_with(allow, "")
}

/// As [`peer`], with more lines for the agent's config (e.g. a `[bench]` section), in
/// which `{fingerprint:ID}` stands for client ID's fingerprint.
fn peer_with(allow: &[&str], extra: &str) -> Peer {
    let dir = TempDir::new("bench");
    let fingerprint = tls_identity(&dir, "oci");
    let clients: Vec<String> = allow.iter().map(|id| tls_identity(&dir, id)).collect();
    let extra = allow
        .iter()
        .zip(&clients)
        .fold(extra.to_owned(), |e, (id, fp)| {
            e.replace(&format!("{{fingerprint:{id}}}"), fp)
        });
    let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
    let port = free_agent_ports();
    let cfg = dir.write(
        "oci.toml",
        &format!(
            "[agent]\nid = \"oci\"\ncloud = \"oci\"\nregion = \"r\"\n\n[reflector]\nlisten = [\"127.0.0.1:{port}\"]\n{}\n{extra}",
            tls_section(&dir, "oci", &clients)
        ),
    );
    let agent = spawn_agent(&cfg, port);
    Peer {
        dir,
        _agent: agent,
        port,
        fingerprint,
    }
}

/// The agent of config `cfg`, once its bench data port (`port` + 2) takes connections.
fn spawn_agent(cfg: &std::path::Path, port: u16) -> Proc {
    let agent = Proc::spawn(
        "oci agent",
        Command::new(bin()).args(["agent", "--config"]).arg(cfg),
    );
    wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port + 2)).ok()
    })
    .expect("bench data port up");
    agent
}

/// `xcbench bench` as client `id` against the peer.
fn bench(p: &Peer, id: &str, args: &[&str]) -> Output {
    let tls = tls_section(&p.dir, id, &[]);
    bench_as(&p.dir, id, &tls, p.port, Some(&p.fingerprint), args)
}

/// `xcbench bench` as client `id` (TLS config `tls`) against the agent "oci" at STAMP port
/// `port`, pinned to `pin` if given.
fn bench_as(
    dir: &TempDir,
    id: &str,
    tls: &str,
    port: u16,
    pin: Option<&str>,
    args: &[&str],
) -> Output {
    let pin = pin.map_or(String::new(), |f| format!("fingerprint = \"{f}\"\n"));
    let cfg = dir.write(
        &format!("{id}.toml"),
        &format!(
            "[agent]\nid = \"{id}\"\ncloud = \"azure\"\nregion = \"r\"\n\n[reflector]\nlisten = []\n{tls}\n[[peers]]\nid = \"oci\"\ncloud = \"oci\"\nregion = \"r\"\naddress = \"127.0.0.1:{port}\"\n{pin}"
        ),
    );
    Command::new(bin())
        .args(["bench", "--config"])
        .arg(&cfg)
        .arg("oci")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn both_ends_count_the_same_bytes_each_way() {
    let _turn = machine::shared();
    same_bytes_each_way(&[]);
}

#[test]
fn both_ends_count_the_same_bytes_each_way_over_quic() {
    let _turn = machine::shared();
    let v = same_bytes_each_way(&["-q"]);
    // quinn's path figures of each sender, with offload where the kernel has it.
    for s in v["end"]["streams"].as_array().unwrap() {
        let q = &s["quic_path"];
        assert!(q["sent_packets"].as_u64().unwrap() > 1000, "{s}");
        assert!(q["mtu_bytes"].as_u64().unwrap() >= 1200, "{s}");
        assert!(q["window_bytes"].as_u64().unwrap() >= 8 << 20, "{s}");
        assert!(q["gso_segments"].as_u64().unwrap() >= 1, "{s}");
    }
    assert_eq!(v["start"]["test_start"]["protocol"], "QUIC");
}

/// Forward, reverse with 2 streams, bidirectional with a warm-up: every byte one end sent
/// reached the other end's application. Returns the last test's JSON.
fn same_bytes_each_way(protocol: &[&str]) -> Value {
    let p = peer(&["az"]);
    let mut last = Value::Null;
    for (args, flows) in [
        (&["-t", "2s", "--json"][..], 1),
        (&["-t", "2s", "-P", "2", "-R", "--json"][..], 1),
        (
            &["-t", "2s", "-P", "2", "--bidir", "-O", "500ms", "--json"][..],
            2,
        ),
    ] {
        let args = [protocol, args].concat();
        let args = &args[..];
        let v = stdout_json(&bench(&p, "az", args));
        let end = &v["end"];
        for suffix in ["", "_bidir_reverse"].iter().take(flows) {
            let sent = &end[format!("sum_sent{suffix}")];
            let received = &end[format!("sum_received{suffix}")];
            // Data flowed (what is counted is checked below): speed is for benchmarks, and a
            // debug build's QUIC, 2 streams each way beside another test on 2 cores, once
            // moved 9.7 MB in its counted 1.1 s (68 Mbit/s).
            let bytes = sent["bytes"].as_u64().unwrap();
            assert!(bytes > 1_000_000, "{args:?}: {sent}");
            // Totals leave out the warm-up; without one every byte is in both totals.
            if !args.contains(&"-O") {
                assert_eq!(received["bytes"].as_u64(), Some(bytes), "{args:?}: {end}");
            }
            let rate = received["bits_per_second"].as_f64().unwrap();
            assert!(rate > 1e7, "{args:?}: {rate}");
        }
        // Per stream too: what the kernel took on one end reached the other's application.
        for s in end["streams"].as_array().unwrap() {
            let (a, b) = (&s["sender"]["bytes"], &s["receiver"]["bytes"]);
            assert!(a.as_u64().unwrap() > 0);
            if !args.contains(&"-O") {
                assert_eq!(a, b, "{args:?}: {s}");
            }
        }
        let intervals = v["intervals"].as_array().unwrap();
        assert!(
            (2..=4).contains(&intervals.len()),
            "{args:?}: {} intervals",
            intervals.len()
        );
        last = v;
    }
    last
}

#[test]
fn live_lines_and_table_name_both_ends() {
    let _turn = machine::shared();
    let p = peer(&["az"]);
    let out = bench(&p, "az", &["-t", "1s", "-i", "500ms"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Connecting to oci"), "{text}");
    assert!(
        text.lines()
            .filter(|l| l.starts_with("[  0]") && l.contains("bits/sec"))
            .count()
            >= 3,
        "{text}"
    );
    assert!(
        text.contains(" sender") && text.contains(" receiver"),
        "{text}"
    );
    assert!(text.contains("sender TCP_INFO: cwnd"), "{text}");
}

#[test]
fn strangers_and_a_second_test_are_refused_and_garbage_is_dropped() {
    let _turn = machine::shared();
    let p = peer(&["az", "az-2"]);
    // A client the peer does not trust is refused in the handshake.
    let out = bench(&p, "mallory", &["-t", "1s"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Garbage on the data port is closed without an answer.
    let mut junk = std::net::TcpStream::connect(("127.0.0.1", p.port + 2)).unwrap();
    std::io::Write::write_all(&mut junk, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        std::io::Read::read(&mut junk, &mut [0u8; 16]).unwrap_or(0),
        0
    );
    // One test at a time: a second, concurrent one is refused with the reason.
    let first = std::thread::scope(|s| {
        let first = s.spawn(|| bench(&p, "az", &["-t", "3s", "--json"]));
        std::thread::sleep(Duration::from_millis(1000));
        let second = bench(&p, "az-2", &["-t", "1s"]);
        assert_eq!(second.status.code(), Some(1));
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(err.contains("refused the test: busy"), "{err}");
        first.join().unwrap()
    });
    stdout_json(&first);
    // Asking for a peer the config does not name is a usage error.
    let out = bench(&p, "az", &["-t", "1s"]);
    assert!(out.status.success());
    let cfg = p.dir.path().join("az.toml");
    let out = Command::new(bin())
        .args(["bench", "--config"])
        .arg(&cfg)
        .arg("nobody")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("peer \"nobody\" is not in"));
}

#[test]
fn udp_is_paced_to_the_target_and_counted_at_both_ends() {
    let _turn = machine::shared();
    let p = peer(&["az"]);
    for (args, streams) in [
        (&["-u", "-b", "200M", "-t", "2s", "--json"][..], 1),
        (
            &["-u", "-b", "100M", "-t", "2s", "-P", "2", "-R", "--json"][..],
            2,
        ),
    ] {
        let v = stdout_json(&bench(&p, "az", args));
        let target: f64 = if args.contains(&"200M") { 200e6 } else { 100e6 };
        let (sent, received) = (&v["end"]["sum_sent"], &v["end"]["sum_received"]);
        // The pacer holds the target: within 2% over the test.
        let rate = sent["bits_per_second"].as_f64().unwrap();
        assert!(
            (rate / target - 1.0).abs() < 0.02,
            "{args:?}: sent at {rate}"
        );
        // Loopback loses nothing: every datagram sent was received, once.
        assert_eq!(received["lost_packets"], 0, "{args:?}: {received}");
        assert_eq!(received["bytes"], sent["bytes"], "{args:?}");
        assert_eq!(received["packets"], sent["packets"], "{args:?}");
        assert!(received["jitter_ms"].as_f64().unwrap() < 5.0);
        assert_eq!(v["end"]["streams"].as_array().unwrap().len(), streams);
        assert_eq!(v["start"]["test_start"]["protocol"], "UDP");
    }
}

/// `-b` caps TCP and QUIC (so a scheduled test need not fill a production link): the
/// receiver gets the cap, not the tens of Gbit/s loopback carries.
#[test]
fn a_rate_cap_holds_tcp_and_quic_to_it() {
    let _turn = machine::shared();
    let p = peer(&["az"]);
    for args in [
        &["-b", "100M", "-t", "2s", "--json"][..],
        &["-q", "-b", "100M", "-t", "2s", "-P", "2", "-R", "--json"][..],
    ] {
        let v = stdout_json(&bench(&p, "az", args));
        assert_eq!(v["start"]["test_start"]["target_bitrate"], 100_000_000);
        let rate = v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap();
        assert!(
            (rate / 100e6 - 1.0).abs() < 0.03,
            "{args:?}: received at {rate}"
        );
    }
}

/// Latency under load on the answering agent: while a client runs a test against it, its own
/// probes to that client (known by its certificate) are recorded under load="bench".
#[test]
fn the_answering_agent_records_its_probes_to_the_tester_under_load() {
    let _turn = machine::shared();
    let collector = std::net::SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let dir = TempDir::new("bench-load");
    let _c = spawn_collector(&dir, collector, "");
    // The client runs no agent, so the probes go unanswered: sent and lost still count.
    let p = peer_with(
        &["az"],
        &format!(
            "[collector]\nurl = \"http://{collector}\"\nreport_interval = \"200ms\"\n\n[[peers]]\nid = \"az\"\ncloud = \"azure\"\nregion = \"r\"\naddress = \"127.0.0.1:{}\"\nfingerprint = \"{{fingerprint:az}}\"\ninterval = \"10ms\"\nloss_timeout = \"200ms\"\n",
            free_udp_port()
        ),
    );
    stdout_json(&bench(&p, "az", &["-t", "2s", "--json"]));
    probes_to_az_went_under_load(collector);
}

/// After a 2 s test with "az", the collector holds oci's 10 ms probes to az under both loads.
fn probes_to_az_went_under_load(collector: std::net::SocketAddr) {
    // After the test, probes go to the idle series again.
    std::thread::sleep(Duration::from_millis(1000));
    let sent = |load: &str| {
        let m = parse_metrics(&http_get(collector, "/metrics").expect("collector up").1);
        let l = format!("load=\"{load}\"");
        sample(
            &m,
            "xcbench_probes_sent_total",
            &["src_agent=\"oci\"", "dst_agent=\"az\"", &l],
        )
    };
    let under_load = sent("bench").expect("a load=\"bench\" series");
    // 2 s of 10 ms probes, plus set-up and the exchange of figures.
    assert!((150.0..=400.0).contains(&under_load), "{under_load}");
    assert!(sent("idle").unwrap() >= 50.0);
}

/// Trust through a CA, nothing pinned: the answering agent knows the client by the name its
/// certificate carries, for `bench.allow` and for the load label alike; a client the same
/// CA issued under another name is refused.
#[test]
fn a_ca_vouched_client_is_known_by_its_name() {
    let _turn = machine::shared();
    let collector = std::net::SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let dir = TempDir::new("bench-ca");
    let _c = spawn_collector(&dir, collector, "");
    ca_issued(&dir, &["oci", "az", "az-9"]);
    let port = free_agent_ports();
    let cfg = dir.write(
        "oci.toml",
        &format!(
            "[agent]\nid = \"oci\"\ncloud = \"oci\"\nregion = \"r\"\n\n[reflector]\nlisten = [\"127.0.0.1:{port}\"]\n{}\n[collector]\nurl = \"http://{collector}\"\nreport_interval = \"200ms\"\n\n[bench]\nallow = [\"az\"]\n\n[[peers]]\nid = \"az\"\ncloud = \"azure\"\nregion = \"r\"\naddress = \"127.0.0.1:{}\"\ninterval = \"10ms\"\nloss_timeout = \"200ms\"\n",
            tls_section_ca(&dir, "oci"),
            free_udp_port()
        ),
    );
    let _agent = spawn_agent(&cfg, port);
    let bench =
        |id: &str, args: &[&str]| bench_as(&dir, id, &tls_section_ca(&dir, id), port, None, args);
    let out = bench("az-9", &["-t", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not in the peer's bench.allow"), "{err}");
    stdout_json(&bench("az", &["-t", "2s", "--json"]));
    probes_to_az_went_under_load(collector);
}

#[test]
fn the_answering_agent_enforces_its_own_limits() {
    let _turn = machine::shared();
    let p = peer_with(
        &["az"],
        "[bench]\nmax_duration = \"2s\"\nmax_streams = 2\nmax_udp_rate = \"100M\"\n",
    );
    for (args, reason) in [
        (
            &["-t", "5s"][..],
            "duration_ms = 5000: this agent allows at most 2000 (bench.max_duration)",
        ),
        (
            &["-t", "1s", "-P", "3"][..],
            "streams = 3: this agent allows at most 2 (bench.max_streams)",
        ),
        (&["-t", "1s", "-u", "-b", "1G"][..], "(bench.max_udp_rate)"),
    ] {
        let out = bench(&p, "az", args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the peer refused the test: ") && err.contains(reason),
            "{args:?}: {err}"
        );
    }
    // Within the limits the same agent runs the test.
    stdout_json(&bench(&p, "az", &["-t", "1s", "-P", "2", "--json"]));
}

#[test]
fn a_lost_peer_ends_the_test_within_seconds() {
    let _turn = machine::shared();
    for args in [
        &["-u", "-b", "50M", "-t", "20s"][..],
        &["-t", "20s", "-R"][..],
        &["-q", "-t", "20s"][..],
    ] {
        let p = peer(&["az"]);
        let pid = p._agent.child.id() as i32;
        let started = std::time::Instant::now();
        let client = std::thread::scope(|s| {
            let client = s.spawn(|| bench(&p, "az", args));
            std::thread::sleep(Duration::from_millis(1500));
            // The peer dies without a word (SIGKILL): nothing more on the QUIC control channel.
            // SAFETY: signals our own child process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            client.join().unwrap()
        });
        let took = started.elapsed();
        assert_eq!(
            client.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&client.stdout)
        );
        // 1.5 s in, 5 s idle timeout, then the streams stop and the error is printed.
        assert!(
            took < Duration::from_secs(12),
            "{args:?}: took {took:?} of a 20 s test"
        );
        let err = String::from_utf8_lossy(&client.stderr);
        assert!(err.contains("error: "), "{args:?}: {err}");
    }
}

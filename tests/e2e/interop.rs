//! Interop with stamp-suite, a STAMP implementation (RFC 8762, RFC 8972) nobody here wrote,
//! its version pinned and installed by scripts/test: its sender against xcbench's reflector
//! and xcbench's sender against its reflector, unauthenticated and authenticated
//! (HMAC-SHA-256), each with an SSID; every reply counted on both sides and every field
//! checked that one side can see of the other. Each case prints its row of the matrix.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use xcbench_agent::wire::stamp_auth::StampKeys;
use xcbench_agent::wire::{ErrorEstimate, TestPacket, Timestamp};

use crate::support::agents::{agent_toml, ready_collector};
use crate::support::http::http_get;
use crate::support::metrics::{parse_metrics, sample};
use crate::support::ports::free_udp_port;
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::{machine, tool, wait_for};

const KEY: &str = "4d2a0c1e9b8f7a6d5c4b3a2918070615f4e3d2c1b0a99887766554433221100f";
const WRONG: &str = "00112233445566778899aabbccddeeff";

/// stamp-suite on PATH (scripts/test puts it there), at the version scripts/test pins.
fn stamp_suite() -> Option<PathBuf> {
    let ss = tool("stamp-suite", "CI")?;
    if let Ok(want) = std::env::var("XCBENCH_STAMP_SUITE_VERSION") {
        let out = Command::new(&ss)
            .arg("--version")
            .output()
            .expect("stamp-suite --version");
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            got.trim(),
            format!("stamp-suite {want}"),
            "{}",
            ss.display()
        );
    }
    Some(ss)
}

/// [`KEY`] as the agent reads it from a key file.
fn keys() -> StampKeys {
    xcbench_agent::config::stamp_keys::parse(KEY).unwrap()
}

fn key_file(dir: &TempDir) -> PathBuf {
    let path = dir.write("stamp.keys", &format!("{KEY}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn metric(addr: SocketAddr, name: &str, fragments: &[&str]) -> Option<f64> {
    let (_, text) = http_get(addr, "/metrics")?;
    sample(&parse_metrics(&text), name, fragments)
}

/// What a stamp-suite sender run printed: its JSON summary and its per-reply lines.
struct SenderRun {
    summary: Value,
    replies: Vec<String>,
}

fn stamp_suite_send(
    ss: &Path,
    to: SocketAddr,
    count: u32,
    auth: Option<&str>,
    extra: &[&str],
) -> SenderRun {
    let mut cmd = Command::new(ss);
    cmd.args([
        "-r",
        "127.0.0.1",
        "-p",
        &to.port().to_string(),
        "-S",
        "127.0.0.1",
    ])
    .args([
        "-c",
        &count.to_string(),
        "-d",
        "5",
        "-L",
        "1",
        "--hwtstamp",
        "off",
    ])
    .args(["--output-format", "json", "-R", "--ssid", "42"])
    // A reply whose SSID came back zeroed stops the run: the SSID must be copied.
    .args(["--on-zero-ssid", "stop"]);
    if let Some(key) = auth {
        cmd.args(["-A", "A", "--hmac-key", key]);
    }
    let out = cmd.args(extra).output().expect("run stamp-suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stamp-suite sender: {stderr}");
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let summary: Value = serde_json::from_str(last).expect("JSON summary");
    assert_eq!(summary["type"], "summary", "{last}");
    let replies = stderr
        .lines()
        .filter(|l| l.starts_with("seq="))
        .map(str::to_owned)
        .collect();
    SenderRun { summary, replies }
}

/// stamp-suite sends 50 test packets with SSID 42 to each of two xcbench reflectors, one
/// open and one keyed: every one answered in its mode, with its SSID copied (a zeroed SSID
/// stops stamp-suite), its sequence number and T1 returned, and xcbench's per-session
/// reflector counter seen by stamp-suite; a run with another key and an unauthenticated run
/// at the keyed reflector get nothing and are counted by reason.
#[test]
fn stamp_suite_sender_against_our_reflector() {
    let _turn = machine::shared();
    let Some(ss) = stamp_suite() else {
        return;
    };
    let dir = TempDir::new("interop-sender");
    let (collector, addr) = ready_collector(&dir, "");
    let url = format!("http://{addr}");
    let (open, keyed): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], free_udp_port()).into(),
        ([127, 0, 0, 1], free_udp_port()).into(),
    );
    let keys_path = key_file(&dir);
    let open_cfg = dir.write(
        "open.toml",
        &agent_toml("az-open", "azure", open, &url, &[], "10ms"),
    );
    let keyed_text = agent_toml("az-keyed", "azure", keyed, &url, &[], "10ms").replace(
        "\n\n[collector]",
        &format!("\nstamp_keys = \"{}\"\n\n[collector]", keys_path.display()),
    );
    let keyed_cfg = dir.write("keyed.toml", &keyed_text);
    let agents: Vec<Proc> = [("open", &open_cfg), ("keyed", &keyed_cfg)]
        .iter()
        .map(|(name, cfg)| {
            Proc::spawn(
                &format!("agent {name}"),
                Command::new(bin()).args(["agent", "--config"]).arg(cfg),
            )
        })
        .collect();
    // An agent reports once its sockets are bound.
    for agent in ["az-open", "az-keyed"] {
        let reported = format!("agent=\"{agent}\"");
        wait_for(Duration::from_secs(10), || {
            metric(
                addr,
                "xcbench_agent_last_report_timestamp_seconds",
                &[&reported],
            )
        })
        .unwrap_or_else(|| panic!("{agent} never reported"));
    }

    for (mode, to, key) in [
        ("unauthenticated", open, None),
        ("authenticated", keyed, Some(KEY)),
    ] {
        let run = stamp_suite_send(&ss, to, 50, key, &[]);
        let s = &run.summary;
        let m = &s["measurements"];
        eprintln!(
            "interop: stamp-suite sender -> xcbench reflector, {mode}, ssid 42: sent {}, received {}, lost {}, reflector sequence last {}, one-way samples {}",
            s["packets_sent"], s["packets_received"], s["packets_lost"], m["last_reflector_sequence"], s["owd"]["samples"]
        );
        assert_eq!(s["packets_sent"], 50, "{mode}: {s}");
        assert_eq!(s["packets_received"], 50, "{mode}: {s}");
        assert_eq!(s["packets_lost"], 0, "{mode}: {s}");
        // xcbench's reflector is stateful: its own counter, 0..49 for this session.
        assert_eq!(m["last_reflector_sequence"], 49, "{mode}: {m}");
        assert_eq!(
            (m["duplicate_replies"].clone(), m["unknown_replies"].clone()),
            (0.into(), 0.into())
        );
        assert_eq!(
            s["owd"]["samples"], 50,
            "{mode}: T2 and T3 read from every reply"
        );
        // Every reply names its probe: the sender's sequence number came back in order.
        assert_eq!(run.replies.len(), 50, "{mode}");
        for (i, line) in run.replies.iter().enumerate() {
            assert!(line.starts_with(&format!("seq={i} ")), "{mode}: {line}");
        }
    }
    // RFC 8972 TLVs, each that stamp-suite sends (in authenticated mode with its HMAC TLV):
    // every one answered (none U, M or I), the HMAC verified, Direct Measurement's
    // counters and Follow-Up Telemetry's previous replies matching what stamp-suite saw,
    // the Access Report acknowledged.
    let tlvs = [
        "--extra-padding",
        "64",
        "--location",
        "--timestamp-info",
        "--cos",
        "--dscp",
        "46",
        "--direct-measurement",
        "--follow-up-telemetry",
        "--access-report",
        "1",
    ];
    for (mode, to, key) in [
        ("unauthenticated", open, None),
        ("authenticated", keyed, Some(KEY)),
    ] {
        let run = stamp_suite_send(&ss, to, 20, key, &tlvs);
        let s = &run.summary;
        let v = &s["measurements"]["tlv_validation"];
        let dm = &s["measurements"]["direct_measurement"];
        let fu = &s["measurements"]["follow_up"];
        let types: Vec<&String> = v["by_type"].as_object().expect("by_type").keys().collect();
        eprintln!(
            "interop: stamp-suite sender -> xcbench reflector, {mode}, TLVs {types:?}: received {}, flags {}, hmac {}, direct measurement forward/reverse missing {}/{}, follow-up matched {} unavailable {}, access report {}",
            s["packets_received"], v["flags"], v["hmac"], dm["forward_missing"], dm["reverse_missing"],
            fu["matched"], fu["unavailable"], s["access_report"]["outcome"]
        );
        assert_eq!(s["packets_received"], 20, "{mode}: {s}");
        assert_eq!(v["rejected_replies"], 0, "{mode}: {v}");
        for flag in ["unrecognized", "malformed", "integrity_failed"] {
            assert_eq!(v["flags"][flag], 0, "{mode}: {flag}: {v}");
        }
        let mut want = vec!["1", "2", "3", "4", "5", "6", "7"];
        if key.is_some() {
            want.push("8");
            assert_eq!(v["hmac"]["verified"], 20, "{mode}: {v}");
        }
        assert_eq!(types, want, "{mode}: every TLV sent came back");
        assert_eq!(
            (dm["observations"].clone(), dm["forward_missing"].clone()),
            (20.into(), 0.into()),
            "{mode}: {dm}"
        );
        assert_eq!(dm["reverse_missing"], 0, "{mode}: {dm}");
        // The first reply has no previous one to follow up.
        assert_eq!(
            (fu["matched"].clone(), fu["unavailable"].clone()),
            (19.into(), 1.into()),
            "{mode}: {fu}"
        );
        assert_eq!(s["access_report"]["outcome"], "acknowledged", "{mode}");
    }
    // At the keyed reflector: another key, and no key at all.
    let wrong = stamp_suite_send(&ss, keyed, 10, Some(WRONG), &[]);
    let open_at_keyed = stamp_suite_send(&ss, keyed, 10, None, &[]);
    for (what, run) in [("another key", &wrong), ("unauthenticated", &open_at_keyed)] {
        eprintln!(
            "interop: stamp-suite sender -> xcbench keyed reflector, {what}: sent {}, received {}",
            run.summary["packets_sent"], run.summary["packets_received"]
        );
        assert_eq!(run.summary["packets_received"], 0, "{what}");
    }
    terminate_all(agents);
    let count = |name: &str, agent: &str| {
        metric(addr, name, &[&format!("agent=\"{agent}\"")]).unwrap_or(f64::NAN)
    };
    let udp = |name: &str, agent: &str| {
        metric(
            addr,
            name,
            &[&format!("agent=\"{agent}\""), "protocol=\"udp\""],
        )
        .unwrap_or(f64::NAN)
    };
    assert_eq!(udp("xcbench_reflector_reflected_total", "az-open"), 70.0);
    assert_eq!(udp("xcbench_reflector_reflected_total", "az-keyed"), 70.0);
    assert_eq!(
        count("xcbench_reflector_unauthenticated_total", "az-keyed"),
        10.0
    );
    // 44-byte packets are too short to be authenticated ones.
    assert_eq!(udp("xcbench_reflector_malformed_total", "az-keyed"), 10.0);
    assert_eq!(count("xcbench_reflector_replayed_total", "az-keyed"), 0.0);
    drop(collector);
}

/// A stamp-suite reflector (stateful), open or keyed, ready once it answers the test's own
/// packet. Returns the process and the address the test's packets came from (their session
/// is not xcbench's).
fn stamp_suite_reflector(ss: &Path, at: SocketAddr, auth: bool) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(ss);
    cmd.args([
        "-i",
        "--local-addr",
        "127.0.0.1",
        "--local-port",
        &at.port().to_string(),
    ])
    .args([
        "--stateful-reflector",
        "--hwtstamp",
        "off",
        "--output-format",
        "json",
    ]);
    if auth {
        cmd.args(["-A", "A", "--hmac-key", KEY]);
    }
    let proc = Proc::spawn("stamp-suite reflector", &mut cmd);
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let keys = keys();
    let mut tries = 0u64;
    wait_for(Duration::from_secs(10), || {
        tries += 1;
        let mut buf = Vec::new();
        let packet = TestPacket {
            seq: tries as u32,
            timestamp: Timestamp::from_unix_ns(xcbench_agent::net::clock::now_unix_ns()),
            error_estimate: ErrorEstimate::from_error_ns(1_000, false),
            ssid: 7,
            len: if auth { 112 } else { 44 },
        };
        match auth {
            true => packet.encode_authenticated(keys.current(), &mut buf),
            false => packet.encode(&mut buf),
        }
        probe.send_to(&buf, at).ok()?;
        let mut reply = [0u8; 2048];
        probe.recv_from(&mut reply).ok()
    })
    .expect("stamp-suite reflector answers");
    (proc, probe.local_addr().unwrap())
}

/// xcbench's sender probes a stamp-suite reflector every 10 ms for 2 s with 300-byte
/// packets (an Extra Padding TLV after the base), open and then keyed: every probe answered, nothing lost in either direction, the
/// reflector's own counts and the session's SSID (xcbench's, nonzero) agreeing with
/// xcbench's.
#[test]
fn our_sender_against_stamp_suite_reflector() {
    let _turn = machine::shared();
    let Some(ss) = stamp_suite() else {
        return;
    };
    let dir = TempDir::new("interop-reflector");
    let (collector, addr) = ready_collector(&dir, "");
    let url = format!("http://{addr}");
    let keys_path = key_file(&dir);
    for (i, auth) in [false, true].into_iter().enumerate() {
        let at: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
        let (reflector, test_source) = stamp_suite_reflector(&ss, at, auth);
        let listen: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
        let id = format!("az-{i}");
        let peer = format!("ss-{i}");
        // Packets longer than the base: xcbench asks for EF (46) each way in a Class of
        // Service TLV and pads with an Extra Padding TLV.
        let mut text = agent_toml(&id, "azure", listen, &url, &[(&peer, "oci", at)], "10ms")
            .replace(
                "loss_timeout",
                "payload_size = 300\ndscp = 46\nloss_timeout",
            );
        if auth {
            text = text.replace(
                "loss_timeout = \"500ms\"\n",
                &format!(
                    "loss_timeout = \"500ms\"\nstamp_keys = \"{}\"\n",
                    keys_path.display()
                ),
            );
        }
        let cfg = dir.write(&format!("{id}.toml"), &text);
        let agent = Proc::spawn(
            &id,
            Command::new(bin()).args(["agent", "--config"]).arg(&cfg),
        );
        std::thread::sleep(Duration::from_secs(2));
        terminate_all(vec![agent]);
        let out = reflector.terminate(Duration::from_secs(10));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_else(|| {
            panic!(
                "stamp-suite reflector printed no summary: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let summary: Value = serde_json::from_str(last).expect("reflector JSON summary");

        let (_, text) = http_get(addr, "/metrics").expect("/metrics");
        let m = parse_metrics(&text);
        let (src, dst) = (
            format!("src_agent=\"{id}\""),
            format!("dst_agent=\"{peer}\""),
        );
        let get = |name: &str, extra: &[&str]| {
            let mut sel = vec![src.as_str(), dst.as_str()];
            sel.extend_from_slice(extra);
            sample(&m, name, &sel).unwrap_or_else(|| panic!("{name} {sel:?}"))
        };
        let sent = get("xcbench_probes_sent_total", &[]);
        let received = get("xcbench_probes_received_total", &[]);
        let lost = get("xcbench_probes_lost_total", &[]);
        let unmatched = sample(
            &m,
            "xcbench_sender_unmatched_total",
            &[&format!("agent=\"{id}\"")],
        );
        let refused = sample(
            &m,
            "xcbench_sender_unauthenticated_total",
            &[&format!("agent=\"{id}\"")],
        );
        let p50 = get("xcbench_rtt_window_seconds", &["quantile=\"0.5\""]);
        let dscp = |name: &str, dir: &str| {
            sample(&m, name, &[&src, &dst, &format!("direction=\"{dir}\"")])
        };
        let cos = ["forward", "reverse"].map(|dir| {
            (
                dscp("xcbench_probes_received_dscp", dir),
                dscp("xcbench_probes_remarked_total", dir),
            )
        });
        let ours: Vec<&Value> = summary["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .filter(|s| s["client"] != test_source.to_string().as_str())
            .collect();
        let mode = if auth {
            "authenticated"
        } else {
            "unauthenticated"
        };
        eprintln!(
            "interop: xcbench sender -> stamp-suite reflector, {mode}: sent {sent}, received {received}, lost {lost}, rtt p50 {:.1} us; stamp-suite received {} reflected {}, sessions' ssids {:?}",
            p50 * 1e6,
            summary["total_packets_received"],
            summary["total_packets_reflected"],
            ours.iter().map(|s| s["ssid"].clone()).collect::<Vec<_>>()
        );
        eprintln!(
            "interop: xcbench sender -> stamp-suite reflector, {mode}, Class of Service (DSCP 46 asked): (DSCP received, re-marked) forward {:?}, reverse {:?}",
            cos[0], cos[1]
        );
        assert!(sent >= 150.0, "{mode}: sent {sent}");
        assert_eq!((received, lost), (sent, 0.0), "{mode}");
        assert_eq!(unmatched, Some(0.0), "{mode}");
        assert_eq!(refused, Some(0.0), "{mode}");
        assert!(p50 > 0.0 && p50 < 0.005, "{mode}: p50 {p50}");
        // The test's own packet that found the reflector ready was answered too.
        let total = sent as u64 + 1;
        assert_eq!(
            summary["total_packets_received"], total,
            "{mode}: {summary}"
        );
        assert_eq!(
            summary["total_packets_reflected"], total,
            "{mode}: {summary}"
        );
        // Its reflector answered the Class of Service TLV (vouched for by an HMAC TLV when
        // authenticated): EF arrived each way and nothing was re-marked on loopback.
        for (dir, (dscp, remarked)) in ["forward", "reverse"].iter().zip(cos) {
            assert_eq!(dscp, Some(46.0), "{mode} {dir}: DSCP received");
            assert_eq!(remarked, Some(0.0), "{mode} {dir}: re-marked");
        }
        // Four flows (source ports) by default: four sessions at its reflector, taking turns,
        // together what xcbench sent.
        assert_eq!(ours.len(), 4, "{mode}: a session per flow: {summary}");
        let count = |field: &str| -> Vec<u64> {
            ours.iter()
                .map(|s| s[field].as_u64().expect(field))
                .collect()
        };
        assert!(
            count("ssid").iter().all(|s| *s != 0),
            "{mode}: xcbench sends a nonzero SSID"
        );
        for field in ["packets_received", "packets_transmitted"] {
            let per = count(field);
            assert_eq!(
                per.iter().sum::<u64>(),
                sent as u64,
                "{mode} {field}: {per:?}"
            );
            let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
            assert!(
                hi - lo <= 1,
                "{mode} {field}: the flows take turns: {per:?}"
            );
        }
    }
    drop(collector);
}

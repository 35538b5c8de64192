//! xcbench held to the lab's ground truth: agents in the lab's namespaces, a collector, known
//! impairments from the emulator, and assertions with stated tolerances. One prober (azure)
//! and one reflector (oci), so every UDP packet forward is a probe and every UDP packet in
//! reverse is a reply: counts must match the emulator's exactly. Root only: skipped with the
//! reason without CAP_NET_ADMIN, a failure under XCBENCH_REQUIRE_NETNS=1.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::agents::agent_toml;
use crate::support::machine;
use crate::support::metrics::{parse_metrics, sample};
use crate::support::netns::{enter, metrics_in, netns_available};
use crate::support::proc::{bin, stdout_json, terminate_all, Proc, TempDir};
use crate::support::tls::{tls_identity, tls_section};
use crate::support::wait_for;

/// Tolerance between xcbench's one-way delay and the time the emulator actually held the
/// packets: what remains is the kernel path into and out of the TUN devices.
/// Measured errors are +16 to +33 us with the release binary, which scripts/test (and so
/// CI) runs; a plain `cargo test` runs the debug build of agents and emulator, which adds
/// user-space cost before `sendto`, hence the headroom.
const OWD_TOLERANCE_S: f64 = 75e-6;
/// At p99 the same comparison also carries scheduling noise of a 2-core machine running the
/// emulator, two agents and a collector (T1 and T3 are read in user space before `sendto`);
/// clean CI runs showed up to 344 us there.
const OWD_P99_TOLERANCE_S: f64 = 500e-6;

struct Lab {
    name: String,
}

impl Lab {
    fn up(name: &str, sets: &[&str]) -> Lab {
        let mut c = Command::new(bin());
        c.args(["lab", "up", "--name", name, "--profile", "clean"]);
        for s in sets {
            c.args(["--set", s]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "lab up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Lab {
            name: name.to_owned(),
        }
    }

    fn exec(&self, host: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(["lab", "exec", "--name", &self.name, host, "--"])
            .args(args);
        c
    }

    fn truth(&self) -> Value {
        let out = Command::new(bin())
            .args(["lab", "truth", "--name", &self.name])
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).expect("truth JSON")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(bin())
            .args(["lab", "down", "--name", &self.name])
            .status();
    }
}

struct Outcome {
    m: BTreeMap<String, f64>,
    truth: Value,
}

impl Outcome {
    fn get(&self, name: &str, extra: &[&str]) -> f64 {
        let mut sel = vec!["src_agent=\"az\"", "dst_agent=\"oci\""];
        sel.extend_from_slice(extra);
        sample(&self.m, name, &sel).unwrap_or_else(|| panic!("{name} {extra:?} missing"))
    }

    fn owd_p(&self, dir: &str, q: &str) -> f64 {
        self.get(
            "xcbench_one_way_delay_window_seconds",
            &[
                &format!("direction=\"{dir}\""),
                &format!("quantile=\"{q}\""),
            ],
        )
    }

    /// A UDP counter of the emulator's ground truth. A missing one fails the test: read as 0,
    /// a renamed field would pass every case that expects no loss.
    fn udp(&self, dir: &str, field: &str) -> f64 {
        self.truth[dir]["udp"][field]
            .as_f64()
            .unwrap_or_else(|| panic!("ground truth has no {dir}.udp.{field}: {}", self.truth))
    }

    fn udp_delay(&self, dir: &str, which: &str, q: &str) -> f64 {
        let field = format!("{which}.{q}");
        let ns = self.truth[dir]["udp"][which][q]
            .as_f64()
            .unwrap_or_else(|| panic!("ground truth has no {dir}.udp.{field}: {}", self.truth));
        ns / 1e9
    }

    fn drops(&self, dir: &str) -> f64 {
        [
            "dropped_random",
            "dropped_burst",
            "dropped_queue",
            "dropped_mtu",
        ]
        .iter()
        .map(|f| self.udp(dir, f))
        .sum()
    }

    /// Every probe settled; losses by direction agree with what the emulator dropped each
    /// way, up to `unsplit` trailing losses with no later reply to split them.
    fn check_counts(&self, unsplit: f64) {
        let sent = self.get("xcbench_probes_sent_total", &[]);
        let received = self.get("xcbench_probes_received_total", &[]);
        let lost = self.get("xcbench_probes_lost_total", &[]);
        let fwd = self.get(
            "xcbench_probes_lost_direction_total",
            &["direction=\"forward\""],
        );
        let rev = self.get(
            "xcbench_probes_lost_direction_total",
            &["direction=\"reverse\""],
        );
        assert_eq!(
            self.udp("forward", "packets"),
            sent,
            "emulator saw every probe: {}",
            self.truth
        );
        assert_eq!(received + lost, sent);
        assert_eq!(
            lost,
            self.drops("forward") + self.drops("reverse"),
            "loss total is exact"
        );
        assert!(
            fwd <= self.drops("forward") && rev <= self.drops("reverse"),
            "fwd {fwd} rev {rev}"
        );
        assert!(lost - fwd - rev <= unsplit, "unsplit {}", lost - fwd - rev);
    }
}

/// Runs a prober in azure against a reflector in oci for `secs`, then reads /metrics and
/// the emulator's truth.
fn run_case(lab_name: &str, sets: &[&str], secs: u64, payload: u32) -> Outcome {
    run_case_with(lab_name, sets, secs, &format!("payload_size = {payload}\n"))
}

/// As [`run_case`], with extra peer settings for the prober (e.g. TCP probes).
fn run_case_with(lab_name: &str, sets: &[&str], secs: u64, peer_extra: &str) -> Outcome {
    run_case_full(lab_name, sets, secs, peer_extra, "")
}

/// As [`run_case_with`], with extra sections for the prober's config (e.g. a bench
/// schedule); with any, both agents get key pairs and pin each other.
fn run_case_full(
    lab_name: &str,
    sets: &[&str],
    secs: u64,
    peer_extra: &str,
    agent_extra: &str,
) -> Outcome {
    run_case_then(
        lab_name,
        sets,
        secs,
        peer_extra,
        agent_extra,
        "",
        |_, _, _| (),
    )
    .0
}

/// As [`run_case_full`], with `agent_section` lines in both agents' `[agent]` sections,
/// then `then(lab, collector address, scratch directory)` while the lab and the collector
/// still run (the agents have stopped).
fn run_case_then<T>(
    lab_name: &str,
    sets: &[&str],
    secs: u64,
    peer_extra: &str,
    agent_extra: &str,
    agent_section: &str,
    then: impl FnOnce(&Lab, SocketAddr, &TempDir) -> T,
) -> (Outcome, T) {
    let section = |toml: String| {
        toml.replacen(
            "\n\n[reflector]",
            &format!("\n{agent_section}\n[reflector]"),
            1,
        )
    };
    let lab = Lab::up(lab_name, sets);
    let dir = TempDir::new(lab_name);
    let collector: SocketAddr = "198.18.1.1:9862".parse().unwrap();
    let ccfg = dir.write(
        "c.toml",
        // The lab's collector is plain HTTP on a namespace address, on purpose (the mutual
        // TLS channel is tested in netns and loopback).
        &format!("listen = \"{collector}\"\nwindow = \"1h\"\nplain_http = true\n"),
    );
    let _c = Proc::spawn(
        "collector",
        &mut lab.exec(
            "azure",
            &[bin(), "collector", "--config", ccfg.to_str().unwrap()],
        ),
    );
    let url = format!("http://{collector}");
    let oci: SocketAddr = "198.18.2.1:862".parse().unwrap();
    // A prober that uses QUIC gets a key pair, and so does the reflector; each pins the other.
    let (oci_tls, peer_tls) = if peer_extra.contains("\"quic\"") || !agent_extra.is_empty() {
        let (fp_az, fp_oci) = (tls_identity(&dir, "az"), tls_identity(&dir, "oci"));
        (
            tls_section(&dir, "oci", &[&fp_az]),
            (
                tls_section(&dir, "az", &[]),
                format!("fingerprint = \"{fp_oci}\"\n"),
            ),
        )
    } else {
        (String::new(), (String::new(), String::new()))
    };
    let rcfg = dir.write(
        "oci.toml",
        &(section(agent_toml("oci", "oci", oci, &url, &[], "1ms")) + &oci_tls),
    );
    let reflector = Proc::spawn(
        "oci agent",
        &mut lab.exec("oci", &[bin(), "agent", "--config", rcfg.to_str().unwrap()]),
    );
    let pcfg = dir.write(
        "az.toml",
        &(section(agent_toml(
            "az",
            "azure",
            "198.18.1.1:862".parse().unwrap(),
            &url,
            &[("oci", "oci", oci)],
            "1ms",
        ))
        .replace("\n[[peers]]", &(peer_tls.0 + agent_extra + "\n[[peers]]"))
            + peer_extra
            + &peer_tls.1),
    );
    // Reflector first, so the prober's first probes are not lost to start-up.
    std::thread::sleep(Duration::from_millis(700));
    let prober = Proc::spawn(
        "az agent",
        &mut lab.exec(
            "azure",
            &[bin(), "agent", "--config", pcfg.to_str().unwrap()],
        ),
    );
    std::thread::sleep(Duration::from_secs(secs));
    terminate_all(vec![prober]);
    terminate_all(vec![reflector]);
    let text = metrics_in(&format!("{lab_name}-azure"), collector);
    let truth = lab.truth();
    let after = then(&lab, collector, &dir);
    (
        Outcome {
            m: parse_metrics(&text),
            truth,
        },
        after,
    )
}

/// The machine to this lab case alone (see `support::machine`), or None (skip) without
/// namespaces.
fn lab_ok() -> Option<std::sync::RwLockWriteGuard<'static, ()>> {
    if !netns_available() {
        return None;
    }
    Some(machine::alone())
}

fn near(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: xcbench {:.1} us, truth {:.1} us, error {:.1} us > {:.1} us",
        got * 1e6,
        want * 1e6,
        (got - want) * 1e6,
        tol * 1e6
    );
}

#[test]
fn symmetric_delay() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case("xsym", &["delay=1ms"], 3, 44);
    o.check_counts(0.0);
    assert_eq!(o.get("xcbench_probes_lost_total", &[]), 0.0);
    for dir in ["forward", "reverse"] {
        near(
            &format!("{dir} one-way p50"),
            o.owd_p(dir, "0.5"),
            o.udp_delay(dir, "actual_delay_ns", "p50"),
            OWD_TOLERANCE_S,
        );
        near(
            &format!("{dir} one-way p50 vs injected"),
            o.owd_p(dir, "0.5"),
            1e-3,
            2.0 * OWD_TOLERANCE_S,
        );
    }
    let rtt = o.get("xcbench_rtt_window_seconds", &["quantile=\"0.5\""]);
    let want = o.udp_delay("forward", "actual_delay_ns", "p50")
        + o.udp_delay("reverse", "actual_delay_ns", "p50");
    near("rtt p50", rtt, want, 2.0 * OWD_TOLERANCE_S);
}

#[test]
fn asymmetric_delay() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case("xasym", &["forward.delay=3ms", "reverse.delay=1ms"], 3, 44);
    o.check_counts(0.0);
    near(
        "forward p50",
        o.owd_p("forward", "0.5"),
        o.udp_delay("forward", "actual_delay_ns", "p50"),
        OWD_TOLERANCE_S,
    );
    near(
        "reverse p50",
        o.owd_p("reverse", "0.5"),
        o.udp_delay("reverse", "actual_delay_ns", "p50"),
        OWD_TOLERANCE_S,
    );
    near(
        "forward vs injected 3 ms",
        o.owd_p("forward", "0.5"),
        3e-3,
        2.0 * OWD_TOLERANCE_S,
    );
    near(
        "reverse vs injected 1 ms",
        o.owd_p("reverse", "0.5"),
        1e-3,
        2.0 * OWD_TOLERANCE_S,
    );
}

#[test]
fn jitter_distribution() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case(
        "xjit",
        &["delay=2ms", "jitter=300us", "jitter_distribution=uniform"],
        3,
        44,
    );
    o.check_counts(0.0);
    for (q, key, tol) in [
        ("0.5", "p50", OWD_TOLERANCE_S),
        ("0.9", "p90", OWD_TOLERANCE_S),
        ("0.99", "p99", OWD_P99_TOLERANCE_S),
    ] {
        near(
            &format!("forward one-way {key}"),
            o.owd_p("forward", q),
            o.udp_delay("forward", "actual_delay_ns", key),
            tol,
        );
    }
    // RFC 3550 jitter of FIFO-clipped uniform +-300 us on 1 ms spacing: clearly above the
    // clean link's few microseconds and below the 600 us spread.
    let j = o.get("xcbench_jitter_seconds", &["direction=\"forward\""]);
    assert!(j > 50e-6 && j < 300e-6, "jitter {j}");
}

#[test]
fn random_loss_one_percent() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case("xloss", &["delay=500us", "loss=1%"], 3, 44);
    o.check_counts(2.0);
    assert!(
        o.drops("forward") >= 10.0 && o.drops("reverse") >= 10.0,
        "{}",
        o.truth
    );
}

#[test]
fn burst_loss() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case(
        "xburst",
        &[
            "delay=500us",
            "burst_p=0.5%",
            "burst_r=20%",
            "burst_loss_bad=100%",
        ],
        3,
        44,
    );
    o.check_counts(6.0);
    assert!(o.udp("forward", "dropped_burst") >= 10.0, "{}", o.truth);
}

#[test]
fn reordering() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case(
        "xreord",
        &[
            "delay=500us",
            "forward.reorder=2%",
            "forward.reorder_gap=5ms",
        ],
        3,
        44,
    );
    o.check_counts(0.0);
    let truth = o.udp("forward", "reordered");
    assert!(truth >= 20.0, "{}", o.truth);
    assert_eq!(
        o.get("xcbench_probes_reordered_total", &[]),
        truth,
        "reorders are exact"
    );
    assert_eq!(o.get("xcbench_probes_duplicated_total", &[]), 0.0);
}

#[test]
fn duplication() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case("xdup", &["delay=500us", "duplicate=1%"], 3, 44);
    let truth = o.udp("forward", "duplicated") + o.udp("reverse", "duplicated");
    assert!(truth >= 20.0, "{}", o.truth);
    // A duplicated probe is reflected twice; a duplicated reply arrives twice: one extra
    // reply either way.
    assert_eq!(
        o.get("xcbench_probes_duplicated_total", &[]),
        truth,
        "duplicates are exact"
    );
    assert_eq!(o.get("xcbench_probes_lost_total", &[]), 0.0);
}

#[test]
fn mtu_1400() {
    let Some(_g) = lab_ok() else { return };
    // 1372-byte STAMP packets make 1400-byte IP packets: they fit.
    let o = run_case("xmtu", &["delay=500us", "mtu=1400"], 2, 1372);
    o.check_counts(0.0);
    assert_eq!(o.get("xcbench_probes_lost_total", &[]), 0.0);
    assert_eq!(o.udp("forward", "dropped_mtu"), 0.0);
    // 1400-byte STAMP packets (1428 on the wire, DF set by path MTU discovery): the first is
    // dropped with ICMP fragmentation-needed, then the kernel fragments to 1400 and the rest
    // arrive. Replies, just as large, take the same path back.
    let o = run_case("xmtu2", &["delay=500us", "mtu=1400"], 2, 1400);
    let sent = o.get("xcbench_probes_sent_total", &[]);
    let lost = o.get("xcbench_probes_lost_total", &[]);
    let (fwd_mtu, rev_mtu) = (
        o.udp("forward", "dropped_mtu"),
        o.udp("reverse", "dropped_mtu"),
    );
    // Probes leave every ~1 ms, and the ICMP that teaches the path MTU needs the 0.5 ms way
    // back plus the emulator's and the kernel's handling: up to 3 datagrams a direction may
    // leave before it is learned (2 forward and 3 reverse seen on a clean CI run).
    assert!(
        (1.0..=3.0).contains(&fwd_mtu) && (1.0..=3.0).contains(&rev_mtu),
        "{}",
        o.truth
    );
    assert_eq!(
        lost,
        fwd_mtu + rev_mtu,
        "only the packets that taught the path MTU are lost"
    );
    assert_eq!(o.get("xcbench_probes_received_total", &[]) + lost, sent);
    // Every later probe crossed as two fragments of at most 1400 bytes.
    assert_eq!(
        o.udp("forward", "packets"),
        2.0 * (sent - fwd_mtu) + fwd_mtu,
        "{}",
        o.truth
    );
}

/// Sends one UDP datagram from namespace `from_ns` to `to` and receives it on a socket bound
/// in `to_ns`; returns the bytes received.
fn udp_across(from_ns: &str, to_ns: &str, to: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let to_ns = to_ns.to_owned();
    let receiver = std::thread::spawn(move || {
        enter(&to_ns);
        let s = std::net::UdpSocket::bind(to).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    });
    ready_rx.recv().unwrap();
    let from_ns = from_ns.to_owned();
    let payload = payload.to_vec();
    std::thread::spawn(move || {
        enter(&from_ns);
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(&payload, to).unwrap();
    })
    .join()
    .unwrap();
    receiver.join().unwrap()
}

#[test]
fn mesh_crash_recovery_and_cleanup() {
    let Some(_g) = lab_ok() else { return };
    let out = Command::new(bin())
        .args([
            "lab",
            "up",
            "--name",
            "xlife",
            "--hosts",
            "2",
            "--profile",
            "clean",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let guard = Lab {
        name: "xlife".into(),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for host in ["azure-2 ", "oci-2 ", "198.18.1.2", "198.18.2.2"] {
        assert!(text.contains(host), "{text}");
    }
    // The second hosts of each side reach each other through the emulator.
    let to: SocketAddr = "198.18.2.2:7000".parse().unwrap();
    let got = udp_across("xlife-azure-2", "xlife-oci-2", to, b"mesh");
    assert_eq!(got.as_deref(), Some(&b"mesh"[..]));
    let truth = guard.truth();
    assert_eq!(truth["forward"]["udp"]["delivered"], 1, "{truth}");

    let err = Command::new(bin())
        .args(["lab", "exec", "--name", "xlife", "gcp", "--", "true"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(
        String::from_utf8_lossy(&err.stderr)
            .contains("no host \"gcp\"; hosts are azure, azure-2, oci, oci-2"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );

    // A crashed emulator: the next `lab up` cleans up and starts afresh.
    let pid: i32 = std::fs::read_to_string("/run/xcbench/lab-xlife/emulator.pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_for(Duration::from_secs(5), || {
        (!Command::new(bin())
            .args(["lab", "truth", "--name", "xlife"])
            .output()
            .unwrap()
            .status
            .success())
        .then_some(())
    })
    .is_some());
    let out = Command::new(bin())
        .args(["lab", "up", "--name", "xlife", "--profile", "clean"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        guard.truth()["forward"],
        serde_json::json!({}),
        "fresh counters"
    );

    let out = Command::new(bin())
        .args(["lab", "down", "--name", "xlife"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains("xlife-"),
        "namespaces left behind"
    );
    assert!(!std::path::Path::new("/run/xcbench/lab-xlife").exists());
}

const TCP: &str = "protocols = [\"udp\", \"tcp\"]\nconnect_interval = \"50ms\"\n";

#[test]
fn tcp_connect_and_rr_match_the_link() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case_with("xtcp", &["delay=1ms"], 3, TCP);
    let q = |kind: &str, quant: &str| {
        o.get(
            "xcbench_rtt_window_seconds",
            &[
                &format!("kind=\"{kind}\""),
                &format!("quantile=\"{quant}\""),
            ],
        )
    };
    let link = o.udp_delay("forward", "actual_delay_ns", "p50")
        + o.udp_delay("reverse", "actual_delay_ns", "p50");
    // A handshake is one round trip (SYN out, SYN-ACK back) plus connect()'s own cost.
    // Debug builds spend more around connect() (socket set-up, task spawn): 400 us headroom.
    near("tcp connect p50", q("connect", "0.5"), link, 400e-6);
    // Request/response on a warm connection: the same round trip STAMP measures, with kernel
    // receive timestamps on both ends; what remains is the TCP stack.
    near(
        "tcp rr p50 vs stamp rtt p50",
        q("rr", "0.5"),
        q("stamp", "0.5"),
        100e-6,
    );
    assert_eq!(
        o.get("xcbench_tcp_retransmits_total", &["kind=\"rr\""]),
        0.0
    );
    let srtt = o.get("xcbench_tcp_srtt_seconds", &["kind=\"rr\""]);
    // The kernel's smoothed RTT runs from a request's segment to the ACK that rides on the
    // response, so it also holds the responder's wake-up and processing (a debug build in
    // CI), which kernel-timestamped RTTs exclude: 329 us and 654 us above the link seen on
    // clean CI runs. It can never be below the link: a tight floor, a loose ceiling (a
    // unit or field mix-up, ms for us or rttvar for srtt, still fails one of them).
    assert!(
        srtt >= link - 50e-6 && srtt <= link + 1.5e-3,
        "TCP_INFO srtt: xcbench {:.1} us, link {:.1} us: expected link - 50 us ..= link + 1500 us",
        srtt * 1e6,
        link * 1e6
    );
}

#[test]
fn tcp_under_loss_retransmits_and_shows_it_as_latency() {
    let Some(_g) = lab_ok() else { return };
    // 3% on the way out only: about 3% of handshakes lose their SYN, which the client itself
    // must retransmit (a lost SYN-ACK would be recovered by the server instead).
    let o = run_case_with(
        "xtcpl",
        &["delay=1ms", "forward.loss=3%"],
        4,
        "protocols = [\"udp\", \"tcp\"]\nconnect_interval = \"20ms\"\n",
    );
    let rr = |name: &str, extra: &[&str]| {
        let mut sel = vec!["kind=\"rr\""];
        sel.extend_from_slice(extra);
        o.get(name, &sel)
    };
    assert!(
        rr("xcbench_tcp_retransmits_total", &[]) >= 1.0,
        "retransmit counter moves"
    );
    // A lost segment is resent after the tail-loss probe (about 2 x SRTT) or the RTO, so
    // the request/response tail reaches several round trips of the 2 ms link (9.6 ms seen).
    let max = rr("xcbench_rtt_window_seconds", &["quantile=\"1\""]);
    assert!(
        max >= 0.006,
        "rr max {max}: no retransmission delay visible"
    );
    let p50 = rr("xcbench_rtt_window_seconds", &["quantile=\"0.5\""]);
    assert!(p50 < 0.003, "rr p50 {p50} stays near the 2 ms link");
    // A lost SYN is resent after 1 s: the classic ~1 s connect, counted as a retransmission,
    // not as a loss.
    let connect = |name: &str, extra: &[&str]| {
        let mut sel = vec!["kind=\"connect\""];
        sel.extend_from_slice(extra);
        o.get(name, &sel)
    };
    assert!(
        connect("xcbench_tcp_retransmits_total", &[]) >= 1.0,
        "SYN retransmissions counted"
    );
    let max = connect("xcbench_rtt_window_seconds", &["quantile=\"1\""]);
    // Typically ~1.0 s (one SYN resent); with this seed one connect takes 2.05 s, which
    // forward-only SYN loss alone does not explain (under investigation): assert the
    // retransmission scale, not the exact step.
    assert!(
        max >= 0.9,
        "connect max {max}: no retransmission-sized connect"
    );
    // But bounded, so the unexplained case cannot silently grow: two SYN retransmissions
    // (1 s + 2 s) and the round trip stay under 3.5 s.
    assert!(
        max < 3.5,
        "connect max {max}: longer than two SYN retransmissions"
    );
    assert_eq!(connect("xcbench_probes_lost_total", &[]), 0.0);
    // TCP delivers everything: a request is lost only if its connection stalled for the
    // whole loss timeout, which this loss rate does not do.
    assert_eq!(rr("xcbench_probes_lost_total", &[]), 0.0);
}

const QUIC: &str = "protocols = [\"udp\", \"quic\"]\nconnect_interval = \"100ms\"\n";

#[test]
fn quic_handshakes_and_rr_match_the_link() {
    let Some(_g) = lab_ok() else { return };
    // 15 ms each way: one round trip (30 ms) is then far from two, whatever the crypto and
    // the debug build cost.
    let o = run_case_with("xquic", &["delay=15ms"], 4, QUIC);
    let q = |proto: &str, kind: &str, quant: &str| {
        o.get(
            "xcbench_rtt_window_seconds",
            &[
                &format!("protocol=\"{proto}\""),
                &format!("kind=\"{kind}\""),
                &format!("quantile=\"{quant}\""),
            ],
        )
    };
    let quic =
        |name: &str, kind: &str| o.get(name, &["protocol=\"quic\"", &format!("kind=\"{kind}\"")]);
    let link = o.udp_delay("forward", "actual_delay_ns", "p50")
        + o.udp_delay("reverse", "actual_delay_ns", "p50");
    for kind in ["connect", "resume", "rr", "datagram"] {
        eprintln!(
            "quic/{kind}: p50 {:.3} ms p99 {:.3} ms; stamp p50 {:.3} ms; link {:.3} ms",
            q("quic", kind, "0.5") * 1e3,
            q("quic", kind, "0.99") * 1e3,
            q("udp", "stamp", "0.5") * 1e3,
            link * 1e3
        );
        assert_eq!(quic("xcbench_probes_lost_total", kind), 0.0, "{kind}");
        assert!(
            quic("xcbench_probes_received_total", kind) >= 30.0,
            "{kind}"
        );
    }
    // A full handshake is one round trip plus both sides' crypto and scheduling: 1.2 ms over
    // the link with release binaries here, 6.5-8.4 ms with the debug build (plain cargo test) and
    // 12.5 ms once on a clean clone with both cores busy; 14 ms headroom still tells one
    // round trip from two (60 ms).
    let connect = q("quic", "connect", "0.5");
    assert!(connect >= link, "connect {connect} beats the link {link}");
    near("quic connect p50 - 1 RTT", connect, link + 7e-3, 7e-3);
    // 0-RTT: the first request rides with the ClientHello, so request and response take one
    // round trip, not the two of a handshake followed by a request.
    let resume = q("quic", "resume", "0.5");
    assert!(resume >= link, "resume {resume} beats the link {link}");
    near("quic resume p50 - 1 RTT", resume, link + 7e-3, 7e-3);
    assert_eq!(
        o.get("xcbench_quic_zero_rtt_total", &["result=\"accepted\""]),
        quic("xcbench_probes_sent_total", "resume"),
        "every resumption carried 0-RTT data"
    );
    // Streams and datagrams on a warm connection: STAMP's round trip plus quinn and the
    // async runtime in user space on both ends (kernel timestamps do not reach quinn):
    // +0.2 ms with release binaries, +1.3-1.5 ms with debug ones and 2.1 ms once on a
    // clean clone with both cores busy; 3 ms tolerance.
    let stamp = q("udp", "stamp", "0.5");
    near(
        "quic rr p50 vs stamp rtt p50",
        q("quic", "rr", "0.5"),
        stamp + 1.5e-3,
        1.5e-3,
    );
    near(
        "quic datagram p50 vs stamp rtt p50",
        q("quic", "datagram", "0.5"),
        stamp + 1.5e-3,
        1.5e-3,
    );
    // quinn's own smoothed RTT estimate includes the peer's acknowledgement delay and the
    // same user-space path as rr above: up to 3 ms over the link (2.2 ms seen on a clean CI
    // run).
    near(
        "quinn rtt",
        quic("xcbench_quic_rtt_seconds", "rr"),
        link + 1.5e-3,
        1.5e-3,
    );
    // quinn declares a packet lost by RFC 9002's heuristics: 3 packets, or 9/8 of an RTT,
    // behind a newer acknowledged one. On two busy cores a late acknowledgement can make it
    // declare one lost that arrives after all (spurious: its frames are sent again, and no
    // probe was lost, as asserted above); a clean-clone run once counted 1 here on a link
    // that dropped nothing. So hold quinn's count to the ground truth (whatever the link
    // dropped besides MTU probes, which quinn counts apart) plus a spurious allowance of 1
    // per 100 rr probes, at least 2: a real loss path (a dropping link) still shows.
    let dropped = ["forward", "reverse"]
        .iter()
        .map(|d| o.drops(d) - o.udp(d, "dropped_mtu"))
        .sum::<f64>();
    let sent = quic("xcbench_probes_sent_total", "rr");
    let lost = quic("xcbench_quic_lost_packets_total", "rr");
    let allowed = dropped + (sent / 100.0).max(2.0);
    eprintln!("quinn lost {lost} packets; the link dropped {dropped}; {sent} rr probes");
    assert!(
        lost <= allowed,
        "quinn lost {lost} packets: more than the link's {dropped} drops and a spurious 1% ({allowed})"
    );
}

#[test]
fn quic_under_loss_recovers_streams_and_loses_datagrams() {
    let Some(_g) = lab_ok() else { return };
    // 5 s: the persistent connection may need a second for its own handshake when the loss
    // takes one of its packets (quinn resends after its first PTO), and the probes only
    // start once it is up.
    let o = run_case_with("xquicl", &["delay=1ms", "loss=1%"], 5, QUIC);
    let quic = |name: &str, kind: &str, extra: &[&str]| {
        let k = format!("kind=\"{kind}\"");
        let mut sel = vec!["protocol=\"quic\"", &k];
        sel.extend_from_slice(extra);
        o.get(name, &sel)
    };
    let sent = quic("xcbench_probes_sent_total", "datagram", &[]);
    let dg_lost = quic("xcbench_probes_lost_total", "datagram", &[]);
    let rr_max = quic("xcbench_rtt_window_seconds", "rr", &["quantile=\"1\""]);
    eprintln!(
        "datagram lost {dg_lost} of {sent}; rr lost {}; rr max {:.3} ms p50 {:.3} ms; quinn lost packets {}",
        quic("xcbench_probes_lost_total", "rr", &[]),
        rr_max * 1e3,
        quic("xcbench_rtt_window_seconds", "rr", &["quantile=\"0.5\""]) * 1e3,
        quic("xcbench_quic_lost_packets_total", "rr", &[])
    );
    // DATAGRAM frames are never resent: about 2% of request/response pairs cross a 1% loss
    // each way (88 of 3905 seen). quinn may pack a datagram with other frames, so the
    // emulator's packet drops bound it only loosely: 0.5% to 4%.
    assert!(sent >= 3000.0, "datagrams sent {sent}");
    let share = dg_lost / sent;
    assert!((0.005..=0.04).contains(&share), "datagram loss {share}");
    // Streams are reliable: nothing is lost, and the loss shows as latency (a resend takes
    // at least one more round trip of the 2 ms link; 12.8 ms seen) and in quinn's counter.
    assert_eq!(quic("xcbench_probes_lost_total", "rr", &[]), 0.0);
    assert!(rr_max >= 0.004, "rr max {rr_max}: no resend visible");
    assert!(quic("xcbench_quic_lost_packets_total", "rr", &[]) >= 1.0);
}

#[test]
fn tcp_udp_and_quic_throughput_fill_a_rate_limited_link() {
    let Some(_g) = lab_ok() else { return };
    let lab = Lab::up("xbench", &["delay=5ms", "rate=200mbit"]);
    let dir = TempDir::new("xbench");
    let (fp_az, fp_oci) = (tls_identity(&dir, "az"), tls_identity(&dir, "oci"));
    let oci: SocketAddr = "198.18.2.1:862".parse().unwrap();
    let rcfg = dir.write(
        "oci.toml",
        &format!(
            "[agent]\nid = \"oci\"\ncloud = \"oci\"\nregion = \"r\"\n\n[reflector]\nlisten = [\"{oci}\"]\n{}",
            tls_section(&dir, "oci", &[&fp_az])
        ),
    );
    let _reflector = Proc::spawn(
        "oci agent",
        &mut lab.exec("oci", &[bin(), "agent", "--config", rcfg.to_str().unwrap()]),
    );
    let pcfg = dir.write(
        "az.toml",
        &format!(
            "[agent]\nid = \"az\"\ncloud = \"azure\"\nregion = \"r\"\n\n[reflector]\nlisten = []\n{}\n[[peers]]\nid = \"oci\"\ncloud = \"oci\"\nregion = \"r\"\naddress = \"{oci}\"\nfingerprint = \"{fp_oci}\"\n",
            tls_section(&dir, "az", &[])
        ),
    );
    std::thread::sleep(Duration::from_millis(700));
    // `xcbench bench ... --json` from the azure host; its JSON.
    let bench = |args: &[&str]| -> Value {
        let cfg = pcfg.to_str().unwrap();
        let out = lab
            .exec(
                "azure",
                &[&[bin(), "bench", "--config", cfg, "oci"], args, &["--json"]].concat(),
            )
            .output()
            .unwrap();
        stdout_json(&out)
    };
    let v = bench(&["-t", "8s", "-O", "2s"]);
    let got = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap();
    let sent = v["end"]["sum_sent"]["bits_per_second"].as_f64().unwrap();
    eprintln!(
        "goodput {:.1} Mbit/s received, {:.1} sent; retransmits {}",
        got / 1e6,
        sent / 1e6,
        v["end"]["sum_sent"]["retransmits"]
    );
    // The limit counts whole IP packets: 1400-byte packets carry 1348 bytes of TCP payload
    // (20 IP + 20 TCP + 12 timestamp option), so goodput tops out at 96.3% of 200 Mbit/s
    // (192.5 Mbit/s measured). The issue asks for 5% of the limit; it can never be above.
    assert!(
        (0.95 * 200e6..=200e6).contains(&got),
        "goodput {got} not within 5% of 200 Mbit/s"
    );
    near(
        "sender vs receiver goodput",
        sent / 1e6,
        got / 1e6,
        0.01 * got / 1e6,
    );
    // The emulator forwarded at least what the receiver counted, plus headers.
    let wire = lab.truth()["forward"]["tcp"]["bytes"].as_f64().unwrap();
    let total = v["end"]["streams"][0]["receiver"]["bytes"]
        .as_f64()
        .unwrap();
    assert!(wire > total, "wire {wire} vs counted {total}");

    // UDP over the same link: 1372-byte datagrams are 1400-byte IP packets, so 195 Mbit/s
    // of payload is 199 Mbit/s on the wire, just under the limit.
    let v = bench(&["-u", "-b", "195M", "-t", "6s", "-O", "1s"]);
    let r = &v["end"]["sum_received"];
    let got = r["bits_per_second"].as_f64().unwrap();
    eprintln!(
        "udp goodput {:.1} Mbit/s, lost {} of {}, jitter {} ms",
        got / 1e6,
        r["lost_packets"],
        r["packets"],
        r["jitter_ms"]
    );
    assert!(
        (0.95 * 200e6..=200e6).contains(&got),
        "udp goodput {got} not within 5% of 200 Mbit/s"
    );
    let lost = r["lost_packets"].as_f64().unwrap();
    assert!(
        lost <= 0.01 * r["packets"].as_f64().unwrap(),
        "udp lost {lost}"
    );

    // QUIC over the same link: quinn finds the 1400-byte path MTU by probing (its ceiling
    // for stream payload per packet is then a little under TCP's).
    let v = bench(&["-q", "-t", "8s", "-O", "2s"]);
    let got = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap();
    let sent = v["end"]["sum_sent"]["bits_per_second"].as_f64().unwrap();
    let path = &v["end"]["streams"][0]["quic_path"];
    eprintln!(
        "quic goodput {:.1} Mbit/s received, {:.1} sent; quinn {path}",
        got / 1e6,
        sent / 1e6,
    );
    assert!(
        (0.95 * 200e6..=200e6).contains(&got),
        "quic goodput {got} not within 5% of 200 Mbit/s"
    );
    // The sender counts what quinn took into its send buffer, so at the warm-up's end and
    // at the test's end it is ahead of the receiver by what was buffered or in flight then
    // (at most the send window each time): over 6 counted seconds the two rates differ by at
    // most a window's worth, either way (measured: 194.2 vs 191.5, 188.0 vs 191.3 Mbit/s).
    let window = path["window_bytes"].as_f64().unwrap();
    assert!(
        (sent - got).abs() <= window * 8.0 / 6.0,
        "quic sent {sent} vs received {got}, window {window}"
    );
    // MTU discovery settled at or under the path's 1400 bytes (1372 of UDP payload).
    let mtu = path["mtu_bytes"].as_u64().unwrap();
    assert!((1300..=1372).contains(&mtu), "quinn mtu {mtu}");
}

/// A scheduled test in the agent: its figures reach /metrics through the collector, and the
/// probes that ran meanwhile are recorded apart (load="bench"), showing the queue the test
/// builds on a 200 Mbit/s link.
#[test]
fn scheduled_tests_reach_the_collector_with_latency_under_load() {
    let Some(_g) = lab_ok() else { return };
    // The first round falls within the first 10 s; the test takes 4 s.
    let o = run_case_full(
        "xsched",
        &["delay=5ms", "rate=200mbit"],
        17,
        "interval = \"5ms\"\n",
        "\n[bench.schedule]\nevery = \"10s\"\nduration = \"4s\"\nomit = \"1s\"\nprotocols = [\"tcp\"]\n",
    );
    let flow = ["protocol=\"tcp\"", "direction=\"forward\""];
    fn with<'a>(flow: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [flow, extra].concat()
    }
    let ok = o.get(
        "xcbench_bench_tests_total",
        &with(&flow, &["result=\"ok\""]),
    );
    assert!((1.0..=2.0).contains(&ok), "{ok} tests ran");
    let goodput = o.get("xcbench_bench_goodput_bytes_per_second", &flow) * 8.0;
    eprintln!("scheduled test goodput {:.1} Mbit/s", goodput / 1e6);
    assert!(
        (0.95 * 200e6..=200e6).contains(&goodput),
        "goodput {goodput} not within 5% of 200 Mbit/s"
    );
    let slowest = o.get("xcbench_bench_interval_goodput_min_bytes_per_second", &flow) * 8.0;
    assert!(
        slowest <= goodput * 1.01 && slowest > 0.5 * goodput,
        "{slowest}"
    );
    let bytes = |side: &str| o.get("xcbench_bench_bytes_total", &with(&flow, &[side]));
    let (sent, got) = (bytes("side=\"sender\""), bytes("side=\"receiver\""));
    // The sender counts what its kernel took: at the warm-up's end its send buffer held a
    // few MB the receiver counts after it, a few percent of 3 counted seconds.
    assert!(
        got > 0.0 && (sent - got).abs() <= 0.1 * got,
        "{sent} vs {got}"
    );
    let secs = o.get(
        "xcbench_bench_seconds_total",
        &with(&flow, &["side=\"receiver\""]),
    );
    assert!(
        (2.9 * ok..=3.2 * ok).contains(&secs),
        "{secs} counted seconds"
    );
    // Probes under load: the same series, recorded apart while the test ran.
    let rtt = |load: &str, q: &str| {
        o.get(
            "xcbench_rtt_window_seconds",
            &[
                "kind=\"stamp\"",
                &format!("load=\"{load}\""),
                &format!("quantile=\"{q}\""),
            ],
        )
    };
    let count = |load: &str| {
        o.get(
            "xcbench_rtt_window_seconds_count",
            &["kind=\"stamp\"", &format!("load=\"{load}\"")],
        )
    };
    eprintln!(
        "stamp rtt idle p50 {:.3} p99 {:.3} ms ({} probes); under load p50 {:.3} p99 {:.3} ms ({} probes)",
        rtt("idle", "0.5") * 1e3,
        rtt("idle", "0.99") * 1e3,
        count("idle"),
        rtt("bench", "0.5") * 1e3,
        rtt("bench", "0.99") * 1e3,
        count("bench"),
    );
    // About 4 s of 5 ms probes per test ran under load (set-up and the exchange of
    // figures add a little), plus any part of a test the end of the run cut short.
    assert!(
        (600.0 * ok..=1100.0 * (ok + 1.0)).contains(&count("bench")),
        "{}",
        count("bench")
    );
    near("idle rtt p50", rtt("idle", "0.5"), 10e-3, 1e-3);
    assert!(
        rtt("bench", "0.99") > rtt("idle", "0.99") + 1e-3,
        "no queueing seen under load"
    );
}

/// The gate on a link with known impairments: RTT passes, forward loss (2%) fails while the
/// clean reverse direction passes, a p99.99 that 10,000 probes cannot show is inconclusive
/// with the probes it needs, and one-way delay is judged per direction (the agents declare
/// the clock they share, so its error estimate is theirs, not the kernel's unsynchronised
/// 16 s).
#[test]
fn the_gate_judges_known_impairments() {
    let Some(_g) = lab_ok() else { return };
    let slo = "defaults:\n  select: { src_agent: az, dst_agent: oci }\nobjectives:\n\
  - { name: rtt-p99, indicator: rtt, quantile: p99, at_most: 20ms }\n\
  - { name: forward-loss, indicator: loss, direction: forward, at_most: 0.5% }\n\
  - { name: reverse-loss, indicator: loss, direction: reverse, at_most: 0.5% }\n\
  - { name: rtt-p99.99, indicator: rtt, quantile: p99.99, at_most: 100ms }\n\
  - { name: forward-owd, indicator: one_way_delay, direction: forward, quantile: p99, at_most: 5ms, key: false }\n\
  - { name: reverse-owd, indicator: one_way_delay, direction: reverse, quantile: p99, at_most: 5ms, key: false }\n";
    let (o, (code, table, json)) = run_case_then(
        "xgate",
        &["delay=8ms", "forward.delay=2ms", "forward.loss=2%"],
        12,
        "",
        "",
        // Both namespaces read this host's one clock: the agents declare it.
        "clock_error = \"1us\"",
        |lab, collector, dir| {
            let file = dir.write("slo.yaml", slo);
            let url = format!("http://{collector}");
            let run = |json: bool| {
                let mut args = vec![
                    bin(),
                    "gate",
                    "--slo",
                    file.to_str().unwrap(),
                    "--collector",
                    &url,
                    "--window",
                    "10s",
                ];
                if json {
                    args.push("--json");
                }
                lab.exec("azure", &args).output().unwrap()
            };
            let table = run(false);
            let json = run(true);
            (
                json.status.code(),
                String::from_utf8_lossy(&table.stdout).into_owned(),
                serde_json::from_slice::<Value>(&json.stdout)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json.stderr))),
            )
        },
    );
    eprintln!("{table}");
    assert!(
        o.drops("forward") > 50.0 && o.drops("reverse") == 0.0,
        "{}",
        o.truth
    );
    assert_eq!(code, Some(1), "a key objective failed: exit 1\n{table}");
    let objective = |name: &str| {
        json["objectives"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {json}"))
            .clone()
    };
    let verdict = |name: &str| objective(name)["verdict"].as_str().unwrap().to_owned();
    let reasons = |name: &str| objective(name)["reasons"].to_string();
    assert_eq!(verdict("rtt-p99"), "pass", "{}", reasons("rtt-p99"));
    assert_eq!(
        verdict("forward-loss"),
        "fail",
        "{}",
        reasons("forward-loss")
    );
    assert!(
        reasons("forward-loss").contains("forward loss"),
        "{}",
        reasons("forward-loss")
    );
    assert_eq!(
        verdict("reverse-loss"),
        "pass",
        "{}",
        reasons("reverse-loss")
    );
    assert_eq!(
        verdict("rtt-p99.99"),
        "inconclusive",
        "{}",
        reasons("rtt-p99.99")
    );
    assert!(
        objective("rtt-p99.99")["need_more"]["probes"]
            .as_u64()
            .unwrap()
            > 10_000,
        "{}",
        reasons("rtt-p99.99")
    );
    // The emulator holds forward packets 2 ms and reverse ones 8 ms: with the clock
    // declared (both agents read one clock), p99 <= 5 ms holds forward and fails in
    // reverse: one-way delay judged per direction. (3 ms of margin each way: a loaded
    // 2-core machine was seen adding 1.8 ms at p99.)
    assert_eq!(verdict("forward-owd"), "pass", "{}", reasons("forward-owd"));
    assert_eq!(verdict("reverse-owd"), "fail", "{}", reasons("reverse-owd"));
}

/// `xcbench preflight` in the lab, from the azure host toward an oci agent (STAMP, TCP and
/// QUIC) behind an nftables rule that drops TCP 862: it names exactly that port as blocked,
/// with the az and oci commands that open it, sees the other ports answer, finds the link's
/// 1,400-byte MTU, and exits 1.
#[test]
fn preflight_names_the_blocked_port_and_finds_the_mtu() {
    let Some(_g) = lab_ok() else { return };
    let lab = Lab::up("xpre", &[]);
    let dir = TempDir::new("xpre");
    let (fp_az, fp_oci) = (tls_identity(&dir, "az"), tls_identity(&dir, "oci"));
    let oci: SocketAddr = "198.18.2.1:862".parse().unwrap();
    let rcfg = dir.write(
        "oci.toml",
        &(agent_toml("oci", "oci", oci, "http://198.18.1.1:9", &[], "1s").replace(
            "\n[collector]\nurl = \"http://198.18.1.1:9\"\nreport_interval = \"200ms\"\n",
            "\n",
        ) + &tls_section(&dir, "oci", &[&fp_az])),
    );
    let _oci = Proc::spawn(
        "oci agent",
        &mut lab.exec("oci", &[bin(), "agent", "--config", rcfg.to_str().unwrap()]),
    );
    let pcfg = dir.write(
        "az.toml",
        &(agent_toml(
            "az",
            "azure",
            "198.18.1.1:862".parse().unwrap(),
            "http://198.18.1.1:9",
            &[("oci", "oci", oci)],
            "1s",
        ) + &format!("protocols = [\"udp\", \"tcp\", \"quic\"]\nfingerprint = \"{fp_oci}\"\n")
            + &tls_section(&dir, "az", &[])),
    );
    let nft = |args: &str| {
        let out = lab
            .exec("oci", &["sh", "-c", &format!("nft {args}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nft {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    nft("add table inet xcbench_preflight");
    nft("'add chain inet xcbench_preflight input { type filter hook input priority 0; }'");
    nft("add rule inet xcbench_preflight input tcp dport 862 drop");
    let preflight = || {
        lab.exec(
            "azure",
            &[
                bin(),
                "preflight",
                "--config",
                pcfg.to_str().unwrap(),
                "--timeout",
                "500ms",
            ],
        )
        .output()
        .unwrap()
    };
    // The oci agent may still be starting: until STAMP answers.
    let out = wait_for(Duration::from_secs(20), || {
        let out = preflight();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.contains("udp/862") && l.contains(" ok "))
            .then_some(out)
    })
    .expect("STAMP answers in the lab");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no {start} line: {text}"))
            .to_owned()
    };
    assert!(
        line("tcp/862").contains("BLOCKED") && line("tcp/862").contains("no answer"),
        "{text}"
    );
    assert!(line("udp/863").contains(" ok "), "QUIC answers: {text}");
    assert!(
        line("path MTU").contains("1400 bytes")
            && line("path MTU").contains("ICMP told the kernel 1400"),
        "{text}"
    );
    let blocked = text
        .lines()
        .filter(|l| l.trim_start().starts_with(['t', 'u']) && l.contains(" BLOCKED "))
        .count();
    assert_eq!(blocked, 1, "only TCP 862: {text}");
    // The commands for exactly that port, both clouds' sides.
    assert_eq!(text.matches("\nTo open ").count(), 1, "{text}");
    assert!(text.contains("To open tcp/862 (TCP probes) from 198.18.1.1 to oci 198.18.2.1:"));
    assert!(
        text.contains("\"protocol\":\"6\",\"source\":\"198.18.1.1/32\""),
        "{text}"
    );
    assert!(text.contains("\"tcpOptions\":{\"destinationPortRange\":{\"min\":862,\"max\":862}}"));
    assert!(text.contains("--direction Outbound --access Allow --protocol Tcp --source-address-prefixes 198.18.1.1/32 --source-port-ranges '*' --destination-address-prefixes 198.18.2.1/32 --destination-port-ranges 862"));
    assert!(
        text.contains("security-list update"),
        "the replace-all warning: {text}"
    );
    // JSON says the same.
    let json = lab
        .exec(
            "azure",
            &[
                bin(),
                "preflight",
                "--config",
                pcfg.to_str().unwrap(),
                "--timeout",
                "500ms",
                "--json",
            ],
        )
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    let ports = v["peers"][0]["ports"].as_array().unwrap();
    let blocked: Vec<String> = ports
        .iter()
        .filter(|p| p["state"] == "silent")
        .map(|p| format!("{}/{}", p["transport"].as_str().unwrap(), p["port"]))
        .collect();
    assert_eq!(blocked, ["tcp/862"]);
    assert_eq!(v["peers"][0]["path_mtu"]["answered"], 1400);
}

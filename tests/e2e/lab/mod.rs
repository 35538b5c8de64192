//! xcbench held to the lab's ground truth: agents in the lab's namespaces, a collector, known
//! impairments from the emulator, and assertions with stated tolerances. One prober (azure)
//! and one reflector (oci), so every UDP packet forward is a probe and every UDP packet in
//! reverse is a reply: counts must match the emulator's exactly. Root only: skipped with the
//! reason without CAP_NET_ADMIN, a failure under XCBENCH_REQUIRE_NETNS=1.
//!
//! # Layout
//! - this file: the lab case (a lab, a collector, a prober and a reflector) and its
//!   observations against the truth; tolerances.
//! - `impairment`: delay, jitter, loss, bursts, reordering, duplication, MTU (STAMP over UDP).
//! - `ecmp`: two equal-cost paths; flows show both, one flow shows one.
//! - `tcp`: TCP probes.
//! - `quic`: QUIC probes.
//! - `throughput`: throughput tests, on demand and scheduled.
//! - `mesh`: crash recovery of a lab mesh and cleanup.
//! - `gate`: `xcbench gate` on known impairments.
//! - `preflight`: `xcbench preflight`: a blocked port and the MTU.

mod ecmp;
mod gate;
mod impairment;
mod mesh;
mod preflight;
mod quic;
mod tcp;
mod throughput;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::agents::agent_toml;
use crate::support::machine;
use crate::support::metrics::{parse_metrics, sample};
use crate::support::netns::{metrics_in, netns_available};
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::tls::{tls_identity, tls_section};

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

    /// `nft ARGS` (a shell line: quote what the shell must not read) in `host`'s namespace;
    /// its output. A failure fails the test.
    fn nft(&self, host: &str, args: &str) -> String {
        let out = self
            .exec(host, &["sh", "-c", &format!("nft {args}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nft {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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
        |_, _, _, _| (),
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
    then: impl FnOnce(&Lab, SocketAddr, &TempDir, Ran) -> T,
) -> (Outcome, T) {
    let case = Case {
        lab_name,
        sets,
        secs,
        restart: None,
        outage: None,
        outage_match: "",
        collector_toml: "",
    };
    run_case_restarting(case, peer_extra, agent_extra, agent_section, then)
}

/// A lab case's link and schedule: `secs` of probing, and optionally the reflector killed
/// `restart.0` seconds in and started again `restart.1` seconds later, or every probe
/// dropped on its way in (nftables in the oci namespace) from the first whole second after
/// `outage.0` seconds for `outage.1` seconds (only those probes `outage_match` also matches,
/// when given: an nftables expression such as `numgen random mod 100 < 5`);
/// `collector_toml` lines go to the collector's configuration.
struct Case<'a> {
    lab_name: &'a str,
    sets: &'a [&'a str],
    secs: u64,
    restart: Option<(u64, u64)>,
    outage: Option<(u64, u64)>,
    outage_match: &'a str,
    collector_toml: &'a str,
}

/// Whole Unix seconds (as `--from`/`--to` take them) inside a run: from a second after the
/// prober started to its stop. Slots of 1 s then lie wholly inside (but the first: its
/// first report was measured from before `from`).
struct Ran {
    from: String,
    to: String,
    /// When the outage ended (a whole Unix second), and the probes it dropped.
    outage: Option<(u64, u64)>,
}

/// As [`run_case_then`], for any [`Case`].
fn run_case_restarting<T>(
    case: Case,
    peer_extra: &str,
    agent_extra: &str,
    agent_section: &str,
    then: impl FnOnce(&Lab, SocketAddr, &TempDir, Ran) -> T,
) -> (Outcome, T) {
    let Case {
        lab_name,
        sets,
        secs,
        restart,
        outage,
        outage_match,
        collector_toml,
    } = case;
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
        // 1 s history slots: a gate over a few seconds of the run reads whole slots.
        &format!(
            "listen = \"{collector}\"\nwindow = \"1h\"\nplain_http = true\nwindow_summaries = [\"rtt\", \"one_way_forward\", \"one_way_reverse\"]\nhistory = [{{ slot = \"1s\", keep = \"1h\" }}]\n{collector_toml}\n"
        ),
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
    let spawn_reflector = || {
        Proc::spawn(
            "oci agent",
            &mut lab.exec("oci", &[bin(), "agent", "--config", rcfg.to_str().unwrap()]),
        )
    };
    let mut reflector = spawn_reflector();
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
    let unix_s = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let started = unix_s();
    let prober = Proc::spawn(
        "az agent",
        &mut lab.exec(
            "azure",
            &[bin(), "agent", "--config", pcfg.to_str().unwrap()],
        ),
    );
    let mut outage_seen = None;
    match (restart, outage) {
        (None, None) => std::thread::sleep(Duration::from_secs(secs)),
        (_, Some((after, down))) => {
            std::thread::sleep(Duration::from_secs(after));
            let nft = |args: &str| lab.nft("oci", args);
            nft("add table inet xcbench_outage");
            nft("add counter inet xcbench_outage dropped");
            nft("'add chain inet xcbench_outage input { type filter hook input priority 0; }'");
            // From a whole second, so a window can end exactly where the outage does.
            let begin = unix_s().ceil();
            std::thread::sleep(Duration::from_secs_f64((begin - unix_s()).max(0.0)));
            nft(&format!(
                "'add rule inet xcbench_outage input udp dport 862 {outage_match} counter name dropped drop'"
            ));
            let end = begin as u64 + down;
            std::thread::sleep(Duration::from_secs_f64((end as f64 - unix_s()).max(0.0)));
            // The rule goes first, then the count is read: it holds every drop.
            nft("flush chain inet xcbench_outage input");
            let listed = nft("list counter inet xcbench_outage dropped");
            nft("delete table inet xcbench_outage");
            let dropped = listed
                .split("packets ")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no counter in {listed}"));
            outage_seen = Some((end, dropped));
            std::thread::sleep(Duration::from_secs_f64(
                (started + secs as f64 - unix_s()).max(0.0),
            ));
        }
        (Some((after, down)), None) => {
            std::thread::sleep(Duration::from_secs(after));
            // Killed, as a crash or a host restart would.
            drop(reflector);
            std::thread::sleep(Duration::from_secs(down));
            reflector = spawn_reflector();
            std::thread::sleep(Duration::from_secs(secs.saturating_sub(after + down)));
        }
    }
    let ran = Ran {
        from: format!("{}", (started + 1.0).ceil()),
        to: format!("{}", unix_s().floor()),
        outage: outage_seen,
    };
    terminate_all(vec![prober]);
    terminate_all(vec![reflector]);
    let text = metrics_in(&format!("{lab_name}-azure"), collector);
    let truth = lab.truth();
    let after = then(&lab, collector, &dir, ran);
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
fn lab_ok() -> Option<machine::Alone> {
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

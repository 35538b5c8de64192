//! `xcbench gate --measure`: no collector; the gate runs the configured agent toward its
//! peer and judges what it measured.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::{gate, slo, verdicts, FAIL, PASS};
use crate::support::machine;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, TempDir};

/// `--measure`: no collector; the gate runs the agent of a configuration toward its peer
/// (a reflector in another process) and judges what it measured.
#[test]
fn gate_measure_probes_the_peers_itself() {
    let _turn = machine::shared();
    let dir = TempDir::new("gate-measure");
    let (a, b): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], free_udp_port()).into(),
        ([127, 0, 0, 1], free_udp_port()).into(),
    );
    // Nobody collects for the far side: its reports go nowhere, which it survives.
    let nowhere = format!("http://127.0.0.1:{}", free_tcp_port());
    let far = dir.write(
        "oci.toml",
        &crate::support::agents::agent_toml("oci-1", "oci", b, &nowhere, &[], "5ms"),
    );
    let _reflector = crate::support::proc::Proc::spawn(
        "oci agent",
        Command::new(bin()).args(["agent", "--config"]).arg(&far),
    );
    let near = dir.write(
        "az.toml",
        &crate::support::agents::agent_toml(
            "az-1",
            "azure",
            a,
            &nowhere,
            &[("oci-1", "oci", b)],
            "5ms",
        ),
    );
    let slo_file = dir.write("slo.yaml", &slo(&[PASS, FAIL]));
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = gate(
        &[
            "--slo",
            slo_file.to_str().unwrap(),
            "--measure",
            "5s",
            "-c",
            near.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    eprintln!("{out}\n{err}");
    assert_eq!(code, 1, "the 1 us objective fails\n{err}");
    let v = verdicts(&out);
    let names: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        names,
        [
            ("loss", "pass"),
            ("rtt-p99", "pass"),
            ("rtt-p50-1us", "fail")
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = json["objectives"][0]["samples"].as_u64().unwrap();
    // 5 s at 5 ms: about 1,000 probes (the first ones wait for the sockets).
    assert!((800..=1_100).contains(&n), "{n} probes");
    assert!(
        json["source"]
            .as_str()
            .unwrap()
            .starts_with("measured 5s toward the peers of "),
        "{}",
        json["source"]
    );
}

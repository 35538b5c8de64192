//! `xcbench preflight` in the lab: a blocked port named with the commands that open it, and
//! the link's MTU found.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use super::{lab_ok, Lab};
use crate::support::agents::agent_toml;
use crate::support::proc::{bin, Proc, TempDir};
use crate::support::tls::{tls_identity, tls_section};
use crate::support::wait_for;

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
        lab.nft("oci", args);
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

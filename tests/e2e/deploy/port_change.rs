//! A port changed in a mesh moves every reader of the fleet's plan alike: `mesh check`,
//! `mesh rules`, the scripts' NSG rules and `xcbench preflight`.

use std::collections::BTreeSet;
use std::process::Command;

use super::{arg, calls, oci_args, script, stand_ins};
use crate::support::machine;
use crate::support::proc::{bin, TempDir};
use crate::support::tls::{tls_identity, tls_section};

/// instead of 862, and `xcbench mesh check`, `mesh rules`, the OCI script's NSG rules and
/// `xcbench preflight` (from an agent whose peers come from that mesh) all name 9100 to 9103
/// where they named 862 to 865. `mesh rules` is the reference; the others are held to it.
#[test]
fn a_port_change_in_the_mesh_moves_mesh_check_preflight_and_the_scripts() {
    let _turn = machine::shared();
    let dir = TempDir::new("deploy-ports");
    let stand_in = stand_ins(&dir);
    tls_identity(&dir, "az-1");
    let pin = format!("sha256:{}", "ab".repeat(32));
    let mesh = dir.write(
        "mesh.toml",
        &format!(
            "[mesh]\ncollector = \"http://127.0.0.1:9\"\nallow_loopback = true\n\n[mesh.probe]\nprotocols = [\"udp\", \"tcp\", \"quic\"]\n\n[mesh.schedule]\nevery = \"1h\"\nduration = \"10s\"\nprotocols = [\"tcp\"]\n\n[azure]\naddress_space = [\"127.0.0.1/32\"]\n\n[[azure.agents]]\nid = \"az-1\"\nregion = \"eastus\"\naddress = \"127.0.0.1\"\nfingerprint = \"{pin}\"\n\n[oci]\naddress_space = [\"127.0.0.2/31\"]\n\n[[oci.agents]]\nid = \"oci-1\"\nregion = \"us-ashburn-1\"\naddress = \"127.0.0.2\"\nfingerprint = \"{pin}\"\n\n[[oci.agents]]\nid = \"oci-2\"\nregion = \"us-ashburn-1\"\naddress = \"127.0.0.3:9100\"\nfingerprint = \"{pin}\"\n"
        ),
    );
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mesh_s = mesh.to_str().unwrap();

    // The reference: OCI's inbound rules, as (transport, port, purpose in words).
    let (code, lines, err) = run(&["mesh", "rules", mesh_s, "--side", "oci"]);
    assert_eq!(code, Some(0), "{err}");
    let mut planned: BTreeSet<(String, u16, String)> = BTreeSet::new();
    for l in lines.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 8, "{l:?}");
        assert_eq!(f[0], "oci");
        if f[1] != "inbound" || f[4] == "collector" {
            continue;
        }
        for port in f[3].split(',') {
            planned.insert((f[2].to_owned(), port.parse().unwrap(), f[7].to_owned()));
        }
    }
    let ports: BTreeSet<u16> = planned.iter().map(|p| p.1).collect();
    assert_eq!(
        ports,
        BTreeSet::from([862, 863, 864, 865, 9100, 9101, 9102, 9103]),
        "{lines}"
    );
    let (_, json, _) = run(&["mesh", "rules", mesh_s, "--side", "oci", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["sides"].as_array().unwrap().len(), 1);
    assert_eq!(json["sides"][0]["rules"][0]["purpose"], "stamp");
    assert_eq!(
        json["sides"][0]["rules"][0]["ports"],
        serde_json::json!([862, 9100])
    );

    // mesh check lists the same rules.
    let (code, check, err) = run(&["mesh", "check", mesh_s]);
    assert_eq!(code, Some(0), "{err}");
    let oci_part = check.split("\n  oci (").nth(1).expect("oci's rules");
    for l in lines.lines().filter(|l| l.contains("\tinbound\t")) {
        let f: Vec<&str> = l.split('\t').collect();
        let want = format!("inbound  {} {:<6} from", f[2], f[3]);
        assert!(
            oci_part
                .lines()
                .any(|c| c.contains(&want) && c.ends_with(f[7])),
            "mesh check lacks {want:?} {}: {check}",
            f[7]
        );
    }

    // The OCI script adds exactly those rules.
    let mut args = oci_args(mesh_s, "oci-2");
    args.push("--run");
    script(&dir, &stand_in, "oci-instance", &args);
    let made = calls(&dir);
    let added: serde_json::Value = serde_json::from_str(arg(&made[1], "--security-rules")).unwrap();
    let added: BTreeSet<(String, u16, String)> = added
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (transport, options) = match r["protocol"].as_str() {
                Some("6") => ("tcp", &r["tcpOptions"]),
                _ => ("udp", &r["udpOptions"]),
            };
            let port = options["destinationPortRange"]["min"].as_u64().unwrap() as u16;
            let text = r["description"].as_str().unwrap();
            let purpose = text
                .strip_prefix("xcbench ")
                .and_then(|t| t.split(&format!(" {transport}/{port} ")).next())
                .unwrap();
            (transport.to_owned(), port, purpose.to_owned())
        })
        .collect();
    assert_eq!(added, planned);

    // Preflight from az-1 checks oci-2's ports where the plan puts them (each port once,
    // nothing sent but to loopback; the closed ports are refused at once).
    let cfg = dir.write(
        "az-1.toml",
        &(format!("[agent]\nid = \"az-1\"\nmesh = \"{mesh_s}\"\n")
            + &tls_section(&dir, "az-1", &[])),
    );
    let (code, report, err) = run(&[
        "preflight",
        "--config",
        cfg.to_str().unwrap(),
        "--timeout",
        "200ms",
        "--json",
    ]);
    assert_eq!(code, Some(1), "closed ports fail preflight: {report}{err}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let oci2 = report["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "oci-2")
        .expect("oci-2 checked");
    let checked: BTreeSet<(String, u16)> = oci2["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["transport"].as_str().unwrap().to_owned(),
                p["port"].as_u64().unwrap() as u16,
            )
        })
        .collect();
    assert_eq!(
        checked,
        BTreeSet::from([
            ("udp".to_owned(), 9100),
            ("tcp".to_owned(), 9100),
            ("udp".to_owned(), 9101),
            ("tcp".to_owned(), 9102),
        ]),
        "{oci2}"
    );
    let in_plan: BTreeSet<(String, u16)> = planned.iter().map(|p| (p.0.clone(), p.1)).collect();
    assert!(
        checked.is_subset(&in_plan),
        "{checked:?} not in {in_plan:?}"
    );
    let quic = oci2["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == 9101)
        .unwrap();
    assert_eq!(
        quic["purpose"],
        "QUIC probes and throughput tests: control (QUIC)"
    );
}

//! `xcbench preflight` on loopback (no root): every port of a running agent answers and the
//! host is ready (exit 0); a peer where nothing listens is "closed", told apart from a
//! blocked port and given no firewall commands (exit 1); a public address fails without a
//! packet sent. The blocked-port case with its commands and the path MTU run in the lab
//! (`lab::preflight::preflight_names_the_blocked_port_and_finds_the_mtu`).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::agents::agent_toml;
use crate::support::machine;
use crate::support::ports::free_udp_port;
use crate::support::proc::{bin, Proc, TempDir};
use crate::support::wait_for;

fn preflight(cfg: &std::path::Path) -> (i32, String) {
    let out = Command::new(bin())
        .args(["preflight", "--timeout", "300ms", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn preflight_tells_ready_closed_and_public_apart() {
    let _turn = machine::shared();
    let dir = TempDir::new("preflight");
    let port = free_udp_port();
    let oci: SocketAddr = ([127, 0, 0, 1], port).into();
    let cfg = dir.write(
        "oci.toml",
        &agent_toml("oci-1", "oci", oci, "http://127.0.0.1:9", &[], "1s"),
    );
    let _agent = Proc::spawn(
        "oci agent",
        Command::new(bin()).args(["agent", "--config"]).arg(&cfg),
    );
    let closed: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let with_peer = |name: &str, peer: &str| {
        dir.write(
            name,
            &(agent_toml(
                "az-1",
                "azure",
                ([127, 0, 0, 1], free_udp_port()).into(),
                "http://127.0.0.1:9",
                &[("oci-1", "oci", peer.parse().unwrap())],
                "1s",
            ) + "protocols = [\"udp\", \"tcp\"]\n"),
        )
    };
    let ready = with_peer("ready.toml", &oci.to_string());
    let (code, text) = wait_for(Duration::from_secs(10), || {
        let r = preflight(&ready);
        (r.0 == 0).then_some(r)
    })
    .expect("preflight toward a running agent is ready");
    assert_eq!(code, 0);
    assert!(text.contains("loopback (tests only)"), "{text}");
    let ok_line = |p: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(p) && l.contains(" ok "))
    };
    assert!(
        ok_line(&format!("udp/{port}")) && ok_line(&format!("tcp/{port}")),
        "{text}"
    );
    assert!(
        text.contains("9028 bytes or more (STAMP packets stop at 9,000 bytes; interface 65535)"),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with("ready: every peer's ports answer"),
        "{text}"
    );

    let (code, text) = preflight(&with_peer("closed.toml", &closed.to_string()));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("closed: the host refused it"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with(['t', 'u']) && l.contains(" BLOCKED "))
            && !text.contains("To open"),
        "no rule fixes a missing listener: {text}"
    );

    // TEST-NET-3: public, so not one packet goes there.
    let (code, text) = preflight(&with_peer("public.toml", "203.0.113.7:862"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("PUBLIC: the interconnect carries private addresses only"),
        "{text}"
    );
    assert!(!text.contains("udp/862"), "nothing was probed: {text}");
}

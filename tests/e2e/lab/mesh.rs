//! A mesh of lab hosts: agents that crash and recover, and `lab down` leaving nothing behind.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::{lab_ok, Lab};
use crate::support::netns::enter;
use crate::support::proc::bin;
use crate::support::wait_for;

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

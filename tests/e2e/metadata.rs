//! `cloud = "auto"` with the real binary: a loopback stand-in for Azure IMDS and for OCI
//! IMDSv2 (each refusing requests without its header), the labels the collector shows, the
//! start log; and no metadata service (a closed port, one that never answers): exit code 2
//! within seconds, naming both endpoints.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::agents::spawn_collector;
use crate::support::http::http_get;
use crate::support::machine;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, Proc, TempDir};
use crate::support::wait_for;

/// What the stand-in answers a request head with: status and body, or `None` to hold the
/// connection without answering.
type Respond = fn(&str) -> Option<(u16, &'static str)>;

/// A metadata service on loopback; stops on drop.
struct Imds {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Imds {
    fn start(respond: Respond) -> Imds {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let stopped = stopped.clone();
                        std::thread::spawn(move || answer(s, respond, &stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Imds { addr, stop }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Imds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(mut s: TcpStream, respond: Respond, stop: &AtomicBool) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    match respond(&String::from_utf8_lossy(&head)) {
        Some((status, body)) => {
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        None => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The request's path and whether it carries `name: value` (names case-insensitive).
fn request(head: &str, name: &str, value: &str) -> (String, bool) {
    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
    let has = head.split("\r\n").skip(1).any(|l| {
        l.split_once(':')
            .is_some_and(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim() == value)
    });
    (path, has)
}

const AZURE: &str = r#"{"compute": {"location": "westeurope", "zone": "2", "name": "app7", "vmSize": "Standard_D2s_v5", "platformFaultDomain": "1"}, "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": "10.10.0.7", "publicIpAddress": ""}], "subnet": [{"address": "10.10.0.0", "prefix": "24"}]}, "ipv6": {"ipAddress": []}, "macAddress": "000D3A000007"}]}}"#;

/// Azure IMDS: the instance document with `Metadata: true`, 400 without it.
fn azure(head: &str) -> Option<(u16, &'static str)> {
    match request(head, "Metadata", "true") {
        (p, true) if p == "/metadata/instance?api-version=2021-02-01" => Some((200, AZURE)),
        (p, false) if p.starts_with("/metadata/") => Some((400, r#"{"error": "Bad request"}"#)),
        _ => Some((404, "")),
    }
}

const OCI: &str = r#"{"availabilityDomain": "Uocm:EU-FRANKFURT-1-AD-3", "faultDomain": "FAULT-DOMAIN-1", "displayName": "db7", "region": "fra", "canonicalRegionName": "eu-frankfurt-1", "shape": "VM.Standard.E5.Flex", "state": "Running"}"#;
const VNICS: &str = r#"[{"vnicId": "ocid1.vnic.oc1.eu-frankfurt-1.example", "privateIp": "10.20.0.7", "vlanTag": 0, "macAddr": "02:00:17:00:00:07", "virtualRouterIp": "10.20.0.1", "subnetCidrBlock": "10.20.0.0/24"}]"#;

/// OCI IMDSv2: the instance and VNICs documents with `Authorization: Bearer Oracle`, 401
/// without it.
fn oci(head: &str) -> Option<(u16, &'static str)> {
    match request(head, "Authorization", "Bearer Oracle") {
        (p, true) if p == "/opc/v2/instance/" => Some((200, OCI)),
        (p, true) if p == "/opc/v2/vnics/" => Some((200, VNICS)),
        (p, false) if p.starts_with("/opc/") => Some((401, "")),
        _ => Some((404, "")),
    }
}

/// An agent with `cloud = "auto"` reading metadata at `metadata_url`, on loopback.
fn auto_agent_toml(id: &str, metadata_url: &str, collector: &str) -> String {
    let listen = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    format!(
        "[agent]\nid = \"{id}\"\ncloud = \"auto\"\nmetadata_url = \"{metadata_url}\"\n\n[reflector]\nlisten = [\"{listen}\"]\n\n[collector]\nurl = \"{collector}\"\nreport_interval = \"200ms\"\n"
    )
}

/// Runs an auto agent against `imds` until the collector shows `labels` for it; returns the
/// agent's log.
fn labels_reach_the_collector(id: &str, imds: &Imds, labels: &str) -> String {
    let dir = TempDir::new("imds");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let _collector = spawn_collector(&dir, addr, "");
    let cfg = dir.write(
        "agent.toml",
        &auto_agent_toml(id, &imds.url(), &format!("http://{addr}")),
    );
    // The start log is read as plain text.
    let agent = Proc::spawn(
        "agent",
        Command::new(bin())
            .env("NO_COLOR", "1")
            .args(["agent", "--config"])
            .arg(&cfg),
    );
    let want = format!("agent=\"{id}\",{labels}");
    let seen = wait_for(Duration::from_secs(15), || {
        http_get(addr, "/metrics").filter(|(status, text)| *status == 200 && text.contains(&want))
    });
    // The binary installs its SIGTERM handler once the agent runs (after the first
    // report): give it a few report intervals before asking it to stop.
    std::thread::sleep(Duration::from_millis(600));
    let out = agent.terminate(Duration::from_secs(10));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(seen.is_some(), "no {want} in /metrics; agent log:\n{log}");
    assert!(out.status.success(), "{:?}: {log}", out.status);
    log
}

#[test]
fn azure_imds_labels_the_agent() {
    let _turn = machine::shared();
    let imds = Imds::start(azure);
    // The stand-in refuses what Azure refuses: a request without `Metadata: true`.
    let plain = http_get(imds.addr, "/metadata/instance?api-version=2021-02-01");
    assert_eq!(plain.map(|r| r.0), Some(400));
    let log = labels_reach_the_collector("az-auto", &imds, "cloud=\"azure\",region=\"westeurope\"");
    for part in [
        "labels from instance metadata",
        "zone=2",
        "Standard_D2s_v5",
        "10.10.0.7",
    ] {
        assert!(log.contains(part), "{part:?} not in the log:\n{log}");
    }
}

#[test]
fn oci_imdsv2_labels_the_agent() {
    let _turn = machine::shared();
    let imds = Imds::start(oci);
    let plain = http_get(imds.addr, "/opc/v2/instance/");
    assert_eq!(plain.map(|r| r.0), Some(401));
    let log =
        labels_reach_the_collector("oci-auto", &imds, "cloud=\"oci\",region=\"eu-frankfurt-1\"");
    for part in [
        "zone=EU-FRANKFURT-1-AD-3",
        "VM.Standard.E5.Flex",
        "FAULT-DOMAIN-1",
        "10.20.0.7",
    ] {
        assert!(log.contains(part), "{part:?} not in the log:\n{log}");
    }
}

/// Runs an auto agent against `url` and waits (bounded) for it to exit.
fn run_without_metadata(url: &str) -> (Output, Duration) {
    let dir = TempDir::new("imds-none");
    let cfg = dir.write(
        "agent.toml",
        &auto_agent_toml("lost", url, "http://127.0.0.1:9"),
    );
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(["agent", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the agent still runs 10 s after start without metadata");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    (child.wait_with_output().unwrap(), elapsed)
}

#[test]
fn no_metadata_service_exits_2_naming_both_endpoints() {
    let _turn = machine::shared();
    let closed = format!("http://127.0.0.1:{}", free_tcp_port());
    let silent = Imds::start(|_| None);
    for (url, why) in [
        (closed, "connect: "),
        (silent.url(), "no complete answer within 2s"),
    ] {
        let (out, elapsed) = run_without_metadata(&url);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(elapsed < Duration::from_secs(6), "{elapsed:?}: {err}");
        let azure = format!("agent.cloud = \"auto\": no instance metadata: Azure IMDS {url}/metadata/instance: {why}");
        let oci = format!("; OCI IMDSv2 {url}/opc/v2/instance/: {why}");
        assert!(err.contains(&azure), "{azure:?} not in:\n{err}");
        assert!(err.contains(&oci), "{oci:?} not in:\n{err}");
        assert!(
            err.contains("; set cloud, region (and zone) by hand"),
            "{err}"
        );
    }
}

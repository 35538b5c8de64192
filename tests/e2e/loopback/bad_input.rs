//! Bad input: datagrams the agents must not answer and snapshots the collector must refuse,
//! each counted.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use super::{drain, metrics};
use crate::support::agents::{agent_toml, ready_collector};
use crate::support::http::{http_get, http_post};
use crate::support::metrics::sample;
use crate::support::ports::free_udp_port;
use crate::support::proc::{bin, Proc, TempDir};
use crate::support::{machine, wait_for};

#[test]
fn bad_datagrams_and_bad_snapshots_are_counted_and_refused() {
    let _turn = machine::shared();
    let dir = TempDir::new("bad");
    let (_collector, addr) = ready_collector(&dir, "");
    let refl: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let acfg = dir.write(
        "a.toml",
        &agent_toml(
            "az-1",
            "azure",
            refl,
            &format!("http://{addr}"),
            &[],
            "10ms",
        ),
    );
    let agent = Proc::spawn(
        "agent",
        Command::new(bin()).args(["agent", "--config"]).arg(&acfg),
    );

    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // The reflector may still be starting: retry a valid packet until it answers.
    let mut valid = vec![0u8; 44];
    valid[3] = 7;
    let reply = wait_for(Duration::from_secs(10), || {
        probe.send_to(&valid, refl).ok()?;
        let mut buf = [0u8; 2048];
        let (n, _) = probe.recv_from(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    })
    .expect("reflector answers a valid STAMP packet");
    assert_eq!(reply.len(), 44);
    assert_eq!(&reply[24..28], &[0, 0, 0, 7], "sender sequence reflected");
    let answered_before = 1 + drain(&probe);

    for bad in [
        vec![],
        vec![1u8; 10],
        vec![2u8; 43],
        vec![3u8; 9_001],
        vec![4u8; 20_000],
    ] {
        probe.send_to(&bad, refl).unwrap();
    }
    let mut padded = vec![0u8; 300];
    padded[3] = 8;
    probe.send_to(&padded, refl).unwrap();
    let mut buf = [0u8; 65_536];
    let (n, _) = probe
        .recv_from(&mut buf)
        .expect("reply to the padded packet");
    assert_eq!(
        n, 300,
        "symmetric size: reply as long as the request, never longer"
    );
    assert_eq!(buf[27], 8);
    assert_eq!(
        drain(&probe),
        0,
        "malformed and oversized datagrams get no reply"
    );

    let out = agent.terminate(Duration::from_secs(10));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, m) = metrics(addr);
    assert_eq!(
        sample(
            &m,
            "xcbench_reflector_reflected_total",
            &["agent=\"az-1\"", "protocol=\"udp\""]
        ),
        Some(answered_before as f64 + 1.0)
    );
    // An empty datagram, 10 and 43 bytes (short), 9001 and 20000 (oversized).
    assert_eq!(
        sample(
            &m,
            "xcbench_reflector_malformed_total",
            &["agent=\"az-1\"", "protocol=\"udp\""]
        ),
        Some(5.0)
    );

    let (status, body) = http_post(addr, "/api/v1/snapshots", b"{not json").unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("not valid JSON"), "{body}");
    let bad_hdr = br#"{"format":1,"agent":{"id":"x","cloud":"azure","region":"r"},"instance":1,"seq":1,"interval_start_unix_ns":0,"interval_end_unix_ns":0,"series":[{"peer":{"id":"y","cloud":"oci","region":"r"},"protocol":"udp","kind":"stamp","timestamping":"kernel","counters":{"sent":1,"received":0,"lost":0,"lost_forward":0,"lost_reverse":0,"duplicated":0,"reordered":0,"late":0},"histograms":[{"metric":"rtt","count":1,"sum_ns":1,"hdr":"AAAA"}]}]}"#;
    let (status, body) = http_post(addr, "/api/v1/snapshots", bad_hdr).unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("series[0].histograms[0].hdr"), "{body}");
    let huge = vec![b' '; 17 * 1024 * 1024];
    let (status, _) = http_post(addr, "/api/v1/snapshots", &huge).unwrap_or((413, String::new()));
    assert_eq!(status, 413);
    assert_eq!(
        http_get(addr, "/healthz").unwrap().0,
        200,
        "collector keeps serving"
    );
    let (_, m) = metrics(addr);
    assert_eq!(
        sample(
            &m,
            "xcbench_collector_snapshots_total",
            &["result=\"rejected\""]
        ),
        Some(2.0)
    );
}

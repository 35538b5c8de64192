//! The STAMP reflector under a flood: one source (127.0.0.2) sends valid test packets at
//! about 100,000 per second while a well-behaved agent (127.0.0.1) probes the same reflector
//! every 5 ms. The flood is answered at the per-source limit only and counted
//! (`xcbench_reflector_rate_limited_total`), the reflector sends fewer bytes than it takes,
//! and the other agent's loss and RTT p99 (the collector's 2 s window) stay what they were
//! before the flood. `XCBENCH_FLOOD_SECS` sets the flood's length (default 3 s; the closing
//! figures in docs/agents-and-mesh.md are from a 10 s run).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use xcbench_agent::wire::{ErrorEstimate, TestPacket, Timestamp};

use super::metrics;
use crate::support::agents::{ready_collector, spawn_pair};
use crate::support::metrics::sample;
use crate::support::ports::free_udp_port;
use crate::support::proc::{bin, terminate_all, TempDir};
use crate::support::{machine, wait_for};

/// The flood: packets per second, per 1 ms batch, and each packet's length.
const FLOOD_PPS: u64 = 100_000;
const BATCH: u64 = FLOOD_PPS / 1_000;
const FLOOD_LEN: usize = 128;
/// The reflector's per-source limit (its default) and the burst it lets through.
const PER_SOURCE: u64 = 2_000;
const BURST: u64 = PER_SOURCE / 10;

#[derive(Debug, Default)]
struct Flood {
    packets_out: u64,
    bytes_out: u64,
    replies: u64,
    bytes_back: u64,
    took: Duration,
}

#[test]
fn a_flood_is_limited_and_another_sender_is_undisturbed() {
    let secs: u64 = std::env::var("XCBENCH_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .clamp(2, 10);
    let _turn = machine::alone();
    let dir = TempDir::new("flood");
    let (collector, addr) = ready_collector(&dir, "window = \"2s\"\nwindow_slot = \"250ms\"\n");
    let url = format!("http://{addr}");
    let [a, b]: [SocketAddr; 2] = std::array::from_fn(|_| ([127, 0, 0, 1], free_udp_port()).into());
    let agents = spawn_pair(
        &dir,
        &url,
        [a, b],
        "5ms",
        [Command::new(bin()), Command::new(bin())],
    );
    let pair = [
        "src_agent=\"az-1\"",
        "dst_agent=\"oci-1\"",
        "kind=\"stamp\"",
    ];
    let p99 = |m: &BTreeMap<String, f64>| {
        let mut sel = pair.to_vec();
        sel.push("quantile=\"0.99\"");
        sample(m, "xcbench_rtt_window_seconds", &sel).expect("az-1 -> oci-1 p99")
    };
    let count = |m: &BTreeMap<String, f64>, name: &str| sample(m, name, &pair).unwrap_or(0.0);
    // A baseline of the window's length once the pair measures.
    wait_for(Duration::from_secs(10), || {
        (count(&metrics(addr).1, "xcbench_probes_received_total") > 0.0).then_some(())
    })
    .expect("az-1 measures oci-1");
    std::thread::sleep(Duration::from_millis(2_500));
    let (_, before) = metrics(addr);

    let flood = std::thread::spawn(move || flood(b, Duration::from_secs(secs)));
    // The window read at the flood's end holds only probes sent during it.
    std::thread::sleep(Duration::from_secs(secs) - Duration::from_millis(150));
    let (_, during) = metrics(addr);
    let flood = flood.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    terminate_all(agents);
    let (_, after) = metrics(addr);

    let delta = |name: &str, from: &BTreeMap<String, f64>| count(&after, name) - count(from, name);
    let (sent, lost) = (
        delta("xcbench_probes_sent_total", &before),
        delta("xcbench_probes_lost_total", &before),
    );
    let reflector = |name: &str, m: &BTreeMap<String, f64>| {
        sample(m, name, &["agent=\"oci-1\""]).unwrap_or_else(|| panic!("{name}"))
    };
    let limited = reflector("xcbench_reflector_rate_limited_total", &after)
        - reflector("xcbench_reflector_rate_limited_total", &before);
    let (p99_before, p99_during) = (p99(&before), p99(&during));
    let answered_pps = flood.replies as f64 / flood.took.as_secs_f64();
    eprintln!(
        "flood: {} packets ({} bytes) in {:.2} s ({:.0}/s) from 127.0.0.2; answered {} ({} bytes, {answered_pps:.0}/s); \
         counted rate-limited {limited}; az-1 -> oci-1: {sent} probes after the baseline, {lost} lost; \
         p99 before {:.1} us, during {:.1} us",
        flood.packets_out,
        flood.bytes_out,
        flood.took.as_secs_f64(),
        flood.packets_out as f64 / flood.took.as_secs_f64(),
        flood.replies,
        flood.bytes_back,
        p99_before * 1e6,
        p99_during * 1e6,
    );

    // The flood was one: most of what was asked was sent.
    assert!(
        flood.packets_out * 10 >= FLOOD_PPS * secs * 9,
        "the flood sent only {} packets",
        flood.packets_out
    );
    // Answered at the limit (its burst once), counted, and never amplified.
    let most = PER_SOURCE as f64 * flood.took.as_secs_f64() + BURST as f64 + 5.0;
    assert!(
        (flood.replies as f64) <= most && flood.replies as f64 >= most * 0.8,
        "the flood was answered {} times; the limit allows {most:.0}",
        flood.replies
    );
    assert!(flood.bytes_back <= flood.bytes_out / 40, "{flood:?}");
    assert!(
        limited + flood.replies as f64 <= flood.packets_out as f64
            && limited >= (flood.packets_out - flood.replies) as f64 * 0.95,
        "rate-limited {limited} of {flood:?}"
    );
    // The well-behaved sender: nothing lost to the flood, its p99 within noise.
    assert!(sent >= 200.0 * (secs as f64), "az-1 sent {sent}");
    assert!(lost <= 1.0, "az-1 lost {lost} of {sent} during the flood");
    assert!(
        p99_during <= (p99_before * 3.0).max(p99_before + 500e-6),
        "az-1 -> oci-1 p99 {:.1} us during the flood, {:.1} us before",
        p99_during * 1e6,
        p99_before * 1e6
    );
    drop(collector);
}

/// Sends valid test packets from 127.0.0.2 to `to` at [`FLOOD_PPS`] for `length` (bounded in
/// count and time), taking back whatever is answered.
fn flood(to: SocketAddr, length: Duration) -> Flood {
    let socket = UdpSocket::bind("127.0.0.2:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut packet = Vec::new();
    TestPacket {
        seq: 0,
        timestamp: Timestamp::from_unix_ns(1),
        error_estimate: ErrorEstimate::from_error_ns(1_000, false),
        ssid: 7,
        len: FLOOD_LEN,
    }
    .encode(&mut packet);
    let mut f = Flood::default();
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let batches = length.as_millis() as u64;
    for batch in 0..batches {
        let due = start + Duration::from_millis(batch);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for i in 0..BATCH {
            packet[..4].copy_from_slice(&((batch * BATCH + i) as u32).to_be_bytes());
            // A full socket buffer is a packet not sent; count only what left.
            if socket.send_to(&packet, to).is_ok() {
                f.packets_out += 1;
                f.bytes_out += packet.len() as u64;
            }
        }
        while let Ok(n) = socket.recv(&mut buf) {
            f.replies += 1;
            f.bytes_back += n as u64;
        }
    }
    f.took = start.elapsed();
    let settle = Instant::now() + Duration::from_millis(100);
    while Instant::now() < settle {
        match socket.recv(&mut buf) {
            Ok(n) => {
                f.replies += 1;
                f.bytes_back += n as u64;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    f
}

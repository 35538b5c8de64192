//! Throughput on a rate-limited lab link: TCP, UDP and QUIC tests fill it; a scheduled test
//! reaches the collector with the latency its queue adds under load.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use super::{lab_ok, near, run_case_full, Lab};
use crate::support::proc::{bin, stdout_json, Proc, TempDir};
use crate::support::tls::{tls_identity, tls_section};

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

/// A scheduled TCP test fills a 50 Mbit/s link whose queue holds 5 ms: the probes it drops
/// are lost under load, also those declared lost after the test ended (sent in its last
/// loss timeout). The drops are in `load="bench"`; the idle series, on a path that dropped
/// nothing while idle, lost nothing (before: the test's last losses went to idle).
#[test]
fn losses_at_the_end_of_a_test_belong_to_the_test() {
    let Some(_g) = lab_ok() else { return };
    let o = run_case_full(
        "xtail",
        &["delay=5ms", "rate=50mbit", "queue=5ms"],
        13,
        "",
        "\n[bench.schedule]\nevery = \"10s\"\nduration = \"4s\"\nomit = \"1s\"\nprotocols = [\"tcp\"]\n",
    );
    let lost = |load: &str| {
        o.get(
            "xcbench_probes_lost_total",
            &["kind=\"stamp\"", &format!("load=\"{load}\"")],
        )
    };
    // UDP at the queue: the probes and the agents' QUIC packets (path MTU probes among
    // them), so an upper bound on the probes dropped.
    let queued = o.udp("forward", "dropped_queue") + o.udp("reverse", "dropped_queue");
    eprintln!(
        "emulator dropped {queued} UDP packets at the queue; probes lost idle {}, under load {}",
        lost("idle"),
        lost("bench")
    );
    assert!(
        lost("bench") > 0.0,
        "the test dropped no probe: {}",
        o.truth
    );
    assert!(lost("bench") <= queued, "{}", o.truth);
    assert_eq!(lost("idle"), 0.0, "{}", o.truth);
}

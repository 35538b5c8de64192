//! STAMP authenticated mode end to end: two agents holding one key measure each other as
//! unauthenticated agents do (their counts agree with the peer's reflector), through a key
//! rotation done in the key files while they run; a third agent holding another key is
//! refused and counted, and so are a replayed and an unsealed packet the test sends
//! itself, and after the rotation a packet sealed with the retired key.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use xcbench_agent::config::stamp_keys;
use xcbench_agent::wire::stamp_auth::StampKeys;
use xcbench_agent::wire::{ErrorEstimate, ReflectedPacket, TestPacket, Timestamp};

use super::metrics;
use crate::support::agents::{agent_toml, ready_collector};
use crate::support::metrics::{check_direction, check_direction_with, sample};
use crate::support::ports::free_udp_port;
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::{machine, wait_for};

const K1: &str = "4d2a0c1e9b8f7a6d5c4b3a2918070615f4e3d2c1b0a99887766554433221100f";
const K2: &str = "00112233445566778899aabbccddeeff";
const K3: &str = "ffeeddccbbaa99887766554433221100";

#[test]
fn authenticated_pair_measures_and_strangers_and_replays_are_refused() {
    let _turn = machine::shared();
    let dir = TempDir::new("auth");
    let (collector, addr) = ready_collector(&dir, "window = \"5m\"\nwindow_slot = \"1s\"\n");
    let key_file = |name: &str, hex: &str| {
        let path = dir.write(name, &format!("# test key\n{hex}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let (k1, k3) = (key_file("k1", K1), key_file("k3", K3));
    let url = format!("http://{addr}");
    let [a, b, c]: [SocketAddr; 3] =
        std::array::from_fn(|_| ([127, 0, 0, 1], free_udp_port()).into());
    let config = |id: &str,
                  cloud: &str,
                  listen,
                  peers: &[(&str, &str, SocketAddr)],
                  key: &std::path::Path| {
        agent_toml(id, cloud, listen, &url, peers, "5ms").replace(
            "loss_timeout = \"500ms\"\n",
            &format!(
                "loss_timeout = \"500ms\"\nstamp_keys = \"{}\"\n",
                key.display()
            ),
        )
    };
    let cfgs = [
        ("a", config("az-1", "azure", a, &[("oci-1", "oci", b)], &k1)),
        ("b", config("oci-1", "oci", b, &[("az-1", "azure", a)], &k1)),
        ("c", config("az-2", "azure", c, &[("oci-1", "oci", b)], &k3)),
    ];
    let agents: Vec<Proc> = cfgs
        .iter()
        .map(|(name, text)| {
            let path = dir.write(&format!("{name}.toml"), text);
            Proc::spawn(
                &format!("agent {name}"),
                Command::new(bin()).args(["agent", "--config"]).arg(&path),
            )
        })
        .collect();

    // The test as a sender holding K1: answered once, then the same packet again (a
    // replay) is not; an unauthenticated packet of either size is not answered either.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // A key file's text read as the agent reads it.
    let keyed = |hex: &str| stamp_keys::parse(hex).unwrap();
    let keys = keyed(K1);
    let sealed = |seq: u32, keys: &StampKeys| {
        let mut buf = Vec::new();
        TestPacket {
            seq,
            timestamp: Timestamp::from_unix_ns(xcbench_agent::net::clock::now_unix_ns()),
            error_estimate: ErrorEstimate::from_error_ns(1_000, false),
            ssid: 0x5eed,
            len: 128,
        }
        .encode_authenticated(keys.current(), &mut buf);
        buf
    };
    let packet = |seq: u32| sealed(seq, &keys);
    let mut buf = [0u8; 2048];
    let mut seq = 0;
    // Each try is a new sequence number, so retries while the reflector starts are no replays.
    let first = wait_for(Duration::from_secs(10), || {
        seq += 1;
        let p = packet(seq);
        probe.send_to(&p, b).ok()?;
        let (n, _) = probe.recv_from(&mut buf).ok()?;
        Some((p, buf[..n].to_vec()))
    })
    .expect("oci-1 answers a packet sealed with its key");
    let (sent, reply) = first;
    let got = ReflectedPacket::decode_authenticated(&reply, &keys).expect("the reply is sealed");
    assert_eq!(reply.len(), 128);
    assert_eq!((got.packet.sender_seq, got.packet.ssid), (seq, 0x5eed));
    probe.send_to(&sent, b).unwrap();
    let mut unsealed = Vec::new();
    TestPacket {
        seq: 99,
        timestamp: Timestamp::from_unix_ns(1),
        error_estimate: ErrorEstimate::from_error_ns(1_000, false),
        ssid: 0,
        len: 112,
    }
    .encode(&mut unsealed);
    probe.send_to(&unsealed, b).unwrap();
    assert!(
        probe.recv_from(&mut buf).is_err(),
        "a replay or an unsealed packet was answered"
    );

    // Rotated to K2 in the three steps docs/agents-and-mesh.md gives, each read by every
    // agent (every report interval, 200 ms) before the next.
    for step in [
        format!("{K1}\n{K2}\n"),
        format!("{K2}\n{K1}\n"),
        format!("{K2}\n"),
    ] {
        std::thread::sleep(Duration::from_millis(700));
        std::fs::write(&k1, step).unwrap();
    }
    std::thread::sleep(Duration::from_millis(700));
    probe.send_to(&sealed(1_000, &keyed(K1)), b).unwrap();
    assert!(
        probe.recv_from(&mut buf).is_err(),
        "the retired key was taken"
    );
    probe.send_to(&sealed(1_001, &keyed(K2)), b).unwrap();
    let n = probe.recv_from(&mut buf).expect("the new key is taken").0;
    ReflectedPacket::decode_authenticated(&buf[..n], &keyed(K2)).expect("sealed with the new key");
    std::thread::sleep(Duration::from_millis(300));
    terminate_all(agents);
    let (_, m) = metrics(addr);
    // Retries lost before the reflector listened were never answered: only the last one was,
    // and the one sealed with the new key.
    check_direction_with(&m, "az-1", "oci-1", 200.0, 20.0, 2.0);
    check_direction(&m, "oci-1", "az-1", 200.0, 20.0);
    let counter = |name: &str, agent: &str| {
        sample(&m, name, &[&format!("agent=\"{agent}\"")])
            .unwrap_or_else(|| panic!("{name} {agent}"))
    };
    assert_eq!(counter("xcbench_reflector_replayed_total", "oci-1"), 1.0);
    // az-2 (another key) is lost whole; oci-1 counted each of its packets that arrived,
    // the test's unsealed one and the one with the retired key.
    let sel = ["src_agent=\"az-2\"", "dst_agent=\"oci-1\""];
    let c_sent = sample(&m, "xcbench_probes_sent_total", &sel).unwrap();
    let c_lost = sample(&m, "xcbench_probes_lost_total", &sel).unwrap();
    assert!(
        c_sent >= 200.0 && c_lost == c_sent,
        "az-2: sent {c_sent}, lost {c_lost}"
    );
    let refused = counter("xcbench_reflector_unauthenticated_total", "oci-1");
    assert!(
        refused >= c_sent - 20.0 + 2.0 && refused <= c_sent + 2.0,
        "oci-1 refused {refused} of az-2's {c_sent} and the test's 2"
    );
    // The pair lost nothing to the rotation: az-1 never saw a refusal from oci-1, nor it from az-1.
    assert_eq!(
        counter("xcbench_reflector_unauthenticated_total", "az-1"),
        0.0
    );
    for agent in ["az-1", "oci-1", "az-2"] {
        assert_eq!(
            counter("xcbench_sender_unauthenticated_total", agent),
            0.0,
            "{agent}"
        );
    }
    drop(collector);
}

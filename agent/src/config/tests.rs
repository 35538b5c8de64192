//! Tests of `agent.toml` parsing: defaults, the sample, and errors that name the field.

use super::*;
use xcbench_snapshot::AgentId;

/// A peer at `addr` probed over every transport every 10 ms, lost after 200 ms.
pub(crate) fn peer_at(addr: SocketAddr) -> PeerConfig {
    PeerConfig {
        identity: Identity {
            id: "oci-1".parse().unwrap(),
            cloud: Cloud::Oci,
            region: "us-ashburn-1".into(),
            zone: String::new(),
        },
        address: addr,
        quic_address: PortPlan::at(addr, PortPlan::quic),
        fingerprint: None,
        probe: ProbeSettings {
            interval: ProbeInterval::try_from(Duration::from_millis(10)).unwrap(),
            loss_timeout: LossTimeout::try_from(Duration::from_millis(200)).unwrap(),
            connect_interval: ConnectInterval::try_from(Duration::from_millis(50)).unwrap(),
            protocols: Protocols {
                udp: true,
                tcp: true,
                quic: true,
            },
            ..ProbeSettings::default()
        },
    }
}

#[test]
fn the_sample_is_exactly_the_defaults_plus_its_peers() {
    let text = include_str!("../../agent.sample.toml");
    let c = AgentConfig::parse("agent.sample.toml", text).unwrap();
    // What the sample sets beyond the defaults: who it is, a key pair, a collector, a
    // schedule, and two peers (the second with its own probe settings).
    assert_eq!(c.identity.id.as_str(), "az-eastus-app1");
    assert_eq!(c.identity.zone, "1");
    assert_eq!(c.timestamps, TimestampSource::Kernel);
    assert_eq!(c.reflector, ReflectorConfig::defaults(true));
    assert_eq!(
        c.tls,
        Some(TlsConfig {
            key: KeySource::Dir("/var/lib/xcbench".into()),
            ca: None,
            allow: vec![],
        })
    );
    assert_eq!(
        c.collector,
        Some(CollectorLink {
            url: "https://10.10.0.4:9862".into(),
            report_interval: defaults::REPORT_INTERVAL,
            fingerprint: Some(
                "sha256:9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab"
                    .parse()
                    .unwrap()
            ),
            plain_http: false,
        })
    );
    let db2: AgentId = "oci-ashburn-db2".parse().unwrap();
    assert_eq!(
        c.throughput,
        ThroughputLimits {
            schedule: Some(ThroughputSchedule::every(
                Duration::from_secs(3600),
                vec![db2.clone()]
            )),
            ..ThroughputLimits::default()
        }
    );
    assert_eq!(c.peers.len(), 2);
    assert_eq!(c.peers[0].probe, ProbeSettings::default());
    assert_eq!(c.peers[0].address, "10.20.0.5:862".parse().unwrap());
    assert_eq!(c.peers[0].quic_address, "10.20.0.5:863".parse().unwrap());
    assert_eq!(c.peers[1].identity.id, db2);
    assert_eq!(
        c.peers[1].probe,
        ProbeSettings {
            interval: ProbeInterval::try_from(Duration::from_millis(10)).unwrap(),
            payload_size: PayloadSize::try_from(1372).unwrap(),
            protocols: Protocols {
                udp: true,
                tcp: true,
                quic: true
            },
            ..ProbeSettings::default()
        }
    );
    assert_eq!(c.peers[1].quic_address, "10.20.0.6:863".parse().unwrap());
    assert!(c.peers[1].fingerprint.is_some());
}

#[test]
fn newtypes_hold_their_range() {
    assert!(ProbeInterval::try_from(Duration::ZERO).is_err());
    assert_eq!(
        LossTimeout::try_from(Duration::from_secs(61))
            .unwrap_err()
            .to_string(),
        LossTimeout::EXPECTED
    );
    assert!(PayloadSize::try_from(43).is_err());
    assert_eq!(Dscp::try_from(46).unwrap().get(), 46);
    assert!(Dscp::try_from(64).is_err());
    assert!(ConnectInterval::try_from(Duration::from_millis(9)).is_err());
}

const MINIMAL: &str = r#"
[agent]
id = "az-1"
cloud = "azure"
region = "eastus"

[[peers]]
id = "oci-1"
cloud = "oci"
region = "us-ashburn-1"
address = "10.1.0.5"
"#;

fn err(text: &str) -> String {
    AgentConfig::parse("agent.toml", text)
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults_apply() {
    let c = AgentConfig::parse("agent.toml", MINIMAL).unwrap();
    assert_eq!(c.reflector.listen, vec!["0.0.0.0:862".parse().unwrap()]);
    assert_eq!(c.peers[0].address, "10.1.0.5:862".parse().unwrap());
    assert_eq!(c.peers[0].probe, ProbeSettings::default());
    assert!(c.collector.is_none());
    assert_eq!(c.timestamps, TimestampSource::Kernel);
    let user = MINIMAL.replace(
        "region = \"eastus\"",
        "region = \"eastus\"\ntimestamps = \"user\"",
    );
    assert_eq!(
        AgentConfig::parse("a", &user).unwrap().timestamps,
        TimestampSource::User
    );
    let bad = MINIMAL.replace(
        "region = \"eastus\"",
        "region = \"eastus\"\ntimestamps = \"nic\"",
    );
    assert_eq!(
        err(&bad),
        "agent.toml: agent.timestamps = \"nic\": must be one of kernel, user"
    );
    use crate::wire::error_estimate::ClockErrorSource;
    let with = |v: &str| {
        MINIMAL.replace(
            "region = \"eastus\"",
            &format!("region = \"eastus\"\nclock_error = \"{v}\""),
        )
    };
    assert_eq!(
        AgentConfig::parse("a", MINIMAL).unwrap().clock_error,
        ClockErrorSource::Kernel
    );
    assert_eq!(
        AgentConfig::parse("a", &with("auto")).unwrap().clock_error,
        ClockErrorSource::Kernel
    );
    assert_eq!(
        AgentConfig::parse("a", &with("50us")).unwrap().clock_error,
        ClockErrorSource::Declared(50_000)
    );
    assert_eq!(
        err(&with("17s")),
        "agent.toml: agent.clock_error = \"17s\": must be \"auto\" (the kernel's NTP state) or a duration up to 16s, e.g. \"50us\""
    );
    let spool = |v: &str| {
        MINIMAL.replace(
            "region = \"eastus\"",
            &format!("region = \"eastus\"\nspool = \"{v}\""),
        )
    };
    assert_eq!(
        AgentConfig::parse("a", &spool("/var/lib/xcbench/spool"))
            .unwrap()
            .spool,
        Some("/var/lib/xcbench/spool".into())
    );
    assert_eq!(AgentConfig::parse("a", MINIMAL).unwrap().spool, None);
    assert_eq!(
        err(&spool("spool")),
        "agent.toml: agent.spool = \"spool\": must be an absolute directory path, e.g. \"/var/lib/xcbench/spool\""
    );
}

#[test]
fn quic_needs_tls_and_a_way_to_trust_the_peer() {
    let fp = "sha256:".to_owned() + &"ab".repeat(32);
    let tls = "\n[tls]\ndir = \"/var/lib/xcbench\"\n";
    let with_tls = MINIMAL.replace("[[peers]]", &format!("{tls}\n[[peers]]"));
    let c = AgentConfig::parse("a", &with_tls).unwrap();
    assert!(c.reflector.quic, "[tls] turns the QUIC responder on");
    assert_eq!(
        c.tls.unwrap().key,
        KeySource::Dir("/var/lib/xcbench".into())
    );
    assert_eq!(c.peers[0].quic_address, "10.1.0.5:863".parse().unwrap());
    assert!(!AgentConfig::parse("a", MINIMAL).unwrap().reflector.quic);

    let quic = "protocols = [\"udp\", \"quic\"]\n";
    assert_eq!(
        err(&(MINIMAL.to_owned() + quic)),
        "agent.toml: peers[0].protocols = [.., \"quic\"]: quic needs a [tls] section (the agent's key pair)"
    );
    assert!(err(&(with_tls.clone() + quic))
        .starts_with("agent.toml: peers[0].fingerprint = (none): must be set"));
    let pinned =
        format!("{with_tls}{quic}fingerprint = \"{fp}\"\nquic_address = \"10.1.0.5:4433\"\n");
    let c = AgentConfig::parse("a", &pinned).unwrap();
    assert!(c.peers[0].probe.protocols.quic);
    assert_eq!(c.peers[0].fingerprint.unwrap().to_string(), fp);
    assert_eq!(c.peers[0].quic_address, "10.1.0.5:4433".parse().unwrap());
    let ca = with_tls.replace("dir = ", "ca = \"/etc/ca.pem\"\ndir = ") + quic;
    assert!(
        AgentConfig::parse("a", &ca).is_ok(),
        "a CA replaces the pin"
    );

    assert_eq!(
        err(&format!("{with_tls}fingerprint = \"md5:00\"\n")),
        "agent.toml: peers[0].fingerprint = \"md5:00\": must be \"sha256:\" followed by 64 hex digits"
    );
    assert_eq!(
        err(&MINIMAL.replace("[[peers]]", "[tls]\ncert = \"a.pem\"\n[[peers]]")),
        "agent.toml: tls.cert = \"a.pem\": needs tls.key beside it"
    );
    assert!(err(&MINIMAL.replace("[[peers]]", "[tls]\n[[peers]]"))
        .starts_with("agent.toml: tls = {}: must set dir"));
    assert_eq!(
        err(&MINIMAL.replace(
            "[[peers]]",
            "[tls]\ndir = \"d\"\nallow = [\"x\"]\n[[peers]]"
        )),
        "agent.toml: tls.allow[0] = \"x\": must be \"sha256:\" followed by 64 hex digits"
    );
    assert_eq!(
        err(&MINIMAL.replace(
            "[[peers]]",
            "[reflector]\nlisten = []\nquic = true\n[[peers]]"
        )),
        "agent.toml: reflector.quic = true: needs a [tls] section (the agent's key pair)"
    );
}

#[test]
fn bench_limits_parse_and_name_their_errors() {
    assert_eq!(
        AgentConfig::parse("a", MINIMAL).unwrap().throughput,
        ThroughputLimits::default()
    );
    let fp = "sha256:".to_owned() + &"ab".repeat(32);
    let with = |bench: &str| {
        MINIMAL.replace("[[peers]]", &format!("[bench]\n{bench}\n[[peers]]"))
            + &format!("fingerprint = \"{fp}\"\n")
    };
    let c = AgentConfig::parse(
        "a",
        &with(
            "max_duration = \"30s\"\nmax_streams = 4\nmax_udp_rate = \"2G\"\nallow = [\"oci-1\"]",
        ),
    )
    .unwrap();
    assert_eq!(c.throughput.max_duration, Duration::from_secs(30));
    assert_eq!(
        (c.throughput.max_streams, c.throughput.max_udp_rate_bps),
        (4, 2_000_000_000)
    );
    assert_eq!(c.throughput.allow[0].as_str(), "oci-1");
    assert_eq!(
        err(&with("allow = [\"db9\"]")),
        "agent.toml: bench.allow[0] = \"db9\": must be the id of a configured peer"
    );
    assert!(err(&with("max_udp_rate = \"fast\""))
        .starts_with("agent.toml: bench.max_udp_rate = \"fast\": must be a rate"));
    // An unpinned peer may be allowed where the CA names it: its id must be a DNS name.
    let unpinned = |tls: &str, id: &str| {
        MINIMAL
            .replace(
                "[[peers]]",
                &format!("{tls}[bench]\nallow = [\"{id}\"]\n[[peers]]"),
            )
            .replace("id = \"oci-1\"", &format!("id = \"{id}\""))
    };
    let ca = "[tls]\nca = \"/etc/ca.pem\"\ndir = \"/k\"\n";
    let c = AgentConfig::parse("a", &unpinned(ca, "oci-1")).unwrap();
    assert_eq!(c.throughput.allow[0].as_str(), "oci-1");
    let no_name =
        "must name a peer with a fingerprint, or (with tls.ca) one whose id is a DNS name";
    assert_eq!(
        err(&unpinned(ca, "10.1.0.9")),
        format!("agent.toml: bench.allow[0] = \"10.1.0.9\": {no_name}")
    );
    assert_eq!(
        err(&unpinned("[tls]\ndir = \"/k\"\n", "oci-1")),
        format!("agent.toml: bench.allow[0] = \"oci-1\": {no_name}")
    );
    assert_eq!(
        err(&with("max_streams = 0")),
        "agent.toml: bench.max_streams = 0: must be 1 to 128"
    );
}

#[test]
fn schedules_parse_with_defaults_and_name_their_errors() {
    use crate::wire::throughput::{Direction, Protocol};
    let fp = "sha256:".to_owned() + &"ab".repeat(32);
    let with = |schedule: &str, tls: bool| {
        MINIMAL.replace(
            "[[peers]]",
            &format!(
                "{}[bench.schedule]\n{schedule}\n[[peers]]",
                if tls { "[tls]\ndir = \"/k\"\n" } else { "" }
            ),
        ) + &format!("fingerprint = \"{fp}\"\n")
    };
    let s = AgentConfig::parse("a", &with("every = \"1h\"", true))
        .unwrap()
        .throughput
        .schedule
        .unwrap();
    assert_eq!(
        (s.every, s.duration, s.omit, s.streams, s.udp_rate_bps),
        (
            Duration::from_secs(3600),
            Duration::from_secs(10),
            Duration::from_secs(1),
            1,
            100_000_000
        )
    );
    assert_eq!(s.protocols, vec![Protocol::Tcp]);
    assert_eq!(s.direction, Direction::Forward);
    assert_eq!(s.max_rate_bps, None, "no cap unless asked");
    assert_eq!(s.peers[0].as_str(), "oci-1");
    let s = AgentConfig::parse(
        "a",
        &with(
            "every = \"30m\"\nprotocols = [\"udp\", \"quic\"]\ndirection = \"bidirectional\"\npeers = [\"oci-1\"]\nmax_rate = \"500M\"",
            true,
        ),
    )
    .unwrap()
    .throughput
    .schedule
    .unwrap();
    assert_eq!(s.protocols, vec![Protocol::Udp, Protocol::Quic]);
    assert_eq!(s.direction, Direction::Bidirectional);
    assert_eq!(s.max_rate_bps, Some(500_000_000));
    for (text, want) in [
        (
            "every = \"1s\"",
            "bench.schedule.every = \"1s\": must be 10s to 7d",
        ),
        (
            "every = \"1h\"\nprotocols = [\"sctp\"]",
            "bench.schedule.protocols[0] = \"sctp\": must be tcp, udp or quic",
        ),
        (
            "every = \"1h\"\nduration = \"5s\"\nomit = \"5s\"",
            "bench.schedule.omit = \"5s\": must be less than bench.schedule.duration",
        ),
        (
            "every = \"1h\"\npeers = [\"db9\"]",
            "bench.schedule.peers[0] = \"db9\": must be the id of a configured peer",
        ),
        (
            "every = \"1h\"\ndirection = \"up\"",
            "bench.schedule.direction = \"up\": must be forward, reverse or bidirectional",
        ),
        (
            "every = \"1h\"\nmax_rate = \"0\"",
            "bench.schedule.max_rate = \"0\": must be a rate such as \"1G\", \"200M\" or \"500k\" (bits/s), 1k to 100G",
        ),
    ] {
        assert_eq!(err(&with(text, true)), format!("agent.toml: {want}"));
    }
    assert!(err(&with("every = \"1h\"", false))
        .starts_with("agent.toml: bench.schedule = (set): needs a [tls] section"));
}

#[test]
fn errors_name_file_field_value_and_expectation() {
    let bad = MINIMAL.to_owned() + "interval = \"0ms\"\n";
    assert_eq!(
        err(&bad),
        "agent.toml: peers[0].interval = \"0ms\": must be at least 1ms and at most 1h"
    );
    let bad = MINIMAL.replace("\"oci\"", "\"gcp\"");
    assert_eq!(
        err(&bad),
        "agent.toml: peers[0].cloud = \"gcp\": must be one of azure, oci, other"
    );
    let bad = MINIMAL.to_owned() + "payload_size = 20\n";
    assert!(err(&bad).starts_with("agent.toml: peers[0].payload_size = 20: must be 44 to 9000"));
    let bad = MINIMAL.to_owned() + "dscp = 64\n";
    assert_eq!(err(&bad), "agent.toml: peers[0].dscp = 64: must be 0 to 63");
    let bad = MINIMAL.replace("10.1.0.5", "db.example");
    assert!(err(&bad).starts_with("agent.toml: peers[0].address = \"db.example\": must be an IP"));
    let bad = MINIMAL.to_owned() + "colour = 1\n";
    assert_eq!(
        err(&bad),
        "agent.toml: peers[0].colour = 1: is not a field here (line 12): expected one of id, cloud, region, zone, address, quic_address, fingerprint, interval, payload_size, dscp, loss_timeout, protocols, connect_interval"
    );
    let bad = MINIMAL.to_owned()
        + MINIMAL
            .split("[[peers]]")
            .nth(1)
            .map(|p| format!("[[peers]]{p}"))
            .unwrap()
            .as_str();
    assert_eq!(
        err(&bad),
        "agent.toml: peers[1].id = \"oci-1\": must be unique among peers"
    );
    let bad = MINIMAL.replace("[agent]", "[agent]\nfoo = [");
    assert!(err(&bad).starts_with("agent.toml: "), "{}", err(&bad));
}

#[test]
fn cloud_auto_leaves_region_and_zone_to_instance_metadata() {
    use super::metadata::{AutoLabels, MetadataUrl};
    let auto = MINIMAL.replace("cloud = \"azure\"\nregion = \"eastus\"", "cloud = \"auto\"");
    let c = AgentConfig::parse("a", &auto).unwrap();
    assert_eq!(
        c.auto,
        Some(AutoLabels {
            url: MetadataUrl::default(),
            region: None,
            zone: None,
        })
    );
    // A placeholder until the metadata is read.
    assert_eq!(
        (c.identity.cloud, c.identity.region.as_str()),
        (Cloud::Other, "")
    );
    let given = auto.replace(
        "cloud = \"auto\"",
        "cloud = \"auto\"\nregion = \"eastus2\"\nzone = \"3\"\nmetadata_url = \"http://127.0.0.1:8080\"",
    );
    let c = AgentConfig::parse("a", &given).unwrap();
    let a = c.auto.unwrap();
    assert_eq!(
        (a.url.to_string(), a.region, a.zone),
        (
            "http://127.0.0.1:8080".into(),
            Some("eastus2".into()),
            Some("3".into())
        )
    );

    assert_eq!(
        err(&MINIMAL.replace("region = \"eastus\"\n", "")),
        "agent.toml: agent.region = (none): must be set, or cloud = \"auto\" to read it from instance metadata"
    );
    assert_eq!(
        err(&MINIMAL.replace("cloud = \"azure\"", "cloud = \"gcp\"")),
        "agent.toml: agent.cloud = \"gcp\": must be one of azure, oci, other, or auto (read from instance metadata)"
    );
    assert_eq!(
        err(&MINIMAL.replace("\"oci\"", "\"auto\"")),
        "agent.toml: peers[0].cloud = \"auto\": must be one of azure, oci, other"
    );
    assert_eq!(
        err(&MINIMAL.replace(
            "region = \"eastus\"",
            "region = \"eastus\"\nmetadata_url = \"http://127.0.0.1:1\""
        )),
        "agent.toml: agent.metadata_url = \"http://127.0.0.1:1\": is read only with cloud = \"auto\""
    );
    assert!(err(&auto.replace(
        "cloud = \"auto\"",
        "cloud = \"auto\"\nmetadata_url = \"https://169.254.169.254\""
    ))
    .starts_with(
        "agent.toml: agent.metadata_url = \"https://169.254.169.254\": must be an http:// URL"
    ));
    assert!(
        err(&auto.replace("cloud = \"auto\"", "cloud = \"auto\"\nregion = \"a b\""))
            .starts_with("agent.toml: agent.region = \"a b\": must be at most 64")
    );
}

/// Issue 21, items 1 and 2: a peer's port 0 and a peer with the agent's own id.
#[test]
fn peers_need_a_port_and_another_id() {
    assert_eq!(
        err(&MINIMAL.replace("10.1.0.5", "10.1.0.5:0")),
        "agent.toml: peers[0].address = \"10.1.0.5:0\": must have a port from 1 to 65532 (or none: 862): port 0 means any free port, which only reflector.listen may ask for"
    );
    assert!(
        err(&(MINIMAL.to_owned() + "quic_address = \"10.1.0.5:0\"\n")).starts_with(
            "agent.toml: peers[0].quic_address = \"10.1.0.5:0\": must have a port from 1"
        )
    );
    // A listening socket may still ask for any free port (tests do).
    let any = MINIMAL.replace(
        "[[peers]]",
        "[reflector]\nlisten = [\"127.0.0.1:0\", \"127.0.0.1:0\"]\n\n[[peers]]",
    );
    assert_eq!(
        AgentConfig::parse("a", &any)
            .unwrap()
            .reflector
            .listen
            .len(),
        2
    );
    assert_eq!(
        err(&MINIMAL.replace("id = \"oci-1\"", "id = \"az-1\"")),
        "agent.toml: peers[0].id = \"az-1\": must not be this agent's own id (agent.id): an agent does not probe itself"
    );
}

/// Issue 21, items 5 to 7: errors keep their place inside `[[peers]]` and say what was
/// expected; the expectation is not one the input meets.
#[test]
fn errors_keep_their_place_and_say_what_is_expected() {
    let spaced = MINIMAL.replace(
        "address = \"10.1.0.5\"",
        "\n\n\naddress = \"10.1.0.5\"\nadress = \"10.1.0.6\"",
    );
    assert!(
        err(&spaced).starts_with("agent.toml: peers[0].adress = \"10.1.0.6\": is not a field here (line 15): expected one of id, cloud, region, zone, address, "),
        "{}",
        err(&spaced)
    );
    assert_eq!(
        err(&(MINIMAL.to_owned() + "payload_size = \"big\"\n")),
        "agent.toml: peers[0].payload_size = \"big\": must be an integer (line 12)"
    );
    assert_eq!(
        err(&format!(
            "peers = 5\n{}",
            MINIMAL.split("[[peers]]").next().unwrap()
        )),
        "agent.toml: peers = 5: must be an array, e.g. [\"a\", \"b\"] (line 1)"
    );
    assert_eq!(
        err(&MINIMAL.replace("id = \"az-1\"", "id = 5")),
        "agent.toml: agent.id = 5: must be a string in quotes (line 3)"
    );
    assert_eq!(
        err(&MINIMAL.replace("10.1.0.5", "127.0.0.1:70000")),
        "agent.toml: peers[0].address = \"127.0.0.1:70000\": must be an IP address with a port of at most 65532: 70000 is not a port (e.g. \"10.1.0.5\", \"10.1.0.5:862\", \"fd00::5\" or \"[fd00::5]:862\")"
    );
    assert_eq!(
        err(&MINIMAL.replace("10.1.0.5", "fd00::5:862")),
        "agent.toml: peers[0].address = \"fd00::5:862\": is ambiguous: write \"[fd00::5]:862\" for port 862 of fd00::5, or \"[fd00::5:862]\" for that address at port 862"
    );
    for (text, port) in [
        ("[fd00::5]:862", 862),
        ("[fd00::5:862]", 862),
        ("fd00::5", 862),
        ("[fd00::5]:9000", 9000),
    ] {
        let c = AgentConfig::parse("a", &MINIMAL.replace("10.1.0.5", text)).unwrap();
        assert_eq!(c.peers[0].address.port(), port, "{text}");
    }
    let quic = MINIMAL.replace(
        "[[peers]]",
        "[probe_defaults]\nprotocols = [\"quic\"]\n\n[[peers]]",
    );
    assert_eq!(
        err(&quic),
        "agent.toml: probe_defaults.protocols = [.., \"quic\"]: quic needs a [tls] section (the agent's key pair)"
    );
    let twice = MINIMAL.replace(
        "[[peers]]",
        "[reflector]\nlisten = [\"127.0.0.1:18862\", \"10.0.0.1\", \"127.0.0.1:18862\"]\n\n[[peers]]",
    );
    assert_eq!(
        err(&twice),
        "agent.toml: reflector.listen[2] = \"127.0.0.1:18862\": must be unique: reflector.listen[0] is the same address, and an address is bound once"
    );
    let huge = MINIMAL.replace("10.1.0.5", &"x".repeat(10_000_000));
    let e = err(&huge);
    assert!(
        e.len() < 400 && e.contains("... (10000002 bytes)"),
        "{}",
        e.len()
    );
}

/// Issue 21, item 3: the files `[tls]` names are checked at load: exit 2 naming the field,
/// not a failure at start.
#[test]
fn tls_files_are_checked_at_load() {
    let dir = std::env::temp_dir().join(format!(
        "xcbench-tls-check-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let load = |tls: &str| {
        let path = dir.join("agent.toml");
        std::fs::write(
            &path,
            MINIMAL.replace("[[peers]]", &format!("[tls]\n{tls}\n[[peers]]")),
        )
        .unwrap();
        AgentConfig::load(&path)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let d = dir.display();
    assert_eq!(
        load(&format!("cert = \"{d}/x.pem\"\nkey = \"{d}/x.key\"")),
        Err(format!("{d}/agent.toml: tls.cert = \"{d}/x.pem\": must be a readable PEM file: No such file or directory (os error 2)"))
    );
    std::fs::write(dir.join("x.pem"), "").unwrap();
    assert_eq!(
        load(&format!("cert = \"{d}/x.pem\"\nkey = \"{d}\"")),
        Err(format!(
            "{d}/agent.toml: tls.key = \"{d}\": must be a PEM file: not a regular file"
        ))
    );
    assert_eq!(
        load(&format!("cert = \"{d}/x.pem\"\nkey = \"{d}/x.pem\"\nca = \"{d}/ca.pem\"")),
        Err(format!("{d}/agent.toml: tls.ca = \"{d}/ca.pem\": must be a readable PEM file: No such file or directory (os error 2)"))
    );
    assert_eq!(
        load(&format!("cert = \"{d}/x.pem\"\nkey = \"{d}/x.pem\"")),
        Ok(())
    );
    assert_eq!(
        load(&format!("dir = \"{d}/x.pem\"")),
        Err(format!("{d}/agent.toml: tls.dir = \"{d}/x.pem\": must be a directory (the agent.crt and agent.key pair is kept there, generated at first start): it is a file"))
    );
    assert_eq!(
        load(&format!("dir = \"{d}/x.pem/keys\"")),
        Err(format!("{d}/agent.toml: tls.dir = \"{d}/x.pem/keys\": must be a directory (the agent.crt and agent.key pair is kept there, generated at first start): it cannot be made, {d}/x.pem is a file"))
    );
    assert_eq!(
        load(&format!("dir = \"{d}/new/keys\"")),
        Ok(()),
        "made at first start"
    );
    std::fs::create_dir(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/agent.crt"), "").unwrap();
    assert_eq!(
        load(&format!("dir = \"{d}/keys\"")),
        Err(format!("{d}/agent.toml: tls.dir = \"{d}/keys\": holds agent.crt but not agent.key: restore agent.key, or remove agent.crt to generate a new pair at start"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

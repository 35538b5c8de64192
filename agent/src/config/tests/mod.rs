//! Tests of `agent.toml` parsing: defaults, the sample, `cloud = "auto"` and peers here;
//! `trust` (QUIC, TLS files), `bench` (limits and schedules), `errors` (what a refusal names).

mod bench;
mod errors;
mod trust;

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
    let text = include_str!("../../../agent.sample.toml");
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
            fallbacks: Vec::new(),
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

pub(super) const MINIMAL: &str = r#"
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

pub(super) fn err(text: &str) -> String {
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

//! `[bench]`: throughput limits and schedules, and the errors that name their field.

use super::*;

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

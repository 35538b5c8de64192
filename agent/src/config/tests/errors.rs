//! Errors name the file, the field, the value and what was expected, and keep their place.

use super::*;

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
        "agent.toml: peers[0].colour = 1: is not a field here (line 12): expected one of id, cloud, region, zone, address, quic_address, fingerprint, interval, payload_size, dscp, flows, loss_timeout, protocols, connect_interval, stamp_keys"
    );
    let bad = MINIMAL.to_owned() + "stamp_keys = \"keys/stamp\"\n";
    assert_eq!(
        err(&bad),
        "agent.toml: peers[0].stamp_keys = \"keys/stamp\": must be an absolute path to a key file, e.g. \"/etc/xcbench/stamp.keys\""
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
    let rate = |lines: &str| {
        MINIMAL.replace(
            "[[peers]]",
            &format!("[reflector]\nlisten = [\"127.0.0.1:18862\"]\n{lines}\n\n[[peers]]"),
        )
    };
    assert_eq!(
        err(&rate("max_rate_per_source = 0")),
        "agent.toml: reflector.max_rate_per_source = 0: must be 1 to 10000000 (test packets per second)"
    );
    assert_eq!(
        err(&rate("max_rate = 20000000")),
        "agent.toml: reflector.max_rate = 20000000: must be 1 to 10000000 (test packets per second)"
    );
    assert_eq!(
        err(&rate("max_rate = 1000")),
        "agent.toml: reflector.max_rate_per_source = 2000: must be at most reflector.max_rate (1000)"
    );
    let set = AgentConfig::parse("a", &rate("max_rate_per_source = 10\nmax_rate = 100")).unwrap();
    assert_eq!(
        set.reflector.rate,
        crate::probe::RateLimits {
            per_source: 10,
            total: 100
        }
    );
    let huge = MINIMAL.replace("10.1.0.5", &"x".repeat(10_000_000));
    let e = err(&huge);
    assert!(
        e.len() < 400 && e.contains("... (10000002 bytes)"),
        "{}",
        e.len()
    );
}

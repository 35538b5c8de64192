//! QUIC needs TLS and a way to trust the peer; the files `[tls]` names are checked at load.

use super::*;

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

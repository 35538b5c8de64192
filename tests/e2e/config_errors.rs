//! Bad configuration through the binary (issue 21): each case exits 2 within a second or
//! two, its error on one line naming the file, the field, the value and what was expected;
//! and an agent without a collector shows it is at work.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::machine;
use crate::support::ports::free_udp_port;
use crate::support::proc::{bin, Proc, TempDir};

const AGENT: &str = "[agent]\nid = \"az-1\"\ncloud = \"azure\"\nregion = \"eastus\"\n\n[reflector]\nlisten = [\"127.0.0.1:0\"]\n";
const PEER: &str = "\n[[peers]]\nid = \"oci-1\"\ncloud = \"oci\"\nregion = \"r\"\n";

/// Runs `args` with `file` (written as `name`) last; asserts exit 2 within 2 s and one line
/// of stderr: `error: <file>: <want>...`.
fn refused(dir: &TempDir, args: &[&str], name: &str, text: &str, want: &str) {
    let path = dir.write(name, text);
    let started = Instant::now();
    let out = Command::new(bin()).args(args).arg(&path).output().unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?} {name}: {err}");
    assert!(took < Duration::from_secs(2), "{args:?} {name}: {took:?}");
    let want = want.replace("{dir}", &dir.path().display().to_string());
    assert!(
        err.starts_with(&format!("error: {}: {want}", path.display())),
        "{args:?} {name}:\n  got:  {err}\n  want: error: {}: {want}",
        path.display()
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.len() < 1_000, "{} bytes", err.len());
}

#[test]
fn bad_inputs_exit_2_naming_the_file_and_field() {
    let _turn = machine::shared();
    let dir = TempDir::new("config-errors");
    let d = dir.path().display().to_string();
    let agent = ["agent", "--config"];
    let collector = ["collector", "--config"];
    // 1. Port 0 in a peer's address, and in the mesh.
    refused(
        &dir,
        &agent,
        "port0.toml",
        &format!("{AGENT}{PEER}address = \"10.20.0.5:0\"\n"),
        "peers[0].address = \"10.20.0.5:0\": must have a port from 1 to 65532",
    );
    let mesh =
        std::fs::read_to_string(crate::support::repo_path("deploy/mesh.sample.toml")).unwrap();
    refused(
        &dir,
        &["mesh", "check"],
        "mesh.toml",
        &mesh.replacen("10.10.1.4\"", "10.10.1.4:0\"", 1),
        "azure.agents[0].address = \"10.10.1.4:0\": must have a port from 1 to 65532",
    );
    // 2. A peer with the agent's own id.
    refused(
        &dir,
        &agent,
        "self.toml",
        &format!(
            "{AGENT}{}address = \"10.20.0.5\"\n",
            PEER.replace("oci-1", "az-1")
        ),
        "peers[0].id = \"az-1\": must not be this agent's own id",
    );
    // 3. The files [tls] names: the agent's, the collector's, and `identity`.
    std::fs::write(dir.path().join("afile"), "").unwrap();
    let tls_missing = format!("[tls]\ncert = \"{d}/none/x.pem\"\nkey = \"{d}/none/x.key\"\n");
    refused(
        &dir,
        &agent,
        "tls.toml",
        &format!("{AGENT}{tls_missing}{PEER}address = \"10.20.0.5\"\n"),
        "tls.cert = \"{dir}/none/x.pem\": must be a readable PEM file: No such file or directory",
    );
    refused(
        &dir,
        &["identity", "--config"],
        "tls.toml",
        &format!("{AGENT}{tls_missing}"),
        "tls.cert = \"{dir}/none/x.pem\": must be a readable PEM file",
    );
    refused(
        &dir,
        &agent,
        "tlsdir.toml",
        &format!("{AGENT}[tls]\ndir = \"{d}/afile\"\n"),
        "tls.dir = \"{dir}/afile\": must be a directory",
    );
    refused(
        &dir,
        &collector,
        "c-tls.toml",
        &tls_missing,
        "tls.cert = \"{dir}/none/x.pem\": must be a readable PEM file",
    );
    refused(
        &dir,
        &collector,
        "c-tlsdir.toml",
        &format!("[tls]\ndir = \"{d}/afile\"\n"),
        "tls.dir = \"{dir}/afile\": must be a directory",
    );
    // 4. An SLO file nested 100,000 deep (200 KB): refused before parsing.
    let deep = format!(
        "version: 1\nobjectives: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let nested = "line 2 (under objectives): nested deeper than 32 levels";
    refused(&dir, &["slo", "rules"], "deep.yaml", &deep, nested);
    refused(&dir, &["gate", "--slo"], "deep.yaml", &deep, nested);
    let slo = dir.write("deep.yaml", &deep);
    let path = dir.write("c-slo.toml", &format!("slo = \"{}\"\n", slo.display()));
    let out = Command::new(bin())
        .args(collector)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with(&format!("error: {}: {nested}", slo.display())));
    // 5. Errors inside [[peers]] keep their place; type errors name their field.
    refused(&dir, &agent, "unknown.toml", &format!("{AGENT}{PEER}\n\n\naddress = \"10.20.0.5\"\nadress = \"10.20.0.6\"\n"),
        "peers[0].adress = \"10.20.0.6\": is not a field here (line 17): expected one of id, cloud, region, zone, address, ");
    refused(
        &dir,
        &agent,
        "type.toml",
        &format!("{AGENT}{PEER}address = \"10.20.0.5\"\npayload_size = \"big\"\n"),
        "peers[0].payload_size = \"big\": must be an integer (line 14)",
    );
    refused(
        &dir,
        &agent,
        "top.toml",
        &format!("peers = 5\n{AGENT}"),
        "peers = 5: must be an array",
    );
    // 6. A range the input does not meet, said as the range.
    refused(&dir, &agent, "port.toml", &format!("{AGENT}{PEER}address = \"127.0.0.1:70000\"\n"),
        "peers[0].address = \"127.0.0.1:70000\": must be an IP address with a port of at most 65532: 70000 is not a port");
    // 7. Where a setting comes from; a listen address twice; contradictions; ambiguity; echoes.
    refused(
        &dir,
        &agent,
        "quic.toml",
        &format!(
            "{AGENT}[probe_defaults]\nprotocols = [\"quic\"]\n{PEER}address = \"10.20.0.5\"\n"
        ),
        "probe_defaults.protocols = [.., \"quic\"]: quic needs a [tls] section",
    );
    refused(
        &dir,
        &agent,
        "listen.toml",
        &format!(
            "{}{PEER}address = \"10.20.0.5\"\n",
            AGENT.replace(
                "\"127.0.0.1:0\"",
                "\"127.0.0.1:18862\", \"127.0.0.1:18862\""
            )
        ),
        "reflector.listen[1] = \"127.0.0.1:18862\": must be unique",
    );
    refused(
        &dir,
        &collector,
        "plain.toml",
        &format!("listen = \"0.0.0.0:9862\"\nplain_http = true\n[tls]\ndir = \"{d}/keys\"\n"),
        "plain_http = true: must not be set with [tls]",
    );
    refused(
        &dir,
        &agent,
        "v6.toml",
        &format!("{AGENT}{PEER}address = \"fd00::5:862\"\n"),
        "peers[0].address = \"fd00::5:862\": is ambiguous: write \"[fd00::5]:862\"",
    );
    // A 3 MB value is echoed cut short (`refused` holds stderr to one line under 1,000
    // bytes); a file past 4 MiB is not read at all.
    refused(
        &dir,
        &agent,
        "big.toml",
        &format!("{AGENT}{PEER}address = \"{}\"\n", "x".repeat(3_000_000)),
        "peers[0].address = \"xxxx",
    );
    refused(
        &dir,
        &agent,
        "huge.toml",
        &format!("{AGENT}{PEER}address = \"{}\"\n", "x".repeat(10_000_000)),
        "cannot read: larger than 4194304 bytes",
    );
    // 6. A flag's range error names the minimum, not a form the input already has.
    let out = Command::new(bin())
        .args(["demo", "--interval", "0ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"0ms\": must be more than 0, e.g. \"10ms\""),
        "{err}"
    );
    // A STAMP key file open to others, or holding no key: refused at load, naming the field.
    let keys = dir.write("stamp.keys", "00112233445566778899aabbccddeeff\n");
    std::fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let keyed = format!("{AGENT}{PEER}address = \"10.20.0.5\"\nstamp_keys = \"{d}/stamp.keys\"\n");
    refused(
        &dir,
        &agent,
        "keys.toml",
        &keyed,
        "peers[0].stamp_keys = \"{dir}/stamp.keys\": is open to other users (mode 644): a key file must be 600 or 640",
    );
    let empty = dir.write("empty.keys", "# rotated out\n");
    std::fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    refused(
        &dir,
        &agent,
        "keys.toml",
        &format!("{AGENT}stamp_keys = \"{d}/empty.keys\"\n"),
        "reflector.stamp_keys = \"{dir}/empty.keys\": holds 0 keys: must hold 1 or 2",
    );
    // An endless file is refused, not read.
    let out = Command::new(bin())
        .args(["mesh", "check", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/zero: cannot read: larger than"), "{err}");
}

/// Issue 21, item 8: without a `[collector]`, a line every report interval (10 s) says per
/// peer what was sent, answered and lost: here all lost, to a port nothing answers on.
#[test]
fn an_agent_without_a_collector_logs_a_summary() {
    let _turn = machine::shared();
    let dir = TempDir::new("summary");
    let port = free_udp_port();
    let path = dir.write(
        "agent.toml",
        &format!("{AGENT}{PEER}address = \"127.0.0.1:{port}\"\ninterval = \"100ms\"\nloss_timeout = \"200ms\"\n"),
    );
    let agent = Proc::spawn(
        "agent",
        Command::new(bin()).args(["agent", "--config"]).arg(&path),
    );
    std::thread::sleep(Duration::from_millis(11_500));
    let out = agent.terminate(Duration::from_secs(10));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("probes in the last 10s"))
        .unwrap_or_else(|| panic!("no summary: {err}"));
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("oci-1: sent "), "{line}");
    let sent: u64 = line
        .split("oci-1: sent ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(sent >= 50, "{line}");
    assert!(line.contains("answered 0, lost "), "{line}");
}

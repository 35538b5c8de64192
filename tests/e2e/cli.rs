//! The binary's contract: exit codes, error messages that name the file and field, the demo's
//! output, and the sample configs shipped in the repo (parsed, never run: they point at
//! private addresses).

use std::process::Command;

use crate::support::machine;
use crate::support::proc::{bin, stdout_json, TempDir};
use crate::support::repo_path;

#[test]
fn bad_config_exits_2_naming_file_field_value() {
    let _turn = machine::shared();
    let dir = TempDir::new("cli");
    let cfg = dir.write(
        "agent.toml",
        "[agent]\nid = \"a\"\ncloud = \"azure\"\nregion = \"r\"\n\n[[peers]]\nid = \"b\"\ncloud = \"oci\"\nregion = \"r\"\naddress = \"127.0.0.1\"\ninterval = \"0ms\"\n",
    );
    let out = Command::new(bin())
        .args(["agent", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: peers[0].interval = \"0ms\": must be at least 1ms",
            cfg.display()
        )),
        "{err}"
    );

    let out = Command::new(bin())
        .args(["agent", "--config", "/nonexistent/agent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/agent.toml: cannot read"));

    let ccfg = dir.write("collector.toml", "window = \"forever\"\n");
    let out = Command::new(bin())
        .args(["collector", "--config"])
        .arg(&ccfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("window = \"forever\": must be a duration")
    );

    let out = Command::new(bin())
        .args(["demo", "--duration", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn demo_prints_a_table_for_both_directions() {
    let _turn = machine::shared();
    let out = Command::new(bin())
        .args(["demo", "--duration", "2s", "--interval", "5ms"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pair (src->dst)"), "{stdout}");
    assert!(
        stdout.contains("azure-demo->oci-demo     udp/stamp"),
        "{stdout}"
    );
    assert!(
        stdout.contains("oci-demo->azure-demo     udp/stamp"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/metrics was served at http://127.0.0.1:"),
        "{stdout}"
    );
    // The built-in SLO judged over the run: 800 STAMP probes show p99 <= 5 ms; 40 connect
    // probes are under its min_probes of 50, so the gate cannot pass on them.
    assert!(stdout.contains("\nxcbench gate: "), "{stdout}");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row: {stdout}"))
            .to_owned()
    };
    assert!(row("stamp-rtt-p99 ").ends_with("pass"), "{stdout}");
    assert!(
        row("tcp-connect-p95 ").ends_with("inconclusive"),
        "{stdout}"
    );
    let report = stdout
        .lines()
        .find_map(|l| l.strip_prefix("The gate's HTML report: "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no report path: {stdout}"));
    let html = std::fs::read_to_string(report).expect("the demo's report");
    assert!(html.contains("<section class=\"objective\""));
}

#[test]
fn demo_json_counts_settle() {
    let _turn = machine::shared();
    let out = Command::new(bin())
        .args(["demo", "--duration", "1s", "--interval", "5ms", "--json"])
        .output()
        .unwrap();
    let rows = stdout_json(&out);
    let rows = rows.as_array().unwrap();
    // Both directions, seven probe kinds each: STAMP; TCP connect and rr; QUIC connect,
    // resume, rr and datagram.
    assert_eq!(rows.len(), 14);
    let handshake = |r: &serde_json::Value| {
        r["protocol"].as_str().unwrap().ends_with("/connect") || r["protocol"] == "quic/resume"
    };
    for r in rows {
        let sent = r["sent"].as_u64().unwrap();
        // 1 s at 5 ms; fresh connections every 100 ms.
        let least = if handshake(r) { 8 } else { 100 };
        assert!(sent >= least, "{r}");
        assert_eq!(
            r["received"].as_u64().unwrap() + r["lost"].as_u64().unwrap(),
            sent,
            "{r}"
        );
        // STAMP and TCP request/response use kernel receive timestamps; connects are timed
        // around connect() in user space, and quinn offers no kernel timestamps.
        let kernel = r["protocol"] == "udp/stamp" || r["protocol"] == "tcp/rr";
        assert_eq!(
            r["timestamping"],
            if kernel { "kernel" } else { "user" },
            "{r}"
        );
        assert!(r["rtt_ns"]["p50"].as_u64().unwrap() > 0);
    }
}

#[test]
fn sample_configs_parse_and_are_in_the_readme() {
    let _turn = machine::shared();
    let agents_doc = std::fs::read_to_string(repo_path("docs/agents-and-mesh.md")).unwrap();
    let collector_doc = std::fs::read_to_string(repo_path("docs/collector.md")).unwrap();
    let agent = std::fs::read_to_string(repo_path("agent/agent.sample.toml")).unwrap();
    let c = xcbench_agent::AgentConfig::parse("agent.sample.toml", &agent).unwrap();
    assert!(!c.peers.is_empty());
    assert!(
        agents_doc.contains(&agent),
        "docs/agents-and-mesh.md shows agent/agent.sample.toml verbatim"
    );
    let collector = std::fs::read_to_string(repo_path("collector/collector.sample.toml")).unwrap();
    xcbench_collector::CollectorConfig::parse("collector.sample.toml", &collector).unwrap();
    assert!(
        collector_doc.contains(&collector),
        "docs/collector.md shows collector/collector.sample.toml verbatim"
    );
    // The collector config the package installs.
    let packaged = std::fs::read_to_string(repo_path("deploy/etc/collector.toml")).unwrap();
    let c =
        xcbench_collector::CollectorConfig::parse("deploy/etc/collector.toml", &packaged).unwrap();
    assert!(
        c.data_dir.is_some(),
        "the package's collector keeps a durable history"
    );
}

//! What `xcbench mesh check` prints for a valid mesh: its sides, every directed pair with
//! its protocols, the series the collector will hold (as it counts them), the network rules
//! each side needs, and warnings (a golden file pins the sample's).

use std::fmt::Write as _;
use std::time::Duration;

use xcbench_agent::config::mesh::plan::{Transport, Way};
use xcbench_agent::config::mesh::MeshFile;
use xcbench_agent::record::probe_kinds;
use xcbench_slo::text::{duration, span};

/// `100ms`, `10s`, `5m`, `1h`, `1h30m`.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    match (d.subsec_nanos(), s) {
        (0, 3_600..) if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        (0, 60..) if s.is_multiple_of(60) && s < 3_600 => format!("{}m", s / 60),
        (_, 60..) => span(d),
        _ => duration(d.as_nanos() as u64),
    }
}

/// The whole report.
pub fn render_check(mesh: &MeshFile) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{}: valid", mesh.file);
    for side in mesh.sides() {
        let space: Vec<String> = side.address_space.iter().map(|b| b.to_string()).collect();
        let _ = writeln!(
            t,
            "  {:<6} {} agents in {}",
            side.cloud.as_str(),
            side.agents.len(),
            space.join(", ")
        );
    }
    let collector = match &mesh.collector {
        Some(c) => {
            let channel = match (c.is_https(), c.fingerprint, c.plain_http) {
                (true, Some(_), _) => "mutual TLS, the collector pinned",
                (true, None, _) => "mutual TLS, the collector known by tls.ca",
                (false, _, true) => "PLAIN HTTP, unauthenticated (plain_http)",
                (false, _, false) => "plain HTTP on loopback",
            };
            format!(
                "{}, reports every {} ({channel})",
                c.url,
                short(c.report_interval)
            )
        }
        None => "none (each agent.toml's [collector])".to_owned(),
    };
    let _ = writeln!(t, "  collector {collector}");
    match &mesh.schedule {
        Some(s) => {
            let protocols: Vec<&str> = s.protocols.iter().map(|p| p.as_str()).collect();
            let _ = writeln!(
                t,
                "  throughput tests every {} for {} ({}, {}), by each agent toward each peer",
                short(s.every),
                short(s.duration),
                protocols.join(" "),
                format!("{:?}", s.direction).to_lowercase()
            );
        }
        None => {
            let _ = writeln!(t, "  throughput tests none scheduled");
        }
    }

    let pairs = mesh.pairs();
    let whom = match mesh.same_side {
        true => "every other agent of both sides",
        false => "every agent of the other side",
    };
    let _ = writeln!(
        t,
        "\npairs: {} directed (each agent probes {whom})",
        pairs.len()
    );
    let width = mesh
        .agents()
        .map(|a| a.identity.id.as_str().len())
        .max()
        .unwrap_or(0);
    for p in &pairs {
        let protocols: Vec<&str> = p
            .peer
            .probe
            .protocols
            .chosen()
            .map(|x| x.as_str())
            .collect();
        let _ = writeln!(
            t,
            "  {:<width$} -> {:<width$}  {:<12}  every {}",
            p.source.identity.id.as_str(),
            p.peer.identity.id.as_str(),
            protocols.join(" "),
            short(p.peer.probe.interval.get()),
        );
    }

    let series = mesh.series();
    let _ = writeln!(
        t,
        "\nseries at the collector: {} (xcbench_collector_series; max_series defaults to 100000)",
        series.total()
    );
    for s in &series.probes {
        let kinds: Vec<&str> = probe_kinds(s.protocol).iter().map(|k| k.as_str()).collect();
        let _ = writeln!(
            t,
            "  probes {:<4} {:<32} load={:<5} {:>5} pairs x {} = {:>6}",
            s.protocol.as_str(),
            kinds.join(" "),
            s.load.as_str(),
            s.pairs,
            kinds.len(),
            s.series()
        );
    }
    for s in &series.tests {
        let flows: Vec<&str> = s.flows.iter().map(|f| f.as_str()).collect();
        let _ = writeln!(
            t,
            "  tests  {:<4} {:<43} {:>5} pairs x {} = {:>6}",
            s.protocol.as_str(),
            flows.join(" "),
            s.pairs,
            s.flows.len(),
            s.series()
        );
    }
    let _ = writeln!(
        t,
        "  (a probe series per source, peer, protocol, kind and load; load=\"bench\" ones appear\n  with a pair's first test; a test series per tester, peer, protocol and direction)"
    );

    let _ = writeln!(
        t,
        "\nnetwork rules (NSGs and security lists are stateful: replies are admitted)"
    );
    for side in mesh.rules() {
        let space: Vec<String> = side.address_space.iter().map(|b| b.to_string()).collect();
        let _ = writeln!(t, "  {} ({})", side.cloud.as_str(), space.join(", "));
        for r in &side.rules {
            let (way, dir) = match r.way {
                Way::Inbound => ("inbound ", "from"),
                Way::Outbound => ("outbound", "to  "),
            };
            let transport = match r.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
            };
            let ports: Vec<String> = r.ports.iter().map(u16::to_string).collect();
            let _ = writeln!(
                t,
                "    {way} {transport} {:<6} {dir} {:<28} {}",
                ports.join(","),
                r.remote.to_string(),
                r.purpose.text()
            );
        }
    }

    let warnings = mesh.warnings();
    if !warnings.is_empty() {
        let _ = writeln!(t, "\nwarnings");
        for w in warnings {
            let _ = writeln!(t, "  {w}");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_mesh_check_of_the_sample() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/mesh.sample.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let mesh = MeshFile::parse("deploy/mesh.sample.toml", &text).unwrap();
        crate::output::check_golden("mesh_check.txt", &render_check(&mesh));
    }

    /// The README's excerpt of the report is the golden file's, line for line.
    #[test]
    fn the_readme_excerpt_is_the_report() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let golden = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/mesh_check.txt"
        ))
        .unwrap();
        let excerpt = readme
            .split("```\ndeploy/mesh.sample.toml: valid\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("README.md shows the sample's mesh check");
        for line in excerpt.lines().filter(|l| l.trim() != "...") {
            assert!(
                golden.lines().any(|g| g == line),
                "README.md: {line:?} is not in the report"
            );
        }
    }

    #[test]
    fn warnings_are_listed() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/mesh.sample.toml");
        let text = std::fs::read_to_string(path).unwrap().replace(
            "collector = \"https://10.10.0.4:9862\"",
            "collector = \"https://collector.example:9862\"",
        );
        let mesh = MeshFile::parse("m", &text).unwrap();
        let out = render_check(&mesh);
        assert!(
            out.contains(
                "\nwarnings\n  the collector collector.example is in neither address space"
            ),
            "{out}"
        );
        assert!(out.contains("to   collector.example"), "{out}");
    }
}

//! What `xcbench mesh check` prints for a valid mesh: its sides, every directed pair with
//! its protocols, the series the collector will hold (as it counts them), the network rules
//! each side needs, and warnings (a golden file pins the sample's); and what `xcbench mesh
//! rules` and `mesh agent` print for the deploy scripts (lines) and other tools (JSON).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};
use xcbench_agent::config::mesh::plan::{Remote, Rule, Way};
use xcbench_agent::config::mesh::MeshFile;
use xcbench_agent::record::probe_kinds;
use xcbench_slo::text::{duration, span};
use xcbench_snapshot::{AgentId, Cloud};

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
            let urls: Vec<&str> = std::iter::once(c.url.as_str())
                .chain(c.fallbacks.iter().map(|s| s.url.as_str()))
                .collect();
            let sharded = match urls.len() {
                1 => String::new(),
                n => format!(
                    " [{n} shards: each agent reports to its rendezvous first and moves on only while that one is unreachable]"
                ),
            };
            format!(
                "{}, reports every {} ({channel}){sharded}",
                urls.join(", "),
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
            let transport = r.transport.as_str();
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

fn way(w: Way) -> &'static str {
    match w {
        Way::Inbound => "inbound",
        Way::Outbound => "outbound",
    }
}

fn remote_text(r: &Remote) -> String {
    match r {
        Remote::Space(blocks) => {
            let text: Vec<String> = blocks.iter().map(|b| b.to_string()).collect();
            text.join(",")
        }
        Remote::Host(h) => h.clone(),
    }
}

fn ports_text(r: &Rule) -> String {
    let ports: Vec<String> = r.ports.iter().map(u16::to_string).collect();
    ports.join(",")
}

/// `mesh rules`: a rule a line, tab-separated (see the command's help for the fields).
pub fn rules_lines(mesh: &MeshFile, side: Option<Cloud>) -> String {
    let mut t = String::new();
    for s in mesh
        .rules()
        .iter()
        .filter(|s| side.is_none_or(|c| c == s.cloud))
    {
        for r in &s.rules {
            let _ = writeln!(
                t,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                s.cloud.as_str(),
                way(r.way),
                r.transport.as_str(),
                ports_text(r),
                r.purpose.key(),
                r.purpose.order(),
                remote_text(&r.remote),
                r.purpose.text()
            );
        }
    }
    t
}

/// `mesh rules --json`: every side (or one) with its address space and rules.
pub fn rules_json(mesh: &MeshFile, side: Option<Cloud>) -> Value {
    let sides: Vec<Value> = mesh
        .rules()
        .iter()
        .filter(|s| side.is_none_or(|c| c == s.cloud))
        .map(|s| {
            let rules: Vec<Value> = s
                .rules
                .iter()
                .map(|r| {
                    let remote = match &r.remote {
                        Remote::Space(blocks) => json!({
                            "address_space": blocks.iter().map(|b| b.to_string()).collect::<Vec<_>>()
                        }),
                        Remote::Host(h) => json!({ "host": h }),
                    };
                    json!({
                        "way": way(r.way),
                        "transport": r.transport,
                        "ports": r.ports,
                        "purpose": r.purpose,
                        "order": r.purpose.order(),
                        "text": r.purpose.text(),
                        "remote": remote,
                    })
                })
                .collect();
            json!({
                "cloud": s.cloud.as_str(),
                "address_space": s.address_space.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
                "rules": rules,
            })
        })
        .collect();
    json!({ "mesh": mesh.file, "sides": sides })
}

/// `mesh agent ID`: the agent as the deploy scripts need it; `None` when the mesh has no
/// such agent.
pub fn agent(mesh: &MeshFile, id: &str) -> Option<Value> {
    let id: AgentId = id.parse().ok()?;
    let found = mesh.find(&id)?;
    let other = mesh
        .sides()
        .into_iter()
        .find(|s| s.cloud != found.side.cloud)?;
    let blocks = |s: &xcbench_agent::config::mesh::Side| -> Vec<String> {
        s.address_space.iter().map(|b| b.to_string()).collect()
    };
    let a = found.agent;
    Some(json!({
        "id": a.identity.id.as_str(),
        "cloud": found.side.cloud.as_str(),
        "region": a.identity.region,
        "address": a.address.to_string(),
        "ip": a.address.ip().to_string(),
        "port": a.address.port(),
        "quic_address": a.quic_address.to_string(),
        "quic_port": a.quic_address.port(),
        "address_space": blocks(found.side),
        "peer_address_space": blocks(other),
    }))
}

/// `mesh agent ID` as `key<TAB>value` lines, arrays comma-separated.
pub fn agent_lines(agent: &Value) -> String {
    let mut t = String::new();
    if let Some(fields) = agent.as_object() {
        for (k, v) in fields {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => {
                    let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                    items.join(",")
                }
                other => other.to_string(),
            };
            let _ = writeln!(t, "{k}\t{text}");
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

    /// The excerpt of the report in docs/agents-and-mesh.md is the golden file's, line for line.
    #[test]
    fn the_readme_excerpt_is_the_report() {
        let readme = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/agents-and-mesh.md"
        ))
        .unwrap();
        let golden = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/mesh_check.txt"
        ))
        .unwrap();
        let excerpt = readme
            .split("```\ndeploy/mesh.sample.toml: valid\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/agents-and-mesh.md shows the sample's mesh check");
        for line in excerpt.lines().filter(|l| l.trim() != "...") {
            assert!(
                golden.lines().any(|g| g == line),
                "docs/agents-and-mesh.md: {line:?} is not in the report"
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

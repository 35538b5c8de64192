//! Tests of `mesh.toml`: the sample, each refusal naming its field, the peers an agent
//! derives, and an agent configuration with a mesh applied.

use std::time::Duration;

use super::*;
use crate::config::{AgentConfig, ProbeInterval};

const SAMPLE: &str = include_str!("../../../../deploy/mesh.sample.toml");

/// Two agents a side, UDP only, no collector.
const SMALL: &str = r#"
[mesh]

[azure]
address_space = ["10.10.0.0/16"]

[[azure.agents]]
id = "az-1"
region = "eastus"
address = "10.10.0.5"

[[azure.agents]]
id = "az-2"
region = "eastus"
address = "10.10.0.6"

[oci]
address_space = ["10.20.0.0/16"]

[[oci.agents]]
id = "oci-1"
region = "us-ashburn-1"
address = "10.20.0.5"

[[oci.agents]]
id = "oci-2"
region = "us-ashburn-1"
address = "10.20.0.6:9000"
"#;

fn err(text: &str) -> String {
    MeshFile::parse("mesh.toml", text).unwrap_err().to_string()
}

fn id(s: &str) -> AgentId {
    s.parse().unwrap()
}

fn peer_ids(mesh: &MeshFile, of: &str) -> Vec<String> {
    mesh.peers_of(&id(of))
        .iter()
        .map(|a| a.identity.id.to_string())
        .collect()
}

#[test]
fn the_sample_is_a_4_by_4_mesh() {
    let m = MeshFile::parse("mesh.sample.toml", SAMPLE).unwrap();
    assert_eq!((m.azure.agents.len(), m.oci.agents.len()), (4, 4));
    assert_eq!(m.azure.address_space, vec!["10.10.0.0/16".parse().unwrap()]);
    assert_eq!(
        m.collector,
        Some(CollectorLink {
            url: "https://10.10.0.4:9862".into(),
            report_interval: Duration::from_secs(10),
            fingerprint: Some(
                "sha256:9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab"
                    .parse()
                    .unwrap()
            ),
            plain_http: false,
            fallbacks: Vec::new(),
        })
    );
    assert!(!m.same_side && !m.allow_loopback);
    let db4 = m.find(&id("oci-ashburn-db4")).unwrap();
    assert_eq!(db4.field(), "oci.agents[3]");
    assert_eq!(
        db4.agent.probe.interval,
        ProbeInterval::try_from(Duration::from_millis(20)).unwrap(),
        "a per-host override"
    );
    let db1 = m.find(&id("oci-ashburn-db1")).unwrap().agent;
    assert_eq!(
        db1.probe.interval,
        ProbeInterval::try_from(Duration::from_millis(100)).unwrap()
    );
    assert!(db1.probe.protocols.quic && db1.fingerprint.is_some());
    assert_eq!(db1.identity.cloud, Cloud::Oci);
    assert_eq!(db1.quic_address, "10.20.1.10:863".parse().unwrap());
    assert_eq!(m.pairs().len(), 32);
    let series = m.series();
    assert_eq!(series.total(), 480, "{series:#?}");
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
}

#[test]
fn agents_derive_the_other_side_and_with_same_side_their_siblings() {
    let m = MeshFile::parse("mesh.sample.toml", SAMPLE).unwrap();
    assert_eq!(
        peer_ids(&m, "az-eastus-app1"),
        [
            "oci-ashburn-db1",
            "oci-ashburn-db2",
            "oci-ashburn-db3",
            "oci-ashburn-db4"
        ]
    );
    assert_eq!(peer_ids(&m, "oci-ashburn-db3").len(), 4);
    assert!(peer_ids(&m, "nobody").is_empty());
    let same = MeshFile::parse(
        "mesh.toml",
        &SAMPLE.replace("same_side = false", "same_side = true"),
    )
    .unwrap();
    let peers = peer_ids(&same, "az-eastus-app1");
    assert_eq!(peers.len(), 7);
    assert_eq!(
        peers[4..],
        ["az-eastus-app2", "az-eastus-app3", "az-eastus-app4"]
    );
    assert_eq!(same.pairs().len(), 56);
}

#[test]
fn series_are_counted_as_the_collector_counts_them() {
    use xcbench_snapshot::{Load, Protocol};
    let m = MeshFile::parse("mesh.toml", SMALL).unwrap();
    let s = m.series();
    assert_eq!(
        s.probes,
        vec![plan::ProbeSeries {
            protocol: Protocol::Udp,
            load: Load::Idle,
            pairs: 8
        }]
    );
    assert!(s.tests.is_empty());
    assert_eq!(s.total(), 8);
    // TCP to one host only: its 2 pairs x (connect, rr).
    let tcp = SMALL.replace(
        "address = \"10.20.0.5\"",
        "address = \"10.20.0.5\"\nprotocols = [\"udp\", \"tcp\"]",
    );
    assert_eq!(MeshFile::parse("m", &tcp).unwrap().series().total(), 8 + 4);
    let sample = MeshFile::parse("m", SAMPLE).unwrap().series();
    let by = |load| -> usize {
        sample
            .probes
            .iter()
            .filter(|p| p.load == load)
            .map(|p| p.series())
            .sum()
    };
    assert_eq!((by(Load::Idle), by(Load::Bench)), (32 * 7, 32 * 7));
    assert_eq!(sample.tests.iter().map(|t| t.series()).sum::<usize>(), 32);
    let (head, rest) = SAMPLE.split_once("[mesh.schedule]").unwrap();
    let unscheduled = head.to_owned() + &rest[rest.find("[azure]").unwrap()..];
    let m = MeshFile::parse("m", &unscheduled).unwrap();
    assert_eq!(m.series().total(), 224, "32 directed pairs x 7 probe kinds");
}

#[test]
fn rules_admit_the_probes_the_tests_and_the_collector() {
    use crate::config::network::{Purpose, Transport};
    use plan::Way;
    let m = MeshFile::parse("m", SAMPLE).unwrap();
    let rules = m.rules();
    assert_eq!(rules.len(), 2);
    let azure = &rules[0];
    let has = |way, transport, port: u16, purpose| {
        azure.rules.iter().any(|r| {
            r.way == way
                && r.transport == transport
                && r.ports.contains(&port)
                && r.purpose == purpose
        })
    };
    assert!(has(Way::Inbound, Transport::Udp, 862, Purpose::Stamp));
    assert!(has(Way::Inbound, Transport::Tcp, 862, Purpose::TcpProbes));
    assert!(has(Way::Inbound, Transport::Udp, 863, Purpose::QuicProbes));
    assert!(has(Way::Outbound, Transport::Tcp, 864, Purpose::TestTcp));
    assert!(has(Way::Outbound, Transport::Udp, 865, Purpose::TestQuic));
    assert!(has(Way::Outbound, Transport::Tcp, 9862, Purpose::Collector));
    assert!(
        has(Way::Inbound, Transport::Tcp, 9862, Purpose::Collector),
        "the collector is on the Azure side"
    );
    let oci = &rules[1];
    assert!(!oci
        .rules
        .iter()
        .any(|r| r.way == Way::Inbound && r.purpose == Purpose::Collector));
    // UDP only, no schedule: STAMP's port, each side's own (oci-2 answers on 9000).
    let small = MeshFile::parse("m", SMALL).unwrap().rules();
    let ports: Vec<(Way, Vec<u16>)> = small[0]
        .rules
        .iter()
        .map(|r| (r.way, r.ports.clone()))
        .collect();
    assert_eq!(
        ports,
        [(Way::Inbound, vec![862]), (Way::Outbound, vec![862, 9000])]
    );
}

#[test]
fn refusals_name_the_field_the_value_and_what_was_expected() {
    for (from, to, want) in [
        (
            "id = \"oci-2\"",
            "id = \"az-1\"",
            "mesh.toml: oci.agents[1].id = \"az-1\": must be unique in the mesh: azure.agents[0] has it too",
        ),
        (
            "address = \"10.20.0.5\"",
            "address = \"10.30.0.5\"",
            "mesh.toml: oci.agents[0].address = \"10.30.0.5\": must be inside oci.address_space (10.20.0.0/16)",
        ),
        (
            "address_space = [\"10.20.0.0/16\"]",
            "address_space = [\"10.20.0.0/16\", \"10.10.128.0/20\"]",
            "mesh.toml: oci.address_space[1] = \"10.10.128.0/20\": must not overlap azure.address_space[0] = \"10.10.0.0/16\": the peering cannot route overlapping address spaces",
        ),
        (
            "address = \"10.10.0.6\"",
            "address = \"20.10.0.6\"",
            "mesh.toml: azure.agents[1].address = \"20.10.0.6\": must be private (RFC 1918 10/8, 172.16/12, 192.168/16; RFC 6598 100.64/10; IPv6 ULA fc00::/7): a private interconnect carries nothing else",
        ),
        (
            "address_space = [\"10.10.0.0/16\"]",
            "address_space = [\"20.10.0.0/16\"]",
            "mesh.toml: azure.address_space[0] = \"20.10.0.0/16\": must be private (RFC 1918 10/8, 172.16/12, 192.168/16; RFC 6598 100.64/10; IPv6 ULA fc00::/7): a private interconnect carries nothing else",
        ),
        (
            "address_space = [\"10.10.0.0/16\"]",
            "address_space = [\"10.10.0.1/16\"]",
            "mesh.toml: azure.address_space[0] = \"10.10.0.1/16\": must be a network address with its host bits zero, e.g. \"10.10.0.0/16\"",
        ),
        (
            "address = \"10.10.0.6\"",
            "address = \"10.10.0.5\"",
            "mesh.toml: azure.agents[1].address = \"10.10.0.5:862\": must be unique in the mesh: azure.agents[0] answers there",
        ),
        (
            "address = \"10.20.0.5\"",
            "address = \"10.20.0.5\"\nfingerprint = \"sha256:12\"",
            "mesh.toml: oci.agents[0].fingerprint = \"sha256:12\": must be \"sha256:\" followed by 64 hex digits",
        ),
        (
            "address = \"10.20.0.5\"",
            "address = \"10.20.0.5\"\ninterval = \"0ms\"",
            "mesh.toml: oci.agents[0].interval = \"0ms\": must be at least 1ms and at most 1h",
        ),
        (
            "[mesh]",
            "[mesh]\nreport_interval = \"5s\"",
            "mesh.toml: mesh.report_interval = \"5s\": needs mesh.collector beside it",
        ),
        (
            "[mesh]",
            "[mesh]\ncollector = \"http://10.10.0.4\"",
            "mesh.toml: mesh.collector = \"http://10.10.0.4\": must be https:// (the agent's [tls] key pair authenticates it to the collector): plain http:// only to a loopback address, or with mesh.plain_http = true (unauthenticated: anyone who reaches the collector could report in this agent's name)",
        ),
        (
            "[mesh]",
            "[mesh]\ncollector = \"ftp://10.10.0.4\"",
            "mesh.toml: mesh.collector = \"ftp://10.10.0.4\": must be an https:// URL such as \"https://10.0.0.5:9862\" (or http:// to loopback)",
        ),
        (
            "[mesh]",
            "[mesh]\ncollector = \"http://127.0.0.1:9862\"\ncollectors = [{ url = \"http://127.0.0.1:9863\" }]",
            "mesh.toml: mesh.collectors = (set): must not be set beside mesh.collector: list every collector in mesh.collectors",
        ),
        (
            "[mesh]",
            "[mesh]\ncollectors = []",
            "mesh.toml: mesh.collectors = []: must list at least one collector: [{ url = \"https://10.10.0.4:9862\", fingerprint = \"sha256:...\" }]",
        ),
        (
            "[mesh]",
            "[mesh]\ncollectors = [{ url = \"http://127.0.0.1:9862\" }, { url = \"http://127.0.0.1:9862/\" }]",
            "mesh.toml: mesh.collectors[1].url = \"http://127.0.0.1:9862/\": is mesh.collectors[0] too: list each collector once",
        ),
        (
            "[mesh]",
            "[mesh]\ncollectors = [{ url = \"http://127.0.0.1:9862\" }, { url = \"https://10.10.0.4:9862\", fingerprint = \"sha256:00\" }]",
            "mesh.toml: mesh.collectors[1].fingerprint = \"sha256:00\": must be \"sha256:\" followed by 64 hex digits",
        ),
        (
            "[mesh]",
            "[mesh]\ncollectors = [{ url = \"http://127.0.0.1:9862\" }]\ncollector_fingerprint = \"sha256:00\"",
            "mesh.toml: mesh.collector_fingerprint = \"sha256:00\": must not be set beside mesh.collectors: give each collector its fingerprint there",
        ),
        (
            "[mesh]",
            "[mesh]\ncollector = \"http://127.0.0.1:9862\"\ncollector_fingerprint = \"sha256:00\"",
            "mesh.toml: mesh.collector_fingerprint = \"sha256:00\": must be \"sha256:\" followed by 64 hex digits",
        ),
        (
            "[mesh]",
            "[mesh.schedule]\nevery = \"1h\"\npeers = [\"oci-1\"]",
            "mesh.toml: mesh.schedule.peers = [\"oci-1\"]: must not be set in a mesh: every agent tests each of its peers",
        ),
        (
            "[mesh]",
            "[mesh.schedule]\nevery = \"1s\"",
            "mesh.toml: mesh.schedule.every = \"1s\": must be 10s to 7d",
        ),
        (
            "address_space = [\"10.20.0.0/16\"]",
            "address_space = []",
            "mesh.toml: oci.address_space = []: must list the side's VNet or VCN blocks, e.g. [\"10.10.0.0/16\"]",
        ),
    ] {
        assert!(SMALL.contains(from), "{from}");
        assert_eq!(err(&SMALL.replacen(from, to, 1)), want);
    }
    // Unknown keys are named with their path (inside arrays of tables too), their line and
    // the keys that table takes.
    for (from, to, field) in [
        ("[mesh]", "[mesh]\ncolour = 1", "mesh.colour = 1: is not a field here (line 3): expected one of collector, "),
        (
            "region = \"eastus\"",
            "region = \"eastus\"\nrole = \"app\"",
            "azure.agents[0].role = \"app\": is not a field here (line 10): expected one of id, region, zone, address, ",
        ),
        ("[oci]", "[oci]\nvcn = \"x\"", "oci.vcn = \"x\": is not a field here (line 18): expected address_space or agents"),
    ] {
        let e = err(&SMALL.replacen(from, to, 1));
        assert!(e.starts_with(&format!("mesh.toml: {field}")), "{e}");
    }
    assert_eq!(
        err("[mesh]\n[azure]\naddress_space = []\n"),
        "mesh.toml: oci = (none): must be set"
    );
}

#[test]
fn loopback_only_where_a_test_allows_it() {
    let lo = SMALL
        .replace("10.10.0.0/16", "127.0.0.1/32")
        .replace("10.10.0.5", "127.0.0.1:7000")
        .replace("10.10.0.6", "127.0.0.1:7004")
        .replace("10.20.0.0/16", "127.0.0.2/31")
        .replace("10.20.0.5", "127.0.0.2:7008")
        .replace("10.20.0.6:9000", "127.0.0.3:7012");
    assert!(err(&lo)
        .starts_with("mesh.toml: azure.address_space[0] = \"127.0.0.1/32\": must be private"));
    let allowed = lo.replace("[mesh]", "[mesh]\nallow_loopback = true");
    let m = MeshFile::parse("mesh.toml", &allowed).unwrap();
    assert_eq!(m.warnings(), vec![plan::Warning::Loopback]);
    let overlapping = allowed.replace("127.0.0.2/31", "127.0.0.0/8");
    assert!(err(&overlapping).contains("must not overlap azure.address_space[0]"));
}

/// An agent of `SMALL`, whose file names the mesh.
fn agent(extra: &str) -> AgentConfig {
    AgentConfig::parse(
        "agent.toml",
        &format!("[agent]\nid = \"az-1\"\nmesh = \"mesh.toml\"\n{extra}"),
    )
    .unwrap()
}

fn agent_err(text: &str) -> String {
    AgentConfig::parse("agent.toml", text)
        .unwrap_err()
        .to_string()
}

#[test]
fn an_agent_takes_its_labels_peers_listen_and_collector_from_the_mesh() {
    let mesh = MeshFile::parse(
        "mesh.toml",
        &SMALL.replace(
            "[mesh]",
            "[mesh]\ncollector = \"http://10.10.0.4:9862\"\nplain_http = true\nreport_interval = \"2s\"\nsame_side = true",
        ),
    )
    .unwrap();
    let base = agent("");
    assert!(!base.peers_known());
    let c = base.with_mesh(&mesh).unwrap();
    assert!(c.peers_known());
    assert_eq!(
        (c.identity.cloud, c.identity.region.as_str()),
        (Cloud::Azure, "eastus")
    );
    let ids: Vec<&str> = c.peers.iter().map(|p| p.identity.id.as_str()).collect();
    assert_eq!(ids, ["oci-1", "oci-2", "az-2"]);
    assert_eq!(c.peers[1].address, "10.20.0.6:9000".parse().unwrap());
    assert_eq!(c.reflector.listen, vec!["10.10.0.5:862".parse().unwrap()]);
    assert_eq!(
        c.collector
            .as_ref()
            .map(|l| (l.url.as_str(), l.report_interval)),
        Some(("http://10.10.0.4:9862", Duration::from_secs(2)))
    );
    // Applied again (a newer mesh), from the applied configuration: the same.
    assert_eq!(c.with_mesh(&mesh).unwrap(), c);
    // The agent's own file wins for [reflector] and [collector].
    let own = agent(
        "plain_http = true\n[reflector]\nlisten = [\"10.10.0.5:862\"]\n[collector]\nurl = \"http://10.10.0.9:9862\"\n",
    )
    .with_mesh(&mesh)
    .unwrap();
    assert_eq!(own.reflector.listen, vec!["10.10.0.5:862".parse().unwrap()]);
    assert_eq!(own.collector.unwrap().url, "http://10.10.0.9:9862");
    // Labels the file sets must agree.
    let given = agent("cloud = \"azure\"\nregion = \"eastus\"\n");
    assert_eq!(given.with_mesh(&mesh).unwrap().peers.len(), 3);
}

/// A mesh with several collectors: each agent reports to its rendezvous first and keeps
/// the others, in its order, for when that one cannot be reached.
#[test]
fn agents_of_a_sharded_mesh_rank_its_collectors_by_rendezvous() {
    let urls = [
        "http://10.10.0.4:9862",
        "http://10.10.0.8:9862",
        "http://10.20.0.4:9862",
    ];
    let list: Vec<String> = urls
        .iter()
        .map(|u| format!("{{ url = \"{u}\" }}"))
        .collect();
    let mesh = MeshFile::parse(
        "mesh.toml",
        &SMALL.replace(
            "[mesh]",
            &format!(
                "[mesh]\ncollectors = [{}]\nplain_http = true",
                list.join(", ")
            ),
        ),
    )
    .unwrap();
    let listed = mesh.collector.as_ref().unwrap();
    assert_eq!(listed.url, urls[0]);
    assert_eq!(listed.fallbacks.len(), 2);
    let c = agent("").with_mesh(&mesh).unwrap();
    let link = c.collector.as_ref().unwrap();
    assert_eq!(link, &crate::config::rendezvous(listed, "az-1"));
    let mut order: Vec<&str> = std::iter::once(link.url.as_str())
        .chain(link.fallbacks.iter().map(|s| s.url.as_str()))
        .collect();
    order.sort_unstable();
    assert_eq!(order, urls, "every collector, once");
    assert!(link.plain_http);
}

#[test]
fn an_agent_and_its_mesh_must_agree() {
    let mesh = MeshFile::parse("mesh.toml", SMALL).unwrap();
    let with = |text: &str| {
        AgentConfig::parse("agent.toml", text)
            .unwrap()
            .with_mesh(&mesh)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        with("[agent]\nid = \"az-9\"\nmesh = \"mesh.toml\"\n"),
        "agent.toml: agent.id = \"az-9\": must be the id of an agent in mesh.toml (azure: az-1, az-2; oci: oci-1, oci-2)"
    );
    assert_eq!(
        with("[agent]\nid = \"az-1\"\ncloud = \"oci\"\nmesh = \"mesh.toml\"\n"),
        "agent.toml: agent.cloud = \"oci\": must be azure (or left out): mesh.toml lists az-1 as azure.agents[0]"
    );
    assert_eq!(
        with("[agent]\nid = \"az-1\"\nregion = \"westus\"\nmesh = \"mesh.toml\"\n"),
        "agent.toml: agent.region = \"westus\": must be \"eastus\" (or left out): mesh.toml lists az-1 as azure.agents[0]"
    );
    let quic = MeshFile::parse(
        "mesh.toml",
        &SMALL.replace("[mesh]", "[mesh.probe]\nprotocols = [\"udp\", \"quic\"]"),
    )
    .unwrap();
    let no_tls = agent("").with_mesh(&quic).unwrap_err().to_string();
    assert_eq!(
        no_tls,
        "mesh.toml: azure.agents[0].protocols = [.., \"quic\"]: az-1 is probed over quic: agent.toml needs a [tls] section (and reflector.quic)"
    );
    let unpinned = agent("[tls]\ndir = \"/k\"\n")
        .with_mesh(&quic)
        .unwrap_err()
        .to_string();
    assert!(
        unpinned.starts_with("mesh.toml: oci.agents[0].fingerprint = (none): must be set"),
        "{unpinned}"
    );
    let by_ca = agent("[tls]\ndir = \"/k\"\nca = \"/ca.pem\"\n").with_mesh(&quic);
    assert!(by_ca.is_ok(), "a CA replaces the pins");
    let scheduled = MeshFile::parse(
        "mesh.toml",
        &SMALL.replace("[mesh]", "[mesh.schedule]\nevery = \"1h\""),
    )
    .unwrap();
    assert!(agent("")
        .with_mesh(&scheduled)
        .unwrap_err()
        .to_string()
        .starts_with("mesh.toml: mesh.schedule = (set): needs a [tls] section in agent.toml"));
    let tested = agent("[tls]\ndir = \"/k\"\nca = \"/ca.pem\"\n")
        .with_mesh(&scheduled)
        .unwrap();
    let s = tested.throughput.schedule.unwrap();
    assert_eq!(s.peers.len(), 2, "every peer, vouched for by the CA");
}

#[test]
fn agent_toml_names_a_mesh_instead_of_peers() {
    let c = agent("");
    let link = c.mesh.as_ref().unwrap();
    assert_eq!(link.source, derive::MeshSource::File("mesh.toml".into()));
    assert!(!link.applied && c.peers.is_empty());
    let url = AgentConfig::parse(
        "a",
        "[agent]\nid = \"az-1\"\nmesh = \"http://10.10.0.4:9862/api/v1/mesh\"\nplain_http = true\n",
    )
    .unwrap();
    assert_eq!(
        url.mesh.unwrap().source,
        derive::MeshSource::Url("http://10.10.0.4:9862/api/v1/mesh".into())
    );
    let base = "[agent]\nid = \"az-1\"\nmesh = \"mesh.toml\"\n";
    for (extra, want) in [
        (
            "[[peers]]\nid = \"oci-1\"\ncloud = \"oci\"\nregion = \"r\"\naddress = \"10.20.0.5\"\n",
            "agent.toml: peers[0].id = \"oci-1\": must not be set with agent.mesh: the mesh lists the peers (remove [[peers]], or agent.mesh)",
        ),
        (
            "[probe_defaults]\ninterval = \"1s\"\n",
            "agent.toml: probe_defaults = (set): must not be set with agent.mesh: probe settings come from the mesh ([mesh.probe] and each agent's entry), so both ends of a pair agree",
        ),
        (
            "[bench]\nallow = [\"oci-1\"]\n",
            "agent.toml: bench.allow[0] = \"oci-1\": must not be set with agent.mesh: every agent of the mesh this agent can authenticate may ask",
        ),
    ] {
        assert_eq!(agent_err(&format!("{base}{extra}")), want);
    }
    assert_eq!(
        agent_err("[agent]\nid = \"az-1\"\nmesh = \"https://c/api/v1/mesh\"\n"),
        "agent.toml: agent.mesh = https://c/api/v1/mesh: is https://: the agent needs a [tls] section (its client certificate) and agent.mesh_fingerprint (the collector's, from `xcbench identity --collector collector.toml`) or tls.ca"
    );
    assert_eq!(
        agent_err("[agent]\nid = \"az-1\"\nmesh = \"http://10.10.0.4:9862/api/v1/mesh\"\n"),
        "agent.toml: agent.mesh = \"http://10.10.0.4:9862/api/v1/mesh\": must be the collector's https:// URL: plain http:// only to a loopback address, or with agent.plain_http = true (unauthenticated: anyone on the path could change the peers and their pins)"
    );
    assert_eq!(
        agent_err("[agent]\nid = \"az-1\"\nmesh = \"ftp://c/api/v1/mesh\"\n"),
        "agent.toml: agent.mesh = \"ftp://c/api/v1/mesh\": must be a file path, or the collector's https:// URL such as \"https://10.10.0.4:9862/api/v1/mesh\""
    );
    assert_eq!(
        agent_err("[agent]\nid = \"az-1\"\nmesh = \"mesh.toml\"\nmesh_fingerprint = \"sha256:9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab\"\n"),
        "agent.toml: agent.mesh_fingerprint = \"sha256:9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab\": pins the collector the mesh is fetched from: agent.mesh must then be an https:// URL"
    );
    // An https:// mesh with a key pair and the collector's pin parses.
    let https = AgentConfig::parse(
        "a",
        "[agent]\nid = \"az-1\"\nmesh = \"https://10.10.0.4:9862/api/v1/mesh\"\nmesh_fingerprint = \"sha256:9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab\"\n\n[tls]\ndir = \"/tmp/k\"\n",
    )
    .unwrap();
    assert!(https.mesh.unwrap().source.is_https());
    assert_eq!(
        agent_err("[agent]\nid = \"az-1\"\ncloud = \"other\"\nmesh = \"m\"\n"),
        "agent.toml: agent.cloud = \"other\": must be azure, oci or auto with agent.mesh (the side the mesh lists the agent on), or left out"
    );
    assert_eq!(
        agent_err("[agent]\nid = \"az-1\"\n"),
        "agent.toml: agent.cloud = (none): must be set (azure, oci, other, or auto to read it from instance metadata), or agent.mesh"
    );
}

#[test]
fn a_running_agent_takes_a_newer_mesh_when_its_peers_change() {
    let mesh = |text: &str| MeshFile::parse("mesh.toml", text).unwrap();
    let running = agent("").with_mesh(&mesh(SMALL)).unwrap();
    assert_eq!(running.update_with(&mesh(SMALL)).unwrap(), None);
    let grown = SMALL.to_owned()
        + "\n[[oci.agents]]\nid = \"oci-3\"\nregion = \"us-ashburn-1\"\naddress = \"10.20.0.7\"\n";
    let u = running.update_with(&mesh(&grown)).unwrap().unwrap();
    assert_eq!(u.added, vec![id("oci-3")]);
    assert!(u.removed.is_empty() && u.needs_restart.is_empty());
    assert_eq!(u.config.peers.len(), 3);
    let faster = SMALL.replace("[mesh]", "[mesh.probe]\ninterval = \"10ms\"");
    let u = running.update_with(&mesh(&faster)).unwrap().unwrap();
    assert!(u.added.is_empty() && u.removed.is_empty());
    assert_eq!(
        u.config.peers[0].probe.interval,
        ProbeInterval::try_from(Duration::from_millis(10)).unwrap()
    );
    // This agent's own entry changed: its peers are the same; a restart applies it.
    let moved = SMALL.replacen("region = \"eastus\"", "region = \"eastus2\"", 1);
    assert_eq!(running.update_with(&mesh(&moved)).unwrap(), None);
    let shrunk = SMALL.replace("id = \"oci-2\"", "id = \"az-3\"").replace(
        "address = \"10.20.0.6:9000\"",
        "address = \"10.20.0.6:9000\"\n",
    );
    let u = running.update_with(&mesh(&shrunk)).unwrap().unwrap();
    assert_eq!(u.removed, vec![id("oci-2")]);
    assert_eq!(u.added, vec![id("az-3")]);
    // Dropped from the mesh: the newer mesh is refused (the running agent keeps its peers).
    let without = SMALL.replace("id = \"az-1\"", "id = \"az-0\"");
    assert!(running
        .update_with(&mesh(&without))
        .unwrap_err()
        .to_string()
        .starts_with("agent.toml: agent.id = \"az-1\": must be the id of an agent in mesh.toml"));
}

/// Issue 21, item 1: port 0 is no agent's port (it was taken, and `mesh check` printed
/// rules for it).
#[test]
fn a_mesh_agent_needs_a_port() {
    assert_eq!(
        err(&SMALL.replace("10.10.0.5\"", "10.10.0.5:0\"")),
        "mesh.toml: azure.agents[0].address = \"10.10.0.5:0\": must have a port from 1 to 65532 (or none: 862): port 0 means any free port, which only reflector.listen may ask for"
    );
    assert_eq!(
        err(&SMALL.replace("address = \"10.20.0.6:9000\"", "address = \"10.20.0.6:9000\"\nquic_address = \"10.20.0.6:0\"")),
        "mesh.toml: oci.agents[1].quic_address = \"10.20.0.6:0\": must have a port from 1 to 65532 (or none: 862): port 0 means any free port, which only reflector.listen may ask for"
    );
    assert!(err(&SMALL.replace(
        "address = \"10.20.0.6:9000\"",
        "address = \"10.20.0.6:9000\"\npayload_size = \"big\""
    ))
    .starts_with("mesh.toml: oci.agents[1].payload_size = \"big\": must be an integer (line "));
}

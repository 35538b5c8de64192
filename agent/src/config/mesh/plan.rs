//! What a mesh makes of the network, as `xcbench mesh check` reports it: the directed
//! pairs ([`MeshFile::pairs`]), the series the collector will hold ([`MeshFile::series`],
//! counted as the collector counts them), and the rules each side's network security
//! groups or security lists need ([`MeshFile::rules`], from [`network::needs`]). Azure NSGs
//! and OCI security lists are stateful, so a rule admits the flow it starts and the replies.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use xcbench_snapshot::{Cloud, Flow, Load, Protocol};

use super::cidr::Cidr;
use super::{MeshAgent, MeshFile, Side};
use crate::config::network::{self, Purpose, Transport};
use crate::probe::throughput::report::flows;
use crate::record::probe_kinds;

/// A directed pair: `source` probes `peer`.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    pub source: &'a MeshAgent,
    pub peer: &'a MeshAgent,
}

/// Probe series of one protocol and load: `pairs` x the protocol's kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSeries {
    pub protocol: Protocol,
    pub load: Load,
    /// Directed pairs probed over the protocol.
    pub pairs: usize,
}

impl ProbeSeries {
    pub fn series(&self) -> usize {
        self.pairs * probe_kinds(self.protocol).len()
    }
}

/// Scheduled throughput tests of one protocol: `pairs` x the directions they measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestSeries {
    pub protocol: Protocol,
    pub flows: &'static [Flow],
    /// Directed pairs tested (each agent tests each of its peers).
    pub pairs: usize,
}

impl TestSeries {
    pub fn series(&self) -> usize {
        self.pairs * self.flows.len()
    }
}

/// The series the collector will hold for a mesh (what `xcbench_collector_series` counts
/// and `max_series` limits): probe series per (source, peer, protocol, kind, load), and
/// scheduled tests per (source, peer, protocol, direction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPlan {
    /// `load="idle"` for every pair; with a schedule, the `load="bench"` twins too (a pair's
    /// appear with its first test, either way).
    pub probes: Vec<ProbeSeries>,
    pub tests: Vec<TestSeries>,
}

impl SeriesPlan {
    pub fn total(&self) -> usize {
        self.probes.iter().map(ProbeSeries::series).sum::<usize>()
            + self.tests.iter().map(TestSeries::series).sum::<usize>()
    }
}

/// Which way a rule admits traffic, seen from its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Way {
    Inbound,
    Outbound,
}

/// The other end of a rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Remote {
    /// A side's address space.
    Space(Vec<Cidr>),
    /// The collector's host (an address or a name).
    Host(String),
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Space(blocks) => {
                let text: Vec<String> = blocks.iter().map(Cidr::to_string).collect();
                f.write_str(&text.join(", "))
            }
            Remote::Host(h) => f.write_str(h),
        }
    }
}

/// One rule: traffic of `transport` to `ports` (on this side for inbound, on the remote
/// side for outbound), from or to `remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub way: Way,
    pub transport: Transport,
    pub ports: Vec<u16>,
    pub remote: Remote,
    pub purpose: Purpose,
}

/// The rules one side needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideRules {
    pub cloud: Cloud,
    pub address_space: Vec<Cidr>,
    pub rules: Vec<Rule>,
}

/// Something valid that may still not do what was meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Probed over QUIC or tested, with no fingerprint: its peers need `tls.ca`.
    Unpinned { field: String, id: String },
    /// The collector's host is in neither address space (or is a name): its own network
    /// must admit every agent.
    CollectorOutside { host: String },
    /// `allow_loopback`: a test mesh.
    Loopback,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Unpinned { field, id } => write!(
                f,
                "{field} ({id}) has no fingerprint: every agent probing it over quic or testing it needs tls.ca"
            ),
            Warning::CollectorOutside { host } => write!(
                f,
                "the collector {host} is in neither address space: its network must admit both"
            ),
            Warning::Loopback => f.write_str("mesh.allow_loopback = true: loopback addresses are for tests only"),
        }
    }
}

impl MeshFile {
    /// Every directed pair, by source (Azure's agents first, in the file's order).
    pub fn pairs(&self) -> Vec<Pair<'_>> {
        self.agents()
            .flat_map(|source| {
                self.peers_of(&source.identity.id)
                    .into_iter()
                    .map(move |peer| Pair { source, peer })
            })
            .collect()
    }

    /// The series the collector will hold once every agent has reported (and, with a
    /// schedule, every pair has been tested): what `xcbench_collector_series` will show.
    pub fn series(&self) -> SeriesPlan {
        let pairs = self.pairs();
        let mut by_protocol: BTreeMap<Protocol, usize> = BTreeMap::new();
        for p in &pairs {
            for protocol in p.peer.probe.protocols.chosen() {
                *by_protocol.entry(protocol).or_default() += 1;
            }
        }
        let loads: &[Load] = match self.schedule {
            Some(_) => &[Load::Idle, Load::Bench],
            None => &[Load::Idle],
        };
        let probes = loads
            .iter()
            .flat_map(|&load| {
                by_protocol.iter().map(move |(&protocol, &n)| ProbeSeries {
                    protocol,
                    load,
                    pairs: n,
                })
            })
            .collect();
        let tests = self
            .schedule
            .iter()
            .flat_map(|s| {
                s.protocols.iter().map(|&protocol| TestSeries {
                    protocol,
                    flows: flows(s.direction),
                    pairs: pairs.len(),
                })
            })
            .collect();
        SeriesPlan { probes, tests }
    }

    /// Per side, the rules its network needs: inbound from the sides that probe it,
    /// outbound to the sides it probes, and every agent to the collector.
    pub fn rules(&self) -> Vec<SideRules> {
        type Key = (Cloud, Way, Purpose, Transport, Remote);
        let mut rules: BTreeMap<Key, BTreeSet<u16>> = BTreeMap::new();
        for pair in self.pairs() {
            let (from, to) = (self.side_of(pair.source), self.side_of(pair.peer));
            for (transport, port, purpose) in self.needs(pair.peer) {
                let space = |s: &Side| Remote::Space(s.address_space.clone());
                let inbound = (to.cloud, Way::Inbound, purpose, transport, space(from));
                rules.entry(inbound).or_default().insert(port);
                let outbound = (from.cloud, Way::Outbound, purpose, transport, space(to));
                rules.entry(outbound).or_default().insert(port);
            }
        }
        for (host, port) in self.collector_endpoints() {
            let everyone: Vec<Cidr> = self
                .sides()
                .iter()
                .flat_map(|s| s.address_space.iter().copied())
                .collect();
            for side in self.sides() {
                let to_collector = Remote::Host(host.clone());
                let key = (
                    side.cloud,
                    Way::Outbound,
                    Purpose::Collector,
                    Transport::Tcp,
                    to_collector,
                );
                rules.entry(key).or_default().insert(port);
                let hosts_collector = host
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| side.address_space.iter().any(|b| b.contains(ip)));
                if hosts_collector {
                    let from_all = Remote::Space(everyone.clone());
                    let key = (
                        side.cloud,
                        Way::Inbound,
                        Purpose::Collector,
                        Transport::Tcp,
                        from_all,
                    );
                    rules.entry(key).or_default().insert(port);
                }
            }
        }
        self.sides()
            .iter()
            .map(|side| SideRules {
                cloud: side.cloud,
                address_space: side.address_space.clone(),
                rules: rules
                    .iter()
                    .filter(|((cloud, ..), _)| *cloud == side.cloud)
                    .map(|((_, way, purpose, transport, remote), ports)| Rule {
                        way: *way,
                        transport: *transport,
                        ports: ports.iter().copied().collect(),
                        remote: remote.clone(),
                        purpose: *purpose,
                    })
                    .collect(),
            })
            .collect()
    }

    /// What is valid but may not be what was meant.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut w = Vec::new();
        if self.allow_loopback {
            w.push(Warning::Loopback);
        }
        for side in self.sides() {
            for (i, a) in side.agents.iter().enumerate() {
                let trusted_for = a.probe.protocols.quic || self.schedule.is_some();
                if a.fingerprint.is_none() && trusted_for {
                    w.push(Warning::Unpinned {
                        field: format!("{}.agents[{i}]", side.cloud),
                        id: a.identity.id.to_string(),
                    });
                }
            }
        }
        for (host, _) in self.collector_endpoints() {
            let inside = host.parse::<IpAddr>().is_ok_and(|ip| {
                self.sides()
                    .iter()
                    .any(|s| s.address_space.iter().any(|b| b.contains(ip)))
            });
            if !inside {
                w.push(Warning::CollectorOutside { host });
            }
        }
        w
    }

    fn side_of(&self, agent: &MeshAgent) -> &Side {
        match self
            .azure
            .agents
            .iter()
            .any(|a| a.identity == agent.identity)
        {
            true => &self.azure,
            false => &self.oci,
        }
    }

    /// What probing (and, with a schedule, testing) `peer` takes: transport, port, why.
    /// With a schedule every test protocol's data port is opened, not only the scheduled
    /// ones: `xcbench bench` by hand may test any protocol.
    fn needs(&self, peer: &MeshAgent) -> Vec<(Transport, u16, Purpose)> {
        let tests: &[Protocol] = match self.schedule {
            Some(_) => &[Protocol::Tcp, Protocol::Udp, Protocol::Quic],
            None => &[],
        };
        network::needs(
            peer.address,
            peer.quic_address,
            peer.probe.protocols.chosen(),
            tests,
        )
        .into_iter()
        .map(|n| (n.transport, n.addr.port(), n.purpose))
        .collect()
    }

    /// Every collector's host and TCP port (one, or each shard of a sharded mesh), from
    /// their URLs.
    pub fn collector_endpoints(&self) -> Vec<(String, u16)> {
        let Some(link) = &self.collector else {
            return Vec::new();
        };
        std::iter::once(link.url.as_str())
            .chain(link.fallbacks.iter().map(|s| s.url.as_str()))
            .filter_map(endpoint)
            .collect()
    }
}

/// The host and TCP port of a collector's URL.
fn endpoint(url: &str) -> Option<(String, u16)> {
    let (authority, default_port) = match url.strip_prefix("https://") {
        Some(rest) => (rest.split('/').next()?, 443),
        None => (url.strip_prefix("http://")?.split('/').next()?, 80),
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']')?;
            (host, rest.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse().ok()?,
    };
    Some((host.to_owned(), port))
}

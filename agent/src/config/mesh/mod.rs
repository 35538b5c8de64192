//! The mesh file (`mesh.toml`): one file for both sides of the interconnect. It lists the
//! Azure side and the OCI side (each an address space and its agents, with private
//! addresses, optional certificate pins and per-host probe settings), the probe settings
//! for every pair and the collector. Every agent started with it and its own id derives its
//! peers: every agent of the other side, and with `same_side` the others of its own
//! (perfSONAR pSConfig's "disjoint" groups).
//!
//! Parsed once, sans-IO, into a [`MeshFile`]; the errors name the file, the field, the value
//! and what was expected. Refused: unknown fields, an id listed twice (across both sides),
//! an address outside its side's address space, overlapping address spaces (the peering
//! cannot route them), anything but private addresses (loopback only with
//! `allow_loopback`, for tests).
//!
//! # Layout
//! - this file: [`MeshFile`], its [`Side`]s and [`MeshAgent`]s, parsing, and the peers an
//!   agent derives ([`MeshFile::peers_of`]).
//! - [`cidr`]: address spaces, and the ranges a mesh may use.
//! - [`derive`]: an agent's configuration with a mesh applied ([`AgentConfig::with_mesh`]).
//! - [`plan`]: what `xcbench mesh check` reports: the pairs, the series the collector will
//!   hold, the network rules each side needs.
//! - `raw`: the file as serde reads it.

pub mod cidr;
pub mod derive;
pub mod plan;
mod raw;

use std::net::{IpAddr, SocketAddr};

use xcbench_snapshot::{AgentId, Cloud, Expected, Identity};

use self::cidr::{Cidr, Scope};
use self::raw::{RawMeshAgent, RawMeshFile, RawSide};
use super::probe::parse_probe;
use super::throughput::parse_rounds;
use super::units::{parse_peer_address, Ctx};
use super::{
    parse_agent_entry, AgentEntry, CollectorLink, ConfigError, PeerConfig, ProbeSettings,
    ThroughputSchedule,
};
use crate::tls::Fingerprint;

#[cfg(doc)]
use super::AgentConfig;

/// A whole, valid mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshFile {
    /// Where it was read from, for messages.
    pub file: String,
    /// Where agents report, unless their own file has a `[collector]`.
    pub collector: Option<CollectorLink>,
    /// Agents also probe the other agents of their own side.
    pub same_side: bool,
    /// Loopback addresses are allowed besides the private ranges (tests only).
    pub allow_loopback: bool,
    /// Throughput tests every agent runs toward each of its peers (`peers` left empty: each
    /// agent fills in its own).
    pub schedule: Option<ThroughputSchedule>,
    pub azure: Side,
    pub oci: Side,
}

/// One side of the interconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub cloud: Cloud,
    /// The VNets or VCNs: where the agents are, and what the other side's rules admit.
    pub address_space: Vec<Cidr>,
    pub agents: Vec<MeshAgent>,
}

/// An agent as the mesh lists it: who it is, where it answers, and how it is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshAgent {
    pub identity: Identity,
    /// Where it answers STAMP and TCP probes.
    pub address: SocketAddr,
    /// Where it answers QUIC: `address` with port + 1 unless set.
    pub quic_address: SocketAddr,
    pub fingerprint: Option<Fingerprint>,
    /// How the others probe it: `[mesh.probe]` with its own entry's probe fields over it.
    pub probe: ProbeSettings,
}

impl MeshAgent {
    /// This agent as a peer of another.
    pub fn as_peer(&self) -> PeerConfig {
        PeerConfig {
            identity: self.identity.clone(),
            address: self.address,
            quic_address: self.quic_address,
            fingerprint: self.fingerprint,
            probe: self.probe.clone(),
        }
    }
}

/// Where an agent is in the mesh.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    pub side: &'a Side,
    /// Its index in its side's `agents`, for field names.
    pub index: usize,
    pub agent: &'a MeshAgent,
}

impl Found<'_> {
    /// `azure.agents[2]`: the entry's place in the file.
    pub fn field(&self) -> String {
        format!("{}.agents[{}]", self.side.cloud, self.index)
    }
}

impl MeshFile {
    /// Reads and parses a file; the error names the file.
    pub fn load(path: &std::path::Path) -> Result<MeshFile, ConfigError> {
        let (file, text) = xcbench_snapshot::config_text::read(path)?;
        MeshFile::parse(&file, &text)
    }

    /// Parses TOML text; `file` only names the source in errors.
    pub fn parse(file: &str, text: &str) -> Result<MeshFile, ConfigError> {
        MeshFile::parse_raw(file, text).map_err(super::document::capped)
    }

    fn parse_raw(file: &str, text: &str) -> Result<MeshFile, ConfigError> {
        let raw: RawMeshFile = super::document::from_toml(file, text)?;
        let cx = Ctx { file };
        let m = &raw.mesh;
        let allow_loopback = m.allow_loopback.unwrap_or(false);
        let scope = match allow_loopback {
            true => Scope::PrivateOrLoopback,
            false => Scope::Private,
        };
        let collector = parse_collectors(&cx, m)?;
        let probe = parse_probe(
            &cx,
            "mesh.probe",
            &m.probe.clone().unwrap_or_default(),
            ProbeSettings::default(),
        )?;
        let schedule = match &m.schedule {
            None => None,
            Some(s) if !s.peers.is_empty() => {
                return Err(cx.err(
                    "mesh.schedule.peers",
                    format!("{:?}", s.peers),
                    "must not be set in a mesh: every agent tests each of its peers",
                ))
            }
            Some(s) => Some(parse_rounds(&cx, "mesh.schedule", s)?),
        };
        let azure = parse_side(&cx, Cloud::Azure, &raw.azure, scope, probe.clone())?;
        let oci = parse_side(&cx, Cloud::Oci, &raw.oci, scope, probe)?;
        check_disjoint(&cx, &azure, &oci)?;
        let mesh = MeshFile {
            file: file.to_owned(),
            collector,
            same_side: m.same_side.unwrap_or(false),
            allow_loopback,
            schedule,
            azure,
            oci,
        };
        mesh.check_unique(&cx)?;
        Ok(mesh)
    }

    /// Both sides, Azure first.
    pub fn sides(&self) -> [&Side; 2] {
        [&self.azure, &self.oci]
    }

    /// Every agent, Azure's first, in the file's order.
    pub fn agents(&self) -> impl Iterator<Item = &MeshAgent> {
        self.azure.agents.iter().chain(&self.oci.agents)
    }

    /// The agent with `id`, its side and its place.
    pub fn find(&self, id: &AgentId) -> Option<Found<'_>> {
        self.sides().into_iter().find_map(|side| {
            let index = side.agents.iter().position(|a| &a.identity.id == id)?;
            Some(Found {
                side,
                index,
                agent: &side.agents[index],
            })
        })
    }

    /// The agents `id` probes: every agent of the other side, then with `same_side` the
    /// others of its own; none for an id not in the mesh.
    pub fn peers_of(&self, id: &AgentId) -> Vec<&MeshAgent> {
        let Some(me) = self.find(id) else {
            return Vec::new();
        };
        let other = match me.side.cloud {
            Cloud::Azure => &self.oci,
            _ => &self.azure,
        };
        let mut peers: Vec<&MeshAgent> = other.agents.iter().collect();
        if self.same_side {
            peers.extend(me.side.agents.iter().filter(|a| &a.identity.id != id));
        }
        peers
    }

    /// The ids, side by side, as an error message lists them: `azure: a, b; oci: c`.
    pub fn ids_text(&self) -> String {
        self.sides()
            .iter()
            .map(|s| {
                let ids: Vec<&str> = s.agents.iter().map(|a| a.identity.id.as_str()).collect();
                match ids.is_empty() {
                    true => format!("{}: none", s.cloud),
                    false => format!("{}: {}", s.cloud, ids.join(", ")),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Ids are unique across both sides, and so are the addresses agents answer at.
    fn check_unique(&self, cx: &Ctx) -> Result<(), ConfigError> {
        let entries: Vec<(String, &MeshAgent)> = self
            .sides()
            .iter()
            .flat_map(|s| {
                s.agents
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (format!("{}.agents[{i}]", s.cloud), a))
            })
            .collect();
        for (n, (at, a)) in entries.iter().enumerate() {
            let earlier = &entries[..n];
            if let Some((first, _)) = earlier.iter().find(|(_, b)| b.identity.id == a.identity.id) {
                return Err(cx.err(
                    &format!("{at}.id"),
                    format!("{:?}", a.identity.id.as_str()),
                    format!("must be unique in the mesh: {first} has it too"),
                ));
            }
            if let Some((first, _)) = earlier.iter().find(|(_, b)| b.address == a.address) {
                return Err(cx.err(
                    &format!("{at}.address"),
                    format!("\"{}\"", a.address),
                    format!("must be unique in the mesh: {first} answers there"),
                ));
            }
        }
        Ok(())
    }
}

/// `collector` (one) or `collectors` (shards, each its own URL and pin), with the report
/// interval and plain-HTTP opt-out they share. The link holds the first listed with the
/// others as fallbacks; each agent reorders them by rendezvous hash of its id.
fn parse_collectors(cx: &Ctx, m: &raw::RawMesh) -> Result<Option<CollectorLink>, ConfigError> {
    let interval = m.report_interval.as_deref();
    let plain = ("mesh.plain_http", m.plain_http.unwrap_or(false));
    match (&m.collector, &m.collectors) {
        (Some(_), Some(_)) => Err(cx.err(
            "mesh.collectors",
            "(set)",
            "must not be set beside mesh.collector: list every collector in mesh.collectors",
        )),
        (Some(url), None) => Ok(Some(super::collector_link(
            cx,
            ("mesh.collector", url),
            ("mesh.report_interval", interval),
            (
                "mesh.collector_fingerprint",
                m.collector_fingerprint.as_deref(),
            ),
            plain,
        )?)),
        (None, Some(list)) => {
            if let Some(f) = &m.collector_fingerprint {
                return Err(cx.err(
                    "mesh.collector_fingerprint",
                    format!("{f:?}"),
                    "must not be set beside mesh.collectors: give each collector its fingerprint there",
                ));
            }
            if list.is_empty() {
                return Err(cx.err(
                    "mesh.collectors",
                    "[]",
                    "must list at least one collector: [{ url = \"https://10.10.0.4:9862\", fingerprint = \"sha256:...\" }]",
                ));
            }
            let mut links = Vec::with_capacity(list.len());
            for (i, shard) in list.iter().enumerate() {
                let url_field = format!("mesh.collectors[{i}].url");
                let pin_field = format!("mesh.collectors[{i}].fingerprint");
                let link = super::collector_link(
                    cx,
                    (url_field.as_str(), shard.url.as_str()),
                    ("mesh.report_interval", interval),
                    (pin_field.as_str(), shard.fingerprint.as_deref()),
                    plain,
                )?;
                if let Some(j) = links.iter().position(|l: &CollectorLink| l.url == link.url) {
                    return Err(cx.err(
                        &url_field,
                        format!("{:?}", shard.url),
                        format!("is mesh.collectors[{j}] too: list each collector once"),
                    ));
                }
                links.push(link);
            }
            let mut first = links.remove(0);
            first.fallbacks = links
                .into_iter()
                .map(|l| super::Shard {
                    url: l.url,
                    fingerprint: l.fingerprint,
                })
                .collect();
            Ok(Some(first))
        }
        (None, None) => match interval {
            Some(i) => Err(cx.err(
                "mesh.report_interval",
                format!("{i:?}"),
                "needs mesh.collector beside it",
            )),
            None => Ok(None),
        },
    }
}

fn parse_side(
    cx: &Ctx,
    cloud: Cloud,
    raw: &RawSide,
    scope: Scope,
    probe: ProbeSettings,
) -> Result<Side, ConfigError> {
    if raw.address_space.is_empty() {
        return Err(cx.err(
            &format!("{cloud}.address_space"),
            "[]",
            "must list the side's VNet or VCN blocks, e.g. [\"10.10.0.0/16\"]",
        ));
    }
    let mut address_space = Vec::with_capacity(raw.address_space.len());
    for (i, text) in raw.address_space.iter().enumerate() {
        let field = format!("{cloud}.address_space[{i}]");
        let block: Cidr = text
            .parse()
            .map_err(|e: Expected| cx.err(&field, format!("{text:?}"), e.0))?;
        if !scope.admits(&block) {
            return Err(cx.err(&field, format!("{text:?}"), scope.expected()));
        }
        address_space.push(block);
    }
    let mut side = Side {
        cloud,
        address_space,
        agents: Vec::with_capacity(raw.agents.len()),
    };
    for (i, a) in raw.agents.iter().enumerate() {
        let agent = parse_agent(cx, &side, i, a, scope, probe.clone())?;
        side.agents.push(agent);
    }
    Ok(side)
}

fn parse_agent(
    cx: &Ctx,
    side: &Side,
    i: usize,
    raw: &RawMeshAgent,
    scope: Scope,
    probe: ProbeSettings,
) -> Result<MeshAgent, ConfigError> {
    let at = format!("{}.agents[{i}]", side.cloud);
    let own = raw.probe();
    let entry = AgentEntry {
        id: &raw.id,
        cloud: None,
        region: &raw.region,
        zone: raw.zone.as_deref(),
        address: &raw.address,
        quic_address: raw.quic_address.as_deref(),
        fingerprint: raw.fingerprint.as_deref(),
        probe: &own,
    };
    let a = parse_agent_entry(cx, &at, &entry, Some(side.cloud), probe, |field, text| {
        parse_placed(cx, side, field, text, scope)
    })?;
    Ok(MeshAgent {
        identity: a.identity,
        address: a.address,
        quic_address: a.quic_address,
        fingerprint: a.fingerprint,
        probe: a.probe,
    })
}

/// An agent's address: private (or loopback where allowed), inside its side's space, with
/// a port (the STAMP port by default).
fn parse_placed(
    cx: &Ctx,
    side: &Side,
    field: &str,
    text: &str,
    scope: Scope,
) -> Result<SocketAddr, ConfigError> {
    let addr = parse_peer_address(cx, field, text)?;
    let ip: IpAddr = addr.ip();
    if !scope.admits(&Cidr::host(ip)) {
        return Err(cx.err(field, format!("{text:?}"), scope.expected()));
    }
    if !side.address_space.iter().any(|b| b.contains(ip)) {
        let space: Vec<String> = side.address_space.iter().map(Cidr::to_string).collect();
        return Err(cx.err(
            field,
            format!("{text:?}"),
            format!(
                "must be inside {}.address_space ({})",
                side.cloud,
                space.join(", ")
            ),
        ));
    }
    Ok(addr)
}

/// No block of one side may overlap a block of the other: the peering could not tell
/// where an address in both is.
fn check_disjoint(cx: &Ctx, azure: &Side, oci: &Side) -> Result<(), ConfigError> {
    for (j, o) in oci.address_space.iter().enumerate() {
        if let Some((i, a)) = azure
            .address_space
            .iter()
            .enumerate()
            .find(|(_, a)| a.overlaps(o))
        {
            return Err(cx.err(
                &format!("oci.address_space[{j}]"),
                format!("\"{o}\""),
                format!(
                    "must not overlap azure.address_space[{i}] = \"{a}\": the peering cannot route overlapping address spaces"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;

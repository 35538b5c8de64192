//! One agent's configuration with a mesh applied ([`AgentConfig::with_mesh`]): `agent.toml`
//! names the mesh (`[agent] mesh`, a file or the collector's URL) and the agent's id; the
//! mesh gives the rest.
//!
//! What the agent takes from the mesh:
//! - its labels: the side it is listed on is its cloud; region and zone from its entry
//!   (values `agent.toml` sets must agree, and so must the cloud instance metadata reports
//!   with `cloud = "auto"`);
//! - its peers: every agent of the other side, and with `same_side` the others of its own,
//!   each probed with `[mesh.probe]` and that agent's own probe fields over it;
//! - where it listens, unless `agent.toml` has a `[reflector]`: at its mesh address, so
//!   replies leave from the address its peers probe (a host with several addresses) and an
//!   address that is not the host's fails at start;
//! - the collector and report interval, unless `agent.toml` has a `[collector]`;
//! - the throughput schedule (`[mesh.schedule]`) toward every peer it can authenticate (a
//!   fingerprint, or `tls.ca`).
//!
//! `agent.toml` keeps the agent's own matters (`[tls]`, timestamps, clock error,
//! `[bench]` limits); `[[peers]]`, `[probe_defaults]`, `bench.allow` and
//! `[bench.schedule]` are refused beside a mesh, so both ends of a pair probe alike and
//! `xcbench mesh check` counts what the agents will do.

use std::path::PathBuf;

use xcbench_snapshot::{AgentId, Cloud};

use super::MeshFile;
use crate::config::units::Ctx;
use crate::config::{check_quic_trust, AgentConfig, ConfigError};

/// `[agent] mesh`: where the mesh comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshSource {
    /// A file, read at start and again every report interval.
    File(PathBuf),
    /// The collector's `GET /api/v1/mesh`, fetched at start and every report interval.
    Url(String),
}

impl MeshSource {
    const EXPECTED: &'static str = "must be a file path, or the collector's https:// URL such as \"https://10.10.0.4:9862/api/v1/mesh\"";

    /// A path, or an `http://` or `https://` URL with a host.
    pub fn parse(text: &str) -> Result<MeshSource, &'static str> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return match super::super::url_host(text).is_none()
                || text.contains(char::is_whitespace)
            {
                true => Err(Self::EXPECTED),
                false => Ok(MeshSource::Url(text.to_owned())),
            };
        }
        if text.is_empty() || text.contains("://") {
            return Err(Self::EXPECTED);
        }
        Ok(MeshSource::File(PathBuf::from(text)))
    }
}

impl std::fmt::Display for MeshSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeshSource::File(p) => write!(f, "{}", p.display()),
            MeshSource::Url(u) => f.write_str(u),
        }
    }
}

/// An agent's tie to its mesh: the source, and what its own file says that the mesh must
/// agree with or fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshLink {
    pub source: MeshSource,
    /// `agent.toml`'s name, for messages about its fields.
    pub agent_file: String,
    /// `cloud = "auto"`: the cloud instance metadata reported is checked against the side.
    pub cloud_auto: bool,
    /// Region and zone as `agent.toml` sets them.
    pub region: Option<String>,
    pub zone: Option<String>,
    /// `agent.toml` has a `[reflector]` (else the agent listens at its mesh address).
    pub listen_given: bool,
    /// `agent.toml` has a `[collector]` (else the mesh's).
    pub collector_given: bool,
    /// The peers are the mesh's (the configuration may be bound).
    pub applied: bool,
    /// `[agent] mesh_fingerprint`: the collector's pin for an `https://` mesh URL, and for
    /// reports to the collector the mesh names when the mesh pins none.
    pub fingerprint: Option<crate::tls::Fingerprint>,
    /// `[agent] plain_http`: plain `http://` to a collector off loopback, on purpose.
    pub plain_http: bool,
}

impl MeshSource {
    /// Whether the mesh is fetched over `https://`.
    pub fn is_https(&self) -> bool {
        matches!(self, MeshSource::Url(u) if u.starts_with("https://"))
    }
}

/// What a newer mesh changes for a running agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshUpdate {
    /// The configuration with the newer mesh applied.
    pub config: AgentConfig,
    pub added: Vec<AgentId>,
    pub removed: Vec<AgentId>,
    /// What changed that only a restart applies: `labels`, `listen`, `collector`.
    pub needs_restart: Vec<&'static str>,
}

impl AgentConfig {
    /// A newer `mesh` over this running configuration: `None` when the peers (who, where,
    /// pins, probe settings) and the schedule stay as they are. The error is the newer
    /// mesh's: a running agent logs it and keeps what it has.
    pub fn update_with(&self, mesh: &MeshFile) -> Result<Option<MeshUpdate>, ConfigError> {
        let config = self.with_mesh(mesh)?;
        if config.peers == self.peers && config.throughput.schedule == self.throughput.schedule {
            return Ok(None);
        }
        let ids = |c: &AgentConfig| -> Vec<AgentId> {
            c.peers.iter().map(|p| p.identity.id.clone()).collect()
        };
        let (old, new) = (ids(self), ids(&config));
        let needs_restart = [
            ("labels", config.identity != self.identity),
            ("listen", config.reflector != self.reflector),
            ("collector", config.collector != self.collector),
        ]
        .into_iter()
        .filter_map(|(what, changed)| changed.then_some(what))
        .collect();
        Ok(Some(MeshUpdate {
            added: new.iter().filter(|id| !old.contains(id)).cloned().collect(),
            removed: old.iter().filter(|id| !new.contains(id)).cloned().collect(),
            needs_restart,
            config,
        }))
    }

    /// This configuration with `mesh` applied (see the module's notes); again on an applied
    /// one, the newer mesh's. Errors name `agent.toml`'s field where the agent's own file
    /// disagrees with the mesh, and the mesh's field where an entry does not work for this
    /// agent (QUIC toward a peer without a pin and no `tls.ca`, ...).
    pub fn with_mesh(&self, mesh: &MeshFile) -> Result<AgentConfig, ConfigError> {
        let Some(link) = &self.mesh else {
            return Err(ConfigError::Field {
                file: mesh.file.clone(),
                field: "agent.mesh".into(),
                value: "(none)".into(),
                expected: "must be set for a mesh to apply".into(),
            });
        };
        let acx = Ctx {
            file: &link.agent_file,
        };
        let mcx = Ctx { file: &mesh.file };
        let id = &self.identity.id;
        if self.auto.is_some() {
            return Err(acx.err(
                "agent.cloud",
                "\"auto\"",
                "instance metadata must be read before the mesh applies",
            ));
        }
        let me = mesh.find(id).ok_or_else(|| {
            acx.err(
                "agent.id",
                format!("{:?}", id.as_str()),
                format!(
                    "must be the id of an agent in {} ({})",
                    mesh.file,
                    mesh.ids_text()
                ),
            )
        })?;
        let side = me.side.cloud;
        // A cloud the file or instance metadata gives (`other` is refused beside a mesh).
        if self.identity.cloud != Cloud::Other && self.identity.cloud != side {
            let value = match link.cloud_auto {
                true => format!("\"auto\" (instance metadata: {})", self.identity.cloud),
                false => format!("\"{}\"", self.identity.cloud),
            };
            return Err(acx.err(
                "agent.cloud",
                value,
                format!(
                    "must be {side} (or left out): {} lists {id} as {}",
                    mesh.file,
                    me.field()
                ),
            ));
        }
        for (name, given, listed) in [
            ("region", &link.region, &me.agent.identity.region),
            ("zone", &link.zone, &me.agent.identity.zone),
        ] {
            if let Some(given) = given.as_ref().filter(|g| *g != listed) {
                return Err(acx.err(
                    &format!("agent.{name}"),
                    format!("{given:?}"),
                    format!(
                        "must be {listed:?} (or left out): {} lists {id} as {}",
                        mesh.file,
                        me.field()
                    ),
                ));
            }
        }
        let tls = self.tls.as_ref();
        if me.agent.probe.protocols.quic && !self.reflector.quic {
            return Err(mcx.err(
                &format!("{}.protocols", me.field()),
                "[.., \"quic\"]",
                format!(
                    "{id} is probed over quic: {} needs a [tls] section (and reflector.quic)",
                    link.agent_file
                ),
            ));
        }
        let mut peers = Vec::new();
        for peer in mesh.peers_of(id) {
            let at = mesh
                .find(&peer.identity.id)
                .map(|f| f.field())
                .unwrap_or_default();
            check_quic_trust(&mcx, (&at, &at), &peer.probe, peer.fingerprint, tls)?;
            peers.push(peer.as_peer());
        }
        let mut config = self.clone();
        config.identity = me.agent.identity.clone();
        if !link.listen_given {
            config.reflector.listen = vec![me.agent.address];
        }
        if !link.collector_given {
            // Several collectors: this agent's rendezvous order of them.
            config.collector = mesh
                .collector
                .as_ref()
                .map(|c| super::super::rendezvous(c, me.agent.identity.id.as_str()));
            if let Some(c) = &mut config.collector {
                if c.fingerprint.is_none() && c.is_https() && c.fallbacks.is_empty() {
                    c.fingerprint = link.fingerprint;
                }
                super::super::check_collector_trust(
                    &mcx,
                    "mesh.collector",
                    c,
                    tls,
                    &link.agent_file,
                )?;
            }
        }
        config.throughput.schedule = match (&mesh.schedule, tls) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(mcx.err(
                    "mesh.schedule",
                    "(set)",
                    format!(
                        "needs a [tls] section in {}: tests run over the agents' authenticated QUIC channel",
                        link.agent_file
                    ),
                ))
            }
            (Some(s), Some(t)) => {
                let mut s = s.clone();
                s.peers = peers
                    .iter()
                    .filter(|p| p.fingerprint.is_some() || t.ca.is_some())
                    .map(|p| p.identity.id.clone())
                    .collect();
                Some(s)
            }
        };
        config.peers = peers;
        if let Some(l) = &mut config.mesh {
            l.applied = true;
        }
        Ok(config)
    }
}

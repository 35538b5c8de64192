//! Agent configuration: `agent.toml` parsed once into typed values. Every default is
//! written once, in [`defaults`], and shown in `agent.sample.toml`; a test holds the two
//! together.
//!
//! Errors name the file, the field, the value and what was expected, e.g.
//! `agent.toml: peers[2].interval = "0ms": must be at least 1ms and at most 1h`.
//!
//! # Layout
//! - this file: [`AgentConfig`], its sections and peers, and `load`/`parse`.
//! - [`document`]: the TOML text into raw values; errors placed at their field and line,
//!   what they echo of the input capped.
//! - `collector`: `[collector]` and the mesh's collector: URL, pin, plain-HTTP opt-out.
//! - [`raw`]: the file as serde reads it (unknown fields refused).
//! - `entry`: the labels and agent entries agent.toml and the mesh file share, one parser.
//! - [`defaults`]: every default.
//! - [`mesh`]: `mesh.toml`, one file for both sides: parsing, what an agent derives from
//!   it, and what `xcbench mesh check` reports (pure).
//! - [`metadata`]: `cloud = "auto"`: instance metadata documents into labels (pure).
//! - [`network`]: the fleet's network facts: the port plan, what probing and testing a
//!   peer needs (transport, port, purpose).
//! - [`cloud`]: the Azure and OCI CLI commands that open a port.
//! - [`probe`]: how a peer is probed, in range-checked newtypes.
//! - [`throughput`]: `[bench]` and `[bench.schedule]`.
//! - [`tls`](mod@tls): `[tls]`.
//! - [`units`]: durations, rates, addresses, and the error context.

pub mod cloud;
mod collector;
pub mod defaults;
pub mod document;
mod entry;
pub mod mesh;
pub mod metadata;
pub mod network;
pub mod probe;
mod raw;
pub mod stamp_keys;
pub mod throughput;
pub mod tls;
pub mod units;

use std::net::SocketAddr;
use std::time::Duration;

use xcbench_snapshot::{Cloud, Expected, Identity, TimestampSource};

use self::mesh::derive::{MeshLink, MeshSource};
use self::metadata::{AutoLabels, MetadataUrl};
pub use self::network::PortPlan;
use self::probe::parse_probe;
pub use self::probe::{
    ConnectInterval, Dscp, LossTimeout, OutOfRange, PayloadSize, ProbeInterval, ProbeSettings,
    Protocols,
};
pub use self::throughput::{ThroughputLimits, ThroughputSchedule};
pub use self::tls::TlsConfig;
pub use self::units::{parse_duration_text, parse_rate, ConfigError};
pub use crate::tls::{Fingerprint, KeySource};
use collector::parse_collector;
pub(crate) use collector::{check_collector_trust, collector_link, is_loopback_host, url_host};
pub use collector::{rendezvous, CollectorLink, Shard};
pub(crate) use entry::{parse_agent_entry, parse_identity, AgentEntry, Labels};
use raw::{RawAgentConfig, RawIdentity};
use units::{parse_address, parse_fingerprint, parse_peer_address, within, Ctx};

/// A peer to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub identity: Identity,
    /// Where the peer answers STAMP and TCP probes.
    pub address: SocketAddr,
    /// Where the peer answers QUIC: `address` with port + 1 unless configured.
    pub quic_address: SocketAddr,
    /// The peer's certificate fingerprint, pinned for QUIC (or trusted through `tls.ca`).
    pub fingerprint: Option<Fingerprint>,
    pub probe: ProbeSettings,
}

/// The responders' sockets and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReflectorConfig {
    /// STAMP addresses; each port's [`PortPlan`] places the others.
    pub listen: Vec<SocketAddr>,
    pub max_sessions: usize,
    /// STAMP test packets answered per second, per source address and in all.
    pub rate: crate::probe::RateLimits,
    /// Also answer TCP probes on the same addresses and ports.
    pub tcp: bool,
    /// Also answer QUIC probes, on each address at port + 1 (needs `[tls]`).
    pub quic: bool,
    /// STAMP authenticated mode for every sender that is not a peer with keys of its own:
    /// with it (or with any peer's keys) only test packets that authenticate are answered.
    pub stamp_keys: Option<stamp_keys::KeyPath>,
}

impl ReflectorConfig {
    /// The defaults: every IPv4 address at the STAMP port, TCP on, QUIC with `[tls]`.
    pub fn defaults(tls: bool) -> ReflectorConfig {
        ReflectorConfig {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], defaults::STAMP_PORT))],
            max_sessions: defaults::MAX_SESSIONS,
            rate: crate::probe::RateLimits {
                per_source: defaults::MAX_RATE_PER_SOURCE,
                total: defaults::MAX_RATE,
            },
            tcp: defaults::REFLECT_TCP,
            quic: tls,
            stamp_keys: None,
        }
    }
}

/// A whole, valid agent configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// With `cloud = "auto"`, until [`AgentConfig::with_metadata`]: cloud `other` and the
    /// region and zone the file sets (or `""`).
    pub identity: Identity,
    /// `cloud = "auto"`: the labels instance metadata is to fill in at start
    /// ([`crate::net::metadata::resolve`]); `None` once resolved, or when the file sets them.
    pub auto: Option<AutoLabels>,
    /// Receive timestamps: kernel (SO_TIMESTAMPNS, the default) or user space on purpose,
    /// e.g. to compare with tools that timestamp in user space.
    pub timestamps: TimestampSource,
    /// Where the STAMP error estimate comes from: the kernel's NTP state (`auto`, the
    /// default) or a declared bound.
    pub clock_error: crate::wire::error_estimate::ClockErrorSource,
    pub reflector: ReflectorConfig,
    pub collector: Option<CollectorLink>,
    /// The key pair and trust for QUIC; without it QUIC is off.
    pub tls: Option<TlsConfig>,
    pub throughput: ThroughputLimits,
    /// The peers: `[[peers]]`, or those the mesh gives once applied.
    pub peers: Vec<PeerConfig>,
    /// `[agent] mesh`: the mesh this agent takes its peers from
    /// ([`AgentConfig::with_mesh`]).
    pub mesh: Option<MeshLink>,
    /// `[agent] spool`: snapshots wait here on disk until the collector takes them, so an
    /// agent restarted while its collector is unreachable loses none (without it they wait
    /// in memory).
    pub spool: Option<std::path::PathBuf>,
}

/// An agent configuration whose start-up steps are done: its labels read from instance
/// metadata (`cloud = "auto"`) and its mesh applied. `crate::agent::resolve` makes one by
/// taking both steps in order, [`Resolved::already`] from a configuration that needs
/// neither; `Agent::bind` takes only this, so a step left out is a compile error.
#[derive(Debug, Clone)]
pub struct Resolved(AgentConfig);

impl Resolved {
    /// A configuration that needs no start-up step, or itself back when it does.
    pub fn already(config: AgentConfig) -> Result<Resolved, Box<AgentConfig>> {
        match config.auto.is_none() && config.peers_known() {
            true => Ok(Resolved(config)),
            false => Err(Box::new(config)),
        }
    }

    pub fn config(&self) -> &AgentConfig {
        &self.0
    }

    /// Where it reports (the gate's `--measure` points it at a collector of its own).
    pub fn set_collector(&mut self, link: Option<CollectorLink>) {
        self.0.collector = link;
    }

    pub fn into_config(self) -> AgentConfig {
        self.0
    }
}

impl AgentConfig {
    /// Reads and parses a file; the error names the file. A mesh file it names (relative
    /// to its directory) is read and applied too, unless `cloud = "auto"` must be resolved
    /// first (`crate::agent::resolve` takes both steps at start).
    /// The files `[tls]` names are checked here too ([`tls::check_files`]).
    pub fn load(path: &std::path::Path) -> Result<AgentConfig, ConfigError> {
        let (file, text) = xcbench_snapshot::config_text::read(path)?;
        let mut config = AgentConfig::parse(&file, &text)?;
        if let Some(t) = &config.tls {
            tls::check_files(&file, &t.key, t.ca.as_deref()).map_err(document::capped)?;
        }
        if let Some(MeshLink {
            source: MeshSource::File(mesh_path),
            ..
        }) = &mut config.mesh
        {
            if mesh_path.is_relative() {
                let dir = path.parent().unwrap_or(std::path::Path::new(""));
                *mesh_path = dir.join(&*mesh_path);
            }
            if config.auto.is_none() {
                let mesh = mesh::MeshFile::load(mesh_path).map_err(|e| match e {
                    // Unreadable, it is this file's error; errors inside name the mesh file.
                    ConfigError::Read { message, .. } => Ctx { file: &file }.err(
                        "agent.mesh",
                        format!("{:?}", mesh_path.display().to_string()),
                        format!("must be a mesh file that can be read: {message}"),
                    ),
                    other => other,
                })?;
                config = config.with_mesh(&mesh)?;
            }
        }
        stamp_keys::KeyRing::load(&config).map_err(document::capped)?;
        Ok(config)
    }

    /// Whether the agent can bind: its peers are known (a mesh it names has been applied).
    pub fn peers_known(&self) -> bool {
        self.mesh.as_ref().is_none_or(|m| m.applied)
    }

    /// Parses TOML text; `file` only names the source in errors.
    pub fn parse(file: &str, text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse_raw(file, text).map_err(document::capped)
    }

    fn parse_raw(file: &str, text: &str) -> Result<AgentConfig, ConfigError> {
        let raw: RawAgentConfig = document::from_toml(file, text)?;
        let cx = Ctx { file };
        let mesh = raw
            .agent
            .mesh
            .as_ref()
            .map(|m| parse_mesh_link(&cx, m, &raw))
            .transpose()?;
        let (identity, auto) = parse_agent_identity(&cx, &raw.agent, mesh.is_some())?;
        let timestamps = match &raw.agent.timestamps {
            None => TimestampSource::Kernel,
            Some(t) => t
                .parse()
                .map_err(|e: Expected| cx.err("agent.timestamps", format!("{t:?}"), e.0))?,
        };
        let clock_error = match raw.agent.clock_error.as_deref() {
            None | Some("auto") => crate::wire::error_estimate::ClockErrorSource::Kernel,
            Some(t) => crate::wire::error_estimate::ClockErrorSource::Declared(
                within(
                    &cx,
                    "agent.clock_error",
                    t,
                    Duration::ZERO..=Duration::from_secs(16),
                    "must be \"auto\" (the kernel's NTP state) or a duration up to 16s, e.g. \"50us\"",
                )?
                .as_nanos() as u64,
            ),
        };
        let tls = raw
            .tls
            .as_ref()
            .map(|t| tls::parse_tls(&cx, t))
            .transpose()?;
        let reflector = parse_reflector(&cx, raw.reflector.as_ref(), tls.is_some())?;
        if let Some(m) = mesh.as_ref().filter(|m| m.source.is_https()) {
            let t = tls.as_ref();
            if t.is_none() || (m.fingerprint.is_none() && t.is_some_and(|t| t.ca.is_none())) {
                return Err(cx.err(
                    "agent.mesh",
                    format!("{}", m.source),
                    "is https://: the agent needs a [tls] section (its client certificate) and agent.mesh_fingerprint (the collector's, from `xcbench identity --collector collector.toml`) or tls.ca",
                ));
            }
        }
        let spool = match raw.agent.spool.as_deref() {
            None => None,
            Some(p) if p.is_empty() || !p.starts_with('/') => {
                return Err(cx.err(
                    "agent.spool",
                    format!("{p:?}"),
                    "must be an absolute directory path, e.g. \"/var/lib/xcbench/spool\"",
                ))
            }
            Some(p) => Some(std::path::PathBuf::from(p)),
        };
        let plain_http = raw.agent.plain_http.unwrap_or(false);
        let collector = raw
            .collector
            .as_ref()
            .map(|c| parse_collector(&cx, c, plain_http))
            .transpose()?;
        if let Some(c) = &collector {
            check_collector_trust(&cx, "collector", c, tls.as_ref(), "")?;
        }
        let defaults = parse_probe(
            &cx,
            "probe_defaults",
            &raw.probe_defaults.unwrap_or_default(),
            ProbeSettings::default(),
        )?;
        let mut peers = Vec::with_capacity(raw.peers.len());
        for (i, p) in raw.peers.iter().enumerate() {
            let peer = parse_peer(&cx, i, p, defaults.clone(), tls.as_ref())?;
            if peer.identity.id == identity.id {
                return Err(cx.err(
                    &format!("peers[{i}].id"),
                    format!("{:?}", p.id),
                    "must not be this agent's own id (agent.id): an agent does not probe itself",
                ));
            }
            if peers
                .iter()
                .any(|q: &PeerConfig| q.identity.id == peer.identity.id)
            {
                return Err(cx.err(
                    &format!("peers[{i}].id"),
                    format!("{:?}", p.id),
                    "must be unique among peers",
                ));
            }
            peers.push(peer);
        }
        let trust_by_ca = tls.as_ref().is_some_and(|t| t.ca.is_some());
        let throughput = throughput::parse_limits(&cx, raw.bench.as_ref(), &peers, trust_by_ca)?;
        if throughput.schedule.is_some() && tls.is_none() {
            return Err(cx.err(
                "bench.schedule",
                "(set)",
                "needs a [tls] section: tests run over the agents' authenticated QUIC channel",
            ));
        }
        Ok(AgentConfig {
            identity,
            auto,
            timestamps,
            clock_error,
            reflector,
            collector,
            tls,
            throughput,
            peers,
            mesh,
            spool,
        })
    }

    /// How often snapshots go (the default without a collector).
    pub fn report_interval(&self) -> Duration {
        self.collector
            .as_ref()
            .map_or(defaults::REPORT_INTERVAL, |c| c.report_interval)
    }
}

fn parse_reflector(
    cx: &Ctx,
    raw: Option<&raw::RawReflector>,
    tls: bool,
) -> Result<ReflectorConfig, ConfigError> {
    let mut r = ReflectorConfig::defaults(tls);
    let Some(raw) = raw else { return Ok(r) };
    r.listen = raw
        .listen
        .iter()
        .enumerate()
        .map(|(i, a)| parse_address(cx, &format!("reflector.listen[{i}]"), a))
        .collect::<Result<_, _>>()?;
    // Port 0 asks for any free port, so it may repeat; any other address binds once.
    for (i, a) in r.listen.iter().enumerate() {
        if let Some(j) = r.listen[..i].iter().position(|b| b == a && a.port() != 0) {
            return Err(cx.err(
                &format!("reflector.listen[{i}]"),
                format!("{:?}", raw.listen[i]),
                format!("must be unique: reflector.listen[{j}] is the same address, and an address is bound once"),
            ));
        }
    }
    if let Some(n) = raw.max_sessions {
        r.max_sessions = units::int_within(
            cx,
            "reflector.max_sessions",
            n,
            1..=1_000_000,
            "must be 1 to 1000000",
        )?;
    }
    let rate = |field: &str, n: i64| {
        units::int_within(
            cx,
            field,
            n,
            1..=10_000_000,
            "must be 1 to 10000000 (test packets per second)",
        )
    };
    if let Some(n) = raw.max_rate_per_source {
        r.rate.per_source = rate("reflector.max_rate_per_source", n)?;
    }
    if let Some(n) = raw.max_rate {
        r.rate.total = rate("reflector.max_rate", n)?;
    }
    if r.rate.per_source > r.rate.total {
        return Err(cx.err(
            "reflector.max_rate_per_source",
            r.rate.per_source,
            format!("must be at most reflector.max_rate ({})", r.rate.total),
        ));
    }
    r.tcp = raw.tcp.unwrap_or(defaults::REFLECT_TCP);
    r.quic = match raw.quic {
        Some(true) if !tls => {
            return Err(cx.err(
                "reflector.quic",
                true,
                "needs a [tls] section (the agent's key pair)",
            ))
        }
        Some(q) => q,
        None => tls,
    };
    r.stamp_keys = raw
        .stamp_keys
        .as_ref()
        .map(|t| stamp_keys::parse_path(cx, "reflector.stamp_keys", t))
        .transpose()?;
    Ok(r)
}

fn parse_peer(
    cx: &Ctx,
    i: usize,
    p: &raw::RawPeer,
    defaults: ProbeSettings,
    tls: Option<&TlsConfig>,
) -> Result<PeerConfig, ConfigError> {
    let at = format!("peers[{i}]");
    let probe = p.probe();
    let entry = AgentEntry {
        id: &p.id,
        cloud: Some(&p.cloud),
        region: &p.region,
        zone: p.zone.as_deref(),
        address: &p.address,
        quic_address: p.quic_address.as_deref(),
        fingerprint: p.fingerprint.as_deref(),
        probe: &probe,
    };
    let peer = parse_agent_entry(cx, &at, &entry, None, defaults, |field, text| {
        parse_peer_address(cx, field, text)
    })?;
    // QUIC the peer takes from [probe_defaults] is named there.
    let protocols_at = match p.protocols {
        None => "probe_defaults",
        Some(_) => &at,
    };
    check_quic_trust(cx, (protocols_at, &at), &peer.probe, peer.fingerprint, tls)?;
    Ok(peer)
}

/// A peer probed over QUIC needs this agent's key pair, and the peer's pinned fingerprint
/// or a CA. `protocols_at` is where its protocols are set, `at` the peer's entry.
fn check_quic_trust(
    cx: &Ctx,
    (protocols_at, at): (&str, &str),
    probe: &ProbeSettings,
    fingerprint: Option<Fingerprint>,
    tls: Option<&TlsConfig>,
) -> Result<(), ConfigError> {
    if !probe.protocols.quic {
        return Ok(());
    }
    match tls {
        None => Err(cx.err(
            &format!("{protocols_at}.protocols"),
            "[.., \"quic\"]",
            "quic needs a [tls] section (the agent's key pair)",
        )),
        Some(t) if t.ca.is_none() && fingerprint.is_none() => Err(cx.err(
            &format!("{at}.fingerprint"),
            "(none)",
            "must be set (\"sha256:...\", from `xcbench identity` on the peer) to probe it over quic, unless tls.ca is set",
        )),
        Some(_) => Ok(()),
    }
}

/// `[agent] mesh`: the source, and what the file sets that the mesh must agree with; what
/// the mesh alone decides (peers, probe settings, scheduled tests) must not be set here.
fn parse_mesh_link(cx: &Ctx, text: &str, raw: &RawAgentConfig) -> Result<MeshLink, ConfigError> {
    let source =
        MeshSource::parse(text).map_err(|e| cx.err("agent.mesh", format!("{text:?}"), e))?;
    let beside = "must not be set with agent.mesh";
    if let Some(p) = raw.peers.first() {
        return Err(cx.err(
            "peers[0].id",
            format!("{:?}", p.id),
            format!("{beside}: the mesh lists the peers (remove [[peers]], or agent.mesh)"),
        ));
    }
    if raw.probe_defaults.is_some() {
        return Err(cx.err(
            "probe_defaults",
            "(set)",
            format!("{beside}: probe settings come from the mesh ([mesh.probe] and each agent's entry), so both ends of a pair agree"),
        ));
    }
    if let Some(b) = &raw.bench {
        if let Some(id) = b.allow.first() {
            return Err(cx.err(
                "bench.allow[0]",
                format!("{id:?}"),
                format!("{beside}: every agent of the mesh this agent can authenticate may ask"),
            ));
        }
        if b.schedule.is_some() {
            return Err(cx.err(
                "bench.schedule",
                "(set)",
                format!("{beside}: the mesh's [mesh.schedule] sets the tests"),
            ));
        }
    }
    let a = &raw.agent;
    let plain_http = a.plain_http.unwrap_or(false);
    if let MeshSource::Url(url) = &source {
        let loopback = url_host(url).is_some_and(is_loopback_host);
        if url.starts_with("http://") && !loopback && !plain_http {
            return Err(cx.err(
                "agent.mesh",
                format!("{text:?}"),
                "must be the collector's https:// URL: plain http:// only to a loopback address, or with agent.plain_http = true (unauthenticated: anyone on the path could change the peers and their pins)",
            ));
        }
    }
    let fingerprint = a
        .mesh_fingerprint
        .as_ref()
        .map(|f| parse_fingerprint(cx, "agent.mesh_fingerprint", f))
        .transpose()?;
    if fingerprint.is_some() && !source.is_https() {
        return Err(cx.err(
            "agent.mesh_fingerprint",
            format!("{:?}", a.mesh_fingerprint.as_deref().unwrap_or_default()),
            "pins the collector the mesh is fetched from: agent.mesh must then be an https:// URL",
        ));
    }
    Ok(MeshLink {
        source,
        agent_file: cx.file.to_owned(),
        cloud_auto: a.cloud.as_deref() == Some("auto"),
        region: a.region.clone(),
        zone: a.zone.clone(),
        listen_given: raw.reflector.is_some(),
        collector_given: raw.collector.is_some(),
        applied: false,
        fingerprint,
        plain_http,
    })
}

/// `[agent]`: who this agent is; with `cloud = "auto"`, what instance metadata fills in
/// (the values the file sets are checked here and win later).
fn parse_agent_identity(
    cx: &Ctx,
    raw: &RawIdentity,
    mesh: bool,
) -> Result<(Identity, Option<AutoLabels>), ConfigError> {
    match (raw.cloud.as_deref(), mesh) {
        (None, false) => {
            return Err(cx.err(
                "agent.cloud",
                "(none)",
                "must be set (azure, oci, other, or auto to read it from instance metadata), or agent.mesh",
            ))
        }
        // The mesh gives the labels; the region and zone given are checked against it.
        (None, true) => return Ok((parse_identity(cx, "agent", &Labels::of(raw), Some(Cloud::Other))?, None)),
        (Some("other"), true) => {
            return Err(cx.err(
                "agent.cloud",
                "\"other\"",
                "must be azure, oci or auto with agent.mesh (the side the mesh lists the agent on), or left out",
            ))
        }
        _ => {}
    }
    if raw.cloud.as_deref() != Some("auto") {
        if let Some(url) = &raw.metadata_url {
            return Err(cx.err(
                "agent.metadata_url",
                format!("{url:?}"),
                "is read only with cloud = \"auto\"",
            ));
        }
        if raw.region.is_none() && !mesh {
            return Err(cx.err(
                "agent.region",
                "(none)",
                "must be set, or cloud = \"auto\" to read it from instance metadata",
            ));
        }
        return Ok((parse_identity(cx, "agent", &Labels::of(raw), None)?, None));
    }
    let url = match &raw.metadata_url {
        None => MetadataUrl::default(),
        Some(text) => MetadataUrl::parse(text)
            .map_err(|e| cx.err("agent.metadata_url", format!("{text:?}"), e.0))?,
    };
    let identity = parse_identity(cx, "agent", &Labels::of(raw), Some(Cloud::Other))?;
    let auto = AutoLabels {
        url,
        region: raw.region.clone(),
        zone: raw.zone.clone(),
    };
    Ok((identity, Some(auto)))
}

/// An identity; `cloud` given stands in for the file's (`cloud = "auto"`).
#[cfg(test)]
pub(crate) mod tests;

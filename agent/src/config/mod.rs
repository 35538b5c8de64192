//! Agent configuration: `agent.toml` parsed once into typed values. Every default lives in
//! [`ProbeSettings::default`] and the constants below, and is shown in `agent.sample.toml`.
//!
//! Errors name the file, the field, the value and what was expected, e.g.
//! `agent.toml: peers[2].interval = "0ms": must be at least 1ms`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use xcbench_snapshot::{AgentId, Cloud, Identity, TimestampSource};

use crate::probe::sender::MAX_WINDOW;
pub use crate::tls::{Fingerprint, KeySource, TlsConfig};
use crate::wire::{MAX_PACKET_LEN, UNAUTH_LEN};

/// The IANA port for STAMP (RFC 8762).
pub const STAMP_PORT: u16 = 862;
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_SESSIONS: usize = 4096;
/// QUIC probes are answered on the STAMP port number + 1 (a UDP port cannot serve both).
pub const QUIC_PORT_OFFSET: u16 = 1;

pub use xcbench_snapshot::config_text::ConfigError;

/// Time between probes to one peer (1 ms ..= 1 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeInterval(pub Duration);
/// How long a probe waits for its reply before it counts as lost (1 ms ..= 60 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossTimeout(pub Duration);
/// STAMP test packet size, the UDP payload (44 ..= 9000 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadSize(pub usize);
/// DiffServ code point for probe packets (0 ..= 63).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dscp(pub u8);

/// Which transports probe a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    /// STAMP over UDP.
    pub udp: bool,
    /// TCP connect and request/response probes (to the same port number over TCP).
    pub tcp: bool,
    /// QUIC handshake, resume (0-RTT), stream and DATAGRAM probes (to `quic_address`).
    pub quic: bool,
}

/// How one peer is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    pub interval: ProbeInterval,
    pub payload_size: PayloadSize,
    pub dscp: Dscp,
    pub loss_timeout: LossTimeout,
    pub protocols: Protocols,
    /// Time between fresh-connection probes (TCP connect, QUIC connect and resume).
    pub connect_interval: ProbeInterval,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            interval: ProbeInterval(Duration::from_millis(100)),
            payload_size: PayloadSize(UNAUTH_LEN),
            dscp: Dscp(0),
            loss_timeout: LossTimeout(Duration::from_secs(2)),
            protocols: Protocols {
                udp: true,
                tcp: false,
                quic: false,
            },
            connect_interval: ProbeInterval(Duration::from_secs(1)),
        }
    }
}

/// A peer to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub identity: Identity,
    pub address: SocketAddr,
    /// Where the peer answers QUIC: `address` with port + 1 unless configured.
    pub quic_address: SocketAddr,
    /// The peer's certificate fingerprint, pinned for QUIC (or trusted through `tls.ca`).
    pub fingerprint: Option<Fingerprint>,
    pub probe: ProbeSettings,
}

/// Where and how often snapshots go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorLink {
    /// Base URL, e.g. `http://10.0.0.5:9862`.
    pub url: String,
    pub report_interval: Duration,
}

/// The session-reflector's sockets and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReflectorConfig {
    pub listen: Vec<SocketAddr>,
    pub max_sessions: usize,
    /// Also answer TCP probes on the same addresses and ports.
    pub tcp: bool,
    /// Also answer QUIC probes, on each address at port + 1 (needs `[tls]`).
    pub quic: bool,
}

/// What this agent lets peers ask of it in throughput tests (`[bench]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchLimits {
    /// Answer tests at all (needs `[tls]` and the QUIC responder).
    pub enabled: bool,
    pub max_duration: Duration,
    /// Parallel connections per direction.
    pub max_streams: u16,
    /// Highest UDP rate a peer may ask for, bits/s.
    pub max_udp_rate_bps: u64,
    /// Peer ids that may ask (their pinned fingerprints); empty = every trusted client.
    pub allow: Vec<AgentId>,
    /// Tests this agent runs by itself (`[bench.schedule]`); none without the section.
    pub schedule: Option<BenchSchedule>,
}

/// Scheduled throughput tests: each listed peer gets a round every `every` (jittered by
/// +-10%, the first at a random point within the first period); a round is one test per
/// protocol, one after another, and never two tests at once on this agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchSchedule {
    pub every: Duration,
    pub duration: Duration,
    pub omit: Duration,
    pub protocols: Vec<crate::wire::throughput::BenchProtocol>,
    pub direction: crate::wire::throughput::Direction,
    pub streams: u16,
    /// UDP tests' rate, bits/s.
    pub udp_rate_bps: u64,
    /// TCP and QUIC tests' cap, bits/s (as fast as the path allows without one).
    pub max_rate_bps: Option<u64>,
    pub peers: Vec<AgentId>,
}

impl Default for BenchLimits {
    fn default() -> Self {
        BenchLimits {
            enabled: true,
            max_duration: Duration::from_secs(60),
            max_streams: 16,
            max_udp_rate_bps: 10_000_000_000,
            allow: Vec::new(),
            schedule: None,
        }
    }
}

/// A whole, valid agent configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub identity: Identity,
    /// Receive timestamps: kernel (SO_TIMESTAMPNS, the default) or user space on purpose,
    /// e.g. to compare with tools that timestamp in user space.
    pub timestamps: TimestampSource,
    pub reflector: ReflectorConfig,
    pub collector: Option<CollectorLink>,
    /// The key pair and trust for QUIC; without it QUIC is off.
    pub tls: Option<TlsConfig>,
    pub bench: BenchLimits,
    pub peers: Vec<PeerConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgentConfig {
    agent: RawIdentity,
    reflector: Option<RawReflector>,
    bench: Option<RawBench>,
    collector: Option<RawCollector>,
    tls: Option<RawTls>,
    probe_defaults: Option<RawProbe>,
    #[serde(default)]
    peers: Vec<RawPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    id: String,
    cloud: String,
    region: String,
    zone: Option<String>,
    #[serde(default)]
    timestamps: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReflector {
    listen: Vec<String>,
    max_sessions: Option<i64>,
    tcp: Option<bool>,
    quic: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBench {
    enabled: Option<bool>,
    max_duration: Option<String>,
    max_streams: Option<i64>,
    max_udp_rate: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    schedule: Option<RawSchedule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    every: String,
    duration: Option<String>,
    omit: Option<String>,
    protocols: Option<Vec<String>>,
    direction: Option<String>,
    streams: Option<i64>,
    udp_rate: Option<String>,
    max_rate: Option<String>,
    #[serde(default)]
    peers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    dir: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    url: String,
    report_interval: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    interval: Option<String>,
    payload_size: Option<i64>,
    dscp: Option<i64>,
    loss_timeout: Option<String>,
    protocols: Option<Vec<String>>,
    connect_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    id: String,
    cloud: String,
    region: String,
    zone: Option<String>,
    address: String,
    quic_address: Option<String>,
    fingerprint: Option<String>,
    #[serde(flatten)]
    probe: RawProbe,
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        field: &str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Field {
            file: self.file.to_owned(),
            field: field.to_owned(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

impl AgentConfig {
    /// Reads and parses a file; the error names the file.
    pub fn load(path: &std::path::Path) -> Result<AgentConfig, ConfigError> {
        let (file, text) = xcbench_snapshot::config_text::read(path)?;
        AgentConfig::parse(&file, &text)
    }

    /// Parses TOML text; `file` only names the source in errors.
    pub fn parse(file: &str, text: &str) -> Result<AgentConfig, ConfigError> {
        let raw: RawAgentConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.message().to_owned() + &span_hint(text, e.span()),
        })?;
        let cx = Ctx { file };
        let identity = parse_identity(&cx, "agent", &raw.agent)?;
        let timestamps = match &raw.agent.timestamps {
            None => TimestampSource::Kernel,
            Some(t) => t
                .parse()
                .map_err(|e: String| cx.err("agent.timestamps", format!("{t:?}"), e))?,
        };
        let tls = raw.tls.as_ref().map(|t| parse_tls(&cx, t)).transpose()?;
        let reflector = match raw.reflector {
            None => ReflectorConfig {
                listen: vec![SocketAddr::from(([0, 0, 0, 0], STAMP_PORT))],
                max_sessions: DEFAULT_MAX_SESSIONS,
                tcp: true,
                quic: tls.is_some(),
            },
            Some(r) => ReflectorConfig {
                listen: r
                    .listen
                    .iter()
                    .enumerate()
                    .map(|(i, a)| parse_address(&cx, &format!("reflector.listen[{i}]"), a))
                    .collect::<Result<_, _>>()?,
                max_sessions: match r.max_sessions {
                    None => DEFAULT_MAX_SESSIONS,
                    Some(n) if (1..=1_000_000).contains(&n) => n as usize,
                    Some(n) => {
                        return Err(cx.err("reflector.max_sessions", n, "must be 1 to 1000000"))
                    }
                },
                tcp: r.tcp.unwrap_or(true),
                quic: match r.quic {
                    Some(true) if tls.is_none() => {
                        return Err(cx.err(
                            "reflector.quic",
                            true,
                            "needs a [tls] section (the agent's key pair)",
                        ))
                    }
                    Some(q) => q,
                    None => tls.is_some(),
                },
            },
        };
        let collector = raw
            .collector
            .map(|c| -> Result<CollectorLink, ConfigError> {
                let url = c.url.trim_end_matches('/').to_owned();
                if !url.starts_with("http://") || url.len() <= "http://".len() {
                    return Err(cx.err(
                        "collector.url",
                        format!("{:?}", c.url),
                        "must be an http:// URL such as \"http://10.0.0.5:9862\"",
                    ));
                }
                let report_interval = match &c.report_interval {
                    None => DEFAULT_REPORT_INTERVAL,
                    Some(text) => {
                        let d = parse_duration(&cx, "collector.report_interval", text)?;
                        if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                            return Err(cx.err(
                                "collector.report_interval",
                                format!("{text:?}"),
                                "must be between 100ms and 1h",
                            ));
                        }
                        d
                    }
                };
                Ok(CollectorLink {
                    url,
                    report_interval,
                })
            })
            .transpose()?;
        let defaults = parse_probe(
            &cx,
            "probe_defaults",
            &raw.probe_defaults.unwrap_or_default(),
            ProbeSettings::default(),
        )?;
        let mut peers = Vec::with_capacity(raw.peers.len());
        for (i, p) in raw.peers.iter().enumerate() {
            let at = format!("peers[{i}]");
            let identity = parse_identity(
                &cx,
                &at,
                &RawIdentity {
                    id: p.id.clone(),
                    cloud: p.cloud.clone(),
                    region: p.region.clone(),
                    zone: p.zone.clone(),
                    timestamps: None,
                },
            )?;
            if peers
                .iter()
                .any(|q: &PeerConfig| q.identity.id == identity.id)
            {
                return Err(cx.err(
                    &format!("{at}.id"),
                    format!("{:?}", p.id),
                    "must be unique among peers",
                ));
            }
            let address = parse_address(&cx, &format!("{at}.address"), &p.address)?;
            let quic_address = match &p.quic_address {
                Some(a) => parse_address(&cx, &format!("{at}.quic_address"), a)?,
                None => {
                    SocketAddr::new(address.ip(), address.port().wrapping_add(QUIC_PORT_OFFSET))
                }
            };
            let fingerprint = p
                .fingerprint
                .as_ref()
                .map(|f| {
                    f.parse().map_err(|e: String| {
                        cx.err(&format!("{at}.fingerprint"), format!("{f:?}"), e)
                    })
                })
                .transpose()?;
            let probe = parse_probe(&cx, &at, &p.probe, defaults)?;
            if probe.protocols.quic {
                match &tls {
                    None => {
                        return Err(cx.err(
                            &format!("{at}.protocols"),
                            "[.., \"quic\"]",
                            "quic needs a [tls] section (the agent's key pair)",
                        ))
                    }
                    Some(t) if t.ca.is_none() && fingerprint.is_none() => {
                        return Err(cx.err(
                            &format!("{at}.fingerprint"),
                            "(none)",
                            "must be set (\"sha256:...\", from `xcbench identity` on the peer) to probe it over quic, unless tls.ca is set",
                        ))
                    }
                    Some(_) => {}
                }
            }
            peers.push(PeerConfig {
                identity,
                address,
                quic_address,
                fingerprint,
                probe,
            });
        }
        let trust_by_ca = tls.as_ref().is_some_and(|t| t.ca.is_some());
        let bench = parse_bench(&cx, raw.bench.as_ref(), &peers, trust_by_ca)?;
        if bench.schedule.is_some() && tls.is_none() {
            return Err(cx.err(
                "bench.schedule",
                "(set)",
                "needs a [tls] section: tests run over the agents' authenticated QUIC channel",
            ));
        }
        Ok(AgentConfig {
            identity,
            timestamps,
            reflector,
            collector,
            tls,
            bench,
            peers,
        })
    }
}

fn parse_bench(
    cx: &Ctx,
    raw: Option<&RawBench>,
    peers: &[PeerConfig],
    trust_by_ca: bool,
) -> Result<BenchLimits, ConfigError> {
    let mut b = BenchLimits::default();
    let Some(raw) = raw else { return Ok(b) };
    b.enabled = raw.enabled.unwrap_or(true);
    if let Some(text) = &raw.max_duration {
        let d = parse_duration(cx, "bench.max_duration", text)?;
        if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
            return Err(cx.err(
                "bench.max_duration",
                format!("{text:?}"),
                "must be 1s to 1h",
            ));
        }
        b.max_duration = d;
    }
    if let Some(n) = raw.max_streams {
        if !(1..=128).contains(&n) {
            return Err(cx.err("bench.max_streams", n, "must be 1 to 128"));
        }
        b.max_streams = n as u16;
    }
    if let Some(text) = &raw.max_udp_rate {
        b.max_udp_rate_bps = parse_bitrate(cx, "bench.max_udp_rate", text)?;
    }
    for (i, id) in raw.allow.iter().enumerate() {
        let field = format!("bench.allow[{i}]");
        match peers.iter().find(|p| p.identity.id.as_str() == id) {
            // Identified when it asks by its pinned certificate, or by a CA-issued one that
            // carries its id (a DNS name).
            Some(p)
                if p.fingerprint.is_some()
                    || (trust_by_ca && crate::tls::server_name(id) == id.as_str()) =>
            {
                b.allow.push(p.identity.id.clone())
            }
            Some(_) => return Err(cx.err(
                &field,
                format!("{id:?}"),
                "must name a peer with a fingerprint, or (with tls.ca) one whose id is a DNS name",
            )),
            None => {
                return Err(cx.err(
                    &field,
                    format!("{id:?}"),
                    "must be the id of a configured peer",
                ))
            }
        }
    }
    if let Some(raw) = &raw.schedule {
        b.schedule = Some(parse_schedule(cx, raw, peers, trust_by_ca)?);
    }
    Ok(b)
}

fn parse_bitrate(cx: &Ctx, field: &str, text: &str) -> Result<u64, ConfigError> {
    parse_rate(text)
        .filter(|r| (1_000..=100_000_000_000).contains(r))
        .ok_or_else(|| {
            cx.err(
                field,
                format!("{text:?}"),
                "must be a rate such as \"1G\", \"200M\" or \"500k\" (bits/s), 1k to 100G",
            )
        })
}

fn parse_schedule(
    cx: &Ctx,
    raw: &RawSchedule,
    peers: &[PeerConfig],
    trust_by_ca: bool,
) -> Result<BenchSchedule, ConfigError> {
    use crate::wire::throughput::{BenchProtocol, Direction};
    let span = |field: &str, text: &str, min: Duration, max: Duration, expected: &str| {
        let d = parse_duration(cx, field, text)?;
        if d < min || d > max {
            return Err(cx.err(field, format!("{text:?}"), expected));
        }
        Ok(d)
    };
    let every = span(
        "bench.schedule.every",
        &raw.every,
        Duration::from_secs(10),
        Duration::from_secs(7 * 86_400),
        "must be 10s to 7d",
    )?;
    let duration = match &raw.duration {
        Some(t) => span(
            "bench.schedule.duration",
            t,
            Duration::from_secs(1),
            Duration::from_secs(600),
            "must be 1s to 10m",
        )?,
        None => Duration::from_secs(10),
    };
    let omit = match &raw.omit {
        Some(t) => parse_duration(cx, "bench.schedule.omit", t)?,
        None => Duration::from_secs(1).min(duration / 2),
    };
    if omit >= duration {
        return Err(cx.err(
            "bench.schedule.omit",
            format!("{:?}", raw.omit.as_deref().unwrap_or_default()),
            "must be less than bench.schedule.duration",
        ));
    }
    let protocols = raw.protocols.clone().unwrap_or_else(|| vec!["tcp".into()]);
    if protocols.is_empty() {
        return Err(cx.err(
            "bench.schedule.protocols",
            "[]",
            "must name at least one of tcp, udp, quic",
        ));
    }
    let mut parsed = Vec::new();
    for (i, p) in protocols.iter().enumerate() {
        parsed.push(match p.as_str() {
            "tcp" => BenchProtocol::Tcp,
            "udp" => BenchProtocol::Udp,
            "quic" => BenchProtocol::Quic,
            _ => {
                return Err(cx.err(
                    &format!("bench.schedule.protocols[{i}]"),
                    format!("{p:?}"),
                    "must be tcp, udp or quic",
                ))
            }
        });
    }
    let direction = match raw.direction.as_deref().unwrap_or("forward") {
        "forward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        "bidirectional" => Direction::Bidirectional,
        other => {
            return Err(cx.err(
                "bench.schedule.direction",
                format!("{other:?}"),
                "must be forward, reverse or bidirectional",
            ))
        }
    };
    let streams = raw.streams.unwrap_or(1);
    if !(1..=128).contains(&streams) {
        return Err(cx.err("bench.schedule.streams", streams, "must be 1 to 128"));
    }
    let udp_rate_bps = match &raw.udp_rate {
        Some(t) => parse_bitrate(cx, "bench.schedule.udp_rate", t)?,
        None => 100_000_000,
    };
    let max_rate_bps = raw
        .max_rate
        .as_ref()
        .map(|t| parse_bitrate(cx, "bench.schedule.max_rate", t))
        .transpose()?;
    let trusted = |p: &PeerConfig| p.fingerprint.is_some() || trust_by_ca;
    let ids = if raw.peers.is_empty() {
        peers
            .iter()
            .filter(|p| trusted(p))
            .map(|p| p.identity.id.clone())
            .collect()
    } else {
        let mut ids = Vec::new();
        for (i, id) in raw.peers.iter().enumerate() {
            let field = format!("bench.schedule.peers[{i}]");
            match peers.iter().find(|p| p.identity.id.as_str() == id) {
                Some(p) if trusted(p) => ids.push(p.identity.id.clone()),
                Some(_) => {
                    return Err(cx.err(
                        &field,
                        format!("{id:?}"),
                        "must name a peer with a fingerprint (or set tls.ca)",
                    ))
                }
                None => {
                    return Err(cx.err(
                        &field,
                        format!("{id:?}"),
                        "must be the id of a configured peer",
                    ))
                }
            }
        }
        ids
    };
    Ok(BenchSchedule {
        every,
        duration,
        omit,
        protocols: parsed,
        direction,
        streams: streams as u16,
        udp_rate_bps,
        max_rate_bps,
        peers: ids,
    })
}

/// `1G`, `200M`, `500k`, `1000000`: bits per second, decimal prefixes (as iperf3's -b).
pub fn parse_rate(text: &str) -> Option<u64> {
    let (num, mult) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1e3),
        Some((i, 'm' | 'M')) => (&text[..i], 1e6),
        Some((i, 'g' | 'G')) => (&text[..i], 1e9),
        _ => (text, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && v.is_finite())
        .map(|v| (v * mult) as u64)
}

fn parse_tls(cx: &Ctx, raw: &RawTls) -> Result<TlsConfig, ConfigError> {
    let path = |field: &str, text: &String| -> Result<PathBuf, ConfigError> {
        if text.is_empty() {
            return Err(cx.err(field, "\"\"", "must be a path"));
        }
        Ok(PathBuf::from(text))
    };
    let key =
        match (&raw.dir, &raw.cert, &raw.key) {
            (Some(d), None, None) => KeySource::Dir(path("tls.dir", d)?),
            (None, Some(c), Some(k)) => KeySource::Files {
                cert: path("tls.cert", c)?,
                key: path("tls.key", k)?,
            },
            (None, Some(c), None) => {
                return Err(cx.err("tls.cert", format!("{c:?}"), "needs tls.key beside it"))
            }
            (None, None, Some(k)) => {
                return Err(cx.err("tls.key", format!("{k:?}"), "needs tls.cert beside it"))
            }
            (None, None, None) => return Err(cx.err(
                "tls",
                "{}",
                "must set dir (a key pair generated at first start) or cert and key (PEM files)",
            )),
            (Some(d), _, _) => {
                return Err(cx.err(
                    "tls.dir",
                    format!("{d:?}"),
                    "must not be set together with tls.cert and tls.key",
                ))
            }
        };
    let ca = raw.ca.as_ref().map(|c| path("tls.ca", c)).transpose()?;
    let allow = raw
        .allow
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.parse()
                .map_err(|e: String| cx.err(&format!("tls.allow[{i}]"), format!("{f:?}"), e))
        })
        .collect::<Result<_, _>>()?;
    Ok(TlsConfig { key, ca, allow })
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn parse_identity(cx: &Ctx, at: &str, raw: &RawIdentity) -> Result<Identity, ConfigError> {
    let id: AgentId = raw.id.parse().map_err(|_| {
        cx.err(
            &format!("{at}.id"),
            format!("{:?}", raw.id),
            "must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
        )
    })?;
    let cloud: Cloud = raw
        .cloud
        .parse()
        .map_err(|e: String| cx.err(&format!("{at}.cloud"), format!("{:?}", raw.cloud), e))?;
    let zone = raw.zone.clone().unwrap_or_default();
    for (name, value) in [("region", &raw.region), ("zone", &zone)] {
        xcbench_snapshot::label::check_label_value(value)
            .map_err(|e| cx.err(&format!("{at}.{name}"), format!("{value:?}"), e))?;
    }
    Ok(Identity {
        id,
        cloud,
        region: raw.region.clone(),
        zone,
    })
}

/// `IP:port`, `[IPv6]:port`, or a bare IP (port 862).
fn parse_address(cx: &Ctx, field: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, STAMP_PORT));
    }
    Err(cx.err(
        field,
        format!("{text:?}"),
        "must be an IP address with an optional port, e.g. \"10.1.0.5\" or \"10.1.0.5:862\"",
    ))
}

fn parse_probe(
    cx: &Ctx,
    at: &str,
    raw: &RawProbe,
    base: ProbeSettings,
) -> Result<ProbeSettings, ConfigError> {
    let mut p = base;
    if let Some(text) = &raw.interval {
        let d = parse_duration(cx, &format!("{at}.interval"), text)?;
        if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
            return Err(cx.err(
                &format!("{at}.interval"),
                format!("{text:?}"),
                "must be at least 1ms and at most 1h",
            ));
        }
        p.interval = ProbeInterval(d);
    }
    if let Some(text) = &raw.loss_timeout {
        let d = parse_duration(cx, &format!("{at}.loss_timeout"), text)?;
        if d < Duration::from_millis(1) || d > Duration::from_secs(60) {
            return Err(cx.err(
                &format!("{at}.loss_timeout"),
                format!("{text:?}"),
                "must be at least 1ms and at most 60s",
            ));
        }
        p.loss_timeout = LossTimeout(d);
    }
    if let Some(n) = raw.payload_size {
        if n < UNAUTH_LEN as i64 || n > MAX_PACKET_LEN as i64 {
            return Err(cx.err(
                &format!("{at}.payload_size"),
                n,
                format!("must be {UNAUTH_LEN} to {MAX_PACKET_LEN} bytes (the STAMP packet incl. padding)"),
            ));
        }
        p.payload_size = PayloadSize(n as usize);
    }
    if let Some(list) = &raw.protocols {
        let mut p2 = Protocols {
            udp: false,
            tcp: false,
            quic: false,
        };
        for (i, name) in list.iter().enumerate() {
            match name.as_str() {
                "udp" => p2.udp = true,
                "tcp" => p2.tcp = true,
                "quic" => p2.quic = true,
                other => {
                    return Err(cx.err(
                        &format!("{at}.protocols[{i}]"),
                        format!("{other:?}"),
                        "must be \"udp\", \"tcp\" or \"quic\"",
                    ))
                }
            }
        }
        if !(p2.udp || p2.tcp || p2.quic) {
            return Err(cx.err(
                &format!("{at}.protocols"),
                "[]",
                "must name at least one protocol",
            ));
        }
        p.protocols = p2;
    }
    if let Some(text) = &raw.connect_interval {
        let d = parse_duration(cx, &format!("{at}.connect_interval"), text)?;
        if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
            return Err(cx.err(
                &format!("{at}.connect_interval"),
                format!("{text:?}"),
                "must be at least 10ms and at most 1h",
            ));
        }
        p.connect_interval = ProbeInterval(d);
    }
    if let Some(n) = raw.dscp {
        if !(0..=63).contains(&n) {
            return Err(cx.err(&format!("{at}.dscp"), n, "must be 0 to 63"));
        }
        p.dscp = Dscp(n as u8);
    }
    // Probes in flight must fit the sender's matching window (with history for late replies).
    let in_flight = 2 * p.loss_timeout.0.as_nanos() / p.interval.0.as_nanos().max(1);
    if in_flight >= MAX_WINDOW as u128 {
        return Err(cx.err(
            &format!("{at}.loss_timeout"),
            format!("{:?}", p.loss_timeout.0),
            format!("must be less than {} intervals", MAX_WINDOW / 2),
        ));
    }
    Ok(p)
}

/// Durations such as `250us`, `10ms`, `1.5s`, `5m`, `1h` (the shared grammar).
pub use xcbench_snapshot::config_text::parse_duration as parse_duration_text;

fn parse_duration(cx: &Ctx, field: &str, text: &str) -> Result<Duration, ConfigError> {
    parse_duration_text(text).ok_or_else(|| {
        cx.err(
            field,
            format!("{text:?}"),
            "must be a duration such as \"250us\", \"10ms\", \"1s\", \"5m\"",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[agent]
id = "az-1"
cloud = "azure"
region = "eastus"

[[peers]]
id = "oci-1"
cloud = "oci"
region = "us-ashburn-1"
address = "10.1.0.5"
"#;

    fn err(text: &str) -> String {
        AgentConfig::parse("agent.toml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_apply() {
        let c = AgentConfig::parse("agent.toml", MINIMAL).unwrap();
        assert_eq!(c.reflector.listen, vec!["0.0.0.0:862".parse().unwrap()]);
        assert_eq!(c.peers[0].address, "10.1.0.5:862".parse().unwrap());
        assert_eq!(c.peers[0].probe, ProbeSettings::default());
        assert!(c.collector.is_none());
        assert_eq!(c.timestamps, TimestampSource::Kernel);
        let user = MINIMAL.replace(
            "region = \"eastus\"",
            "region = \"eastus\"\ntimestamps = \"user\"",
        );
        assert_eq!(
            AgentConfig::parse("a", &user).unwrap().timestamps,
            TimestampSource::User
        );
        let bad = MINIMAL.replace(
            "region = \"eastus\"",
            "region = \"eastus\"\ntimestamps = \"nic\"",
        );
        assert_eq!(
            err(&bad),
            "agent.toml: agent.timestamps = \"nic\": must be one of kernel, user"
        );
    }

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

    #[test]
    fn bench_limits_parse_and_name_their_errors() {
        assert_eq!(
            AgentConfig::parse("a", MINIMAL).unwrap().bench,
            BenchLimits::default()
        );
        let fp = "sha256:".to_owned() + &"ab".repeat(32);
        let with = |bench: &str| {
            MINIMAL.replace("[[peers]]", &format!("[bench]\n{bench}\n[[peers]]"))
                + &format!("fingerprint = \"{fp}\"\n")
        };
        let c = AgentConfig::parse(
            "a",
            &with("max_duration = \"30s\"\nmax_streams = 4\nmax_udp_rate = \"2G\"\nallow = [\"oci-1\"]"),
        )
        .unwrap();
        assert_eq!(c.bench.max_duration, Duration::from_secs(30));
        assert_eq!(
            (c.bench.max_streams, c.bench.max_udp_rate_bps),
            (4, 2_000_000_000)
        );
        assert_eq!(c.bench.allow[0].as_str(), "oci-1");
        assert_eq!(
            err(&with("allow = [\"db9\"]")),
            "agent.toml: bench.allow[0] = \"db9\": must be the id of a configured peer"
        );
        assert!(err(&with("max_udp_rate = \"fast\""))
            .starts_with("agent.toml: bench.max_udp_rate = \"fast\": must be a rate"));
        // An unpinned peer may be allowed where the CA names it: its id must be a DNS name.
        let unpinned = |tls: &str, id: &str| {
            MINIMAL
                .replace(
                    "[[peers]]",
                    &format!("{tls}[bench]\nallow = [\"{id}\"]\n[[peers]]"),
                )
                .replace("id = \"oci-1\"", &format!("id = \"{id}\""))
        };
        let ca = "[tls]\nca = \"/etc/ca.pem\"\ndir = \"/k\"\n";
        let c = AgentConfig::parse("a", &unpinned(ca, "oci-1")).unwrap();
        assert_eq!(c.bench.allow[0].as_str(), "oci-1");
        let no_name =
            "must name a peer with a fingerprint, or (with tls.ca) one whose id is a DNS name";
        assert_eq!(
            err(&unpinned(ca, "10.1.0.9")),
            format!("agent.toml: bench.allow[0] = \"10.1.0.9\": {no_name}")
        );
        assert_eq!(
            err(&unpinned("[tls]\ndir = \"/k\"\n", "oci-1")),
            format!("agent.toml: bench.allow[0] = \"oci-1\": {no_name}")
        );
        assert_eq!(
            err(&with("max_streams = 0")),
            "agent.toml: bench.max_streams = 0: must be 1 to 128"
        );
    }

    #[test]
    fn schedules_parse_with_defaults_and_name_their_errors() {
        use crate::wire::throughput::{BenchProtocol, Direction};
        let fp = "sha256:".to_owned() + &"ab".repeat(32);
        let with = |schedule: &str, tls: bool| {
            MINIMAL.replace(
                "[[peers]]",
                &format!(
                    "{}[bench.schedule]\n{schedule}\n[[peers]]",
                    if tls { "[tls]\ndir = \"/k\"\n" } else { "" }
                ),
            ) + &format!("fingerprint = \"{fp}\"\n")
        };
        let s = AgentConfig::parse("a", &with("every = \"1h\"", true))
            .unwrap()
            .bench
            .schedule
            .unwrap();
        assert_eq!(
            (s.every, s.duration, s.omit, s.streams, s.udp_rate_bps),
            (
                Duration::from_secs(3600),
                Duration::from_secs(10),
                Duration::from_secs(1),
                1,
                100_000_000
            )
        );
        assert_eq!(s.protocols, vec![BenchProtocol::Tcp]);
        assert_eq!(s.direction, Direction::Forward);
        assert_eq!(s.max_rate_bps, None, "no cap unless asked");
        assert_eq!(s.peers[0].as_str(), "oci-1");
        let s = AgentConfig::parse(
            "a",
            &with(
                "every = \"30m\"\nprotocols = [\"udp\", \"quic\"]\ndirection = \"bidirectional\"\npeers = [\"oci-1\"]\nmax_rate = \"500M\"",
                true,
            ),
        )
        .unwrap()
        .bench
        .schedule
        .unwrap();
        assert_eq!(s.protocols, vec![BenchProtocol::Udp, BenchProtocol::Quic]);
        assert_eq!(s.direction, Direction::Bidirectional);
        assert_eq!(s.max_rate_bps, Some(500_000_000));
        for (text, want) in [
            (
                "every = \"1s\"",
                "bench.schedule.every = \"1s\": must be 10s to 7d",
            ),
            (
                "every = \"1h\"\nprotocols = [\"sctp\"]",
                "bench.schedule.protocols[0] = \"sctp\": must be tcp, udp or quic",
            ),
            (
                "every = \"1h\"\nduration = \"5s\"\nomit = \"5s\"",
                "bench.schedule.omit = \"5s\": must be less than bench.schedule.duration",
            ),
            (
                "every = \"1h\"\npeers = [\"db9\"]",
                "bench.schedule.peers[0] = \"db9\": must be the id of a configured peer",
            ),
            (
                "every = \"1h\"\ndirection = \"up\"",
                "bench.schedule.direction = \"up\": must be forward, reverse or bidirectional",
            ),
            (
                "every = \"1h\"\nmax_rate = \"0\"",
                "bench.schedule.max_rate = \"0\": must be a rate such as \"1G\", \"200M\" or \"500k\" (bits/s), 1k to 100G",
            ),
        ] {
            assert_eq!(err(&with(text, true)), format!("agent.toml: {want}"));
        }
        assert!(err(&with("every = \"1h\"", false))
            .starts_with("agent.toml: bench.schedule = (set): needs a [tls] section"));
    }

    #[test]
    fn errors_name_file_field_value_and_expectation() {
        let bad = MINIMAL.to_owned() + "interval = \"0ms\"\n";
        assert_eq!(
            err(&bad),
            "agent.toml: peers[0].interval = \"0ms\": must be at least 1ms and at most 1h"
        );
        let bad = MINIMAL.replace("\"oci\"", "\"gcp\"");
        assert_eq!(
            err(&bad),
            "agent.toml: peers[0].cloud = \"gcp\": must be one of azure, oci, other"
        );
        let bad = MINIMAL.to_owned() + "payload_size = 20\n";
        assert!(err(&bad).starts_with("agent.toml: peers[0].payload_size = 20: must be 44 to 9000"));
        let bad = MINIMAL.to_owned() + "dscp = 64\n";
        assert_eq!(err(&bad), "agent.toml: peers[0].dscp = 64: must be 0 to 63");
        let bad = MINIMAL.replace("10.1.0.5", "db.example");
        assert!(
            err(&bad).starts_with("agent.toml: peers[0].address = \"db.example\": must be an IP")
        );
        let bad = MINIMAL.to_owned() + "colour = 1\n";
        assert!(
            err(&bad).contains("unknown field `colour`"),
            "{}",
            err(&bad)
        );
        let bad = MINIMAL.to_owned()
            + MINIMAL
                .split("[[peers]]")
                .nth(1)
                .map(|p| format!("[[peers]]{p}"))
                .unwrap()
                .as_str();
        assert_eq!(
            err(&bad),
            "agent.toml: peers[1].id = \"oci-1\": must be unique among peers"
        );
        let bad = MINIMAL.replace("[agent]", "[agent]\nfoo = [");
        assert!(err(&bad).starts_with("agent.toml: "), "{}", err(&bad));
    }
}

//! Throughput tests in `agent.toml` (`[bench]`, a public name kept from the first release):
//! what this agent lets peers ask of it ([`ThroughputLimits`]) and the tests it runs by
//! itself ([`ThroughputSchedule`], `[bench.schedule]`), which also knows the [`Test`] each
//! of its rounds asks for.

use std::time::Duration;

use xcbench_snapshot::AgentId;

use super::defaults;
use super::raw::{RawBench, RawSchedule};
use super::units::{int_within, parse_bitrate, parse_duration, within, ConfigError, Ctx};
use super::PeerConfig;
use crate::probe::throughput::{ServeLimits, SpecError, Test};
use crate::wire::throughput::{Direction, Protocol, TestSpec};

/// What this agent lets peers ask of it in throughput tests (`[bench]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThroughputLimits {
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
    pub schedule: Option<ThroughputSchedule>,
}

impl Default for ThroughputLimits {
    fn default() -> Self {
        ThroughputLimits {
            enabled: defaults::THROUGHPUT_ENABLED,
            max_duration: defaults::THROUGHPUT_MAX_DURATION,
            max_streams: defaults::THROUGHPUT_MAX_STREAMS,
            max_udp_rate_bps: defaults::THROUGHPUT_MAX_UDP_RATE_BPS,
            allow: Vec::new(),
            schedule: None,
        }
    }
}

impl ThroughputLimits {
    /// The limits a request is checked against.
    pub fn serve_limits(&self) -> ServeLimits {
        ServeLimits {
            max_duration_ms: self.max_duration.as_millis() as u64,
            max_streams: self.max_streams,
            max_udp_rate_bps: self.max_udp_rate_bps,
        }
    }
}

/// Scheduled throughput tests: each listed peer gets a round every `every` (jittered by
/// +-10%, the first at a random point within the first period); a round is one test per
/// protocol, one after another, and never two tests at once on this agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThroughputSchedule {
    pub every: Duration,
    pub duration: Duration,
    pub omit: Duration,
    pub protocols: Vec<Protocol>,
    pub direction: Direction,
    pub streams: u16,
    /// UDP tests' rate, bits/s.
    pub udp_rate_bps: u64,
    /// TCP and QUIC tests' cap, bits/s (as fast as the path allows without one).
    pub max_rate_bps: Option<u64>,
    pub peers: Vec<AgentId>,
}

impl ThroughputSchedule {
    /// A schedule of `every` with every other field at its default.
    pub fn every(every: Duration, peers: Vec<AgentId>) -> ThroughputSchedule {
        ThroughputSchedule {
            every,
            duration: defaults::SCHEDULE_DURATION,
            omit: defaults::schedule_omit(defaults::SCHEDULE_DURATION),
            protocols: vec![defaults::SCHEDULE_PROTOCOL],
            direction: defaults::SCHEDULE_DIRECTION,
            streams: defaults::SCHEDULE_STREAMS,
            udp_rate_bps: defaults::SCHEDULE_UDP_RATE_BPS,
            max_rate_bps: None,
            peers,
        }
    }

    /// The test a round asks for over `protocol`.
    pub fn test(&self, protocol: Protocol) -> Result<Test, SpecError> {
        Test::try_from(TestSpec {
            protocol,
            direction: self.direction,
            duration_ms: self.duration.as_millis() as u64,
            omit_ms: self.omit.as_millis() as u64,
            interval_ms: defaults::THROUGHPUT_INTERVAL.as_millis() as u64,
            streams: self.streams,
            write_bytes: defaults::write_bytes(protocol),
            bitrate_bps: match protocol {
                Protocol::Udp => Some(self.udp_rate_bps),
                Protocol::Tcp | Protocol::Quic => self.max_rate_bps,
            },
            congestion: None,
            window_bytes: None,
        })
    }
}

/// `[bench]` over the defaults. `trust_by_ca`: peers without a fingerprint can still be
/// identified (by the name a CA-issued certificate carries).
pub(crate) fn parse_limits(
    cx: &Ctx,
    raw: Option<&RawBench>,
    peers: &[PeerConfig],
    trust_by_ca: bool,
) -> Result<ThroughputLimits, ConfigError> {
    let mut b = ThroughputLimits::default();
    let Some(raw) = raw else { return Ok(b) };
    b.enabled = raw.enabled.unwrap_or(defaults::THROUGHPUT_ENABLED);
    if let Some(text) = &raw.max_duration {
        b.max_duration = within(
            cx,
            "bench.max_duration",
            text,
            Duration::from_secs(1)..=Duration::from_secs(3600),
            "must be 1s to 1h",
        )?;
    }
    if let Some(n) = raw.max_streams {
        b.max_streams = int_within(cx, "bench.max_streams", n, 1..=128, "must be 1 to 128")?;
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

fn parse_schedule(
    cx: &Ctx,
    raw: &RawSchedule,
    peers: &[PeerConfig],
    trust_by_ca: bool,
) -> Result<ThroughputSchedule, ConfigError> {
    let mut s = parse_rounds(cx, "bench.schedule", raw)?;
    let trusted = |p: &PeerConfig| p.fingerprint.is_some() || trust_by_ca;
    s.peers = if raw.peers.is_empty() {
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
    Ok(s)
}

/// A schedule's rounds at `at` (`bench.schedule`, or a mesh's `mesh.schedule`): every field
/// but `peers`, which is left empty.
pub(crate) fn parse_rounds(
    cx: &Ctx,
    at: &str,
    raw: &RawSchedule,
) -> Result<ThroughputSchedule, ConfigError> {
    let field = |name: &str| format!("{at}.{name}");
    let every = within(
        cx,
        &field("every"),
        &raw.every,
        Duration::from_secs(10)..=Duration::from_secs(7 * 86_400),
        "must be 10s to 7d",
    )?;
    let mut s = ThroughputSchedule::every(every, Vec::new());
    if let Some(t) = &raw.duration {
        s.duration = within(
            cx,
            &field("duration"),
            t,
            Duration::from_secs(1)..=Duration::from_secs(600),
            "must be 1s to 10m",
        )?;
    }
    s.omit = match &raw.omit {
        Some(t) => parse_duration(cx, &field("omit"), t)?,
        None => defaults::schedule_omit(s.duration),
    };
    if s.omit >= s.duration {
        return Err(cx.err(
            &field("omit"),
            format!("{:?}", raw.omit.as_deref().unwrap_or_default()),
            format!("must be less than {at}.duration"),
        ));
    }
    if let Some(protocols) = &raw.protocols {
        if protocols.is_empty() {
            return Err(cx.err(
                &field("protocols"),
                "[]",
                "must name at least one of tcp, udp, quic",
            ));
        }
        s.protocols = protocols
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse().map_err(|_| {
                    cx.err(
                        &format!("{at}.protocols[{i}]"),
                        format!("{p:?}"),
                        "must be tcp, udp or quic",
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(d) = &raw.direction {
        s.direction = match d.as_str() {
            "forward" => Direction::Forward,
            "reverse" => Direction::Reverse,
            "bidirectional" => Direction::Bidirectional,
            other => {
                return Err(cx.err(
                    &field("direction"),
                    format!("{other:?}"),
                    "must be forward, reverse or bidirectional",
                ))
            }
        };
    }
    if let Some(n) = raw.streams {
        s.streams = int_within(cx, &field("streams"), n, 1..=128, "must be 1 to 128")?;
    }
    if let Some(t) = &raw.udp_rate {
        s.udp_rate_bps = parse_bitrate(cx, &field("udp_rate"), t)?;
    }
    s.max_rate_bps = raw
        .max_rate
        .as_ref()
        .map(|t| parse_bitrate(cx, &field("max_rate"), t))
        .transpose()?;
    // Every round's test must be one an agent runs: checked now, not at the first round.
    for p in &s.protocols {
        s.test(*p)
            .map_err(|e| cx.err(at, format!("({p} test)"), e.to_string()))?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_caps_tcp_and_quic_and_paces_udp() {
        let s = ThroughputSchedule {
            streams: 2,
            max_rate_bps: Some(500_000_000),
            ..ThroughputSchedule::every(Duration::from_secs(3600), vec![])
        };
        let rate = |p| s.test(p).unwrap().bitrate_bps;
        assert_eq!(rate(Protocol::Udp), Some(defaults::SCHEDULE_UDP_RATE_BPS));
        assert_eq!(rate(Protocol::Tcp), Some(500_000_000));
        assert_eq!(rate(Protocol::Quic), Some(500_000_000));
        assert_eq!(
            s.test(Protocol::Udp).unwrap().write_bytes,
            defaults::THROUGHPUT_DATAGRAM_BYTES
        );
        assert_eq!(
            s.test(Protocol::Tcp).unwrap().write_bytes,
            defaults::THROUGHPUT_WRITE_BYTES
        );
        let uncapped = ThroughputSchedule {
            max_rate_bps: None,
            ..s
        };
        assert_eq!(uncapped.test(Protocol::Tcp).unwrap().bitrate_bps, None);
    }
}

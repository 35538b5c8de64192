//! `[collector]` in `agent.toml` and `[mesh] collector` in a mesh file: where snapshots go,
//! how often, how the collector is known (pin or `tls.ca`), and when plain HTTP is allowed
//! (loopback, or an explicit `plain_http`). A mesh may list several collectors
//! (`[mesh] collectors`, shards): each agent ranks them by rendezvous hash of its id
//! ([`rendezvous`]) and reports to the first it can reach, so a collector that is down moves
//! only its own agents, each to its next in rank.

use std::time::Duration;

use super::raw;
use super::tls::TlsConfig;
use super::units::{within, ConfigError, Ctx};
use super::{defaults, Fingerprint};

/// Where and how often snapshots go, and how the collector is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorLink {
    /// Base URL, e.g. `https://10.0.0.5:9862`.
    pub url: String,
    pub report_interval: Duration,
    /// The collector's certificate fingerprint, pinned for `https://` (else `tls.ca` must
    /// vouch for it under the URL's host name).
    pub fingerprint: Option<Fingerprint>,
    /// `http://` to an address that is not loopback, allowed on purpose
    /// (`[agent] plain_http`, `[mesh] plain_http`): unauthenticated, logged at start.
    pub plain_http: bool,
    /// The other collectors of a sharded mesh, in the order this agent tries them when the
    /// ones before cannot be reached (its rendezvous order once the mesh is applied).
    pub fallbacks: Vec<Shard>,
}

/// One more collector of a sharded mesh: its URL and pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub url: String,
    pub fingerprint: Option<Fingerprint>,
}

/// The collectors of `link` (its own first, then its fallbacks) in the rendezvous order of
/// `agent`: highest weight first, the weight of a collector a 64-bit mix of the agent's id
/// and the collector's URL (FNV-1a, then the SplitMix64 finaliser; stable across versions
/// and machines). Adding or removing one collector moves only the agents that rank it first.
pub fn rendezvous(link: &CollectorLink, agent: &str) -> CollectorLink {
    let mut all: Vec<Shard> = std::iter::once(Shard {
        url: link.url.clone(),
        fingerprint: link.fingerprint,
    })
    .chain(link.fallbacks.iter().cloned())
    .collect();
    all.sort_by_cached_key(|s| (std::cmp::Reverse(weight(agent, &s.url)), s.url.clone()));
    let first = all.remove(0);
    CollectorLink {
        url: first.url,
        fingerprint: first.fingerprint,
        fallbacks: all,
        ..link.clone()
    }
}

/// The rendezvous weight of `url` for `agent`.
fn weight(agent: &str, url: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in agent.bytes().chain([0]).chain(url.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl CollectorLink {
    /// Whether the link is `https://` (mutual TLS with the agent's `[tls]` key pair).
    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }
}

pub(super) fn parse_collector(
    cx: &Ctx,
    c: &raw::RawCollector,
    plain_http: bool,
) -> Result<CollectorLink, ConfigError> {
    collector_link(
        cx,
        ("collector.url", &c.url),
        ("collector.report_interval", c.report_interval.as_deref()),
        ("collector.fingerprint", c.fingerprint.as_deref()),
        ("agent.plain_http", plain_http),
    )
}

/// The host of an `http://` or `https://` URL (brackets kept off an IPv6 address), if it
/// has one.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// Whether a URL's host is a loopback address (or `localhost`).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A collector's URL, report interval, pin and plain-HTTP opt-out, each with the field it
/// is read from. Plain HTTP goes only to loopback unless opted out: anyone on the path
/// could read it, and the collector cannot tell who sent it.
pub(crate) fn collector_link(
    cx: &Ctx,
    (url_field, url_text): (&str, &str),
    (interval_field, interval): (&str, Option<&str>),
    (pin_field, pin): (&str, Option<&str>),
    (plain_field, plain_http): (&str, bool),
) -> Result<CollectorLink, ConfigError> {
    let url = url_text.trim_end_matches('/').to_owned();
    let https = url.starts_with("https://");
    let Some(host) = url_host(&url).filter(|_| !url.contains(char::is_whitespace)) else {
        return Err(cx.err(
            url_field,
            format!("{url_text:?}"),
            "must be an https:// URL such as \"https://10.0.0.5:9862\" (or http:// to loopback)",
        ));
    };
    if !https && !is_loopback_host(host) && !plain_http {
        return Err(cx.err(
            url_field,
            format!("{url_text:?}"),
            format!(
                "must be https:// (the agent's [tls] key pair authenticates it to the collector): plain http:// only to a loopback address, or with {plain_field} = true (unauthenticated: anyone who reaches the collector could report in this agent's name)"
            ),
        ));
    }
    let fingerprint = pin
        .map(|f| super::units::parse_fingerprint(cx, pin_field, f))
        .transpose()?;
    if fingerprint.is_some() && !https {
        return Err(cx.err(
            pin_field,
            format!("{:?}", pin.unwrap_or_default()),
            format!("pins the collector's certificate: {url_field} must then be https://"),
        ));
    }
    let report_interval = match interval {
        None => defaults::REPORT_INTERVAL,
        Some(text) => within(
            cx,
            interval_field,
            text,
            Duration::from_millis(100)..=Duration::from_secs(3600),
            "must be between 100ms and 1h",
        )?,
    };
    let plain_http = !https && !is_loopback_host(host);
    Ok(CollectorLink {
        url,
        report_interval,
        fingerprint,
        plain_http,
        fallbacks: Vec::new(),
    })
}

/// An `https://` collector needs the agent's key pair (its client certificate) and a way
/// to know the collector: a pin or `tls.ca`. `field` names where the link came from;
/// `agent_file` is added to the message when the link came from another file (the mesh).
pub(crate) fn check_collector_trust(
    cx: &Ctx,
    field: &str,
    link: &CollectorLink,
    tls: Option<&TlsConfig>,
    agent_file: &str,
) -> Result<(), ConfigError> {
    if !link.is_https() {
        return Ok(());
    }
    let at = if agent_file.is_empty() {
        String::new()
    } else {
        format!(" in {agent_file}")
    };
    match tls {
        None => Err(cx.err(
            field,
            format!("{:?}", link.url),
            format!("is https://: the agent needs a [tls] section{at} (its key pair is its client certificate)"),
        )),
        Some(t) if link.fingerprint.is_none() && t.ca.is_none() => Err(cx.err(
            field,
            format!("{:?}", link.url),
            format!("is https://: pin the collector with its fingerprint (`xcbench identity --collector collector.toml` prints it), or set tls.ca{at} to the CA that issued its certificate"),
        )),
        Some(t) => match link.fallbacks.iter().find(|s| s.fingerprint.is_none()) {
            Some(s) if t.ca.is_none() => Err(cx.err(
                field,
                format!("{:?}", s.url),
                format!("is https://: pin this collector with its fingerprint, or set tls.ca{at} to the CA that issued its certificate"),
            )),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(urls: &[&str]) -> CollectorLink {
        CollectorLink {
            url: urls[0].into(),
            report_interval: Duration::from_secs(10),
            fingerprint: None,
            plain_http: false,
            fallbacks: urls[1..]
                .iter()
                .map(|u| Shard {
                    url: (*u).into(),
                    fingerprint: None,
                })
                .collect(),
        }
    }

    /// Agents spread evenly over the collectors, the order does not depend on how the mesh
    /// lists them, and a collector that goes moves only the agents that ranked it first,
    /// each to its second.
    #[test]
    fn rendezvous_spreads_agents_and_a_lost_collector_moves_only_its_own() {
        let three = [
            "https://10.0.0.4:9862",
            "https://10.0.0.5:9862",
            "https://10.0.0.6:9862",
        ];
        let agents: Vec<String> = (0..3000).map(|i| format!("az-app-{i}")).collect();
        let first = |urls: &[&str], a: &str| rendezvous(&link(urls), a).url;
        let mut per = std::collections::BTreeMap::<String, usize>::new();
        for a in &agents {
            *per.entry(first(&three, a)).or_default() += 1;
            let reversed = [three[2], three[1], three[0]];
            assert_eq!(
                rendezvous(&link(&three), a),
                rendezvous(&link(&reversed), a)
            );
        }
        assert_eq!(per.len(), 3);
        for (url, n) in &per {
            assert!((900..=1100).contains(n), "{url}: {n} of 3000");
        }
        let two = [three[0], three[2]];
        for a in &agents {
            let ranked = rendezvous(&link(&three), a);
            let moved = first(&two, a);
            if ranked.url == three[1] {
                assert_eq!(moved, ranked.fallbacks[0].url, "{a} goes to its second");
            } else {
                assert_eq!(moved, ranked.url, "{a} stays");
            }
        }
        // Pinned: the weights do not change between versions or machines (values computed
        // apart from this code, from FNV-1a and the SplitMix64 finaliser as documented).
        assert_eq!(
            weight("az-1", "https://10.0.0.4:9862"),
            0x5104_dd58_1f2c_c68d
        );
        assert_eq!(
            weight("az-1", "https://10.0.0.5:9862"),
            0x96cb_cf5f_a626_8a07
        );
    }
}

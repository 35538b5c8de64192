//! `[collector]` in `agent.toml` and `[mesh] collector` in a mesh file: where snapshots go,
//! how often, how the collector is known (pin or `tls.ca`), and when plain HTTP is allowed
//! (loopback, or an explicit `plain_http`).

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
        Some(_) => Ok(()),
    }
}

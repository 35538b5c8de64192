//! The labels and agent entries every configuration file writes the same way: an agent's
//! own `[agent]` labels, a `[[peers]]` entry of agent.toml and an `[[azure.agents]]` or
//! `[[oci.agents]]` entry of the mesh file, each parsed by one function
//! ([`parse_identity`], [`parse_agent_entry`]) so both files refuse the same values with the
//! same words.

use std::net::SocketAddr;

use xcbench_snapshot::{AgentId, Cloud, Expected, Identity};

use super::probe::parse_probe;
use super::raw::{self, RawIdentity};
use super::units::{parse_fingerprint, Ctx};
use super::{ConfigError, PeerConfig, PortPlan, ProbeSettings};

/// An agent as a `[[peers]]` entry of agent.toml or an `[[azure.agents]]`/`[[oci.agents]]`
/// entry of the mesh file names it, as written.
pub(crate) struct AgentEntry<'a> {
    pub(crate) id: &'a str,
    /// `None` where the place in the file says it (a mesh side).
    pub(crate) cloud: Option<&'a str>,
    pub(crate) region: &'a str,
    pub(crate) zone: Option<&'a str>,
    pub(crate) address: &'a str,
    pub(crate) quic_address: Option<&'a str>,
    pub(crate) fingerprint: Option<&'a str>,
    pub(crate) probe: &'a raw::RawProbe,
}

/// The one parser of an agent entry, at `at` (`peers[2]`, `oci.agents[0]`): its labels
/// (`cloud` given by the file's structure, else the entry's), its address and QUIC address
/// (`address` checks each: a peer's any address, a mesh agent's inside its side), the QUIC
/// port from the port plan when not given, its pin, and how it is probed over `defaults`.
pub(crate) fn parse_agent_entry(
    cx: &Ctx,
    at: &str,
    e: &AgentEntry<'_>,
    cloud: Option<Cloud>,
    defaults: ProbeSettings,
    address: impl Fn(&str, &str) -> Result<SocketAddr, ConfigError>,
) -> Result<PeerConfig, ConfigError> {
    let identity = parse_identity(
        cx,
        at,
        &Labels {
            id: e.id,
            cloud: e.cloud,
            region: Some(e.region),
            zone: e.zone,
        },
        cloud,
    )?;
    let addr = address(&format!("{at}.address"), e.address)?;
    let quic_address = match e.quic_address {
        Some(text) => address(&format!("{at}.quic_address"), text)?,
        None => PortPlan::at(addr, PortPlan::quic),
    };
    let fingerprint = e
        .fingerprint
        .map(|f| parse_fingerprint(cx, &format!("{at}.fingerprint"), f))
        .transpose()?;
    let probe = parse_probe(cx, at, e.probe, defaults)?;
    Ok(PeerConfig {
        identity,
        address: addr,
        quic_address,
        fingerprint,
        probe,
    })
}

/// An agent's labels as a file writes them (`agent`, a peer, a mesh agent).
pub(crate) struct Labels<'a> {
    pub(crate) id: &'a str,
    pub(crate) cloud: Option<&'a str>,
    pub(crate) region: Option<&'a str>,
    pub(crate) zone: Option<&'a str>,
}

impl<'a> Labels<'a> {
    pub(crate) fn of(raw: &'a RawIdentity) -> Labels<'a> {
        Labels {
            id: &raw.id,
            cloud: raw.cloud.as_deref(),
            region: raw.region.as_deref(),
            zone: raw.zone.as_deref(),
        }
    }
}

pub(crate) fn parse_identity(
    cx: &Ctx,
    at: &str,
    raw: &Labels<'_>,
    cloud: Option<Cloud>,
) -> Result<Identity, ConfigError> {
    let id: AgentId = raw.id.parse().map_err(|_| {
        cx.err(
            &format!("{at}.id"),
            format!("{:?}", raw.id),
            "must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
        )
    })?;
    let cloud: Cloud = match cloud {
        Some(c) => c,
        None => {
            let text = raw.cloud.unwrap_or_default();
            text.parse().map_err(|e: Expected| {
                let expected = match at {
                    "agent" => e.0 + ", or auto (read from instance metadata)",
                    _ => e.0,
                };
                cx.err(&format!("{at}.cloud"), format!("{text:?}"), expected)
            })?
        }
    };
    let region = raw.region.unwrap_or_default().to_owned();
    let zone = raw.zone.unwrap_or_default().to_owned();
    for (name, value) in [("region", &region), ("zone", &zone)] {
        xcbench_snapshot::label::check_label_value(value)
            .map_err(|e| cx.err(&format!("{at}.{name}"), format!("{value:?}"), e))?;
    }
    Ok(Identity {
        id,
        cloud,
        region,
        zone,
    })
}

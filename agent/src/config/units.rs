//! The grammar both of the agent's config sections share, and the values built from it:
//! durations, rates, addresses, ranges checked once ([`within`]), and [`Ctx`], which names
//! the file and field in every error. The ports an address implies are [`super::network`]'s.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::defaults::STAMP_PORT;
use super::network::PortPlan;
pub use xcbench_snapshot::config_text::ConfigError;

/// Where errors come from: the file, for messages that name it.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn err(
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

/// Durations such as `250us`, `10ms`, `1.5s`, `5m`, `1h` (the shared grammar).
pub use xcbench_snapshot::config_text::parse_duration as parse_duration_text;

pub(crate) fn parse_duration(cx: &Ctx, field: &str, text: &str) -> Result<Duration, ConfigError> {
    parse_duration_text(text).ok_or_else(|| {
        cx.err(
            field,
            format!("{text:?}"),
            "must be a duration such as \"250us\", \"10ms\", \"1s\", \"5m\"",
        )
    })
}

/// A duration within `range`; the error says `expected`.
pub(crate) fn within(
    cx: &Ctx,
    field: &str,
    text: &str,
    range: RangeInclusive<Duration>,
    expected: &str,
) -> Result<Duration, ConfigError> {
    let d = parse_duration(cx, field, text)?;
    if !range.contains(&d) {
        return Err(cx.err(field, format!("{text:?}"), expected));
    }
    Ok(d)
}

/// Bits per second: the grammar every configuration file shares.
pub use xcbench_snapshot::config_text::parse_rate;

/// A rate from 1 kbit/s to 100 Gbit/s.
pub(crate) fn parse_bitrate(cx: &Ctx, field: &str, text: &str) -> Result<u64, ConfigError> {
    parse_rate(text)
        .filter(|r| crate::probe::throughput::spec::RATES.contains(r))
        .ok_or_else(|| {
            cx.err(
                field,
                format!("{text:?}"),
                "must be a rate such as \"1G\", \"200M\" or \"500k\" (bits/s), 1k to 100G",
            )
        })
}

/// A certificate fingerprint (`sha256:` and 64 hex digits) in `field`: the one parser for
/// peers', mesh agents', the collector's and the mesh's pins, and `tls.allow`.
pub(crate) fn parse_fingerprint(
    cx: &Ctx,
    field: &str,
    text: &str,
) -> Result<crate::tls::Fingerprint, ConfigError> {
    text.parse()
        .map_err(|e: xcbench_snapshot::Expected| cx.err(field, format!("{text:?}"), e.0))
}

/// An integer within `range`.
pub(crate) fn int_within<T: TryFrom<i64>>(
    cx: &Ctx,
    field: &str,
    value: i64,
    range: RangeInclusive<i64>,
    expected: &str,
) -> Result<T, ConfigError> {
    if !range.contains(&value) {
        return Err(cx.err(field, value, expected));
    }
    T::try_from(value).map_err(|_| cx.err(field, value, expected))
}

/// `IP:port`, `[IPv6]:port`, or a bare IP (`[IPv6]` too; port 862), whose port leaves room
/// for the [`PortPlan`]. An IPv6 address written bare whose last group could be a port
/// (`fd00::5:862`) is refused as ambiguous: brackets say which is meant.
pub(crate) fn parse_address(cx: &Ctx, field: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    const EXAMPLES: &str = "e.g. \"10.1.0.5\", \"10.1.0.5:862\", \"fd00::5\" or \"[fd00::5]:862\"";
    let bracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<Ipv6Addr>().ok());
    let addr = match (
        text.parse::<SocketAddr>(),
        text.parse::<IpAddr>(),
        bracketed,
    ) {
        (Ok(a), _, _) => a,
        (_, Ok(IpAddr::V6(ip)), _) => {
            if let Some((host, port)) = port_in_last_group(text) {
                return Err(cx.err(
                    field,
                    format!("{text:?}"),
                    format!("is ambiguous: write \"[{host}]:{port}\" for port {port} of {host}, or \"[{ip}]\" for that address at port {STAMP_PORT}"),
                ));
            }
            SocketAddr::new(IpAddr::V6(ip), STAMP_PORT)
        }
        (_, Ok(ip), _) => SocketAddr::new(ip, STAMP_PORT),
        (_, _, Some(ip)) => SocketAddr::new(IpAddr::V6(ip), STAMP_PORT),
        _ => {
            let expected = match port_beyond_range(text) {
                Some(port) => format!("must be an IP address with a port of at most 65532: {port} is not a port ({EXAMPLES})"),
                None => format!("must be an IP address with an optional port, {EXAMPLES}"),
            };
            return Err(cx.err(field, format!("{text:?}"), expected));
        }
    };
    PortPlan::new(addr.port()).map_err(|expected| cx.err(field, format!("{text:?}"), expected))?;
    Ok(addr)
}

/// A peer's address: [`parse_address`], and a port other than 0 (any free port, which only
/// a listening socket can ask for).
pub(crate) fn parse_peer_address(
    cx: &Ctx,
    field: &str,
    text: &str,
) -> Result<SocketAddr, ConfigError> {
    let addr = parse_address(cx, field, text)?;
    if addr.port() == 0 {
        return Err(cx.err(
            field,
            format!("{text:?}"),
            "must have a port from 1 to 65532 (or none: 862): port 0 means any free port, which only reflector.listen may ask for",
        ));
    }
    Ok(addr)
}

/// A bare IPv6 address whose last group reads as a port number after an address
/// (`fd00::5:862`): that address and port.
fn port_in_last_group(text: &str) -> Option<(Ipv6Addr, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port
        .chars()
        .all(|c| c.is_ascii_digit())
        .then(|| port.parse().ok())??;
    let host: Ipv6Addr = host.parse().ok()?;
    (port != 0).then_some((host, port))
}

/// `IP:port` whose port is a number too large to be one.
fn port_beyond_range(text: &str) -> Option<u64> {
    let (host, port) = text.rsplit_once(':')?;
    let host_ok = host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok());
    let digits = !port.is_empty() && port.len() <= 19 && port.chars().all(|c| c.is_ascii_digit());
    match host_ok && digits {
        true => port.parse().ok().filter(|p| *p > u64::from(u16::MAX)),
        false => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_plan_leaves_room_above_the_stamp_port() {
        let p = PortPlan::new(862).unwrap();
        assert_eq!(
            (p.stamp(), p.quic(), p.data(), p.quic_data()),
            (862, 863, 864, 865)
        );
        let any = PortPlan::new(0).unwrap();
        assert_eq!((any.quic(), any.data(), any.quic_data()), (0, 0, 0));
        assert!(PortPlan::new(65532).is_ok());
        for port in [65533, 65535] {
            assert!(PortPlan::new(port).is_err(), "{port}");
        }
        let cx = Ctx { file: "agent.toml" };
        assert_eq!(
            parse_address(&cx, "reflector.listen[0]", "0.0.0.0:65535")
                .unwrap_err()
                .to_string(),
            "agent.toml: reflector.listen[0] = \"0.0.0.0:65535\": must leave room for the QUIC and throughput ports above it: a port of at most 65532"
        );
        assert_eq!(
            parse_address(&cx, "a", "10.0.0.1").unwrap(),
            "10.0.0.1:862".parse().unwrap()
        );
    }

    #[test]
    fn rates_and_ranges() {
        assert_eq!(parse_rate("1G"), Some(1_000_000_000));
        assert_eq!(parse_rate("1.5k"), Some(1_500));
        assert_eq!(parse_rate("0"), None);
        assert_eq!(parse_rate("fast"), None);
        let cx = Ctx { file: "f" };
        let d = within(
            &cx,
            "x",
            "5s",
            Duration::from_secs(1)..=Duration::from_secs(10),
            "e",
        );
        assert_eq!(d.unwrap(), Duration::from_secs(5));
        assert_eq!(
            within(
                &cx,
                "x",
                "50s",
                Duration::ZERO..=Duration::from_secs(10),
                "must be at most 10s"
            )
            .unwrap_err()
            .to_string(),
            "f: x = \"50s\": must be at most 10s"
        );
        assert_eq!(
            int_within::<u8>(&cx, "n", 64, 0..=63, "must be 0 to 63")
                .unwrap_err()
                .to_string(),
            "f: n = 64: must be 0 to 63"
        );
    }
}

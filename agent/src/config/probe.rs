//! How a peer is probed: [`ProbeSettings`] and the newtypes that hold each value inside its
//! range (built only through `TryFrom`, so no unchecked value exists), parsed from
//! `[probe_defaults]` and each peer's own fields.

use std::time::Duration;

use super::defaults;
use super::raw::RawProbe;
use super::stamp_keys::{self, KeyPath};
use super::units::{int_within, parse_duration, ConfigError, Ctx};
use crate::probe::sender::{COS_TLV_LEN, HMAC_TLV_LEN, MAX_WINDOW};
use crate::probe::SenderConfig;
use crate::wire::stamp_auth::AUTH_LEN;
use crate::wire::{MAX_PACKET_LEN, UNAUTH_LEN};

/// Why a value is out of its range: what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutOfRange(pub &'static str);

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident($inner:ty), $range:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name($inner);

        impl $name {
            /// What the value must be.
            pub const EXPECTED: &'static str = $expected;

            pub fn get(self) -> $inner {
                self.0
            }
        }

        impl TryFrom<$inner> for $name {
            type Error = OutOfRange;

            fn try_from(value: $inner) -> Result<Self, OutOfRange> {
                if ($range).contains(&value) {
                    Ok($name(value))
                } else {
                    Err(OutOfRange($expected))
                }
            }
        }
    };
}

bounded!(
    /// Time between probes to one peer.
    ProbeInterval(Duration),
    Duration::from_millis(1)..=Duration::from_secs(3600),
    "must be at least 1ms and at most 1h"
);
bounded!(
    /// Time between fresh-connection probes (TCP connect, QUIC connect and resume).
    ConnectInterval(Duration),
    Duration::from_millis(10)..=Duration::from_secs(3600),
    "must be at least 10ms and at most 1h"
);
bounded!(
    /// How long a probe waits for its reply before it counts as lost.
    LossTimeout(Duration),
    Duration::from_millis(1)..=Duration::from_secs(60),
    "must be at least 1ms and at most 60s"
);
bounded!(
    /// STAMP test packet size, the UDP payload (incl. padding).
    PayloadSize(usize),
    UNAUTH_LEN..=MAX_PACKET_LEN,
    "must be 44 to 9000 bytes (the STAMP packet incl. padding)"
);
bounded!(
    /// Flows (source ports) a peer's STAMP probes rotate over.
    Flows(u8),
    1..=16,
    "must be 1 to 16"
);
bounded!(
    /// DiffServ code point for probe packets.
    Dscp(u8),
    0..=63,
    "must be 0 to 63"
);

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

impl Protocols {
    /// The chosen ones, in label order.
    pub fn chosen(self) -> impl Iterator<Item = xcbench_snapshot::Protocol> {
        use xcbench_snapshot::Protocol;
        [
            (Protocol::Udp, self.udp),
            (Protocol::Tcp, self.tcp),
            (Protocol::Quic, self.quic),
        ]
        .into_iter()
        .filter_map(|(p, on)| on.then_some(p))
    }
}

/// How one peer is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    pub interval: ProbeInterval,
    pub payload_size: PayloadSize,
    pub dscp: Dscp,
    /// STAMP probes go out over this many source ports in turn, each its own session at
    /// the reflector, so ECMP may hash them onto different paths.
    pub flows: Flows,
    pub loss_timeout: LossTimeout,
    pub protocols: Protocols,
    pub connect_interval: ConnectInterval,
    /// STAMP authenticated mode (RFC 8762 4.2.2): test packets sealed with the file's first
    /// key, replies checked with either; without it, unauthenticated.
    pub stamp_keys: Option<KeyPath>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            interval: ProbeInterval(defaults::PROBE_INTERVAL),
            payload_size: PayloadSize(defaults::PAYLOAD_SIZE),
            dscp: Dscp(defaults::DSCP),
            flows: Flows(defaults::FLOWS),
            loss_timeout: LossTimeout(defaults::LOSS_TIMEOUT),
            protocols: Protocols {
                udp: true,
                tcp: false,
                quic: false,
            },
            connect_interval: ConnectInterval(defaults::CONNECT_INTERVAL),
            stamp_keys: None,
        }
    }
}

impl From<&ProbeSettings> for SenderConfig {
    fn from(p: &ProbeSettings) -> SenderConfig {
        SenderConfig {
            interval_ns: p.interval.get().as_nanos() as u64,
            timeout_ns: p.loss_timeout.get().as_nanos() as u64,
            // An authenticated packet is at least 112 bytes (RFC 8762 4.2.2); with a DSCP
            // set, it has room for a Class of Service TLV, so re-marking shows.
            packet_len: {
                let (base, hmac) = match p.stamp_keys {
                    Some(_) => (AUTH_LEN, HMAC_TLV_LEN),
                    None => (UNAUTH_LEN, 0),
                };
                let cos = match p.dscp.get() {
                    0 => 0,
                    _ => COS_TLV_LEN + hmac,
                };
                p.payload_size.get().max(base + cos)
            },
            dscp: p.dscp.get(),
        }
    }
}

/// The settings at `at` (`probe_defaults` or `peers[i]`) over `base`.
pub(crate) fn parse_probe(
    cx: &Ctx,
    at: &str,
    raw: &RawProbe,
    base: ProbeSettings,
) -> Result<ProbeSettings, ConfigError> {
    let mut p = base;
    let span = |field: &str, text: &str| parse_duration(cx, &format!("{at}.{field}"), text);
    let bounded =
        |field: &str, text: &str, e: OutOfRange| cx.err(&format!("{at}.{field}"), text, e.0);
    if let Some(text) = &raw.interval {
        let d = span("interval", text)?;
        p.interval =
            ProbeInterval::try_from(d).map_err(|e| bounded("interval", &format!("{text:?}"), e))?;
    }
    if let Some(text) = &raw.loss_timeout {
        let d = span("loss_timeout", text)?;
        p.loss_timeout = LossTimeout::try_from(d)
            .map_err(|e| bounded("loss_timeout", &format!("{text:?}"), e))?;
    }
    if let Some(n) = raw.payload_size {
        let n: usize = int_within(
            cx,
            &format!("{at}.payload_size"),
            n,
            0..=i64::MAX,
            PayloadSize::EXPECTED,
        )?;
        p.payload_size =
            PayloadSize::try_from(n).map_err(|e| bounded("payload_size", &n.to_string(), e))?;
    }
    if let Some(list) = &raw.protocols {
        let mut chosen = Protocols {
            udp: false,
            tcp: false,
            quic: false,
        };
        for (i, name) in list.iter().enumerate() {
            match name.as_str() {
                "udp" => chosen.udp = true,
                "tcp" => chosen.tcp = true,
                "quic" => chosen.quic = true,
                other => {
                    return Err(cx.err(
                        &format!("{at}.protocols[{i}]"),
                        format!("{other:?}"),
                        "must be \"udp\", \"tcp\" or \"quic\"",
                    ))
                }
            }
        }
        if !(chosen.udp || chosen.tcp || chosen.quic) {
            return Err(cx.err(
                &format!("{at}.protocols"),
                "[]",
                "must name at least one protocol",
            ));
        }
        p.protocols = chosen;
    }
    if let Some(text) = &raw.connect_interval {
        let d = span("connect_interval", text)?;
        p.connect_interval = ConnectInterval::try_from(d)
            .map_err(|e| bounded("connect_interval", &format!("{text:?}"), e))?;
    }
    if let Some(text) = &raw.stamp_keys {
        p.stamp_keys = Some(stamp_keys::parse_path(
            cx,
            &format!("{at}.stamp_keys"),
            text,
        )?);
    }
    if let Some(n) = raw.dscp {
        let n: u8 = int_within(cx, &format!("{at}.dscp"), n, 0..=63, Dscp::EXPECTED)?;
        p.dscp = Dscp(n);
    }
    if let Some(n) = raw.flows {
        let n: u8 = int_within(cx, &format!("{at}.flows"), n, 1..=16, Flows::EXPECTED)?;
        p.flows = Flows(n);
    }
    // Probes in flight must fit the sender's matching window (with history for late replies).
    let in_flight = 2 * p.loss_timeout.get().as_nanos() / p.interval.get().as_nanos().max(1);
    if in_flight >= MAX_WINDOW as u128 {
        return Err(cx.err(
            &format!("{at}.loss_timeout"),
            format!("{:?}", p.loss_timeout.get()),
            format!("must be less than {} intervals", MAX_WINDOW / 2),
        ));
    }
    Ok(p)
}

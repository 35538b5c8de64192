//! Label values that reach Prometheus: enums for everything bounded, and checked identifiers
//! for the few free-form values (agent ids, regions, zones), so cardinality and escaping are
//! decided here once.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why text is not a valid value: what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Expected(pub String);

macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in label order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Expected;
            fn from_str(s: &str) -> Result<Self, Expected> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Expected(format!(
                        "must be one of {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

label_enum!(
    /// Which cloud a host runs in.
    Cloud { Azure => "azure", Oci => "oci", Other => "other" }
);

label_enum!(
    /// Transport of a probe.
    Protocol { Udp => "udp", Tcp => "tcp", Quic => "quic" }
);

label_enum!(
    /// What a probe measures on its transport.
    ProbeKind {
        /// STAMP (RFC 8762) test packet and reflected reply.
        Stamp => "stamp",
        /// Three-way handshake of a fresh connection (netperf TCP_CRR style).
        Connect => "connect",
        /// Request/response on a persistent connection (netperf TCP_RR style; one QUIC stream
        /// per request).
        Rr => "rr",
        /// QUIC: a resumed connection whose first request rides in 0-RTT data; connect to the
        /// first response (about 1 RTT when 0-RTT is accepted, 2 when it is not).
        Resume => "resume",
        /// QUIC DATAGRAM (RFC 9221) request/response on the persistent connection.
        Datagram => "datagram",
    }
);

label_enum!(
    /// Whether a throughput test between the pair ran while a probe's outcome was recorded
    /// (latency under load).
    Load {
        /// No test ran.
        Idle => "idle",
        /// A throughput test between the two agents ran (either way).
        Bench => "bench",
    }
);

// label_enum! fixes the derive list, so the default is spelled out.
#[allow(clippy::derivable_impls)]
impl Default for Load {
    fn default() -> Self {
        Load::Idle
    }
}

label_enum!(
    /// Which way a throughput test's bytes flowed, seen from the agent that ran it.
    Flow {
        /// This agent sent to the peer.
        Forward => "forward",
        /// The peer sent to this agent.
        Reverse => "reverse",
    }
);

label_enum!(
    /// How a scheduled throughput test ended.
    ThroughputOutcome {
        Ok => "ok",
        /// The peer (or this agent, busy with another test) declined.
        Refused => "refused",
        /// Could not connect, or the peer was lost during the test.
        Failed => "failed",
    }
);

impl ProbeKind {
    /// The latency distributions a probe kind measures.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            ProbeKind::Stamp => Metric::ALL,
            ProbeKind::Connect | ProbeKind::Rr | ProbeKind::Resume | ProbeKind::Datagram => {
                &[Metric::Rtt]
            }
        }
    }
}

label_enum!(
    /// One latency distribution kept per series.
    Metric {
        /// Round trip with the reflector's dwell time removed: (T4 - T1) - (T3 - T2).
        Rtt => "rtt",
        /// Sender to reflector: T2 - T1 (needs comparable clocks; see the clock error estimate).
        OneWayForward => "one_way_forward",
        /// Reflector to sender: T4 - T3.
        OneWayReverse => "one_way_reverse",
        /// |IPDV| (RFC 5481) between consecutive replies, forward; clock offset cancels out.
        IpdvForward => "ipdv_forward",
        /// |IPDV| between consecutive replies, reverse.
        IpdvReverse => "ipdv_reverse",
    }
);

label_enum!(
    /// Where a receive timestamp came from.
    TimestampSource {
        /// The kernel's receive timestamp (SO_TIMESTAMPNS).
        Kernel => "kernel",
        /// Clock read in user space after the datagram was read.
        User => "user",
    }
);

/// An agent identifier: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentId(String);

impl AgentId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AgentId {
    type Err = Expected;
    fn from_str(s: &str) -> Result<Self, Expected> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(AgentId(s.to_owned()))
        } else {
            Err(Expected(format!(
                "agent id {s:?}: must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
            )))
        }
    }
}

impl TryFrom<String> for AgentId {
    type Error = Expected;
    fn try_from(s: String) -> Result<Self, Expected> {
        s.parse()
    }
}

impl From<AgentId> for String {
    fn from(id: AgentId) -> String {
        id.0
    }
}

/// Checks a free-form label value (region, zone): at most 64 printable ASCII characters, no
/// quotes or backslashes. Empty is allowed (an unknown zone).
pub fn check_label_value(s: &str) -> Result<(), &'static str> {
    let ok = s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err("must be at most 64 printable ASCII characters without quotes or backslashes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_text() {
        for c in Cloud::ALL {
            assert_eq!(c.as_str().parse::<Cloud>().unwrap(), *c);
        }
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>().unwrap(), *m);
            let json = serde_json::to_string(m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
        assert_eq!(
            "gcp".parse::<Cloud>().unwrap_err().to_string(),
            "must be one of azure, oci, other"
        );
    }

    #[test]
    fn agent_ids() {
        assert!("az-eastus_1.a".parse::<AgentId>().is_ok());
        assert!("".parse::<AgentId>().is_err());
        assert!("a b".parse::<AgentId>().is_err());
        assert!("x".repeat(65).parse::<AgentId>().is_err());
        assert!(check_label_value("us-ashburn-1").is_ok());
        assert!(check_label_value("a\"b").is_err());
    }
}

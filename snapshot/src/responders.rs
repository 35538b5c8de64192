//! What an agent's responders (the STAMP reflector, the TCP and QUIC responders) and its
//! session-senders counted in one interval, and the flat JSON names they keep on the wire.

use serde::{Deserialize, Serialize};

use crate::Protocol;

/// What one responder (the STAMP reflector, the TCP or the QUIC responder) saw in one
/// interval (deltas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponderCount {
    /// Probes answered (STAMP test packets; TCP requests; QUIC stream and DATAGRAM requests).
    pub reflected: u64,
    /// Datagrams dropped as malformed (too short, too long, unsupported mode); TCP and QUIC
    /// connections closed for sending something that is not xcbench probe framing.
    pub malformed: u64,
    /// STAMP sessions refused (session table full); TCP connections refused (per-source
    /// cap) or closed idle; QUIC connections refused (per-source cap, unknown client
    /// certificate, handshake timeout).
    pub refused: u64,
    /// STAMP test packets refused in authenticated mode: an HMAC that no key gives, or a
    /// source with no key configured (the STAMP reflector only).
    pub unauthenticated: u64,
    /// Authenticated STAMP test packets refused as replays: a sequence number already
    /// taken, too old, or a stale timestamp (the STAMP reflector only).
    pub replayed: u64,
    /// STAMP test packets not answered for being over the reflector's rate limit, per
    /// source or in all (the STAMP reflector only).
    pub rate_limited: u64,
}

impl ResponderCount {
    /// Adds another interval's counts to these.
    pub fn add(&mut self, other: &ResponderCount) {
        self.reflected += other.reflected;
        self.malformed += other.malformed;
        self.refused += other.refused;
        self.unauthenticated += other.unauthenticated;
        self.replayed += other.replayed;
        self.rate_limited += other.rate_limited;
    }
}

/// What the agent's responders saw in one interval, by protocol (deltas). On the wire it
/// keeps the flat field names of format 1 (`reflected`, `tcp_reflected`, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FlatResponders", into = "FlatResponders")]
pub struct ResponderCounters {
    pub udp: ResponderCount,
    pub tcp: ResponderCount,
    pub quic: ResponderCount,
}

impl ResponderCounters {
    /// The counts of the responder for `protocol`.
    pub fn get(&self, protocol: Protocol) -> &ResponderCount {
        match protocol {
            Protocol::Udp => &self.udp,
            Protocol::Tcp => &self.tcp,
            Protocol::Quic => &self.quic,
        }
    }

    pub fn get_mut(&mut self, protocol: Protocol) -> &mut ResponderCount {
        match protocol {
            Protocol::Udp => &mut self.udp,
            Protocol::Tcp => &mut self.tcp,
            Protocol::Quic => &mut self.quic,
        }
    }

    /// Adds another interval's counts to these, protocol by protocol.
    pub fn add(&mut self, other: &ResponderCounters) {
        for p in Protocol::ALL {
            self.get_mut(*p).add(other.get(*p));
        }
    }
}

/// The JSON shape of [`ResponderCounters`] (format 1).
#[derive(Serialize, Deserialize)]
struct FlatResponders {
    reflected: u64,
    malformed: u64,
    refused: u64,
    #[serde(default)]
    unauthenticated: u64,
    #[serde(default)]
    replayed: u64,
    #[serde(default)]
    rate_limited: u64,
    #[serde(default)]
    tcp_reflected: u64,
    #[serde(default)]
    tcp_malformed: u64,
    #[serde(default)]
    tcp_refused: u64,
    #[serde(default)]
    quic_reflected: u64,
    #[serde(default)]
    quic_malformed: u64,
    #[serde(default)]
    quic_refused: u64,
}

impl From<FlatResponders> for ResponderCounters {
    fn from(f: FlatResponders) -> Self {
        let count = |reflected, malformed, refused| ResponderCount {
            reflected,
            malformed,
            refused,
            ..ResponderCount::default()
        };
        ResponderCounters {
            udp: ResponderCount {
                unauthenticated: f.unauthenticated,
                replayed: f.replayed,
                rate_limited: f.rate_limited,
                ..count(f.reflected, f.malformed, f.refused)
            },
            tcp: count(f.tcp_reflected, f.tcp_malformed, f.tcp_refused),
            quic: count(f.quic_reflected, f.quic_malformed, f.quic_refused),
        }
    }
}

impl From<ResponderCounters> for FlatResponders {
    fn from(r: ResponderCounters) -> Self {
        FlatResponders {
            reflected: r.udp.reflected,
            malformed: r.udp.malformed,
            refused: r.udp.refused,
            unauthenticated: r.udp.unauthenticated,
            replayed: r.udp.replayed,
            rate_limited: r.udp.rate_limited,
            tcp_reflected: r.tcp.reflected,
            tcp_malformed: r.tcp.malformed,
            tcp_refused: r.tcp.refused,
            quic_reflected: r.quic.reflected,
            quic_malformed: r.quic.malformed,
            quic_refused: r.quic.refused,
        }
    }
}

/// What the agent's session-senders dropped without matching a probe (deltas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderCounters {
    /// Datagrams on a sender socket that were not a well-formed reflected packet.
    pub malformed: u64,
    /// Well-formed replies that matched no probe we sent (unknown sequence or timestamp).
    pub unmatched: u64,
    /// Replies refused in STAMP authenticated mode: an HMAC the peer's keys do not give.
    #[serde(default)]
    pub unauthenticated: u64,
}

impl SenderCounters {
    /// Adds another interval's counts to these.
    pub fn add(&mut self, other: &SenderCounters) {
        self.malformed += other.malformed;
        self.unmatched += other.unmatched;
        self.unauthenticated += other.unauthenticated;
    }
}

//! Stateful STAMP Session-Reflector (RFC 8762 section 4.3), sans-IO.
//!
//! Each session (source address and port, and the RFC 8972 Session-Sender Identifier, which
//! the reply copies) gets its own reflector sequence counter, so the sender can tell forward
//! loss (the counter did not move) from reverse loss (it did). The
//! session table is bounded: idle sessions are evicted, and a new session is refused when the
//! table is full of live ones. A reply is always exactly as long as the request.
//!
//! Authenticated mode (RFC 8762 4.2.2/4.3.2): with keys configured ([`ReflectorKeys`]), a
//! test packet is answered only when its HMAC is one of its source's keys and its sequence
//! number and timestamp pass the session's replay window ([`super::replay`]); the reply
//! is sealed with the key the test packet came with. A packet that does not authenticate
//! opens no session and moves no counter but its reason's.
//!
//! Before anything else a datagram passes [`super::rate_limit`]: over the per-source or the
//! total rate it goes unanswered, counted `rate_limited`, at the cost of a table lookup.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::rate_limit::{Admission, RateLimits};
use super::reflect_tlv::{self, Context};

use xcbench_snapshot::ResponderCount;

use super::replay::{Replay, ReplayWindow};
use super::Moment;
use crate::wire::stamp_auth::{AuthError, StampKey, StampKeys, AUTH_LEN};
use crate::wire::UNAUTH_LEN;
use crate::wire::{ErrorEstimate, ReflectedPacket, TestPacket, Timestamp, WireError};

/// The keys test packets must authenticate with, by their source address. Empty: every
/// packet is read in unauthenticated mode.
#[derive(Debug, Clone, Default)]
pub struct ReflectorKeys {
    by_source: HashMap<IpAddr, Vec<Arc<StampKeys>>>,
    others: Option<Arc<StampKeys>>,
}

impl ReflectorKeys {
    /// Keys for every source not given its own (`[reflector] stamp_keys`); without them,
    /// a source with no keys of its own is refused once any key is configured.
    pub fn for_others(others: Option<Arc<StampKeys>>) -> ReflectorKeys {
        ReflectorKeys {
            others,
            ..ReflectorKeys::default()
        }
    }

    /// Adds a peer's keys at its address (peers behind one address, a NAT or a lab on
    /// loopback, each keep theirs: a packet from there may carry any of them).
    pub fn add_source(&mut self, ip: IpAddr, keys: Arc<StampKeys>) {
        let sets = self.by_source.entry(ip.to_canonical()).or_default();
        if !sets.contains(&keys) {
            sets.push(keys);
        }
    }

    /// Whether any key is configured (then only authenticated packets are answered).
    pub fn authenticated(&self) -> bool {
        self.others.is_some() || !self.by_source.is_empty()
    }

    /// The key sets a packet from `ip` may carry, its own first; `Err` when it has none.
    fn for_source(&self, ip: IpAddr) -> Result<Vec<&Arc<StampKeys>>, ReflectError> {
        let own = self.by_source.get(&ip.to_canonical()).into_iter().flatten();
        let sets: Vec<_> = own.chain(&self.others).collect();
        match sets.is_empty() {
            true => Err(ReflectError::NoKey(ip)),
            false => Ok(sets),
        }
    }
}

/// One datagram as it arrived at the reflector's socket.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// T2: a kernel timestamp where available; its wall time goes on the wire, its
    /// monotonic time ages the session.
    pub at: Moment,
    pub from: SocketAddr,
    /// The address it was sent to (this host's), when the kernel said.
    pub to: Option<IpAddr>,
    /// The port it was sent to.
    pub local_port: u16,
    /// Its TTL or hop limit, when the kernel said.
    pub ttl: Option<u8>,
    /// Its traffic class octet (DSCP and ECN), when the kernel said.
    pub tos: Option<u8>,
}

impl Arrival {
    /// A datagram from `from` at `at`, nothing else known.
    pub fn new(at: Moment, from: SocketAddr) -> Arrival {
        Arrival {
            at,
            from,
            to: None,
            local_port: 0,
            ttl: None,
            tos: None,
        }
    }
}

/// How the reply in `out` is to be sent: sealed once its transmit timestamp is written
/// ([`Seal::stamp_transmit`], right before the send), with the DSCP its Class of Service
/// TLV asked for, and its T3 remembered for the next Follow-Up Telemetry TLV.
#[derive(Debug, Clone, Default)]
pub struct Seal {
    /// Authenticated mode: this key of the set (the one the test packet came with).
    key: Option<(Arc<StampKeys>, usize)>,
    /// The IP DSCP to send the reply with (RFC 8972 Class of Service); `None`: the
    /// socket's own.
    pub dscp: Option<u8>,
    /// The session and reflector sequence number whose T3 [`Reflector::transmitted`]
    /// remembers (a Follow-Up Telemetry TLV asked for it).
    follow_up: Option<((SocketAddr, u16), u32)>,
}

impl Seal {
    /// Writes T3 into the encoded reply and, in authenticated mode, seals it again.
    pub fn stamp_transmit(&self, out: &mut [u8], t3: Timestamp) {
        match self.key() {
            None => ReflectedPacket::stamp_transmit(out, t3),
            Some(key) => ReflectedPacket::stamp_transmit_authenticated(out, t3, key),
        }
    }

    /// Whether the reflector wants to know the T3 the reply went with.
    pub fn follows_up(&self) -> bool {
        self.follow_up.is_some()
    }

    fn key(&self) -> Option<&StampKey> {
        let (keys, i) = self.key.as_ref()?;
        Some(keys.get(*i).unwrap_or(keys.current()))
    }
}

/// Limits of the session table, and of the test packets answered per second.
#[derive(Debug, Clone, Copy)]
pub struct ReflectorLimits {
    pub max_sessions: usize,
    /// A session with no packet for this long may be evicted (nanoseconds).
    pub idle_timeout_ns: u64,
    pub rate: RateLimits,
}

impl ReflectorLimits {
    /// The defaults (`reflector.max_sessions` in `agent.toml` reads its default here): 16,384
    /// sessions (4,096 peers at the default 4 flows each, a session per flow), evictable
    /// after 5 minutes idle; [`RateLimits::DEFAULT`].
    pub const DEFAULT: ReflectorLimits = ReflectorLimits {
        max_sessions: 16_384,
        idle_timeout_ns: 300_000_000_000,
        rate: RateLimits::DEFAULT,
    };
}

impl Default for ReflectorLimits {
    fn default() -> Self {
        ReflectorLimits::DEFAULT
    }
}

/// Why a datagram was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReflectError {
    #[error("malformed test packet: {0}")]
    Malformed(WireError),
    #[error("session table full ({0} sessions)")]
    SessionTableFull(usize),
    #[error("authenticated mode, and no key is configured for {0}")]
    NoKey(IpAddr),
    #[error("authenticated mode: {0}")]
    Unauthenticated(AuthError),
    #[error("replay: {0}")]
    Replayed(Replay),
    #[error("over the rate limit (per source or in all)")]
    RateLimited,
}

struct Session {
    next_seq: u32,
    last_seen_ns: u64,
    /// Test packets taken (RFC 8972 Direct Measurement).
    received: u32,
    /// The last reply whose T3 was remembered: its sequence number and raw T3.
    previous: Option<(u32, u64)>,
    /// Authenticated mode: the sequence numbers and timestamps taken.
    replay: Option<ReplayWindow>,
}

/// The reflector's state: sessions and counters.
pub struct Reflector {
    limits: ReflectorLimits,
    keys: ReflectorKeys,
    sessions: HashMap<(SocketAddr, u16), Session>,
    admission: Admission,
    counters: ResponderCount,
}

impl Reflector {
    pub fn new(limits: ReflectorLimits) -> Reflector {
        Reflector {
            limits,
            keys: ReflectorKeys::default(),
            sessions: HashMap::new(),
            admission: Admission::new(limits.rate, limits.max_sessions),
            counters: ResponderCount::default(),
        }
    }

    /// Sets the keys (at start, and when a mesh brings new peers). Sessions stay: a
    /// session's replay window keeps its place across a change of keys.
    pub fn set_keys(&mut self, keys: ReflectorKeys) {
        self.keys = keys;
    }

    /// Answers one datagram. On success the reply is written to `out` (cleared first) with
    /// the same length as `datagram`, its RFC 8972 TLVs answered; its transmit timestamp is
    /// a placeholder for the returned [`Seal::stamp_transmit`] right before sending.
    pub fn handle_datagram(
        &mut self,
        arrival: &Arrival,
        estimate: ErrorEstimate,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Seal, ReflectError> {
        let answered = match self.admission.admit(arrival.from.ip(), arrival.at.mono_ns) {
            true => self.answer(arrival, estimate, datagram, out),
            false => Err(ReflectError::RateLimited),
        };
        let c = &mut self.counters;
        match &answered {
            Ok(_) => c.reflected += 1,
            Err(ReflectError::Malformed(_)) => c.malformed += 1,
            Err(ReflectError::SessionTableFull(_)) => c.refused += 1,
            Err(ReflectError::NoKey(_) | ReflectError::Unauthenticated(_)) => {
                c.unauthenticated += 1
            }
            Err(ReflectError::Replayed(_)) => c.replayed += 1,
            Err(ReflectError::RateLimited) => c.rate_limited += 1,
        }
        answered
    }

    /// The T3 a reply went with, for the session's next Follow-Up Telemetry TLV.
    pub fn transmitted(&mut self, seal: &Seal, t3: Timestamp) {
        if let Some((key, seq)) = seal.follow_up {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.previous = Some((seq, t3.raw));
            }
        }
    }

    fn answer(
        &mut self,
        arrival: &Arrival,
        estimate: ErrorEstimate,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Seal, ReflectError> {
        let (from, received) = (arrival.from, arrival.at);
        let (test, mut seal) = match self.keys.authenticated() {
            false => (
                TestPacket::decode(datagram).map_err(ReflectError::Malformed)?,
                Seal::default(),
            ),
            true => {
                let mut refused = ReflectError::NoKey(from.ip());
                let mut taken = None;
                for keys in self.keys.for_source(from.ip())? {
                    match TestPacket::decode_authenticated(datagram, keys) {
                        Ok(got) => {
                            let seal = Seal {
                                key: Some((keys.clone(), got.key)),
                                ..Seal::default()
                            };
                            taken = Some((got.packet, seal));
                            break;
                        }
                        Err(AuthError::Malformed(e)) => return Err(ReflectError::Malformed(e)),
                        Err(hmac) => refused = ReflectError::Unauthenticated(hmac),
                    }
                }
                taken.ok_or(refused)?
            }
        };
        let key = seal.key().cloned();
        let session_key = (from, test.ssid);
        let session = self.session(session_key, received.mono_ns)?;
        if key.is_some() {
            let (seq, t1) = (test.seq, test.timestamp.raw);
            match &mut session.replay {
                Some(window) => window.take(seq, t1).map_err(ReflectError::Replayed)?,
                None => session.replay = Some(ReplayWindow::new(seq, t1)),
            }
        }
        session.last_seen_ns = received.mono_ns;
        session.received = session.received.wrapping_add(1);
        let seq = session.next_seq;
        session.next_seq = session.next_seq.wrapping_add(1);
        let cx = Context {
            from,
            to: arrival.to,
            local_port: arrival.local_port,
            tos: arrival.tos,
            received: session.received,
            transmitted: session.next_seq,
            previous: session.previous,
            synchronized: estimate.synchronized,
            key: key.as_ref(),
        };
        let reply = ReflectedPacket {
            seq,
            timestamp: Timestamp::from_unix_ns(received.wall_ns),
            error_estimate: estimate,
            ssid: test.ssid,
            receive_timestamp: Timestamp::from_unix_ns(received.wall_ns),
            sender_seq: test.seq,
            sender_timestamp: test.timestamp.raw,
            sender_error_estimate: test.error_estimate,
            sender_ttl: arrival.ttl.unwrap_or(0),
            len: datagram.len(),
        };
        out.clear();
        let base = match seal.key() {
            None => {
                reply.encode(out);
                UNAUTH_LEN
            }
            Some(k) => {
                reply.encode_authenticated(k, out);
                AUTH_LEN
            }
        };
        // RFC 8972 TLVs: the test packet's, answered in place (a shorter packet has none).
        if datagram.len() > base {
            out[base..].copy_from_slice(&datagram[base..]);
            let answer = reflect_tlv::answer(datagram, out, base, &cx);
            seal.dscp = answer.dscp;
            seal.follow_up = answer.follow_up.then_some((session_key, seq));
        }
        Ok(seal)
    }

    /// Counts a datagram the I/O layer dropped before decoding (e.g. truncated by the kernel
    /// because it was larger than any test packet).
    pub fn handle_oversized(&mut self) {
        self.counters.malformed += 1;
    }

    /// Counters since the last call (deltas for a snapshot).
    pub fn take_counters(&mut self) -> ResponderCount {
        std::mem::take(&mut self.counters)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The session of `from`, made if there is room (idle ones evicted first).
    fn session(&mut self, from: (SocketAddr, u16), now: u64) -> Result<&mut Session, ReflectError> {
        if !self.sessions.contains_key(&from) && self.sessions.len() >= self.limits.max_sessions {
            let idle = self.limits.idle_timeout_ns;
            self.sessions
                .retain(|_, s| now.saturating_sub(s.last_seen_ns) < idle);
            if self.sessions.len() >= self.limits.max_sessions {
                return Err(ReflectError::SessionTableFull(self.sessions.len()));
            }
        }
        Ok(self.sessions.entry(from).or_insert(Session {
            next_seq: 0,
            last_seen_ns: now,
            received: 0,
            previous: None,
            replay: None,
        }))
    }
}

#[cfg(test)]
mod tests;

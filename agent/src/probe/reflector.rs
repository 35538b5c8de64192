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
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn test_packet(seq: u32, len: usize) -> Vec<u8> {
        ssid_packet(seq, 0, len)
    }

    fn ssid_packet(seq: u32, ssid: u16, len: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        TestPacket {
            seq,
            timestamp: Timestamp::from_unix_ns(1_000 + u64::from(seq)),
            error_estimate: ErrorEstimate::from_error_ns(1_000, true),
            ssid,
            len,
        }
        .encode(&mut buf);
        buf
    }

    #[test]
    fn per_session_sequence_and_symmetric_size() {
        let mut r = Reflector::new(ReflectorLimits::default());
        let est = ErrorEstimate::from_error_ns(2_000, false);
        let mut out = Vec::new();
        for (i, port) in [(0u32, 1u16), (1, 1), (2, 2), (3, 1)] {
            let req = test_packet(i + 100, 44 + i as usize * 10);
            r.handle_datagram(
                &Arrival {
                    ttl: Some(64),
                    ..Arrival::new(Moment::at(5_000), addr(port))
                },
                est,
                &req,
                &mut out,
            )
            .unwrap();
            assert_eq!(out.len(), req.len());
            let reply = ReflectedPacket::decode(&out).unwrap();
            assert_eq!(reply.sender_seq, i + 100);
            assert_eq!(reply.sender_ttl, 64);
            assert_eq!(
                reply.sender_timestamp,
                TestPacket::decode(&req).unwrap().timestamp.raw
            );
            let want_seq = match i {
                0 => 0,
                1 => 1,
                2 => 0,
                _ => 2,
            };
            assert_eq!(reply.seq, want_seq, "packet {i}");
            assert_eq!(reply.receive_timestamp.to_unix_ns(), 5_000);
        }
        assert_eq!(r.take_counters().reflected, 4);
    }

    /// RFC 8972: the reply carries the test packet's SSID, and two senders behind one
    /// address and port (a NAT) with different SSIDs are two sessions, each counting its own.
    #[test]
    fn the_ssid_is_copied_and_tells_sessions_apart() {
        let mut r = Reflector::new(ReflectorLimits::default());
        let est = ErrorEstimate::from_error_ns(1, false);
        let mut out = Vec::new();
        let mut reply = |r: &mut Reflector, ssid: u16| {
            r.handle_datagram(
                &Arrival::new(Moment::at(1), addr(7)),
                est,
                &ssid_packet(1, ssid, 44),
                &mut out,
            )
            .unwrap();
            ReflectedPacket::decode(&out).unwrap()
        };
        let a0 = reply(&mut r, 0xa1);
        let b0 = reply(&mut r, 0xb2);
        let a1 = reply(&mut r, 0xa1);
        assert_eq!((a0.ssid, b0.ssid, a1.ssid), (0xa1, 0xb2, 0xa1));
        assert_eq!((a0.seq, b0.seq, a1.seq), (0, 0, 1));
        assert_eq!(r.session_count(), 2);
    }

    /// RFC 8972 TLVs through the session: Direct Measurement counts the session's packets,
    /// Follow-Up Telemetry returns the previous reply's sequence number and the T3 it went
    /// with, Class of Service asks for the reply's DSCP; the reply is as long as the test
    /// packet.
    #[test]
    fn tlvs_are_answered_from_the_session() {
        use crate::wire::stamp_tlv::{self, kind, U};
        let mut r = Reflector::new(ReflectorLimits::default());
        let est = ErrorEstimate::from_error_ns(1, true);
        let mut out = Vec::new();
        let mut request = test_packet(0, 44);
        stamp_tlv::put(&mut request, U, kind::DIRECT_MEASUREMENT, &[0; 12]);
        stamp_tlv::put(&mut request, U, kind::FOLLOW_UP, &[0; 16]);
        stamp_tlv::put(&mut request, U, kind::CLASS_OF_SERVICE, &[34 << 2, 0, 0, 0]);
        stamp_tlv::pad(&mut request, 120);
        let arrival = Arrival {
            tos: Some(34 << 2),
            ..Arrival::new(Moment::at(1), addr(5))
        };
        for (i, t3) in [(0u32, 111u64), (1, 222)] {
            let seal = r
                .handle_datagram(&arrival, est, &request, &mut out)
                .unwrap();
            assert_eq!(out.len(), 120);
            assert_eq!((seal.dscp, seal.follows_up()), (Some(34), true));
            // DM value at 48..60: S_TxC as sent, R_RxC and R_TxC counting this packet.
            assert_eq!(
                &out[52..60],
                &[[0, 0, 0, i as u8 + 1], [0, 0, 0, i as u8 + 1]].concat()[..]
            );
            // Follow-Up value at 64..80: the previous reply (none before the first).
            let (seq, ts) = match i {
                0 => (0u32, 0u64),
                _ => (0, 111u64 << 32),
            };
            assert_eq!(&out[64..68], &seq.to_be_bytes());
            assert_eq!(&out[68..76], &ts.to_be_bytes());
            let t3 = Timestamp {
                raw: t3 << 32,
                ptp: false,
            };
            seal.stamp_transmit(&mut out, t3);
            r.transmitted(&seal, t3);
        }
    }

    #[test]
    fn malformed_is_counted_and_never_answered() {
        let mut r = Reflector::new(ReflectorLimits::default());
        let mut out = vec![1, 2, 3];
        let est = ErrorEstimate::from_error_ns(1, false);
        for len in [0, 1, 43] {
            let err = r
                .handle_datagram(
                    &Arrival::new(Moment::at(0), addr(1)),
                    est,
                    &vec![0; len],
                    &mut out,
                )
                .unwrap_err();
            assert!(matches!(err, ReflectError::Malformed(_)));
        }
        assert!(r
            .handle_datagram(
                &Arrival::new(Moment::at(0), addr(1)),
                est,
                &vec![0; 9001],
                &mut out
            )
            .is_err());
        assert_eq!(out, vec![1, 2, 3], "nothing written");
        let c = r.take_counters();
        assert_eq!((c.malformed, c.reflected), (4, 0));
    }

    mod authenticated {
        use super::*;
        use crate::wire::stamp_auth::{StampKey, StampKeys};

        const K1: &[u8] = b"0123456789abcdef";
        const K2: &[u8] = b"fedcba9876543210";

        fn keys(secrets: &[&[u8]]) -> Arc<StampKeys> {
            let keys = secrets.iter().map(|s| StampKey::new(s).unwrap()).collect();
            Arc::new(StampKeys::new(keys).unwrap())
        }

        fn sealed(seq: u32, t1_s: u64, key: &[u8]) -> Vec<u8> {
            let mut buf = Vec::new();
            let p = TestPacket {
                seq,
                timestamp: Timestamp::from_unix_ns(t1_s * 1_000_000_000),
                error_estimate: ErrorEstimate::from_error_ns(1_000, true),
                ssid: 7,
                len: 120,
            };
            p.encode_authenticated(&StampKey::new(key).unwrap(), &mut buf);
            buf
        }

        fn reflector(k: ReflectorKeys) -> Reflector {
            let mut r = Reflector::new(ReflectorLimits::default());
            r.set_keys(k);
            r
        }

        fn send(
            r: &mut Reflector,
            from: SocketAddr,
            packet: &[u8],
        ) -> Result<Vec<u8>, ReflectError> {
            let mut out = Vec::new();
            let est = ErrorEstimate::from_error_ns(1, false);
            let seal = r.handle_datagram(
                &Arrival {
                    ttl: Some(60),
                    ..Arrival::new(Moment::at(1), from)
                },
                est,
                packet,
                &mut out,
            )?;
            seal.stamp_transmit(&mut out, Timestamp::from_unix_ns(5));
            Ok(out)
        }

        /// The reply is as long as the test packet, sealed with the key it came with (during
        /// a rotation, the previous one for a sender not yet rotated), and carries T3 under
        /// the HMAC.
        #[test]
        fn answered_and_sealed_with_the_key_the_packet_came_with() {
            let mut r = reflector(ReflectorKeys::for_others(Some(keys(&[K2, K1]))));
            for (seq, key, only) in [(0, K2, K2), (1, K1, K1)] {
                let out = send(&mut r, addr(9), &sealed(seq, 100, key)).unwrap();
                assert_eq!(out.len(), 120);
                let got = ReflectedPacket::decode_authenticated(&out, &keys(&[only])).unwrap();
                assert_eq!((got.packet.sender_seq, got.packet.seq), (seq, seq));
                assert_eq!((got.packet.ssid, got.packet.sender_ttl), (7, 60));
                assert_eq!(got.packet.timestamp.to_unix_ns(), 5);
            }
            assert_eq!(r.take_counters().reflected, 2);
        }

        #[test]
        fn what_does_not_authenticate_is_counted_by_reason_and_opens_no_session() {
            let mut k = ReflectorKeys::default();
            k.add_source(addr(1).ip(), keys(&[K1]));
            let mut r = reflector(k);
            // An unauthenticated packet: too short for the mode.
            let err = send(&mut r, addr(1), &test_packet(0, 44)).unwrap_err();
            assert!(matches!(err, ReflectError::Malformed(_)), "{err}");
            // Long enough, but no HMAC; another key's HMAC.
            for bad in [test_packet(0, 112), sealed(0, 100, K2)] {
                let err = send(&mut r, addr(1), &bad).unwrap_err();
                assert!(matches!(err, ReflectError::Unauthenticated(_)), "{err}");
            }
            // A source with no key: refused, even with a packet another source's key seals.
            let stranger = SocketAddr::from(([198, 18, 0, 9], 1));
            let err = send(&mut r, stranger, &sealed(0, 100, K1)).unwrap_err();
            assert_eq!(err, ReflectError::NoKey(stranger.ip()));
            assert!(err
                .to_string()
                .contains("no key is configured for 198.18.0.9"));
            assert_eq!(r.session_count(), 0);
            let c = r.take_counters();
            assert_eq!((c.malformed, c.unauthenticated, c.reflected), (1, 3, 0));
        }

        /// A captured test packet sent again is not answered, and does not move the
        /// reflector's sequence number (which would tell the sender a reverse loss).
        #[test]
        fn a_replay_is_refused_and_the_reflector_sequence_does_not_move() {
            let mut r = reflector(ReflectorKeys::for_others(Some(keys(&[K1]))));
            let first = sealed(0, 100, K1);
            send(&mut r, addr(1), &first).unwrap();
            let err = send(&mut r, addr(1), &first).unwrap_err();
            assert_eq!(err, ReflectError::Replayed(Replay::Duplicate(0)));
            let out = send(&mut r, addr(1), &sealed(1, 100, K1)).unwrap();
            let got = ReflectedPacket::decode_authenticated(&out, &keys(&[K1])).unwrap();
            assert_eq!(got.packet.seq, 1, "the replay took no sequence number");
            // Stale: sent 11 s before the session's latest.
            send(&mut r, addr(1), &sealed(5, 112, K1)).unwrap();
            let err = send(&mut r, addr(1), &sealed(2, 101, K1)).unwrap_err();
            assert!(matches!(
                err,
                ReflectError::Replayed(Replay::Stale { stale_s: 11 })
            ));
            let c = r.take_counters();
            assert_eq!((c.reflected, c.replayed), (3, 2));
        }

        /// Two peers behind one address with different keys: each is answered.
        #[test]
        fn peers_sharing_an_address_keep_their_keys() {
            let mut k = ReflectorKeys::default();
            k.add_source(addr(1).ip(), keys(&[K1]));
            k.add_source(addr(1).ip(), keys(&[K2]));
            let mut r = reflector(k);
            send(&mut r, addr(1), &sealed(0, 100, K1)).unwrap();
            let out = send(&mut r, addr(2), &sealed(0, 100, K2)).unwrap();
            ReflectedPacket::decode_authenticated(&out, &keys(&[K2])).unwrap();
        }
    }

    #[test]
    fn session_table_is_bounded_and_evicts_idle() {
        let limits = ReflectorLimits {
            max_sessions: 2,
            idle_timeout_ns: 1_000,
            ..ReflectorLimits::default()
        };
        let mut r = Reflector::new(limits);
        let est = ErrorEstimate::from_error_ns(1, false);
        let mut out = Vec::new();
        let req = test_packet(0, 44);
        r.handle_datagram(&Arrival::new(Moment::at(0), addr(1)), est, &req, &mut out)
            .unwrap();
        r.handle_datagram(&Arrival::new(Moment::at(500), addr(2)), est, &req, &mut out)
            .unwrap();
        // Both live: a third is refused.
        assert_eq!(
            r.handle_datagram(&Arrival::new(Moment::at(900), addr(3)), est, &req, &mut out)
                .unwrap_err(),
            ReflectError::SessionTableFull(2)
        );
        // Session 1 idle for >= 1 us: evicted, the newcomer gets a place.
        r.handle_datagram(
            &Arrival::new(Moment::at(1_200), addr(3)),
            est,
            &req,
            &mut out,
        )
        .unwrap();
        assert_eq!(r.session_count(), 2);
        assert_eq!(r.take_counters().refused, 1);
    }

    /// A flood from one address is answered at its limit, counted, and costs the
    /// well-behaved sender at another address nothing: its session's sequence has no gaps.
    #[test]
    fn a_flood_is_limited_per_source_and_another_sender_is_answered() {
        let limits = ReflectorLimits {
            rate: RateLimits {
                per_source: 1_000,
                total: 10_000,
            },
            ..ReflectorLimits::default()
        };
        let mut r = Reflector::new(limits);
        let est = ErrorEstimate::from_error_ns(1, false);
        let mut out = Vec::new();
        let flood: SocketAddr = ([127, 0, 0, 2], 9).into();
        let (mut flood_in, mut flood_out) = (0, 0);
        let mut good_seqs = Vec::new();
        // One second: the flood every 10 us (100k/s, 300-byte packets), the sender every 5 ms.
        for i in 0..100_000u32 {
            let at = Moment::at(1_000_000_000 + u64::from(i) * 10_000);
            let req = test_packet(i, 300);
            flood_in += req.len();
            if r.handle_datagram(&Arrival::new(at, flood), est, &req, &mut out)
                .is_ok()
            {
                flood_out += out.len();
            }
            if i % 500 == 0 {
                let req = test_packet(i / 500, 44);
                r.handle_datagram(&Arrival::new(at, addr(1)), est, &req, &mut out)
                    .expect("the good sender is answered");
                good_seqs.push(ReflectedPacket::decode(&out).unwrap().seq);
            }
        }
        assert_eq!(good_seqs, (0..200).collect::<Vec<u32>>());
        // 1,000/s and a burst of 100.
        assert_eq!(flood_out, 1_099 * 300);
        assert!(flood_out * 90 < flood_in, "{flood_out} of {flood_in} bytes");
        let c = r.take_counters();
        assert_eq!(
            (c.reflected, c.rate_limited),
            (1_099 + 200, 100_000 - 1_099)
        );
        // A limited packet opened no session.
        assert_eq!(r.session_count(), 2);
    }
}

//! Stateful STAMP Session-Reflector (RFC 8762 section 4.3), sans-IO.
//!
//! Each session (source address and port, and the RFC 8972 Session-Sender Identifier, which
//! the reply copies) gets its own reflector sequence counter, so the sender can tell forward
//! loss (the counter did not move) from reverse loss (it did). The
//! session table is bounded: idle sessions are evicted, and a new session is refused when the
//! table is full of live ones. A reply is always exactly as long as the request.

use std::collections::HashMap;
use std::net::SocketAddr;

use xcbench_snapshot::ResponderCount;

use super::Moment;
use crate::wire::{ErrorEstimate, ReflectedPacket, TestPacket, Timestamp, WireError};

/// Limits of the session table.
#[derive(Debug, Clone, Copy)]
pub struct ReflectorLimits {
    pub max_sessions: usize,
    /// A session with no packet for this long may be evicted (nanoseconds).
    pub idle_timeout_ns: u64,
}

impl ReflectorLimits {
    /// The defaults (`reflector.max_sessions` in `agent.toml` reads its default here): 4096
    /// sessions, evictable after 5 minutes idle.
    pub const DEFAULT: ReflectorLimits = ReflectorLimits {
        max_sessions: 4096,
        idle_timeout_ns: 300_000_000_000,
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
}

struct Session {
    next_seq: u32,
    last_seen_ns: u64,
}

/// The reflector's state: sessions and counters.
pub struct Reflector {
    limits: ReflectorLimits,
    sessions: HashMap<(SocketAddr, u16), Session>,
    counters: ResponderCount,
}

impl Reflector {
    pub fn new(limits: ReflectorLimits) -> Reflector {
        Reflector {
            limits,
            sessions: HashMap::new(),
            counters: ResponderCount::default(),
        }
    }

    /// Answers one datagram. `received` is T2 (kernel timestamp where available; its wall
    /// time goes on the wire, its monotonic time ages the session),
    /// `ttl` the received packet's TTL/hop limit if known. On success the reply is written to
    /// `out` (cleared first) with the same length as `datagram`; its transmit timestamp is a
    /// placeholder for [`ReflectedPacket::stamp_transmit`] right before sending.
    pub fn handle_datagram(
        &mut self,
        received: Moment,
        from: SocketAddr,
        ttl: Option<u8>,
        estimate: ErrorEstimate,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ReflectError> {
        let test = match TestPacket::decode(datagram) {
            Ok(test) => test,
            Err(e) => {
                self.counters.malformed += 1;
                return Err(ReflectError::Malformed(e));
            }
        };
        let seq = self.next_session_seq((from, test.ssid), received.mono_ns)?;
        out.clear();
        ReflectedPacket {
            seq,
            timestamp: Timestamp::from_unix_ns(received.wall_ns),
            error_estimate: estimate,
            ssid: test.ssid,
            receive_timestamp: Timestamp::from_unix_ns(received.wall_ns),
            sender_seq: test.seq,
            sender_timestamp: test.timestamp.raw,
            sender_error_estimate: test.error_estimate,
            sender_ttl: ttl.unwrap_or(0),
            len: datagram.len(),
        }
        .encode(out);
        self.counters.reflected += 1;
        Ok(())
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

    fn next_session_seq(&mut self, from: (SocketAddr, u16), now: u64) -> Result<u32, ReflectError> {
        if !self.sessions.contains_key(&from) && self.sessions.len() >= self.limits.max_sessions {
            let idle = self.limits.idle_timeout_ns;
            self.sessions
                .retain(|_, s| now.saturating_sub(s.last_seen_ns) < idle);
            if self.sessions.len() >= self.limits.max_sessions {
                self.counters.refused += 1;
                return Err(ReflectError::SessionTableFull(self.sessions.len()));
            }
        }
        let session = self.sessions.entry(from).or_insert(Session {
            next_seq: 0,
            last_seen_ns: now,
        });
        session.last_seen_ns = now;
        let seq = session.next_seq;
        session.next_seq = session.next_seq.wrapping_add(1);
        Ok(seq)
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
            r.handle_datagram(Moment::at(5_000), addr(port), Some(64), est, &req, &mut out)
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
                Moment::at(1),
                addr(7),
                None,
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

    #[test]
    fn malformed_is_counted_and_never_answered() {
        let mut r = Reflector::new(ReflectorLimits::default());
        let mut out = vec![1, 2, 3];
        let est = ErrorEstimate::from_error_ns(1, false);
        for len in [0, 1, 43] {
            let err = r
                .handle_datagram(Moment::at(0), addr(1), None, est, &vec![0; len], &mut out)
                .unwrap_err();
            assert!(matches!(err, ReflectError::Malformed(_)));
        }
        assert!(r
            .handle_datagram(Moment::at(0), addr(1), None, est, &vec![0; 9001], &mut out)
            .is_err());
        assert_eq!(out, vec![1, 2, 3], "nothing written");
        let c = r.take_counters();
        assert_eq!((c.malformed, c.reflected), (4, 0));
    }

    #[test]
    fn session_table_is_bounded_and_evicts_idle() {
        let limits = ReflectorLimits {
            max_sessions: 2,
            idle_timeout_ns: 1_000,
        };
        let mut r = Reflector::new(limits);
        let est = ErrorEstimate::from_error_ns(1, false);
        let mut out = Vec::new();
        let req = test_packet(0, 44);
        r.handle_datagram(Moment::at(0), addr(1), None, est, &req, &mut out)
            .unwrap();
        r.handle_datagram(Moment::at(500), addr(2), None, est, &req, &mut out)
            .unwrap();
        // Both live: a third is refused.
        assert_eq!(
            r.handle_datagram(Moment::at(900), addr(3), None, est, &req, &mut out),
            Err(ReflectError::SessionTableFull(2))
        );
        // Session 1 idle for >= 1 us: evicted, the newcomer gets a place.
        r.handle_datagram(Moment::at(1_200), addr(3), None, est, &req, &mut out)
            .unwrap();
        assert_eq!(r.session_count(), 2);
        assert_eq!(r.take_counters().refused, 1);
    }
}

//! STAMP authenticated-mode packets (RFC 8762 sections 4.2.2 and 4.3.2) and their HMAC:
//! HMAC-SHA-256 over the first 96 octets, truncated to 16 octets, written at 96..112.
//! Keys are configured (RFC 8762 leaves their distribution out of scope); two are accepted
//! at once during a rotation. The HMAC alone does not stop a captured packet being sent
//! again: the reflector's replay window (`probe::replay`) does.
//!
//! ```text
//! Session-Sender test packet (112 bytes + padding)  Session-Reflector test packet (112 bytes + padding)
//!  0..4    sequence number                           0..4    sequence number (reflector's own)
//!  4..16   MBZ                                       4..16   MBZ
//! 16..24   timestamp (T1)                           16..24   timestamp (T3, transmit)
//! 24..26   error estimate                           24..26   error estimate
//! 26..28   SSID (RFC 8972)                          26..28   SSID, the test packet's
//! 28..96   MBZ                                      28..32   MBZ
//! 96..112  HMAC                                     32..40   receive timestamp (T2)
//!                                                   40..48   MBZ
//!                                                   48..52   session-sender sequence number
//!                                                   52..64   MBZ
//!                                                   64..72   session-sender timestamp (T1)
//!                                                   72..74   session-sender error estimate
//!                                                   74..80   MBZ
//!                                                   80       session-sender TTL
//!                                                   81..96   MBZ
//!                                                   96..112  HMAC
//! ```
//! Padding after the HMAC is zeroes and not covered by it (as RFC 8762 defines the HMAC).
//! Reflected packets are the same size as the test packet.

use ring::hmac;

use super::stamp::{check_len, ReflectedPacket, TestPacket, MAX_PACKET_LEN};
use super::{ErrorEstimate, Timestamp, WireError};

/// Size of an authenticated test packet without padding.
pub const AUTH_LEN: usize = 112;
/// Where the HMAC starts: it covers every octet before it.
pub const HMAC_AT: usize = 96;
/// Octets of the HMAC kept (HMAC-SHA-256 truncated).
pub const HMAC_LEN: usize = 16;
/// Shortest key accepted, in octets (128 bits).
pub const MIN_KEY_LEN: usize = 16;
/// Keys accepted at once: the current one and, during a rotation, the one before.
pub const MAX_KEYS: usize = 2;

/// An HMAC key for authenticated STAMP, and its id: the first 4 octets of the secret's
/// SHA-256, which logs and errors show so two ends can be seen to hold the same key
/// without showing the key.
#[derive(Clone)]
pub struct StampKey {
    key: hmac::Key,
    id: [u8; 4],
}

impl StampKey {
    /// The key's id as 8 hex digits.
    pub fn id(&self) -> String {
        super::hex::encode(&self.id)
    }
}

impl std::fmt::Debug for StampKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StampKey({})", self.id())
    }
}

impl PartialEq for StampKey {
    fn eq(&self, other: &StampKey) -> bool {
        self.id == other.id
    }
}

impl Eq for StampKey {}

/// Why a key or a key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key of {0} octets: must be at least {MIN_KEY_LEN} octets (128 bits)")]
    TooShort(usize),
    #[error("{0} keys: must be 1 or {MAX_KEYS} (the current key first, then the previous one)")]
    Count(usize),
}

impl StampKey {
    pub fn new(secret: &[u8]) -> Result<StampKey, KeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort(secret.len()));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, secret);
        Ok(StampKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            id: digest.as_ref()[..4]
                .try_into()
                .expect("SHA-256 gives 32 octets"),
        })
    }

    /// The truncated HMAC of `parts` taken as one text: a packet's first [`HMAC_AT`]
    /// octets, or what an RFC 8972 HMAC TLV covers.
    pub fn tag_of(&self, parts: &[&[u8]]) -> [u8; HMAC_LEN] {
        let mut cx = hmac::Context::with_key(&self.key);
        for p in parts {
            cx.update(p);
        }
        cx.sign().as_ref()[..HMAC_LEN]
            .try_into()
            .expect("SHA-256 gives 32 octets")
    }

    /// Whether `got` is the truncated HMAC of `parts`, compared in constant time (the
    /// time taken does not tell how much of a forged HMAC was right).
    pub fn verifies(&self, parts: &[&[u8]], got: &[u8]) -> bool {
        let want = self.tag_of(parts);
        got.len() == HMAC_LEN && want.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// The truncated HMAC of `covered` (a packet's first [`HMAC_AT`] octets).
    fn tag(&self, covered: &[u8]) -> [u8; HMAC_LEN] {
        self.tag_of(&[covered])
    }

    /// Writes the HMAC of an encoded packet's first [`HMAC_AT`] octets at [`HMAC_AT`].
    fn seal(&self, packet: &mut [u8]) {
        let tag = self.tag(&packet[..HMAC_AT]);
        packet[HMAC_AT..AUTH_LEN].copy_from_slice(&tag);
    }
}

/// The keys a peer's packets are checked with: the current one first, then (during a
/// rotation) the previous one. Packets are always sent with the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampKeys(Vec<StampKey>);

impl StampKeys {
    pub fn new(keys: Vec<StampKey>) -> Result<StampKeys, KeyError> {
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(KeyError::Count(keys.len()));
        }
        Ok(StampKeys(keys))
    }

    /// The key packets are sent with.
    pub fn current(&self) -> &StampKey {
        &self.0[0]
    }

    /// Key `i` (0: the current one, 1: the previous one), if there is one.
    pub fn get(&self, i: usize) -> Option<&StampKey> {
        self.0.get(i)
    }

    /// The ids of the keys, current first, e.g. `1a2b3c4d, 5e6f7a8b`.
    pub fn ids(&self) -> String {
        let ids: Vec<String> = self.0.iter().map(StampKey::id).collect();
        ids.join(", ")
    }

    /// Which key authenticates `packet` (0: the current one), if any.
    fn check(&self, packet: &[u8]) -> Option<usize> {
        let got = &packet[HMAC_AT..AUTH_LEN];
        (self.0.iter()).position(|k| k.verifies(&[&packet[..HMAC_AT]], got))
    }
}

/// Why an authenticated packet was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed authenticated packet: {0}")]
    Malformed(WireError),
    #[error("HMAC matches no configured key")]
    Hmac,
}

/// An authenticated packet that passed its HMAC check, and which key it passed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated<P> {
    pub packet: P,
    /// 0: the current key; 1: the previous one (a peer not yet rotated).
    pub key: usize,
}

fn at<const N: usize>(buf: &[u8], from: usize) -> [u8; N] {
    buf[from..from + N].try_into().expect("length checked")
}

/// Makes room for `t.len` (at least 112) bytes and writes what both directions carry at the
/// same offsets, a test packet's fields: the sequence number, the timestamp, the error
/// estimate, the SSID.
fn head<'b>(buf: &'b mut Vec<u8>, t: &TestPacket) -> &'b mut [u8] {
    let start = buf.len();
    buf.resize(start + t.len.clamp(AUTH_LEN, MAX_PACKET_LEN), 0);
    let p = &mut buf[start..];
    p[0..4].copy_from_slice(&t.seq.to_be_bytes());
    p[16..24].copy_from_slice(&t.timestamp.raw.to_be_bytes());
    p[24..26].copy_from_slice(&t.error_estimate.to_bits().to_be_bytes());
    p[26..28].copy_from_slice(&t.ssid.to_be_bytes());
    p
}

/// What [`head`] writes, read back: a test packet as long as `buf`.
fn read_head(buf: &[u8]) -> TestPacket {
    let error_estimate = ErrorEstimate::from_bits(u16::from_be_bytes(at(buf, 24)));
    TestPacket {
        seq: u32::from_be_bytes(at(buf, 0)),
        timestamp: Timestamp {
            raw: u64::from_be_bytes(at(buf, 16)),
            ptp: error_estimate.ptp,
        },
        error_estimate,
        ssid: u16::from_be_bytes(at(buf, 26)),
        len: buf.len(),
    }
}

/// Checks the length and the HMAC: which key passed.
fn authenticate(buf: &[u8], keys: &StampKeys) -> Result<usize, AuthError> {
    check_len(buf, AUTH_LEN).map_err(AuthError::Malformed)?;
    keys.check(buf).ok_or(AuthError::Hmac)
}

impl TestPacket {
    /// Writes the packet in authenticated mode, sealed with `key`, padded with zeroes to
    /// `self.len` (at least 112) bytes.
    pub fn encode_authenticated(&self, key: &StampKey, buf: &mut Vec<u8>) {
        key.seal(head(buf, self));
    }

    /// Reads an authenticated test packet whose HMAC one of `keys` gives.
    pub fn decode_authenticated(
        buf: &[u8],
        keys: &StampKeys,
    ) -> Result<Authenticated<TestPacket>, AuthError> {
        let key = authenticate(buf, keys)?;
        Ok(Authenticated {
            packet: read_head(buf),
            key,
        })
    }
}

impl ReflectedPacket {
    /// Writes the packet in authenticated mode, sealed with `key`, padded with zeroes to
    /// `self.len` (at least 112) bytes.
    pub fn encode_authenticated(&self, key: &StampKey, buf: &mut Vec<u8>) {
        let head_fields = TestPacket {
            seq: self.seq,
            timestamp: self.timestamp,
            error_estimate: self.error_estimate,
            ssid: self.ssid,
            len: self.len,
        };
        let p = head(buf, &head_fields);
        p[32..40].copy_from_slice(&self.receive_timestamp.raw.to_be_bytes());
        p[48..52].copy_from_slice(&self.sender_seq.to_be_bytes());
        p[64..72].copy_from_slice(&self.sender_timestamp.to_be_bytes());
        p[72..74].copy_from_slice(&self.sender_error_estimate.to_bits().to_be_bytes());
        p[80] = self.sender_ttl;
        key.seal(p);
    }

    /// Reads an authenticated reflected packet whose HMAC one of `keys` gives.
    pub fn decode_authenticated(
        buf: &[u8],
        keys: &StampKeys,
    ) -> Result<Authenticated<ReflectedPacket>, AuthError> {
        let key = authenticate(buf, keys)?;
        let h = read_head(buf);
        let packet = ReflectedPacket {
            seq: h.seq,
            timestamp: h.timestamp,
            error_estimate: h.error_estimate,
            ssid: h.ssid,
            receive_timestamp: Timestamp {
                raw: u64::from_be_bytes(at(buf, 32)),
                ptp: h.error_estimate.ptp,
            },
            sender_seq: u32::from_be_bytes(at(buf, 48)),
            sender_timestamp: u64::from_be_bytes(at(buf, 64)),
            sender_error_estimate: ErrorEstimate::from_bits(u16::from_be_bytes(at(buf, 72))),
            sender_ttl: buf[80],
            len: buf.len(),
        };
        Ok(Authenticated { packet, key })
    }

    /// Overwrites the transmit timestamp (T3) of an encoded authenticated packet in place,
    /// right before the send, and seals it again (the HMAC covers T3).
    pub fn stamp_transmit_authenticated(buf: &mut [u8], t3: Timestamp, key: &StampKey) {
        if buf.len() >= AUTH_LEN {
            buf[16..24].copy_from_slice(&t3.raw.to_be_bytes());
            key.seal(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(secrets: &[&[u8]]) -> StampKeys {
        StampKeys::new(secrets.iter().map(|s| StampKey::new(s).unwrap()).collect()).unwrap()
    }

    const K1: &[u8] = b"0123456789abcdef";
    const K2: &[u8] = b"fedcba9876543210fedcba9876543210";

    /// The layout and HMAC against values computed apart from this code: Python's
    /// `hmac.new(b"0123456789abcdef", packet[:96], "sha256").digest()[:16]`.
    #[test]
    fn test_packet_layout_and_known_hmac() {
        let mut buf = Vec::new();
        TestPacket::sample(112).encode_authenticated(&StampKey::new(K1).unwrap(), &mut buf);
        assert_eq!(buf.len(), 112);
        assert_eq!(&buf[0..4], &[1, 2, 3, 4]);
        assert!(buf[4..16].iter().all(|b| *b == 0));
        assert_eq!(
            &buf[16..24],
            &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
        assert_eq!(&buf[24..26], &[1, 2]);
        assert_eq!(&buf[26..28], &[0x0a, 0x0b], "SSID");
        assert!(buf[28..96].iter().all(|b| *b == 0));
        assert_eq!(hex(&buf[96..112]), KNOWN_TEST_HMAC);
        let got = TestPacket::decode_authenticated(&buf, &keys(&[K1])).unwrap();
        assert_eq!((got.packet, got.key), (TestPacket::sample(112), 0));
    }

    #[test]
    fn reflected_layout_and_known_hmac() {
        let mut buf = Vec::new();
        ReflectedPacket::numbered(120).encode_authenticated(&StampKey::new(K1).unwrap(), &mut buf);
        assert_eq!(buf.len(), 120);
        for (at, value) in [
            (3, 1),
            (23, 2),
            (25, 3),
            (26, 9),
            (27, 9),
            (39, 4),
            (51, 5),
            (71, 6),
            (73, 7),
            (80, 8),
        ] {
            assert_eq!(buf[at], value, "octet {at}");
        }
        let set: Vec<usize> = [3, 23, 25, 26, 27, 39, 51, 71, 73, 80].into();
        for (i, b) in buf[..HMAC_AT].iter().enumerate() {
            assert!(set.contains(&i) || *b == 0, "octet {i} = {b}: MBZ");
        }
        assert!(buf[AUTH_LEN..].iter().all(|b| *b == 0), "padding");
        assert_eq!(hex(&buf[96..112]), KNOWN_REFLECTED_HMAC);
        let got = ReflectedPacket::decode_authenticated(&buf, &keys(&[K1])).unwrap();
        assert_eq!(got.packet, ReflectedPacket::numbered(120));
        // T3 stamped late: sealed again, still authentic, with the new T3.
        let t3 = Timestamp {
            raw: 99,
            ptp: false,
        };
        ReflectedPacket::stamp_transmit_authenticated(&mut buf, t3, &StampKey::new(K1).unwrap());
        let got = ReflectedPacket::decode_authenticated(&buf, &keys(&[K1])).unwrap();
        assert_eq!(got.packet.timestamp, t3);
    }

    const KNOWN_TEST_HMAC: &str = "9f8897cec1c8c8f32aff7b7f1930e4e0";
    const KNOWN_REFLECTED_HMAC: &str = "2de56de298a32484b0857f5843124d09";

    fn hex(b: &[u8]) -> String {
        crate::wire::hex::encode(b)
    }

    #[test]
    fn rotation_accepts_the_previous_key_and_says_so() {
        let mut buf = Vec::new();
        TestPacket::sample(112).encode_authenticated(&StampKey::new(K1).unwrap(), &mut buf);
        // Rotated: K2 current, K1 still accepted, and named as the previous key.
        let got = TestPacket::decode_authenticated(&buf, &keys(&[K2, K1])).unwrap();
        assert_eq!(got.key, 1);
        // K1 retired: refused.
        assert_eq!(
            TestPacket::decode_authenticated(&buf, &keys(&[K2])),
            Err(AuthError::Hmac)
        );
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(
            StampKey::new(b"short").map(|_| ()),
            Err(KeyError::TooShort(5))
        );
        assert_eq!(StampKeys::new(vec![]).map(|_| ()), Err(KeyError::Count(0)));
        let k = || StampKey::new(K1).unwrap();
        assert_eq!(
            StampKeys::new(vec![k(), k(), k()]).map(|_| ()),
            Err(KeyError::Count(3))
        );
        assert!(KeyError::TooShort(5).to_string().contains("at least 16"));
        // The id, against Python's `hashlib.sha256(b"0123456789abcdef").hexdigest()[:8]`.
        assert_eq!(k().id(), "9f9f5111");
        assert_eq!(
            keys(&[K1, K2]).ids(),
            format!("9f9f5111, {}", StampKey::new(K2).unwrap().id())
        );
    }

    #[test]
    fn short_and_oversized_packets_are_malformed_not_forged() {
        let ks = keys(&[K1]);
        for len in [0, 44, 111] {
            assert_eq!(
                TestPacket::decode_authenticated(&vec![0; len], &ks),
                Err(AuthError::Malformed(WireError::Truncated {
                    need: AUTH_LEN,
                    have: len
                }))
            );
        }
        assert!(matches!(
            ReflectedPacket::decode_authenticated(&vec![0; MAX_PACKET_LEN + 1], &ks),
            Err(AuthError::Malformed(WireError::Invalid {
                field: "length",
                ..
            }))
        ));
    }

    proptest! {
        /// Any octet changed before the HMAC's end makes the packet refused; padding after
        /// it is not covered.
        #[test]
        fn every_covered_octet_is_authenticated(
            seq in any::<u32>(),
            raw in any::<u64>(),
            len in AUTH_LEN..300usize,
            at in 0..300usize,
            flip in 1..=255u8,
        ) {
            let p = TestPacket { seq, timestamp: Timestamp { raw, ptp: false },
                error_estimate: ErrorEstimate::from_bits(0), ssid: seq as u16, len };
            let mut buf = Vec::new();
            p.encode_authenticated(&StampKey::new(K1).unwrap(), &mut buf);
            let ks = keys(&[K1]);
            prop_assert_eq!(TestPacket::decode_authenticated(&buf, &ks).unwrap().packet, p);
            let at = at % len;
            buf[at] ^= flip;
            let got = TestPacket::decode_authenticated(&buf, &ks);
            if at < AUTH_LEN {
                prop_assert_eq!(got, Err(AuthError::Hmac));
            } else {
                prop_assert!(got.is_ok());
            }
        }

        #[test]
        fn reflected_round_trip(
            seq in any::<u32>(), t3 in any::<u64>(), t2 in any::<u64>(), sseq in any::<u32>(),
            t1 in any::<u64>(), ttl in any::<u8>(), e in any::<u16>(), se in any::<u16>(),
            len in AUTH_LEN..=MAX_PACKET_LEN,
        ) {
            let e = ErrorEstimate::from_bits(e);
            let p = ReflectedPacket {
                seq,
                timestamp: Timestamp { raw: t3, ptp: e.ptp },
                error_estimate: e,
                ssid: sseq as u16,
                receive_timestamp: Timestamp { raw: t2, ptp: e.ptp },
                sender_seq: sseq,
                sender_timestamp: t1,
                sender_error_estimate: ErrorEstimate::from_bits(se),
                sender_ttl: ttl,
                len,
            };
            let mut buf = Vec::new();
            p.encode_authenticated(&StampKey::new(K2).unwrap(), &mut buf);
            prop_assert_eq!(buf.len(), len);
            let got = ReflectedPacket::decode_authenticated(&buf, &keys(&[K2])).unwrap();
            prop_assert_eq!(got.packet, p);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let ks = keys(&[K1]);
            let _ = TestPacket::decode_authenticated(&bytes, &ks);
            let _ = ReflectedPacket::decode_authenticated(&bytes, &ks);
        }
    }
}

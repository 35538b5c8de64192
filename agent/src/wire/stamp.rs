//! STAMP unauthenticated-mode packets (RFC 8762 sections 4.2.1 and 4.3.1).
//!
//! ```text
//! Session-Sender test packet (44 bytes + padding)   Session-Reflector test packet (44 bytes + padding)
//!  0..4   sequence number                             0..4   sequence number (reflector's own)
//!  4..12  timestamp (T1)                              4..12  timestamp (T3, transmit)
//! 12..14  error estimate                             12..14  error estimate
//! 14..16  SSID (RFC 8972)                            14..16  SSID, the test packet's
//! 16..44  MBZ
//!                                                    16..24  receive timestamp (T2)
//!                                                    24..28  session-sender sequence number
//!                                                    28..36  session-sender timestamp (T1)
//!                                                    36..38  session-sender error estimate
//!                                                    38..40  MBZ
//!                                                    40      session-sender TTL
//!                                                    41..44  MBZ
//! ```
//! Padding is zeroes. MBZ fields are written as zero and ignored on receipt (RFC 8972 puts
//! extensions there). The Session-Sender Identifier (SSID, RFC 8972 section 3; MBZ in RFC
//! 8762, so 0 from a sender without it) is copied into the reflected packet. Reflected
//! packets are the same size as the test packet (symmetric size).

use super::{ErrorEstimate, Timestamp, WireError};

/// Size of an unauthenticated test packet without padding.
pub const UNAUTH_LEN: usize = 44;
/// Largest test packet we send or answer (a jumbo frame's UDP payload).
pub const MAX_PACKET_LEN: usize = 9_000;

/// A Session-Sender test packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestPacket {
    pub seq: u32,
    pub timestamp: Timestamp,
    pub error_estimate: ErrorEstimate,
    /// Session-Sender Identifier (RFC 8972); 0 when unused.
    pub ssid: u16,
    /// Total length on the wire including padding (44..=9000).
    pub len: usize,
}

/// A Session-Reflector test packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflectedPacket {
    pub seq: u32,
    /// T3: when the reflector sent this packet.
    pub timestamp: Timestamp,
    pub error_estimate: ErrorEstimate,
    /// The test packet's Session-Sender Identifier, copied.
    pub ssid: u16,
    /// T2: when the reflector received the test packet.
    pub receive_timestamp: Timestamp,
    pub sender_seq: u32,
    /// T1 copied from the test packet, bit for bit.
    pub sender_timestamp: u64,
    pub sender_error_estimate: ErrorEstimate,
    /// TTL / hop limit of the received test packet (0 if the reflector could not read it).
    pub sender_ttl: u8,
    pub len: usize,
}

/// A test packet's length: at least `need` (the mode's size without padding), at most
/// [`MAX_PACKET_LEN`].
pub(super) fn check_len(buf: &[u8], need: usize) -> Result<(), WireError> {
    if buf.len() < need {
        return Err(WireError::Truncated {
            need,
            have: buf.len(),
        });
    }
    if buf.len() > MAX_PACKET_LEN {
        return Err(WireError::Invalid {
            field: "length",
            value: buf.len() as u64,
            expected: "must be at most 9000 bytes",
        });
    }
    Ok(())
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(buf[at..at + 4].try_into().expect("length checked"))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(buf[at..at + 8].try_into().expect("length checked"))
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(buf[at..at + 2].try_into().expect("length checked"))
}

impl TestPacket {
    /// Writes the packet, padded with zeroes to `self.len` (at least 44) bytes.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.extend_from_slice(&self.seq.to_be_bytes());
        buf.extend_from_slice(&self.timestamp.raw.to_be_bytes());
        buf.extend_from_slice(&self.error_estimate.to_bits().to_be_bytes());
        buf.extend_from_slice(&self.ssid.to_be_bytes());
        buf.resize(start + self.len.clamp(UNAUTH_LEN, MAX_PACKET_LEN), 0);
    }

    pub fn decode(buf: &[u8]) -> Result<TestPacket, WireError> {
        check_len(buf, UNAUTH_LEN)?;
        let error_estimate = ErrorEstimate::from_bits(u16_at(buf, 12));
        Ok(TestPacket {
            seq: u32_at(buf, 0),
            timestamp: Timestamp {
                raw: u64_at(buf, 4),
                ptp: error_estimate.ptp,
            },
            error_estimate,
            ssid: u16_at(buf, 14),
            len: buf.len(),
        })
    }
}

impl ReflectedPacket {
    /// Writes the packet, padded with zeroes to `self.len` (at least 44) bytes.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.extend_from_slice(&self.seq.to_be_bytes());
        buf.extend_from_slice(&self.timestamp.raw.to_be_bytes());
        buf.extend_from_slice(&self.error_estimate.to_bits().to_be_bytes());
        buf.extend_from_slice(&self.ssid.to_be_bytes());
        buf.extend_from_slice(&self.receive_timestamp.raw.to_be_bytes());
        buf.extend_from_slice(&self.sender_seq.to_be_bytes());
        buf.extend_from_slice(&self.sender_timestamp.to_be_bytes());
        buf.extend_from_slice(&self.sender_error_estimate.to_bits().to_be_bytes());
        buf.extend_from_slice(&[0, 0, self.sender_ttl, 0, 0, 0]);
        buf.resize(start + self.len.clamp(UNAUTH_LEN, MAX_PACKET_LEN), 0);
    }

    pub fn decode(buf: &[u8]) -> Result<ReflectedPacket, WireError> {
        check_len(buf, UNAUTH_LEN)?;
        let error_estimate = ErrorEstimate::from_bits(u16_at(buf, 12));
        Ok(ReflectedPacket {
            seq: u32_at(buf, 0),
            timestamp: Timestamp {
                raw: u64_at(buf, 4),
                ptp: error_estimate.ptp,
            },
            error_estimate,
            ssid: u16_at(buf, 14),
            receive_timestamp: Timestamp {
                raw: u64_at(buf, 16),
                ptp: error_estimate.ptp,
            },
            sender_seq: u32_at(buf, 24),
            sender_timestamp: u64_at(buf, 28),
            sender_error_estimate: ErrorEstimate::from_bits(u16_at(buf, 36)),
            sender_ttl: buf[40],
            len: buf.len(),
        })
    }

    /// Overwrites the transmit timestamp (T3) of an encoded packet in place, so it can be
    /// taken as late as possible, right before the send.
    pub fn stamp_transmit(buf: &mut [u8], t3: Timestamp) {
        if buf.len() >= 12 {
            buf[4..12].copy_from_slice(&t3.raw.to_be_bytes());
        }
    }
}

#[cfg(test)]
impl TestPacket {
    /// A packet of distinct octets (1 2 3 4 | 0x11 .. 0x18 | 1 2 | 0x0a 0x0b), to find each
    /// field at its offset.
    pub(super) fn sample(len: usize) -> TestPacket {
        TestPacket {
            seq: 0x01020304,
            timestamp: Timestamp {
                raw: 0x1112131415161718,
                ptp: false,
            },
            error_estimate: ErrorEstimate::from_bits(0x0102),
            ssid: 0x0a0b,
            len,
        }
    }
}

#[cfg(test)]
impl ReflectedPacket {
    /// A packet whose fields are 1, 2, ... 8 in wire order, to find each at its offset.
    pub(super) fn numbered(len: usize) -> ReflectedPacket {
        ReflectedPacket {
            seq: 1,
            timestamp: Timestamp { raw: 2, ptp: false },
            error_estimate: ErrorEstimate::from_bits(3),
            ssid: 0x0909,
            receive_timestamp: Timestamp { raw: 4, ptp: false },
            sender_seq: 5,
            sender_timestamp: 6,
            sender_error_estimate: ErrorEstimate::from_bits(7),
            sender_ttl: 8,
            len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn est() -> impl Strategy<Value = ErrorEstimate> {
        any::<u16>().prop_map(ErrorEstimate::from_bits)
    }

    fn test_packet() -> impl Strategy<Value = TestPacket> {
        (
            any::<u32>(),
            any::<u64>(),
            est(),
            any::<u16>(),
            UNAUTH_LEN..=MAX_PACKET_LEN,
        )
            .prop_map(|(seq, raw, e, ssid, len)| TestPacket {
                seq,
                timestamp: Timestamp { raw, ptp: e.ptp },
                error_estimate: e,
                ssid,
                len,
            })
    }

    fn reflected() -> impl Strategy<Value = ReflectedPacket> {
        (
            (any::<u32>(), any::<u64>(), est(), any::<u64>()),
            (any::<u32>(), any::<u64>(), est(), any::<u8>()),
            (any::<u16>(), UNAUTH_LEN..=MAX_PACKET_LEN),
        )
            .prop_map(|((seq, t3, e, t2), (sseq, t1, se, ttl), (ssid, len))| {
                ReflectedPacket {
                    seq,
                    timestamp: Timestamp {
                        raw: t3,
                        ptp: e.ptp,
                    },
                    error_estimate: e,
                    ssid,
                    receive_timestamp: Timestamp {
                        raw: t2,
                        ptp: e.ptp,
                    },
                    sender_seq: sseq,
                    sender_timestamp: t1,
                    sender_error_estimate: se,
                    sender_ttl: ttl,
                    len,
                }
            })
    }

    #[test]
    fn test_packet_layout() {
        let p = TestPacket::sample(44);
        let mut buf = Vec::new();
        p.encode(&mut buf);
        let mut want = vec![
            1, 2, 3, 4, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 1, 2, 0x0a, 0x0b,
        ];
        want.resize(44, 0);
        assert_eq!(buf, want);
    }

    #[test]
    fn reflected_layout_offsets() {
        let p = ReflectedPacket::numbered(60);
        let mut buf = Vec::new();
        p.encode(&mut buf);
        assert_eq!(buf.len(), 60);
        assert_eq!(buf[3], 1);
        assert_eq!(buf[11], 2);
        assert_eq!(buf[13], 3);
        assert_eq!(&buf[14..16], &[9, 9], "SSID");
        assert_eq!(buf[23], 4);
        assert_eq!(buf[27], 5);
        assert_eq!(buf[35], 6);
        assert_eq!(buf[37], 7);
        assert_eq!(buf[40], 8);
        assert!(buf[41..].iter().all(|b| *b == 0));
        ReflectedPacket::stamp_transmit(&mut buf, Timestamp { raw: 9, ptp: false });
        assert_eq!(ReflectedPacket::decode(&buf).unwrap().timestamp.raw, 9);
    }

    #[test]
    fn every_truncated_length_is_rejected() {
        for len in 0..UNAUTH_LEN {
            let buf = vec![0u8; len];
            let want = Err(WireError::Truncated {
                need: UNAUTH_LEN,
                have: len,
            });
            assert_eq!(TestPacket::decode(&buf), want);
            assert_eq!(ReflectedPacket::decode(&buf).map(|_| ()), want.map(|_| ()));
        }
        let big = vec![0u8; MAX_PACKET_LEN + 1];
        assert!(matches!(
            TestPacket::decode(&big),
            Err(WireError::Invalid {
                field: "length",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn test_packet_round_trip(p in test_packet()) {
            let mut buf = Vec::new();
            p.encode(&mut buf);
            prop_assert_eq!(buf.len(), p.len);
            prop_assert_eq!(TestPacket::decode(&buf).unwrap(), p);
        }

        #[test]
        fn reflected_round_trip(p in reflected()) {
            let mut buf = Vec::new();
            p.encode(&mut buf);
            prop_assert_eq!(buf.len(), p.len);
            prop_assert_eq!(ReflectedPacket::decode(&buf).unwrap(), p);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = TestPacket::decode(&bytes);
            let _ = ReflectedPacket::decode(&bytes);
        }
    }
}

//! RFC 8972 TLVs: what follows a STAMP base packet (44 octets unauthenticated, 112
//! authenticated) in test and reflected packets alike. Each TLV is a Flags octet, a Type
//! octet and a 16-bit Length of the value after this 4-octet header; the Flags are
//! U (unrecognized), M (malformed), I (integrity failed). This module walks and writes
//! them; what a reflector puts in each is `probe::reflect_tlv`'s.
//!
//! A tail of zeroes where a TLV would start is RFC 8762 padding, not TLVs of type 0.

use std::ops::Range;

/// Unrecognized: the reflector did not understand the TLV (the sender sets it on all).
pub const U: u8 = 0x80;
/// Malformed: its length is wrong for its type, or runs past the packet.
pub const M: u8 = 0x40;
/// Integrity: the HMAC TLV did not verify.
pub const I: u8 = 0x20;
/// The header before each value.
pub const HEADER: usize = 4;

/// TLV types (IANA "STAMP TLV Types").
pub mod kind {
    pub const EXTRA_PADDING: u8 = 1;
    pub const LOCATION: u8 = 2;
    pub const TIMESTAMP_INFO: u8 = 3;
    pub const CLASS_OF_SERVICE: u8 = 4;
    pub const DIRECT_MEASUREMENT: u8 = 5;
    pub const ACCESS_REPORT: u8 = 6;
    pub const FOLLOW_UP: u8 = 7;
    pub const HMAC: u8 = 8;
}

/// Location TLV sub-TLV types (IANA "STAMP Sub-TLV Types").
pub mod sub {
    pub const SOURCE_MAC: u8 = 1;
    pub const SOURCE_EUI48: u8 = 2;
    pub const SOURCE_EUI64: u8 = 3;
    pub const DESTINATION_IP: u8 = 4;
    pub const DESTINATION_IPV4: u8 = 5;
    pub const DESTINATION_IPV6: u8 = 6;
    pub const SOURCE_IP: u8 = 7;
    pub const SOURCE_IPV4: u8 = 8;
    pub const SOURCE_IPV6: u8 = 9;
}

/// One TLV's place in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv {
    /// Offset of its Flags octet.
    pub at: usize,
    pub flags: u8,
    pub kind: u8,
    /// Octets of value.
    pub len: usize,
}

impl Tlv {
    /// Where its value is.
    pub fn value(&self) -> Range<usize> {
        self.at + HEADER..self.at + HEADER + self.len
    }

    /// Where it ends (the next TLV's offset).
    pub fn end(&self) -> usize {
        self.at + HEADER + self.len
    }
}

/// One step of [`walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Tlv(Tlv),
    /// A TLV whose header or value runs past the end, at this offset: nothing after it
    /// is read.
    Truncated(usize),
}

/// The TLVs of `buf` from `start` to its end; stops at a zero tail (padding) and after a
/// truncated one.
pub fn walk(buf: &[u8], start: usize) -> impl Iterator<Item = Step> + '_ {
    let mut at = Some(start);
    // Found once, so a packet of many short TLVs costs one pass, not one per TLV.
    let last_nonzero = buf.iter().rposition(|b| *b != 0);
    std::iter::from_fn(move || {
        let here = at?;
        if last_nonzero.is_none_or(|last| here > last) {
            at = None;
            return None;
        }
        if here + HEADER > buf.len() {
            at = None;
            return Some(Step::Truncated(here));
        }
        let tlv = Tlv {
            at: here,
            flags: buf[here],
            kind: buf[here + 1],
            len: usize::from(u16::from_be_bytes([buf[here + 2], buf[here + 3]])),
        };
        if tlv.end() > buf.len() {
            at = None;
            return Some(Step::Truncated(here));
        }
        at = Some(tlv.end());
        Some(Step::Tlv(tlv))
    })
}

/// The value of a Class of Service TLV (RFC 8972 4.4, with erratum 8199): DSCP1, the DSCP
/// the sender asks the reply to carry; DSCP2 and EC2, the DSCP and ECN the test packet
/// arrived with at the reflector; RPD, 0b01 when the reflector's policy refused DSCP1 and
/// the reply went with DSCP2 instead. A sender sends DSCP2, EC2 and RPD as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassOfService {
    pub dscp1: u8,
    pub dscp2: u8,
    pub ecn2: u8,
    pub rpd: u8,
}

impl ClassOfService {
    /// Octets of value.
    pub const LEN: usize = 4;

    pub fn encode(&self) -> [u8; 4] {
        let (d1, d2) = (self.dscp1 & 0x3f, self.dscp2 & 0x3f);
        [
            d1 << 2 | d2 >> 4,
            (d2 & 0xf) << 4 | (self.ecn2 & 3) << 2 | (self.rpd & 3),
            0,
            0,
        ]
    }

    pub fn decode(v: [u8; 4]) -> ClassOfService {
        ClassOfService {
            dscp1: v[0] >> 2,
            dscp2: (v[0] & 3) << 4 | v[1] >> 4,
            ecn2: (v[1] >> 2) & 3,
            rpd: v[1] & 3,
        }
    }

    /// The DSCP the reflector says it sent the reply with.
    pub fn reply_dscp(&self) -> u8 {
        match self.rpd {
            1 => self.dscp2,
            _ => self.dscp1,
        }
    }
}

/// Appends a TLV.
pub fn put(buf: &mut Vec<u8>, flags: u8, kind: u8, value: &[u8]) {
    let len = u16::try_from(value.len()).expect("a TLV value fits 16 bits");
    buf.extend_from_slice(&[flags, kind]);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(value);
}

/// Fills `buf` from its length to `len` octets with an Extra Padding TLV (flags U, as a
/// sender sends it; zero value), or with zeroes when fewer than a header's octets remain.
pub fn pad(buf: &mut Vec<u8>, len: usize) {
    let room = len.saturating_sub(buf.len());
    if room >= HEADER {
        put(buf, U, kind::EXTRA_PADDING, &vec![0; room - HEADER]);
    } else {
        buf.resize(buf.len() + room, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_whole_tlvs_then_stops_at_a_zero_tail_or_a_cut() {
        let mut buf = vec![0xaa; 44];
        put(&mut buf, U, kind::TIMESTAMP_INFO, &[0; 4]);
        put(&mut buf, U, kind::DIRECT_MEASUREMENT, &[1; 12]);
        buf.extend_from_slice(&[0; 10]);
        let steps: Vec<Step> = walk(&buf, 44).collect();
        assert_eq!(
            steps,
            vec![
                Step::Tlv(Tlv {
                    at: 44,
                    flags: U,
                    kind: 3,
                    len: 4
                }),
                Step::Tlv(Tlv {
                    at: 52,
                    flags: U,
                    kind: 5,
                    len: 12
                }),
            ]
        );
        // A length past the end, and a header cut short.
        let mut cut = buf[..68].to_vec();
        put(&mut cut, U, kind::HMAC, &[7; 16]);
        let bad = cut.len() - 2;
        assert_eq!(walk(&cut[..bad], 44).last(), Some(Step::Truncated(68)));
        assert_eq!(walk(&buf[..54], 44).last(), Some(Step::Truncated(52)));
        assert_eq!(walk(&buf[..44], 44).count(), 0);
    }

    #[test]
    fn class_of_service_round_trips_at_its_bit_places() {
        let c = ClassOfService {
            dscp1: 46,
            dscp2: 10,
            ecn2: 2,
            rpd: 1,
        };
        assert_eq!(c.encode(), [46 << 2, 10 << 4 | 2 << 2 | 1, 0, 0]);
        assert_eq!(ClassOfService::decode(c.encode()), c);
        assert_eq!(c.reply_dscp(), 10);
        for d in 0..64 {
            let c = ClassOfService {
                dscp1: 63 - d,
                dscp2: d,
                ..ClassOfService::default()
            };
            assert_eq!(ClassOfService::decode(c.encode()), c);
            assert_eq!(c.reply_dscp(), 63 - d);
        }
    }

    #[test]
    fn padding_is_one_extra_padding_tlv_or_zeroes() {
        for (len, want) in [(44, 0), (46, 2), (48, 4), (1372, 1328)] {
            let mut buf = vec![1; 44];
            pad(&mut buf, len);
            assert_eq!(buf.len(), len);
            let tlvs: Vec<Step> = walk(&buf, 44).collect();
            match want {
                0 | 2 => assert!(tlvs.is_empty(), "{len}: {tlvs:?}"),
                n => assert_eq!(
                    tlvs,
                    vec![Step::Tlv(Tlv {
                        at: 44,
                        flags: U,
                        kind: 1,
                        len: n - HEADER
                    })]
                ),
            }
        }
    }
}

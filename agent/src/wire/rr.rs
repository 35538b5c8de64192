//! Framing of TCP request/response probes (xcbench's own; no standard exists for this).
//!
//! ```text
//!  0..2   magic 0x58 0x42 ("XB")       16..24 t2: responder receive (Unix ns; 0 in a request)
//!  2      version 1                    24..32 t3: responder send (Unix ns; 0 in a request)
//!  3      type: 1 request, 2 response  32..34 frame length incl. header (34..=9000)
//!  4..8   sequence number              34..   zero padding
//!  8..16  t1: requester send (Unix ns)
//! ```
//! A response has the request's length, sequence and t1: a responder never sends more than it
//! received. RTT = (T4 - T1) - (T3 - T2), as for STAMP.

use super::WireError;

pub const HEADER_LEN: usize = 34;
pub const MAX_FRAME_LEN: usize = 9_000;
const MAGIC: [u8; 2] = *b"XB";
const VERSION: u8 = 1;

/// Request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    Request,
    Response,
}

/// One probe frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameType,
    pub seq: u32,
    pub t1: u64,
    pub t2: u64,
    pub t3: u64,
    /// Total length on the wire, HEADER_LEN..=MAX_FRAME_LEN.
    pub len: usize,
}

impl Frame {
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.extend_from_slice(&MAGIC);
        buf.push(VERSION);
        buf.push(match self.kind {
            FrameType::Request => 1,
            FrameType::Response => 2,
        });
        buf.extend_from_slice(&self.seq.to_be_bytes());
        buf.extend_from_slice(&self.t1.to_be_bytes());
        buf.extend_from_slice(&self.t2.to_be_bytes());
        buf.extend_from_slice(&self.t3.to_be_bytes());
        let len = self.len.clamp(HEADER_LEN, MAX_FRAME_LEN);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
        buf.resize(start + len, 0);
    }

    /// Decodes the frame at the start of `buf`. `Truncated` means "wait for more bytes";
    /// `Invalid` means the stream is not xcbench probes and the connection should close.
    pub fn decode(buf: &[u8]) -> Result<Frame, WireError> {
        let invalid = |field, value: u64, expected| WireError::Invalid {
            field,
            value,
            expected,
        };
        // Reject a wrong magic as soon as the bytes are there, not only after 34 bytes.
        for (i, m) in MAGIC.iter().enumerate() {
            if let Some(b) = buf.get(i) {
                if b != m {
                    return Err(invalid("magic", u64::from(*b), "must be \"XB\""));
                }
            }
        }
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        if buf[2] != VERSION {
            return Err(invalid("version", u64::from(buf[2]), "must be 1"));
        }
        let kind = match buf[3] {
            1 => FrameType::Request,
            2 => FrameType::Response,
            t => {
                return Err(invalid(
                    "type",
                    u64::from(t),
                    "must be 1 (request) or 2 (response)",
                ))
            }
        };
        let len = usize::from(u16::from_be_bytes([buf[32], buf[33]]));
        if !(HEADER_LEN..=MAX_FRAME_LEN).contains(&len) {
            return Err(invalid("length", len as u64, "must be 34 to 9000"));
        }
        if buf.len() < len {
            return Err(WireError::Truncated {
                need: len,
                have: buf.len(),
            });
        }
        let u64_at = |i: usize| u64::from_be_bytes(buf[i..i + 8].try_into().expect("in bounds"));
        Ok(Frame {
            kind,
            seq: u32::from_be_bytes(buf[4..8].try_into().expect("in bounds")),
            t1: u64_at(8),
            t2: u64_at(16),
            t3: u64_at(24),
            len,
        })
    }

    /// Writes t3 into an encoded response right before it is sent.
    pub fn stamp_send(buf: &mut [u8], t3: u64) {
        if buf.len() >= 32 {
            buf[24..32].copy_from_slice(&t3.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame() -> impl Strategy<Value = Frame> {
        (
            any::<bool>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            HEADER_LEN..=MAX_FRAME_LEN,
        )
            .prop_map(|(req, seq, t1, t2, t3, len)| Frame {
                kind: if req {
                    FrameType::Request
                } else {
                    FrameType::Response
                },
                seq,
                t1,
                t2,
                t3,
                len,
            })
    }

    #[test]
    fn every_prefix_needs_more_and_garbage_is_invalid() {
        let mut buf = Vec::new();
        Frame {
            kind: FrameType::Request,
            seq: 7,
            t1: 1,
            t2: 0,
            t3: 0,
            len: 100,
        }
        .encode(&mut buf);
        for n in 0..buf.len() {
            assert!(
                matches!(Frame::decode(&buf[..n]), Err(WireError::Truncated { .. })),
                "prefix {n}"
            );
        }
        assert_eq!(Frame::decode(&buf).unwrap().seq, 7);
        assert!(matches!(
            Frame::decode(b"GET / HTTP/1.1\r\n"),
            Err(WireError::Invalid { field: "magic", .. })
        ));
        let mut bad = buf.clone();
        bad[33] = 10; // length 10 < header
        bad[32] = 0;
        assert!(matches!(
            Frame::decode(&bad),
            Err(WireError::Invalid {
                field: "length",
                ..
            })
        ));
        let mut bad = buf;
        bad[3] = 9;
        assert!(matches!(
            Frame::decode(&bad),
            Err(WireError::Invalid { field: "type", .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(f in frame()) {
            let mut buf = Vec::new();
            f.encode(&mut buf);
            prop_assert_eq!(buf.len(), f.len);
            prop_assert_eq!(Frame::decode(&buf).unwrap(), f);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Frame::decode(&bytes);
        }
    }
}

//! Packet formats, pure encode/decode: STAMP (RFC 8762) test packets, unauthenticated
//! (`stamp`) and authenticated (`stamp_auth`, HMAC-SHA-256), the RFC 8972 TLVs after either
//! (`stamp_tlv`), their timestamps and error
//! estimates, the TCP/QUIC probe framing, throughput test control, and hex text.
//! No clock, no socket.
//!
//! Every decoder returns [`WireError::Truncated`] when it needs more bytes and
//! [`WireError::Invalid`] when the bytes can never be a valid packet.

// No I/O, no clocks, no unsafe: bytes and times in, values out.
#![forbid(unsafe_code)]

pub mod error_estimate;
pub mod hex;
pub mod rr;
pub mod stamp;
pub mod stamp_auth;
pub mod stamp_tlv;
pub mod throughput;
pub mod timestamp;

pub use error_estimate::ErrorEstimate;
pub use stamp::{ReflectedPacket, TestPacket, MAX_PACKET_LEN, UNAUTH_LEN};
pub use timestamp::Timestamp;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("{field} = {value}: {expected}")]
    Invalid {
        field: &'static str,
        value: u64,
        expected: &'static str,
    },
}

//! What the STAMP reflector writes into the RFC 8972 TLVs of a reply, sans-IO. The reply
//! holds the test packet's TLVs at the same offsets (same types, order and lengths: a reply
//! is never longer than its test packet, so nothing is amplified); each is answered in
//! place and its flags set: U for a type not known here, M for a length wrong for its type
//! or one that runs past the packet (what follows is copied as it came), I on every TLV
//! when the HMAC TLV does not verify (nothing else is answered then).
//!
//! Answered: Extra Padding (echoed), Location (the ports and addresses the test packet
//! came from and to; no MAC is known: a zeroed EUI-64), Timestamp Information (how T2 and
//! T3 were taken), Class of Service (the DSCP and ECN received; the reply is sent with the
//! DSCP asked for), Direct Measurement (the session's packets received and sent, each
//! counting this one), Access Report (echoed), Follow-Up Telemetry (the session's previous
//! reply: its sequence number and the T3 it carried, a software timestamp) and HMAC (checked
//! over the sequence number and the TLVs before it, then computed again over the reply's).

use std::net::{IpAddr, SocketAddr};

use crate::wire::stamp_auth::{StampKey, HMAC_LEN};
use crate::wire::stamp_tlv::{kind, sub, walk, ClassOfService, Step, Tlv, HEADER, I, M, U};

/// Synchronization sources and timestamping methods (IANA STAMP registries).
const SYNC_NTP: u8 = 1;
const SYNC_FREE_RUNNING: u8 = 5;
const METHOD_SW_LOCAL: u8 = 2;

/// What the reflector knows of one test packet and its session.
#[derive(Debug, Clone, Copy)]
pub struct Context<'k> {
    /// The test packet's source.
    pub from: SocketAddr,
    /// Where it was sent (this host), when the kernel said.
    pub to: Option<IpAddr>,
    pub local_port: u16,
    /// Its traffic class octet (DSCP << 2 | ECN), when the kernel said.
    pub tos: Option<u8>,
    /// Test packets the session has taken, this one included (Direct Measurement R_RxC).
    pub received: u32,
    /// Replies the session has sent, this one included (R_TxC).
    pub transmitted: u32,
    /// The session's previous reply: its sequence number and raw T3.
    pub previous: Option<(u32, u64)>,
    /// This host's clock says it is synchronized (NTP).
    pub synchronized: bool,
    /// The key HMAC TLVs are checked and made with (authenticated mode).
    pub key: Option<&'k StampKey>,
}

/// What the I/O layer is to do beyond sending the reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answer {
    /// Send the reply with this DSCP (Class of Service).
    pub dscp: Option<u8>,
    /// The reply carries a Follow-Up Telemetry TLV: its T3 is to be remembered.
    pub follow_up: bool,
}

/// Answers the TLVs of `reply` from `base` on (its sequence number already written), given
/// the test packet's own bytes `request` (the same length).
pub fn answer(request: &[u8], reply: &mut [u8], base: usize, cx: &Context) -> Answer {
    debug_assert_eq!(request.len(), reply.len());
    let mut out = Answer::default();
    if !integrity(request, base, cx.key) {
        for step in walk(request, base) {
            match step {
                Step::Tlv(t) => reply[t.at] |= I,
                Step::Truncated(_) => break,
            }
        }
        return out;
    }
    let mut hmac_at = None;
    for step in walk(request, base) {
        let t = match step {
            Step::Tlv(t) => t,
            Step::Truncated(at) => {
                if at + HEADER <= reply.len() {
                    reply[at] = M;
                }
                break;
            }
        };
        let value = &mut reply[t.value()];
        let flags: Option<u8> = match t.kind {
            kind::EXTRA_PADDING => Some(0),
            kind::LOCATION => Some(location(value, cx)),
            kind::TIMESTAMP_INFO if t.len >= 4 => {
                let sync = match cx.synchronized {
                    true => SYNC_NTP,
                    false => SYNC_FREE_RUNNING,
                };
                value[..4].copy_from_slice(&[sync, METHOD_SW_LOCAL, sync, METHOD_SW_LOCAL]);
                Some(0)
            }
            kind::CLASS_OF_SERVICE if t.len == ClassOfService::LEN => {
                let asked = ClassOfService::decode([value[0], value[1], value[2], value[3]]);
                let (dscp2, ecn2) = cx.tos.map_or((0, 0), |tos| (tos >> 2, tos & 0b11));
                let answer = ClassOfService {
                    dscp1: asked.dscp1,
                    dscp2,
                    ecn2,
                    rpd: 0,
                };
                value.copy_from_slice(&answer.encode());
                out.dscp = Some(asked.dscp1);
                Some(0)
            }
            kind::DIRECT_MEASUREMENT if t.len == 12 => {
                value[4..8].copy_from_slice(&cx.received.to_be_bytes());
                value[8..12].copy_from_slice(&cx.transmitted.to_be_bytes());
                Some(0)
            }
            kind::ACCESS_REPORT if t.len == 4 => match value[0] >> 4 {
                1 | 2 => Some(0),
                _ => Some(U),
            },
            kind::FOLLOW_UP if t.len == 16 => {
                let (seq, t3) = cx.previous.unwrap_or((0, 0));
                value[..4].copy_from_slice(&seq.to_be_bytes());
                value[4..12].copy_from_slice(&t3.to_be_bytes());
                value[12..16].copy_from_slice(&[METHOD_SW_LOCAL, 0, 0, 0]);
                out.follow_up = true;
                Some(0)
            }
            kind::HMAC if t.len == HMAC_LEN => {
                hmac_at = Some(t);
                Some(0)
            }
            kind::TIMESTAMP_INFO
            | kind::CLASS_OF_SERVICE
            | kind::DIRECT_MEASUREMENT
            | kind::ACCESS_REPORT
            | kind::FOLLOW_UP
            // A known type whose length is wrong for it.
            | kind::HMAC => None,
            _ => Some(U),
        };
        match flags {
            Some(flags) => reply[t.at] = flags,
            None => {
                reply[t.at] = M;
                break;
            }
        }
    }
    if let (Some(t), Some(key)) = (hmac_at, cx.key) {
        let tag = key.tag_of(&[&reply[..4], &reply[base..t.at]]);
        reply[t.value()].copy_from_slice(&tag);
    }
    out
}

/// Whether the test packet's TLVs may be answered: an HMAC TLV, if there is one, last but
/// for Extra Padding and verified with `key` over the sequence number and the TLVs before
/// it; and in authenticated mode (a key) there must be one unless Extra Padding is all.
fn integrity(request: &[u8], base: usize, key: Option<&StampKey>) -> bool {
    let tlvs: Vec<Tlv> = walk(request, base)
        .map_while(|s| match s {
            Step::Tlv(t) => Some(t),
            Step::Truncated(_) => None,
        })
        .collect();
    let Some(at) = tlvs.iter().position(|t| t.kind == kind::HMAC) else {
        return key.is_none() || tlvs.iter().all(|t| t.kind == kind::EXTRA_PADDING);
    };
    let hmac = tlvs[at];
    let last = tlvs[at + 1..].iter().all(|t| t.kind == kind::EXTRA_PADDING);
    let Some(key) = key.filter(|_| last && hmac.len == HMAC_LEN) else {
        return false;
    };
    key.verifies(
        &[&request[..4], &request[base..hmac.at]],
        &request[hmac.value()],
    )
}

/// Answers a Location TLV's value in place; its flags.
fn location(value: &mut [u8], cx: &Context) -> u8 {
    if value.len() < 4 {
        return M;
    }
    value[0..2].copy_from_slice(&cx.local_port.to_be_bytes());
    value[2..4].copy_from_slice(&cx.from.port().to_be_bytes());
    let mut at = 4;
    while at < value.len() {
        if at + HEADER > value.len() {
            return M;
        }
        let len = usize::from(u16::from_be_bytes([value[at + 2], value[at + 3]]));
        let end = at + HEADER + len;
        if end > value.len() {
            value[at] = M;
            return 0;
        }
        let asked = value[at + 1];
        let field = &mut value[at + HEADER..end];
        let (kind, flags) = match (value_kind(asked), len) {
            (Some(sub::SOURCE_MAC), 8) => {
                field.fill(0);
                (sub::SOURCE_EUI64, 0)
            }
            (Some(sub::DESTINATION_IP), 16) => address(field, cx.to, sub::DESTINATION_IP),
            (Some(sub::SOURCE_IP), 16) => address(field, Some(cx.from.ip()), sub::SOURCE_IP),
            (Some(_), _) => {
                value[at] = M;
                return 0;
            }
            (None, _) => (asked, U),
        };
        value[at] = flags;
        value[at + 1] = kind;
        at = end;
    }
    0
}

/// A sub-TLV type the reflector answers.
fn value_kind(k: u8) -> Option<u8> {
    matches!(k, sub::SOURCE_MAC | sub::DESTINATION_IP | sub::SOURCE_IP).then_some(k)
}

/// An address sub-TLV's answer: IPv4 in the first 4 octets and zeroes, or IPv6; the
/// request type again, zeroed, when the address is not known.
fn address(field: &mut [u8], ip: Option<IpAddr>, request: u8) -> (u8, u8) {
    field.fill(0);
    let v4 = request + 1;
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(a)) => {
            field[..4].copy_from_slice(&a.octets());
            (v4, 0)
        }
        Some(IpAddr::V6(a)) => {
            field.copy_from_slice(&a.octets());
            (v4 + 1, 0)
        }
        None => (request, 0),
    }
}

#[cfg(test)]
mod tests;

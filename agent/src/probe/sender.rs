//! STAMP Session-Sender state machine, sans-IO: times and bytes in, packets and events out.
//!
//! Timestamps: T1 = sender transmit (user space, read right before the send), T2 = reflector
//! receive, T3 = reflector transmit, T4 = sender receive (kernel timestamp where available).
//! T1 and T4 are [`Moment`]s (both of this host's clocks); T2 and T3 come from the
//! reflector's wall clock on the wire.
//! RTT = (T4 - T1) - (T3 - T2) with T4 - T1 on the monotonic clock: the reflector's dwell
//! time is excluded and a wall-clock step on this host cannot bend it.
//! One-way delay forward = T2 - T1, reverse = T4 - T3 on the wall clocks (as good as the two
//! clocks agree; the combined error estimate from both ends comes with every reply). A reply
//! whose probe was out while this host's wall clock stepped keeps its RTT; its one-way
//! delays are discarded (see [`super::stepped`]) and left out of IPDV and jitter.
//!
//! Outcomes, each counted once: a probe is *lost* when its own timeout expires without a reply;
//! a reply after that is *late*; a second copy of an accepted reply is a *duplicate*; a reply
//! to probe n arriving after the reply to a later probe is *reordered* (and still counted as
//! received). Loss is split by direction with the stateful reflector's own sequence number:
//! between two answered probes s_a < s_b with reflector sequences r_a < r_b, the reflector
//! received r_b - r_a - 1 of the probes in between; those that were lost were lost on the way
//! back, the rest on the way out. The split is therefore known once the next probe after a
//! loss is answered; total loss is known at each probe's timeout. A counter that moved
//! impossibly (backwards, not at all, or past more probes than the run holds: a reflector
//! restarted, its session evicted, a NAT rebound the source port, this sender restarted on
//! the same port) says nothing about the run: its losses stay *unattributed*, never guessed.
//!
//! Each session sends its own RFC 8972 Session-Sender Identifier ([`Sender::with_ssid`]):
//! a reply carrying another (nonzero) one belongs to another session and is unmatched; a
//! reply carrying 0 comes from a reflector without RFC 8972 and is taken.
//!
//! In authenticated mode ([`Sender::authenticated`]) test packets are sealed with the
//! peer's current key and a reply is taken only if one of its keys gives its HMAC; one
//! that does not is counted ([`Event::Unauthenticated`]) and never matched to a probe.
//!
//! IPDV (RFC 5481) is taken between probes n-1 and n when both were answered (so the clock
//! offset cancels); jitter is the RFC 3550 running estimate over replies in arrival order.

use std::collections::VecDeque;
use std::sync::Arc;

use super::jitter::Rfc3550;
use super::{earliest, stepped, Event, Moment, Probe};
use crate::wire::stamp_auth::{AuthError, StampKeys, AUTH_LEN, HMAC_LEN, MAX_KEYS};
use crate::wire::stamp_tlv::{self, kind, ClassOfService, Step, Tlv};
use crate::wire::{ErrorEstimate, ReflectedPacket, TestPacket, Timestamp, UNAUTH_LEN};

/// The octets a Class of Service TLV takes: a header and its value.
pub const COS_TLV_LEN: usize = stamp_tlv::HEADER + ClassOfService::LEN;
/// The octets an HMAC TLV takes.
pub const HMAC_TLV_LEN: usize = stamp_tlv::HEADER + HMAC_LEN;

/// Probes kept for matching; with timeout/interval bounded by config this is never reached
/// by live probes, only by history kept for late and duplicate detection.
pub const MAX_WINDOW: usize = 1 << 17;

/// How late the next slot may be and still be made up: the probes of a shorter stall go out
/// at once, one after another (at most 10, at the smallest interval of 1 ms). A scheduler
/// delay of a few milliseconds is ordinary on a busy cloud VM (steal time, a neighbour's
/// burst); sending those probes late keeps the configured count (each carries the time it
/// really left) instead of counting the host's hiccup against the gate's `max_skipped`.
pub const CATCH_UP_NS: u64 = 10_000_000;

/// The send time after a probe due at `due` went out at `now`, and how many slots were
/// skipped: a fixed schedule (a wake-up late by less than [`CATCH_UP_NS`], or one interval
/// if that is longer, is made up by sending the missed probes at once), but after a longer
/// stall the missed slots are skipped instead of sent in a burst, and counted (a probe rate
/// below the configured one shows in the data).
pub fn next_slot(due: u64, interval: u64, now: u64) -> (u64, u64) {
    let next = due + interval;
    if next + interval.max(CATCH_UP_NS) <= now {
        (now + interval, (now - next) / interval + 1)
    } else {
        (next, 0)
    }
}

/// Schedule and sizes of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    pub interval_ns: u64,
    pub timeout_ns: u64,
    /// Test packet size on the wire (UDP payload), 44..=9000 bytes.
    pub packet_len: usize,
    /// The DSCP test packets are sent with (the socket's); a packet with room for a Class
    /// of Service TLV asks the reflector to send the reply with it too.
    pub dscp: u8,
}

/// Measurements from one accepted reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reply {
    pub seq: u32,
    /// Monotonic T4 - T1 minus the reflector's dwell T3 - T2; `None` when that dwell is as
    /// long as the whole round trip or longer ([`super::less_dwell`]).
    pub rtt_ns: Option<u64>,
    /// One-way delays (forward T2 - T1, reverse T4 - T3) from the two wall clocks; `None`
    /// when this host's wall clock stepped while the probe was out, or when the RTT is.
    pub one_way: Option<(i64, i64)>,
    /// IPDV samples (forward, reverse) completed by this reply: the pair (n-1, n) if n-1 was
    /// answered, and the pair (n, n+1) if n+1 was answered first (reordering).
    pub ipdv: [Option<(i64, i64)>; 2],
    pub reordered: bool,
    /// RFC 3550 jitter estimates after this reply.
    pub jitter_forward_ns: f64,
    pub jitter_reverse_ns: f64,
    /// Sender's plus reflector's error estimate.
    pub clock_error_ns: u64,
    /// Both ends said their clocks were synchronized.
    pub synchronized: bool,
    /// The DSCP each way, where the reflector answered the Class of Service TLV.
    pub dscp: Option<DscpSeen>,
}

/// The DSCP of a test packet and its reply as sent and as received (RFC 8972 Class of
/// Service): a network that re-marks traffic shows as a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DscpSeen {
    /// Forward: the DSCP the test packet left with, and arrived at the reflector with.
    pub sent: u8,
    pub at_reflector: u8,
    /// Reverse: the DSCP the reflector says it sent the reply with (the one asked for, or
    /// the received one if its policy refused), and the one the reply arrived with here
    /// (`None`: this socket cannot tell).
    pub reflected: u8,
    pub back: Option<u8>,
    /// ECN (the sender sends Not-ECT, 0): as the test packet reached the reflector (EC2),
    /// and as the reply arrived here (`None`: this socket cannot tell). Anything else than 0
    /// is a device on the path setting it.
    pub ecn_at_reflector: u8,
    pub ecn_back: Option<u8>,
}

impl DscpSeen {
    pub fn forward_remarked(&self) -> bool {
        self.sent != self.at_reflector
    }

    pub fn reverse_remarked(&self) -> bool {
        self.back.is_some_and(|b| b != self.reflected)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Pending,
    Answered {
        reflector_seq: u32,
        /// (forward, reverse); `None` when a clock step made them meaningless.
        one_way: Option<(i64, i64)>,
    },
    Lost,
    /// Answered after its timeout: counted as lost and as late.
    LateAnswered,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    t1: Moment,
    t1_raw: u64,
    state: State,
}

/// One STAMP session towards one reflector.
pub struct Sender {
    config: SenderConfig,
    /// Sequence number of `window[0]`; internal sequences are u64, the wire carries the low
    /// 32 bits.
    base: u64,
    window: VecDeque<Slot>,
    /// Monotonic time of the next send.
    next_send_ns: Option<u64>,
    /// Everything below this sequence has been checked against its timeout.
    expiry_cursor: u64,
    /// Everything below this sequence has been attributed to a loss direction.
    attr_cursor: u64,
    attr_anchor: Option<u32>,
    attr_run: u64,
    /// First sequence of the run of losses being counted.
    attr_first: u64,
    highest_answered: Option<u64>,
    jitter: (Rfc3550, Rfc3550),
    events: VecDeque<Event>,
    /// Authenticated mode: the peer's keys.
    keys: Option<Arc<StampKeys>>,
    /// RFC 8972 Session-Sender Identifier (0: none).
    ssid: u16,
}

impl Sender {
    /// A session whose first probe goes out at `start_ns` (monotonic).
    pub fn new(config: SenderConfig, start_ns: u64) -> Sender {
        Sender {
            config,
            base: 0,
            window: VecDeque::new(),
            next_send_ns: Some(start_ns),
            expiry_cursor: 0,
            attr_cursor: 0,
            attr_anchor: None,
            attr_run: 0,
            attr_first: 0,
            highest_answered: None,
            jitter: (Rfc3550::default(), Rfc3550::default()),
            events: VecDeque::new(),
            keys: None,
            ssid: 0,
        }
    }

    /// The session's RFC 8972 Session-Sender Identifier, sent in every test packet.
    pub fn with_ssid(mut self, ssid: u16) -> Sender {
        self.ssid = ssid;
        self
    }

    /// The session in authenticated mode with the peer's keys (`None`: unauthenticated).
    /// The packet length is the configured one, at least the 112 bytes of an
    /// authenticated packet.
    pub fn authenticated(mut self, keys: Option<Arc<StampKeys>>) -> Sender {
        self.keys = keys;
        self
    }

    fn transmit(&mut self, now: Moment, estimate: ErrorEstimate, buf: &mut Vec<u8>) -> bool {
        let Some(due) = self.next_send_ns else {
            return false;
        };
        if now.mono_ns < due {
            return false;
        }
        let (next, skipped) = next_slot(due, self.config.interval_ns, now.mono_ns);
        self.next_send_ns = Some(next);
        if skipped > 0 {
            self.events.push_back(Event::Skipped { count: skipped });
        }

        let seq = self.base + self.window.len() as u64;
        let t1 = Timestamp::from_unix_ns(now.wall_ns);
        buf.clear();
        let mut packet = TestPacket {
            seq: seq as u32,
            timestamp: t1,
            error_estimate: estimate,
            ssid: self.ssid,
            len: UNAUTH_LEN,
        };
        match &self.keys {
            None => packet.encode(buf),
            Some(keys) => {
                packet.len = AUTH_LEN;
                packet.encode_authenticated(keys.current(), buf)
            }
        }
        // A packet with room asks for the reply's DSCP in a Class of Service TLV; longer ones
        // carry an RFC 8972 Extra Padding TLV, which a reflector echoes.
        // In authenticated mode an HMAC TLV over the sequence number and the TLVs before it
        // follows (RFC 8972 4.8: only Extra Padding may go without one).
        let hmac = match self.keys {
            Some(_) => HMAC_TLV_LEN,
            None => 0,
        };
        if self.config.packet_len >= buf.len() + COS_TLV_LEN + hmac {
            let cos = ClassOfService {
                dscp1: self.config.dscp,
                ..ClassOfService::default()
            };
            stamp_tlv::put(buf, stamp_tlv::U, kind::CLASS_OF_SERVICE, &cos.encode());
            if let Some(keys) = &self.keys {
                let tag = keys.current().tag_of(&[&buf[..4], &buf[AUTH_LEN..]]);
                stamp_tlv::put(buf, stamp_tlv::U, kind::HMAC, &tag);
            }
        }
        stamp_tlv::pad(buf, self.config.packet_len);
        self.window.push_back(Slot {
            t1: now,
            t1_raw: t1.raw,
            state: State::Pending,
        });
        self.events.push_back(Event::Sent { seq: seq as u32 });
        if self.window.len() > MAX_WINDOW {
            self.trim(now.mono_ns, true);
        }
        true
    }

    fn pending(&self) -> bool {
        let from = self.expiry_cursor.saturating_sub(self.base) as usize;
        self.window
            .range(from.min(self.window.len())..)
            .any(|s| s.state == State::Pending)
    }

    fn timeout(&self) -> Option<u64> {
        let expiry = self
            .slot(self.expiry_cursor)
            .map(|s| s.t1.mono_ns + self.config.timeout_ns);
        earliest(self.next_send_ns, expiry)
    }

    /// Declares lost every probe whose timeout has expired at `now` (monotonic).
    fn expire(&mut self, now: u64) {
        let timeout = self.config.timeout_ns;
        while let Some(slot) = self.slot_mut(self.expiry_cursor) {
            if slot.t1.mono_ns + timeout > now {
                break;
            }
            if slot.state == State::Pending {
                slot.state = State::Lost;
                let seq = self.expiry_cursor as u32;
                self.events.push_back(Event::Lost { seq });
            }
            self.expiry_cursor += 1;
        }
        self.attribute();
        self.trim(now, false);
    }

    /// Handles a datagram that arrived on the session's socket at `received` (T4) with the
    /// traffic class octet `tos`.
    fn receive(&mut self, received: Moment, tos: Option<u8>, datagram: &[u8]) {
        let decoded = match &self.keys {
            None => ReflectedPacket::decode(datagram).map_err(|_| Event::Malformed),
            Some(keys) => ReflectedPacket::decode_authenticated(datagram, keys)
                .map(|a| a.packet)
                .map_err(|e| match e {
                    AuthError::Malformed(_) => Event::Malformed,
                    AuthError::Hmac => Event::Unauthenticated,
                }),
        };
        let packet = match decoded {
            Ok(packet) => packet,
            Err(event) => {
                self.events.push_back(event);
                return;
            }
        };
        if packet.ssid != self.ssid && packet.ssid != 0 {
            self.events.push_back(Event::Unmatched);
            return;
        }
        let offset = u64::from(packet.sender_seq.wrapping_sub(self.base as u32));
        let seq = self.base + offset;
        let Some(slot) = self.slot(seq).copied() else {
            self.events.push_back(Event::Unmatched);
            return;
        };
        if slot.t1_raw != packet.sender_timestamp {
            self.events.push_back(Event::Unmatched);
            return;
        }
        let wire_seq = seq as u32;
        match slot.state {
            State::Answered { .. } | State::LateAnswered => {
                self.events.push_back(Event::Duplicate { seq: wire_seq });
            }
            State::Lost => {
                self.set_state(seq, State::LateAnswered);
                self.events.push_back(Event::Late { seq: wire_seq });
            }
            State::Pending => {
                let mut reply = self.measure(seq, &slot, &packet, received);
                reply.dscp = self.class_of_service(datagram, tos);
                self.set_state(
                    seq,
                    State::Answered {
                        reflector_seq: packet.seq,
                        one_way: reply.one_way,
                    },
                );
                self.events.push_back(Event::Reply(reply));
                self.attribute();
            }
        }
    }

    fn measure(&mut self, seq: u64, slot: &Slot, p: &ReflectedPacket, t4: Moment) -> Reply {
        let t1 = slot.t1;
        let t2 = p.receive_timestamp.to_unix_ns();
        let t3 = p.timestamp.to_unix_ns();
        let rtt_ns = super::less_dwell(t4.mono_ns.saturating_sub(t1.mono_ns), t2, t3);
        let one_way = (rtt_ns.is_some() && !stepped(t1, t4))
            .then(|| (t2 as i64 - t1.wall_ns as i64, t4.wall_ns as i64 - t3 as i64));

        // A neighbour's delays pair with this probe's only if this host's wall clock did not
        // step between the two sends: a step there would be an IPDV of its size.
        let delays = |s: Option<&Slot>| {
            let s = s?;
            let (a, b) = if s.t1.mono_ns <= t1.mono_ns {
                (s.t1, t1)
            } else {
                (t1, s.t1)
            };
            match s.state {
                State::Answered { one_way, .. } if !stepped(a, b) => one_way,
                _ => None,
            }
        };
        let previous = delays(seq.checked_sub(1).and_then(|s| self.slot(s)));
        let next = delays(self.slot(seq + 1));
        let reordered = self.highest_answered.is_some_and(|h| seq < h);
        self.highest_answered = Some(self.highest_answered.map_or(seq, |h| h.max(seq)));

        let (mut ipdv, mut jitter) = ([None, None], (0.0, 0.0));
        if let Some((forward, reverse)) = one_way {
            ipdv = [
                previous.map(|(f, r)| (forward - f, reverse - r)),
                next.map(|(f, r)| (f - forward, r - reverse)),
            ];
            self.jitter.0.handle_transit(forward);
            self.jitter.1.handle_transit(reverse);
        }
        jitter.0 = self.jitter.0.estimate_ns();
        jitter.1 = self.jitter.1.estimate_ns();

        Reply {
            seq: seq as u32,
            rtt_ns,
            one_way,
            ipdv,
            reordered,
            jitter_forward_ns: jitter.0,
            jitter_reverse_ns: jitter.1,
            clock_error_ns: p
                .error_estimate
                .error_ns()
                .saturating_add(p.sender_error_estimate.error_ns()),
            synchronized: p.error_estimate.synchronized && p.sender_error_estimate.synchronized,
            dscp: None,
        }
    }

    /// The DSCP each way from a reply's Class of Service TLV, if the reflector answered it
    /// (cleared its U flag; a reflector that copies TLVs without reading them leaves it).
    /// In authenticated mode only TLVs an HMAC TLV vouches for count.
    fn class_of_service(&self, datagram: &[u8], tos: Option<u8>) -> Option<DscpSeen> {
        let base = match self.keys {
            Some(_) => AUTH_LEN,
            None => UNAUTH_LEN,
        };
        let tlvs: Vec<Tlv> = stamp_tlv::walk(datagram, base)
            .map_while(|step| match step {
                Step::Tlv(t) => Some(t),
                Step::Truncated(_) => None,
            })
            .collect();
        let t = *tlvs.iter().find(|t| t.kind == kind::CLASS_OF_SERVICE)?;
        if let Some(keys) = &self.keys {
            let hmac = tlvs.iter().find(|h| h.kind == kind::HMAC && h.at > t.at)?;
            let covered = [&datagram[..4], &datagram[base..hmac.at]];
            let vouched = (0..MAX_KEYS)
                .filter_map(|i| keys.get(i))
                .any(|k| k.verifies(&covered, &datagram[hmac.value()]));
            if !vouched || hmac.flags & stamp_tlv::I != 0 {
                return None;
            }
        }
        let v: [u8; ClassOfService::LEN] = datagram[t.value()].try_into().ok()?;
        if t.flags & (stamp_tlv::U | stamp_tlv::M | stamp_tlv::I) != 0 {
            return None;
        }
        let c = ClassOfService::decode(v);
        Some(DscpSeen {
            sent: self.config.dscp,
            at_reflector: c.dscp2,
            reflected: c.reply_dscp(),
            back: tos.map(|t| t >> 2),
            ecn_at_reflector: c.ecn2,
            ecn_back: tos.map(|t| t & 0b11),
        })
    }

    /// Walks settled probes in sequence order and splits each run of losses by direction at
    /// the next answered probe (one event per run, naming its sequences).
    fn attribute(&mut self) {
        while let Some(slot) = self.slot(self.attr_cursor) {
            match slot.state {
                State::Pending => break,
                State::Lost | State::LateAnswered => {
                    if self.attr_run == 0 {
                        self.attr_first = self.attr_cursor;
                    }
                    self.attr_run += 1;
                }
                State::Answered { reflector_seq, .. } => {
                    if self.attr_run > 0 {
                        let run = self.attr_run;
                        // Probes in the run the reflector saw (its counter moved past them);
                        // `None` when the counter moved impossibly.
                        let seen = match self.attr_anchor {
                            Some(r_a) => {
                                let moved = u64::from(reflector_seq.wrapping_sub(r_a));
                                (moved >= 1 && moved - 1 <= run).then(|| moved - 1)
                            }
                            None => Some(u64::from(reflector_seq)).filter(|&n| n <= run),
                        };
                        let (forward, reverse) = seen.map_or((0, 0), |back| (run - back, back));
                        self.events.push_back(Event::LossDirection {
                            first: self.attr_first as u32,
                            last: (self.attr_cursor - 1) as u32,
                            forward,
                            reverse,
                            unattributed: run - forward - reverse,
                        });
                        self.attr_run = 0;
                    }
                    self.attr_anchor = Some(reflector_seq);
                }
            }
            self.attr_cursor += 1;
        }
    }

    /// Drops history older than twice the timeout once it is expired and attributed; `force`
    /// drops the oldest slot regardless (window full).
    fn trim(&mut self, now: u64, force: bool) {
        let keep_ns = self.config.timeout_ns.saturating_mul(2);
        if force {
            if let Some(front) = self.window.front_mut() {
                if front.state == State::Pending {
                    front.state = State::Lost;
                    self.events.push_back(Event::Lost {
                        seq: self.base as u32,
                    });
                }
            }
            self.expiry_cursor = self.expiry_cursor.max(self.base + 1);
            self.attr_cursor = self.attr_cursor.max(self.base + 1);
            self.window.pop_front();
            self.base += 1;
        }
        while let Some(front) = self.window.front() {
            let done = self.base < self.expiry_cursor && self.base < self.attr_cursor;
            if !done || front.t1.mono_ns + keep_ns > now {
                break;
            }
            self.window.pop_front();
            self.base += 1;
        }
    }

    fn slot(&self, seq: u64) -> Option<&Slot> {
        let i = seq.checked_sub(self.base)?;
        self.window.get(usize::try_from(i).ok()?)
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let i = seq.checked_sub(self.base)?;
        self.window.get_mut(usize::try_from(i).ok()?)
    }

    fn set_state(&mut self, seq: u64, state: State) {
        if let Some(slot) = self.slot_mut(seq) {
            slot.state = state;
        }
    }
}

impl Probe for Sender {
    fn poll_timeout(&self) -> Option<u64> {
        self.timeout()
    }

    /// A datagram transport never needs re-opening.
    fn handle_timeout(&mut self, now_mono: u64) -> bool {
        self.expire(now_mono);
        false
    }

    fn poll_transmit(&mut self, now: Moment, estimate: ErrorEstimate, buf: &mut Vec<u8>) -> bool {
        self.transmit(now, estimate, buf)
    }

    fn handle_input(&mut self, at: Moment, tos: Option<u8>, bytes: &[u8]) -> bool {
        self.receive(at, tos, bytes);
        true
    }

    /// Datagrams have no connection to lose.
    fn handle_disconnect(&mut self, _stalled: bool) {}

    fn stop(&mut self) {
        self.next_send_ns = None;
    }

    fn has_pending(&self) -> bool {
        self.pending()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

//! Sans-IO probe state machines: bytes and timestamps in, packets and events out. They read
//! no clock and open no socket, so any timeline can be replayed in a test.
//!
//! # Time
//! Every input carries its time as a [`Moment`]: the host's monotonic clock (schedule,
//! timeouts, round-trip times) and its wall clock (what goes on the wire, one-way delay)
//! read together. A wall-clock step (chrony `makestep`, a VM migration) therefore never
//! bends a round trip or fires a timeout early or late; a reply whose probe lived across a
//! step ([`stepped`]) keeps its round trip but its one-way delays are discarded and counted.
//!
//! # Layout
//! - [`Probe`]: the methods every prober shares, so one driver (`net::driver`) and one
//!   virtual-clock harness (`sim`, tests only) run any of them.
//! - [`sender`]: the STAMP Session-Sender; [`reflector`]: the stateful Session-Reflector;
//!   [`replay`]: an authenticated session's replay window; [`rate_limit`]: the test packets
//!   per second it answers, per source and in all; [`reflect_tlv`]: its RFC 8972 TLVs.
//! - [`rr`]: request/response sessions over streams and QUIC, and the response the TCP and
//!   QUIC responders both build.
//! - [`jitter`]: the RFC 3550 interarrival jitter estimator.
//! - [`throughput`]: throughput tests: checked requests, limits, meters, pacing, results,
//!   and the schedule of tests an agent runs by itself.

// No I/O, no clocks, no unsafe: bytes and times in, values out.
#![forbid(unsafe_code)]

pub mod jitter;
pub mod rate_limit;
pub mod reflect_tlv;
pub mod reflector;
pub mod replay;
pub mod rr;
pub mod sender;
#[cfg(test)]
mod sim;
pub mod throughput;

pub use rate_limit::RateLimits;
pub use reflector::{Arrival, ReflectError, Reflector, ReflectorKeys, ReflectorLimits, Seal};
pub use rr::RrSession;
pub use sender::{Reply, Sender, SenderConfig};

use crate::wire::ErrorEstimate;

/// One instant as the host's two clocks saw it, read back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Moment {
    /// CLOCK_MONOTONIC, nanoseconds: never steps; schedules, timeouts and round trips.
    pub mono_ns: u64,
    /// CLOCK_REALTIME, Unix nanoseconds: what goes on the wire and into one-way delay.
    pub wall_ns: u64,
}

impl Moment {
    /// A moment at which both clocks read `ns` (virtual clocks in tests).
    pub fn at(ns: u64) -> Moment {
        Moment {
            mono_ns: ns,
            wall_ns: ns,
        }
    }
}

/// The most the wall clock may move against the monotonic clock in `elapsed_ns` without a
/// step: 1 ms, plus 500 ppm of the time (the kernel's largest slew).
fn step_tolerance_ns(elapsed_ns: u64) -> u64 {
    1_000_000 + elapsed_ns / 2_000
}

/// Whether the wall clock stepped between `from` and `to`: it moved by more than the
/// monotonic clock plus what slewing allows.
pub fn stepped(from: Moment, to: Moment) -> bool {
    let mono = to.mono_ns.saturating_sub(from.mono_ns);
    let wall = to.wall_ns as i128 - from.wall_ns as i128;
    (wall - mono as i128).unsigned_abs() > u128::from(step_tolerance_ns(mono))
}

/// A round trip: `elapsed_ns` from T1 to T4 on this host's monotonic clock, less the
/// reflector's dwell from T2 to T3 on its wall clock. `None` when the dwell is as long as the
/// whole round trip or longer: the two sends inside every round trip take time, so a clock
/// moved (the reflector's stepped between its stamps, or this host's between T4's kernel
/// stamp and its reading), and any figure, 0 among them, would be made up.
pub fn less_dwell(elapsed_ns: u64, t2: u64, t3: u64) -> Option<u64> {
    let dwell = t3.saturating_sub(t2);
    (dwell < elapsed_ns).then(|| elapsed_ns - dwell)
}

/// The smaller of two optional deadlines.
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a prober saw happen; drained with [`Probe::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    Sent {
        seq: u32,
    },
    /// A STAMP reply with its round trip and one-way figures.
    Reply(Reply),
    Lost {
        seq: u32,
    },
    /// A request still out when this agent tore its connection down after another request
    /// stalled: its fate is unknown, counted apart from loss.
    Abandoned {
        seq: u32,
    },
    /// Direction of a run of losses (probes `first..=last`, wire sequences), split once the
    /// next probe was answered; `unattributed` when the reflector's counter cannot tell.
    LossDirection {
        first: u32,
        last: u32,
        forward: u64,
        reverse: u64,
        unattributed: u64,
    },
    Duplicate {
        seq: u32,
    },
    Late {
        seq: u32,
    },
    /// Not a reply of this protocol.
    Malformed,
    /// A well-formed reply to no probe of ours (unknown sequence or timestamp mismatch).
    Unmatched,
    /// A reply whose HMAC the peer's keys do not give (STAMP authenticated mode).
    Unauthenticated,
    /// Probes the schedule called for that a stall longer than [`sender::CATCH_UP_NS`] (or one
    /// interval, if longer) skipped.
    Skipped {
        count: u64,
    },
    /// A request/response round trip on a stream (dwell removed), or a connect time.
    Rtt {
        seq: u32,
        rtt_ns: u64,
    },
    /// A response whose responder claims a dwell as long as the round trip or longer
    /// ([`less_dwell`]): answered, with no round trip to record.
    ClockMoved {
        seq: u32,
    },
}

/// The sans-IO methods every prober shares: a transport hands it bytes with their arrival
/// time, and asks it when it next has work and what to send.
pub trait Probe {
    /// The next monotonic time at which `handle_timeout` or `poll_transmit` has work.
    fn poll_timeout(&self) -> Option<u64>;

    /// Expires probes whose own timeout passed at `now_mono`. True when the transport should
    /// be re-opened (a request on a stream stalled for the whole timeout).
    fn handle_timeout(&mut self, now_mono: u64) -> bool;

    /// Writes the next probe into `buf` (cleared first) if one is due at `now`; its send
    /// time is `now`, so read the clocks right before and send right after.
    fn poll_transmit(&mut self, now: Moment, estimate: ErrorEstimate, buf: &mut Vec<u8>) -> bool;

    /// One whole reply (a datagram, or one frame of a stream) that arrived at `at`, with the
    /// IP traffic class octet it arrived with (DSCP and ECN) where the socket tells. False
    /// when it shows the transport carries something else: close and re-open it.
    fn handle_input(&mut self, at: Moment, tos: Option<u8>, bytes: &[u8]) -> bool;

    /// The transport broke: nothing outstanding will be answered. `stalled`: this agent
    /// tore it down because a request stalled for the whole timeout (the others still out
    /// are then abandoned, their fate unknown); otherwise it broke (lost).
    fn handle_disconnect(&mut self, stalled: bool);

    /// Stops sending; outstanding probes still end answered or lost.
    fn stop(&mut self);

    /// Whether a probe still waits for its reply or its timeout.
    fn has_pending(&self) -> bool;

    fn poll_event(&mut self) -> Option<Event>;
}

#[cfg(test)]
mod tests;

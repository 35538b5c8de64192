//! A virtual-clock pair for tests (quinn's `Pair` habit): any [`Probe`] against its far end
//! (a STAMP [`Reflector`], or a request/response [`Responder`]) over an in-memory link with
//! per-direction delay, loss, duplication and extra delay (to reorder) chosen per probe, and
//! an optional step of either host's wall clock, so tests know exactly what every figure
//! must be.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;

use super::reflector::{Arrival, Reflector, ReflectorKeys, ReflectorLimits, Seal};
use super::{Event, Moment, Probe};
use crate::wire::rr::Frame;
use crate::wire::{ErrorEstimate, Timestamp};

/// The far end of a probe.
pub(crate) trait Far {
    /// Answers `request`, received at `t2` (the far host's wall clock), into `out`; false
    /// when it would not answer.
    fn answer(&mut self, t2: u64, request: &[u8], out: &mut Vec<u8>) -> bool;
    /// Writes the send time T3 into the answer, right before it leaves.
    fn stamp(&self, out: &mut Vec<u8>, t3: u64);
    /// The far process restarts: whatever state it kept is gone.
    fn restart(&mut self) {}
}

/// A STAMP session-reflector as the far end, and how its last answer is sealed.
pub(crate) struct Stamp(Reflector, Seal, ReflectorKeys);

impl Default for Stamp {
    fn default() -> Self {
        Stamp::keyed(ReflectorKeys::default())
    }
}

impl Stamp {
    /// A reflector with these keys (authenticated mode when there are any).
    pub(crate) fn keyed(keys: ReflectorKeys) -> Stamp {
        let mut r = Reflector::new(ReflectorLimits::default());
        r.set_keys(keys.clone());
        Stamp(r, Seal::default(), keys)
    }

    pub(crate) fn counters(&mut self) -> xcbench_snapshot::ResponderCount {
        self.0.take_counters()
    }
}

impl Far for Stamp {
    fn answer(&mut self, t2: u64, request: &[u8], out: &mut Vec<u8>) -> bool {
        let from: SocketAddr = ([127, 0, 0, 1], 5000).into();
        let estimate = ErrorEstimate::from_error_ns(1_000, true);
        let answered = self.0.handle_datagram(
            &Arrival {
                ttl: Some(64),
                ..Arrival::new(Moment::at(t2), from)
            },
            estimate,
            request,
            out,
        );
        answered.map(|seal| self.1 = seal).is_ok()
    }

    fn stamp(&self, out: &mut Vec<u8>, t3: u64) {
        self.1.stamp_transmit(out, Timestamp::from_unix_ns(t3));
    }

    fn restart(&mut self) {
        *self = Stamp::keyed(self.2.clone());
    }
}

/// A far end lent to a run, to read its state after.
impl<F: Far> Far for &mut F {
    fn answer(&mut self, t2: u64, request: &[u8], out: &mut Vec<u8>) -> bool {
        (**self).answer(t2, request, out)
    }

    fn stamp(&self, out: &mut Vec<u8>, t3: u64) {
        (**self).stamp(out, t3)
    }

    fn restart(&mut self) {
        (**self).restart()
    }
}

/// The TCP/QUIC request/response responder as the far end.
pub(crate) struct Responder;

impl Far for Responder {
    fn answer(&mut self, t2: u64, request: &[u8], out: &mut Vec<u8>) -> bool {
        super::rr::respond(request, t2, out).is_ok()
    }

    fn stamp(&self, out: &mut Vec<u8>, t3: u64) {
        Frame::stamp_send(out, t3);
    }
}

/// Link impairments, keyed by the probe's sequence number (its n-th transmission).
#[derive(Debug, Default, Clone)]
pub(crate) struct Pair {
    pub(crate) forward_delay_ns: u64,
    pub(crate) reverse_delay_ns: u64,
    /// Far-end time between receiving a probe and sending its answer.
    pub(crate) dwell_ns: u64,
    pub(crate) drop_forward: HashSet<u32>,
    pub(crate) drop_reverse: HashSet<u32>,
    pub(crate) duplicate_forward: HashSet<u32>,
    pub(crate) duplicate_reverse: HashSet<u32>,
    pub(crate) extra_reverse_delay_ns: HashMap<u32, u64>,
    /// At this monotonic time the probing host's wall clock jumps by this much.
    pub(crate) sender_wall_step: Option<(u64, i64)>,
    /// At this (virtual) time the far host's wall clock jumps by this much.
    pub(crate) far_wall_step: Option<(u64, i64)>,
    /// The far end restarts before the first probe of at least this sequence reaches it.
    pub(crate) far_restart_at: Option<u32>,
}

enum Delivery {
    ToFar(u32, Vec<u8>),
    ToProbe(Vec<u8>),
}

/// Packets in flight, delivered in time order (ties in the order sent).
#[derive(Default)]
struct Queue {
    order: BinaryHeap<Reverse<(u64, u64)>>,
    packets: HashMap<u64, Delivery>,
    next_id: u64,
}

impl Queue {
    fn push(&mut self, at: u64, d: Delivery) {
        self.next_id += 1;
        self.packets.insert(self.next_id, d);
        self.order.push(Reverse((at, self.next_id)));
    }

    fn next_at(&self) -> Option<u64> {
        self.order.peek().map(|Reverse((t, _))| *t)
    }

    fn pop(&mut self) -> Delivery {
        let Reverse((_, id)) = self.order.pop().expect("a delivery is due");
        self.packets.remove(&id).expect("queued")
    }
}

impl Pair {
    /// Runs `probes` probes and every delivery and timeout after them; returns every event
    /// the probe produced.
    pub(crate) fn run(&self, probe: impl Probe, far: impl Far, probes: u32) -> Vec<Event> {
        self.run_timed(probe, far, probes)
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    /// As [`Pair::run`], each event with the monotonic time it was produced at.
    pub(crate) fn run_timed(
        &self,
        mut probe: impl Probe,
        mut far: impl Far,
        probes: u32,
    ) -> Vec<(u64, Event)> {
        let estimate = ErrorEstimate::from_error_ns(1_000, true);
        let mut queue = Queue::default();
        let (mut events, mut sent) = (Vec::new(), 0u32);
        let (mut buf, mut answer) = (Vec::new(), Vec::new());
        let mut far_restart = self.far_restart_at;
        loop {
            let next_delivery = queue.next_at();
            let Some(now) = super::earliest(probe.poll_timeout(), next_delivery) else {
                break;
            };
            if next_delivery == Some(now) {
                match queue.pop() {
                    Delivery::ToFar(seq, bytes) => {
                        if far_restart.is_some_and(|at| seq >= at) {
                            far.restart();
                            far_restart = None;
                        }
                        if !far.answer(self.far_wall(now), &bytes, &mut answer) {
                            continue;
                        }
                        let t3 = now + self.dwell_ns;
                        far.stamp(&mut answer, self.far_wall(t3));
                        if self.drop_reverse.contains(&seq) {
                            continue;
                        }
                        let extra = self.extra_reverse_delay_ns.get(&seq).copied();
                        let at = t3 + self.reverse_delay_ns + extra.unwrap_or(0);
                        let copies = 1 + u64::from(self.duplicate_reverse.contains(&seq));
                        for c in 0..copies {
                            queue.push(at + c, Delivery::ToProbe(answer.clone()));
                        }
                    }
                    Delivery::ToProbe(bytes) => {
                        probe.handle_input(self.moment(now), None, &bytes);
                    }
                }
            } else {
                probe.handle_timeout(now);
                if sent < probes && probe.poll_transmit(self.moment(now), estimate, &mut buf) {
                    let seq = sent;
                    sent += 1;
                    if sent == probes {
                        probe.stop();
                    }
                    if !self.drop_forward.contains(&seq) {
                        let at = now + self.forward_delay_ns;
                        let copies = 1 + u64::from(self.duplicate_forward.contains(&seq));
                        for c in 0..copies {
                            queue.push(at + c, Delivery::ToFar(seq, buf.clone()));
                        }
                    }
                }
            }
            while let Some(e) = probe.poll_event() {
                events.push((now, e));
            }
        }
        events
    }

    /// The probing host's clocks at virtual time `now`.
    fn moment(&self, now: u64) -> Moment {
        Moment {
            mono_ns: now,
            wall_ns: wall(self.sender_wall_step, now),
        }
    }

    /// The far host's wall clock at virtual time `now`.
    fn far_wall(&self, now: u64) -> u64 {
        wall(self.far_wall_step, now)
    }
}

/// A wall clock that reads virtual time, stepped by `by` from `at` on.
fn wall(step: Option<(u64, i64)>, now: u64) -> u64 {
    match step {
        Some((at, by)) if now >= at => now.saturating_add_signed(by),
        _ => now,
    }
}

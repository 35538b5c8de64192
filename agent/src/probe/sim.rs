//! An in-memory link with a virtual clock that drives a [`Sender`] against a [`Reflector`]:
//! per-direction delay, loss, duplication and extra delay (to reorder) chosen per probe, so
//! tests know exactly what every figure must be.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;

use super::reflector::{Reflector, ReflectorLimits};
use super::sender::{Event, Sender, SenderConfig};
use crate::wire::{ErrorEstimate, ReflectedPacket, Timestamp};

/// Impairments, keyed by the sender's probe sequence number.
#[derive(Debug, Default, Clone)]
pub struct Link {
    pub forward_delay_ns: u64,
    pub reverse_delay_ns: u64,
    /// Reflector time between receiving a probe and sending its reply.
    pub dwell_ns: u64,
    pub drop_forward: HashSet<u32>,
    pub drop_reverse: HashSet<u32>,
    pub duplicate_reverse: HashSet<u32>,
    pub extra_reverse_delay_ns: HashMap<u32, u64>,
}

enum Delivery {
    ToReflector(Vec<u8>),
    ToSender(Vec<u8>),
}

impl Link {
    /// Runs `probes` probes from t = 1 s and every pending delivery and timeout after them;
    /// returns every event the sender produced.
    pub fn run(&self, config: SenderConfig, probes: u32) -> Vec<Event> {
        let start = 1_000_000_000;
        let mut sender = Sender::new(config, start);
        let mut reflector = Reflector::new(ReflectorLimits::default());
        let estimate = ErrorEstimate::from_error_ns(1_000, true);
        let from: SocketAddr = ([127, 0, 0, 1], 5000).into();
        let mut queue: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
        let mut packets: HashMap<u64, Delivery> = HashMap::new();
        let mut id = 0u64;
        let mut events = Vec::new();
        let mut sent = 0;
        let mut buf = Vec::new();
        let mut reply = Vec::new();
        loop {
            let next_delivery = queue.peek().map(|Reverse((t, _))| *t);
            let now = match (sender.poll_timeout(), next_delivery) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next_delivery == Some(now) {
                let Reverse((_, key)) = queue.pop().expect("peeked");
                match packets.remove(&key).expect("queued") {
                    Delivery::ToReflector(bytes) => {
                        let seq = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
                        reflector
                            .handle_datagram(now, from, Some(64), estimate, &bytes, &mut reply)
                            .expect("well-formed");
                        let t3 = now + self.dwell_ns;
                        ReflectedPacket::stamp_transmit(&mut reply, Timestamp::from_unix_ns(t3));
                        if self.drop_reverse.contains(&seq) {
                            continue;
                        }
                        let at = t3
                            + self.reverse_delay_ns
                            + self.extra_reverse_delay_ns.get(&seq).copied().unwrap_or(0);
                        let copies = if self.duplicate_reverse.contains(&seq) {
                            2
                        } else {
                            1
                        };
                        for c in 0..copies {
                            id += 1;
                            packets.insert(id, Delivery::ToSender(reply.clone()));
                            queue.push(Reverse((at + c, id)));
                        }
                    }
                    Delivery::ToSender(bytes) => sender.handle_datagram(now, &bytes),
                }
            } else {
                sender.handle_timeout(now);
                if sent < probes && sender.poll_transmit(now, estimate, &mut buf) {
                    sent += 1;
                    if sent == probes {
                        sender.stop();
                    }
                    let seq = u32::from_be_bytes(buf[0..4].try_into().unwrap());
                    if !self.drop_forward.contains(&seq) {
                        id += 1;
                        packets.insert(id, Delivery::ToReflector(buf.clone()));
                        queue.push(Reverse((now + self.forward_delay_ns, id)));
                    }
                }
            }
            while let Some(e) = sender.poll_event() {
                events.push(e);
            }
        }
        events
    }
}

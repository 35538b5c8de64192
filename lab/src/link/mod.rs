//! The lab's link model, sans-IO: one [`Direction`] per way across the emulated interconnect
//! takes an IPv4 packet and the time it arrived and says what to do with it: drop it (and
//! why), deliver it (when), duplicate it, or answer with ICMP "fragmentation needed". It also
//! keeps the ground truth: exact counters per IP protocol of everything it did.
//!
//! Order of effects for one packet: MTU (oversized with DF: ICMP back; without DF: IPv4
//! fragments, each handled on its own), then Gilbert-Elliott burst loss, random loss, the rate
//! limiter's FIFO queue (serialization at `rate`, drop when the wait would exceed
//! `queue_limit`), then propagation `delay` plus jitter, an optional extra reorder delay, and
//! duplication. Jitter distributions: uniform in [-jitter, +jitter], or normal with standard
//! deviation `jitter` (clipped so delay never goes below zero). With `jitter_reorders = false`
//! a packet is never delivered before the one that arrived ahead of it (FIFO).//!
//! # Layout
//! - this file: [`Direction`] and its effects, the ground-truth counters.
//! - [`ecmp`]: which of several equal-cost paths (each a pair of [`Direction`]s) a packet's
//!   5-tuple hashes onto.
//! - `tests`: each effect held to what it promises, on crafted IPv4 packets.

use serde::{Deserialize, Serialize};
use xcbench_snapshot::LatencyHistogram;

pub mod ecmp;

/// Which random jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JitterDistribution {
    Uniform,
    Normal,
}

/// Gilbert-Elliott two-state loss: good -> bad with probability `p` per packet, bad -> good
/// with `r`; a packet is lost with `loss_good` in the good state and `loss_bad` in the bad.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GilbertElliott {
    pub p: f64,
    pub r: f64,
    pub loss_good: f64,
    pub loss_bad: f64,
}

/// Impairments of one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impairments {
    pub delay_ns: u64,
    pub jitter_ns: u64,
    pub jitter_distribution: JitterDistribution,
    pub jitter_reorders: bool,
    /// Independent random loss probability.
    pub loss: f64,
    pub burst: Option<GilbertElliott>,
    pub duplicate: f64,
    /// Probability that a packet is held back `reorder_gap_ns` longer, so later ones pass it.
    pub reorder: f64,
    pub reorder_gap_ns: u64,
    /// Bottleneck rate in bit/s; 0 = unlimited.
    pub rate_bps: u64,
    /// Longest wait in the rate limiter's queue before a packet is dropped.
    pub queue_limit_ns: u64,
}

impl Default for Impairments {
    fn default() -> Self {
        Impairments {
            delay_ns: 0,
            jitter_ns: 0,
            jitter_distribution: JitterDistribution::Uniform,
            jitter_reorders: false,
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_gap_ns: 0,
            rate_bps: 0,
            queue_limit_ns: 50_000_000,
        }
    }
}

/// IP protocols the ground truth is split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Udp,
    Tcp,
    Icmp,
    Other,
}

impl Proto {
    fn from_ip(p: u8) -> Proto {
        match p {
            17 => Proto::Udp,
            6 => Proto::Tcp,
            1 => Proto::Icmp,
            _ => Proto::Other,
        }
    }
}

/// Ground truth for one protocol in one direction.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Truth {
    /// Packets that entered the emulator.
    pub packets: u64,
    pub bytes: u64,
    /// Packets handed to the far side (duplicates included).
    pub delivered: u64,
    pub dropped_random: u64,
    pub dropped_burst: u64,
    /// Dropped because the rate limiter's queue was full.
    pub dropped_queue: u64,
    /// Oversized with DF set: dropped, ICMP fragmentation-needed sent back.
    pub dropped_mtu: u64,
    /// Oversized without DF: split into this many fragments.
    pub fragments_made: u64,
    pub duplicated: u64,
    /// Held back by the reorder impairment.
    pub reorder_held: u64,
    /// Delivered after a packet that arrived later (counted at delivery).
    pub reordered: u64,
    /// Delay the model applied (queueing + propagation + jitter + reorder gap), per delivery.
    #[serde(skip)]
    pub planned: LatencyHistogram,
    /// Time actually spent inside the emulator: arrival read to release (right before the
    /// write, which itself runs the far side's receive path).
    #[serde(skip)]
    pub actual: LatencyHistogram,
    /// How late the release was against the plan (the emulator's own timing error).
    #[serde(skip)]
    pub late: LatencyHistogram,
    /// Largest arrival index delivered so far.
    #[serde(skip)]
    max_delivered: Option<u64>,
}

/// What to do with a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write `packet` to the far side at `at_ns`.
    Deliver {
        at_ns: u64,
        packet: Vec<u8>,
        /// Arrival order within this direction (for reorder accounting).
        index: u64,
        proto: Proto,
        /// The extra copy made by duplication (not counted again as reordered).
        copy: bool,
    },
    /// Write `packet` back to the near side at once (ICMP fragmentation needed).
    Reply { packet: Vec<u8> },
}

/// Why a packet was not forwarded at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotIpv4,
    Malformed,
}

/// One direction of the emulated link.
pub struct Direction {
    config: Impairments,
    mtu: usize,
    /// Address ICMP errors come from (the emulated interconnect router).
    router: [u8; 4],
    rng: Rng,
    bad_state: bool,
    link_free_ns: u64,
    last_fifo_ns: u64,
    next_index: u64,
    truth: std::collections::BTreeMap<Proto, Truth>,
}

impl Direction {
    pub fn new(config: Impairments, mtu: usize, router: [u8; 4], seed: u64) -> Direction {
        Direction {
            config,
            mtu,
            router,
            rng: Rng::new(seed),
            bad_state: false,
            link_free_ns: 0,
            last_fifo_ns: 0,
            next_index: 0,
            truth: Default::default(),
        }
    }

    pub fn config(&self) -> &Impairments {
        &self.config
    }

    /// Handles a packet read at `now_ns` (monotonic clock).
    pub fn handle_packet(
        &mut self,
        now_ns: u64,
        packet: &[u8],
        out: &mut Vec<Action>,
    ) -> Result<(), Refused> {
        let header = Ipv4::parse(packet)?;
        let proto = Proto::from_ip(header.protocol);
        let t = self.truth.entry(proto).or_default();
        t.packets += 1;
        t.bytes += packet.len() as u64;
        if packet.len() > self.mtu {
            if header.dont_fragment {
                t.dropped_mtu += 1;
                out.push(Action::Reply {
                    packet: frag_needed(self.router, packet, self.mtu),
                });
                return Ok(());
            }
            let fragments = fragment(packet, &header, self.mtu);
            t.fragments_made += fragments.len() as u64;
            for f in fragments {
                self.forward(now_ns, f, proto, out);
            }
            return Ok(());
        }
        self.forward(now_ns, packet.to_vec(), proto, out);
        Ok(())
    }

    fn forward(&mut self, now_ns: u64, packet: Vec<u8>, proto: Proto, out: &mut Vec<Action>) {
        let c = &self.config;
        let t = self.truth.get_mut(&proto).expect("counted on entry");
        if let Some(ge) = c.burst {
            self.bad_state = if self.bad_state {
                self.rng.uniform() >= ge.r
            } else {
                self.rng.uniform() < ge.p
            };
            let p = if self.bad_state {
                ge.loss_bad
            } else {
                ge.loss_good
            };
            if self.rng.uniform() < p {
                t.dropped_burst += 1;
                return;
            }
        }
        if c.loss > 0.0 && self.rng.uniform() < c.loss {
            t.dropped_random += 1;
            return;
        }
        let mut sent_ns = now_ns;
        if c.rate_bps > 0 {
            let start = self.link_free_ns.max(now_ns);
            if start - now_ns > c.queue_limit_ns {
                t.dropped_queue += 1;
                return;
            }
            let serialize = (packet.len() as u64 * 8 * 1_000_000_000).div_ceil(c.rate_bps);
            self.link_free_ns = start + serialize;
            sent_ns = self.link_free_ns;
        }
        let jitter = match (c.jitter_ns, c.jitter_distribution) {
            (0, _) => 0.0,
            (j, JitterDistribution::Uniform) => (self.rng.uniform() * 2.0 - 1.0) * j as f64,
            (j, JitterDistribution::Normal) => self.rng.normal() * j as f64,
        };
        let mut at = (sent_ns as f64 + c.delay_ns as f64 + jitter).max(sent_ns as f64) as u64;
        if !c.jitter_reorders {
            at = at.max(self.last_fifo_ns);
        }
        let held = c.reorder > 0.0 && self.rng.uniform() < c.reorder;
        if held {
            t.reorder_held += 1;
            at += c.reorder_gap_ns;
        } else {
            self.last_fifo_ns = at;
        }
        let index = self.next_index;
        self.next_index += 1;
        let copies = if c.duplicate > 0.0 && self.rng.uniform() < c.duplicate {
            t.duplicated += 1;
            2
        } else {
            1
        };
        if copies == 2 {
            out.push(Action::Deliver {
                at_ns: at,
                packet: packet.clone(),
                index,
                proto,
                copy: true,
            });
        }
        out.push(Action::Deliver {
            at_ns: at,
            packet,
            index,
            proto,
            copy: false,
        });
    }

    /// Records a delivery: `arrived_ns` when the packet was read, `planned_ns` when the model
    /// said to deliver it, `released_ns` when it was handed to the write.
    pub fn handle_delivered(
        &mut self,
        index: u64,
        proto: Proto,
        copy: bool,
        arrived_ns: u64,
        planned_ns: u64,
        released_ns: u64,
    ) {
        let t = self.truth.entry(proto).or_default();
        t.delivered += 1;
        t.planned.record_ns(planned_ns.saturating_sub(arrived_ns));
        t.actual.record_ns(released_ns.saturating_sub(arrived_ns));
        t.late.record_ns(released_ns.saturating_sub(planned_ns));
        match t.max_delivered {
            _ if copy => {}
            Some(m) if index < m => t.reordered += 1,
            Some(m) if index == m => {}
            _ => t.max_delivered = Some(index),
        }
    }

    /// The ground truth so far, per protocol.
    pub fn truth(&self) -> &std::collections::BTreeMap<Proto, Truth> {
        &self.truth
    }
}

/// The parts of an IPv4 header the model needs.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4 {
    pub header_len: usize,
    pub total_len: usize,
    pub protocol: u8,
    pub dont_fragment: bool,
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Ipv4 {
    pub fn parse(p: &[u8]) -> Result<Ipv4, Refused> {
        if p.is_empty() || p[0] >> 4 != 4 {
            return Err(Refused::NotIpv4);
        }
        if p.len() < 20 {
            return Err(Refused::Malformed);
        }
        let header_len = usize::from(p[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([p[2], p[3]]));
        if header_len < 20 || total_len < header_len || total_len != p.len() {
            return Err(Refused::Malformed);
        }
        Ok(Ipv4 {
            header_len,
            total_len,
            protocol: p[9],
            dont_fragment: p[6] & 0x40 != 0,
            src: [p[12], p[13], p[14], p[15]],
            dst: [p[16], p[17], p[18], p[19]],
        })
    }
}

/// RFC 1071 Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn set_ipv4_checksum(p: &mut [u8], header_len: usize) {
    p[10] = 0;
    p[11] = 0;
    let c = checksum(&p[..header_len]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// ICMP type 3 code 4 (RFC 1191) from `router` to the packet's source, quoting its header
/// and first 8 payload bytes, announcing `mtu`.
pub fn frag_needed(router: [u8; 4], original: &[u8], mtu: usize) -> Vec<u8> {
    let quoted = &original[..original.len().min(usize::from(original[0] & 0x0f) * 4 + 8)];
    let total = 20 + 8 + quoted.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&router);
    p[16..20].copy_from_slice(&original[12..16]);
    set_ipv4_checksum(&mut p, 20);
    p[20] = 3;
    p[21] = 4;
    p[26..28].copy_from_slice(&(mtu as u16).to_be_bytes());
    p[28..].copy_from_slice(quoted);
    let c = checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

/// Splits an IPv4 packet into fragments of at most `mtu` bytes (offsets in 8-byte units).
pub fn fragment(p: &[u8], h: &Ipv4, mtu: usize) -> Vec<Vec<u8>> {
    let hl = h.header_len;
    let payload = &p[hl..h.total_len];
    let step = ((mtu - hl) / 8) * 8;
    let flags_offset = u16::from_be_bytes([p[6], p[7]]);
    let base_offset = usize::from(flags_offset & 0x1fff) * 8;
    let more_after = flags_offset & 0x2000 != 0;
    let mut out = Vec::new();
    let mut start = 0;
    while start < payload.len() {
        let end = (start + step).min(payload.len());
        let mut f = Vec::with_capacity(hl + end - start);
        f.extend_from_slice(&p[..hl]);
        f.extend_from_slice(&payload[start..end]);
        let total = f.len() as u16;
        f[2..4].copy_from_slice(&total.to_be_bytes());
        let more = end < payload.len() || more_after;
        let off = ((base_offset + start) / 8) as u16 | if more { 0x2000 } else { 0 };
        f[6..8].copy_from_slice(&off.to_be_bytes());
        set_ipv4_checksum(&mut f, hl);
        out.push(f);
        start = end;
    }
    out
}

/// xorshift64* with Box-Muller normals: small, seedable, repeatable.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests;

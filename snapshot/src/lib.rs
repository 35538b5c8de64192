//! The agent-to-collector snapshot format, the one thing both sides must agree on.
//!
//! A [`Snapshot`] is what an agent sends every report interval: its identity, a report
//! sequence number, and per series (peer, protocol, probe kind) the *deltas* since the previous
//! snapshot: HdrHistograms in their V2 serialized form (base64 in JSON), exact sums and
//! counters. The collector adds deltas, so merging is lossless.
//!
//! # Layout
//! - [`label`]: bounded label values (cloud, protocol, probe kind, metric, timestamp source)
//!   and validated identifiers.
//! - [`config_text`]: what both configuration files share (reading, errors, durations).
//! - [`metrics`]: the metric catalog: every family's name, type, unit and help.
//! - [`history`]: the history API's contract: [`history::Selection`] with its URL codec,
//!   and [`history::HistoryAnswer`].
//! - [`histogram`]: the one histogram layout (1 us to 60 s in nanoseconds, 3 significant
//!   digits) and its V2 codec, which checks the header before allocating.
//! - [`varint`]: LEB128 varints and zigzag, for every binary record and protobuf message.
//! - `responders`: what the agent's responders and session-senders counted.
//! - `check`: [`SnapshotError`] and the checks a snapshot passes before it is taken.
//! - this file: the snapshot types and `encode`/`decode`.
//! - `tests`: the format held: round trips, the wire text, what decoding refuses.

// No I/O, no clocks, no unsafe: bytes and times in, values out.
#![forbid(unsafe_code)]

mod check;
pub mod config_text;
pub mod histogram;
pub mod history;
pub mod label;
pub mod metrics;
mod responders;
pub mod varint;

use serde::{Deserialize, Serialize};

pub use check::SnapshotError;
pub use histogram::{HdrCodecError, LatencyHistogram};
pub use label::{
    AgentId, Cloud, Expected, Flow, Load, Metric, ProbeKind, Protocol, ThroughputOutcome,
    TimestampSource,
};
pub use responders::{ResponderCount, ResponderCounters, SenderCounters};

/// Version of the JSON snapshot format; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// Decoded histograms of a snapshot, `[series][histogram]` aligned with the snapshot, each as
/// its non-empty buckets (highest equivalent value, count): kilobytes, where a dense decoded
/// HdrHistogram of this layout is 147 KB.
pub type Histograms = Vec<Vec<Vec<(u64, u64)>>>;

/// Largest encoded snapshot either side accepts (bytes).
pub const MAX_SNAPSHOT_BYTES: usize = 16 * 1024 * 1024;

/// Who an agent (or a configured peer) is: the label values the collector attaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    pub id: AgentId,
    pub cloud: Cloud,
    pub region: String,
    #[serde(default)]
    pub zone: String,
}

/// Probe outcome counters of one series for one interval (deltas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Probes transmitted.
    pub sent: u64,
    /// Replies accepted within the loss timeout (first copy only).
    pub received: u64,
    /// Probes whose own timeout expired without a reply.
    pub lost: u64,
    /// Lost probes attributed to the forward direction (never reached the reflector), of
    /// those lost in this interval. A run of losses is split by direction only when the next
    /// probe is answered: a split learnt later comes in [`SeriesSnapshot::earlier_directions`]
    /// of a later snapshot, dated to this interval; `lost - lost_forward - lost_reverse` is
    /// the loss whose direction is unknown (not yet, or never: a reflector restarted).
    pub lost_forward: u64,
    /// Lost probes attributed to the reverse direction (reflected, reply not back in time),
    /// of those lost in this interval.
    pub lost_reverse: u64,
    /// Extra copies of a reply already accepted.
    pub duplicated: u64,
    /// Replies that arrived after a reply to a later probe.
    pub reordered: u64,
    /// Replies that arrived after their probe was declared lost.
    pub late: u64,
    /// TCP segments retransmitted on probe connections (SYN retransmissions for `connect`).
    #[serde(default)]
    pub retransmits: u64,
    /// QUIC packets the probe connections declared lost (quinn path stats).
    #[serde(default)]
    pub quic_lost_packets: u64,
    /// QUIC congestion events on the probe connections.
    #[serde(default)]
    pub quic_congestion_events: u64,
    /// QUIC MTU black holes detected on the probe connections.
    #[serde(default)]
    pub quic_black_holes: u64,
    /// Resumed QUIC connections whose 0-RTT data the peer accepted.
    #[serde(default)]
    pub zero_rtt_accepted: u64,
    /// Resumed QUIC connections whose 0-RTT data the peer rejected (sent again after the
    /// handshake).
    #[serde(default)]
    pub zero_rtt_rejected: u64,
    /// Resume probes that had no session ticket to resume with (a full handshake instead).
    #[serde(default)]
    pub zero_rtt_unavailable: u64,
    /// Replies whose delays were discarded because a clock stepped: the prober's wall clock
    /// while the probe was out (one-way delays discarded; the round trip, timed on the
    /// monotonic clock, is kept), or the far end's between its receive and send stamps (a
    /// dwell at least as long as the round trip: nothing recorded).
    #[serde(default)]
    pub clock_steps: u64,
    /// Probes the schedule called for that the prober skipped after a stall longer than 10 ms
    /// or one interval, whichever is longer (the probe rate fell below the configured one).
    #[serde(default)]
    pub skipped: u64,
    /// TCP request/response probes still out when the agent tore their connection down after
    /// another request stalled: neither answered nor lost for sure.
    #[serde(default)]
    pub abandoned: u64,
    /// STAMP replies whose Class of Service TLV says the test packet reached the reflector
    /// with another DSCP than it was sent with (re-marked on the way out).
    #[serde(default)]
    pub remarked_forward: u64,
    /// STAMP replies that arrived with another DSCP than the reflector sent them with
    /// (re-marked on the way back).
    #[serde(default)]
    pub remarked_reverse: u64,
}

impl Counters {
    /// Adds another interval's counters to these.
    pub fn add(&mut self, other: &Counters) {
        self.sent += other.sent;
        self.received += other.received;
        self.lost += other.lost;
        self.lost_forward += other.lost_forward;
        self.lost_reverse += other.lost_reverse;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.late += other.late;
        self.retransmits += other.retransmits;
        self.quic_lost_packets += other.quic_lost_packets;
        self.quic_congestion_events += other.quic_congestion_events;
        self.quic_black_holes += other.quic_black_holes;
        self.zero_rtt_accepted += other.zero_rtt_accepted;
        self.zero_rtt_rejected += other.zero_rtt_rejected;
        self.zero_rtt_unavailable += other.zero_rtt_unavailable;
        self.clock_steps += other.clock_steps;
        self.skipped += other.skipped;
        self.abandoned += other.abandoned;
        self.remarked_forward += other.remarked_forward;
        self.remarked_reverse += other.remarked_reverse;
    }
}

/// One metric's histogram delta: HdrHistogram V2 (base64) plus its exact count and sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramDelta {
    pub metric: Metric,
    /// Number of samples (equals the HdrHistogram's total count).
    pub count: u64,
    /// Exact sum of the samples in nanoseconds (HdrHistogram sums are bucket approximations).
    pub sum_ns: u64,
    /// HdrHistogram V2 serialized form, base64 (standard alphabet, padded).
    pub hdr: String,
}

/// Everything measured towards one peer over one protocol and probe kind in one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSnapshot {
    pub peer: Identity,
    pub protocol: Protocol,
    pub kind: ProbeKind,
    /// Outcomes recorded while a throughput test between the pair ran go to a series of
    /// their own.
    #[serde(default)]
    pub load: Load,
    /// Where receive timestamps came from during this interval.
    pub timestamping: TimestampSource,
    pub counters: Counters,
    #[serde(default)]
    pub histograms: Vec<HistogramDelta>,
    /// RFC 3550 interarrival jitter estimate at the end of the interval, per direction.
    #[serde(default)]
    pub jitter_forward_ns: Option<u64>,
    #[serde(default)]
    pub jitter_reverse_ns: Option<u64>,
    /// The DSCP the interval's last reply with a Class of Service TLV says arrived: the test
    /// packet's at the reflector (forward), the reply's here (reverse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp_forward: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp_reverse: Option<u8>,
    /// The ECN the same reply says arrived each way (the sender sends Not-ECT, 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecn_forward: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecn_reverse: Option<u8>,
    /// Combined (sender + reflector) clock error estimate, per RFC 8762: the largest of the
    /// interval's replies (`None` when none came).
    #[serde(default)]
    pub clock_error_ns: Option<u64>,
    /// Whether both ends reported synchronized clocks in every reply of the interval.
    #[serde(default)]
    pub clock_synchronized: Option<bool>,
    /// The kernel's view of the last TCP probe connection (TCP_INFO).
    #[serde(default)]
    pub tcp: Option<TcpInfo>,
    /// quinn's path statistics of the last QUIC probe connection.
    #[serde(default)]
    pub quic: Option<QuicPath>,
    /// Loss directions learnt in this interval for probes lost in earlier ones, each dated
    /// by the end of the interval whose snapshot counted the loss (at most
    /// [`MAX_EARLIER_DIRECTIONS`], each before this snapshot's interval).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_directions: Vec<EarlierDirections>,
    /// A STAMP series probed over several flows (source ports, so ECMP may hash each onto
    /// another path): each flow's share of the interval, in flow order. Empty for one flow.
    /// The counters and histograms above are all flows together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<FlowSnapshot>,
}

/// Most flows a series is probed over ([`SeriesSnapshot::flows`]).
pub const MAX_FLOWS: usize = 16;

/// One flow of a series over one interval (deltas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSnapshot {
    /// 0 .. [`MAX_FLOWS`].
    pub flow: u8,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    /// The flow's round-trip times (metric `rtt`), when it had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<HistogramDelta>,
}

/// Most [`EarlierDirections`] one series of a snapshot may carry.
pub const MAX_EARLIER_DIRECTIONS: usize = 1024;

/// Directions of probes lost in an earlier interval, learnt since: they belong with that
/// interval's loss (the collector's history adds them to its slot; the counters it exports
/// add them on arrival).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierDirections {
    /// `interval_end_unix_ns` of the snapshot that counted the loss.
    pub interval_end_unix_ns: u64,
    pub lost_forward: u64,
    pub lost_reverse: u64,
}

impl SeriesSnapshot {
    /// This interval's counters with the directions learnt for earlier intervals added:
    /// what the series' running totals grow by.
    pub fn counters_with_earlier(&self) -> Counters {
        let mut c = self.counters;
        for e in &self.earlier_directions {
            c.lost_forward += e.lost_forward;
            c.lost_reverse += e.lost_reverse;
        }
        c
    }
}

/// quinn's view of a QUIC probe connection's path (gauges; the counters are in [`Counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuicPath {
    /// quinn's smoothed RTT estimate.
    pub rtt_ns: u64,
    pub cwnd_bytes: u64,
    /// Largest UDP payload the path currently carries (PLPMTUD).
    pub mtu_bytes: u16,
}

/// A TCP_INFO snapshot of a probe connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpInfo {
    pub srtt_ns: u64,
    pub rttvar_ns: u64,
    pub min_rtt_ns: u64,
    /// Path MTU the connection uses.
    pub pmtu_bytes: u32,
    pub snd_cwnd_segments: u32,
    /// The kernel's delivery-rate estimate, bytes per second.
    pub delivery_rate_bytes_per_second: u64,
}

/// One report from one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub agent: Identity,
    /// Agent start time (Unix ns); together with `seq` it orders reports across restarts.
    pub instance: u64,
    /// Report sequence within the instance: 1, 2, 3, ...; a retry reuses its number.
    pub seq: u64,
    pub interval_start_unix_ns: u64,
    pub interval_end_unix_ns: u64,
    /// The agent's responders (`reflector` on the wire, for the STAMP reflector it began as).
    #[serde(default, rename = "reflector")]
    pub responders: ResponderCounters,
    #[serde(default)]
    pub sender: SenderCounters,
    #[serde(default)]
    pub series: Vec<SeriesSnapshot>,
    /// Scheduled throughput tests that ended in the interval, one record per direction.
    #[serde(default, rename = "bench")]
    pub throughput: Vec<ThroughputResult>,
    /// Every direction the agent's schedule tests, in every report: the collector creates
    /// their series at zero before the first test, so `rate` and `increase` see it.
    #[serde(default, rename = "bench_flows", skip_serializing_if = "Vec::is_empty")]
    pub throughput_flows: Vec<ThroughputFlow>,
    /// Snapshots this instance gave up before this one (its queue was full), over its
    /// life. A collector that sees the sequence jump tells the ones given up (lost) from
    /// the ones that went to another collector of a sharded mesh. Absent from agents older
    /// than sharding: the whole jump is then taken as given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_up: Option<u64>,
}

/// One direction of scheduled throughput tests toward a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputFlow {
    pub peer: Identity,
    pub protocol: Protocol,
    pub flow: Flow,
    /// The schedule's period (a round every this long, jittered by up to 10%): how many
    /// tests a window should hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ns: Option<u64>,
}

/// One direction of a scheduled throughput test, as both ends counted it over the counted
/// (not omitted) intervals. A test that did not run has one record with zeros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputResult {
    pub peer: Identity,
    pub protocol: Protocol,
    pub flow: Flow,
    pub outcome: ThroughputOutcome,
    /// When the test started (Unix ns, this agent's clock).
    pub started_unix_ns: u64,
    #[serde(flatten)]
    pub counts: ThroughputCounts,
    /// The receiver's slowest counted interval (bytes/s).
    pub interval_min_bytes_per_second: u64,
}

/// What the two ends of a test direction counted; the collector sums them over tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputCounts {
    /// Bytes the sender's kernel (or QUIC stack) accepted, and its counted time.
    pub sender_bytes: u64,
    pub sender_ns: u64,
    /// Bytes delivered to the receiving application, and its counted time.
    pub receiver_bytes: u64,
    pub receiver_ns: u64,
    /// TCP segments retransmitted, or QUIC packets declared lost, by the sender.
    pub retransmits: u64,
    /// UDP: datagrams the receiver counted, and those missing from the sequence.
    pub datagrams: u64,
    pub datagrams_lost: u64,
}

impl ThroughputCounts {
    /// Adds another test's counts to these.
    pub fn add(&mut self, other: &ThroughputCounts) {
        self.sender_bytes += other.sender_bytes;
        self.sender_ns += other.sender_ns;
        self.receiver_bytes += other.receiver_bytes;
        self.receiver_ns += other.receiver_ns;
        self.retransmits += other.retransmits;
        self.datagrams += other.datagrams;
        self.datagrams_lost += other.datagrams_lost;
    }
}

impl Snapshot {
    /// Serializes to JSON bytes.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_writer(buf, self).expect("snapshot serializes");
    }

    /// Parses and checks a snapshot: format version, identifiers, unique series keys, and that
    /// every histogram decodes with the expected layout and agrees with its stated count.
    pub fn decode(buf: &[u8]) -> Result<Snapshot, SnapshotError> {
        Snapshot::decode_with_histograms(buf).map(|(snapshot, _)| snapshot)
    }

    /// As [`Snapshot::decode`], also returning the histograms it decoded while checking, so a
    /// reader never decodes them twice.
    pub fn decode_with_histograms(buf: &[u8]) -> Result<(Snapshot, Histograms), SnapshotError> {
        if buf.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::TooLarge {
                size: buf.len(),
                max: MAX_SNAPSHOT_BYTES,
            });
        }
        let snapshot: Snapshot =
            serde_json::from_slice(buf).map_err(|e| SnapshotError::Json(e.to_string()))?;
        let histograms = snapshot.decode_histograms()?;
        Ok((snapshot, histograms))
    }
}

#[cfg(test)]
mod tests;

//! Histograms and counters per (peer, protocol, probe kind, load), fed by probe events, and
//! the per-interval deltas that go into a snapshot, with the scheduled throughput tests that
//! ended. Idle series exist from the moment a peer is configured, so the collector shows them
//! at zero before the first reply; a peer's `load="bench"` series appear with its first test.
//! An outcome is filed under the load its probe was *sent* under (a probe lost or answered
//! after a throughput test ended belongs to the test), from a ledger of each series' recent
//! probes. The ledger also dates loss directions: a run of STAMP losses is split by
//! direction only when a later probe is answered, maybe a snapshot or more after the losses
//! were counted; the split goes to the interval that counted them (in this snapshot's
//! counters, or as [`EarlierDirections`] for the collector to date).

use std::collections::{BTreeMap, VecDeque};

use xcbench_snapshot::{
    AgentId, Counters, EarlierDirections, HistogramDelta, Identity, LatencyHistogram, Load, Metric,
    ProbeKind, Protocol, QuicPath, SenderCounters, SeriesSnapshot, TcpInfo, ThroughputFlow,
    ThroughputResult, TimestampSource,
};

use crate::probe::Event;

/// Identifies one series within an agent.
pub type SeriesKey = (AgentId, Protocol, ProbeKind);

/// The probe kinds, so the series, a peer gets per protocol it is probed over.
pub fn probe_kinds(protocol: Protocol) -> &'static [ProbeKind] {
    match protocol {
        Protocol::Udp => &[ProbeKind::Stamp],
        Protocol::Tcp => &[ProbeKind::Connect, ProbeKind::Rr],
        Protocol::Quic => &[
            ProbeKind::Connect,
            ProbeKind::Resume,
            ProbeKind::Rr,
            ProbeKind::Datagram,
        ],
    }
}

struct MetricRecord {
    histogram: LatencyHistogram,
    sum_ns: u64,
}

struct SeriesRecord {
    peer: Identity,
    timestamping: TimestampSource,
    counters: Counters,
    metrics: BTreeMap<Metric, MetricRecord>,
    jitter: Option<(f64, f64)>,
    /// The interval's largest clock error estimate, and whether every reply said both
    /// clocks were synchronized.
    clock: Option<(u64, bool)>,
    tcp: Option<TcpInfo>,
    quic: Option<QuicPath>,
    /// Directions learnt for losses counted in earlier intervals, by that interval's end.
    earlier: BTreeMap<u64, (u64, u64)>,
}

/// A series at rest, and the same series while a throughput test with its peer runs.
struct Loads {
    idle: SeriesRecord,
    under_load: Option<SeriesRecord>,
    ledger: Ledger,
}

/// Probes a ledger keeps once their outcome is settled (for late replies and duplicates).
const LEDGER_KEEP: usize = 2048;
/// Probes a ledger holds at most (losses awaiting a direction through a long outage).
const LEDGER_MAX: usize = 1 << 17;
/// Interval ends remembered, to date directions learnt late (older ones stay unattributed).
const PERIODS_KEPT: usize = 4096;
/// `Probe::lost_in` of a probe not lost, or whose loss needs no direction.
const NOT_AWAITING: u64 = u64::MAX;

/// What the recorder remembers of one probe: the load it was sent under, and, while its
/// loss awaits a direction, the period (snapshot number) that counted the loss.
#[derive(Debug, Clone, Copy)]
struct Probe {
    load: Load,
    lost_in: u64,
}

/// A series' recent probes by wire sequence; `front` is the sequence of `probes[0]`.
#[derive(Default)]
struct Ledger {
    front: u32,
    probes: VecDeque<Probe>,
}

impl Ledger {
    fn on_sent(&mut self, seq: u32, load: Load) {
        let next = self.front.wrapping_add(self.probes.len() as u32);
        if self.probes.is_empty() || seq != next {
            // A new prober (its sequences start again): what the old one left is forgotten.
            self.probes.clear();
            self.front = seq;
        }
        self.probes.push_back(Probe {
            load,
            lost_in: NOT_AWAITING,
        });
        while self.probes.len() > LEDGER_MAX
            || (self.probes.len() > LEDGER_KEEP
                && self
                    .probes
                    .front()
                    .is_some_and(|p| p.lost_in == NOT_AWAITING))
        {
            self.probes.pop_front();
            self.front = self.front.wrapping_add(1);
        }
    }

    fn index(&self, seq: u32) -> Option<usize> {
        let i = seq.wrapping_sub(self.front) as usize;
        (i < self.probes.len()).then_some(i)
    }

    fn get_mut(&mut self, seq: u32) -> Option<&mut Probe> {
        let i = self.index(seq)?;
        self.probes.get_mut(i)
    }
}

impl SeriesRecord {
    fn new(peer: Identity, timestamping: TimestampSource) -> SeriesRecord {
        SeriesRecord {
            peer,
            timestamping,
            counters: Counters::default(),
            metrics: BTreeMap::new(),
            jitter: None,
            clock: None,
            tcp: None,
            quic: None,
            earlier: BTreeMap::new(),
        }
    }

    /// The deltas since the last call; histograms and counters restart at zero.
    fn take(&mut self, protocol: Protocol, kind: ProbeKind, load: Load) -> SeriesSnapshot {
        SeriesSnapshot {
            peer: self.peer.clone(),
            protocol,
            kind,
            load,
            timestamping: self.timestamping,
            counters: std::mem::take(&mut self.counters),
            histograms: self
                .metrics
                .iter_mut()
                .filter(|(_, m)| !m.histogram.is_empty())
                .map(|(metric, m)| {
                    let delta = HistogramDelta {
                        metric: *metric,
                        count: m.histogram.len(),
                        sum_ns: m.sum_ns,
                        hdr: m.histogram.encode_base64(),
                    };
                    m.histogram.reset();
                    m.sum_ns = 0;
                    delta
                })
                .collect(),
            jitter_forward_ns: self.jitter.map(|j| j.0.round() as u64),
            jitter_reverse_ns: self.jitter.map(|j| j.1.round() as u64),
            clock_error_ns: self.clock.map(|c| c.0),
            clock_synchronized: self.clock.take().map(|c| c.1),
            tcp: self.tcp,
            quic: self.quic,
            earlier_directions: {
                let earlier = std::mem::take(&mut self.earlier);
                // The newest first past the cap: the oldest stay unattributed.
                let skip = earlier
                    .len()
                    .saturating_sub(xcbench_snapshot::MAX_EARLIER_DIRECTIONS);
                earlier
                    .into_iter()
                    .skip(skip)
                    .map(|(end, (f, r))| EarlierDirections {
                        interval_end_unix_ns: end,
                        lost_forward: f,
                        lost_reverse: r,
                    })
                    .collect()
            },
        }
    }

    fn record(&mut self, metric: Metric, value_ns: u64) {
        let m = self.metrics.entry(metric).or_insert_with(|| MetricRecord {
            histogram: LatencyHistogram::new(),
            sum_ns: 0,
        });
        m.histogram.record_ns(value_ns);
        m.sum_ns = m.sum_ns.saturating_add(value_ns);
    }
}

impl Loads {
    /// The record for outcomes of probes sent under `load`.
    fn record_mut(&mut self, load: Load) -> &mut SeriesRecord {
        match load {
            Load::Idle => &mut self.idle,
            Load::Bench => {
                let idle = &self.idle;
                self.under_load
                    .get_or_insert_with(|| SeriesRecord::new(idle.peer.clone(), idle.timestamping))
            }
        }
    }

    /// The run `first..=last` of a loss-direction event, whose `total` losses split into
    /// `forward` and `reverse` (the rest unattributed), split again by the (load, period)
    /// that counted each loss. The run says how many of its losses went each way, not which:
    /// each part gets the directions it must have had whichever they were (at least
    /// `part - (total - forward)` forward), and its remainder stays unattributed. A run
    /// counted in one part splits exactly.
    fn split(
        &mut self,
        first: u32,
        last: u32,
        (total, forward, reverse): (u64, u64, u64),
        period: u64,
    ) -> BTreeMap<(Load, u64), (u64, u64)> {
        let mut parts: BTreeMap<(Load, u64), u64> = BTreeMap::new();
        let (Some(from), Some(to)) = (self.ledger.index(first), self.ledger.index(last)) else {
            return BTreeMap::new();
        };
        for p in self.ledger.probes.range_mut(from..=to.max(from)) {
            if p.lost_in != NOT_AWAITING {
                *parts.entry((p.load, p.lost_in.min(period))).or_default() += 1;
                p.lost_in = NOT_AWAITING;
            }
        }
        parts
            .into_iter()
            .map(|(at, n)| {
                let f = n.saturating_sub(total - forward);
                let r = n.saturating_sub(total - reverse);
                (at, (f, r))
            })
            .collect()
    }
}

/// The end of period `of`, while it is remembered (`period` is the current one).
fn period_end(ends: &VecDeque<u64>, period: u64, of: u64) -> Option<u64> {
    let back = usize::try_from(period.checked_sub(of)?).ok()?;
    ends.len()
        .checked_sub(back)
        .and_then(|i| ends.get(i))
        .copied()
}

/// Growth of a QUIC connection's loss counters between two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuicGrowth {
    pub lost_packets: u64,
    pub congestion_events: u64,
    pub black_holes: u64,
}

/// Outcome of a 0-RTT attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroRtt {
    Accepted,
    Rejected,
    /// No session ticket: a full handshake instead.
    Unavailable,
}

/// All series of one agent.
#[derive(Default)]
pub struct Recorder {
    series: BTreeMap<SeriesKey, Loads>,
    /// Peers with a throughput test running against this agent or from it.
    loaded: std::collections::BTreeSet<AgentId>,
    sender: SenderCounters,
    throughput: Vec<ThroughputResult>,
    /// The directions the schedule tests, declared in every snapshot.
    scheduled: Vec<ThroughputFlow>,
    /// Snapshots taken so far: the current period's number.
    period: u64,
    /// The ends of the last periods (at most [`PERIODS_KEPT`]), `ends[i]` of period
    /// `period - ends.len() + i`.
    ends: VecDeque<u64>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Creates the series for a configured peer (idempotent).
    pub fn add_series(&mut self, peer: Identity, protocol: Protocol, kind: ProbeKind) {
        // QUIC and connect probes are timed in user space by design; the others say so with
        // their first reply if the kernel gives no timestamp.
        let timestamping = if protocol == Protocol::Quic || kind == ProbeKind::Connect {
            TimestampSource::User
        } else {
            TimestampSource::Kernel
        };
        self.series
            .entry((peer.id.clone(), protocol, kind))
            .or_insert_with(|| Loads {
                idle: SeriesRecord::new(peer, timestamping),
                under_load: None,
                ledger: Ledger::default(),
            });
    }

    /// The configured series and scheduled directions, as a newer configuration (a changed
    /// mesh) has them: the new ones are created at zero; those no longer configured (or
    /// whose peer's labels changed) are dropped, with what they recorded since the last
    /// snapshot.
    pub fn set_configured(
        &mut self,
        series: &[(Identity, Protocol, ProbeKind)],
        flows: &[ThroughputFlow],
    ) {
        self.series.retain(|(_, protocol, kind), s| {
            series
                .iter()
                .any(|(peer, p, k)| peer == &s.idle.peer && p == protocol && k == kind)
        });
        for (peer, protocol, kind) in series {
            self.add_series(peer.clone(), *protocol, *kind);
        }
        self.scheduled.retain(|f| flows.contains(f));
        for f in flows {
            self.add_scheduled(f.clone());
        }
    }

    /// From now on, outcomes of `peer`'s series go to its `load` series.
    pub fn set_load(&mut self, peer: &AgentId, load: Load) {
        match load {
            Load::Bench => self.loaded.insert(peer.clone()),
            Load::Idle => self.loaded.remove(peer),
        };
    }

    /// Where `peer`'s outcomes go now.
    pub fn load_of(&self, peer: &AgentId) -> Load {
        if self.loaded.contains(peer) {
            Load::Bench
        } else {
            Load::Idle
        }
    }

    /// A direction the schedule tests, declared in every snapshot so its series exist at
    /// zero before the first test (idempotent).
    pub fn add_scheduled(&mut self, flow: ThroughputFlow) {
        if !self.scheduled.contains(&flow) {
            self.scheduled.push(flow);
        }
    }

    /// The directions the schedule tests.
    pub fn scheduled(&self) -> &[ThroughputFlow] {
        &self.scheduled
    }

    /// A scheduled throughput test's result, for the next snapshot.
    pub fn handle_throughput(&mut self, result: ThroughputResult) {
        self.throughput.push(result);
    }

    /// The series an outcome of `key` sent under `load` goes to: its idle series, or its
    /// load series (made from the idle one on first use). `None` for an unconfigured series.
    fn series_mut(&mut self, key: &SeriesKey, load: Load) -> Option<&mut SeriesRecord> {
        let s = self.series.get_mut(key)?;
        Some(s.record_mut(load))
    }

    /// Records one probe event. `source` says how the receive timestamp was taken.
    pub fn handle_event(&mut self, key: &SeriesKey, event: &Event, source: TimestampSource) {
        if let Event::Malformed = event {
            self.sender.malformed += 1;
            return;
        }
        if let Event::Unmatched = event {
            self.sender.unmatched += 1;
            return;
        }
        let now = self.load_of(&key.0);
        let period = self.period;
        let Some(loads) = self.series.get_mut(key) else {
            return;
        };
        // The load the event's probe was sent under (now, for one the ledger forgot).
        let seq = match *event {
            Event::Sent { seq } => {
                loads.ledger.on_sent(seq, now);
                None
            }
            Event::Reply(r) => Some(r.seq),
            Event::Lost { seq }
            | Event::Abandoned { seq }
            | Event::Duplicate { seq }
            | Event::Late { seq }
            | Event::Rtt { seq, .. }
            | Event::ClockMoved { seq } => Some(seq),
            Event::LossDirection {
                first,
                last,
                forward,
                reverse,
                unattributed,
            } => {
                let total = forward + reverse + unattributed;
                let split = loads.split(first, last, (total, forward, reverse), period);
                for ((load, lost_in), (f, r)) in split {
                    let record = loads.record_mut(load);
                    if lost_in == period {
                        record.counters.lost_forward += f;
                        record.counters.lost_reverse += r;
                    } else if let Some(end) = period_end(&self.ends, period, lost_in) {
                        let e = record.earlier.entry(end).or_default();
                        e.0 += f;
                        e.1 += r;
                    }
                }
                return;
            }
            Event::Skipped { .. } | Event::Malformed | Event::Unmatched => None,
        };
        let entry = seq.and_then(|seq| loads.ledger.get_mut(seq));
        let load = entry.as_ref().map_or(now, |p| p.load);
        if let (Event::Lost { .. }, Some(p)) = (event, entry) {
            // Only STAMP splits loss by direction: a loss of another kind awaits nothing.
            if key.2 == ProbeKind::Stamp {
                p.lost_in = period;
            }
        }
        let s = loads.record_mut(load);
        let c = &mut s.counters;
        match *event {
            Event::Sent { .. } => c.sent += 1,
            Event::Lost { .. } => c.lost += 1,
            Event::Abandoned { .. } => c.abandoned += 1,
            Event::Duplicate { .. } => c.duplicated += 1,
            Event::Late { .. } => c.late += 1,
            Event::Skipped { count } => c.skipped += count,
            Event::Malformed | Event::Unmatched | Event::LossDirection { .. } => {}
            Event::Rtt { rtt_ns, .. } => {
                c.received += 1;
                s.timestamping = source;
                s.record(Metric::Rtt, rtt_ns);
            }
            Event::ClockMoved { .. } => {
                c.received += 1;
                c.clock_steps += 1;
            }
            Event::Reply(r) => {
                c.received += 1;
                c.reordered += u64::from(r.reordered);
                s.timestamping = source;
                // No RTT means no one-way delays either: counted once, below.
                if let Some(rtt_ns) = r.rtt_ns {
                    s.record(Metric::Rtt, rtt_ns);
                }
                match r.one_way {
                    // Without synchronized clocks a one-way delay can come out negative; the
                    // histogram holds it as 0 and the clock error estimate says how far to
                    // trust it.
                    Some((forward, reverse)) => {
                        s.record(Metric::OneWayForward, forward.max(0) as u64);
                        s.record(Metric::OneWayReverse, reverse.max(0) as u64);
                    }
                    None => s.counters.clock_steps += 1,
                }
                for (f, b) in r.ipdv.iter().flatten() {
                    s.record(Metric::IpdvForward, f.unsigned_abs());
                    s.record(Metric::IpdvReverse, b.unsigned_abs());
                }
                s.jitter = Some((r.jitter_forward_ns, r.jitter_reverse_ns));
                // The largest error estimate of the interval (a one-way delay is judged
                // within it), synchronized only if every reply said so.
                s.clock = Some(match s.clock {
                    Some((e, sync)) => (e.max(r.clock_error_ns), sync && r.synchronized),
                    None => (r.clock_error_ns, r.synchronized),
                });
            }
        }
    }

    /// The kernel's TCP_INFO for a probe connection of series `key`, and segments it
    /// retransmitted since the last call for that connection.
    pub fn handle_tcp_info(&mut self, key: &SeriesKey, info: TcpInfo, retransmits: u64) {
        if let Some(s) = self.series_mut(key, self.load_of(&key.0)) {
            s.tcp = Some(info);
            s.counters.retransmits += retransmits;
        }
    }

    /// quinn's path statistics for a QUIC probe connection of series `key`, with what its
    /// counters grew by since the last call for that connection.
    pub fn handle_quic_path(&mut self, key: &SeriesKey, path: QuicPath, growth: QuicGrowth) {
        if let Some(s) = self.series_mut(key, self.load_of(&key.0)) {
            s.quic = Some(path);
            s.counters.quic_lost_packets += growth.lost_packets;
            s.counters.quic_congestion_events += growth.congestion_events;
            s.counters.quic_black_holes += growth.black_holes;
        }
    }

    /// How a resume probe's 0-RTT attempt went.
    pub fn handle_zero_rtt(&mut self, key: &SeriesKey, outcome: ZeroRtt) {
        if let Some(s) = self.series_mut(key, self.load_of(&key.0)) {
            let c = &mut s.counters;
            match outcome {
                ZeroRtt::Accepted => c.zero_rtt_accepted += 1,
                ZeroRtt::Rejected => c.zero_rtt_rejected += 1,
                ZeroRtt::Unavailable => c.zero_rtt_unavailable += 1,
            }
        }
    }

    /// Sender-side drops since the last call.
    pub fn take_sender_counters(&mut self) -> SenderCounters {
        std::mem::take(&mut self.sender)
    }

    /// Scheduled tests' results since the last call.
    pub fn take_throughput(&mut self) -> Vec<ThroughputResult> {
        std::mem::take(&mut self.throughput)
    }

    /// Every series' deltas since the last call, for the interval that ends at
    /// `interval_end_unix_ns`; histograms and counters restart at zero.
    pub fn take_series(&mut self, interval_end_unix_ns: u64) -> Vec<SeriesSnapshot> {
        self.ends.push_back(interval_end_unix_ns);
        if self.ends.len() > PERIODS_KEPT {
            self.ends.pop_front();
        }
        self.period += 1;
        let mut out = Vec::with_capacity(self.series.len());
        for ((_, protocol, kind), s) in &mut self.series {
            out.push(s.idle.take(*protocol, *kind, Load::Idle));
            if let Some(b) = &mut s.under_load {
                out.push(b.take(*protocol, *kind, Load::Bench));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Reply;
    use xcbench_snapshot::Cloud;

    fn oci_1() -> Identity {
        Identity {
            id: "oci-1".parse().unwrap(),
            cloud: Cloud::Oci,
            region: "r".into(),
            zone: String::new(),
        }
    }

    #[test]
    fn a_newer_configuration_adds_and_drops_series() {
        let (a, b) = (
            oci_1(),
            Identity {
                id: "oci-2".parse().unwrap(),
                ..oci_1()
            },
        );
        let mut rec = Recorder::new();
        let udp = |p: &Identity| (p.clone(), Protocol::Udp, ProbeKind::Stamp);
        rec.set_configured(&[udp(&a)], &[]);
        let peers = |rec: &mut Recorder| -> Vec<String> {
            rec.take_series(0)
                .iter()
                .map(|s| s.peer.id.to_string())
                .collect()
        };
        assert_eq!(peers(&mut rec), ["oci-1"]);
        rec.set_configured(&[udp(&a), udp(&b)], &[]);
        assert_eq!(peers(&mut rec), ["oci-1", "oci-2"]);
        let moved = Identity {
            region: "r2".into(),
            ..a.clone()
        };
        rec.set_configured(&[udp(&moved)], &[]);
        let s = rec.take_series(0);
        assert_eq!(
            (s.len(), s[0].peer.region.as_str()),
            (1, "r2"),
            "relabelled, b dropped"
        );
    }

    #[test]
    fn deltas_reset_between_snapshots() {
        let peer = oci_1();
        let key = (peer.id.clone(), Protocol::Udp, ProbeKind::Stamp);
        let mut rec = Recorder::new();
        rec.add_series(peer, Protocol::Udp, ProbeKind::Stamp);
        let first = rec.take_series(0);
        assert_eq!(first.len(), 1, "configured series exists at zero");
        assert_eq!(first[0].counters, Counters::default());

        let reply = Reply {
            seq: 0,
            rtt_ns: Some(2_000_000),
            one_way: Some((-5, 1_000_000)),
            ipdv: [Some((-3_000, 4_000)), None],
            reordered: true,
            jitter_forward_ns: 10.4,
            jitter_reverse_ns: 0.0,
            clock_error_ns: 7,
            synchronized: false,
        };
        rec.handle_event(&key, &Event::Sent { seq: 0 }, TimestampSource::User);
        rec.handle_event(&key, &Event::Reply(reply), TimestampSource::User);
        rec.handle_event(&key, &Event::Unmatched, TimestampSource::User);
        let s = rec.take_series(0).remove(0);
        assert_eq!(
            (s.counters.sent, s.counters.received, s.counters.reordered),
            (1, 1, 1)
        );
        assert_eq!(s.timestamping, TimestampSource::User);
        assert_eq!(s.jitter_forward_ns, Some(10));
        let rtt = s
            .histograms
            .iter()
            .find(|h| h.metric == Metric::Rtt)
            .unwrap();
        assert_eq!((rtt.count, rtt.sum_ns), (1, 2_000_000));
        let fwd = s
            .histograms
            .iter()
            .find(|h| h.metric == Metric::OneWayForward)
            .unwrap();
        assert_eq!(fwd.sum_ns, 0, "negative one-way delay held as 0");
        let ipdv = s
            .histograms
            .iter()
            .find(|h| h.metric == Metric::IpdvForward)
            .unwrap();
        assert_eq!(ipdv.sum_ns, 3_000);
        assert_eq!(rec.take_sender_counters().unmatched, 1);

        let again = rec.take_series(0).remove(0);
        assert_eq!(again.counters, Counters::default());
        assert!(again.histograms.is_empty());

        // A reply across a clock step: its round trip counts, its one-way delays do not.
        let stepped = Reply {
            one_way: None,
            ipdv: [None, None],
            ..reply
        };
        rec.handle_event(&key, &Event::Reply(stepped), TimestampSource::User);
        let s = rec.take_series(0).remove(0);
        assert_eq!((s.counters.received, s.counters.clock_steps), (1, 1));
        let metrics: Vec<Metric> = s.histograms.iter().map(|h| h.metric).collect();
        assert_eq!(metrics, vec![Metric::Rtt]);
        // A reply whose reflector claims a dwell longer than the round trip: answered, one
        // clock step, and nothing in any histogram (not an RTT of 0).
        let moved = Reply {
            rtt_ns: None,
            ..stepped
        };
        rec.handle_event(&key, &Event::Reply(moved), TimestampSource::User);
        rec.handle_event(&key, &Event::ClockMoved { seq: 1 }, TimestampSource::User);
        let s = rec.take_series(0).remove(0);
        assert_eq!((s.counters.received, s.counters.clock_steps), (2, 2));
        assert!(
            s.histograms.iter().all(|h| h.count == 0),
            "{:?}",
            s.histograms
        );
    }

    #[test]
    fn outcomes_under_load_go_to_their_own_series() {
        let peer = oci_1();
        let key = (peer.id.clone(), Protocol::Tcp, ProbeKind::Rr);
        let mut rec = Recorder::new();
        rec.add_series(peer.clone(), Protocol::Tcp, ProbeKind::Rr);
        let rtt = |rec: &mut Recorder, ns| {
            rec.handle_event(
                &key,
                &Event::Rtt { seq: 0, rtt_ns: ns },
                TimestampSource::Kernel,
            )
        };
        rtt(&mut rec, 1_000_000);
        rec.set_load(&peer.id, Load::Bench);
        rtt(&mut rec, 9_000_000);
        rtt(&mut rec, 8_000_000);
        rec.set_load(&peer.id, Load::Idle);
        rtt(&mut rec, 2_000_000);
        // An unconfigured series stays unrecorded under load too.
        rec.set_load(&"db9".parse().unwrap(), Load::Bench);
        rec.handle_event(
            &("db9".parse().unwrap(), Protocol::Tcp, ProbeKind::Rr),
            &Event::Rtt { seq: 0, rtt_ns: 1 },
            TimestampSource::Kernel,
        );
        let series = rec.take_series(0);
        assert_eq!(series.len(), 2);
        let sum = |load| {
            let s = series.iter().find(|s| s.load == load).unwrap();
            (s.counters.received, s.histograms[0].sum_ns)
        };
        assert_eq!(sum(Load::Idle), (2, 3_000_000));
        assert_eq!(sum(Load::Bench), (2, 17_000_000));
        assert_eq!(
            series
                .iter()
                .find(|s| s.load == Load::Bench)
                .unwrap()
                .timestamping,
            TimestampSource::Kernel
        );
    }

    fn stamp_key(rec: &mut Recorder) -> SeriesKey {
        let peer = oci_1();
        rec.add_series(peer.clone(), Protocol::Udp, ProbeKind::Stamp);
        (peer.id, Protocol::Udp, ProbeKind::Stamp)
    }

    fn run(first: u32, last: u32, forward: u64, reverse: u64, unattributed: u64) -> Event {
        Event::LossDirection {
            first,
            last,
            forward,
            reverse,
            unattributed,
        }
    }

    #[test]
    fn an_outcome_goes_to_the_load_its_probe_was_sent_under() {
        let mut rec = Recorder::new();
        let key = stamp_key(&mut rec);
        let on = |rec: &mut Recorder, e: Event| rec.handle_event(&key, &e, TimestampSource::User);
        rec.set_load(&key.0, Load::Bench);
        on(&mut rec, Event::Sent { seq: 0 });
        on(&mut rec, Event::Sent { seq: 1 });
        rec.set_load(&key.0, Load::Idle);
        on(&mut rec, Event::Sent { seq: 2 });
        // Resolved after the test ended: still the test's.
        on(&mut rec, Event::Lost { seq: 0 });
        on(&mut rec, Event::Rtt { seq: 1, rtt_ns: 9 });
        on(&mut rec, Event::Rtt { seq: 2, rtt_ns: 1 });
        on(&mut rec, run(0, 0, 1, 0, 0));
        let series = rec.take_series(10);
        let get = |load| series.iter().find(|s| s.load == load).unwrap().counters;
        let (bench, idle) = (get(Load::Bench), get(Load::Idle));
        assert_eq!(
            (bench.sent, bench.lost, bench.lost_forward, bench.received),
            (2, 1, 1, 1)
        );
        assert_eq!((idle.sent, idle.lost, idle.received), (1, 0, 1));
    }

    #[test]
    fn directions_learnt_late_are_dated_to_the_losses() {
        let mut rec = Recorder::new();
        let key = stamp_key(&mut rec);
        let on = |rec: &mut Recorder, e: Event| rec.handle_event(&key, &e, TimestampSource::User);
        for seq in 0..6 {
            on(&mut rec, Event::Sent { seq });
        }
        on(&mut rec, Event::Lost { seq: 1 });
        on(&mut rec, Event::Lost { seq: 2 });
        let first = rec.take_series(100).remove(0);
        assert_eq!((first.counters.lost, first.counters.lost_forward), (2, 0));
        on(&mut rec, Event::Lost { seq: 3 });
        // The run 1..=3 closes in the second interval: all forward. Two of them were counted
        // in the first interval, which ended at 100.
        on(&mut rec, run(1, 3, 3, 0, 0));
        let second = rec.take_series(200).remove(0);
        assert_eq!((second.counters.lost, second.counters.lost_forward), (1, 1));
        assert_eq!(
            second.earlier_directions,
            [EarlierDirections {
                interval_end_unix_ns: 100,
                lost_forward: 2,
                lost_reverse: 0
            }]
        );
        assert_eq!(
            second.counters_with_earlier().lost_forward,
            3,
            "the running totals"
        );
        assert!(rec.take_series(300)[0].earlier_directions.is_empty());
    }

    #[test]
    fn a_mixed_run_across_intervals_keeps_only_the_certain_part() {
        let mut rec = Recorder::new();
        let key = stamp_key(&mut rec);
        let on = |rec: &mut Recorder, e: Event| rec.handle_event(&key, &e, TimestampSource::User);
        for seq in 0..8 {
            on(&mut rec, Event::Sent { seq });
        }
        for seq in 0..3 {
            on(&mut rec, Event::Lost { seq });
        }
        rec.take_series(100);
        on(&mut rec, Event::Lost { seq: 3 });
        // Four lost, three forward and one reverse, which one unknown: the first interval's
        // three are at least two forward; the second's one could be either.
        on(&mut rec, run(0, 3, 3, 1, 0));
        let s = rec.take_series(200).remove(0);
        assert_eq!((s.counters.lost_forward, s.counters.lost_reverse), (0, 0));
        assert_eq!(
            s.earlier_directions,
            [EarlierDirections {
                interval_end_unix_ns: 100,
                lost_forward: 2,
                lost_reverse: 0
            }]
        );
        // An unattributed run (a reflector restarted) adds nothing, and is not revisited.
        on(&mut rec, Event::Lost { seq: 5 });
        on(&mut rec, run(5, 5, 0, 0, 1));
        on(&mut rec, run(5, 5, 1, 0, 0));
        let s = rec.take_series(300).remove(0);
        assert_eq!(
            (
                s.counters.lost,
                s.counters.lost_forward,
                s.counters.lost_reverse
            ),
            (1, 0, 0)
        );
    }
}

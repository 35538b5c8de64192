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
//!
//! A STAMP series probed over several flows (source ports) has one probe session per flow,
//! each with its own sequence numbers and ledger: the series' counters and histograms are
//! all flows together, and each flow's probes sent, received and lost and its round-trip
//! times go into the snapshot beside them ([`FlowSnapshot`]).
//!
//! # Layout
//! - this file: the series and their records, the recorder, snapshot deltas.
//! - `ledger`: each series' recent probes (load at send, loss awaiting a direction) and the
//!   periods' ends that date a split.
//! - `tests`: the recorder held to its promises.

use std::collections::BTreeMap;

use xcbench_snapshot::{
    AgentId, Counters, EarlierDirections, FlowSnapshot, HistogramDelta, Identity, LatencyHistogram,
    Load, Metric, ProbeKind, Protocol, QuicPath, SenderCounters, SeriesSnapshot, TcpInfo,
    ThroughputFlow, ThroughputResult, TimestampSource,
};

use crate::probe::Event;

mod ledger;

use ledger::{Ledger, Periods};

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

impl MetricRecord {
    fn new() -> MetricRecord {
        MetricRecord {
            histogram: LatencyHistogram::new(),
            sum_ns: 0,
        }
    }

    fn record(&mut self, value_ns: u64) {
        self.histogram.record_ns(value_ns);
        self.sum_ns = self.sum_ns.saturating_add(value_ns);
    }

    /// The delta since the last call, `None` when empty; the histogram restarts at zero.
    fn take(&mut self, metric: Metric) -> Option<HistogramDelta> {
        if self.histogram.is_empty() {
            return None;
        }
        let delta = HistogramDelta {
            metric,
            count: self.histogram.len(),
            sum_ns: self.sum_ns,
            hdr: self.histogram.encode_base64(),
        };
        self.histogram.reset();
        self.sum_ns = 0;
        Some(delta)
    }
}

/// One flow's share of a series over the interval.
struct FlowRecord {
    sent: u64,
    received: u64,
    lost: u64,
    rtt: MetricRecord,
}

struct SeriesRecord {
    peer: Identity,
    timestamping: TimestampSource,
    counters: Counters,
    metrics: BTreeMap<Metric, MetricRecord>,
    jitter: Option<(f64, f64)>,
    /// The DSCP and the ECN the last reply with a Class of Service TLV says arrived each way.
    dscp: (Option<u8>, Option<u8>),
    ecn: (Option<u8>, Option<u8>),
    /// The interval's largest clock error estimate, and whether every reply said both
    /// clocks were synchronized.
    clock: Option<(u64, bool)>,
    tcp: Option<TcpInfo>,
    quic: Option<QuicPath>,
    /// Directions learnt for losses counted in earlier intervals, by that interval's end.
    earlier: BTreeMap<u64, (u64, u64)>,
    /// Per flow, when the series is probed over more than one.
    flows: BTreeMap<u8, FlowRecord>,
}

/// A series at rest, and the same series while a throughput test with its peer runs.
struct Loads {
    idle: SeriesRecord,
    under_load: Option<SeriesRecord>,
    /// One per flow (each flow's probes have their own sequence numbers).
    ledgers: Vec<Ledger>,
}

impl SeriesRecord {
    fn new(peer: Identity, timestamping: TimestampSource) -> SeriesRecord {
        SeriesRecord {
            peer,
            timestamping,
            counters: Counters::default(),
            metrics: BTreeMap::new(),
            jitter: None,
            dscp: (None, None),
            ecn: (None, None),
            clock: None,
            tcp: None,
            quic: None,
            earlier: BTreeMap::new(),
            flows: BTreeMap::new(),
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
                .filter_map(|(metric, m)| m.take(*metric))
                .collect(),
            jitter_forward_ns: self.jitter.map(|j| j.0.round() as u64),
            jitter_reverse_ns: self.jitter.map(|j| j.1.round() as u64),
            dscp_forward: self.dscp.0.take(),
            dscp_reverse: self.dscp.1.take(),
            ecn_forward: self.ecn.0.take(),
            ecn_reverse: self.ecn.1.take(),
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
            // Empty for a series probed over one flow: it is the series itself.
            flows: self
                .flows
                .iter_mut()
                .map(|(flow, f)| FlowSnapshot {
                    flow: *flow,
                    sent: std::mem::take(&mut f.sent),
                    received: std::mem::take(&mut f.received),
                    lost: std::mem::take(&mut f.lost),
                    rtt: f.rtt.take(Metric::Rtt),
                })
                .collect(),
        }
    }

    fn record(&mut self, metric: Metric, value_ns: u64) {
        self.metrics
            .entry(metric)
            .or_insert_with(MetricRecord::new)
            .record(value_ns);
    }

    fn flow_mut(&mut self, flow: u8) -> &mut FlowRecord {
        self.flows.entry(flow).or_insert_with(|| FlowRecord {
            sent: 0,
            received: 0,
            lost: 0,
            rtt: MetricRecord::new(),
        })
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
    /// The snapshots taken so far.
    periods: Periods,
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
                ledgers: vec![Ledger::default()],
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
        self.record_event(key, None, event, source);
    }

    /// Records one event of flow `flow` (0 ..= 15) of a series probed over several.
    pub fn handle_flow_event(
        &mut self,
        key: &SeriesKey,
        flow: u8,
        event: &Event,
        source: TimestampSource,
    ) {
        self.record_event(key, Some(flow), event, source);
    }

    fn record_event(
        &mut self,
        key: &SeriesKey,
        flow: Option<u8>,
        event: &Event,
        source: TimestampSource,
    ) {
        if let Event::Malformed = event {
            self.sender.malformed += 1;
            return;
        }
        if let Event::Unmatched = event {
            self.sender.unmatched += 1;
            return;
        }
        if let Event::Unauthenticated = event {
            self.sender.unauthenticated += 1;
            return;
        }
        let now = self.load_of(&key.0);
        let period = self.periods.current();
        let Some(loads) = self.series.get_mut(key) else {
            return;
        };
        let f = usize::from(flow.unwrap_or(0));
        if loads.ledgers.len() <= f {
            loads.ledgers.resize_with(f + 1, Ledger::default);
        }
        // The load the event's probe was sent under (now, for one the ledger forgot).
        let seq = match *event {
            Event::Sent { seq } => {
                loads.ledgers[f].on_sent(seq, now);
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
                let split = loads.ledgers[f].split(first, last, (total, forward, reverse), period);
                for ((load, lost_in), (f, r)) in split {
                    let record = loads.record_mut(load);
                    if lost_in == period {
                        record.counters.lost_forward += f;
                        record.counters.lost_reverse += r;
                    } else if let Some(end) = self.periods.end_of(lost_in) {
                        let e = record.earlier.entry(end).or_default();
                        e.0 += f;
                        e.1 += r;
                    }
                }
                return;
            }
            Event::Skipped { .. }
            | Event::Malformed
            | Event::Unmatched
            | Event::Unauthenticated => None,
        };
        let entry = seq.and_then(|seq| loads.ledgers[f].get_mut(seq));
        let load = entry.as_ref().map_or(now, |p| p.load);
        if let (Event::Lost { .. }, Some(p)) = (event, entry) {
            // Only STAMP splits loss by direction: a loss of another kind awaits nothing.
            if key.2 == ProbeKind::Stamp {
                p.lost_in = period;
            }
        }
        let s = loads.record_mut(load);
        if let Some(flow) = flow {
            let fr = s.flow_mut(flow);
            match *event {
                Event::Sent { .. } => fr.sent += 1,
                Event::Lost { .. } => fr.lost += 1,
                Event::ClockMoved { .. } => fr.received += 1,
                Event::Rtt { rtt_ns, .. } => {
                    fr.received += 1;
                    fr.rtt.record(rtt_ns);
                }
                Event::Reply(r) => {
                    fr.received += 1;
                    if let Some(rtt_ns) = r.rtt_ns {
                        fr.rtt.record(rtt_ns);
                    }
                }
                _ => {}
            }
        }
        let c = &mut s.counters;
        match *event {
            Event::Sent { .. } => c.sent += 1,
            Event::Lost { .. } => c.lost += 1,
            Event::Abandoned { .. } => c.abandoned += 1,
            Event::Duplicate { .. } => c.duplicated += 1,
            Event::Late { .. } => c.late += 1,
            Event::Skipped { count } => c.skipped += count,
            Event::Malformed
            | Event::Unmatched
            | Event::Unauthenticated
            | Event::LossDirection { .. } => {}
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
                if let Some(d) = r.dscp {
                    s.counters.remarked_forward += u64::from(d.forward_remarked());
                    s.counters.remarked_reverse += u64::from(d.reverse_remarked());
                    s.dscp = (Some(d.at_reflector), d.back.or(s.dscp.1));
                    s.ecn = (Some(d.ecn_at_reflector), d.ecn_back.or(s.ecn.1));
                }
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
        self.periods.handle_end(interval_end_unix_ns);
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
mod tests;

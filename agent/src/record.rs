//! Histograms and counters per (peer, protocol, probe kind, load), fed by probe events, and
//! the per-interval deltas that go into a snapshot, with the scheduled throughput tests that
//! ended. Idle series exist from the moment a peer is configured, so the collector shows them
//! at zero before the first reply; a peer's `load="bench"` series appear with its first test.
//! An outcome is filed under the load at the moment it is recorded.

use std::collections::BTreeMap;

use xcbench_snapshot::{
    AgentId, Counters, HistogramDelta, Identity, LatencyHistogram, Load, Metric, ProbeKind,
    Protocol, QuicPath, SenderCounters, SeriesSnapshot, TcpInfo, ThroughputFlow, ThroughputResult,
    TimestampSource,
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
    clock: Option<(u64, bool)>,
    tcp: Option<TcpInfo>,
    quic: Option<QuicPath>,
}

/// A series at rest, and the same series while a throughput test with its peer runs.
struct Loads {
    idle: SeriesRecord,
    under_load: Option<SeriesRecord>,
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
            clock_synchronized: self.clock.map(|c| c.1),
            tcp: self.tcp,
            quic: self.quic,
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

    /// The series an outcome of `key` goes to now: its idle series, or under load its load
    /// series (made from the idle one on first use). `None` for an unconfigured series.
    fn series_mut(&mut self, key: &SeriesKey) -> Option<&mut SeriesRecord> {
        let loaded = self.loaded.contains(&key.0);
        let s = self.series.get_mut(key)?;
        if !loaded {
            return Some(&mut s.idle);
        }
        let idle = &s.idle;
        Some(
            s.under_load
                .get_or_insert_with(|| SeriesRecord::new(idle.peer.clone(), idle.timestamping)),
        )
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
        let Some(s) = self.series_mut(key) else {
            return;
        };
        let c = &mut s.counters;
        match *event {
            Event::Sent { .. } => c.sent += 1,
            Event::Lost { .. } => c.lost += 1,
            Event::LossDirection { forward, reverse } => {
                c.lost_forward += forward;
                c.lost_reverse += reverse;
            }
            Event::Duplicate { .. } => c.duplicated += 1,
            Event::Late { .. } => c.late += 1,
            Event::Skipped { count } => c.skipped += count,
            Event::Malformed | Event::Unmatched => {}
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
                s.clock = Some((r.clock_error_ns, r.synchronized));
            }
        }
    }

    /// The kernel's TCP_INFO for a probe connection of series `key`, and segments it
    /// retransmitted since the last call for that connection.
    pub fn handle_tcp_info(&mut self, key: &SeriesKey, info: TcpInfo, retransmits: u64) {
        if let Some(s) = self.series_mut(key) {
            s.tcp = Some(info);
            s.counters.retransmits += retransmits;
        }
    }

    /// quinn's path statistics for a QUIC probe connection of series `key`, with what its
    /// counters grew by since the last call for that connection.
    pub fn handle_quic_path(&mut self, key: &SeriesKey, path: QuicPath, growth: QuicGrowth) {
        if let Some(s) = self.series_mut(key) {
            s.quic = Some(path);
            s.counters.quic_lost_packets += growth.lost_packets;
            s.counters.quic_congestion_events += growth.congestion_events;
            s.counters.quic_black_holes += growth.black_holes;
        }
    }

    /// How a resume probe's 0-RTT attempt went.
    pub fn handle_zero_rtt(&mut self, key: &SeriesKey, outcome: ZeroRtt) {
        if let Some(s) = self.series_mut(key) {
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

    /// Every series' deltas since the last call; histograms and counters restart at zero.
    pub fn take_series(&mut self) -> Vec<SeriesSnapshot> {
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
            rec.take_series()
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
        let s = rec.take_series();
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
        let first = rec.take_series();
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
        let s = rec.take_series().remove(0);
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

        let again = rec.take_series().remove(0);
        assert_eq!(again.counters, Counters::default());
        assert!(again.histograms.is_empty());

        // A reply across a clock step: its round trip counts, its one-way delays do not.
        let stepped = Reply {
            one_way: None,
            ipdv: [None, None],
            ..reply
        };
        rec.handle_event(&key, &Event::Reply(stepped), TimestampSource::User);
        let s = rec.take_series().remove(0);
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
        let s = rec.take_series().remove(0);
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
        let series = rec.take_series();
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
}

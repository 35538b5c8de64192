//! One agent as the store keeps it: its latest instance and report sequence (the
//! high-water mark ingest is idempotent on), its responders' and sender's counters, and the
//! gaps in its reports.

use xcbench_snapshot::{Identity, ResponderCounters, SenderCounters, Snapshot};

/// Everything known about one agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentState {
    pub identity: Identity,
    pub instance: u64,
    pub last_seq: u64,
    pub responders: ResponderCounters,
    pub sender: SenderCounters,
    pub last_report_ns: u64,
    /// The end of the latest interval reported (the agent's clock, Unix ns).
    #[serde(default)]
    pub last_interval_end_ns: u64,
    /// Stretches with no data from the agent: snapshots it dropped (a jump in its report
    /// sequence) or the time it was down (a new instance); the latest [`MAX_GAPS`].
    #[serde(default)]
    pub gaps: Vec<xcbench_snapshot::history::AgentGap>,
    /// Snapshots that never arrived, over the agent's life (the sum of the jumps).
    #[serde(default)]
    pub snapshots_dropped: u64,
    /// New instances after the first.
    #[serde(default)]
    pub restarts: u64,
    /// The scheduled test directions of its latest report.
    #[serde(default)]
    pub flows: Vec<xcbench_snapshot::ThroughputFlow>,
}

/// Gaps kept per agent.
pub const MAX_GAPS: usize = 256;

impl AgentState {
    /// An agent's state before its first report.
    pub fn new(snapshot: &Snapshot, now: u64) -> AgentState {
        AgentState {
            identity: snapshot.agent.clone(),
            instance: snapshot.instance,
            last_seq: 0,
            responders: ResponderCounters::default(),
            sender: SenderCounters::default(),
            last_report_ns: now,
            last_interval_end_ns: 0,
            gaps: Vec::new(),
            snapshots_dropped: 0,
            restarts: 0,
            flows: Vec::new(),
        }
    }

    /// Takes an accepted report received at `now`: counters, high-water mark, and a gap
    /// when reports are missing before it.
    pub fn take_report(&mut self, snapshot: &Snapshot, now: u64) {
        let restarted = snapshot.instance != self.instance;
        let dropped = if restarted {
            snapshot.seq.saturating_sub(1)
        } else {
            snapshot.seq.saturating_sub(self.last_seq.saturating_add(1))
        };
        if self.last_interval_end_ns > 0
            && (restarted || dropped > 0)
            && snapshot.interval_start_unix_ns > self.last_interval_end_ns
        {
            if self.gaps.len() == MAX_GAPS {
                self.gaps.remove(0);
            }
            self.gaps.push(xcbench_snapshot::history::AgentGap {
                from_unix_ns: self.last_interval_end_ns,
                to_unix_ns: snapshot.interval_start_unix_ns,
                dropped_snapshots: dropped,
            });
        }
        if self.last_seq > 0 {
            self.restarts += u64::from(restarted);
            self.snapshots_dropped += dropped;
        }
        self.identity = snapshot.agent.clone();
        self.instance = snapshot.instance;
        self.flows.clone_from(&snapshot.throughput_flows);
        self.last_seq = snapshot.seq;
        self.last_report_ns = now;
        self.last_interval_end_ns = self.last_interval_end_ns.max(snapshot.interval_end_unix_ns);
        self.responders.add(&snapshot.responders);
        self.sender.malformed += snapshot.sender.malformed;
        self.sender.unmatched += snapshot.sender.unmatched;
    }
}

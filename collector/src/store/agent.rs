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
    /// The latest report's count of snapshots its instance gave up ([`Snapshot::given_up`]).
    #[serde(default)]
    pub given_up: u64,
    /// Snapshots that went to another collector of a sharded mesh, over the agent's life.
    #[serde(default)]
    pub snapshots_elsewhere: u64,
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
            given_up: 0,
            snapshots_elsewhere: 0,
        }
    }

    /// Takes an accepted report received at `now`: counters, high-water mark, and a gap
    /// when reports are missing before it. Of a jump in the sequence, the snapshots the
    /// agent says it gave up are dropped; the rest went to another collector (a shard).
    pub fn take_report(&mut self, snapshot: &Snapshot, now: u64) {
        let restarted = snapshot.instance != self.instance;
        let (jump, given_up_before) = if restarted {
            (snapshot.seq.saturating_sub(1), 0)
        } else {
            (
                snapshot.seq.saturating_sub(self.last_seq.saturating_add(1)),
                self.given_up,
            )
        };
        let dropped = match snapshot.given_up {
            Some(n) => n.saturating_sub(given_up_before).min(jump),
            None => jump,
        };
        let elsewhere = jump - dropped;
        if self.last_interval_end_ns > 0
            && (restarted || jump > 0)
            && snapshot.interval_start_unix_ns > self.last_interval_end_ns
        {
            if self.gaps.len() == MAX_GAPS {
                self.gaps.remove(0);
            }
            self.gaps.push(xcbench_snapshot::history::AgentGap {
                from_unix_ns: self.last_interval_end_ns,
                to_unix_ns: snapshot.interval_start_unix_ns,
                dropped_snapshots: dropped,
                elsewhere_snapshots: elsewhere,
            });
        }
        if self.last_seq > 0 {
            self.restarts += u64::from(restarted);
            self.snapshots_dropped += dropped;
            self.snapshots_elsewhere += elsewhere;
        }
        self.given_up = snapshot.given_up.unwrap_or(0);
        self.identity = snapshot.agent.clone();
        self.instance = snapshot.instance;
        self.flows.clone_from(&snapshot.throughput_flows);
        self.last_seq = snapshot.seq;
        self.last_report_ns = now;
        self.last_interval_end_ns = self.last_interval_end_ns.max(snapshot.interval_end_unix_ns);
        self.responders.add(&snapshot.responders);
        self.sender.add(&snapshot.sender);
    }
}

//! The history API's contract, shared by the collector that answers it and every reader
//! (the gate's collector source, the judge): which series a query selects ([`Selection`],
//! with its one URL codec, [`Selection::to_pairs`] and [`Selection::from_pairs`]) and what a
//! query over a time range answers ([`HistoryAnswer`]), and the one answer several
//! collectors' answers make ([`HistoryAnswer::merge`], in `merge`).

mod merge;

pub use merge::MergeError;

use serde::{Deserialize, Serialize};

use crate::{
    Counters, Expected, Flow, Identity, Load, Metric, ProbeKind, Protocol, ThroughputOutcome,
};

/// Which series a query selects: every label given must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub src_agent: Option<String>,
    pub src_cloud: Option<String>,
    pub src_region: Option<String>,
    pub dst_agent: Option<String>,
    pub dst_cloud: Option<String>,
    pub dst_region: Option<String>,
    pub protocol: Option<Protocol>,
    pub kind: Option<ProbeKind>,
    pub load: Option<Load>,
}

impl Selection {
    /// The label names, in the order a query URL carries them.
    pub const LABELS: [&'static str; 9] = [
        "src_agent",
        "src_cloud",
        "src_region",
        "dst_agent",
        "dst_cloud",
        "dst_region",
        "protocol",
        "kind",
        "load",
    ];

    /// Whether the series of `source` probing `peer` over `protocol`, `kind`, `load` is
    /// selected.
    pub fn matches(
        &self,
        source: &Identity,
        peer: &Identity,
        protocol: Protocol,
        kind: ProbeKind,
        load: Load,
    ) -> bool {
        self.matches_test(source, peer, protocol)
            && self.kind.is_none_or(|k| k == kind)
            && self.load.is_none_or(|l| l == load)
    }

    /// The labels given, as (name, value) pairs: a query URL's parameters.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let values = [
            self.src_agent.clone(),
            self.src_cloud.clone(),
            self.src_region.clone(),
            self.dst_agent.clone(),
            self.dst_cloud.clone(),
            self.dst_region.clone(),
            self.protocol.map(|p| p.to_string()),
            self.kind.map(|k| k.to_string()),
            self.load.map(|l| l.to_string()),
        ];
        Self::LABELS
            .into_iter()
            .zip(values)
            .filter_map(|(name, v)| Some((name, v?)))
            .collect()
    }

    /// From a query's parameters (`get` answers a name's value): the inverse of
    /// [`Selection::to_pairs`]. A refused value names the label, the value and what was
    /// expected.
    pub fn from_pairs<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Selection, LabelRefused> {
        let text = |name: &str| get(name).map(str::to_owned);
        fn label<T: std::str::FromStr<Err = Expected>>(
            name: &'static str,
            v: Option<&str>,
        ) -> Result<Option<T>, LabelRefused> {
            v.map(|v| {
                v.parse().map_err(|e: Expected| LabelRefused {
                    name,
                    value: v.to_owned(),
                    expected: e.0,
                })
            })
            .transpose()
        }
        Ok(Selection {
            src_agent: text("src_agent"),
            src_cloud: text("src_cloud"),
            src_region: text("src_region"),
            dst_agent: text("dst_agent"),
            dst_cloud: text("dst_cloud"),
            dst_region: text("dst_region"),
            protocol: label("protocol", get("protocol"))?,
            kind: label("kind", get("kind"))?,
            load: label("load", get("load"))?,
        })
    }
}

/// A selection label's value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} = {value:?}: {expected}")]
pub struct LabelRefused {
    pub name: &'static str,
    pub value: String,
    pub expected: String,
}

/// A series a query matched, by its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesLabels {
    pub src_agent: String,
    pub src_cloud: String,
    pub src_region: String,
    pub dst_agent: String,
    pub dst_cloud: String,
    pub dst_region: String,
    pub protocol: Protocol,
    pub kind: ProbeKind,
    pub load: Load,
}

impl SeriesLabels {
    /// The labels of the series of `source` probing `peer`.
    pub fn of(
        source: &Identity,
        peer: &Identity,
        protocol: Protocol,
        kind: ProbeKind,
        load: Load,
    ) -> SeriesLabels {
        SeriesLabels {
            src_agent: source.id.to_string(),
            src_cloud: source.cloud.to_string(),
            src_region: source.region.clone(),
            dst_agent: peer.id.to_string(),
            dst_cloud: peer.cloud.to_string(),
            dst_region: peer.region.clone(),
            protocol,
            kind,
            load,
        }
    }
}

/// A latency threshold and the samples within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Within {
    pub threshold_ns: u64,
    /// Samples certainly at or below the threshold.
    pub at_most: u64,
    /// Samples whose HdrHistogram bucket straddles the threshold (within 0.1% or 512 ns of
    /// it): not known to be either side.
    pub straddling: u64,
}

/// One metric over the range, merged over the selected series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAnswer {
    pub metric: Metric,
    pub count: u64,
    pub sum_ns: u64,
    /// The merged HdrHistogram, V2 serialized, base64 (the snapshot's layout).
    pub hdr: String,
    /// (quantile, bucket's highest equivalent value in ns); 1.0 is the maximum.
    pub quantiles: Vec<(f64, u64)>,
    pub within: Vec<Within>,
}

/// One slot of the range, summed over the selected series: the series over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotPoint {
    pub start_ns: u64,
    pub slot_ns: u64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    /// Samples of the first metric asked for, and their exact sum.
    pub samples: u64,
    pub sum_ns: u64,
    /// Samples of that metric within the first threshold asked for (certain ones).
    pub within: u64,
}

/// A stretch with no data from an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentGap {
    pub from_unix_ns: u64,
    pub to_unix_ns: u64,
    /// Snapshots the agent dropped from its queue (its report sequence jumped); 0 when it
    /// restarted (a new instance) and the gap is the time it was down.
    pub dropped_snapshots: u64,
    /// Snapshots of the jump the agent did not give up: it reported them to another
    /// collector of a sharded mesh, whose history holds them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub elsewhere_snapshots: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An agent that measured a selected series, when the collector last heard from it, and
/// its gaps that overlap the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSeen {
    pub agent: String,
    pub last_report_unix_ns: u64,
    #[serde(default)]
    pub gaps: Vec<AgentGap>,
}

/// One direction of a scheduled throughput test whose agents, peer and protocol the
/// selection matches (probe kind and load do not apply), started inside the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSeen {
    /// The agent that ran the test, and its peer.
    pub src_agent: String,
    pub dst_agent: String,
    pub protocol: Protocol,
    pub flow: Flow,
    pub outcome: ThroughputOutcome,
    pub started_unix_ns: u64,
    /// Bytes delivered to the receiving application, over the receiver's counted time.
    pub receiver_bytes: u64,
    pub receiver_ns: u64,
}

/// One direction of scheduled tests an agent declares (its latest report's), whose agents,
/// peer and protocol the selection matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledSeen {
    pub src_agent: String,
    pub dst_agent: String,
    pub protocol: Protocol,
    pub flow: Flow,
    /// The schedule's period.
    pub every_ns: u64,
}

impl Selection {
    /// Whether a throughput test run by `source` toward `peer` over `protocol` is selected.
    pub fn matches_test(&self, source: &Identity, peer: &Identity, protocol: Protocol) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.src_agent, source.id.as_str())
            && is(&self.src_cloud, source.cloud.as_str())
            && is(&self.src_region, &source.region)
            && is(&self.dst_agent, peer.id.as_str())
            && is(&self.dst_cloud, peer.cloud.as_str())
            && is(&self.dst_region, &peer.region)
            && self.protocol.is_none_or(|p| p == protocol)
    }
}

/// What a history query answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryAnswer {
    /// The range asked for, and the span of the slots that answered it: only slots measured
    /// wholly inside the range count (the one holding `to` too when `to` is the collector's
    /// now), so the span can be shorter than the range by up to a slot at each end.
    pub from_unix_ns: u64,
    pub to_unix_ns: u64,
    pub covered_from_unix_ns: Option<u64>,
    pub covered_to_unix_ns: Option<u64>,
    pub series: Vec<SeriesLabels>,
    pub counters: Counters,
    pub metrics: Vec<MetricAnswer>,
    pub slots: Vec<SlotPoint>,
    pub clock_error_max_ns: Option<u64>,
    pub agents: Vec<AgentSeen>,
    #[serde(default)]
    pub tests: Vec<TestSeen>,
    /// Series the selection matches that held data in the day before the range (or one
    /// range's length, if longer) and none inside it: what a verdict on the others would
    /// leave out. Series under load (`bench`) come and go with the tests and are not listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiet: Vec<SeriesLabels>,
    /// The scheduled test directions the selection matches (when it names no probe kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled: Vec<ScheduledSeen>,
}

/// Quantiles every answer carries.
pub const ANSWER_QUANTILES: [f64; 8] = [0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 0.99999, 1.0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_travels_as_pairs_and_back() {
        let s = Selection {
            src_agent: Some("az-1".into()),
            dst_cloud: Some("oci".into()),
            protocol: Some(Protocol::Quic),
            kind: Some(ProbeKind::Rr),
            load: Some(Load::Bench),
            ..Selection::default()
        };
        let pairs = s.to_pairs();
        assert_eq!(
            pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
            ["src_agent", "dst_cloud", "protocol", "kind", "load"]
        );
        let back =
            Selection::from_pairs(|name| pairs.iter().find(|p| p.0 == name).map(|p| p.1.as_str()));
        assert_eq!(back, Ok(s));
        let refused = Selection::from_pairs(|name| (name == "kind").then_some("ping"));
        assert_eq!(refused.unwrap_err().name, "kind");
        assert_eq!(Selection::from_pairs(|_| None), Ok(Selection::default()));
    }
}

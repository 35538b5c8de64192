//! `mesh.toml` as serde reads it: every section and field, unknown ones refused, nothing
//! checked yet. The probe fields and `[mesh.schedule]` are the ones `agent.toml` has.

use serde::Deserialize;

use crate::config::raw::{RawProbe, RawSchedule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeshFile {
    pub(crate) mesh: RawMesh,
    pub(crate) azure: RawSide,
    pub(crate) oci: RawSide,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMesh {
    pub(crate) collector: Option<String>,
    /// The collector's certificate fingerprint (agents pin it for `https://`).
    pub(crate) collector_fingerprint: Option<String>,
    /// Several collectors (shards), instead of `collector`.
    pub(crate) collectors: Option<Vec<RawShard>>,
    /// Plain `http://` to a collector that is not on loopback, on purpose.
    pub(crate) plain_http: Option<bool>,
    pub(crate) report_interval: Option<String>,
    pub(crate) same_side: Option<bool>,
    /// Tests only: loopback addresses besides the private ranges.
    pub(crate) allow_loopback: Option<bool>,
    pub(crate) probe: Option<RawProbe>,
    pub(crate) schedule: Option<RawSchedule>,
}

/// One collector of `collectors`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShard {
    pub(crate) url: String,
    pub(crate) fingerprint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSide {
    pub(crate) address_space: Vec<String>,
    #[serde(default)]
    pub(crate) agents: Vec<RawMeshAgent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeshAgent {
    pub(crate) id: String,
    pub(crate) region: String,
    pub(crate) zone: Option<String>,
    pub(crate) address: String,
    pub(crate) quic_address: Option<String>,
    pub(crate) fingerprint: Option<String>,
    // The probe fields, as `[[peers]]` writes them out (see `RawPeer`).
    pub(crate) interval: Option<String>,
    pub(crate) payload_size: Option<i64>,
    pub(crate) dscp: Option<i64>,
    pub(crate) flows: Option<i64>,
    pub(crate) loss_timeout: Option<String>,
    pub(crate) protocols: Option<Vec<String>>,
    pub(crate) connect_interval: Option<String>,
    pub(crate) stamp_keys: Option<String>,
}

impl RawMeshAgent {
    pub(crate) fn probe(&self) -> RawProbe {
        RawProbe {
            interval: self.interval.clone(),
            payload_size: self.payload_size,
            dscp: self.dscp,
            flows: self.flows,
            loss_timeout: self.loss_timeout.clone(),
            protocols: self.protocols.clone(),
            connect_interval: self.connect_interval.clone(),
            stamp_keys: self.stamp_keys.clone(),
        }
    }
}

//! `agent.toml` as serde reads it: every section and field, unknown ones refused, nothing
//! checked yet (no `#[serde(flatten)]`: it would hide where a bad key or value is). The typed values are built from these in the sibling modules.

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgentConfig {
    pub(crate) agent: RawIdentity,
    pub(crate) reflector: Option<RawReflector>,
    pub(crate) bench: Option<RawBench>,
    pub(crate) collector: Option<RawCollector>,
    pub(crate) tls: Option<RawTls>,
    pub(crate) probe_defaults: Option<RawProbe>,
    #[serde(default)]
    pub(crate) peers: Vec<RawPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    pub(crate) id: String,
    /// Required unless `mesh` is set.
    pub(crate) cloud: Option<String>,
    /// Required unless `cloud = "auto"`.
    pub(crate) region: Option<String>,
    pub(crate) zone: Option<String>,
    #[serde(default)]
    pub(crate) timestamps: Option<String>,
    pub(crate) clock_error: Option<String>,
    /// With `cloud = "auto"` only.
    pub(crate) metadata_url: Option<String>,
    /// A mesh file's path or URL, instead of `[[peers]]`.
    pub(crate) mesh: Option<String>,
    /// The collector's fingerprint, for an `https://` mesh URL.
    pub(crate) mesh_fingerprint: Option<String>,
    /// Plain `http://` to a collector that is not on loopback, on purpose.
    pub(crate) plain_http: Option<bool>,
    /// A directory where snapshots wait on disk until the collector takes them.
    pub(crate) spool: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReflector {
    pub(crate) listen: Vec<String>,
    pub(crate) max_sessions: Option<i64>,
    pub(crate) max_rate_per_source: Option<i64>,
    pub(crate) max_rate: Option<i64>,
    pub(crate) tcp: Option<bool>,
    pub(crate) quic: Option<bool>,
    pub(crate) stamp_keys: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBench {
    pub(crate) enabled: Option<bool>,
    pub(crate) max_duration: Option<String>,
    pub(crate) max_streams: Option<i64>,
    pub(crate) max_udp_rate: Option<String>,
    #[serde(default)]
    pub(crate) allow: Vec<String>,
    pub(crate) schedule: Option<RawSchedule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    pub(crate) every: String,
    pub(crate) duration: Option<String>,
    pub(crate) omit: Option<String>,
    pub(crate) protocols: Option<Vec<String>>,
    pub(crate) direction: Option<String>,
    pub(crate) streams: Option<i64>,
    pub(crate) udp_rate: Option<String>,
    pub(crate) max_rate: Option<String>,
    #[serde(default)]
    pub(crate) peers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) dir: Option<String>,
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) ca: Option<String>,
    #[serde(default)]
    pub(crate) allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCollector {
    pub(crate) url: String,
    pub(crate) report_interval: Option<String>,
    pub(crate) fingerprint: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    pub(crate) interval: Option<String>,
    pub(crate) payload_size: Option<i64>,
    pub(crate) dscp: Option<i64>,
    pub(crate) flows: Option<i64>,
    pub(crate) loss_timeout: Option<String>,
    pub(crate) protocols: Option<Vec<String>>,
    pub(crate) connect_interval: Option<String>,
    pub(crate) stamp_keys: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeer {
    pub(crate) id: String,
    pub(crate) cloud: String,
    pub(crate) region: String,
    pub(crate) zone: Option<String>,
    pub(crate) address: String,
    pub(crate) quic_address: Option<String>,
    pub(crate) fingerprint: Option<String>,
    // The probe fields, written out rather than `#[serde(flatten)]`: serde then names the
    // valid keys of an unknown one, and a wrong type is placed at its key, not its table.
    pub(crate) interval: Option<String>,
    pub(crate) payload_size: Option<i64>,
    pub(crate) dscp: Option<i64>,
    pub(crate) flows: Option<i64>,
    pub(crate) loss_timeout: Option<String>,
    pub(crate) protocols: Option<Vec<String>>,
    pub(crate) connect_interval: Option<String>,
    pub(crate) stamp_keys: Option<String>,
}

impl RawPeer {
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

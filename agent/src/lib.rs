//! xcbench agent: everything that runs on an Azure VM or an OCI instance. It answers STAMP,
//! TCP and QUIC probes (the responder side), probes its peers over the same transports,
//! records every latency in HdrHistograms and reports deltas to the collector every interval;
//! it answers throughput tests and runs scheduled ones, recording probes under load apart.
//!
//! # Layout
//! - [`wire`]: STAMP packets, the TCP/QUIC request framing and throughput-test control,
//!   pure encode/decode.
//! - [`probe`]: sans-IO probers and responders (the [`probe::Probe`] trait), and throughput
//!   tests' decisions: checked requests, limits, meters, pacing, results, schedule.
//! - [`net`]: the only sockets and clocks: one drive loop for every prober, the responders,
//!   QUIC (one endpoint, dispatch by ALPN), throughput tests (TCP, UDP, QUIC; one-shot and
//!   scheduled).
//! - [`agent`]: [`Agent`], binding and running all of it as small named steps.
//! - [`record`]: histograms and counters per series and load; scheduled tests' results;
//!   snapshot deltas.
//! - [`report`]: the snapshot queue and its delivery to the collector.
//! - [`config`]: `agent.toml` into typed values; every default in [`config::defaults`].
//! - [`tls`]: the agent's key pair, fingerprints, and peer trust for QUIC.

//!
//! The `net` feature (on by default) brings `agent`, `config`, `net`, `report` and `tls` and
//! their dependencies; without it the crate is `wire`, `probe` and `record` only, sans-IO by
//! construction.

#[cfg(feature = "net")]
pub mod agent;
#[cfg(feature = "net")]
pub mod config;
#[cfg(feature = "net")]
pub mod net;
pub mod probe;
pub mod record;
#[cfg(feature = "net")]
pub mod report;
#[cfg(feature = "net")]
pub mod tls;
pub mod wire;

#[cfg(feature = "net")]
pub use agent::{run, Agent, AgentError};
#[cfg(feature = "net")]
pub use config::{AgentConfig, ConfigError, PeerConfig};

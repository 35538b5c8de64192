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
//! - [`tls`]: key pairs, fingerprints, the rustls configurations of QUIC and HTTPS, peer
//!   trust, and whom the collector admits.
//!
//! Features: `config` brings `config` and `tls` (what the collector takes: no sockets);
//! `http` adds the one HTTP client builder (`http`, which the collector's remote write
//! uses too); `net` (on by default) adds `net`, `report` and `agent`. Without either the crate is
//! `wire`, `probe` and `record` only, sans-IO by construction.

#[cfg(feature = "net")]
pub mod agent;
#[cfg(feature = "config")]
pub mod config;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "net")]
pub mod net;
pub mod probe;
pub mod record;
#[cfg(feature = "net")]
pub mod report;
#[cfg(feature = "config")]
pub mod tls;
pub mod wire;

#[cfg(feature = "net")]
pub use agent::{resolve, run, Agent, AgentError};
#[cfg(feature = "config")]
pub use config::{AgentConfig, ConfigError, PeerConfig, Resolved};

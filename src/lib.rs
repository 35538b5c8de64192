//! The `xcbench` package: one thin binary (`src/main.rs`) over the agent and collector
//! libraries, plus the demo that composes them.
//!
//! # Layout
//! - [`bench`]: `xcbench bench`, a one-shot throughput test against a peer agent.
//! - [`demo`]: `xcbench demo`, two loopback agents and a collector in one process.
//! - [`lab`]: `xcbench lab`, an emulated interconnect in network namespaces (Linux, root).
//! - `agent/` (crate `xcbench_agent`): probes, reflector, recorder, reporter.
//! - `collector/` (crate `xcbench_collector`): ingest, store, `/metrics`.
//! - `snapshot/` (crate `xcbench_snapshot`): the agent-to-collector format.

pub mod bench;
pub mod demo;
pub mod lab;

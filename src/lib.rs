//! The `xcbench` package: one thin binary (`src/main.rs`, `src/commands/`) over the agent, collector and lab
//! libraries, plus the demo that composes them and what a person reads.
//!
//! # Layout
//! - `src/main.rs`: parse, tracing, the exit code; `src/cli.rs`: the command line;
//!   `src/commands/`: one module per subcommand.
//! - [`demo`]: `xcbench demo`, two loopback agents and a collector in one process.
//! - [`gate`]: `xcbench gate`: an SLO file judged from a source (the collector's history).
//! - [`slo`]: `xcbench slo rules`: an SLO file as Prometheus recording rules and alerts.
//! - [`service`]: systemd's notify protocol (readiness, watchdog, stopping).
//! - [`preflight`]: `xcbench preflight`: addresses, ports, path MTU and the rules to open.
//! - [`output`]: the demo's table, the throughput test's lines, table and JSON, the gate's
//!   table, JUnit and GitHub Actions output.
//! - `slo/` (crate `xcbench_slo`): the SLO file, exact bounds, verdicts (sans-IO).
//! - `agent/` (crate `xcbench_agent`): probes, responders, recorder, reporter, throughput
//!   tests (the client `xcbench bench` runs is `xcbench_agent::net::throughput::Client`).
//! - `collector/` (crate `xcbench_collector`): ingest, store, `/metrics`.
//! - `lab/` (crate `xcbench_lab`): `xcbench lab`, an emulated interconnect in network
//!   namespaces (Linux, root).
//! - `snapshot/` (crate `xcbench_snapshot`): the agent-to-collector format.

pub mod demo;
pub mod gate;
pub mod output;
pub mod preflight;
pub mod service;
pub mod slo;

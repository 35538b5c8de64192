//! The end-to-end tests: one test binary (`cargo test --test e2e`; a module's tests with
//! `cargo test --test e2e lab::`), the real `xcbench` binary as child processes, and the
//! harness in [`support`]. One binary links once and lets libtest run tests of different
//! modules side by side; each test first takes its turn from `support::machine`: the lab
//! cases run alone, the rest beside each other.

// Tests wait on real time: they read std::time::Instant freely.
#![allow(clippy::disallowed_methods)]

// `xcbench bench` on loopback: both ends' byte counts, refusals, limits, a lost peer.
mod bench;
// The agents' channel to the collector: mutual TLS, each agent only in its own name.
mod channel;
// The binary's contract: exit codes, error messages, the demo's output, the sample configs.
mod cli;
// Bad configuration through the binary: exit 2, one line naming the file and the field; an
// agent without a collector shows it is at work.
mod config_errors;
// Random mutations of every config file through the real loaders (and a few through the
// binary): a configuration or a one-line error naming the file and a field, within a second.
mod config_fuzz;
// The deploy scripts with stand-in az and oci; the cloud-init they render.
mod deploy;
// The Grafana dashboards: every query executed against a real Prometheus; the schema.
mod dashboards;
// The user guide against the code: docs/development.md's Layout names every directory and
// module, and every path it names exists.
mod docs;
// `xcbench gate` on a live loopback pair: verdicts, exit codes, outputs, bad input.
mod gate;
// Interop with stamp-suite, a third-party STAMP implementation.
mod interop;
// xcbench held to the lab emulator's ground truth (root only).
mod lab;
// Two agents and a collector on loopback; promtool, a real Prometheus, bad input.
mod loopback;
// The mesh file: `xcbench mesh check`; agents taking their peers from the collector's mesh
// and following its changes without a restart.
mod mesh;
// `cloud = "auto"`: labels from a loopback Azure IMDS or OCI IMDSv2; no service at all.
mod metadata;
// `xcbench preflight` on loopback: ready, closed, public.
mod preflight;
// Remote write into Debian's Prometheus and VictoriaMetrics, compared sample for sample.
mod remote_write;
// Deployment: systemd's notify protocol; the Debian package, installed (root) and its units.
mod service;
// Sharded collectors: two judged together as one holding every snapshot; a shared store.
mod shards;
// Two agents in network namespaces joined by a veth pair (root only).
mod netns;
// `xcbench slo rules`: promtool checks the rules and runs their unit tests.
mod slo_rules;
// The harness: processes, ports, HTTP, metrics, TLS, namespaces, agents.
mod support;

//! The `xcbench` package: one thin binary (`src/main.rs`) over the agent, collector and lab
//! libraries, plus the demo that composes them.
//!
//! # Layout
//! - [`bench`]: `xcbench bench`, a one-shot throughput test against a peer agent.
//! - [`demo`]: `xcbench demo`, two loopback agents and a collector in one process.
//! - `agent/` (crate `xcbench_agent`): probes, reflector, recorder, reporter.
//! - `collector/` (crate `xcbench_collector`): ingest, store, `/metrics`.
//! - `lab/` (crate `xcbench_lab`): `xcbench lab`, an emulated interconnect in network
//!   namespaces (Linux, root).
//! - `snapshot/` (crate `xcbench_snapshot`): the agent-to-collector format.

pub mod bench;
pub mod demo;

/// Compares `text` with tests/golden/NAME; `XCBENCH_UPDATE_GOLDEN=1` rewrites the file after
/// a review.
#[cfg(test)]
pub(crate) fn check_golden(name: &str, text: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("XCBENCH_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let want =
        std::fs::read_to_string(&path).expect("golden file; XCBENCH_UPDATE_GOLDEN=1 writes it");
    assert_eq!(
        text, want,
        "{name} changed; review, then XCBENCH_UPDATE_GOLDEN=1"
    );
}

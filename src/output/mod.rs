//! What a person reads: the demo's table, the throughput test's lines, table and JSON, the
//! gate's table, JUnit XML, GitHub Actions output and HTML report, `xcbench mesh check`'s
//! report and preflight's.
//! Golden files in `tests/golden/` pin each (`XCBENCH_UPDATE_GOLDEN=1` rewrites them after a
//! review).

pub mod bench;
pub mod demo;
pub mod gate;
pub mod mesh;
pub mod preflight;
pub mod report;

/// Compares `text` with tests/golden/NAME.
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

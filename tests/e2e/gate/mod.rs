//! `xcbench gate` against a real collector fed by two loopback agents: verdicts and exit
//! codes (0 pass, 1 fail, 3 inconclusive), the JSON, JUnit and GitHub Actions outputs; and
//! bad input: malformed SLO files (2), a selection that matches nothing (inconclusive, not
//! pass), an unreachable collector (4).
//!
//! # Layout
//! - this file: running the gate; the objectives that must pass, fail or be inconclusive.
//! - `pair`: verdicts, exit codes and outputs (JSON, JUnit, GitHub, HTML in Chromium).
//! - `bad_input`: malformed SLO files, a selection that matches nothing, no collector.
//! - `collector`: the collector's exact threshold counts and verdicts for /metrics.
//! - `prometheus`: a real Prometheus and the collector judging the same run.
//! - `measure`: `--measure`: the gate probing the peers itself.

mod bad_input;
mod collector;
mod measure;
mod pair;
mod prometheus;

use std::process::{Command, Output};

use crate::support::proc::bin;

pub(crate) fn gate(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    // The test may itself run under GitHub Actions: only what the case sets applies.
    let out: Output = Command::new(bin())
        .arg("gate")
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .envs(env.iter().copied())
        .output()
        .expect("run xcbench gate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Objectives over the last 6 s of a loopback pair probing every 5 ms (about 1,200
/// probes per direction): two that must pass, one that must fail (no loopback round trip
/// takes 1 us), two that must be inconclusive.
pub(crate) const PASS: &str = r#"  - name: loss
    indicator: loss
    at_most: 5%
  - name: rtt-p99
    indicator: rtt
    quantile: p99
    at_most: 50ms
"#;
pub(crate) const FAIL: &str = r#"  - name: rtt-p50-1us
    indicator: rtt
    quantile: p50
    at_most: 1us
"#;
const INCONCLUSIVE: &str = r#"  - name: too-few
    indicator: loss
    at_most: 5%
    min_probes: 1000000
  - name: nobody
    indicator: rtt
    select: { src_agent: nobody }
    quantile: p99
    at_most: 50ms
"#;

/// History slots of 1 s for the collectors these tests judge: a window of a few seconds
/// reads only slots measured wholly inside it, so the default 10 s slots would leave it
/// nearly empty.
pub(crate) const ONE_SECOND_SLOTS: &str = "history = [{ slot = \"1s\", keep = \"1h\" }]\n";

/// An SLO file of `objectives` over the last 8 s; `min_coverage: 75%` because such a short
/// window loses its first 1 s slot (a report measured from before it) and, while the agents
/// report, up to one report interval at its end.
pub(crate) fn slo(objectives: &[&str]) -> String {
    format!(
        "defaults:\n  window: 8s\n  min_coverage: 75%\n  select: {{ src_cloud: azure, dst_cloud: oci }}\nobjectives:\n{}",
        objectives.concat()
    )
}

fn verdicts(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).expect("gate JSON");
    v["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

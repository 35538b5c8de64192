//! xcbench's Grafana dashboards, generated: each dashboard is one description in Rust (what
//! each panel shows and how it is computed), rendered to the classic JSON model that
//! Grafana's file provisioning loads. The JSON under `dashboards/grafana/` is this crate's
//! output, checked in so users need no build; a test fails when it differs from what the
//! descriptions render (`XCBENCH_UPDATE_GOLDEN=1 cargo test -p xcbench-dashboards` rewrites
//! it), so repeated panels cannot drift apart.
//!
//! # Layout
//! - [`model`]: panels, targets, variables, annotations, and their rendering (layout included)
//! - [`query`]: the PromQL the descriptions share (selections, quantiles, ratios)
//! - `overview`, `pair`, `throughput`, `slo`, `fleet`: one dashboard each
//! - `lint` (tests): the conventions every shipped dashboard keeps

pub mod model;
pub mod query;

mod fleet;
mod overview;
mod pair;
mod slo;
mod throughput;

#[cfg(test)]
mod lint;

use model::Dashboard;

/// The folder (under `dashboards/`) the rendered JSON lives in.
pub const DIR: &str = "grafana";

/// Every dashboard, overview first.
pub fn all() -> Vec<Dashboard> {
    vec![
        overview::dashboard(),
        pair::dashboard(),
        throughput::dashboard(),
        slo::dashboard(),
        fleet::dashboard(),
    ]
}

/// A dashboard's file text: pretty JSON with a final newline.
pub fn render(d: &Dashboard) -> String {
    let mut text = serde_json::to_string_pretty(&d.render()).expect("JSON values serialise");
    text.push('\n');
    text
}

/// Its file name under [`DIR`].
pub fn file_name(d: &Dashboard) -> String {
    format!("{}.json", d.uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DIR)
    }

    /// The checked-in JSON is what the descriptions render, file for file, and nothing else
    /// is in the folder.
    #[test]
    fn checked_in_json_is_the_generators_output() {
        let update = std::env::var_os("XCBENCH_UPDATE_GOLDEN").is_some();
        let dir = dir();
        if update {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let mut expected = Vec::new();
        for d in all() {
            let name = file_name(&d);
            let path = dir.join(&name);
            let text = render(&d);
            if update {
                std::fs::write(&path, &text).unwrap();
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "dashboards/{DIR}/{name} differs from what its description renders; review, then XCBENCH_UPDATE_GOLDEN=1 cargo test -p xcbench-dashboards"
            );
            expected.push(name);
        }
        let mut present: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        present.sort();
        expected.sort();
        assert_eq!(
            present, expected,
            "dashboards/{DIR} holds only generated dashboards"
        );
    }

    /// The example Prometheus config and the Grafana provisioning agree: the datasource's
    /// timeInterval is the scrape interval ($__rate_interval depends on it), the provider
    /// loads this folder, and the rule files named are shipped.
    #[test]
    fn provisioning_and_the_example_prometheus_agree() {
        let read = |p: &str| -> serde_yaml_ng::Value {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p);
            serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let prom = read("prometheus.yml");
        let ds = read("provisioning/datasources/xcbench.yaml");
        let boards = read("provisioning/dashboards/xcbench.yaml");
        assert_eq!(
            ds["datasources"][0]["jsonData"]["timeInterval"],
            prom["global"]["scrape_interval"]
        );
        assert_eq!(ds["datasources"][0]["type"].as_str(), Some("prometheus"));
        let path = boards["providers"][0]["options"]["path"].as_str().unwrap();
        assert!(path.ends_with(&format!("/dashboards/{DIR}")), "{path}");
        let rules: Vec<&str> = prom["rule_files"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(rules.contains(&"/usr/share/xcbench/dashboards/xcbench.rules.yml"));
        assert!(dir().join("../xcbench.rules.yml").is_file());
    }

    #[test]
    fn uids_are_unique_and_short() {
        let mut seen = std::collections::BTreeSet::new();
        for d in all() {
            assert!(
                d.uid.len() <= 40,
                "{}: Grafana uids are at most 40 characters",
                d.uid
            );
            assert!(seen.insert(d.uid.clone()), "{} twice", d.uid);
        }
    }
}

//! The metrics and labels a dashboard may read: label names per sample name from the
//! collector's golden `/metrics` (each family of its catalog), and the shipped recording
//! rules with the labels their expressions leave.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use promql_parser::parser;
use xcbench_snapshot::metrics::{self as catalog, Kind};

use super::promql::labels_of;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Label names per sample name, from the collector's golden `/metrics` and the rules.
pub(super) struct Known {
    pub(super) labels: BTreeMap<String, BTreeSet<String>>,
    pub(super) counters: BTreeSet<String>,
}

impl Known {
    pub(super) fn load() -> Known {
        let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let golden = std::fs::read_to_string(repo("collector/tests/golden/metrics.txt")).unwrap();
        for line in golden
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (name, rest) = match line.find(['{', ' ']) {
                Some(i) => line.split_at(i),
                None => continue,
            };
            let set = labels.entry(name.to_owned()).or_default();
            if let Some(body) = rest.strip_prefix('{').and_then(|r| r.split('}').next()) {
                for pair in body.split("\",") {
                    if let Some((k, _)) = pair.split_once('=') {
                        set.insert(k.trim_start_matches(',').to_owned());
                    }
                }
            }
        }
        let mut counters = BTreeSet::new();
        for def in catalog::ALL {
            let name = def.name();
            let own: Vec<String> = match def.kind() {
                Kind::Counter => vec![name.to_owned()],
                Kind::Gauge => vec![],
                Kind::Histogram => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect(),
                Kind::Summary => ["_sum", "_count"]
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect(),
            };
            counters.extend(own);
            let sample = match def.kind() {
                Kind::Histogram => format!("{name}_bucket"),
                _ => name.to_owned(),
            };
            assert!(
                labels.contains_key(&sample),
                "{sample}: not in the golden /metrics"
            );
        }
        // The recording rules, in file order: the labels their expressions leave, plus the
        // ones the rule sets.
        let mut known = Known { labels, counters };
        for file in ["dashboards/xcbench.rules.yml", "tests/golden/slo_rules.yml"] {
            let text = std::fs::read_to_string(repo(file)).unwrap();
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
            for g in v["groups"].as_sequence().unwrap() {
                for r in g["rules"].as_sequence().unwrap() {
                    let Some(name) = r["record"].as_str() else {
                        continue;
                    };
                    let expr = r["expr"].as_str().unwrap();
                    let mut problems = Vec::new();
                    let ast = parser::parse(expr).unwrap();
                    let mut set = labels_of(&known, &ast, name, &mut problems)
                        .unwrap_or_else(|| panic!("{file} {name}: labels unknown"));
                    assert!(problems.is_empty(), "{file}: {problems:?}");
                    if let Some(extra) = r["labels"].as_mapping() {
                        set.extend(extra.keys().filter_map(|k| k.as_str().map(str::to_owned)));
                    }
                    known.labels.insert(name.to_owned(), set);
                }
            }
        }
        known
    }
}

//! The metrics and labels a dashboard may read: label names per sample name from the
//! collector's golden `/metrics` (each family of its catalog; a histogram also under its
//! bare name, as a native histogram without `le`); the shipped recording rules with the
//! labels their expressions leave are added by `promql`'s `Known::load`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use xcbench_snapshot::metrics::{self as catalog, Kind};

pub(super) fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Label names per sample name, from the collector's golden `/metrics` and the rules.
pub(super) struct Known {
    pub(super) labels: BTreeMap<String, BTreeSet<String>>,
    pub(super) counters: BTreeSet<String>,
}

impl Known {
    /// What the collector serves: label names per sample from its golden `/metrics`, and
    /// the catalog's counters. [`Known::load`] adds the recording rules.
    pub(super) fn served() -> Known {
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
                // The bare name: the native histogram of a store the collector
                // remote-writes them into (counts too: read through rate or increase).
                Kind::Histogram => ["_bucket", "_sum", "_count", ""]
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
            if def.kind() == Kind::Histogram {
                let mut native = labels[&sample].clone();
                native.remove("le");
                labels.insert(name.to_owned(), native);
            }
        }
        Known { labels, counters }
    }
}

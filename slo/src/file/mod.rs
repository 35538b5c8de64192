//! The SLO file: YAML in xcbench's own format, or OpenSLO v1 documents whose metric source
//! is `xcbench` ([`openslo`]), parsed once into checked [`Objective`]s. Errors name the
//! file, the field, the value and what was expected, e.g.
//! `slo.yaml: objectives[2].at_most = "5x": must be a duration from 1us to 60s, e.g. 2ms`.
//!
//! ```yaml
//! version: 1
//! defaults:            # every objective's unless it says otherwise
//!   window: 1h         # or { from: 2026-11-30T18:00:00Z, to: 2026-11-30T19:00:00Z }
//!   confidence: 95%
//!   family: holm       # the gate's fail at 95% as a whole (Holm), not each objective's
//!   select: { src_cloud: azure, dst_cloud: oci }
//! objectives:
//!   - name: db-rtt-p99
//!     indicator: rtt   # protocol udp, kind stamp unless select says otherwise
//!     quantile: p99
//!     at_most: 2ms
//! ```

mod node;
pub mod openslo;
mod settle;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;
use xcbench_snapshot::config_text::ConfigError;
use xcbench_snapshot::Metric;

use crate::objective::{Comparison, Indicator, Judging, Objective, Select, Window};
use node::{with_child, Node, Path};
use settle::{parse_comparison, parse_judging, parse_select, settle, JUDGING_KEYS};

/// Every default of the SLO file, written once (the sample file shows them).
pub mod defaults {
    use std::time::Duration;

    pub const WINDOW: Duration = Duration::from_secs(3_600);
    pub const CONFIDENCE: f64 = 0.95;
    pub const MIN_PROBES: u64 = 100;
    pub const MAX_REPORT_AGE: Duration = Duration::from_secs(60);
    pub const MIN_COVERAGE: f64 = 0.9;
    pub const MAX_SKIPPED: f64 = 0.01;
    pub const MAX_CLOCK_ERROR: f64 = 0.1;
    pub const KEY: bool = true;
}

/// The judging settings when the file says nothing.
pub fn default_judging() -> Judging {
    Judging {
        confidence: defaults::CONFIDENCE,
        min_probes: defaults::MIN_PROBES,
        max_report_age: defaults::MAX_REPORT_AGE,
        min_coverage: defaults::MIN_COVERAGE,
        max_clock_error: defaults::MAX_CLOCK_ERROR,
        min_rate: None,
        max_skipped: defaults::MAX_SKIPPED,
    }
}

/// Which format a file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xcbench,
    OpenSlo,
}

/// A whole, checked SLO file.
#[derive(Debug, Clone, PartialEq)]
pub struct SloFile {
    pub format: Format,
    pub objectives: Vec<Objective>,
    /// How the key objectives' fails combine into the gate's (`family:` in the defaults).
    pub family: crate::judge::Family,
    /// OpenSLO documents left out, and why (another metric source, say).
    pub skipped: Vec<String>,
}

impl SloFile {
    /// The latency thresholds of its objectives, per metric: what the collector's store
    /// counts exactly (an increase under load has none: its threshold is over a baseline).
    pub fn thresholds(&self) -> BTreeMap<Metric, Vec<u64>> {
        let mut out: BTreeMap<Metric, Vec<u64>> = BTreeMap::new();
        for o in &self.objectives {
            if let (Some(metric), Some(t)) = (o.indicator.metric(), o.threshold_ns()) {
                if o.indicator != Indicator::RttIncreaseUnderLoad {
                    out.entry(metric).or_default().push(t);
                }
            }
        }
        out
    }
}

const TOP_KEYS: [&str; 3] = ["version", "defaults", "objectives"];
const DEFAULTS_KEYS: [&str; 12] = [
    "window",
    "baseline",
    "family",
    "confidence",
    "min_probes",
    "max_report_age",
    "min_coverage",
    "max_clock_error",
    "min_rate",
    "max_skipped",
    "key",
    "select",
];
const OBJECTIVE_KEYS: [&str; 19] = [
    "name",
    "baseline",
    "no_worse_than",
    "description",
    "select",
    "indicator",
    "direction",
    "quantile",
    "at_most",
    "at_least",
    "key",
    "window",
    "confidence",
    "min_probes",
    "max_report_age",
    "min_coverage",
    "max_clock_error",
    "min_rate",
    "max_skipped",
];

/// Largest SLO file read (bytes): far above any real one (1,000 objectives fit), small
/// enough that parsing junk stays fast.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of flow collections (`[`, `{`) an SLO file may have: the formats need two
/// or three, and the YAML parser's time grows with the square of it (100,000 deep took
/// seconds), so deeper is refused before parsing.
pub const MAX_NESTING: usize = 32;
/// Most objectives in one file.
pub const MAX_OBJECTIVES: usize = 1_000;

impl SloFile {
    /// Reads and parses a file; errors name it. No more than [`MAX_FILE_BYTES`] is read
    /// (a larger file, or a device that never ends, is refused).
    pub fn load(path: &std::path::Path) -> Result<SloFile, ConfigError> {
        use std::io::Read;
        let file = path.display().to_string();
        let unread = |e: std::io::Error| ConfigError::Read {
            file: file.clone(),
            message: e.to_string(),
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(unread)?
            .take(MAX_FILE_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .map_err(unread)?;
        if text.len() > MAX_FILE_BYTES {
            let size = std::fs::metadata(path).map_or(text.len() as u64, |m| m.len());
            return Err(too_large(&file, size.max(text.len() as u64)));
        }
        SloFile::parse(&file, &text)
    }

    /// Parses YAML text; `file` names the source in errors. What an error echoes of the
    /// input is cut short (`xcbench_snapshot::config_text::ECHO_CHARS`).
    pub fn parse(file: &str, text: &str) -> Result<SloFile, ConfigError> {
        SloFile::parse_text(file, text).map_err(node::capped)
    }

    fn parse_text(file: &str, text: &str) -> Result<SloFile, ConfigError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(too_large(file, text.len() as u64));
        }
        node::check_nesting(file, text, MAX_NESTING)?;
        let mut docs = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let v = Value::deserialize(doc).map_err(|e| yaml_error(file, text, &e))?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        let Some(first) = docs.first() else {
            return Err(ConfigError::Syntax {
                file: file.to_owned(),
                message: "empty: expected objectives (xcbench format) or OpenSLO documents"
                    .to_owned(),
            });
        };
        if first.get("apiVersion").is_some() {
            return openslo::parse(file, &docs);
        }
        if docs.len() > 1 {
            return Err(ConfigError::Syntax {
                file: file.to_owned(),
                message: format!(
                    "{} YAML documents: the xcbench format is one document (several are read as OpenSLO, which starts with apiVersion)",
                    docs.len()
                ),
            });
        }
        parse_xcbench(file, first)
    }
}

/// The YAML parser's error, placed: its line (and column) when the message lacks it; a key
/// given twice named as a field.
fn yaml_error(file: &str, text: &str, e: &serde_yaml_ng::Error) -> ConfigError {
    let message = e.to_string();
    let located = message.contains(" line ") || e.location().is_some();
    if let Some(key) = message
        .strip_prefix("duplicate entry with key ")
        .filter(|_| !located)
    {
        let key = key.trim_matches('"');
        // The key's second line, where it is given again (the parser does not say).
        let line = text
            .lines()
            .enumerate()
            .filter(|(_, l)| {
                let l = l.trim_start().trim_start_matches("- ");
                l.strip_prefix(key)
                    .or_else(|| l.strip_prefix(&format!("{key:?}")))
                    .is_some_and(|rest| rest.starts_with(':'))
            })
            .nth(1)
            .map(|(i, _)| format!(" (line {})", i + 1))
            .unwrap_or_default();
        return ConfigError::Field {
            file: file.to_owned(),
            field: key.to_owned(),
            value: "(given twice)".to_owned(),
            expected: format!("must be given once in its mapping{line}"),
        };
    }
    let message = match (message.contains(" line "), e.location()) {
        (false, Some(at)) => format!("{message} at line {} column {}", at.line(), at.column()),
        _ => message,
    };
    ConfigError::Syntax {
        file: file.to_owned(),
        message,
    }
}

fn too_large(file: &str, bytes: u64) -> ConfigError {
    ConfigError::Syntax {
        file: file.to_owned(),
        message: format!(
            "{bytes} bytes: larger than the {MAX_FILE_BYTES} bytes an SLO file may have"
        ),
    }
}

fn parse_xcbench(file: &str, doc: &Value) -> Result<SloFile, ConfigError> {
    let root = Node::root(doc, file);
    root.fields(&TOP_KEYS)?;
    with_child(&root, "version", |v| match v.value.as_u64() {
        Some(1) => Ok(()),
        _ => Err(v.err("must be 1")),
    })?;
    let mut base_select = Select::default();
    let mut base_judging = default_judging();
    let mut base_window = Window::Last(defaults::WINDOW);
    let mut base_key = defaults::KEY;
    let mut family = crate::judge::Family::default();
    let mut base_baseline = None;
    with_child(&root, "defaults", |d| {
        d.fields(&DEFAULTS_KEYS)?;
        base_baseline = with_child(&d, "baseline", settle::parse_baseline)?;
        if let Some(f) = with_child(&d, "family", |f| {
            match f.text().as_deref() {
            Some("none") => Ok(crate::judge::Family::PerObjective),
            Some("holm") => Ok(crate::judge::Family::Holm),
            _ => Err(f.err("must be none (each objective at its confidence) or holm (the gate's fail at that confidence as a whole)")),
        }
        })? {
            family = f;
        }
        (base_judging, base_window) = parse_judging(&d, base_judging, base_window)?;
        if let Some(k) = with_child(&d, "key", |k| k.bool())? {
            base_key = k;
        }
        if let Some(s) = with_child(&d, "select", |s| parse_select(s, &Select::default()))? {
            base_select = s;
        }
        Ok(())
    })?;
    let list = with_child(&root, "objectives", |o| o.list().map(<[Value]>::to_vec))?
        .ok_or_else(|| root.missing("objectives", "a list of objectives"))?;
    if list.is_empty() || list.len() > MAX_OBJECTIVES {
        let path = root.child_path("objectives");
        return Err(path
            .node(doc.get("objectives").unwrap_or(doc), file)
            .err(format!("must list 1 to {MAX_OBJECTIVES} objectives")));
    }
    let mut objectives: Vec<Objective> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let path = Path::indexed("objectives", i);
        let n = path.node(v, file);
        n.fields(&OBJECTIVE_KEYS)?;
        let name = with_child(&n, "name", parse_name)?
            .ok_or_else(|| n.missing("name", "every objective needs a name"))?;
        if objectives.iter().any(|o| o.name == name) {
            let p = n.child_path("name");
            return Err(p
                .node(n.get("name").unwrap_or(v), file)
                .err("must be unique: another objective has this name"));
        }
        let description = with_child(&n, "description", |c| c.string("must be a string"))?;
        let select = with_child(&n, "select", |s| parse_select(s, &base_select))?
            .unwrap_or_else(|| base_select.clone());
        // A load in the defaults does not bind indicators that choose their own.
        let load_given = n.get("select").and_then(|s| s.get("load")).is_some();
        let ind_path = n.child_path("indicator");
        let ind = ind_path.node(
            n.get("indicator").ok_or_else(|| {
                n.missing(
                    "indicator",
                    format!("one of {}", Indicator::NAMES.join(", ")),
                )
            })?,
            file,
        );
        let dir_path = n.child_path("direction");
        let direction = n.get("direction").map(|d| dir_path.node(d, file));
        let select_path = n.child_path("select");
        let (indicator, select) = settle(
            ind,
            direction,
            dir_path.as_str(),
            select,
            select_path.as_str(),
            load_given,
        )?;
        let comparison = parse_comparison(&n, indicator)?;
        let own = with_child(&n, "baseline", settle::parse_baseline)?;
        let baseline = match comparison {
            Comparison::NoWorse { .. } => own.or(base_baseline),
            _ => own,
        };
        match (&comparison, baseline) {
            (Comparison::NoWorse { .. }, None) => {
                return Err(n.missing(
                    "baseline",
                    "no_worse_than compares with a baseline: 7d (the same window a week before) or { from, to }",
                ))
            }
            (Comparison::NoWorse { .. }, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                let p = n.child_path("baseline");
                return Err(p
                    .node(n.get("baseline").unwrap_or(v), file)
                    .err("a baseline needs no_worse_than (e.g. 10% or +0.5ms on a quantile, +0.05% on a ratio)"));
            }
        }
        let (judging, window) = parse_judging(&n, base_judging, base_window)?;
        let key = with_child(&n, "key", |k| k.bool())?.unwrap_or(base_key);
        objectives.push(Objective {
            name,
            description,
            select,
            indicator,
            comparison,
            window,
            baseline,
            key,
            judging,
        });
    }
    debug_assert!(JUDGING_KEYS.iter().all(|k| OBJECTIVE_KEYS.contains(k)));
    Ok(SloFile {
        family,
        format: Format::Xcbench,
        objectives,
        skipped: Vec::new(),
    })
}

/// 1 to 128 printable characters: it lands in JUnit, annotations and file names.
fn parse_name(n: Node<'_>) -> Result<String, ConfigError> {
    let t = n.text().unwrap_or_default();
    if t.is_empty() || t.len() > 128 || t.chars().any(char::is_control) {
        return Err(n.err("must be a name of 1 to 128 printable characters"));
    }
    Ok(t)
}

#[cfg(test)]
mod tests;

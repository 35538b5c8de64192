//! OpenSLO v1 import: `kind: SLO` documents whose indicator's metric source is `xcbench`
//! become objectives; `kind: SLI` documents can be referenced by name (`indicatorRef`);
//! other kinds (Service, DataSource, alerting) are read past. An SLO whose metric source is
//! another system is left out and listed, not refused: one OpenSLO repository often
//! describes several systems.
//!
//! ```yaml
//! apiVersion: openslo/v1
//! kind: SLO
//! metadata: { name: db-rtt }
//! spec:
//!   service: db-tier
//!   indicator:
//!     metadata: { name: rtt }
//!     spec:
//!       thresholdMetric:
//!         metricSource:
//!           type: xcbench
//!           spec: { indicator: rtt, select: { src_cloud: azure, dst_cloud: oci } }
//!   timeWindow: [{ duration: 1h, isRolling: true }]
//!   budgetingMethod: Occurrences
//!   objectives:
//!     - { displayName: p99 under 2ms, op: lte, value: 0.002, target: 0.99 }
//! ```
//!
//! Mapping: latency indicators take `op: lte` (or `lt`), `value` in seconds and `target` as
//! the quantile; ratio indicators (loss, duplicates, reorders, late) take `target` as the
//! good fraction (0.999: at most 0.1%); goodput takes `op: gte`, `value` in bits/s and
//! `target` as the fraction of tests (1: every test). `metadata.annotations` may set
//! `xcbench.io/key: "false"` (a warning objective) and `xcbench.io/confidence`,
//! `xcbench.io/min_probes` as in the xcbench format.

use serde_yaml_ng::Value;
use xcbench_snapshot::config_text::ConfigError;

use super::node::{with_child, Node, Path};
use super::settle::{parse_select, settle};
use super::{default_judging, defaults, Format, SloFile};
use crate::objective::{Comparison, Indicator, Objective, Quantile, Select, Window};

const SOURCE_SPEC_KEYS: [&str; 3] = ["indicator", "direction", "select"];

/// Parses every document of an OpenSLO file.
pub(super) fn parse(file: &str, docs: &[Value]) -> Result<SloFile, ConfigError> {
    let paths: Vec<Path> = (0..docs.len())
        .map(|i| Path::indexed("document", i))
        .collect();
    let nodes: Vec<Node<'_>> = docs
        .iter()
        .zip(&paths)
        .map(|(d, p)| p.node(d, file))
        .collect();
    for n in &nodes {
        with_child(n, "apiVersion", |v| match v.text().as_deref() {
            Some("openslo/v1") => Ok(()),
            _ => Err(v.err("must be openslo/v1 (the only OpenSLO version this imports)")),
        })?
        .ok_or_else(|| n.missing("apiVersion", "openslo/v1"))?;
    }
    fn kind<'v>(n: &Node<'v>) -> &'v str {
        n.get("kind").and_then(Value::as_str).unwrap_or("")
    }
    let mut objectives: Vec<Objective> = Vec::new();
    let mut skipped = Vec::new();
    for n in &nodes {
        match kind(n) {
            "SLO" => {}
            "SLI"
            | "Service"
            | "DataSource"
            | "AlertPolicy"
            | "AlertCondition"
            | "AlertNotificationTarget" => continue,
            _ => {
                let path = n.child_path("kind");
                return Err(path
                    .node(n.get("kind").unwrap_or(n.value), file)
                    .err("must be an OpenSLO v1 kind: SLO, SLI, Service, DataSource, AlertPolicy, AlertCondition, AlertNotificationTarget"));
            }
        }
        let name = with_child(n, "metadata", |m| {
            with_child(&m, "name", |c| c.string("must be a string"))?
                .ok_or_else(|| m.missing("name", "every SLO needs metadata.name"))
        })?
        .ok_or_else(|| n.missing("metadata", "every SLO needs metadata.name"))?;
        let spec_path = n.child_path("spec");
        let spec = spec_path.node(
            n.get("spec")
                .ok_or_else(|| n.missing("spec", "an SLO needs a spec"))?,
            file,
        );
        // The indicator: inline, or a kind: SLI document by name.
        let (sli, sli_path) = match (spec.get("indicator"), spec.get("indicatorRef")) {
            (Some(i), _) => (i, spec.child_path("indicator")),
            (None, Some(r)) => {
                let wanted = r.as_str().unwrap_or("");
                let found = nodes.iter().find(|d| {
                    kind(d) == "SLI"
                        && d.get("metadata")
                            .and_then(|m| m.get("name"))
                            .and_then(Value::as_str)
                            == Some(wanted)
                });
                match found {
                    Some(d) => (d.value, Path::indexed("document", paths_index(&nodes, d))),
                    None => {
                        let p = spec.child_path("indicatorRef");
                        return Err(p
                            .node(r, file)
                            .err("must name a kind: SLI document in this file"));
                    }
                }
            }
            (None, None) => {
                return Err(spec.missing("indicator", "an inline indicator or an indicatorRef"))
            }
        };
        let sli = sli_path.node(sli, file);
        let sli_spec_path = sli.child_path("spec");
        let sli_spec = sli_spec_path.node(
            sli.get("spec")
                .ok_or_else(|| sli.missing("spec", "an indicator needs a spec"))?,
            file,
        );
        let Some(threshold) = sli_spec.get("thresholdMetric") else {
            if sli_spec.get("ratioMetric").is_some() {
                skipped.push(format!(
                    "{name}: a ratioMetric indicator (xcbench's ratios are thresholdMetric sources with indicator loss, duplicates, reorders or late)"
                ));
                continue;
            }
            return Err(sli_spec.missing("thresholdMetric", "a thresholdMetric (or ratioMetric)"));
        };
        let tm_path = sli_spec.child_path("thresholdMetric");
        let tm = tm_path.node(threshold, file);
        let ms_path = tm.child_path("metricSource");
        let ms = ms_path.node(
            tm.get("metricSource")
                .ok_or_else(|| tm.missing("metricSource", "a metricSource"))?,
            file,
        );
        let source_type = ms.get("type").and_then(Value::as_str).unwrap_or("");
        if !source_type.eq_ignore_ascii_case("xcbench") {
            skipped.push(format!(
                "{name}: metric source type {source_type:?} (only xcbench is read)"
            ));
            continue;
        }
        let src_spec_path = ms.child_path("spec");
        let src_spec = src_spec_path.node(
            ms.get("spec")
                .ok_or_else(|| ms.missing("spec", "indicator, select, direction"))?,
            file,
        );
        src_spec.fields(&SOURCE_SPEC_KEYS)?;
        let select = with_child(&src_spec, "select", |s| parse_select(s, &Select::default()))?
            .unwrap_or_default();
        let load_given = src_spec.get("select").and_then(|s| s.get("load")).is_some();
        let ind_path = src_spec.child_path("indicator");
        let ind = ind_path.node(
            src_spec.get("indicator").ok_or_else(|| {
                src_spec.missing(
                    "indicator",
                    format!("one of {}", Indicator::NAMES.join(", ")),
                )
            })?,
            file,
        );
        let dir_path = src_spec.child_path("direction");
        let direction = src_spec.get("direction").map(|d| dir_path.node(d, file));
        let select_path = src_spec.child_path("select");
        let (indicator, select) = settle(
            ind,
            direction,
            dir_path.as_str(),
            select,
            select_path.as_str(),
            load_given,
        )?;
        let window = parse_time_window(&spec)?;
        let mut judging = default_judging();
        let mut key = defaults::KEY;
        let description = spec
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        with_child(n, "metadata", |m| {
            with_child(&m, "annotations", |a| {
                if let Some(k) = with_child(&a, "xcbench.io/key", |k| match k.text().as_deref() {
                    Some("true") => Ok(true),
                    Some("false") => Ok(false),
                    _ => Err(k.err("must be \"true\" or \"false\"")),
                })? {
                    key = k;
                }
                if let Some(c) = with_child(&a, "xcbench.io/confidence", |c| {
                    c.text()
                        .and_then(|t| crate::text::parse_ratio(&t))
                        .filter(|v| (0.5..=0.9999).contains(v))
                        .ok_or_else(|| c.err("must be a confidence from 50% to 99.99%"))
                })? {
                    judging.confidence = c;
                }
                if let Some(m) = with_child(&a, "xcbench.io/min_probes", |c| {
                    c.text()
                        .and_then(|t| t.parse::<u64>().ok())
                        .filter(|v| *v >= 1)
                        .ok_or_else(|| c.err("must be a whole number of at least 1"))
                })? {
                    judging.min_probes = m;
                }
                Ok(())
            })
        })?;
        let obj_path = spec.child_path("objectives");
        let list = obj_path
            .node(
                spec.get("objectives")
                    .ok_or_else(|| spec.missing("objectives", "a list of objectives"))?,
                file,
            )
            .list()?;
        for (i, o) in list.iter().enumerate() {
            let p = Path(format!("{}[{i}]", obj_path.as_str()));
            let o = p.node(o, file);
            let comparison = parse_objective(&o, indicator)?;
            let label = o
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| i.to_string());
            let full = if list.len() == 1 && o.get("displayName").is_none() {
                name.clone()
            } else {
                format!("{name}/{label}")
            };
            if objectives.iter().any(|x| x.name == full) {
                return Err(o.err(format!("names an objective {full:?} twice")));
            }
            objectives.push(Objective {
                baseline: None,
                name: full,
                description: description.clone(),
                select: select.clone(),
                indicator,
                comparison,
                window,
                key,
                judging,
            });
        }
    }
    if objectives.is_empty() {
        return Err(ConfigError::Syntax {
            file: file.to_owned(),
            message: format!(
                "no OpenSLO SLO here reads an xcbench metric source{}",
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" (left out: {})", skipped.join("; "))
                }
            ),
        });
    }
    Ok(SloFile {
        family: crate::judge::Family::default(),
        format: Format::OpenSlo,
        objectives,
        skipped,
    })
}

fn paths_index(nodes: &[Node<'_>], d: &Node<'_>) -> usize {
    nodes
        .iter()
        .position(|n| std::ptr::eq(n.value, d.value))
        .unwrap_or(0)
}

/// `timeWindow: [{ duration: 1h, isRolling: true }]`; calendar windows are refused.
fn parse_time_window(spec: &Node<'_>) -> Result<Window, ConfigError> {
    let Some(tw) = spec.get("timeWindow") else {
        return Ok(Window::Last(defaults::WINDOW));
    };
    let p = spec.child_path("timeWindow");
    let list = p.node(tw, spec.file).list()?;
    let [w] = list else {
        return Err(p.node(tw, spec.file).err("must hold exactly one window"));
    };
    let wp = Path(format!("{}[0]", p.as_str()));
    let w = wp.node(w, spec.file);
    if let Some(r) = with_child(&w, "isRolling", |r| r.bool())? {
        if !r {
            return Err(w.err(
                "must be a rolling window (isRolling: true): the gate judges the last span of time",
            ));
        }
    }
    with_child(&w, "duration", |d| {
        let t = d.text().unwrap_or_default();
        // OpenSLO spells days and weeks too: 1h, 28d, 1w.
        let t = match t.strip_suffix('w') {
            Some(n) => n
                .parse::<u64>()
                .map(|n| format!("{}d", n * 7))
                .unwrap_or(t.clone()),
            None => t,
        };
        xcbench_snapshot::config_text::parse_duration(&t)
            .filter(|d| d.as_secs() >= 1)
            .map(Window::Last)
            .ok_or_else(|| d.err("must be a duration such as 1h or 28d"))
    })?
    .ok_or_else(|| w.missing("duration", "a duration such as 1h"))
}

/// One entry of `spec.objectives`.
fn parse_objective(o: &Node<'_>, indicator: Indicator) -> Result<Comparison, ConfigError> {
    let target = with_child(o, "target", |t| {
        t.value
            .as_f64()
            .filter(|v| *v > 0.0 && *v <= 1.0)
            .ok_or_else(|| t.err("must be a fraction above 0 and at most 1, e.g. 0.99"))
    })?
    .or(with_child(o, "targetPercent", |t| {
        t.value
            .as_f64()
            .filter(|v| *v > 0.0 && *v <= 100.0)
            .map(|v| v / 100.0)
            .ok_or_else(|| t.err("must be a percentage above 0 and at most 100, e.g. 99"))
    })?);
    let target = target.ok_or_else(|| o.missing("target", "a target such as 0.99"))?;
    let op = with_child(o, "op", |c| c.string("must be lte, lt, gte or gt"))?;
    let value = |what: &str| {
        with_child(o, "value", |v| {
            v.value
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| v.err(format!("must be a number above 0 ({what})")))
        })?
        .ok_or_else(|| o.missing("value", what.to_owned()))
    };
    let op_node = || {
        let p = o.child_path("op");
        (p, o.get("op"))
    };
    let want_op = |allowed: &[&str], why: &str| -> Result<(), ConfigError> {
        match op.as_deref() {
            Some(x) if allowed.contains(&x) => Ok(()),
            _ => {
                let (p, v) = op_node();
                Err(match v {
                    Some(v) => p.node(v, o.file).err(why.to_owned()),
                    None => o.missing("op", why.to_owned()),
                })
            }
        }
    };
    if indicator.metric().is_some() {
        want_op(
            &["lte", "lt"],
            "must be lte or lt: a latency stays at most its value",
        )?;
        let secs = value("seconds, e.g. 0.002")?;
        let ns = (secs * 1e9).round() as u64;
        if !(1_000..=60_000_000_000).contains(&ns) {
            let p = o.child_path("value");
            return Err(p
                .node(o.get("value").unwrap_or(o.value), o.file)
                .err("must be seconds from 0.000001 to 60"));
        }
        let quantile = Quantile::from_fraction(target).ok_or_else(|| {
            o.err("target must be a quantile from 0.01 to 1 with at most 6 decimals")
        })?;
        return Ok(Comparison::Latency {
            quantile,
            at_most_ns: ns,
        });
    }
    if let Indicator::Goodput(_) = indicator {
        want_op(
            &["gte", "gt"],
            "must be gte or gt: goodput stays at least its value",
        )?;
        let bps = value("bits per second, e.g. 500000000")?;
        let quantile = if target >= 1.0 {
            Quantile::MAX
        } else {
            Quantile::from_fraction(1.0 - target)
                .filter(|q| q.fraction() <= 0.5)
                .ok_or_else(|| o.err("target must be at least 0.5 (the fraction of tests)"))?
        };
        return Ok(Comparison::Goodput {
            quantile,
            at_least_bits_per_second: bps.round() as u64,
        });
    }
    if target >= 1.0 {
        return Err(
            o.err("target must be below 1 for a ratio: no number of probes shows none lost")
        );
    }
    Ok(Comparison::Ratio {
        at_most: 1.0 - target,
    })
}

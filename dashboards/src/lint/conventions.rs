//! Every shipped dashboard file walked: each panel's title, description, unit, datasource,
//! queries and legends; each variable defined and used; each link to a dashboard.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::known::Known;
use super::promql::{check, check_expr, references};

const UNITS: &[&str] = &[
    "s",
    "percentunit",
    "bps",
    "bytes",
    "ops",
    "short",
    "dateTimeAsIso",
];
/// One dashboard file.
struct File {
    name: String,
    json: Value,
}

fn files() -> Vec<File> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(crate::DIR);
    let mut out: Vec<File> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            File {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                json: serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 5,
        "the dashboards are missing from {}",
        dir.display()
    );
    out
}
/// `{{label}}` placeholders of a legend.
pub(super) fn placeholders(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|p| p.split_once("}}"))
        .map(|(name, _)| name.trim().to_owned())
        .collect()
}

/// Label values query: `label_values(selector, label)`.
fn label_values(q: &str) -> Option<(&str, &str)> {
    let body = q.strip_prefix("label_values(")?.strip_suffix(')')?;
    let (sel, label) = body.rsplit_once(',')?;
    Some((sel.trim(), label.trim()))
}

#[test]
fn every_dashboard_keeps_the_conventions() {
    let known = Known::load();
    let files = files();
    // uid -> variables, for the links.
    let dashboards: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .map(|f| {
            let vars = f.json["templating"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_owned())
                .collect();
            (f.json["uid"].as_str().unwrap().to_owned(), vars)
        })
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for f in &files {
        let d = &f.json;
        let uid = d["uid"].as_str().unwrap();
        assert_eq!(f.name, format!("{uid}.json"));
        let vars = &dashboards[uid];
        let mut used: BTreeSet<String> = BTreeSet::new();
        assert!(
            vars.contains("datasource"),
            "{}: no datasource variable",
            f.name
        );
        for v in d["templating"]["list"].as_array().unwrap() {
            let name = v["name"].as_str().unwrap();
            let at = format!("{} variable {name}", f.name);
            if v["description"].as_str().unwrap_or("").is_empty() {
                problems.push(format!("{at}: no description"));
            }
            if v["type"] == "query" {
                if v["datasource"]["uid"] != "${datasource}" {
                    problems.push(format!("{at}: not on the datasource variable"));
                }
                let q = v["query"]["query"].as_str().unwrap();
                match label_values(q) {
                    Some((sel, label)) => {
                        used.extend(references(sel));
                        let _ = check(&known, sel, vars, false, &at, &mut problems);
                        let metric = sel.split('{').next().unwrap();
                        if !known.labels.get(metric).is_some_and(|l| l.contains(label)) {
                            problems.push(format!("{at}: {metric} has no label {label}"));
                        }
                    }
                    None => {
                        problems.push(format!("{at}: expected label_values(selector, label): {q}"))
                    }
                }
                if v["refresh"] != 2 {
                    problems.push(format!("{at}: refresh on time range change (2)"));
                }
            }
        }
        for a in d["annotations"]["list"].as_array().unwrap() {
            if let Some(expr) = a["expr"].as_str() {
                let at = format!("{} annotation {}", f.name, a["name"]);
                used.extend(references(expr));
                let labels = check_expr(&known, expr, vars, &at, &mut problems);
                let text = format!(
                    "{} {} {}",
                    a["titleFormat"],
                    a["textFormat"],
                    a["tagKeys"]
                        .as_str()
                        .unwrap_or("")
                        .split(',')
                        .map(|k| format!("{{{{{k}}}}}"))
                        .collect::<String>()
                );
                if let Some(labels) = labels {
                    for p in placeholders(&text) {
                        if !labels.contains(&p) {
                            problems.push(format!(
                                "{at}: {{{{{p}}}}} is not a label of the result ({labels:?})"
                            ));
                        }
                    }
                }
            }
        }
        let mut titles = BTreeSet::new();
        let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
        for p in d["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap_or("");
            let at = format!("{} panel {title:?}", f.name);
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            if x + w > 24 {
                problems.push(format!("{at}: wider than the grid"));
            }
            for cx in x..x + w {
                for cy in y..y + h {
                    if !cells.insert((cx, cy)) {
                        problems.push(format!("{at}: overlaps another panel at ({cx}, {cy})"));
                    }
                }
            }
            if p["type"] == "row" {
                continue;
            }
            if title.is_empty() || !titles.insert(title.to_owned()) {
                problems.push(format!("{at}: a panel needs a title of its own"));
            }
            if p["description"].as_str().unwrap_or("").len() < 40 {
                problems.push(format!(
                    "{at}: the description must say what it shows and how"
                ));
            }
            if p["datasource"]["uid"] != "${datasource}" {
                problems.push(format!("{at}: not on the datasource variable"));
            }
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
            if !UNITS.contains(&unit) {
                problems.push(format!("{at}: unit {unit:?}; expected one of {UNITS:?}"));
            }
            let targets = p["targets"].as_array().unwrap();
            if targets.is_empty() {
                problems.push(format!("{at}: no query"));
            }
            for t in targets {
                let at = format!("{at} query {}", t["refId"]);
                if t["datasource"]["uid"] != "${datasource}" {
                    problems.push(format!("{at}: not on the datasource variable"));
                }
                let expr = t["expr"].as_str().unwrap();
                used.extend(references(expr));
                let labels = check_expr(&known, expr, vars, &at, &mut problems);
                let legend = t["legendFormat"].as_str().unwrap_or("");
                if let Some(labels) = labels {
                    for p in placeholders(legend) {
                        if !labels.contains(&p) {
                            problems.push(format!("{at}: legend {{{{{p}}}}} is not a label of the result ({labels:?})"));
                        }
                    }
                }
                checked += 1;
            }
            for l in p["fieldConfig"]["defaults"]["links"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let url = l["url"].as_str().unwrap();
                used.extend(references(url));
                link(url, &dashboards, vars, &at, &mut problems);
            }
        }
        for v in vars.iter().filter(|v| *v != "datasource") {
            if !used.contains(v) {
                problems.push(format!(
                    "{}: variable {v} is defined but no query uses it",
                    f.name
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(checked > 40, "only {checked} queries checked");
}

/// A link to `/d/<uid>/...?var-x=...` names an existing dashboard and its variables, and
/// uses only variables of its own dashboard (or Grafana's data-link ones).
pub(super) fn link(
    url: &str,
    dashboards: &BTreeMap<String, BTreeSet<String>>,
    vars: &BTreeSet<String>,
    at: &str,
    out: &mut Vec<String>,
) {
    let Some(rest) = url.strip_prefix("/d/") else {
        out.push(format!("{at}: link {url} is not to a dashboard"));
        return;
    };
    let uid = rest.split('/').next().unwrap();
    let Some(target) = dashboards.get(uid) else {
        out.push(format!("{at}: link to unknown dashboard {uid}"));
        return;
    };
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    for param in query.split('&') {
        if let Some(name) = param.strip_prefix("var-").and_then(|p| p.split('=').next()) {
            if !target.contains(name) {
                out.push(format!("{at}: {uid} has no variable {name}"));
            }
        }
        // ${protocol:queryparam} passes a variable of the same name.
        for r in references(param) {
            if !r.starts_with("__") && !vars.contains(&r) {
                out.push(format!("{at}: ${r} is not a variable here"));
            } else if param.contains(":queryparam") && !target.contains(&r) {
                out.push(format!("{at}: {uid} has no variable {r}"));
            }
        }
    }
}

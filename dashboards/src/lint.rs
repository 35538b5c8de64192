//! The conventions every shipped dashboard keeps, checked on the JSON files themselves:
//! every query parses as PromQL; every range is `$__rate_interval` or `$__range` (no
//! hard-coded `[1m]`); counters and histogram buckets are read only through
//! `rate`/`increase`/`irate` (never a lifetime counter); every metric is one the collector
//! serves (its catalog) or a shipped recording rule, and every label matched is one that
//! family carries (the collector's golden `/metrics`); every variable used is defined and
//! every defined variable used; every panel has a title, a description, a unit and the
//! datasource variable; links name existing dashboards and their variables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use promql_parser::parser::{self, Expr};
use serde_json::Value;
use xcbench_collector::exposition::catalog::{self, Kind};

/// What `$__rate_interval` and `$__range` stand in for while parsing, to be recognised after.
const RATE_SENTINEL: u64 = 7_777;
const RANGE_SENTINEL: u64 = 8_888;
const BUILTINS: &[&str] = &["__rate_interval", "__range", "__interval"];
const UNITS: &[&str] = &[
    "s",
    "percentunit",
    "bps",
    "bytes",
    "ops",
    "short",
    "dateTimeAsIso",
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Label names per sample name, from the collector's golden `/metrics` and the rules.
struct Known {
    labels: BTreeMap<String, BTreeSet<String>>,
    counters: BTreeSet<String>,
}

impl Known {
    fn load() -> Known {
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

/// `$name` and `${name}` / `${name:format}` references (not `$1`, a regex group).
fn references(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            let (start, braced) = if b[i + 1] == b'{' {
                (i + 2, true)
            } else {
                (i + 1, false)
            };
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start && !b[start].is_ascii_digit() {
                out.push(text[start..j].to_owned());
                if braced {
                    while j < b.len() && b[j] != b'}' {
                        j += 1;
                    }
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The query with Grafana's variables replaced so PromQL can parse it: the ranges by
/// sentinels, every other variable by `1` (a label value inside quotes, a number outside).
fn substitute(expr: &str) -> String {
    let mut s = expr
        .replace("$__rate_interval", &format!("{RATE_SENTINEL}s"))
        .replace("$__range", &format!("{RANGE_SENTINEL}s"));
    for r in references(&s) {
        s = s
            .replace(&format!("${{{r}}}"), "1")
            .replace(&format!("${r}"), "1");
    }
    s
}

/// Problems of one query, each a line for the report.
fn check_expr(
    known: &Known,
    expr: &str,
    vars: &BTreeSet<String>,
    at: &str,
    out: &mut Vec<String>,
) -> Option<BTreeSet<String>> {
    check(known, expr, vars, true, at, out)
}

/// As [`check_expr`]; `values` false for a variable's series selector, which reads label
/// values, not counts.
fn check(
    known: &Known,
    expr: &str,
    vars: &BTreeSet<String>,
    values: bool,
    at: &str,
    out: &mut Vec<String>,
) -> Option<BTreeSet<String>> {
    for r in references(expr) {
        if !vars.contains(&r) && !BUILTINS.contains(&r.as_str()) {
            out.push(format!("{at}: ${r} is not a variable of the dashboard"));
        }
    }
    match parser::parse(&substitute(expr)) {
        Ok(ast) => {
            walk(known, &ast, !values, at, out);
            labels_of(known, &ast, at, out)
        }
        Err(e) => {
            out.push(format!("{at}: not PromQL: {e}\n    {expr}"));
            None
        }
    }
}

fn walk(known: &Known, e: &Expr, in_range: bool, at: &str, out: &mut Vec<String>) {
    match e {
        Expr::Aggregate(a) => {
            walk(known, &a.expr, false, at, out);
            if let Some(p) = &a.param {
                walk(known, p, false, at, out);
            }
        }
        Expr::Unary(u) => walk(known, &u.expr, false, at, out),
        Expr::Binary(b) => {
            walk(known, &b.lhs, false, at, out);
            walk(known, &b.rhs, false, at, out);
        }
        Expr::Paren(p) => walk(known, &p.expr, false, at, out),
        Expr::Subquery(_) => out.push(format!("{at}: a subquery; use a recording rule")),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        Expr::VectorSelector(vs) => selector(known, vs, in_range, at, out),
        Expr::MatrixSelector(m) => {
            let r = m.range;
            if r != Duration::from_secs(RATE_SENTINEL) && r != Duration::from_secs(RANGE_SENTINEL) {
                out.push(format!(
                    "{at}: range [{}s] is hard-coded; use $__rate_interval (or $__range over the selected range)",
                    r.as_secs()
                ));
            }
            selector(known, &m.vs, true, at, out);
        }
        Expr::Call(c) => {
            let ranged = matches!(c.func.name, "rate" | "increase" | "irate");
            for a in &c.args.args {
                if let Expr::MatrixSelector(_) = a.as_ref() {
                    if !ranged {
                        out.push(format!(
                            "{at}: {}() over a range; the dashboards use rate, increase or irate",
                            c.func.name
                        ));
                    }
                }
                walk(known, a, false, at, out);
            }
        }
    }
}

fn selector(
    known: &Known,
    vs: &parser::VectorSelector,
    in_range: bool,
    at: &str,
    out: &mut Vec<String>,
) {
    let names: Vec<String> = match &vs.name {
        Some(n) => vec![n.clone()],
        None => {
            let by_name: Vec<_> = vs
                .matchers
                .matchers
                .iter()
                .filter(|m| m.name == "__name__")
                .collect();
            if by_name.is_empty() {
                out.push(format!("{at}: a selector without a metric name"));
                return;
            }
            known
                .labels
                .keys()
                .filter(|k| by_name.iter().all(|m| m.is_match(k)))
                .cloned()
                .collect()
        }
    };
    if names.is_empty() {
        out.push(format!(
            "{at}: the __name__ matcher selects no known metric"
        ));
    }
    for name in &names {
        let Some(labels) = known.labels.get(name) else {
            out.push(format!(
                "{at}: {name} is neither served by the collector (its catalog) nor a shipped recording rule"
            ));
            continue;
        };
        if known.counters.contains(name) && !in_range {
            out.push(format!(
                "{at}: {name} read as a lifetime counter; use rate or increase over $__rate_interval or $__range"
            ));
        }
        for m in vs.matchers.matchers.iter().filter(|m| m.name != "__name__") {
            if !labels.contains(&m.name) {
                out.push(format!(
                    "{at}: {name} has no label {:?} (it has {labels:?})",
                    m.name
                ));
            }
        }
    }
}

/// The labels an expression's result carries (None: not known, so nothing downstream is
/// checked), checking on the way that every `by`, `without`, `on`, `ignoring`,
/// `group_left/right` and `label_replace` source label exists where it is used.
fn labels_of(known: &Known, e: &Expr, at: &str, out: &mut Vec<String>) -> Option<BTreeSet<String>> {
    use promql_parser::label::Labels;
    use promql_parser::parser::value::ValueType;
    use promql_parser::parser::{LabelModifier, VectorMatchCardinality};
    let set = |l: &Labels| -> BTreeSet<String> { l.labels.iter().cloned().collect() };
    let need = |have: &Option<BTreeSet<String>>,
                wanted: &BTreeSet<String>,
                what: &str,
                out: &mut Vec<String>| {
        if let Some(have) = have {
            for w in wanted.difference(have) {
                out.push(format!(
                    "{at}: {what} names {w:?}, which its operand does not carry ({have:?})"
                ));
            }
        }
    };
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Some(BTreeSet::new()),
        Expr::Paren(p) => labels_of(known, &p.expr, at, out),
        Expr::Unary(u) => labels_of(known, &u.expr, at, out),
        Expr::Subquery(s) => labels_of(known, &s.expr, at, out),
        Expr::Extension(_) => None,
        Expr::VectorSelector(vs) => selector_labels(known, vs),
        Expr::MatrixSelector(m) => selector_labels(known, &m.vs),
        Expr::Aggregate(a) => {
            let inner = labels_of(known, &a.expr, at, out);
            let op = a.op.to_string();
            match &a.modifier {
                Some(LabelModifier::Include(l)) => {
                    need(&inner, &set(l), &format!("{op} by"), out);
                    if matches!(op.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") {
                        inner
                    } else {
                        Some(set(l))
                    }
                }
                Some(LabelModifier::Exclude(l)) => inner.map(|i| &i - &set(l)),
                None if matches!(op.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") => {
                    inner
                }
                None => Some(BTreeSet::new()),
            }
        }
        Expr::Call(c) => {
            let args: Vec<Option<BTreeSet<String>>> = c
                .args
                .args
                .iter()
                .map(|a| labels_of(known, a, at, out))
                .collect();
            let literal = |i: usize| match c.args.args.get(i).map(|a| a.as_ref()) {
                Some(Expr::StringLiteral(s)) => Some(s.val.clone()),
                _ => None,
            };
            match c.func.name {
                "label_replace" => {
                    let (dst, src) = (literal(1)?, literal(3)?);
                    if src != "__name__" {
                        need(&args[0], &[src].into(), "label_replace", out);
                    }
                    args[0].clone().map(|mut l| {
                        l.insert(dst);
                        l
                    })
                }
                "histogram_quantile" => {
                    need(
                        &args[1],
                        &["le".to_owned()].into(),
                        "histogram_quantile",
                        out,
                    );
                    args[1].clone().map(|mut l| {
                        l.remove("le");
                        l
                    })
                }
                "vector" | "time" | "scalar" => Some(BTreeSet::new()),
                _ => c
                    .args
                    .args
                    .iter()
                    .zip(args)
                    .find(|(a, _)| matches!(a.value_type(), ValueType::Vector | ValueType::Matrix))
                    .and_then(|(_, l)| l),
            }
        }
        Expr::Binary(b) => {
            let (lhs, rhs) = (
                labels_of(known, &b.lhs, at, out),
                labels_of(known, &b.rhs, at, out),
            );
            let scalar = |x: &Expr| x.value_type() == ValueType::Scalar;
            if scalar(&b.lhs) {
                return rhs;
            }
            if scalar(&b.rhs) {
                return lhs;
            }
            let op = b.op.to_string();
            let modifier = b.modifier.as_ref();
            if let Some(LabelModifier::Include(l)) = modifier.and_then(|m| m.matching.as_ref()) {
                need(&lhs, &set(l), &format!("{op} on"), out);
                need(&rhs, &set(l), &format!("{op} on"), out);
            }
            match op.as_str() {
                "or" => Some(lhs?.union(&rhs?).cloned().collect()),
                "and" | "unless" => lhs,
                _ => match modifier.map(|m| &m.card) {
                    Some(VectorMatchCardinality::ManyToOne(l)) => {
                        need(&rhs, &set(l), "group_left", out);
                        lhs.map(|x| &x | &set(l))
                    }
                    Some(VectorMatchCardinality::OneToMany(l)) => {
                        need(&lhs, &set(l), "group_right", out);
                        rhs.map(|x| &x | &set(l))
                    }
                    // One to one: on(L) keeps only L, ignoring(L) drops L (Prometheus'
                    // result labels).
                    _ => match modifier.and_then(|m| m.matching.as_ref()) {
                        Some(LabelModifier::Include(l)) => Some(set(l)),
                        Some(LabelModifier::Exclude(l)) => lhs.map(|x| &x - &set(l)),
                        None => lhs,
                    },
                },
            }
        }
    }
}

/// The labels of a selector's series, from the golden /metrics or the rules.
fn selector_labels(known: &Known, vs: &parser::VectorSelector) -> Option<BTreeSet<String>> {
    let names: Vec<&String> = match &vs.name {
        Some(n) => vec![n],
        None => {
            let by_name: Vec<_> = vs
                .matchers
                .matchers
                .iter()
                .filter(|m| m.name == "__name__")
                .collect();
            known
                .labels
                .keys()
                .filter(|k| by_name.iter().all(|m| m.is_match(k)))
                .collect()
        }
    };
    let mut all = BTreeSet::new();
    for n in names {
        all.extend(known.labels.get(n)?.iter().cloned());
    }
    Some(all)
}

/// `{{label}}` placeholders of a legend.
fn placeholders(legend: &str) -> Vec<String> {
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
fn link(
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

#[test]
fn the_lint_catches_what_it_is_for() {
    let known = Known::load();
    let vars: BTreeSet<String> = ["datasource", "src_agent"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let problems = |expr: &str| {
        let mut out = Vec::new();
        check_expr(&known, expr, &vars, "t", &mut out);
        out
    };
    assert!(problems(
        "sum(rate(xcbench_probes_sent_total{src_agent=~\"$src_agent\"}[$__rate_interval]))"
    )
    .is_empty());
    let cases = [
        ("rate(xcbench_probes_sent_total[1m])", "hard-coded"),
        (
            "xcbench_probes_lost_total / xcbench_probes_sent_total",
            "lifetime counter",
        ),
        (
            "sum(rate(xcbench_probes_sent_total[$__rate_interval])",
            "not PromQL",
        ),
        (
            "sum(rate(xcbench_probe_sent_total[$__rate_interval]))",
            "neither served",
        ),
        ("xcbench_rtt_window_seconds{agent=\"a\"}", "no label"),
        (
            "xcbench_jitter_seconds{src_agent=~\"$nope\"}",
            "not a variable",
        ),
        (
            "sum(rate(xcbench_rtt_seconds_bucket[$__rate_interval:1m]))",
            "subquery",
        ),
        (
            "max_over_time(xcbench_jitter_seconds[$__range])",
            "rate, increase or irate",
        ),
        (
            "{__name__=~\"xcbench_nothing.*\"}",
            "selects no known metric",
        ),
    ];
    for (expr, expected) in cases {
        let p = problems(expr);
        assert!(
            p.iter().any(|l| l.contains(expected)),
            "{expr}: expected a problem with {expected:?}, got {p:?}"
        );
    }
    assert_eq!(
        references("a $x ${y:queryparam} $1 $__range"),
        ["x", "y", "__range"]
    );
    // Grouping and legends: labels the operands do not carry.
    let grouped = |expr: &str| {
        let mut out = Vec::new();
        let labels = check_expr(&known, expr, &vars, "t", &mut out);
        (labels, out)
    };
    let (_, p) = grouped("sum by (src_agnet) (rate(xcbench_probes_sent_total[$__rate_interval]))");
    assert!(p.iter().any(|l| l.contains("\"src_agnet\"")), "{p:?}");
    let (_, p) = grouped("histogram_quantile(0.9, sum by (src_agent) (rate(xcbench_rtt_seconds_bucket[$__rate_interval])))");
    assert!(
        p.iter()
            .any(|l| l.contains("histogram_quantile names \"le\"")),
        "{p:?}"
    );
    let (_, p) = grouped("xcbench_jitter_seconds / on(objective) xcbench_clock_error_seconds");
    assert!(
        p.iter().any(|l| l.contains("on names \"objective\"")),
        "{p:?}"
    );
    let (labels, p) = grouped("histogram_quantile(0.9, sum by (src_agent, le) (rate(xcbench_rtt_seconds_bucket[$__rate_interval])))");
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(labels.unwrap(), ["src_agent".to_owned()].into());
    assert_eq!(
        placeholders("{{src_agent}} -> {{ dst_agent }}"),
        ["src_agent", "dst_agent"]
    );
    // The rules' labels come from their expressions: the under-load rule has no load.
    assert!(!known.labels["xcbench:rtt_seconds:mean_under_load_increase_rate1h"].contains("load"));
    assert!(known.labels["xcbench:bench_goodput_bytes_per_second:rate1h"].contains("direction"));
    // Links: to a dashboard that exists, with its variables.
    let dashboards: BTreeMap<String, BTreeSet<String>> =
        [("p".to_owned(), ["a".to_owned()].into())].into();
    let mut out = Vec::new();
    link(
        "/d/p/x?var-a=${__field.name}&var-b=1",
        &dashboards,
        &vars,
        "t",
        &mut out,
    );
    link("/d/q/x?var-a=1", &dashboards, &vars, "t", &mut out);
    link("/d/p/x?var-a=$nope", &dashboards, &vars, "t", &mut out);
    assert_eq!(out.len(), 3, "{out:?}");
}

//! One query checked: Grafana's variables substituted so PromQL parses, then every range,
//! counter, metric and label it reads, and the labels its result carries.

use std::collections::BTreeSet;
use std::time::Duration;

use promql_parser::parser::{self, Expr};

use super::known::{repo, Known};

/// What `$__rate_interval` and `$__range` stand in for while parsing, to be recognised after.
impl Known {
    /// What a dashboard may read: what the collector serves ([`Known::served`]) and the
    /// shipped recording rules, in file order, with the labels their expressions leave plus
    /// the ones each rule sets.
    pub(super) fn load() -> Known {
        let mut known = Known::served();
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

pub(super) const RATE_SENTINEL: u64 = 7_777;
pub(super) const RANGE_SENTINEL: u64 = 8_888;
pub(super) const BUILTINS: &[&str] = &["__rate_interval", "__range", "__interval"];
/// `$name` and `${name}` / `${name:format}` references (not `$1`, a regex group).
pub(super) fn references(text: &str) -> Vec<String> {
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
pub(super) fn check_expr(
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
pub(super) fn check(
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
pub(super) fn labels_of(
    known: &Known,
    e: &Expr,
    at: &str,
    out: &mut Vec<String>,
) -> Option<BTreeSet<String>> {
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
                    // Over classic buckets the grouping keeps `le`; native histograms have
                    // none.
                    let classic = c
                        .args
                        .args
                        .get(1)
                        .is_some_and(|a| reads(a, &|n| n.ends_with("_bucket")));
                    let le: BTreeSet<String> = ["le".to_owned()].into();
                    if classic {
                        need(&args[1], &le, "histogram_quantile", out);
                    } else if args[1].as_ref().is_some_and(|l| l.contains("le")) {
                        out.push(format!(
                            "{at}: histogram_quantile over native histograms keeps \"le\", which they do not have"
                        ));
                    }
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

/// Whether `e` selects a metric whose name satisfies `name` (by name, not by matcher).
fn reads(e: &Expr, name: &dyn Fn(&str) -> bool) -> bool {
    match e {
        Expr::VectorSelector(vs) => vs.name.as_deref().is_some_and(name),
        Expr::MatrixSelector(m) => m.vs.name.as_deref().is_some_and(name),
        Expr::Aggregate(a) => reads(&a.expr, name),
        Expr::Unary(u) => reads(&u.expr, name),
        Expr::Paren(p) => reads(&p.expr, name),
        Expr::Subquery(s) => reads(&s.expr, name),
        Expr::Binary(b) => reads(&b.lhs, name) || reads(&b.rhs, name),
        Expr::Call(c) => c.args.args.iter().any(|a| reads(a, name)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
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

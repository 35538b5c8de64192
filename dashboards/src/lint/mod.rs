//! The conventions every shipped dashboard keeps, checked on the JSON files themselves:
//! every query parses as PromQL; every range is `$__rate_interval` or `$__range` (no
//! hard-coded `[1m]`); counters and histogram buckets are read only through
//! `rate`/`increase`/`irate` (never a lifetime counter); every metric is one the collector
//! serves (its catalog) or a shipped recording rule, and every label matched is one that
//! family carries (the collector's golden `/metrics`); every variable used is defined and
//! every defined variable used; every panel has a title, a description, a unit and the
//! datasource variable; links name existing dashboards and their variables.
//!
//! # Layout
//! - `known`: the metrics and labels there are: the collector's catalog and golden
//!   `/metrics`, and the shipped recording rules.
//! - `promql`: one query checked: Grafana's variables, ranges, counters, metrics, labels.
//! - `conventions`: every shipped dashboard file walked: panels, variables, legends, links.
//! - below: the lint held to catch what it is for.

mod conventions;
mod known;
mod promql;

use std::collections::{BTreeMap, BTreeSet};

use conventions::{link, placeholders};
use known::Known;
use promql::{check_expr, references};

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
    // Native histograms: the bare name, no `le`, and read through rate as the buckets are.
    let (labels, p) = grouped(
        "histogram_quantile(0.9, sum by (src_agent) (rate(xcbench_rtt_seconds[$__rate_interval])))",
    );
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(labels.unwrap(), ["src_agent".to_owned()].into());
    let (_, p) = grouped("histogram_quantile(0.9, sum by (src_agent, le) (rate(xcbench_rtt_seconds[$__rate_interval])))");
    assert!(p.iter().any(|l| l.contains("keeps \"le\"")), "{p:?}");
    let (_, p) = grouped("histogram_count(sum(xcbench_rtt_seconds))");
    assert!(p.iter().any(|l| l.contains("lifetime counter")), "{p:?}");
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

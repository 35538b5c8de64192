use std::time::Duration;

use xcbench_snapshot::{ProbeKind, Protocol};

use super::*;
use crate::objective::{Comparison, Direction, Indicator, LoadChoice, Quantile};

const SAMPLE: &str = include_str!("../../slo.sample.yaml");
const OPENSLO: &str = include_str!("../../openslo.sample.yaml");

fn by_name<'a>(f: &'a SloFile, name: &str) -> &'a Objective {
    f.objectives.iter().find(|o| o.name == name).unwrap()
}

#[test]
fn the_sample_parses_with_the_code_defaults() {
    let f = SloFile::parse("slo.sample.yaml", SAMPLE).unwrap();
    assert_eq!(f.format, Format::Xcbench);
    assert_eq!(f.objectives.len(), 15);
    let rtt = by_name(&f, "stamp-rtt-p99");
    // The sample's defaults block writes out the code's defaults.
    assert_eq!(rtt.judging, default_judging());
    assert_eq!(f.family, crate::judge::Family::default());
    assert_eq!(rtt.window, Window::Last(defaults::WINDOW));
    assert!(rtt.key);
    assert_eq!(rtt.indicator, Indicator::Rtt);
    assert_eq!(rtt.select.protocol, Some(Protocol::Udp));
    assert_eq!(rtt.select.kind, Some(ProbeKind::Stamp));
    assert_eq!(rtt.select.src_cloud.as_deref(), Some("azure"));
    assert_eq!(rtt.select.load, LoadChoice::Idle);
    assert_eq!(
        rtt.comparison,
        Comparison::Latency {
            quantile: Quantile::parse("p99").unwrap(),
            at_most_ns: 3_000_000
        }
    );
    assert_eq!(rtt.comparison.to_string(), "p99 <= 3ms");
    let tcp = by_name(&f, "tcp-rr-p99");
    assert_eq!(
        (tcp.select.protocol, tcp.select.kind),
        (Some(Protocol::Tcp), Some(ProbeKind::Rr))
    );
    let quic = by_name(&f, "quic-handshake-p95");
    assert_eq!(
        (quic.select.protocol, quic.select.kind, quic.key),
        (Some(Protocol::Quic), Some(ProbeKind::Connect), false)
    );
    assert_eq!(
        by_name(&f, "forward-loss").indicator,
        Indicator::Loss(Some(Direction::Forward))
    );
    assert_eq!(
        by_name(&f, "forward-loss").comparison,
        Comparison::Ratio { at_most: 0.001 }
    );
    let load = by_name(&f, "rtt-under-load");
    assert_eq!(load.window, Window::Last(Duration::from_secs(86_400)));
    assert_eq!(load.judging.min_coverage, 0.0);
    let goodput = by_name(&f, "goodput");
    assert_eq!(goodput.select.protocol, Some(Protocol::Tcp));
    assert_eq!(goodput.comparison.to_string(), "every test >= 500Mbit/s");
}

#[test]
fn the_demo_slo_parses() {
    let f = SloFile::parse("demo.slo.yaml", include_str!("../../demo.slo.yaml")).unwrap();
    assert_eq!(f.objectives.len(), 5);
    assert!(f.objectives.iter().all(|o| o.key));
}

#[test]
fn the_openslo_sample_imports_its_xcbench_slos() {
    let f = SloFile::parse("openslo.sample.yaml", OPENSLO).unwrap();
    assert_eq!(f.format, Format::OpenSlo);
    let names: Vec<&str> = f.objectives.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "interconnect-rtt/p99",
            "interconnect-rtt/p50",
            "interconnect-loss"
        ]
    );
    assert_eq!(f.objectives[0].comparison.to_string(), "p99 <= 3ms");
    assert_eq!(f.objectives[1].comparison.to_string(), "p50 <= 2ms");
    let loss = &f.objectives[2];
    assert_eq!(loss.indicator, Indicator::Loss(None));
    match loss.comparison {
        Comparison::Ratio { at_most } => assert!((at_most - 0.001).abs() < 1e-12),
        other => panic!("{other:?}"),
    }
    assert_eq!(loss.judging.confidence, 0.99);
    assert_eq!(f.skipped.len(), 1, "{:?}", f.skipped);
    assert!(f.skipped[0].contains("app-latency"), "{:?}", f.skipped);
}

/// A file with one objective whose body is `body` (YAML, indented under the list item).
fn one(body: &str) -> String {
    format!("objectives:\n  - name: x\n{body}")
}

#[test]
fn bad_files_are_refused_with_the_field_the_value_and_what_was_expected() {
    let cases: Vec<(String, &str)> = vec![
        ("objectives: [".to_owned(), "slo.yaml: "),
        ("".to_owned(), "slo.yaml: empty: expected objectives"),
        ("version: 2\nobjectives: []".to_owned(), "slo.yaml: version = 2: must be 1"),
        (
            "objectives: []".to_owned(),
            "slo.yaml: objectives = a list: must list 1 to 1000 objectives",
        ),
        (
            "objective: []".to_owned(),
            "slo.yaml: (top level) = key \"objective\": unknown key; expected one of version, defaults, objectives",
        ),
        (
            format!("defaults:\n  family: bonferroni\n{}", one("    indicator: loss\n    at_most: 1%\n")),
            "slo.yaml: defaults.family = \"bonferroni\": must be none (each objective at its confidence) or holm (the gate's fail at that confidence as a whole)",
        ),
        (
            one("    indicator: rtt\n    quantile: p99\n    at_most: 5x\n"),
            "slo.yaml: objectives[0].at_most = \"5x\": must be a duration from 1us to 60s, e.g. 2ms",
        ),
        (
            one("    indicator: rtt\n    quantile: p101\n    at_most: 2ms\n"),
            "slo.yaml: objectives[0].quantile = \"p101\": must be p50, p90, p99, p99.9, p99.99 (any p1 .. p99.999) or max",
        ),
        (
            one("    indicator: latency\n"),
            "slo.yaml: objectives[0].indicator = \"latency\": must be one of rtt, one_way_delay",
        ),
        (
            one("    indicator: one_way_delay\n    quantile: p99\n    at_most: 2ms\n"),
            "slo.yaml: objectives[0].direction = (missing): one_way_delay is measured per direction: forward or reverse",
        ),
        (
            one("    indicator: loss\n    at_most: 0\n"),
            "slo.yaml: objectives[0].at_most = 0: must be a ratio above 0 and at most 100%",
        ),
        (
            one("    indicator: loss\n    quantile: p99\n    at_most: 1%\n"),
            "slo.yaml: objectives[0].quantile = \"p99\": ratio objectives (loss, duplicates, reorders, late) take at_most only",
        ),
        (
            one("    indicator: rtt\n    select: { protocol: udp, kind: rr }\n    quantile: p99\n    at_most: 2ms\n"),
            "slo.yaml: objectives[0].select.kind = \"rr\": udp probes have no kind rr",
        ),
        (
            one("    indicator: tcp_connect\n    select: { protocol: quic }\n    quantile: p99\n    at_most: 2ms\n"),
            "slo.yaml: objectives[0].select.protocol = \"quic\": tcp_connect is measured by tcp connect probes",
        ),
        (
            one("    indicator: rtt\n    select: { src_cloud: gcp }\n    quantile: p99\n    at_most: 2ms\n"),
            "slo.yaml: objectives[0].select.src_cloud = \"gcp\": must be one of azure, oci, other",
        ),
        (
            one("    indicator: rtt\n    quantile: p99\n    at_most: 2ms\n    confidence: 20%\n"),
            "slo.yaml: objectives[0].confidence = \"20%\": must be a confidence from 50% to 99.99%",
        ),
        (
            one("    indicator: rtt\n    quantile: p99\n    at_most: 2ms\n    window: { from: 2026-11-30T19:00:00Z, to: 2026-11-30T18:00:00Z }\n"),
            "slo.yaml: objectives[0].window.from = \"2026-11-30T19:00:00Z\": must be before to",
        ),
        (
            one("    indicator: goodput\n    at_most: 1G\n"),
            "slo.yaml: objectives[0].at_most = \"1G\": goodput objectives take at_least",
        ),
        (
            one("    indicator: rtt\n    quantile: p99\n    at_most: 2ms\n    treshold: 3\n"),
            "slo.yaml: objectives[0] = key \"treshold\": unknown key; expected one of name,",
        ),
        (
            "objectives:\n  - name: x\n    indicator: loss\n    at_most: 1%\n  - name: x\n    indicator: loss\n    at_most: 2%\n".to_owned(),
            "slo.yaml: objectives[1].name = \"x\": must be unique",
        ),
        (
            "objectives:\n  - indicator: loss\n    at_most: 1%\n".to_owned(),
            "slo.yaml: objectives[0].name = (missing): every objective needs a name",
        ),
        (
            one("    indicator: rtt\n    quantile: p99\n") ,
            "slo.yaml: objectives[0].at_most = (missing): latency objectives need at_most, e.g. 2ms",
        ),
        (
            "apiVersion: openslo/v2\nkind: SLO\n".to_owned(),
            "slo.yaml: document[0].apiVersion = \"openslo/v2\": must be openslo/v1",
        ),
        (
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: { name: a }\nspec:\n  indicator:\n    spec:\n      thresholdMetric:\n        metricSource: { type: xcbench, spec: { indicator: rtt } }\n  timeWindow: [{ duration: 1M, isRolling: false }]\n  objectives: [{ op: lte, value: 0.002, target: 0.99 }]\n".to_owned(),
            "slo.yaml: document[0].spec.timeWindow[0] = a mapping: must be a rolling window",
        ),
        (
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: { name: a }\nspec:\n  indicator:\n    spec:\n      thresholdMetric:\n        metricSource: { type: xcbench, spec: { indicator: rtt } }\n  objectives: [{ op: gte, value: 0.002, target: 0.99 }]\n".to_owned(),
            "slo.yaml: document[0].spec.objectives[0].op = \"gte\": must be lte or lt",
        ),
    ];
    for (text, want) in &cases {
        let got = SloFile::parse("slo.yaml", text)
            .map(|f| format!("parsed: {f:?}"))
            .unwrap_err_or_text();
        assert!(
            got.starts_with(want),
            "\n{text}\n  got:  {got}\n  want: {want}"
        );
    }
    assert!(cases.len() >= 20);
}

trait ErrText {
    fn unwrap_err_or_text(self) -> String;
}

impl ErrText for Result<String, ConfigError> {
    fn unwrap_err_or_text(self) -> String {
        match self {
            Ok(t) => t,
            Err(e) => e.to_string(),
        }
    }
}

#[test]
fn defaults_apply_and_objectives_override_them() {
    let text = "defaults:\n  window: 10m\n  confidence: 99%\n  key: false\n  select: { src_agent: azure-1 }\nobjectives:\n  - name: a\n    indicator: loss\n    at_most: 1%\n  - name: b\n    indicator: loss\n    at_most: 1%\n    key: true\n    confidence: 0.9\n    select: { src_agent: azure-2, protocol: tcp }\n    window: { from: 1796061600, to: 2026-11-30T19:00:00Z }\n";
    let f = SloFile::parse("slo.yaml", text).unwrap();
    let (a, b) = (&f.objectives[0], &f.objectives[1]);
    assert_eq!(a.window, Window::Last(Duration::from_secs(600)));
    assert_eq!((a.judging.confidence, a.key), (0.99, false));
    assert_eq!(a.select.src_agent.as_deref(), Some("azure-1"));
    assert_eq!((b.judging.confidence, b.key), (0.9, true));
    assert_eq!(b.select.src_agent.as_deref(), Some("azure-2"));
    assert_eq!(
        (b.select.protocol, b.select.kind),
        (Some(Protocol::Tcp), Some(ProbeKind::Rr))
    );
    assert_eq!(
        b.window,
        Window::Range {
            from_unix_ns: 1_796_061_600_000_000_000,
            to_unix_ns: 1_796_065_200_000_000_000
        }
    );
}

/// Issue 21: deep nesting is refused before the YAML parser sees it (its time grows with
/// the square of the depth: 100,000 deep kept `slo rules` busy past 15 s).
#[test]
// How fast the refusal is: the one clock read here.
#[allow(clippy::disallowed_methods)]
fn deep_nesting_is_refused_before_parsing() {
    let started = std::time::Instant::now();
    for (open, close) in [("[", "]"), ("{a: ", "}")] {
        let deep = format!(
            "version: 1\nobjectives: {}{}\n",
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let e = SloFile::parse("slo.yaml", &deep).unwrap_err().to_string();
        assert_eq!(
            e,
            "slo.yaml: line 2 (under objectives): nested deeper than 32 levels of [ and { (an SLO file needs two or three): refused before parsing"
        );
    }
    // Unclosed, and behind a comment, a quote and a block scalar that hold brackets.
    let hidden = format!(
        "# [[[[ {{\ndescription: \"[[[ ]]]] ']'\"\nnote: |\n  ]]]] '\n  [[[[\nx: '[ ''\n  ]]'\nobjectives: {}\n",
        "[".repeat(50_000)
    );
    let e = SloFile::parse("slo.yaml", &hidden).unwrap_err().to_string();
    assert!(
        e.starts_with("slo.yaml: line 8 (under objectives): nested deeper"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Brackets that are text (in a plain scalar, a comment, quotes, a block scalar) and
    // flow collections as deep as the formats go are not refused for it.
    let deep_text = format!(
        "# {}\nversion: 1\nobjectives:\n  - name: a\n    description: see {} and \"{}\"\n    notes: >\n      {}\n    indicator: loss\n    at_most: 1%\n    select: {{ src_agent: a, dst_agent: b }}\n",
        "[".repeat(100),
        "[".repeat(100),
        "{".repeat(100),
        "[".repeat(100),
    );
    let e = SloFile::parse("slo.yaml", &deep_text)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("objectives[0]"),
        "refused for its keys, not its depth: {e}"
    );
    let ok = deep_text.replace("    notes: >\n", "    description2: >\n");
    assert!(!SloFile::parse("slo.yaml", &ok)
        .unwrap_err()
        .to_string()
        .contains("nested"));
    SloFile::parse("slo.sample.yaml", SAMPLE).unwrap();
    SloFile::parse("openslo.sample.yaml", OPENSLO).unwrap();
}

#[test]
fn large_files_are_refused_and_echoes_capped() {
    let big = format!("version: 1\n# {}\n", "x".repeat(MAX_FILE_BYTES));
    assert_eq!(
        SloFile::parse("slo.yaml", &big).unwrap_err().to_string(),
        format!(
            "slo.yaml: {} bytes: larger than the 1048576 bytes an SLO file may have",
            big.len()
        )
    );
    let name = "n".repeat(500_000);
    let e = SloFile::parse(
        "slo.yaml",
        &format!(
            "version: 1\nobjectives:\n  - name: {name}\n    indicator: loss\n    at_most: 1%\n"
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(e.len() < 300, "{e}");
    assert!(
        e.starts_with("slo.yaml: objectives[0].name = \"nnnn") && e.contains("... (500002 bytes)"),
        "{e}"
    );
}

#[test]
fn the_family_is_read_from_the_defaults() {
    let text = format!(
        "defaults:\n  family: holm\n{}",
        one("    indicator: loss\n    at_most: 1%\n")
    );
    let f = SloFile::parse("slo.yaml", &text).unwrap();
    assert_eq!(f.family, crate::judge::Family::Holm);
    let plain = SloFile::parse("slo.yaml", &one("    indicator: loss\n    at_most: 1%\n")).unwrap();
    assert_eq!(plain.family, crate::judge::Family::PerObjective);
}

#[test]
fn a_baseline_and_its_margin_come_together() {
    use crate::objective::{Baseline, Comparison, Margin};
    let f = SloFile::parse(
        "slo.yaml",
        &one(
            "    indicator: rtt\n    quantile: p99\n    baseline: 7d\n    no_worse_than: +0.5ms\n",
        ),
    )
    .unwrap();
    let o = &f.objectives[0];
    assert_eq!(
        o.baseline,
        Some(Baseline::Before(Duration::from_secs(7 * 86_400)))
    );
    assert_eq!(
        o.comparison,
        Comparison::NoWorse {
            quantile: Some(Quantile::parse("p99").unwrap()),
            margin: Margin::Latency(500_000)
        }
    );
    assert_eq!(o.comparison.to_string(), "p99 <= baseline +500us");
    let bad = |body: &str| {
        SloFile::parse("slo.yaml", &one(body))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad("    indicator: rtt\n    quantile: p99\n    no_worse_than: 10%\n"),
        "slo.yaml: objectives[0].baseline = (missing): no_worse_than compares with a baseline: 7d (the same window a week before) or { from, to }"
    );
    assert!(
        bad("    indicator: loss\n    baseline: 7d\n    no_worse_than: 10%\n").contains(
            "objectives[0].no_worse_than = \"10%\": must be percentage points with a plus"
        )
    );
    assert!(
        bad("    indicator: loss\n    at_most: 1%\n    baseline: 7d\n")
            .contains("objectives[0].baseline")
    );
    assert!(bad(
        "    indicator: rtt\n    quantile: max\n    baseline: 7d\n    no_worse_than: 10%\n"
    )
    .contains("a maximum has no bound to compare"));
}

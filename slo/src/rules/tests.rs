//! The rule file held to the SLO workbook and to Prometheus' syntax: names, budgets, burn
//! factors, selections, scaled windows, escaping.

use serde_yaml_ng::Value;

use super::windows::seconds_text;
use super::yaml::{number, template_escape, yaml_string};
use super::*;
use crate::objective::Comparison;
use crate::SloFile;

const SAMPLE: &str = include_str!("../../slo.sample.yaml");

fn sample() -> Vec<Objective> {
    SloFile::parse("slo.sample.yaml", SAMPLE)
        .unwrap()
        .objectives
}

fn parse(yaml: &str) -> Vec<Value> {
    let v: Value = serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    v["groups"].as_sequence().expect("groups").clone()
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v:?}"))
        .to_owned()
}

fn group<'a>(groups: &'a [Value], objective: &str) -> &'a Value {
    groups
        .iter()
        .find(|g| text(g, "name") == format!("xcbench-slo/{objective}"))
        .unwrap_or_else(|| panic!("no group for {objective}"))
}

fn rule<'a>(g: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    g["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r[kind].as_str() == Some(name))
}

fn records(g: &Value) -> Vec<String> {
    g["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|r| r["record"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_sample_becomes_a_rule_file_with_unique_names() {
    let r = rules(&sample(), DEFAULT_PERIOD).unwrap();
    let groups = parse(&r.yaml);
    // 15 objectives, goodput, rtt-under-load and the one against a baseline left out; each
    // a group and a period group.
    assert_eq!(groups.len(), 24);
    let left: Vec<&str> = r.left_out.iter().map(|l| l.objective.as_str()).collect();
    assert_eq!(left, ["rtt-under-load", "goodput", "rtt-after-migration"]);
    assert!(r.left_out[1]
        .to_string()
        .starts_with("goodput (goodput): judged per scheduled throughput test"));
    assert!(r
        .yaml
        .contains("  # No rules for goodput (goodput): judged per scheduled"));
    let mut group_names = BTreeSet::new();
    let mut alert_names = BTreeSet::new();
    for g in &groups {
        assert!(group_names.insert(text(g, "name")), "group {g:?} twice");
        let mut series = BTreeSet::new();
        for r in g["rules"].as_sequence().unwrap() {
            let expr = text(r, "expr");
            assert!(!expr.is_empty());
            let objective = text(&r["labels"], "objective");
            let name = text(g, "name");
            assert!(
                name == format!("xcbench-slo/{objective}")
                    || name == format!("xcbench-slo/{objective}/period"),
                "{name}"
            );
            match (r["record"].as_str(), r["alert"].as_str()) {
                (Some(name), None) => assert!(series.insert(name.to_owned()), "{name} twice"),
                (None, Some(name)) => {
                    assert!(alert_names.insert(name.to_owned()), "alert {name} twice");
                    assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                    let sev = text(&r["labels"], "severity");
                    assert!(name.ends_with(&format!("_{sev}")), "{name} {sev}");
                    assert!(text(&r["annotations"], "summary").contains(&objective));
                }
                _ => panic!("neither a record nor an alert: {r:?}"),
            }
        }
    }
    let rtt = group(&groups, "stamp-rtt-p99");
    assert_eq!(
        records(rtt),
        [
            "xcbench_slo:error_budget",
            "xcbench_slo:threshold_seconds",
            "xcbench_slo:error_ratio:rate5m",
            "xcbench_slo:error_ratio:rate30m",
            "xcbench_slo:error_ratio:rate1h",
            "xcbench_slo:error_ratio:rate2h",
            "xcbench_slo:error_ratio:rate6h",
            "xcbench_slo:error_ratio:rate1d",
            "xcbench_slo:error_ratio:rate3d",
        ]
    );
    let summary = text(
        &rule(rtt, "alert", "xcbench_slo_stamp_rtt_p99_page").unwrap()["annotations"],
        "summary",
    );
    assert_eq!(
        summary,
        "SLO stamp-rtt-p99 (rtt p99 <= 3ms) burns its error budget fast"
    );
}

#[test]
fn budgets_and_burn_factors_are_the_workbooks() {
    let r = rules(&sample(), DEFAULT_PERIOD).unwrap();
    let groups = parse(&r.yaml);
    let rtt = group(&groups, "stamp-rtt-p99");
    assert_eq!(
        text(
            rule(rtt, "record", "xcbench_slo:error_budget").unwrap(),
            "expr"
        ),
        "vector(0.01)"
    );
    assert_eq!(
        text(
            rule(rtt, "record", "xcbench_slo:threshold_seconds").unwrap(),
            "expr"
        ),
        "vector(0.003)"
    );
    let page = text(
        rule(rtt, "alert", "xcbench_slo_stamp_rtt_p99_page").unwrap(),
        "expr",
    );
    let sel = "{objective=\"stamp-rtt-p99\"}";
    let want = format!(
        "(\n    xcbench_slo:error_ratio:rate1h{sel} > (14.4 * 0.01)\n  and\n    xcbench_slo:error_ratio:rate5m{sel} > (14.4 * 0.01)\n)\nor\n(\n    xcbench_slo:error_ratio:rate6h{sel} > (6 * 0.01)\n  and\n    xcbench_slo:error_ratio:rate30m{sel} > (6 * 0.01)\n)\n"
    );
    assert_eq!(page, want);
    let ticket = text(
        rule(rtt, "alert", "xcbench_slo_stamp_rtt_p99_ticket").unwrap(),
        "expr",
    );
    assert!(
        ticket.contains(&format!("rate1d{sel} > (3 * 0.01)")),
        "{ticket}"
    );
    assert!(
        ticket.contains(&format!("rate2h{sel} > (3 * 0.01)")),
        "{ticket}"
    );
    assert!(
        ticket.contains(&format!("rate3d{sel} > (1 * 0.01)")),
        "{ticket}"
    );
    assert!(
        ticket.contains(&format!("rate6h{sel} > (1 * 0.01)")),
        "{ticket}"
    );
    let p50 = group(&groups, "stamp-rtt-p50");
    assert_eq!(
        text(
            rule(p50, "record", "xcbench_slo:error_budget").unwrap(),
            "expr"
        ),
        "vector(0.5)"
    );
    let loss = group(&groups, "loss");
    assert_eq!(
        text(
            rule(loss, "record", "xcbench_slo:error_budget").unwrap(),
            "expr"
        ),
        "vector(0.001)"
    );
    assert!(rule(loss, "record", "xcbench_slo:threshold_seconds").is_none());
    let dup = group(&groups, "duplicates");
    assert_eq!(
        text(
            rule(dup, "record", "xcbench_slo:error_budget").unwrap(),
            "expr"
        ),
        "vector(0.0001)"
    );
}

#[test]
fn error_ratios_select_the_objectives_series() {
    let r = rules(&sample(), DEFAULT_PERIOD).unwrap();
    let groups = parse(&r.yaml);
    let expr = |objective: &str, window: &str| {
        text(
            rule(
                group(&groups, objective),
                "record",
                &format!("xcbench_slo:error_ratio:rate{window}"),
            )
            .unwrap(),
            "expr",
        )
    };
    let sel = "src_cloud=\"azure\",dst_cloud=\"oci\",protocol=\"udp\",kind=\"stamp\",load=\"idle\"";
    // Latency: straddling samples are bad (samples - within; the straddling counter is
    // not subtracted), never fewer than none (each increase() is extrapolated alone).
    assert_eq!(
        expr("stamp-rtt-p99", "5m"),
        format!(
            "clamp_min(\n  sum(increase(xcbench_slo_samples_total{{{sel},metric=\"rtt\"}}[5m]))\n  - sum(increase(xcbench_slo_within_total{{{sel},metric=\"rtt\",threshold=\"0.003\"}}[5m])),\n  0\n)\n/ (sum(increase(xcbench_slo_samples_total{{{sel},metric=\"rtt\"}}[5m])) > 0)\n"
        )
    );
    assert!(!r.yaml.contains("straddling_total{"));
    assert!(expr("tcp-connect-p99", "1h").contains(
        "xcbench_slo_within_total{src_cloud=\"azure\",dst_cloud=\"oci\",protocol=\"tcp\",kind=\"connect\",load=\"idle\",metric=\"rtt\",threshold=\"0.005\"}[1h]"
    ));
    let owd = expr("forward-one-way-p99", "1h");
    assert!(
        owd.contains("metric=\"one_way_forward\",threshold=\"0.002\""),
        "{owd}"
    );
    let ipdv = expr("reverse-ipdv-p99", "1h");
    assert!(
        ipdv.contains("metric=\"ipdv_reverse\",threshold=\"0.0005\""),
        "{ipdv}"
    );
    assert_eq!(
        expr("forward-loss", "6h"),
        format!(
            "clamp_max(\n  sum(increase(xcbench_probes_lost_direction_total{{{sel},direction=\"forward\"}}[6h]))\n  / (\n    (\n        sum(increase(xcbench_probes_received_total{{{sel}}}[6h]))\n      + sum(increase(xcbench_probes_lost_total{{{sel}}}[6h]))\n    ) > 0\n  ),\n  1\n)\n"
        )
    );
    assert!(expr("reverse-loss", "6h").contains("direction=\"reverse\""));
    assert!(expr("loss", "6h").starts_with(&format!(
        "clamp_max(\n  sum(increase(xcbench_probes_lost_total{{{sel}}}[6h]))\n"
    )));
    assert_eq!(
        expr("reorders", "3d"),
        format!(
            "clamp_max(\n  sum(increase(xcbench_probes_reordered_total{{{sel}}}[3d]))\n  / (sum(increase(xcbench_probes_received_total{{{sel}}}[3d])) > 0),\n  1\n)\n"
        )
    );
    // load: any selects every load (no matcher).
    let mut any = sample();
    any.retain(|o| o.name == "loss");
    any[0].select.load = crate::objective::LoadChoice::Any;
    let r = rules(&any, DEFAULT_PERIOD).unwrap();
    assert!(!r.yaml.contains("load="), "{}", r.yaml);
    assert!(r.yaml.contains("kind=\"stamp\"}[5m]"));
}

#[test]
fn conditions_beyond_every_event_say_so() {
    let mut objectives = sample();
    objectives.retain(|o| o.name == "stamp-rtt-p50" || o.name == "duplicates");
    objectives[1].comparison = Comparison::Ratio { at_most: 0.1 };
    objectives[1].key = true;
    let yaml = rules(&objectives, DEFAULT_PERIOD).unwrap().yaml;
    // p50: half the samples may be slow; 14.4x, 6x and 3x that are over 100%.
    for f in ["14.4", "6", "3"] {
        assert!(yaml.contains(&format!("      # {f}x a 50% budget is an error ratio of 100% or more: this condition never holds: at most every event is bad.\n")), "{f}: {yaml}");
    }
    assert!(!yaml.contains("      # 1x a 50% budget"));
    // Duplicates can outnumber replies: 14.4x 10% is reachable, if hardly.
    assert!(yaml.contains("      # 14.4x a 10% budget is an error ratio of 100% or more: this condition holds only with more bad events than events counted against them.\n"));
    assert!(!yaml.contains("      # 6x a 10% budget"));
}

#[test]
fn only_key_objectives_page() {
    let objectives = sample();
    let r = rules(&objectives, DEFAULT_PERIOD).unwrap();
    let groups = parse(&r.yaml);
    let mut pages = 0;
    for o in objectives.iter().filter(|o| Sli::of(o).is_ok()) {
        let g = group(&groups, &o.name);
        let severities: Vec<String> = g["rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|r| r["alert"].is_string())
            .map(|r| text(&r["labels"], "severity"))
            .collect();
        if o.key {
            assert_eq!(severities, ["page", "ticket"], "{}", o.name);
            pages += 1;
        } else {
            assert_eq!(severities, ["ticket"], "{}", o.name);
        }
    }
    assert_eq!(pages, 7);
    assert!(rule(
        group(&groups, "reorders"),
        "alert",
        "xcbench_slo_reorders_page"
    )
    .is_none());
    assert!(rule(
        group(&groups, "reorders"),
        "alert",
        "xcbench_slo_reorders_ticket"
    )
    .is_some());
}

#[test]
fn windows_scale_with_the_period() {
    let mut objectives = sample();
    objectives.retain(|o| o.name == "stamp-rtt-p99");
    let at = |days: u64| {
        let r = rules(&objectives, Duration::from_secs(days * DAY)).unwrap();
        let groups = parse(&r.yaml);
        let g = groups[0].clone();
        let ratios = records(&g)[2..].to_vec();
        let p = &groups[1];
        assert_eq!(text(p, "name"), "xcbench-slo/stamp-rtt-p99/period");
        assert_eq!(text(p, "interval"), "5m");
        let period = rule(p, "record", PERIOD_RATIO).unwrap();
        assert!(text(period, "expr").contains(&format!("[{days}d]")));
        (r.yaml, ratios)
    };
    let (_, thirty) = at(30);
    let names = |w: &[&str]| -> Vec<String> {
        w.iter()
            .map(|w| format!("xcbench_slo:error_ratio:rate{w}"))
            .collect()
    };
    assert_eq!(thirty, names(&["5m", "30m", "1h", "2h", "6h", "1d", "3d"]));
    let (yaml, sixty) = at(60);
    assert_eq!(sixty, names(&["10m", "1h", "2h", "4h", "12h", "2d", "6d"]));
    assert!(yaml.contains("[6d]))") && !yaml.contains("[3d]"));
    assert!(yaml
        .contains("xcbench_slo:error_ratio:rate2h{objective=\"stamp-rtt-p99\"} > (14.4 * 0.01)"));
    let (yaml, seven) = at(7);
    // 7/30 of each window, in whole seconds.
    assert_eq!(
        seven,
        names(&["70s", "7m", "14m", "28m", "84m", "336m", "1008m"])
    );
    assert!(yaml.contains("[70s]))"));
    assert!(yaml.contains("# Error budgets are spent over 7d; windows 70s, 7m, 14m, 28m, 84m, 336m, 1008m (the workbook's for 30d, scaled to 7d).\n"));
    // 28 days: 4m40s, rounded windows stay whole seconds.
    let (_, twenty_eight) = at(28);
    assert_eq!(twenty_eight[0], "xcbench_slo:error_ratio:rate280s");
    // The factors do not scale.
    assert_eq!(
        at(60).0.matches("> (14.4 * 0.01)").count(),
        at(30).0.matches("> (14.4 * 0.01)").count()
    );
}

#[test]
fn a_period_outside_the_windows_is_refused_naming_the_flag() {
    let objectives = sample();
    for (period, value) in [
        (Duration::from_secs(5 * DAY), "5d"),
        (Duration::from_secs(6 * DAY - 1), "518399s"),
        (Duration::from_secs(366 * DAY), "366d"),
        (Duration::from_millis(1_500), "1500ms"),
    ] {
        let e = rules(&objectives, period).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("--period = \"{value}\": must be from 6d to 365d: the shortest alert window (5m of a 30d period) scales with it and must be at least 1m")
        );
    }
    let r = rules(&objectives, MIN_PERIOD).unwrap();
    assert!(r.yaml.contains("xcbench_slo:error_ratio:rate1m\n"));
    assert!(rules(&objectives, MAX_PERIOD).is_ok());
}

#[test]
fn odd_names_and_label_values_survive_yaml_promql_and_templates() {
    let mut objectives = sample();
    objectives.retain(|o| o.name == "stamp-rtt-p99" || o.name == "loss");
    let odd = "we\"ird\\ {{ .Name }}: #x ü 延迟";
    objectives[0].name = odd.to_owned();
    objectives[0].select.src_region = Some("east \"1\" \\".to_owned());
    objectives[0].description = Some("two\nlines".to_owned());
    // Two names that sanitize alike still get unique alert names.
    objectives[1].name = "We\"ird - {{ .Name }}: #x".to_owned();
    let r = rules(&objectives, DEFAULT_PERIOD).unwrap();
    let groups = parse(&r.yaml);
    let g = &groups[0];
    assert_eq!(text(g, "name"), format!("xcbench-slo/{odd}"));
    let budget = rule(g, "record", "xcbench_slo:error_budget").unwrap();
    assert_eq!(text(&budget["labels"], "objective"), odd);
    let ratio = text(
        rule(g, "record", "xcbench_slo:error_ratio:rate5m").unwrap(),
        "expr",
    );
    assert!(
        ratio.contains("src_region=\"east \\\"1\\\" \\\\\""),
        "{ratio}"
    );
    let page = rule(g, "alert", "xcbench_slo_we_ird_name_x_page").unwrap();
    assert!(text(page, "expr").contains(
        "xcbench_slo:error_ratio:rate1h{objective=\"we\\\"ird\\\\ {{ .Name }}: #x ü 延迟\"}"
    ));
    assert_eq!(
        text(&page["annotations"], "summary"),
        "SLO we\"ird\\ {{ \"{{\" }} .Name }}: #x ü 延迟 (rtt p99 <= 3ms) burns its error budget fast"
    );
    assert!(rule(&groups[2], "alert", "xcbench_slo_we_ird_name_x_2_page").is_some());
    // The description's line break stays in its comment line.
    assert!(r.yaml.contains("  # two lines\n"));
}

#[test]
fn helpers_spell_durations_numbers_and_names() {
    assert_eq!(seconds_text(259_200), "3d");
    assert_eq!(seconds_text(5_040), "84m");
    assert_eq!(seconds_text(70), "70s");
    assert_eq!(seconds_text(3_600), "1h");
    assert_eq!(number(14.4), "14.4");
    assert_eq!(number(6.0), "6");
    assert_eq!(number(0.1 / 100.0), "0.001");
    assert_eq!(number(0.01 / 100.0), "0.0001");
    assert_eq!(number(0.0), "0");
    let mut taken = BTreeSet::new();
    assert_eq!(unique_stem("a-b", &mut taken), "xcbench_slo_a_b");
    assert_eq!(unique_stem("A_b", &mut taken), "xcbench_slo_a_b_2");
    assert_eq!(unique_stem("a_b_2", &mut taken), "xcbench_slo_a_b_2_2");
    assert_eq!(unique_stem("延迟", &mut taken), "xcbench_slo_objective");
    assert_eq!(unique_stem("--", &mut taken), "xcbench_slo_objective_2");
    assert_eq!(yaml_string("a\"b\\c ü"), "\"a\\\"b\\\\c \\u00fc\"");
    assert_eq!(template_escape("x{{y}}"), "x{{ \"{{\" }}y}}");
}

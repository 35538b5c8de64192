//! The SLO dashboard: each objective's verdict over time as the collector judges its SLO
//! file, why, the bounds on its statistic, and, from the rules `xcbench slo rules`
//! generates, the burn rate over each alert window and the error budget remaining.

use crate::model::{Dashboard, Kind, Mapping, Panel, Target, Unit, Variable};
use crate::query::vars;

pub(crate) const UID: &str = "xcbench-slo";

/// The verdict as a number a state timeline maps back to text: 1 pass, 2 inconclusive,
/// 3 fail, 0 not judged yet (the collector exports 1 for the current verdict and 0 for the
/// others; all 0 before its first judgement).
pub(crate) fn verdict_expr() -> String {
    let o = vars(&["objective"]);
    format!(
        "max by (objective) (\n    xcbench_slo_verdict{{{o},verdict=\"pass\"}} * 1\n  or xcbench_slo_verdict{{{o},verdict=\"inconclusive\"}} * 2\n  or xcbench_slo_verdict{{{o},verdict=\"fail\"}} * 3\n)"
    )
}

fn verdict_mappings(p: Panel) -> Panel {
    // 0: the collector has not judged the objective yet (every verdict series at 0).
    p.mapping(Mapping::value("0", "not judged yet", "text"))
        .mapping(Mapping::value("1", "pass", "green"))
        .mapping(Mapping::value("2", "inconclusive", "orange"))
        .mapping(Mapping::value("3", "FAIL", "red"))
}

pub(crate) fn dashboard() -> Dashboard {
    let o = vars(&["objective"]);
    let ratios = format!(
        "label_replace({{__name__=~\"xcbench_slo:error_ratio:rate.+\",{o}}}, \"window\", \"$1\", \"__name__\", \"xcbench_slo:error_ratio:rate(.+)\")"
    );
    Dashboard::new(
        UID,
        "xcbench / SLOs",
        "The SLO file's objectives: verdicts over time as the collector judges them from its history (slo = in the collector's config), their reasons and bounds, burn rates and the error budget remaining (rules from `xcbench slo rules`).",
    )
    .var(
        Variable::query(
            "objective",
            "Objective",
            "Objectives of the collector's SLO file.",
            "xcbench_slo_verdict",
            "objective",
        )
        .multi(),
    )
    .row(
        "Verdicts",
        vec![
            verdict_mappings(
                Panel::new(
                    Kind::StateTimeline,
                    "Verdict over time",
                    "Each objective's verdict (pass, inconclusive, FAIL) as the collector last judged it from its full-resolution history over the objective's window, every slo_interval: exact counts within the threshold and a Clopper-Pearson bound at the objective's confidence. Inconclusive means not enough evidence either way, or a data-quality guard (see the reasons).",
                    Unit::Count,
                )
                .size(24, 8)
                .thresholds("green", &[]),
            )
            .target(Target::series(verdict_expr(), "{{objective}}")),
            verdict_mappings(
                Panel::new(
                    Kind::Table,
                    "Objectives now",
                    "The current verdict of each objective, whether it is key (a FAIL fails the gate) or a warning, and the lower and upper bound on its statistic (the fraction of samples within the threshold, or the ratio) at its confidence.",
                    Unit::Count,
                )
                .override_by_name(
                    "lower bound",
                    serde_json::json!([{ "id": "unit", "value": "percentunit" }, { "id": "custom.cellOptions", "value": { "type": "auto" } }, { "id": "mappings", "value": [] }, { "id": "decimals", "value": 3 }]),
                )
                .override_by_name(
                    "upper bound",
                    serde_json::json!([{ "id": "unit", "value": "percentunit" }, { "id": "custom.cellOptions", "value": { "type": "auto" } }, { "id": "mappings", "value": [] }, { "id": "decimals", "value": 3 }]),
                ),
            )
            .target(Target::table(format!(
                "max by (objective, key) (\n    xcbench_slo_verdict{{{o},verdict=\"pass\"}} * 1\n  or xcbench_slo_verdict{{{o},verdict=\"inconclusive\"}} * 2\n  or xcbench_slo_verdict{{{o},verdict=\"fail\"}} * 3\n)"
            )))
            .target(Target::table(format!(
                "max by (objective) (xcbench_slo_bound{{{o},side=\"lower\"}})"
            )))
            .target(Target::table(format!(
                "max by (objective) (xcbench_slo_bound{{{o},side=\"upper\"}})"
            )))
            .transform("merge", serde_json::json!({}))
            .transform(
                "organize",
                serde_json::json!({
                    "excludeByName": { "Time": true },
                    "renameByName": { "Value #A": "verdict", "Value #B": "lower bound", "Value #C": "upper bound" }
                }),
            ),
            Panel::new(
                Kind::Table,
                "Why",
                "The reasons behind each objective's verdict as last judged: bound (the bound decided it), undecided (need more probes), no_samples, few_samples, silent agents, dropped snapshots, restarts, coverage, clock error, skipped probes, ...",
                Unit::Count,
            )
            .custom(serde_json::json!({ "cellOptions": { "type": "auto" } }))
            .target(Target::table(format!(
                "max by (objective, reason) (xcbench_slo_reason{{{o}}}) == 1"
            )))
            .transform(
                "organize",
                serde_json::json!({ "excludeByName": { "Time": true, "Value": true } }),
            ),
            Panel::new(
                Kind::Stat,
                "Last judged",
                "Seconds since the collector last judged its SLO file (collector clock); it judges every slo_interval.",
                Unit::Seconds,
            )
            .thresholds("green", &[(300.0, "red")])
            .target(Target::instant(
                "time() - max(xcbench_slo_evaluated_timestamp_seconds)",
                "age",
            )),
        ],
    )
    .row(
        "Error budget (rules from xcbench slo rules)",
        vec![
            Panel::new(
                Kind::TimeSeries,
                "Burn rate per alert window",
                "Each objective's error ratio over each window the alerts read (recording rules xcbench_slo:error_ratio:rate<window>) divided by its error budget: 1 spends the budget exactly over the period; the page alerts at 14.4 (1h and 5m) or 6 (6h and 30m), tickets at 3 and 1. Latency ratios count samples in the bucket straddling the threshold as bad.",
                Unit::Count,
            )
            .thresholds("green", &[(1.0, "orange"), (6.0, "red")])
            .custom(serde_json::json!({ "thresholdsStyle": { "mode": "line" } }))
            .target(Target::series(
                format!("{ratios}\n  / on(objective) group_left() xcbench_slo:error_budget{{{o}}}"),
                "{{objective}} {{window}}",
            )),
            Panel::new(
                Kind::BarGauge,
                "Error budget remaining",
                "1 - (error ratio over the whole period, rule xcbench_slo:error_ratio:period, evaluated every 5m) / error budget, per objective: 100% is untouched, 0 spent, below 0 overspent. Prometheus must keep the whole period (--storage.tsdb.retention.time at least the period, 30d by default); with less it covers only what is kept.",
                Unit::Ratio,
            )
            .min(-1.0)
            .max(1.0)
            .thresholds("red", &[(0.0, "orange"), (0.25, "green")])
            .target(Target::instant(
                format!(
                    "1 - xcbench_slo:error_ratio:period{{{o}}}\n  / on(objective) xcbench_slo:error_budget{{{o}}}"
                ),
                "{{objective}}",
            )),
        ],
    )
}

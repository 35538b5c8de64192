//! The interconnect overview: the mesh as a matrix (one cloud's agents against the other's,
//! p99 RTT over the selected range per cell, both directions, coloured against a threshold
//! the reader sets, grey without data, each cell a link to the pair), the worst pairs, the
//! agents reporting, and the launch region pairs.

use crate::model::{Dashboard, Kind, Mapping, Panel, Target, Unit, Variable};
use crate::pair;
use crate::query::{loss, quantile, sel, vars, RANGE, RATE};

pub(crate) const UID: &str = "xcbench-overview";

/// Azure region and OCI region of each launch pair (ExpressRoute <-> FastConnect
/// interconnect locations).
pub(crate) const LAUNCH_PAIRS: &[(&str, &str)] = &[
    ("eastus", "us-ashburn-1"),
    ("uksouth", "uk-london-1"),
    ("canadacentral", "ca-toronto-1"),
    ("westeurope", "eu-amsterdam-1"),
];

fn probe_vars() -> String {
    vars(&["protocol", "kind", "load"])
}

/// A link from a matrix cell to the pair dashboard: the row's agent and the column's.
fn cell_link(src: &str, dst: &str, src_cloud: &str, dst_cloud: &str) -> String {
    format!(
        "/d/{uid}/xcbench-pair-detail?var-src_cloud={src_cloud}&var-src_region=$__all&var-src_agent={src}&var-dst_cloud={dst_cloud}&var-dst_region=$__all&var-dst_agent={dst}&${{protocol:queryparam}}&${{kind:queryparam}}&${{load:queryparam}}&${{__url_time_range}}",
        uid = pair::UID
    )
}

/// One direction of the mesh as a matrix: rows are side A's agents, columns side B's.
fn matrix(title: &str, from_a: bool) -> Panel {
    let (src_cloud, dst_cloud, row, column) = if from_a {
        ("$a_cloud", "$b_cloud", "src_agent", "dst_agent")
    } else {
        ("$b_cloud", "$a_cloud", "dst_agent", "src_agent")
    };
    let selector = sel(&[
        &format!("src_cloud=~\"{src_cloud}\",dst_cloud=~\"{dst_cloud}\""),
        &probe_vars(),
    ]);
    let link = if from_a {
        cell_link(
            "${__data.fields[0]}",
            "${__field.name}",
            "$a_cloud",
            "$b_cloud",
        )
    } else {
        cell_link(
            "${__field.name}",
            "${__data.fields[0]}",
            "$b_cloud",
            "$a_cloud",
        )
    };
    let what = if from_a {
        "probes sent by the row's agent to the column's"
    } else {
        "probes sent by the column's agent to the row's"
    };
    Panel::new(
        Kind::Table,
        title,
        &format!(
            "p99 RTT over the selected range of {what} (histogram_quantile over the buckets' increase across the range; protocol, kind and load as selected above). Green below the RTT threshold variable, red at or above it; grey: no probe answered in the range. Click a cell for the pair."
        ),
        Unit::Seconds,
    )
    .mapping(Mapping::missing())
    .link("Pair detail", &link)
    .target(Target::table(quantile(
        "0.99",
        "xcbench_rtt_seconds",
        &selector,
        &["src_agent", "dst_agent"],
        RANGE,
    )))
    .target(Target::instant("vector($rtt_threshold_ms / 1000)", "threshold1"))
    .transform(
        "configFromData",
        serde_json::json!({
            "configRefId": "B",
            "mappings": [{ "fieldName": "threshold1", "handlerKey": "threshold1", "reducerId": "lastNotNull" }],
            "applyTo": { "id": "byType", "options": "number" },
        }),
    )
    .transform(
        "groupingToMatrix",
        serde_json::json!({
            "rowField": row,
            "columnField": column,
            "valueField": "Value",
            "emptyValue": "null",
        }),
    )
}

pub(crate) fn dashboard() -> Dashboard {
    let sent = "xcbench_probes_sent_total";
    let p = probe_vars();
    let launch: Vec<String> = LAUNCH_PAIRS
        .iter()
        .flat_map(|(az, oci)| [(az, oci), (oci, az)])
        .map(|(s, d)| format!("src_region=\"{s}\",dst_region=\"{d}\""))
        .collect();
    let launch_p99 = launch
        .iter()
        .map(|pair| {
            quantile(
                "0.99",
                "xcbench_rtt_seconds",
                &sel(&[pair, &p]),
                &["src_region", "dst_region"],
                RANGE,
            )
        })
        .collect::<Vec<_>>()
        .join("\n  or ");
    let launch_loss = launch
        .iter()
        .map(|pair| {
            format!(
                "({})",
                loss(&sel(&[pair, &p]), &["src_region", "dst_region"], RANGE)
            )
        })
        .collect::<Vec<_>>()
        .join("\n  or ");
    let pair_link = format!(
        "/d/{}/xcbench-pair-detail?var-src_cloud=$__all&var-src_region=$__all&var-src_agent=${{__data.fields.src_agent}}&var-dst_cloud=$__all&var-dst_region=$__all&var-dst_agent=${{__data.fields.dst_agent}}&${{protocol:queryparam}}&${{kind:queryparam}}&${{load:queryparam}}&${{__url_time_range}}",
        pair::UID
    );
    Dashboard::new(
        UID,
        "xcbench / Interconnect overview",
        "The Azure <-> OCI mesh at a glance: p99 RTT per pair in both directions against a threshold you set, the worst pairs by p99 and by loss, agents reporting, and the launch region pairs.",
    )
    .var(
        Variable::query("a_cloud", "Rows", "The cloud whose agents are the matrix's rows.", sent, "src_cloud")
            .starting_at("azure")
            .one_of(),
    )
    .var(
        Variable::query("b_cloud", "Columns", "The cloud whose agents are the matrix's columns.", sent, "dst_cloud")
            .starting_at("oci")
            .one_of(),
    )
    .var(
        Variable::query("protocol", "Protocol", "udp (STAMP), tcp or quic.", sent, "protocol")
            .starting_at("udp"),
    )
    .var(
        Variable::query(
            "kind",
            "Probe kind",
            "stamp; connect; rr; resume; datagram.",
            &format!("{sent}{{{}}}", vars(&["protocol"])),
            "kind",
        )
        .starting_at("stamp"),
    )
    .var(
        Variable::query(
            "load",
            "Load",
            "idle, or bench (probes out while a throughput test ran).",
            &format!("{sent}{{{}}}", vars(&["protocol", "kind"])),
            "load",
        )
        .starting_at("idle"),
    )
    .var(Variable::textbox(
        "rtt_threshold_ms",
        "RTT threshold (ms)",
        "Matrix cells at or above this p99 RTT are red, below it green.",
        "2",
    ))
    .row(
        "The mesh",
        vec![
            matrix("p99 RTT, probes from the row's cloud", true),
            matrix("p99 RTT, probes from the column's cloud", false),
            crate::fleet::agents_reporting().size(6, 6),
            Panel::new(
                Kind::Table,
                "Launch region pairs",
                "Azure and OCI regions joined at the same interconnect location (eastus - us-ashburn-1, uksouth - uk-london-1, canadacentral - ca-toronto-1, westeurope - eu-amsterdam-1), each way: p99 RTT and loss over the selected range, where agents carry those region labels.",
                Unit::Seconds,
            )
            .size(18, 6)
            .custom(serde_json::json!({ "cellOptions": { "type": "auto" } }))
            .override_by_name("loss", serde_json::json!([{ "id": "unit", "value": "percentunit" }, { "id": "decimals", "value": 3 }]))
            .target(Target::table(launch_p99))
            .target(Target::table(launch_loss))
            .transform("merge", serde_json::json!({}))
            .transform(
                "organize",
                serde_json::json!({
                    "excludeByName": { "Time": true },
                    "renameByName": { "Value #A": "p99 RTT", "Value #B": "loss" }
                }),
            ),
        ],
    )
    .row(
        "Worst pairs",
        vec![
            Panel::new(
                Kind::Table,
                "Worst pairs by p99 RTT",
                "The ten pairs with the highest p99 RTT over the selected range (protocol, kind and load as selected). Click a row for the pair.",
                Unit::Seconds,
            )
            .custom(serde_json::json!({ "cellOptions": { "type": "auto" } }))
            .link("Pair detail", &pair_link)
            .target(Target::table(format!(
                "topk(10, {})",
                quantile(
                    "0.99",
                    "xcbench_rtt_seconds",
                    &p,
                    &["src_agent", "dst_agent"],
                    RANGE
                )
            )))
            .transform("organize", serde_json::json!({ "excludeByName": { "Time": true } }))
            .transform("sortBy", serde_json::json!({ "sort": [{ "field": "Value", "desc": true }] })),
            Panel::new(
                Kind::Table,
                "Worst pairs by loss",
                "The ten pairs with the highest share of probes lost over the selected range (lost over received + lost, as the gate judges; protocol, kind and load as selected). Click a row for the pair.",
                Unit::Ratio,
            )
            .custom(serde_json::json!({ "cellOptions": { "type": "auto" } }))
            .decimals(3)
            .link("Pair detail", &pair_link)
            .target(Target::table(format!(
                "topk(10, {})",
                loss(&p, &["src_agent", "dst_agent"], RANGE)
            )))
            .transform("organize", serde_json::json!({ "excludeByName": { "Time": true } }))
            .transform("sortBy", serde_json::json!({ "sort": [{ "field": "Value", "desc": true }] })),
        ],
    )
    .row(
        "Over time",
        vec![
            Panel::new(
                Kind::TimeSeries,
                "p99 RTT per pair",
                "p99 RTT per pair over each $__rate_interval (buckets; protocol, kind and load as selected).",
                Unit::Seconds,
            )
            .target(Target::series(
                quantile("0.99", "xcbench_rtt_seconds", &p, &["src_agent", "dst_agent"], RATE),
                "{{src_agent}} -> {{dst_agent}}",
            )),
            Panel::new(
                Kind::TimeSeries,
                "Loss per pair",
                "Probes lost over probes resolved (received + lost) in each $__rate_interval, per pair (protocol, kind and load as selected): the ratio the gate judges.",
                Unit::Ratio,
            )
            .min(0.0)
            .target(Target::series(
                loss(&p, &["src_agent", "dst_agent"], RATE),
                "{{src_agent}} -> {{dst_agent}}",
            )),
        ],
    )
}

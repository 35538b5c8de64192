//! The throughput dashboard: the scheduled tests' goodput per pair and protocol, their
//! slowest interval, retransmits and UDP loss, and what a test does to the pair's latency
//! (test times as annotations over the RTT panel, so bufferbloat is visible).

use crate::model::{Dashboard, Kind, Panel, Target, Unit, Variable};
use crate::pair;
use crate::query::{quantile, sel, vars, RANGE, RATE};

pub(crate) const UID: &str = "xcbench-throughput";

pub(crate) fn dashboard() -> Dashboard {
    let mut d = Dashboard::new(
        UID,
        "xcbench / Throughput",
        "Scheduled throughput tests between agents: goodput, the slowest interval, retransmits, UDP loss, and the latency increase under load.",
    )
    .var(Variable::query(
        "src_cloud",
        "Testing cloud",
        "The cloud of the agents that ran the tests.",
        "xcbench_bench_tests_total",
        "src_cloud",
    ))
    .var(Variable::query(
        "src_region",
        "Testing region",
        "Their region, among the cloud's.",
        &format!("xcbench_bench_tests_total{{{}}}", vars(&["src_cloud"])),
        "src_region",
    ))
    .var(
        Variable::query(
            "src_agent",
            "Testing agent",
            "The agent that ran the tests.",
            &format!(
                "xcbench_bench_tests_total{{{}}}",
                vars(&["src_cloud", "src_region"])
            ),
            "src_agent",
        )
        .multi(),
    )
    .var(
        Variable::query(
            "dst_agent",
            "Peer",
            "The agent tested against.",
            &format!("xcbench_bench_tests_total{{{}}}", vars(&["src_agent"])),
            "dst_agent",
        )
        .multi(),
    )
    .var(
        Variable::query(
            "protocol",
            "Protocol",
            "tcp, udp or quic.",
            &format!(
                "xcbench_bench_tests_total{{{}}}",
                vars(&["src_agent", "dst_agent"])
            ),
            "protocol",
        )
        .multi(),
    );
    d = d.annotate(pair::test_annotation());
    d.row("Goodput", goodput())
        .row("Latency under load", latency())
}

fn flows() -> String {
    vars(&[
        "src_cloud",
        "src_region",
        "src_agent",
        "dst_agent",
        "protocol",
    ])
}

fn goodput() -> Vec<Panel> {
    let f = flows();
    let by = "src_agent, dst_agent, protocol, direction";
    vec![
        Panel::new(
            Kind::TimeSeries,
            "Goodput of the last test",
            "Each pair's and protocol's last scheduled test: bits delivered to the receiving application over its counted time (after the omitted warm-up), and its slowest counted interval (dashed).",
            Unit::BitsPerSecond,
        )
        .size(24, 8)
        .custom(serde_json::json!({ "spanNulls": true }))
        .target(Target::series(
            format!("xcbench_bench_goodput_bytes_per_second{{{f}}} * 8"),
            "{{src_agent}} -> {{dst_agent}} {{protocol}} {{direction}}",
        ))
        .target(Target::series(
            format!("xcbench_bench_interval_goodput_min_bytes_per_second{{{f}}} * 8"),
            "slowest interval {{src_agent}} -> {{dst_agent}} {{protocol}} {{direction}}",
        ))
        .override_by_regex(
            "slowest interval.*",
            serde_json::json!([{ "id": "custom.lineStyle", "value": { "fill": "dash", "dash": [10, 10] } }]),
        ),
        Panel::new(
            Kind::Table,
            "Goodput over the range",
            "Per pair, protocol and direction over the selected range: bytes the receivers delivered per counted second (rate of xcbench_bench_bytes_total over rate of xcbench_bench_seconds_total, side=receiver), in bits/s.",
            Unit::BitsPerSecond,
        )
        .custom(serde_json::json!({ "cellOptions": { "type": "auto" } }))
        .target(Target::table(format!(
            "sum by ({by}) (increase(xcbench_bench_bytes_total{{{f},side=\"receiver\"}}[{RANGE}])) * 8\n  / (sum by ({by}) (increase(xcbench_bench_seconds_total{{{f},side=\"receiver\"}}[{RANGE}])) > 0)"
        )))
        .transform("organize", serde_json::json!({ "excludeByName": { "Time": true } })),
        Panel::new(
            Kind::Table,
            "Tests by outcome over the range",
            "Scheduled tests per pair and protocol over the selected range: ok, refused (the peer or this agent was busy or declined), failed (no connection, or the peer was lost).",
            Unit::Count,
        )
        .custom(serde_json::json!({ "cellOptions": { "type": "auto" } }))
        .target(Target::table(format!(
            "sum by (src_agent, dst_agent, protocol, result) (increase(xcbench_bench_tests_total{{{f}}}[{RANGE}]))"
        )))
        .transform("organize", serde_json::json!({ "excludeByName": { "Time": true } })),
        Panel::new(
            Kind::TimeSeries,
            "Retransmits per second of test",
            "TCP segments retransmitted (TCP_INFO) or QUIC packets declared lost by the tests' senders, per counted second of test, over each $__rate_interval.",
            Unit::PerSecond,
        )
        .target(Target::series(
            format!(
                "sum by (src_agent, dst_agent, protocol) (increase(xcbench_bench_retransmits_total{{{f}}}[{RATE}]))\n  / (sum by (src_agent, dst_agent, protocol) (increase(xcbench_bench_seconds_total{{{f},side=\"sender\"}}[{RATE}])) > 0)"
            ),
            "{{src_agent}} -> {{dst_agent}} {{protocol}}",
        )),
        Panel::new(
            Kind::TimeSeries,
            "UDP test loss",
            "Datagrams missing from the sequence at the receivers of UDP tests, per datagram expected (missing + counted), over each $__rate_interval.",
            Unit::Ratio,
        )
        .min(0.0)
        .target(Target::series(
            format!(
                "sum by (src_agent, dst_agent) (increase(xcbench_bench_datagrams_lost_total{{{f},protocol=\"udp\"}}[{RATE}]))\n  / (sum by (src_agent, dst_agent) (increase(xcbench_bench_datagrams_lost_total{{{f},protocol=\"udp\"}}[{RATE}]) + increase(xcbench_bench_datagrams_total{{{f},protocol=\"udp\"}}[{RATE}])) > 0)"
            ),
            "{{src_agent}} -> {{dst_agent}}",
        )),
    ]
}

fn latency() -> Vec<Panel> {
    let probes = sel(&[
        &vars(&["src_cloud", "src_region", "src_agent", "dst_agent"]),
        "protocol=\"udp\",kind=\"stamp\"",
    ]);
    let p99 = |load: &str| {
        quantile(
            "0.99",
            "xcbench_rtt_seconds",
            &format!("{probes},load=\"{load}\""),
            &["src_agent", "dst_agent"],
            RANGE,
        )
    };
    vec![
        Panel::new(
            Kind::TimeSeries,
            "STAMP RTT p99 with the tests marked",
            "p99 STAMP RTT per pair over each $__rate_interval, idle and under a test (load=bench); the annotations mark the tests, so a queue a transfer builds shows as the bench line rising above idle.",
            Unit::Seconds,
        )
        .custom(serde_json::json!({ "spanNulls": true }))
        .target(Target::series(
            quantile(
                "0.99",
                "xcbench_rtt_seconds",
                &probes,
                &["src_agent", "dst_agent", "load"],
                RATE,
            ),
            "{{src_agent}} -> {{dst_agent}} {{load}}",
        )),
        Panel::new(
            Kind::Table,
            "Latency increase under load over the range",
            "p99 STAMP RTT under a test minus p99 idle, per pair, over the selected range (buckets); and the mean increase over the last hour from the recording rule xcbench:rtt_seconds:mean_under_load_increase_rate1h (STAMP too).",
            Unit::Seconds,
        )
        .custom(serde_json::json!({ "cellOptions": { "type": "auto" } }))
        .target(Target::table(format!("{}\n  - {}", p99("bench"), p99("idle"))))
        .target(Target::table(format!(
            "max by (src_agent, dst_agent) (xcbench:rtt_seconds:mean_under_load_increase_rate1h{{{},protocol=\"udp\",kind=\"stamp\"}})",
            vars(&["src_agent", "dst_agent"])
        )))
        .transform("merge", serde_json::json!({}))
        .transform(
            "organize",
            serde_json::json!({
                "excludeByName": { "Time": true },
                "renameByName": { "Value #A": "p99 increase", "Value #B": "mean increase (1h rule)" }
            }),
        ),
    ]
}

//! The fleet dashboard: the agents and the collector themselves, the panels that tell a
//! slow network from a sick agent (a late report, an unsynchronised clock, user-space
//! timestamps, refused or malformed packets, rejected snapshots).

use crate::model::{Dashboard, Kind, Mapping, Panel, Target, Unit, Variable};
use crate::query::{per_second, vars};

pub(crate) const UID: &str = "xcbench-fleet";

/// Agents reporting against agents in the mesh: those whose last snapshot is recent, and
/// every agent the series name at either end (so a configured peer that never reported
/// counts, once any agent probes it).
pub(crate) fn agents_reporting() -> Panel {
    Panel::new(
        Kind::Stat,
        "Agents reporting",
        "reporting: agents whose last snapshot reached the collector within the last 60 s; in the mesh: the agents of the collector's mesh file (xcbench_mesh_agent_info), or without one every agent named at either end of a probe series (so a configured peer that never reported still counts).",
        Unit::Count,
    )
    .target(Target::instant(
        "count(time() - xcbench_agent_last_report_timestamp_seconds < 60) or vector(0)",
        "reporting",
    ))
    .target(Target::instant(
        "count(xcbench_mesh_agent_info)\nor count(group by (agent) (\n    label_replace(xcbench_probe_info, \"agent\", \"$1\", \"src_agent\", \"(.+)\")\n  or label_replace(xcbench_probe_info, \"agent\", \"$1\", \"dst_agent\", \"(.+)\")\n))",
        "in the mesh",
    ))
}

pub(crate) fn dashboard() -> Dashboard {
    let a = vars(&["cloud", "region", "agent"]);
    let src = "src_cloud=~\"$cloud\",src_region=~\"$region\",src_agent=~\"$agent\"";
    Dashboard::new(
        UID,
        "xcbench / Fleet health",
        "The agents and the collector: report age, clocks, timestamping, reflector and sender errors, snapshots and series.",
    )
    .var(Variable::query(
        "cloud",
        "Cloud",
        "The agents' cloud.",
        "xcbench_agent_last_report_timestamp_seconds",
        "cloud",
    ))
    .var(Variable::query(
        "region",
        "Region",
        "The agents' region, among the cloud's.",
        &format!("xcbench_agent_last_report_timestamp_seconds{{{}}}", vars(&["cloud"])),
        "region",
    ))
    .var(
        Variable::query(
            "agent",
            "Agent",
            "Agents of the region.",
            &format!(
                "xcbench_agent_last_report_timestamp_seconds{{{}}}",
                vars(&["cloud", "region"])
            ),
            "agent",
        )
        .multi(),
    )
    .row(
        "Reports and clocks",
        vec![
            Panel::new(
                Kind::BarGauge,
                "Last report age",
                "Seconds since the collector last accepted a snapshot from each agent (collector clock): an agent reports every report_interval (10 s by default), so more than a few intervals means it stopped or cannot reach the collector.",
                Unit::Seconds,
            )
            .thresholds("green", &[(30.0, "orange"), (120.0, "red")])
            .target(Target::instant(
                format!("time() - max by (agent) (xcbench_agent_last_report_timestamp_seconds{{{a}}})"),
                "{{agent}}",
            )),
            Panel::new(
                Kind::Table,
                "Clocks and timestamping",
                "Per probing agent and peer: whether both ends' clocks reported synchronised to UTC in the last STAMP reply (1 yes), their combined error estimate (RFC 8762), which bounds one-way delay error, and how STAMP receive times are taken (kernel SO_TIMESTAMPNS, or user space where the kernel gives none; QUIC and connect probes are always timed in user space).",
                Unit::Count,
            )
            .mapping(Mapping::value("0", "unsynchronised", "red"))
            .override_by_name(
                "clock error",
                serde_json::json!([{ "id": "unit", "value": "s" }, { "id": "mappings", "value": [] }, { "id": "custom.cellOptions", "value": { "type": "auto" } }]),
            )
            .target(Target::table(format!(
                "min by (src_agent, dst_agent) (xcbench_clock_synchronized{{{src}}})"
            )))
            .target(Target::table(format!(
                "max by (src_agent, dst_agent) (xcbench_clock_error_seconds{{{src}}})"
            )))
            .target(Target::table(format!(
                "count by (src_agent, dst_agent, timestamping) (xcbench_probe_info{{{src},protocol=\"udp\",kind=\"stamp\"}})"
            )))
            .transform("merge", serde_json::json!({}))
            .transform(
                "organize",
                serde_json::json!({
                    "excludeByName": { "Time": true, "Value #C": true },
                    "renameByName": { "Value #A": "synchronised", "Value #B": "clock error" }
                }),
            ),
            Panel::new(
                Kind::TimeSeries,
                "Clock error estimate",
                "The two clocks' combined error estimate per probing agent and peer, from the last STAMP reply of each report: one-way delays are only as exact as this.",
                Unit::Seconds,
            )
            .target(Target::series(
                format!("max by (src_agent, dst_agent) (xcbench_clock_error_seconds{{{src}}})"),
                "{{src_agent}} -> {{dst_agent}}",
            )),
            Panel::new(
                Kind::TimeSeries,
                "Probes skipped and clock steps",
                "Per second over each $__rate_interval: probes the schedule called for that a prober skipped after a stall (an overloaded agent), and replies whose delays were discarded because a clock stepped (the prober's wall clock while the probe was out, or the far end's inside its dwell).",
                Unit::PerSecond,
            )
            .target(Target::series(
                per_second(&format!("xcbench_probes_skipped_total{{{src}}}"), &["src_agent"]),
                "skipped {{src_agent}}",
            ))
            .target(Target::series(
                per_second(&format!("xcbench_probes_clock_steps_total{{{src}}}"), &["src_agent"]),
                "clock steps {{src_agent}}",
            )),
        ],
    )
    .row(
        "Reflectors and senders",
        vec![
            Panel::new(
                Kind::TimeSeries,
                "Reflector: answered, refused, malformed, unauthenticated, replayed, rate-limited",
                "Per second over each $__rate_interval, per agent and protocol: probes the reflector answered; sessions or connections it refused (table full, per-source cap, unknown client certificate, handshake timeout); packets or connections dropped for not being probe framing; in STAMP authenticated mode, test packets refused for their HMAC (or a source with no key) and as replays; and STAMP test packets left unanswered over the reflector's rate limits (per source or in all: a flood, or senders probing faster than max_rate_per_source allows).",
                Unit::PerSecond,
            )
            .target(Target::series(
                per_second(&format!("xcbench_reflector_reflected_total{{{a}}}"), &["agent", "protocol"]),
                "answered {{agent}} {{protocol}}",
            ))
            .target(Target::series(
                per_second(&format!("xcbench_reflector_refused_total{{{a}}}"), &["agent", "protocol"]),
                "refused {{agent}} {{protocol}}",
            ))
            .target(Target::series(
                per_second(&format!("xcbench_reflector_malformed_total{{{a}}}"), &["agent", "protocol"]),
                "malformed {{agent}} {{protocol}}",
            ))
            .target(Target::series(
                per_second(&format!("xcbench_reflector_unauthenticated_total{{{a}}}"), &["agent"]),
                "unauthenticated {{agent}} udp",
            ))
            .target(Target::series(
                per_second(&format!("xcbench_reflector_replayed_total{{{a}}}"), &["agent"]),
                "replayed {{agent}} udp",
            ))
            .target(Target::series(
                per_second(&format!("xcbench_reflector_rate_limited_total{{{a}}}"), &["agent"]),
                "rate-limited {{agent}} udp",
            )),
            Panel::new(
                Kind::TimeSeries,
                "Sender: unmatched, malformed and unauthenticated replies",
                "Per second over each $__rate_interval, per agent: reflected packets that matched no probe sent (unknown sequence, wrong timestamp or source), datagrams on probe sockets that were not STAMP, and in authenticated mode replies whose HMAC the peer's keys do not give.",
                Unit::PerSecond,
            )
            .target(Target::series(
                per_second(&format!("xcbench_sender_unmatched_total{{{a}}}"), &["agent"]),
                "unmatched {{agent}}",
            ))
            .target(Target::series(
                per_second(&format!("xcbench_sender_malformed_total{{{a}}}"), &["agent"]),
                "malformed {{agent}}",
            ))
            .target(Target::series(
                per_second(&format!("xcbench_sender_unauthenticated_total{{{a}}}"), &["agent"]),
                "unauthenticated {{agent}}",
            )),
        ],
    )
    .row(
        "Collector",
        vec![
            Panel::new(
                Kind::TimeSeries,
                "Snapshots by result",
                "Snapshots the collector received per second over each $__rate_interval: accepted, duplicate (already taken and acknowledged: an agent resent after a lost reply), rejected (malformed, or from an unknown or mismatched agent).",
                Unit::PerSecond,
            )
            .target(Target::series(
                per_second("xcbench_collector_snapshots_total", &["result"]),
                "{{result}}",
            )),
            Panel::new(
                Kind::Stat,
                "Series held",
                "Series the collector holds (against its max_series limit): probe series per probing agent, peer, protocol, kind and load, plus one per scheduled throughput test direction.",
                Unit::Count,
            )
            .target(Target::instant("sum(xcbench_collector_series)", "series")),
            agents_reporting(),
        ],
    )
}

//! The pair dashboard: everything xcbench measures between two agents, latency first, then
//! loss, the transports' own view of the path, and the pair idle against under a throughput
//! test; throughput test times are annotations over it.

use crate::model::{Annotation, Dashboard, Kind, Panel, Target, Unit, Variable};
use crate::query::{loss, mean, pair, per_second, probes, quantile, ratio, sel, vars, RANGE, RATE};

/// Its uid, which the overview's links name.
pub(crate) const UID: &str = "xcbench-pair";

/// The quantiles drawn as lines, with their legend names.
const QUANTILES: &[(&str, &str)] = &[
    ("0.5", "p50"),
    ("0.9", "p90"),
    ("0.99", "p99"),
    ("0.999", "p99.9"),
];

/// The chained variables: source cloud -> region -> agent, then the destination's likewise
/// among the source's peers, then protocol, kind and load among that pair's series.
pub(crate) fn variables() -> Vec<Variable> {
    let m = "xcbench_probes_sent_total";
    vec![
        Variable::query("src_cloud", "From cloud", "The probing agent's cloud.", m, "src_cloud"),
        Variable::query(
            "src_region",
            "From region",
            "The probing agent's region, among the chosen cloud's.",
            &format!("{m}{{{}}}", vars(&["src_cloud"])),
            "src_region",
        ),
        Variable::query(
            "src_agent",
            "From agent",
            "The probing agent.",
            &format!("{m}{{{}}}", vars(&["src_cloud", "src_region"])),
            "src_agent",
        )
        .one_of(),
        Variable::query(
            "dst_cloud",
            "To cloud",
            "The reflecting agent's cloud, among the probing agent's peers.",
            &format!("{m}{{{}}}", vars(&["src_cloud", "src_region", "src_agent"])),
            "dst_cloud",
        ),
        Variable::query(
            "dst_region",
            "To region",
            "The reflecting agent's region.",
            &format!(
                "{m}{{{}}}",
                vars(&["src_cloud", "src_region", "src_agent", "dst_cloud"])
            ),
            "dst_region",
        ),
        Variable::query(
            "dst_agent",
            "To agent",
            "The reflecting agent.",
            &format!(
                "{m}{{{}}}",
                vars(&["src_cloud", "src_region", "src_agent", "dst_cloud", "dst_region"])
            ),
            "dst_agent",
        )
        .one_of(),
        Variable::query(
            "protocol",
            "Protocol",
            "udp (STAMP), tcp or quic.",
            &format!("{m}{{{}}}", pair()),
            "protocol",
        )
        .multi()
        .starting_at("udp"),
        Variable::query(
            "kind",
            "Probe kind",
            "stamp; connect (a fresh TCP or QUIC handshake); rr (request-response on an open connection); resume (QUIC 0-RTT); datagram (QUIC DATAGRAM).",
            &format!("{m}{{{},{}}}", pair(), vars(&["protocol"])),
            "kind",
        )
        .multi()
        .starting_at("stamp"),
        Variable::query(
            "load",
            "Load",
            "idle, or bench: probes that were out while a scheduled throughput test ran between the two agents.",
            &format!("{m}{{{},{}}}", pair(), vars(&["protocol", "kind"])),
            "load",
        )
        .multi()
        .starting_at("idle"),
    ]
}

/// Test times as annotations: each scheduled test the pair ran, when it was reported.
pub(crate) fn test_annotation() -> Annotation {
    Annotation {
        name: "Throughput tests".into(),
        expr: format!(
            "sum by (src_agent, dst_agent, protocol) (increase(xcbench_bench_tests_total{{{},result=\"ok\"}}[{RATE}])) > 0\nor sum by (src_agent, dst_agent, protocol) (increase(xcbench_bench_tests_total{{src_agent=~\"$dst_agent\",dst_agent=~\"$src_agent\",result=\"ok\"}}[{RATE}])) > 0",
            vars(&["src_agent", "dst_agent"])
        ),
        title: "throughput test {{protocol}}".into(),
        text: "{{src_agent}} -> {{dst_agent}}: a scheduled test (run by either end) ended within this interval; the mark appears once the collector has the result".into(),
        color: "rgba(255, 152, 48, 1)".into(),
    }
}

pub(crate) fn dashboard() -> Dashboard {
    let mut d = Dashboard::new(
        UID,
        "xcbench / Pair detail",
        "One pair of agents: RTT and one-way delay distributions, IPDV and jitter, loss by direction, the transports' path figures, and idle against under a throughput test.",
    );
    for v in variables() {
        d = d.var(v);
    }
    d.annotate(test_annotation())
        .row("Round-trip time", rtt())
        .row("One-way delay and delay variation", one_way())
        .row("Loss and delivery", losses())
        .row("Flows (ECMP paths)", flows())
        .row("TCP and QUIC path", transports())
        .row("Idle against under load", load())
}

fn rtt() -> Vec<Panel> {
    let s = probes();
    let mut lines = Vec::new();
    for (q, name) in QUANTILES {
        lines.push(Target::series(
            quantile(
                q,
                "xcbench_rtt_seconds",
                &s,
                &["protocol", "kind", "load"],
                RATE,
            ),
            format!("{{{{protocol}}}} {{{{kind}}}} {{{{load}}}} {name}"),
        ));
    }
    vec![
        Panel::new(
            Kind::Heatmap,
            "RTT heatmap",
            "Round-trip times per histogram bucket over each $__rate_interval: increase of xcbench_rtt_seconds_bucket summed over the selected series (choose one protocol and kind to see one distribution), drawn as the buckets are (not re-bucketed). Classic buckets only: a store fed the collector's native histograms (remote write with histograms = \"native\") leaves it empty, while the quantile panels read either. RTT = (T4-T1)-(T3-T2), the reflector's dwell excluded; T4 is the kernel receive timestamp where available.",
            Unit::Seconds,
        )
        .size(24, 9)
        .target(Target::heatmap(format!(
            "sum by (le) (increase(xcbench_rtt_seconds_bucket{{{s}}}[{RATE}]))"
        ))),
        Panel::new(
            Kind::TimeSeries,
            "RTT quantiles (from buckets)",
            "p50, p90, p99 and p99.9 per protocol, kind and load over each $__rate_interval, by histogram_quantile over the classic buckets' rates (exact to a bucket: the collector's edges) or over native histograms' (within 1% at the default native_histogram_error), any range.",
            Unit::Seconds,
        )
        .targets(lines),
        Panel::new(
            Kind::TimeSeries,
            "RTT quantiles (HdrHistogram, collector window)",
            "p50, p90, p99 and p99.9 over the collector's sliding window (xcbench_rtt_window_seconds), per series: from merged full-resolution HdrHistograms (0.1% or 512 ns), so finer than the buckets, but each point covers the window before it, not the panel's interval.",
            Unit::Seconds,
        )
        .target(Target::series(
            format!("xcbench_rtt_window_seconds{{{s},quantile=~\"0.5|0.9|0.99|0.999\"}}"),
            "{{protocol}} {{kind}} {{load}} p{{quantile}}",
        )),
        Panel::new(
            Kind::TimeSeries,
            "STAMP, TCP and QUIC p99 on one graph",
            "p99 RTT per protocol and probe kind over each $__rate_interval (buckets). connect and resume time a fresh handshake; rr and stamp an exchange on an open path, so they compare the transports' own cost.",
            Unit::Seconds,
        )
        .target(Target::series(
            quantile(
                "0.99",
                "xcbench_rtt_seconds",
                &sel(&[&pair(), &vars(&["load"])]),
                &["protocol", "kind"],
                RATE,
            ),
            "{{protocol}} {{kind}}",
        )),
        Panel::new(
            Kind::TimeSeries,
            "RTT mean",
            "Mean RTT per protocol and kind over each $__rate_interval: rate of the exact _sum over rate of _count (or a native histogram's sum over its count).",
            Unit::Seconds,
        )
        .target(Target::series(
            mean("xcbench_rtt_seconds", &s, &["protocol", "kind"], RATE),
            "{{protocol}} {{kind}}",
        )),
    ]
}

fn one_way() -> Vec<Panel> {
    let s = sel(&[&pair(), &vars(&["load"]), "protocol=\"udp\",kind=\"stamp\""]);
    let mut owd = Vec::new();
    for (q, name) in [("0.5", "p50"), ("0.99", "p99")] {
        owd.push(Target::series(
            quantile(q, "xcbench_one_way_delay_seconds", &s, &["direction"], RATE),
            format!("{{{{direction}}}} {name}"),
        ));
    }
    owd.push(Target::series(
        format!("max(xcbench_clock_error_seconds{{{s}}})"),
        "clock error bound",
    ));
    vec![
        Panel::new(
            Kind::TimeSeries,
            "One-way delay each way, with the clocks' error",
            "STAMP one-way delay forward (T2-T1) and reverse (T4-T3), p50 and p99 over each $__rate_interval (buckets), beside the two clocks' combined error estimate (RFC 8762 Error Estimate fields of the last reply): a one-way figure is only as exact as that bound.",
            Unit::Seconds,
        )
        .targets(owd)
        .override_by_name(
            "clock error bound",
            serde_json::json!([
                { "id": "custom.lineStyle", "value": { "fill": "dash", "dash": [10, 10] } },
                { "id": "color", "value": { "mode": "fixed", "fixedColor": "red" } }
            ]),
        ),
        Panel::new(
            Kind::TimeSeries,
            "IPDV p99 and jitter",
            "Absolute IP packet delay variation between consecutive STAMP probes (RFC 5481), p99 per direction over each $__rate_interval, and the RFC 3550 interarrival jitter estimate at the last report.",
            Unit::Seconds,
        )
        .target(Target::series(
            quantile("0.99", "xcbench_ipdv_seconds", &s, &["direction"], RATE),
            "IPDV {{direction}} p99",
        ))
        .target(Target::series(
            format!("max by (direction) (xcbench_jitter_seconds{{{s}}})"),
            "jitter {{direction}}",
        )),
    ]
}

fn losses() -> Vec<Panel> {
    let s = probes();
    let stamp = sel(&[&pair(), &vars(&["load"]), "protocol=\"udp\",kind=\"stamp\""]);
    let received = format!("xcbench_probes_received_total{{{s}}}");
    let resolved = format!("xcbench_probes_lost_total{{{s}}}[{RATE}]) + increase({received}");
    // Each over what the gate divides it by: copies and overtakes per reply, late replies
    // per resolved probe, skipped per probe the schedule called for.
    let counts = [
        ("xcbench_probes_duplicated_total", "duplicates per reply", received.clone()),
        ("xcbench_probes_reordered_total", "reordered per reply", received.clone()),
        ("xcbench_probes_late_total", "late per resolved probe", resolved),
        (
            "xcbench_probes_skipped_total",
            "skipped per scheduled probe",
            format!("xcbench_probes_sent_total{{{s}}}[{RATE}]) + increase(xcbench_probes_skipped_total{{{s}}}"),
        ),
    ];
    vec![
        Panel::new(
            Kind::TimeSeries,
            "Loss by direction",
            "STAMP probes lost forward and reverse over probes resolved (received + lost) in each $__rate_interval, as the gate judges: the stateful reflector's sequence number tells the directions apart once a later probe is answered.",
            Unit::Ratio,
        )
        .min(0.0)
        .target(Target::series(
            format!(
                "sum by (direction) (increase(xcbench_probes_lost_direction_total{{{stamp}}}[{RATE}]))\n  / ignoring(direction) group_left() (sum(increase(xcbench_probes_lost_total{{{stamp}}}[{RATE}]) + increase(xcbench_probes_received_total{{{stamp}}}[{RATE}])) > 0)"
            ),
            "{{direction}}",
        )),
        Panel::new(
            Kind::TimeSeries,
            "DSCP re-marked by direction",
            "STAMP replies whose DSCP changed on the way over replies received in each $__rate_interval (RFC 8972 Class of Service TLV, sent with dscp set or payload_size >= 52): forward, the test packet reached the reflector with another DSCP than it left with; reverse, the reply came back with another DSCP than the reflector sent. 1 means every packet was re-marked (a QoS policy on the path); xcbench_probes_received_dscp says to what.",
            Unit::Ratio,
        )
        .min(0.0)
        .target(Target::series(
            format!(
                "sum by (direction) (increase(xcbench_probes_remarked_total{{{stamp}}}[{RATE}]))\n  / ignoring(direction) group_left() (sum(increase(xcbench_probes_received_total{{{stamp}}}[{RATE}])) > 0)"
            ),
            "{{direction}}",
        )),
        Panel::new(
            Kind::TimeSeries,
            "Loss by protocol",
            "Probes whose loss timeout expired without a reply, over probes resolved (received + lost), per protocol and kind over each $__rate_interval: the ratio the gate judges.",
            Unit::Ratio,
        )
        .min(0.0)
        .target(Target::series(
            loss(&s, &["protocol", "kind"], RATE),
            "{{protocol}} {{kind}}",
        )),
        Panel::new(
            Kind::TimeSeries,
            "Duplicates, reorders, late and skipped probes",
            "Over each $__rate_interval, as the gate divides them: extra copies of replies and replies that arrived after a later probe's, per reply received; replies after their probe was counted lost, per probe resolved (received + lost); probes the prober skipped after a stall (its rate fell below the configured one), per probe the schedule called for (sent + skipped).",
            Unit::Ratio,
        )
        .min(0.0)
        .targets(counts.iter().map(|(m, name, den)| {
            Target::series(
                format!(
                    "sum(increase({m}{{{s}}}[{RATE}]))\n  / (sum(increase({den}[{RATE}])) > 0)"
                ),
                *name,
            )
        })),
        Panel::new(
            Kind::Stat,
            "Loss over the range",
            "Probes lost over probes resolved (received + lost) over the whole selected range, per protocol and kind.",
            Unit::Ratio,
        )
        .size(12, 8)
        .decimals(3)
        .thresholds("green", &[(0.001, "orange"), (0.01, "red")])
        .target(Target::instant(
            loss(&s, &["protocol", "kind"], RANGE),
            "{{protocol}} {{kind}}",
        )),
    ]
}

/// Each flow (source port) of the STAMP series: ECMP hashes each onto one path, so flows
/// whose figures disagree are on different paths, and the worst flow is the worst path.
fn flows() -> Vec<Panel> {
    let stamp = sel(&[&pair(), &vars(&["load"]), "protocol=\"udp\",kind=\"stamp\""]);
    vec![
        Panel::new(
            Kind::TimeSeries,
            "RTT p50 and p99 per flow",
            "STAMP round trips per flow over the collector's window (xcbench_flow_rtt_window_seconds, merged HdrHistograms): each flow is its own source port, which ECMP inside the providers' networks hashes onto one path. Flows in two bands are two paths; a single-flow probe would show one of them.",
            Unit::Seconds,
        )
        .target(Target::series(
            format!("xcbench_flow_rtt_window_seconds{{{stamp},quantile=~\"0.5|0.99\"}}"),
            "flow {{flow}} p{{quantile}}",
        )),
        Panel::new(
            Kind::TimeSeries,
            "Loss per flow",
            "STAMP probes lost over probes resolved (received + lost) per flow in each $__rate_interval: loss on one path of the circuit shows on the flows it carries, diluted in the pair's own loss by the others.",
            Unit::Ratio,
        )
        .min(0.0)
        .target(Target::series(
            format!(
                "sum by (flow) (increase(xcbench_flow_probes_lost_total{{{stamp}}}[{RATE}]))\n  / (sum by (flow) (increase(xcbench_flow_probes_lost_total{{{stamp}}}[{RATE}]) + increase(xcbench_flow_probes_received_total{{{stamp}}}[{RATE}])) > 0)"
            ),
            "flow {{flow}}",
        )),
    ]
}

fn transports() -> Vec<Panel> {
    let tcp = sel(&[&pair(), &vars(&["load"]), "protocol=\"tcp\""]);
    let quic = sel(&[&pair(), &vars(&["load"]), "protocol=\"quic\""]);
    vec![
        Panel::new(
            Kind::TimeSeries,
            "TCP_INFO RTT",
            "The kernel's view of the last TCP probe connection per kind: smoothed RTT, RTT variance and minimum RTT (TCP_INFO).",
            Unit::Seconds,
        )
        .targets([
            Target::series(format!("xcbench_tcp_srtt_seconds{{{tcp}}}"), "srtt {{kind}}"),
            Target::series(format!("xcbench_tcp_rttvar_seconds{{{tcp}}}"), "rttvar {{kind}}"),
            Target::series(format!("xcbench_tcp_min_rtt_seconds{{{tcp}}}"), "min_rtt {{kind}}"),
        ]),
        Panel::new(
            Kind::TimeSeries,
            "TCP retransmits per probe",
            "TCP segments retransmitted on probe connections (TCP_INFO total_retrans; SYN retransmissions for connect) per probe sent over each $__rate_interval.",
            Unit::Count,
        )
        .target(Target::series(
            ratio(
                &format!("xcbench_tcp_retransmits_total{{{tcp}}}"),
                &format!("xcbench_probes_sent_total{{{tcp}}}"),
                &["kind"],
                RATE,
            ),
            "{{kind}}",
        )),
        Panel::new(
            Kind::TimeSeries,
            "TCP path MTU and delivery rate",
            "TCP_INFO path MTU (bytes) and delivery-rate estimate (bits/s) of the last probe connection.",
            Unit::Bytes,
        )
        .target(Target::series(format!("xcbench_tcp_pmtu_bytes{{{tcp}}}"), "pmtu {{kind}}"))
        .target(Target::series(
            format!("xcbench_tcp_delivery_rate_bytes_per_second{{{tcp}}} * 8"),
            "delivery rate {{kind}}",
        ))
        .override_by_query(
            "B",
            serde_json::json!([{ "id": "unit", "value": "bps" }, { "id": "custom.axisPlacement", "value": "right" }]),
        ),
        Panel::new(
            Kind::TimeSeries,
            "TCP congestion window",
            "TCP_INFO congestion window of the last probe connection per kind, in segments (snd_cwnd).",
            Unit::Count,
        )
        .target(Target::series(format!("xcbench_tcp_snd_cwnd_segments{{{tcp}}}"), "cwnd {{kind}}")),
        Panel::new(
            Kind::TimeSeries,
            "QUIC path",
            "quinn's smoothed RTT of the last QUIC probe connection per kind; its congestion window and PLPMTUD path MTU are in the next panel.",
            Unit::Seconds,
        )
        .target(Target::series(format!("xcbench_quic_rtt_seconds{{{quic}}}"), "rtt {{kind}}")),
        Panel::new(
            Kind::TimeSeries,
            "QUIC congestion window and MTU",
            "Congestion window (bytes) and the largest UDP payload the path carries (PLPMTUD) of the last QUIC probe connection per kind.",
            Unit::Bytes,
        )
        .target(Target::series(format!("xcbench_quic_cwnd_bytes{{{quic}}}"), "cwnd {{kind}}"))
        .target(Target::series(format!("xcbench_quic_mtu_bytes{{{quic}}}"), "mtu {{kind}}")),
        Panel::new(
            Kind::TimeSeries,
            "QUIC losses, congestion events and 0-RTT",
            "Per second over each $__rate_interval: packets the QUIC probe connections declared lost, congestion events, MTU black holes, and resume probes by 0-RTT outcome.",
            Unit::PerSecond,
        )
        .targets([
            Target::series(per_second(&format!("xcbench_quic_lost_packets_total{{{quic}}}"), &["kind"]), "lost packets {{kind}}"),
            Target::series(per_second(&format!("xcbench_quic_congestion_events_total{{{quic}}}"), &["kind"]), "congestion events {{kind}}"),
            Target::series(per_second(&format!("xcbench_quic_black_holes_total{{{quic}}}"), &["kind"]), "black holes {{kind}}"),
            Target::series(per_second(&format!("xcbench_quic_zero_rtt_total{{{quic}}}"), &["result"]), "0-RTT {{result}}"),
        ]),
    ]
}

fn load() -> Vec<Panel> {
    let s = sel(&[&pair(), &vars(&["protocol", "kind"])]);
    vec![
        Panel::new(
            Kind::TimeSeries,
            "p99 RTT idle and under a throughput test",
            "p99 RTT over each $__rate_interval of the probes that were out while a scheduled throughput test ran between the pair (load=bench) beside the others (idle): the queue a bulk transfer builds on the link.",
            Unit::Seconds,
        )
        .size(24, 8)
        .custom(serde_json::json!({ "spanNulls": true }))
        .target(Target::series(
            quantile("0.99", "xcbench_rtt_seconds", &s, &["protocol", "kind", "load"], RATE),
            "{{protocol}} {{kind}} {{load}}",
        )),
    ]
}

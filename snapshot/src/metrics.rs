//! The metric catalog: every metric family the collector's `/metrics` serves, with its name,
//! type, unit and help, in one table: the vocabulary the exposition, the SLO rules, the
//! gate's Prometheus source and the dashboards' lint all read. The collector pushes families
//! only through these entries ([`MetricDef`] has no constructor outside this file, and the
//! table's macro lists each one in [`ALL`]), so a name that is not here cannot be served, and
//! a rename here fails to compile wherever a name is used (the golden file and
//! docs/metrics.md are held to it by tests).

use std::borrow::Cow;

/// How Prometheus types a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    /// As the text format's `# TYPE` line says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// The unit of a family's values; the name ends with its suffix (before `_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Things counted, a 0/1 flag or an info metric: no suffix.
    Unitless,
    Seconds,
    Bytes,
    BytesPerSecond,
    /// TCP segments (the congestion window, as TCP_INFO gives it).
    Segments,
}

impl Unit {
    /// The name suffix, `None` for [`Unit::Unitless`].
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            Unit::Unitless => None,
            Unit::Seconds => Some("_seconds"),
            Unit::Bytes => Some("_bytes"),
            Unit::BytesPerSecond => Some("_bytes_per_second"),
            Unit::Segments => Some("_segments"),
        }
    }
}

/// One metric family as `/metrics` serves it. Only the table below makes one, and it is not
/// `Clone`, so every `&'static MetricDef` is a catalog entry:
///
/// ```compile_fail
/// # use xcbench_snapshot::metrics::{Kind, MetricDef, Unit};
/// let unlisted = MetricDef { name: "xcbench_unlisted", kind: Kind::Gauge, unit: Unit::Unitless, help: "." };
/// ```
#[derive(Debug)]
pub struct MetricDef {
    name: &'static str,
    kind: Kind,
    unit: Unit,
    help: &'static str,
}

/// Stands in the help text for the window's length in whole seconds, which the
/// configuration sets.
pub const WINDOW_SECONDS: &str = "{window_seconds}";

/// The family's name, so a query can be written `format!("{PROBES_SENT_TOTAL}{{...}}")`.
impl std::fmt::Display for MetricDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl MetricDef {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The help text with the window's length written in where it says [`WINDOW_SECONDS`].
    pub fn help(&self, window_seconds: u64) -> Cow<'static, str> {
        if self.help.contains(WINDOW_SECONDS) {
            Cow::Owned(
                self.help
                    .replace(WINDOW_SECONDS, &window_seconds.to_string()),
            )
        } else {
            Cow::Borrowed(self.help)
        }
    }
}

/// Declares each entry as a `static` and lists every one in [`ALL`], so an entry cannot be
/// left out of it.
macro_rules! catalog {
    ($($id:ident = $name:literal, $kind:ident, $unit:ident, $help:expr;)+) => {
        $(
            #[doc = concat!("`", $name, "`")]
            pub static $id: MetricDef = MetricDef {
                name: $name,
                kind: Kind::$kind,
                unit: Unit::$unit,
                help: $help,
            };
        )+

        /// Every family, in the order of the table.
        pub static ALL: &[&MetricDef] = &[$(&$id),+];
    };
}

/// The window summaries' help; the quantiles are the collector's `WINDOW_QUANTILES`.
const WINDOW_SUMMARY_HELP: &str = "Quantiles (p50, p90, p99, p99.9, max=1) over the last {window_seconds}s from merged HdrHistograms (bucket upper values, 0.1% or 512 ns resolution); _sum/_count cover the same window.";

catalog! {
    // Probe series (series.rs): one set per (source, peer, protocol, kind, load).
    PROBES_SENT_TOTAL = "xcbench_probes_sent_total", Counter, Unitless,
        "Probes transmitted.";
    PROBES_RECEIVED_TOTAL = "xcbench_probes_received_total", Counter, Unitless,
        "Replies received within the loss timeout (first copy).";
    PROBES_LOST_TOTAL = "xcbench_probes_lost_total", Counter, Unitless,
        "Probes whose own loss timeout expired without a reply.";
    PROBES_LOST_DIRECTION_TOTAL = "xcbench_probes_lost_direction_total", Counter, Unitless,
        "Lost probes by direction, attributed with the stateful reflector's sequence number once a later probe is answered.";
    FLOW_PROBES_SENT_TOTAL = "xcbench_flow_probes_sent_total", Counter, Unitless,
        "STAMP probes sent over one flow (source port) of a series probed over several, so ECMP may carry each flow over another path.";
    FLOW_PROBES_RECEIVED_TOTAL = "xcbench_flow_probes_received_total", Counter, Unitless,
        "Replies received within the loss timeout, per flow of a series probed over several.";
    FLOW_PROBES_LOST_TOTAL = "xcbench_flow_probes_lost_total", Counter, Unitless,
        "Probes lost, per flow of a series probed over several.";
    FLOW_RTT_WINDOW_SECONDS = "xcbench_flow_rtt_window_seconds", Summary, Seconds,
        WINDOW_SUMMARY_HELP;
    PROBES_REMARKED_TOTAL = "xcbench_probes_remarked_total", Counter, Unitless,
        "STAMP replies whose DSCP changed on the way, by direction (RFC 8972 Class of Service): forward, the test packet reached the reflector with another DSCP than it was sent with; reverse, the reply arrived with another DSCP than the reflector sent it with.";
    PROBES_RECEIVED_DSCP = "xcbench_probes_received_dscp", Gauge, Unitless,
        "The DSCP the last STAMP reply with a Class of Service TLV says arrived: forward, the test packet's at the reflector; reverse, the reply's here.";
    PROBES_RECEIVED_ECN = "xcbench_probes_received_ecn", Gauge, Unitless,
        "The ECN field the last STAMP reply with a Class of Service TLV says arrived (probes are sent Not-ECT, 0): forward at the reflector, reverse here.";
    PROBES_DUPLICATED_TOTAL = "xcbench_probes_duplicated_total", Counter, Unitless,
        "Extra copies of replies already received.";
    PROBES_REORDERED_TOTAL = "xcbench_probes_reordered_total", Counter, Unitless,
        "Replies that arrived after the reply to a later probe.";
    PROBES_LATE_TOTAL = "xcbench_probes_late_total", Counter, Unitless,
        "Replies that arrived after their probe was counted lost.";
    PROBES_SKIPPED_TOTAL = "xcbench_probes_skipped_total", Counter, Unitless,
        "Probes the schedule called for that the prober skipped after a stall longer than 10 ms or one interval, whichever is longer.";
    PROBES_ABANDONED_TOTAL = "xcbench_probes_abandoned_total", Counter, Unitless,
        "TCP request/response probes still out when the agent tore their connection down after another request stalled: neither answered nor lost for sure.";
    PROBES_CLOCK_STEPS_TOTAL = "xcbench_probes_clock_steps_total", Counter, Unitless,
        "Replies whose delays were discarded because a clock stepped: the prober's wall clock while the probe was out (one-way delays discarded, the RTT, timed on the monotonic clock, counts), or the far end's between its receive and send stamps (a dwell at least as long as the round trip: nothing recorded).";
    PROBE_INFO = "xcbench_probe_info", Gauge, Unitless,
        "How a series is measured: timestamping=kernel (SO_TIMESTAMPNS) or user (clock read after recvmsg).";
    RTT_SECONDS = "xcbench_rtt_seconds", Histogram, Seconds,
        "Round-trip time (T4-T1)-(T3-T2): reflector dwell excluded; T4 kernel receive timestamp where available.";
    ONE_WAY_DELAY_SECONDS = "xcbench_one_way_delay_seconds", Histogram, Seconds,
        "One-way delay, forward T2-T1 and reverse T4-T3; as exact as the two clocks agree (see xcbench_clock_error_seconds).";
    IPDV_SECONDS = "xcbench_ipdv_seconds", Histogram, Seconds,
        "Absolute IP packet delay variation (RFC 5481) between consecutive probes, per direction.";
    RTT_WINDOW_SECONDS = "xcbench_rtt_window_seconds", Summary, Seconds,
        WINDOW_SUMMARY_HELP;
    ONE_WAY_DELAY_WINDOW_SECONDS = "xcbench_one_way_delay_window_seconds", Summary, Seconds,
        WINDOW_SUMMARY_HELP;
    IPDV_WINDOW_SECONDS = "xcbench_ipdv_window_seconds", Summary, Seconds,
        WINDOW_SUMMARY_HELP;
    JITTER_SECONDS = "xcbench_jitter_seconds", Gauge, Seconds,
        "RFC 3550 interarrival jitter estimate at the last report, per direction.";
    CLOCK_ERROR_SECONDS = "xcbench_clock_error_seconds", Gauge, Seconds,
        "Combined clock error estimate of both ends (RFC 8762 Error Estimate fields) from the last reply; bounds one-way delay error.";
    CLOCK_SYNCHRONIZED = "xcbench_clock_synchronized", Gauge, Unitless,
        "1 when both ends reported clocks synchronized to UTC in the last reply.";
    TCP_RETRANSMITS_TOTAL = "xcbench_tcp_retransmits_total", Counter, Unitless,
        "TCP segments retransmitted on probe connections (TCP_INFO total_retrans; SYN retransmissions for kind=connect).";
    TCP_SRTT_SECONDS = "xcbench_tcp_srtt_seconds", Gauge, Seconds,
        "TCP_INFO smoothed RTT of the last probe connection.";
    TCP_RTTVAR_SECONDS = "xcbench_tcp_rttvar_seconds", Gauge, Seconds,
        "TCP_INFO RTT variance of the last probe connection.";
    TCP_MIN_RTT_SECONDS = "xcbench_tcp_min_rtt_seconds", Gauge, Seconds,
        "TCP_INFO minimum RTT of the last probe connection.";
    TCP_PMTU_BYTES = "xcbench_tcp_pmtu_bytes", Gauge, Bytes,
        "TCP_INFO path MTU of the last probe connection.";
    TCP_SND_CWND_SEGMENTS = "xcbench_tcp_snd_cwnd_segments", Gauge, Segments,
        "TCP_INFO congestion window of the last probe connection.";
    TCP_DELIVERY_RATE_BYTES_PER_SECOND = "xcbench_tcp_delivery_rate_bytes_per_second", Gauge, BytesPerSecond,
        "TCP_INFO delivery-rate estimate of the last probe connection.";
    QUIC_RTT_SECONDS = "xcbench_quic_rtt_seconds", Gauge, Seconds,
        "quinn's smoothed RTT estimate of the last QUIC probe connection.";
    QUIC_CWND_BYTES = "xcbench_quic_cwnd_bytes", Gauge, Bytes,
        "Congestion window of the last QUIC probe connection.";
    QUIC_MTU_BYTES = "xcbench_quic_mtu_bytes", Gauge, Bytes,
        "Largest UDP payload the last QUIC probe connection's path carries (PLPMTUD).";
    QUIC_LOST_PACKETS_TOTAL = "xcbench_quic_lost_packets_total", Counter, Unitless,
        "QUIC packets the probe connections declared lost (quinn path stats).";
    QUIC_CONGESTION_EVENTS_TOTAL = "xcbench_quic_congestion_events_total", Counter, Unitless,
        "Congestion events on the QUIC probe connections.";
    QUIC_BLACK_HOLES_TOTAL = "xcbench_quic_black_holes_total", Counter, Unitless,
        "MTU black holes quinn detected on the QUIC probe connections.";
    QUIC_ZERO_RTT_TOTAL = "xcbench_quic_zero_rtt_total", Counter, Unitless,
        "Resume probes by 0-RTT outcome: accepted, rejected by the peer (data sent again after the handshake), unavailable (no session ticket, full handshake).";

    // Scheduled throughput tests (throughput.rs): one set per (source, peer, protocol, direction).
    THROUGHPUT_TESTS_TOTAL = "xcbench_bench_tests_total", Counter, Unitless,
        "Scheduled throughput tests, by outcome (refused: the peer or this agent was busy or declined; failed: no connection or the peer was lost).";
    THROUGHPUT_BYTES_TOTAL = "xcbench_bench_bytes_total", Counter, Bytes,
        "Bytes of scheduled tests over their counted intervals: sender = accepted by the sending kernel or QUIC stack, receiver = delivered to the receiving application. Goodput = rate(bytes) / rate(seconds).";
    THROUGHPUT_SECONDS_TOTAL = "xcbench_bench_seconds_total", Counter, Seconds,
        "Counted time of scheduled tests (after the omitted warm-up), by each side's clock.";
    THROUGHPUT_RETRANSMITS_TOTAL = "xcbench_bench_retransmits_total", Counter, Unitless,
        "TCP segments retransmitted (TCP_INFO), or QUIC packets quinn declared lost, by senders of scheduled tests.";
    THROUGHPUT_DATAGRAMS_TOTAL = "xcbench_bench_datagrams_total", Counter, Unitless,
        "UDP datagrams the receivers of scheduled tests counted.";
    THROUGHPUT_DATAGRAMS_LOST_TOTAL = "xcbench_bench_datagrams_lost_total", Counter, Unitless,
        "UDP datagrams missing from the sequence at the receivers of scheduled tests.";
    THROUGHPUT_GOODPUT_BYTES_PER_SECOND = "xcbench_bench_goodput_bytes_per_second", Gauge, BytesPerSecond,
        "The last scheduled test's goodput: bytes delivered to the receiving application over its counted time.";
    THROUGHPUT_INTERVAL_GOODPUT_MIN_BYTES_PER_SECOND = "xcbench_bench_interval_goodput_min_bytes_per_second", Gauge, BytesPerSecond,
        "The last scheduled test's slowest counted interval at the receiver.";
    THROUGHPUT_LAST_TEST_TIMESTAMP_SECONDS = "xcbench_bench_last_test_timestamp_seconds", Gauge, Seconds,
        "When the last scheduled test that ran started (the testing agent's clock, Unix time).";

    // Agents (agents.rs): one set per agent.
    REFLECTOR_REFLECTED_TOTAL = "xcbench_reflector_reflected_total", Counter, Unitless,
        "Probes answered by the agent's reflector (STAMP test packets, TCP requests, QUIC stream and DATAGRAM requests).";
    REFLECTOR_MALFORMED_TOTAL = "xcbench_reflector_malformed_total", Counter, Unitless,
        "Datagrams dropped, or TCP and QUIC connections closed, for not being probe framing.";
    REFLECTOR_REFUSED_TOTAL = "xcbench_reflector_refused_total", Counter, Unitless,
        "UDP sessions refused (session table full); TCP connections refused (per-source cap) or closed idle; QUIC connections refused (per-source cap, unknown client certificate, handshake timeout).";
    REFLECTOR_UNAUTHENTICATED_TOTAL = "xcbench_reflector_unauthenticated_total", Counter, Unitless,
        "STAMP test packets not answered in authenticated mode: an HMAC no configured key gives, or a source with no key.";
    REFLECTOR_REPLAYED_TOTAL = "xcbench_reflector_replayed_total", Counter, Unitless,
        "Authenticated STAMP test packets not answered as replays: a sequence number already taken or too old, or a stale timestamp.";
    REFLECTOR_RATE_LIMITED_TOTAL = "xcbench_reflector_rate_limited_total", Counter, Unitless,
        "STAMP test packets not answered for being over the reflector's rate limit (reflector.max_rate_per_source or reflector.max_rate).";
    SENDER_MALFORMED_TOTAL = "xcbench_sender_malformed_total", Counter, Unitless,
        "Datagrams on probe sockets that were not reflected STAMP packets.";
    SENDER_UNMATCHED_TOTAL = "xcbench_sender_unmatched_total", Counter, Unitless,
        "Reflected packets that matched no probe sent (unknown sequence, wrong timestamp or source).";
    SENDER_UNAUTHENTICATED_TOTAL = "xcbench_sender_unauthenticated_total", Counter, Unitless,
        "STAMP replies refused in authenticated mode: an HMAC the peer's keys do not give.";
    AGENT_LAST_REPORT_TIMESTAMP_SECONDS = "xcbench_agent_last_report_timestamp_seconds", Gauge, Seconds,
        "When the collector last accepted a snapshot from the agent (collector clock, Unix time).";
    AGENT_SNAPSHOTS_DROPPED_TOTAL = "xcbench_agent_snapshots_dropped_total", Counter, Unitless,
        "Snapshots the agent made that never reached the collector (jumps in its report sequence): their samples are missing.";
    AGENT_SNAPSHOTS_ELSEWHERE_TOTAL = "xcbench_agent_snapshots_elsewhere_total", Counter, Unitless,
        "Snapshots the agent reported to another collector of a sharded mesh while this one was unreachable (jumps in its report sequence it did not give up): held by that collector.";
    AGENT_RESTARTS_TOTAL = "xcbench_agent_restarts_total", Counter, Unitless,
        "Times the agent reported as a new instance after an earlier one: it restarted, and measured nothing while down.";
    MESH_AGENT_INFO = "xcbench_mesh_agent_info", Gauge, Unitless,
        "An agent the collector's mesh file lists, by its labels (1): configured, whether it reports or not.";

    // SLOs (slo.rs), when the collector is given an SLO file.
    SLO_SAMPLES_TOTAL = "xcbench_slo_samples_total", Counter, Unitless,
        "Latency samples of a metric since the start: the denominator of the exact within-threshold counts.";
    SLO_WITHIN_TOTAL = "xcbench_slo_within_total", Counter, Unitless,
        "Latency samples certainly at or below an SLO threshold (seconds), counted from full-resolution HdrHistograms, not bucket edges.";
    SLO_STRADDLING_TOTAL = "xcbench_slo_straddling_total", Counter, Unitless,
        "Latency samples in the HdrHistogram bucket that straddles an SLO threshold (within 0.1% of it): on neither side for sure.";
    SLO_VERDICT = "xcbench_slo_verdict", Gauge, Unitless,
        "An SLO objective's verdict as last judged from the history: 1 for the current one of pass, fail and inconclusive.";
    SLO_REASON = "xcbench_slo_reason", Gauge, Unitless,
        "Why an objective's verdict is what it is: 1 for each reason that applies (bound, undecided, no_samples, few_samples, ...).";
    SLO_BOUND = "xcbench_slo_bound", Gauge, Unitless,
        "The lower and upper bound on an objective's statistic (the fraction within the threshold, or the ratio) at its confidence.";
    SLO_EVALUATED_TIMESTAMP_SECONDS = "xcbench_slo_evaluated_timestamp_seconds", Gauge, Seconds,
        "When the collector last judged its SLO file (collector clock, Unix time).";

    // The collector itself (collector.rs).
    COLLECTOR_SNAPSHOTS_TOTAL = "xcbench_collector_snapshots_total", Counter, Unitless,
        "Snapshots received, by result (duplicate = already taken, acknowledged, not counted again; forbidden = not from that agent's certificate).";
    COLLECTOR_SERIES = "xcbench_collector_series", Gauge, Unitless,
        "Series held by the collector.";
    REMOTE_WRITE_SENT_SAMPLES_TOTAL = "xcbench_remote_write_sent_samples_total", Counter, Unitless,
        "Samples the remote-write receiver accepted (2xx), each stamped with the end of the interval it was measured in.";
    REMOTE_WRITE_SENT_BYTES_TOTAL = "xcbench_remote_write_sent_bytes_total", Counter, Bytes,
        "Bytes of accepted remote-write requests as sent (protobuf, snappy-compressed).";
    REMOTE_WRITE_RETRIES_TOTAL = "xcbench_remote_write_retries_total", Counter, Unitless,
        "Remote-write requests tried again: no answer, a 5xx, or a 429 with retry_on_429.";
    REMOTE_WRITE_DROPPED_SAMPLES_TOTAL = "xcbench_remote_write_dropped_samples_total", Counter, Unitless,
        "Samples given up, by reason (rejected = a 4xx answer, queue_full = the oldest beyond max_queue_mb, not_queued = the queue could not be written).";
    REMOTE_WRITE_QUEUE_SAMPLES = "xcbench_remote_write_queue_samples", Gauge, Unitless,
        "Samples waiting in the durable remote-write queue.";
    REMOTE_WRITE_QUEUE_BYTES = "xcbench_remote_write_queue_bytes", Gauge, Bytes,
        "Bytes of the requests waiting in the durable remote-write queue (as sent: snappy-compressed).";
    REMOTE_WRITE_LAST_SENT_TIMESTAMP_SECONDS = "xcbench_remote_write_last_sent_timestamp_seconds", Gauge, Seconds,
        "When the receiver last accepted a request (collector clock, Unix seconds).";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Unit words that are not base units (Prometheus wants seconds and bytes).
    const NOT_BASE_UNITS: &[&str] = &[
        "ns",
        "us",
        "ms",
        "nanoseconds",
        "microseconds",
        "milliseconds",
        "minutes",
        "hours",
        "days",
        "bits",
        "kb",
        "mb",
        "gb",
        "kib",
        "mib",
        "gib",
        "kilobytes",
        "megabytes",
        "gigabytes",
        "percent",
        "ratio",
    ];

    const UNITS: &[Unit] = &[
        Unit::Seconds,
        Unit::Bytes,
        Unit::BytesPerSecond,
        Unit::Segments,
    ];

    #[test]
    fn names_are_unique_and_follow_prometheus_naming() {
        let mut seen = BTreeSet::new();
        for def in ALL {
            let name = def.name();
            assert!(seen.insert(name), "{name}: listed twice");
            assert!(
                name.starts_with("xcbench_")
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !name.contains("__")
                    && !name.ends_with('_'),
                "{name}: must be xcbench_ then lowercase words joined by single underscores \
                 (colons are for recording rules)"
            );
            let stem = match name.strip_suffix("_total") {
                Some(stem) => {
                    assert_eq!(
                        def.kind(),
                        Kind::Counter,
                        "{name}: only counters end in _total"
                    );
                    stem
                }
                None => {
                    assert_ne!(
                        def.kind(),
                        Kind::Counter,
                        "{name}: a counter must end in _total"
                    );
                    name
                }
            };
            match def.unit().suffix() {
                Some(suffix) => assert!(
                    stem.ends_with(suffix),
                    "{name}: unit {:?} must be the name's suffix {suffix:?} (before _total)",
                    def.unit()
                ),
                None => {
                    for unit in UNITS {
                        let suffix = unit.suffix().expect("a unit has a suffix");
                        assert!(
                            !stem.ends_with(suffix),
                            "{name}: ends in {suffix:?} but its unit is {:?}; expected {unit:?}",
                            def.unit()
                        );
                    }
                }
            }
            for word in name.split('_') {
                assert!(
                    !NOT_BASE_UNITS.contains(&word),
                    "{name}: {word:?} is not a base unit; expected seconds or bytes"
                );
            }
            if name.ends_with("_info") {
                assert_eq!(def.kind(), Kind::Gauge, "{name}: an info metric is a gauge");
            }
        }
    }

    #[test]
    fn sample_names_do_not_collide() {
        // Histograms and summaries also serve _sum, _count (and _bucket); no other family
        // may take those names, and no family may look like one of them.
        let mut samples: BTreeMap<String, &str> = BTreeMap::new();
        for def in ALL {
            let name = def.name();
            for suffix in ["_bucket", "_sum", "_count"] {
                assert!(!name.ends_with(suffix), "{name}: {suffix} is reserved");
            }
            let mut own = vec![name.to_owned()];
            if matches!(def.kind(), Kind::Histogram | Kind::Summary) {
                own.extend(["_sum", "_count", "_bucket"].map(|s| format!("{name}{s}")));
            }
            for sample in own {
                if let Some(other) = samples.insert(sample.clone(), name) {
                    panic!("{sample}: served by both {other} and {name}");
                }
            }
        }
    }

    #[test]
    fn help_is_a_sentence_and_only_summaries_name_the_window() {
        for def in ALL {
            let (name, help) = (def.name(), def.help);
            assert!(
                help.ends_with('.') && !help.contains('\n') && !help.contains('\\'),
                "{name}: help must be one line ending in a full stop: {help:?}"
            );
            assert_eq!(
                help.contains(WINDOW_SECONDS),
                def.kind() == Kind::Summary,
                "{name}: {WINDOW_SECONDS} belongs in (and only in) window summaries' help"
            );
            assert!(
                !def.help(300).contains(WINDOW_SECONDS),
                "{name}: placeholder left in"
            );
        }
        assert!(RTT_WINDOW_SECONDS.help(300).contains(" last 300s "));
    }

    /// Every family is in docs/metrics.md's metrics table, under its full name (so a search for
    /// the name finds it) and with its type; the table lists nothing the catalog lacks.
    #[test]
    fn readme_metrics_table_matches_the_catalog() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
                .expect("docs/metrics.md at the workspace root");
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Metrics\n"))
            .expect("docs/metrics.md has a \"## Metrics\" section");
        let catalog: BTreeMap<&str, &MetricDef> = ALL.iter().map(|d| (d.name(), *d)).collect();
        let mut documented = BTreeSet::new();
        for row in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (names, kind) = (cells[1], cells[2]);
            for name in names.split('`').skip(1).step_by(2) {
                let name = name.split('{').next().expect("split yields one part");
                let def = catalog.get(name).unwrap_or_else(|| {
                    panic!("docs/metrics.md lists {name}, which the catalog lacks")
                });
                assert_eq!(
                    kind,
                    def.kind().as_str(),
                    "docs/metrics.md: {name} is a {}",
                    def.kind().as_str()
                );
                documented.insert(name);
            }
        }
        let missing: Vec<&str> = catalog
            .keys()
            .filter(|n| !documented.contains(*n))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "docs/metrics.md \"## Metrics\" must list (full name, type) {missing:?}"
        );
    }
}

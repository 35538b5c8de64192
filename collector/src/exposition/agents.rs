//! Per-agent families: reflector and sender counters, and when the agent last reported.

use super::{label, seconds, with, Families};
use crate::store::Store;

/// Every agent's families.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    for a in store.agents() {
        let base = vec![
            label("agent", a.identity.id.as_str()),
            label("cloud", a.identity.cloud.as_str()),
            label("region", &a.identity.region),
        ];
        let r = &a.reflector;
        for (proto, reflected, malformed, refused) in [
            ("udp", r.reflected, r.malformed, r.refused),
            ("tcp", r.tcp_reflected, r.tcp_malformed, r.tcp_refused),
            ("quic", r.quic_reflected, r.quic_malformed, r.quic_refused),
        ] {
            let labels = with(base.clone(), &[("protocol", proto)]);
            f.counter(
                "xcbench_reflector_reflected_total",
                "Probes answered by the agent's reflector (STAMP test packets, TCP requests, QUIC stream and DATAGRAM requests).",
                labels.clone(),
                reflected,
            );
            f.counter(
                "xcbench_reflector_malformed_total",
                "Datagrams dropped, or TCP and QUIC connections closed, for not being probe framing.",
                labels.clone(),
                malformed,
            );
            f.counter("xcbench_reflector_refused_total", "UDP sessions refused (session table full); TCP connections refused (per-source cap) or closed idle; QUIC connections refused (per-source cap, unknown client certificate, handshake timeout).", labels, refused);
        }
        f.counter(
            "xcbench_sender_malformed_total",
            "Datagrams on probe sockets that were not reflected STAMP packets.",
            base.clone(),
            a.sender.malformed,
        );
        f.counter("xcbench_sender_unmatched_total", "Reflected packets that matched no probe sent (unknown sequence, wrong timestamp or source).", base.clone(), a.sender.unmatched);
        f.gauge("xcbench_agent_last_report_timestamp_seconds", "When the collector last accepted a snapshot from the agent (collector clock, Unix time).", base, seconds(a.last_report_ns));
    }
}

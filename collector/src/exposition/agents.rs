//! Per-agent families, labelled `agent`, `cloud`, `region`: what the agent's reflector
//! answered, malformed or refused per protocol, what its sender could not match, the
//! snapshots that never arrived and its restarts, when the collector last heard from it; and the agents the mesh file lists, reporting or not.

use xcbench_snapshot::Protocol;

use super::catalog;
use super::{seconds, Families, Labels};
use crate::store::{AgentState, Store};

/// Every agent's families.
pub(super) fn push_families(f: &mut Families, store: &Store) {
    for a in store.agents() {
        push_agent(f, a);
    }
    for a in store.mesh_agents() {
        let labels = [
            ("agent", a.id.as_str()),
            ("cloud", a.cloud.as_str()),
            ("region", a.region.as_str()),
        ];
        f.gauge(&catalog::MESH_AGENT_INFO, Labels::new(&labels), 1.0);
    }
}

/// One reporting agent's families.
pub(super) fn push_agent(f: &mut Families, a: &AgentState) {
    let pairs = [
        ("agent", a.identity.id.as_str()),
        ("cloud", a.identity.cloud.as_str()),
        ("region", a.identity.region.as_str()),
    ];
    let base = Labels::new(&pairs);
    for protocol in Protocol::ALL {
        let r = a.responders.get(*protocol);
        let protocol = [("protocol", protocol.as_str())];
        let labels = base.and(&protocol);
        for (def, value) in [
            (&catalog::REFLECTOR_REFLECTED_TOTAL, r.reflected),
            (&catalog::REFLECTOR_MALFORMED_TOTAL, r.malformed),
            (&catalog::REFLECTOR_REFUSED_TOTAL, r.refused),
        ] {
            f.counter(def, labels, value);
        }
    }
    // Authentication and rate limits are the STAMP reflector's alone: no protocol label.
    for (def, value) in [
        (
            &catalog::REFLECTOR_UNAUTHENTICATED_TOTAL,
            a.responders.udp.unauthenticated,
        ),
        (
            &catalog::REFLECTOR_REPLAYED_TOTAL,
            a.responders.udp.replayed,
        ),
        (
            &catalog::REFLECTOR_RATE_LIMITED_TOTAL,
            a.responders.udp.rate_limited,
        ),
    ] {
        f.counter(def, base, value);
    }
    for (def, value) in [
        (&catalog::SENDER_MALFORMED_TOTAL, a.sender.malformed),
        (&catalog::SENDER_UNMATCHED_TOTAL, a.sender.unmatched),
        (
            &catalog::SENDER_UNAUTHENTICATED_TOTAL,
            a.sender.unauthenticated,
        ),
        (&catalog::AGENT_SNAPSHOTS_DROPPED_TOTAL, a.snapshots_dropped),
        (
            &catalog::AGENT_SNAPSHOTS_ELSEWHERE_TOTAL,
            a.snapshots_elsewhere,
        ),
        (&catalog::AGENT_RESTARTS_TOTAL, a.restarts),
    ] {
        f.counter(def, base, value);
    }
    f.gauge(
        &catalog::AGENT_LAST_REPORT_TIMESTAMP_SECONDS,
        base,
        seconds(a.last_report_ns),
    );
}

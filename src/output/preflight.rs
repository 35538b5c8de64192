//! `xcbench preflight`'s text: per peer, the address and every port with what it did, the
//! path MTU; then this host's clock and timestamps; then, per blocked port, the commands that
//! open it; the last line says whether the host is ready.

use std::fmt::Write as _;

use xcbench_agent::net::preflight::PortState;

use crate::preflight::Report;

fn state_text(s: PortState) -> (String, &'static str) {
    match s {
        PortState::Open { rtt_us } => (format!("open ({:.1} ms)", rtt_us as f64 / 1e3), "ok"),
        PortState::Closed => (
            "closed: the host refused it (nothing listening: is the agent running there?)".into(),
            "FAIL",
        ),
        PortState::Rejected => (
            "rejected: an ICMP unreachable from a router or filter".into(),
            "BLOCKED",
        ),
        PortState::Silent => (
            "no answer: a filter drops it, or the host is down".into(),
            "BLOCKED",
        ),
        PortState::NotRefused => (
            "not refused (UDP data answers no stranger; checked again by the first test)".into(),
            "ok",
        ),
    }
}

/// The purpose column: wide enough for the longest a port has (QUIC probes and test control
/// on one port).
const PURPOSE_WIDTH: usize = 48;

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "xcbench preflight: {} ({}, {}) toward {} peer{}",
        r.agent,
        r.cloud,
        r.region,
        r.peers.len(),
        if r.peers.len() == 1 { "" } else { "s" }
    );
    for p in &r.peers {
        let _ = writeln!(out, "\n{} {} ({}, {})", p.id, p.address, p.cloud, p.region);
        let verdict = if p.address_class.allowed() {
            "ok"
        } else {
            "FAIL"
        };
        let _ = writeln!(
            out,
            "  {:<10} {:<PURPOSE_WIDTH$} {:<7} {}",
            "address",
            "",
            verdict,
            p.address_class.describe()
        );
        for port in &p.ports {
            let (text, verdict) = state_text(port.state);
            let _ = writeln!(
                out,
                "  {:<10} {:<PURPOSE_WIDTH$} {:<7} {text}",
                format!("{}/{}", port.transport.as_str(), port.port),
                port.purpose,
                verdict
            );
        }
        if let Some(m) = p.path_mtu {
            let text = match m.answered {
                Some(a) if a == m.interface => format!("{a} bytes: the interface's whole MTU"),
                Some(a) if a == m.ceiling => format!(
                    "{a} bytes or more (STAMP packets stop at 9,000 bytes; interface {})",
                    m.interface
                ),
                Some(a) if m.kernel < m.interface => format!(
                    "{a} bytes (largest STAMP packet reflected with DF; interface {}; ICMP told the kernel {})",
                    m.interface, m.kernel
                ),
                Some(a) => format!(
                    "{a} bytes (largest STAMP packet reflected with DF; interface {}; no ICMP \"fragmentation needed\" came back: larger packets vanish, set the interface MTU to {a} or clamp MSS)",
                    m.interface
                ),
                None => "no STAMP packet of 576 bytes or more was reflected with DF".into(),
            };
            let _ = writeln!(
                out,
                "  {:<10} {:<PURPOSE_WIDTH$} {:<7} {text}",
                "path MTU", "", ""
            );
        }
        for e in &p.errors {
            let _ = writeln!(out, "  error: {e}");
        }
    }
    let _ = writeln!(
        out,
        "\nthis host: clock {} (maximum error {}, as the kernel states it); kernel receive timestamps {}",
        if r.clock_synchronized { "synchronised" } else { "NOT synchronised (one-way delays are only as good as the clocks)" },
        xcbench_slo::text::duration((r.clock_error_seconds * 1e9) as u64),
        if r.kernel_rx_timestamps { "yes" } else { "no (RTT taken after the read: add the scheduler's delay)" }
    );
    for p in &r.peers {
        for port in p.ports.iter().filter(|port| !port.fixes.is_empty()) {
            let _ = writeln!(
                out,
                "\nTo open {}/{} ({}) from {} to {} {}:",
                port.transport.as_str(),
                port.port,
                port.purpose,
                p.local_address
                    .map_or("this host".into(), |a| a.to_string()),
                p.id,
                p.address
            );
            for f in &port.fixes {
                let _ = writeln!(out, "  # {}\n  {}", f.place, f.command);
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        if r.ok() {
            "ready: every peer's ports answer"
        } else {
            "NOT ready: see FAIL and BLOCKED above"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::{fixes, purpose_text, AddressClass, PeerResult, PortResult, Transport};
    use xcbench_agent::config::network::Purpose;
    use xcbench_agent::net::preflight::PathMtu;
    use xcbench_snapshot::Cloud;

    /// An Azure host toward an OCI database host whose TCP port a rule drops.
    #[test]
    fn report_text_is_golden() {
        let (local, peer) = ("10.10.0.5".parse().unwrap(), "10.20.0.5".parse().unwrap());
        let port = |port, transport, purpose: &str, state| PortResult {
            port,
            transport,
            purpose: purpose.to_owned(),
            state,
            fixes: if state == PortState::Silent {
                fixes(local, Cloud::Azure, peer, Cloud::Oci, port, transport)
            } else {
                Vec::new()
            },
        };
        let report = Report {
            agent: "az-eastus-app1".into(),
            cloud: "azure".into(),
            region: "eastus".into(),
            clock_synchronized: true,
            clock_error_seconds: 0.000_512,
            kernel_rx_timestamps: true,
            peers: vec![PeerResult {
                id: "oci-ashburn-db1".into(),
                cloud: "oci".into(),
                region: "us-ashburn-1".into(),
                address: peer,
                address_class: AddressClass::Rfc1918,
                local_address: Some(local),
                ports: vec![
                    port(
                        862,
                        Transport::Udp,
                        "STAMP probes",
                        PortState::Open { rtt_us: 1_712 },
                    ),
                    port(862, Transport::Tcp, "TCP probes", PortState::Silent),
                    port(
                        863,
                        Transport::Udp,
                        &purpose_text(&[Purpose::QuicProbes, Purpose::TestControl]),
                        PortState::Open { rtt_us: 1_690 },
                    ),
                ],
                path_mtu: Some(PathMtu {
                    answered: Some(1_400),
                    kernel: 1_500,
                    interface: 1_500,
                    ceiling: 1_500,
                }),
                errors: Vec::new(),
            }],
        };
        assert!(!report.ok());
        crate::output::check_golden("preflight.txt", &render(&report));
    }
}

//! The fleet's network facts, each written once: the ports an agent answers on
//! ([`PortPlan`], all counted from its STAMP port), and what probing or testing a peer takes
//! of the network ([`needs`]: a transport, a port and a purpose each). `xcbench mesh check`
//! and `mesh rules` (whose output the deploy scripts read), the agent's own binds and
//! `xcbench preflight` all take them from here; what an address is, is
//! [`super::mesh::cidr::AddressClass`]'s, and the cloud CLIs' rule text [`super::cloud`]'s.

use std::net::SocketAddr;

use serde::Serialize;
use xcbench_snapshot::Protocol;

/// The ports an agent answers on, all counted from its STAMP port: STAMP (UDP) and TCP
/// probes on it, QUIC probes on +1, throughput data on +2 (TCP and UDP), QUIC throughput
/// data on +3. Port 0 (tests) means any free port for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPlan {
    stamp: u16,
}

impl PortPlan {
    pub const QUIC_OFFSET: u16 = 1;
    pub const DATA_OFFSET: u16 = 2;
    pub const QUIC_DATA_OFFSET: u16 = 3;

    /// The plan from a STAMP port; the last offset must still be a port.
    pub fn new(stamp: u16) -> Result<PortPlan, &'static str> {
        if stamp != 0 && stamp > u16::MAX - Self::QUIC_DATA_OFFSET {
            return Err("must leave room for the QUIC and throughput ports above it: a port of at most 65532");
        }
        Ok(PortPlan { stamp })
    }

    fn offset(self, by: u16) -> u16 {
        match self.stamp {
            0 => 0,
            p => p + by,
        }
    }

    pub fn stamp(self) -> u16 {
        self.stamp
    }

    pub fn quic(self) -> u16 {
        self.offset(Self::QUIC_OFFSET)
    }

    pub fn data(self) -> u16 {
        self.offset(Self::DATA_OFFSET)
    }

    pub fn quic_data(self) -> u16 {
        self.offset(Self::QUIC_DATA_OFFSET)
    }

    /// `addr` with its port replaced by `port(plan)`.
    pub fn at(addr: SocketAddr, port: impl Fn(PortPlan) -> u16) -> SocketAddr {
        let plan = PortPlan::new(addr.port()).unwrap_or(PortPlan { stamp: 0 });
        SocketAddr::new(addr.ip(), port(plan))
    }
}

/// The transport a port answers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// What a port is opened for. The order is the order rules are listed and numbered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    Stamp,
    TcpProbes,
    QuicProbes,
    TestControl,
    TestTcp,
    TestUdp,
    TestQuic,
    Collector,
}

impl Purpose {
    /// Every purpose, in order.
    pub const ALL: [Purpose; 8] = [
        Purpose::Stamp,
        Purpose::TcpProbes,
        Purpose::QuicProbes,
        Purpose::TestControl,
        Purpose::TestTcp,
        Purpose::TestUdp,
        Purpose::TestQuic,
        Purpose::Collector,
    ];

    /// In words, for people.
    pub fn text(self) -> &'static str {
        match self {
            Purpose::Stamp => "STAMP probes",
            Purpose::TcpProbes => "TCP probes",
            Purpose::QuicProbes => "QUIC probes",
            Purpose::TestControl => "throughput tests: control (QUIC)",
            Purpose::TestTcp => "throughput tests: TCP data",
            Purpose::TestUdp => "throughput tests: UDP data",
            Purpose::TestQuic => "throughput tests: QUIC data",
            Purpose::Collector => "reports to the collector",
        }
    }

    /// A short name for rule names and JSON (`[a-z-]`).
    pub fn key(self) -> &'static str {
        match self {
            Purpose::Stamp => "stamp",
            Purpose::TcpProbes => "tcp-probes",
            Purpose::QuicProbes => "quic-probes",
            Purpose::TestControl => "test-control",
            Purpose::TestTcp => "tcp-data",
            Purpose::TestUdp => "udp-data",
            Purpose::TestQuic => "quic-data",
            Purpose::Collector => "collector",
        }
    }

    /// Its place in [`Purpose::ALL`]: stable across meshes, so rules numbered by it (NSG
    /// priorities) do not move when a mesh changes.
    pub fn order(self) -> usize {
        self as usize
    }
}

impl Serialize for Purpose {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

/// One port a peer must answer on for a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub purpose: Purpose,
}

/// What probing a peer over `probes` (its chosen protocols) and testing it over `tests`
/// takes: STAMP (UDP) and
/// TCP probes on its STAMP port, QUIC probes on `quic_address`; with any test, test control
/// (QUIC) on `quic_address` and each test protocol's data port from the [`PortPlan`]. In
/// [`Purpose`] order.
pub fn needs(
    address: SocketAddr,
    quic_address: SocketAddr,
    probes: impl IntoIterator<Item = Protocol>,
    tests: &[Protocol],
) -> Vec<Need> {
    let need = |transport, addr, purpose| Need {
        transport,
        addr,
        purpose,
    };
    let mut out: Vec<Need> = probes
        .into_iter()
        .map(|p| match p {
            Protocol::Udp => need(Transport::Udp, address, Purpose::Stamp),
            Protocol::Tcp => need(Transport::Tcp, address, Purpose::TcpProbes),
            Protocol::Quic => need(Transport::Udp, quic_address, Purpose::QuicProbes),
        })
        .collect();
    if !tests.is_empty() {
        out.push(need(Transport::Udp, quic_address, Purpose::TestControl));
        let data = PortPlan::at(address, PortPlan::data);
        let quic_data = PortPlan::at(address, PortPlan::quic_data);
        for p in [Protocol::Tcp, Protocol::Udp, Protocol::Quic] {
            if tests.contains(&p) {
                out.push(match p {
                    Protocol::Tcp => need(Transport::Tcp, data, Purpose::TestTcp),
                    Protocol::Udp => need(Transport::Udp, data, Purpose::TestUdp),
                    Protocol::Quic => need(Transport::Udp, quic_data, Purpose::TestQuic),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_the_port_plan_protocols_and_tests() {
        let a: SocketAddr = "10.20.0.5:8862".parse().unwrap();
        let q = PortPlan::at(a, PortPlan::quic);
        let all = [Protocol::Udp, Protocol::Tcp, Protocol::Quic];
        let got: Vec<(Transport, u16, Purpose)> =
            needs(a, q, all, &[Protocol::Quic, Protocol::Tcp])
                .iter()
                .map(|n| (n.transport, n.addr.port(), n.purpose))
                .collect();
        assert_eq!(
            got,
            [
                (Transport::Udp, 8862, Purpose::Stamp),
                (Transport::Tcp, 8862, Purpose::TcpProbes),
                (Transport::Udp, 8863, Purpose::QuicProbes),
                (Transport::Udp, 8863, Purpose::TestControl),
                (Transport::Tcp, 8864, Purpose::TestTcp),
                (Transport::Udp, 8865, Purpose::TestQuic),
            ]
        );
        assert_eq!(needs(a, q, [Protocol::Udp], &[]).len(), 1);
        for (i, p) in Purpose::ALL.iter().enumerate() {
            assert_eq!(p.order(), i);
            assert!(p.key().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }
}

//! `xcbench preflight`: run on an agent host before (or instead of) the agent, it checks for
//! every peer in agent.toml what the interconnect needs: a private address (the interconnect
//! carries private traffic only), each port the agent will use answering (STAMP, TCP, QUIC,
//! throughput data), the path MTU, and locally the clock's sync state and kernel receive
//! timestamps. For every blocked port it writes the Azure CLI and OCI CLI commands that open
//! it. Which ports, what an address is, and the commands' text are the fleet's facts
//! (`xcbench_agent::config::{network, mesh::cidr, cloud}`), as `mesh check` reads them; the
//! sockets are in `xcbench_agent::net::preflight`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use xcbench_agent::config::cloud;
pub use xcbench_agent::config::mesh::cidr::AddressClass;
pub use xcbench_agent::config::network::Transport;
use xcbench_agent::config::network::{self, Purpose};
use xcbench_agent::config::stamp_keys::KeyRing;
use xcbench_agent::config::Protocols;
use xcbench_agent::net::preflight::{self as probe, PathMtu, PortState};
use xcbench_agent::{AgentConfig, PeerConfig};
use xcbench_snapshot::{Cloud, Protocol};

/// How a port is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Stamp,
    TcpConnect,
    Quic,
    /// UDP that answers no stranger: only a refusal shows.
    Datagram,
}

/// One port the agent will use toward a peer, and every purpose it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPort {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub purposes: Vec<Purpose>,
    pub check: Check,
}

impl PlannedPort {
    /// Its purposes in words, as `mesh check` names them.
    pub fn purpose(&self) -> String {
        purpose_text(&self.purposes)
    }
}

/// Purposes in words, joined.
pub fn purpose_text(purposes: &[Purpose]) -> String {
    let texts: Vec<&str> = purposes.iter().map(|p| p.text()).collect();
    texts.join(" and ")
}

/// The ports the agent's config uses toward `peer`, from the fleet's one planner
/// ([`network::needs`]), one check per transport and port: STAMP always (the path MTU is
/// measured with it), TCP probes and QUIC by the peer's protocols (QUIC only with `[tls]`),
/// and the data ports of the scheduled tests that test this peer.
pub fn plan(config: &AgentConfig, peer: &PeerConfig) -> Vec<PlannedPort> {
    let tls = config.tls.is_some();
    let protocols = Protocols {
        udp: true,
        quic: peer.probe.protocols.quic && tls,
        ..peer.probe.protocols
    };
    let tests: &[Protocol] = match &config.throughput.schedule {
        Some(s) if tls && s.peers.contains(&peer.identity.id) => &s.protocols,
        _ => &[],
    };
    let mut out: Vec<PlannedPort> = Vec::new();
    for need in network::needs(peer.address, peer.quic_address, protocols.chosen(), tests) {
        if let Some(p) = out
            .iter_mut()
            .find(|p| p.addr == need.addr && p.transport == need.transport)
        {
            p.purposes.push(need.purpose);
            continue;
        }
        let check = match need.purpose {
            Purpose::Stamp => Check::Stamp,
            Purpose::QuicProbes | Purpose::TestControl | Purpose::TestQuic => Check::Quic,
            Purpose::TestUdp => Check::Datagram,
            Purpose::TcpProbes | Purpose::TestTcp | Purpose::Collector => Check::TcpConnect,
        };
        out.push(PlannedPort {
            addr: need.addr,
            transport: need.transport,
            purposes: vec![need.purpose],
            check,
        });
    }
    out
}

/// The commands that open one port, on each side that may need a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// Where the rule goes, for people.
    pub place: String,
    pub command: String,
}

/// The rules that open `port` from this host (`local`, in cloud `ours`) to a peer in cloud
/// `theirs`: inbound on the peer's side, and outbound on ours (needed only where egress is
/// restricted: NSGs and OCI's default rules allow it).
pub fn fixes(
    local: IpAddr,
    ours: Cloud,
    peer: IpAddr,
    theirs: Cloud,
    port: u16,
    t: Transport,
) -> Vec<Fix> {
    let mut out = Vec::new();
    let inbound = |cloud: Cloud| -> Vec<Fix> {
        let az = Fix {
            place: "Azure, inbound on the peer's NSG".into(),
            command: cloud::azure_rule(true, local, peer, port, t),
        };
        let oci = Fix {
            place: "OCI, ingress on the peer's NSG (for a security list, add the same rule in the console: `oci network security-list update --ingress-security-rules` replaces the whole list)".into(),
            command: cloud::oci_rule(true, local, peer, port, t),
        };
        match cloud {
            Cloud::Azure => vec![az],
            Cloud::Oci => vec![oci],
            _ => vec![az, oci],
        }
    };
    out.extend(inbound(theirs));
    match ours {
        Cloud::Azure => out.push(Fix {
            place: "Azure, outbound on this host's NSG (only if egress is restricted)".into(),
            command: cloud::azure_rule(false, local, peer, port, t),
        }),
        Cloud::Oci => out.push(Fix {
            place: "OCI, egress on this host's NSG (only if egress is restricted)".into(),
            command: cloud::oci_rule(false, local, peer, port, t),
        }),
        _ => {}
    }
    out
}

/// One port's result.
#[derive(Debug, Clone, Serialize)]
pub struct PortResult {
    pub port: u16,
    pub transport: Transport,
    pub purpose: String,
    #[serde(flatten)]
    pub state: PortState,
    /// Commands that open it, when it is blocked.
    pub fixes: Vec<Fix>,
}

/// One peer's result.
#[derive(Debug, Clone, Serialize)]
pub struct PeerResult {
    pub id: String,
    pub cloud: String,
    pub region: String,
    pub address: IpAddr,
    pub address_class: AddressClass,
    /// This host's address toward the peer (the route's source).
    pub local_address: Option<IpAddr>,
    pub ports: Vec<PortResult>,
    pub path_mtu: Option<PathMtu>,
    /// Why a check could not run (a socket error), if one could not.
    pub errors: Vec<String>,
}

impl PeerResult {
    pub fn ok(&self) -> bool {
        self.address_class.allowed()
            && self.errors.is_empty()
            && self
                .ports
                .iter()
                .all(|p| matches!(p.state, PortState::Open { .. } | PortState::NotRefused))
    }
}

/// Everything preflight found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub agent: String,
    pub cloud: String,
    pub region: String,
    pub clock_synchronized: bool,
    /// The clock's maximum error as the kernel states it, seconds.
    pub clock_error_seconds: f64,
    pub kernel_rx_timestamps: bool,
    pub peers: Vec<PeerResult>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.peers.iter().all(PeerResult::ok)
    }
}

/// The route's source address toward `peer` (no packet is sent: a UDP connect).
fn local_address(peer: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(peer).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

/// Checks every peer of `config`, each port given `timeout` per try. Blocking (the checks
/// wait on sockets); the CLI runs it off the async runtime.
pub fn run(config: &AgentConfig, timeout: Duration) -> Report {
    let clock = xcbench_agent::net::clock::clock_state();
    // Read at load already: a file changed since is probed unauthenticated, and refused.
    let keys = KeyRing::load(config).unwrap_or_default();
    let mut peers = Vec::new();
    for peer in &config.peers {
        let ip = peer.address.ip();
        let class = AddressClass::of(ip);
        let mut result = PeerResult {
            id: peer.identity.id.to_string(),
            cloud: peer.identity.cloud.to_string(),
            region: peer.identity.region.clone(),
            address: ip,
            address_class: class,
            local_address: None,
            ports: Vec::new(),
            path_mtu: None,
            errors: Vec::new(),
        };
        // Nothing is sent toward an address the interconnect would not carry.
        if class.allowed() {
            result.local_address = local_address(peer.address);
            let peer_keys = peer.probe.stamp_keys.as_ref().and_then(|k| keys.get(k));
            for p in plan(config, peer) {
                let state = match p.check {
                    Check::Stamp => probe::stamp_port(p.addr, timeout, peer_keys.as_deref()),
                    Check::TcpConnect => probe::tcp_port(p.addr, timeout),
                    Check::Quic => probe::quic_port(p.addr, timeout),
                    Check::Datagram => probe::udp_port(p.addr, timeout),
                };
                match state {
                    Ok(state) => {
                        let fixes = match (state.blocked(), result.local_address) {
                            (true, Some(local)) => fixes(
                                local,
                                config.identity.cloud,
                                p.addr.ip(),
                                peer.identity.cloud,
                                p.addr.port(),
                                p.transport,
                            ),
                            _ => Vec::new(),
                        };
                        result.ports.push(PortResult {
                            port: p.addr.port(),
                            transport: p.transport,
                            purpose: p.purpose(),
                            state,
                            fixes,
                        });
                    }
                    Err(e) => result.errors.push(format!(
                        "{}/{} ({}): {e}",
                        p.transport.as_str(),
                        p.addr.port(),
                        p.purpose()
                    )),
                }
            }
            let stamp_open = result
                .ports
                .first()
                .is_some_and(|p| matches!(p.state, PortState::Open { .. }));
            if stamp_open {
                let timeout = timeout.min(Duration::from_millis(500));
                match probe::path_mtu(peer.address, timeout, peer_keys.as_deref()) {
                    Ok(m) => result.path_mtu = Some(m),
                    Err(e) => result.errors.push(format!("path MTU: {e}")),
                }
            }
        }
        peers.push(result);
    }
    Report {
        agent: config.identity.id.to_string(),
        cloud: config.identity.cloud.to_string(),
        region: config.identity.region.clone(),
        clock_synchronized: clock.synchronized,
        clock_error_seconds: clock.max_error_ns as f64 / 1e9,
        kernel_rx_timestamps: probe::kernel_rx_timestamps(),
        peers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_for_a_blocked_port_names_the_port_protocol_and_addresses() {
        let f = fixes(
            "10.10.0.5".parse().unwrap(),
            Cloud::Azure,
            "10.20.0.5".parse().unwrap(),
            Cloud::Oci,
            862,
            Transport::Tcp,
        );
        assert_eq!(f.len(), 2);
        assert!(f[0].place.starts_with("OCI, ingress"));
        assert_eq!(
            f[0].command,
            "oci network nsg rules add --nsg-id <NSG_OCID> --security-rules '[{\"direction\":\"INGRESS\",\"protocol\":\"6\",\"source\":\"10.10.0.5/32\",\"sourceType\":\"CIDR_BLOCK\",\"isStateless\":false,\"tcpOptions\":{\"destinationPortRange\":{\"min\":862,\"max\":862}}}]'"
        );
        let rules: serde_json::Value =
            serde_json::from_str(f[0].command.split('\'').nth(1).unwrap()).unwrap();
        assert_eq!(rules[0]["tcpOptions"]["destinationPortRange"]["max"], 862);
        assert!(f[1].place.starts_with("Azure, outbound"));
        assert_eq!(
            f[1].command,
            "az network nsg rule create --resource-group <RESOURCE_GROUP> --nsg-name <NSG_NAME> --name xcbench-tcp-862-out --priority <PRIORITY> --direction Outbound --access Allow --protocol Tcp --source-address-prefixes 10.10.0.5/32 --source-port-ranges '*' --destination-address-prefixes 10.20.0.5/32 --destination-port-ranges 862"
        );
        let back = fixes(
            "10.20.0.5".parse().unwrap(),
            Cloud::Oci,
            "10.10.0.5".parse().unwrap(),
            Cloud::Azure,
            863,
            Transport::Udp,
        );
        assert!(
            back[0].command.contains("--direction Inbound")
                && back[0].command.contains("--protocol Udp")
        );
        assert!(
            back[1].command.contains("\"EGRESS\"")
                && back[1].command.contains("\"destination\":\"10.10.0.5/32\"")
        );
    }
}

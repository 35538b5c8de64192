//! `xcbench preflight`: run on an agent host before (or instead of) the agent, it checks for
//! every peer in agent.toml what the interconnect needs: a private address (the interconnect
//! carries private traffic only), each port the agent will use answering (STAMP, TCP, QUIC,
//! throughput data), the path MTU, and locally the clock's sync state and kernel receive
//! timestamps. For every blocked port it writes the Azure CLI and OCI CLI commands that open
//! it. Which ports, what an address is, and the commands are decided here without I/O; the
//! sockets are in `xcbench_agent::net::preflight`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use xcbench_agent::net::preflight::{self as probe, PathMtu, PortState};
use xcbench_agent::{AgentConfig, PeerConfig};
use xcbench_snapshot::{Cloud, Protocol};

/// What kind of address a peer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Rfc1918,
    /// RFC 6598 shared address space, 100.64/10.
    Rfc6598,
    /// IPv6 unique local, fc00::/7.
    UniqueLocal,
    /// 127/8, ::1: the tests' hosts, never a real peer.
    Loopback,
    /// 198.18/15 (RFC 2544): the lab's benchmarking addresses.
    Benchmarking,
    /// Anything else: not carried by a private interconnect.
    Public,
}

impl AddressClass {
    pub fn of(ip: IpAddr) -> AddressClass {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                if v4.is_private() {
                    AddressClass::Rfc1918
                } else if o[0] == 100 && (64..128).contains(&o[1]) {
                    AddressClass::Rfc6598
                } else if v4.is_loopback() {
                    AddressClass::Loopback
                } else if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
                    AddressClass::Benchmarking
                } else {
                    AddressClass::Public
                }
            }
            IpAddr::V6(v6) => {
                if v6.is_loopback() {
                    AddressClass::Loopback
                } else if v6.segments()[0] & 0xfe00 == 0xfc00 {
                    AddressClass::UniqueLocal
                } else if let Some(v4) = v6.to_ipv4_mapped() {
                    AddressClass::of(IpAddr::V4(v4))
                } else {
                    AddressClass::Public
                }
            }
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Rfc1918 => "private (RFC 1918)",
            AddressClass::Rfc6598 => "private (RFC 6598 shared space)",
            AddressClass::UniqueLocal => "private (IPv6 unique local)",
            AddressClass::Loopback => "loopback (tests only)",
            AddressClass::Benchmarking => "benchmarking range 198.18/15 (the lab)",
            AddressClass::Public => "PUBLIC: the interconnect carries private addresses only",
        }
    }

    pub fn allowed(self) -> bool {
        self != AddressClass::Public
    }
}

/// The transport a port is checked over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// How a port is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Stamp,
    TcpConnect,
    Quic,
    /// UDP that answers no stranger: only a refusal shows.
    Datagram,
}

/// One port the agent will use toward a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPort {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub purpose: &'static str,
    pub check: Check,
}

/// The ports the agent's config uses toward `peer`: STAMP always; TCP probes and QUIC by the
/// peer's protocols; scheduled throughput tests' data ports (TCP and UDP port + 2, QUIC
/// port + 3) when the schedule tests this peer.
pub fn plan(config: &AgentConfig, peer: &PeerConfig) -> Vec<PlannedPort> {
    let a = peer.address;
    let mut out = vec![PlannedPort {
        addr: a,
        transport: Transport::Udp,
        purpose: "STAMP probes",
        check: Check::Stamp,
    }];
    if peer.probe.protocols.tcp {
        out.push(PlannedPort {
            addr: a,
            transport: Transport::Tcp,
            purpose: "TCP probes",
            check: Check::TcpConnect,
        });
    }
    let quic = peer.probe.protocols.quic && config.tls.is_some();
    let schedule = config
        .throughput
        .schedule
        .as_ref()
        .filter(|s| s.peers.contains(&peer.identity.id) && config.tls.is_some());
    if quic || schedule.is_some() {
        out.push(PlannedPort {
            addr: peer.quic_address,
            transport: Transport::Udp,
            purpose: if quic {
                "QUIC probes (and throughput test control)"
            } else {
                "throughput test control (QUIC)"
            },
            check: Check::Quic,
        });
    }
    if let Some(s) = schedule {
        let data = |offset: u16| SocketAddr::new(a.ip(), a.port().wrapping_add(offset));
        for p in &s.protocols {
            out.push(match p {
                Protocol::Tcp => PlannedPort {
                    addr: data(2),
                    transport: Transport::Tcp,
                    purpose: "TCP throughput test data",
                    check: Check::TcpConnect,
                },
                Protocol::Udp => PlannedPort {
                    addr: data(2),
                    transport: Transport::Udp,
                    purpose: "UDP throughput test data",
                    check: Check::Datagram,
                },
                Protocol::Quic => PlannedPort {
                    addr: data(3),
                    transport: Transport::Udp,
                    purpose: "QUIC throughput test data",
                    check: Check::Quic,
                },
            });
        }
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

fn cidr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

/// `az network nsg rule create ...` for traffic from `from` to `to`'s `port`.
fn azure_rule(inbound: bool, from: IpAddr, to: IpAddr, port: u16, t: Transport) -> String {
    let proto = match t {
        Transport::Udp => "Udp",
        Transport::Tcp => "Tcp",
    };
    format!(
        "az network nsg rule create --resource-group <RESOURCE_GROUP> --nsg-name <NSG_NAME> --name xcbench-{}-{port}-{} --priority <PRIORITY> --direction {} --access Allow --protocol {proto} --source-address-prefixes {} --source-port-ranges '*' --destination-address-prefixes {} --destination-port-ranges {port}",
        t.as_str(),
        if inbound { "in" } else { "out" },
        if inbound { "Inbound" } else { "Outbound" },
        cidr(from),
        cidr(to),
    )
}

/// `oci network nsg rules add ...` for traffic from `from` to `to`'s `port`.
fn oci_rule(ingress: bool, from: IpAddr, to: IpAddr, port: u16, t: Transport) -> String {
    let (number, options) = match t {
        Transport::Udp => ("17", "udpOptions"),
        Transport::Tcp => ("6", "tcpOptions"),
    };
    let (direction, peer_key, peer_type_key, peer) = if ingress {
        ("INGRESS", "source", "sourceType", from)
    } else {
        ("EGRESS", "destination", "destinationType", to)
    };
    format!(
        "oci network nsg rules add --nsg-id <NSG_OCID> --security-rules '[{{\"direction\":\"{direction}\",\"protocol\":\"{number}\",\"{peer_key}\":\"{}\",\"{peer_type_key}\":\"CIDR_BLOCK\",\"isStateless\":false,\"{options}\":{{\"destinationPortRange\":{{\"min\":{port},\"max\":{port}}}}}}}]'",
        cidr(peer)
    )
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
            command: azure_rule(true, local, peer, port, t),
        };
        let oci = Fix {
            place: "OCI, ingress on the peer's NSG (for a security list, add the same rule in the console: `oci network security-list update --ingress-security-rules` replaces the whole list)".into(),
            command: oci_rule(true, local, peer, port, t),
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
            command: azure_rule(false, local, peer, port, t),
        }),
        Cloud::Oci => out.push(Fix {
            place: "OCI, egress on this host's NSG (only if egress is restricted)".into(),
            command: oci_rule(false, local, peer, port, t),
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
    pub purpose: &'static str,
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
            for p in plan(config, peer) {
                let state = match p.check {
                    Check::Stamp => probe::stamp_port(p.addr, timeout),
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
                            purpose: p.purpose,
                            state,
                            fixes,
                        });
                    }
                    Err(e) => result.errors.push(format!(
                        "{}/{} ({}): {e}",
                        p.transport.as_str(),
                        p.addr.port(),
                        p.purpose
                    )),
                }
            }
            let stamp_open = result
                .ports
                .first()
                .is_some_and(|p| matches!(p.state, PortState::Open { .. }));
            if stamp_open {
                match probe::path_mtu(peer.address, timeout.min(Duration::from_millis(500))) {
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
    fn addresses_are_classified() {
        let c = |s: &str| AddressClass::of(s.parse().unwrap());
        assert_eq!(c("10.1.2.3"), AddressClass::Rfc1918);
        assert_eq!(c("172.31.255.1"), AddressClass::Rfc1918);
        assert_eq!(c("172.32.0.1"), AddressClass::Public);
        assert_eq!(c("192.168.0.1"), AddressClass::Rfc1918);
        assert_eq!(c("100.64.0.1"), AddressClass::Rfc6598);
        assert_eq!(c("100.128.0.1"), AddressClass::Public);
        assert_eq!(c("fd00::1"), AddressClass::UniqueLocal);
        assert_eq!(c("2001:db8::1"), AddressClass::Public);
        assert_eq!(c("::ffff:10.0.0.1"), AddressClass::Rfc1918);
        assert_eq!(c("198.18.2.1"), AddressClass::Benchmarking);
        assert_eq!(c("8.8.8.8"), AddressClass::Public);
        assert!(!c("8.8.8.8").allowed() && c("127.0.0.1").allowed());
    }

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

//! The Azure CLI and OCI CLI commands that open one port between two hosts, as preflight
//! prints them for a blocked port (placeholders in angle brackets for what only the operator
//! knows: resource group, NSG, priority, NSG OCID). Pure text.

use std::net::IpAddr;

use super::network::Transport;

/// An address as a one-host block.
fn host_block(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

/// `az network nsg rule create ...` for traffic from `from` to `to`'s `port`.
pub fn azure_rule(inbound: bool, from: IpAddr, to: IpAddr, port: u16, t: Transport) -> String {
    let proto = match t {
        Transport::Udp => "Udp",
        Transport::Tcp => "Tcp",
    };
    format!(
        "az network nsg rule create --resource-group <RESOURCE_GROUP> --nsg-name <NSG_NAME> --name xcbench-{}-{port}-{} --priority <PRIORITY> --direction {} --access Allow --protocol {proto} --source-address-prefixes {} --source-port-ranges '*' --destination-address-prefixes {} --destination-port-ranges {port}",
        t.as_str(),
        if inbound { "in" } else { "out" },
        if inbound { "Inbound" } else { "Outbound" },
        host_block(from),
        host_block(to),
    )
}

/// `oci network nsg rules add ...` for traffic from `from` to `to`'s `port`.
pub fn oci_rule(ingress: bool, from: IpAddr, to: IpAddr, port: u16, t: Transport) -> String {
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
        host_block(peer)
    )
}

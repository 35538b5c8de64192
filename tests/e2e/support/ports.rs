//! Free loopback ports, found by binding port 0 and letting it go (a race another process
//! could win, rare here). An agent's QUIC responder takes STAMP's port + 1, hence pairs;
//! its throughput server + 2 (TCP and UDP data) and + 3 (QUIC data).

use std::net::{TcpListener, UdpSocket};

pub(crate) fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port whose TCP twin is free too: an agent's TCP responder takes the same number, and
/// ports come from the ephemeral range that other tests' connections also draw from.
pub(crate) fn free_udp_port() -> u16 {
    for _ in 0..100 {
        let p = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no UDP port on 127.0.0.1 whose TCP twin is free");
}

/// A UDP port whose successor is free too (the QUIC responder takes STAMP's port + 1).
pub(crate) fn free_udp_port_pair() -> u16 {
    for _ in 0..100 {
        let p = free_udp_port();
        if p < u16::MAX && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two adjacent free UDP ports on 127.0.0.1");
}

/// A STAMP port whose + 1 (QUIC), + 2 (data, TCP and UDP) and + 3 (QUIC data) are free too.
pub(crate) fn free_agent_ports() -> u16 {
    (0..100)
        .map(|_| free_udp_port_pair())
        .find(|p| {
            TcpListener::bind(("127.0.0.1", p + 2)).is_ok()
                && UdpSocket::bind(("127.0.0.1", p + 3)).is_ok()
        })
        .expect("free ports")
}

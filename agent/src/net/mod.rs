//! The only place with sockets and clocks: UDP and TCP sockets with kernel receive
//! timestamps, QUIC endpoints (quinn), the host clock and its error estimate, and the tasks
//! that drive the sans-IO state machines.

pub mod clock;
pub mod fresh;
pub mod quic;
pub mod reflector;
pub mod socket;
pub mod stamp;
pub mod tcp;
pub mod throughput;
pub mod timer;

/// The wildcard address with any port, in `peer`'s family: where a client socket binds.
pub fn any_local_for(peer: std::net::SocketAddr) -> std::net::SocketAddr {
    match peer {
        std::net::SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        std::net::SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

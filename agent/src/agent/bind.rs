//! Binding the agent's sockets, each from the port plan of its listen address: STAMP and
//! TCP reflectors, QUIC endpoints (+1), throughput data (+2, +3). A port that cannot be
//! taken is [`AgentError::Bind`], naming the address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::{AgentError, BoundReflector, Throughput, TlsState};
use crate::config::stamp_keys::KeyRing;
use crate::config::{AgentConfig, PortPlan};
use crate::net;
use crate::net::socket::ProbeSocket;
use crate::net::throughput::server::Server;
use crate::net::throughput::slot::TestSlot;
use crate::probe::{Reflector, ReflectorKeys, ReflectorLimits};
use crate::tls;

/// The keys the reflectors check test packets with: each peer's by its address, and
/// `[reflector] stamp_keys` for everyone else.
pub(super) fn reflector_keys(config: &AgentConfig, ring: &KeyRing) -> ReflectorKeys {
    let others = config.reflector.stamp_keys.as_ref();
    let mut keys = ReflectorKeys::for_others(others.and_then(|k| ring.get(k)));
    for peer in &config.peers {
        if let Some(k) = peer.probe.stamp_keys.as_ref().and_then(|k| ring.get(k)) {
            keys.add_source(peer.address.ip(), k);
        }
    }
    keys
}

pub(super) fn bind_reflectors(config: &AgentConfig) -> Result<Vec<BoundReflector>, AgentError> {
    let limits = ReflectorLimits {
        max_sessions: config.reflector.max_sessions,
        rate: config.reflector.rate,
        ..ReflectorLimits::default()
    };
    config
        .reflector
        .listen
        .iter()
        .map(|addr| {
            ProbeSocket::bind(*addr, 0, config.timestamps)
                .map(|s| (s, Arc::new(Mutex::new(Reflector::new(limits)))))
                .map_err(|source| AgentError::Bind {
                    addr: *addr,
                    source,
                })
        })
        .collect()
}

/// TCP probes are answered on the same port numbers the STAMP sockets got.
pub(super) fn bind_tcp(
    reflectors: &[BoundReflector],
) -> Result<Vec<tokio::net::TcpListener>, AgentError> {
    reflectors
        .iter()
        .map(|(socket, _)| {
            let addr = socket.local_addr().map_err(|source| AgentError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|_| l))
                .and_then(tokio::net::TcpListener::from_std)
                .map_err(|source| AgentError::Bind { addr, source })
        })
        .collect()
}

/// QUIC is answered at port + 1 of each STAMP address.
pub(super) fn bind_quic(
    config: &AgentConfig,
    t: &TlsState,
) -> Result<Vec<quinn::Endpoint>, AgentError> {
    let crypto = quic_server_crypto(config, t)?;
    config
        .reflector
        .listen
        .iter()
        .map(|listen| {
            let addr = PortPlan::at(*listen, PortPlan::quic);
            net::quic::server_endpoint(addr, crypto.clone())
                .map_err(|source| AgentError::Bind { addr, source })
        })
        .collect()
}

/// Throughput tests: control over QUIC, data at the first address's port + 2 and + 3.
pub(super) fn bind_throughput(
    config: &AgentConfig,
    t: &TlsState,
    slot: &Arc<TestSlot>,
) -> Result<Option<Throughput>, AgentError> {
    let (Some(listen), true) = (config.reflector.listen.first(), config.throughput.enabled) else {
        return Ok(None);
    };
    let b = &config.throughput;
    let allow = tls::KnownPeers::new(
        config
            .peers
            .iter()
            .filter(|p| b.allow.contains(&p.identity.id))
            .map(|p| (p.identity.id.clone(), p.fingerprint)),
    );
    let (server, listener) = Server::bind(
        *listen,
        b.serve_limits(),
        allow,
        t.identity.clone(),
        slot.clone(),
    )
    .map_err(|source| AgentError::Bind {
        addr: PortPlan::at(*listen, PortPlan::data),
        source,
    })?;
    Ok(Some(Throughput { server, listener }))
}

/// The QUIC responder's TLS side: clients are trusted by the configured peers'
/// fingerprints, `tls.allow`, or the CA. quinn fixes the server config of a connection
/// attempt when its first packet arrives, so it must be right before any peer connects.
pub(super) fn quic_server_crypto(
    config: &AgentConfig,
    t: &TlsState,
) -> Result<Arc<quinn::crypto::rustls::QuicServerConfig>, AgentError> {
    let mut allowed: std::collections::HashSet<_> =
        config.peers.iter().filter_map(|p| p.fingerprint).collect();
    if let Some(c) = &config.tls {
        allowed.extend(c.allow.iter().copied());
    }
    Ok(tls::server_crypto(&t.identity, allowed, t.ca.clone())?)
}

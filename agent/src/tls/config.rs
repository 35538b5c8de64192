//! The rustls configurations xcbench's TLS ends use: the QUIC reflector and prober
//! (quinn), throughput test control, and the collector's HTTPS listener and its clients
//! (agents' reports and mesh fetch, the gate), with their ALPNs. Whom each end accepts is
//! [`super::trust`]'s.

use std::collections::HashSet;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::identity::{Fingerprint, TlsError, TlsIdentity};
use super::trust::{provider, ClientVerifier, ServerVerifier};

/// ALPN of xcbench's QUIC probes.
pub const ALPN: &[u8] = b"xcbench-probe/1";
/// ALPN of throughput test control between agents.
pub const ALPN_THROUGHPUT: &[u8] = b"xcbench-bench/1";

/// Server side (the reflector): presents the identity, demands a client certificate that is
/// pinned in `allowed` or issued by `ca`, and accepts 0-RTT from resumed sessions.
pub fn server_crypto(
    identity: &TlsIdentity,
    allowed: HashSet<Fingerprint>,
    ca: Option<Arc<RootCertStore>>,
) -> Result<Arc<QuicServerConfig>, TlsError> {
    let provider = provider();
    let ca = ca
        .map(|roots| {
            WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(TlsError::Ca)
        })
        .transpose()?;
    let verifier = ClientVerifier {
        allowed,
        ca,
        any_key: false,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls_server(provider, identity, verifier)?;
    config.alpn_protocols = vec![ALPN.to_vec(), ALPN_THROUGHPUT.to_vec()];
    // quinn's requirement for 0-RTT: unlimited early data (flow control bounds it).
    config.max_early_data_size = u32::MAX;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    QuicServerConfig::try_from(config)
        .map(Arc::new)
        .map_err(TlsError::Quic)
}

/// Client side (probing one peer): presents the identity and accepts the peer only by its
/// pinned fingerprint or through `ca`. `resume` keeps session tickets and sends 0-RTT.
pub fn client_crypto(
    identity: &TlsIdentity,
    pinned: Option<Fingerprint>,
    ca: Option<Arc<RootCertStore>>,
    resume: bool,
) -> Result<Arc<QuicClientConfig>, TlsError> {
    client_crypto_for(identity, pinned, ca, resume, ALPN)
}

/// [`client_crypto`] for another application protocol (e.g. [`ALPN_THROUGHPUT`]).
pub fn client_crypto_for(
    identity: &TlsIdentity,
    pinned: Option<Fingerprint>,
    ca: Option<Arc<RootCertStore>>,
    resume: bool,
    alpn: &[u8],
) -> Result<Arc<QuicClientConfig>, TlsError> {
    let mut config = rustls_client(Some(identity), pinned, ca)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    if resume {
        config.enable_early_data = true;
        config.resumption = Resumption::in_memory_sessions(16);
    } else {
        config.resumption = Resumption::disabled();
    }
    QuicClientConfig::try_from(config)
        .map(Arc::new)
        .map_err(TlsError::Quic)
}

/// ALPN of the collector's HTTPS listener (reports, mesh, history, `/metrics`).
pub const ALPN_HTTP: &[u8] = b"http/1.1";

/// The collector's HTTPS server: presents `identity`, and asks every client for a
/// certificate without demanding one (Prometheus and the gate read without one). A
/// certificate a client does present must prove its key in the handshake; whose it is, is
/// decided per request against the pins and the CA (the collector's `admission::ClientTrust::authorize`), so the pins
/// can follow the mesh file without a restart and a refusal can say why.
pub fn https_server(identity: &TlsIdentity) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let verifier = ClientVerifier {
        allowed: HashSet::new(),
        ca: None,
        any_key: true,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls_server(provider, identity, verifier)?;
    config.alpn_protocols = vec![ALPN_HTTP.to_vec()];
    Ok(config)
}

/// A TLS 1.3 server presenting `identity`, its clients checked by `verifier`: what the
/// QUIC responder and the collector's HTTPS listener share.
fn rustls_server(
    provider: Arc<CryptoProvider>,
    identity: &TlsIdentity,
    verifier: ClientVerifier,
) -> Result<rustls::ServerConfig, TlsError> {
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Rustls)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(TlsError::KeyPair)
}

/// An HTTPS client of the collector: accepts the collector by its pinned fingerprint or
/// through `ca` (which must then vouch for the URL's host name), and presents `identity`
/// when given (agents do; the gate reads without one).
pub fn https_client(
    identity: Option<&TlsIdentity>,
    pinned: Option<Fingerprint>,
    ca: Option<Arc<RootCertStore>>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls_client(identity, pinned, ca)?;
    config.alpn_protocols = vec![ALPN_HTTP.to_vec()];
    Ok(config)
}

/// A TLS 1.3 client that accepts the server by `pinned` or through `ca`, presenting
/// `identity` when given: what QUIC probes, throughput tests and HTTPS share.
fn rustls_client(
    identity: Option<&TlsIdentity>,
    pinned: Option<Fingerprint>,
    ca: Option<Arc<RootCertStore>>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let ca = ca
        .map(|roots| {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(TlsError::Ca)
        })
        .transpose()?;
    let verifier = Arc::new(ServerVerifier {
        pinned,
        ca,
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Rustls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(TlsError::KeyPair),
        None => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::trust::server_name;
    use crate::tls::KeySource;

    #[test]
    fn configs_build_for_both_sides() {
        let id = TlsIdentity::load(&KeySource::Ephemeral, "az-1").unwrap();
        server_crypto(&id, HashSet::from([id.fingerprint]), None).unwrap();
        client_crypto(&id, Some(id.fingerprint), None, true).unwrap();
        https_server(&id).unwrap();
        https_client(Some(&id), Some(id.fingerprint), None).unwrap();
        https_client(None, Some(id.fingerprint), None).unwrap();
        assert_eq!(server_name("oci-ashburn-db1"), "oci-ashburn-db1");
        assert_eq!(server_name("-x"), "xcbench");
    }
}

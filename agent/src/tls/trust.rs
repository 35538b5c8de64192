//! Peer trust for QUIC probes and throughput tests: the rustls configurations quinn uses on
//! both sides, the names a client asks for, and which configured peer a certificate is.
//!
//! Trust is mutual. A peer's certificate is accepted when its SHA-256 fingerprint is pinned
//! (the peer's `fingerprint`, or `tls.allow` for clients that are not probed back), or when
//! it chains to the configured CA (`tls.ca`) and, as a server, names the peer's id. Pinning
//! compares the whole certificate, so it ignores names and validity dates; the handshake
//! signature is still checked against the pinned certificate's key. A client nobody pinned
//! and no CA vouches for is refused in the handshake. [`KnownPeers`] tells which configured
//! peer a trusted certificate belongs to (for `bench.allow` and the load label).

use std::collections::HashSet;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use xcbench_snapshot::AgentId;

use super::identity::{Fingerprint, TlsError, TlsIdentity};

/// ALPN of xcbench's QUIC probes.
pub const ALPN: &[u8] = b"xcbench-probe/1";
/// ALPN of throughput test control between agents.
pub const ALPN_THROUGHPUT: &[u8] = b"xcbench-bench/1";
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

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
    let verifier = Arc::new(ClientVerifier {
        allowed,
        ca,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Rustls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(TlsError::KeyPair)?;
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
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Rustls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(TlsError::KeyPair)?;
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

/// The name a client asks for: the peer's id where it is a valid DNS name (a CA-issued
/// certificate must carry it), else a fixed one (pinning ignores names).
pub fn server_name(peer_id: &str) -> String {
    match ServerName::try_from(peer_id) {
        Ok(ServerName::DnsName(_)) => peer_id.to_owned(),
        _ => "xcbench".to_owned(),
    }
}

/// Whether `cert` carries `peer_id` among its subject alternative names; only a peer id
/// that is a DNS name can be carried (see [`server_name`]).
pub fn names_peer(cert: &CertificateDer<'_>, peer_id: &str) -> bool {
    let Ok(name @ ServerName::DnsName(_)) = ServerName::try_from(peer_id) else {
        return false;
    };
    rustls::server::ParsedCertificate::try_from(cert)
        .is_ok_and(|parsed| rustls::client::verify_server_name(&parsed, &name).is_ok())
}

/// Configured peers as a certificate the handshake already trusted identifies them: by the
/// pinned fingerprint, or, for a peer without one (vouched for by `tls.ca`), by its id among
/// the certificate's names.
#[derive(Debug, Clone, Default)]
pub struct KnownPeers(Vec<(AgentId, Option<Fingerprint>)>);

impl KnownPeers {
    pub fn new(peers: impl IntoIterator<Item = (AgentId, Option<Fingerprint>)>) -> Self {
        KnownPeers(peers.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The peer pinned to `cert`'s fingerprint, else the one unpinned peer `cert` names
    /// (none if it names several).
    pub fn identify(&self, cert: &CertificateDer<'_>) -> Option<&AgentId> {
        let fp = Fingerprint::of(cert);
        if let Some((id, _)) = self.0.iter().find(|(_, f)| *f == Some(fp)) {
            return Some(id);
        }
        let mut named = self
            .0
            .iter()
            .filter(|(id, f)| f.is_none() && names_peer(cert, id.as_str()));
        match (named.next(), named.next()) {
            (Some((id, _)), None) => Some(id),
            _ => None,
        }
    }
}

fn refused() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

#[derive(Debug)]
struct ServerVerifier {
    pinned: Option<Fingerprint>,
    ca: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pinned == Some(Fingerprint::of(end_entity)) {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.ca {
            Some(ca) => {
                ca.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(refused()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered (QUIC requires it).
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[derive(Debug)]
struct ClientVerifier {
    allowed: HashSet<Fingerprint>,
    ca: Option<Arc<dyn ClientCertVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.allowed.contains(&Fingerprint::of(end_entity)) {
            return Ok(ClientCertVerified::assertion());
        }
        match &self.ca {
            Some(ca) => ca.verify_client_cert(end_entity, intermediates, now),
            None => Err(refused()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::KeySource;

    /// A self-signed certificate carrying `names`.
    fn cert(names: &[&str]) -> CertificateDer<'static> {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn known_peers_are_identified_by_pin_or_by_name() {
        let id = |s: &str| s.parse::<AgentId>().unwrap();
        let (pinned, named, both) = (
            cert(&["elsewhere"]),
            cert(&["oci-2"]),
            cert(&["oci-2", "oci-3"]),
        );
        let peers = KnownPeers::new([
            (id("oci-1"), Some(Fingerprint::of(&pinned))),
            (id("oci-2"), None),
            (id("oci-3"), None),
            (id("10.1.0.9"), None),
        ]);
        assert_eq!(peers.identify(&pinned), Some(&id("oci-1")));
        assert_eq!(peers.identify(&named), Some(&id("oci-2")));
        // Two unpinned peers named: neither.
        assert_eq!(peers.identify(&both), None);
        // A pinned peer is not taken by name: oci-1's id on another key is nobody.
        assert_eq!(peers.identify(&cert(&["oci-1"])), None);
        // An id that is no DNS name cannot be carried (a certificate names "xcbench" then).
        assert!(!names_peer(&cert(&["xcbench", "10.1.0.9"]), "10.1.0.9"));
        assert_eq!(peers.identify(&cert(&["xcbench"])), None);
        assert!(
            !names_peer(&CertificateDer::from(vec![0u8; 8]), "oci-2"),
            "garbage"
        );
    }

    #[test]
    fn configs_build_for_both_sides() {
        let id = TlsIdentity::load(&KeySource::Ephemeral, "az-1").unwrap();
        server_crypto(&id, HashSet::from([id.fingerprint]), None).unwrap();
        client_crypto(&id, Some(id.fingerprint), None, true).unwrap();
        assert_eq!(server_name("oci-ashburn-db1"), "oci-ashburn-db1");
        assert_eq!(server_name("-x"), "xcbench");
    }
}

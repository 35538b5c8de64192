//! Peer trust: the rustls verifiers both ends of every xcbench TLS connection use, the names
//! a client asks for, and which configured peer a certificate is.
//!
//! Trust is mutual. A peer's certificate is accepted when its SHA-256 fingerprint is pinned
//! (the peer's `fingerprint`, or `tls.allow` for clients that are not probed back), or when
//! it chains to the configured CA (`tls.ca`) and, as a server, names the peer's id. Pinning
//! compares the whole certificate, so it ignores names and validity dates; the handshake
//! signature is still checked against the pinned certificate's key. A client nobody pinned
//! and no CA vouches for is refused in the handshake, with the fingerprint it presented and
//! the one expected. [`KnownPeers`] tells which configured peer a trusted certificate belongs
//! to (for `bench.allow` and the load label).

use std::collections::HashSet;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName};
use xcbench_snapshot::AgentId;

use super::identity::Fingerprint;

/// The rustls crypto provider every xcbench TLS end uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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

/// Why a peer's certificate was refused: it is not the one trusted by fingerprint, and no CA
/// is configured to vouch for it instead. rustls shows a custom certificate error with
/// `{:?}`, so Debug is the same sentence as Display: the fingerprint presented, the one
/// expected.
struct NotPinned {
    presented: Fingerprint,
    expected: Expected,
}

enum Expected {
    /// A server: the one fingerprint pinned for it, if any.
    Server(Option<Fingerprint>),
    /// A client: how many fingerprints are allowed.
    Clients(usize),
}

impl std::fmt::Display for NotPinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let presented = self.presented;
        match self.expected {
            Expected::Server(Some(pin)) => write!(
                f,
                "the peer's certificate is {presented}, not the pinned {pin}"
            )?,
            Expected::Server(None) => {
                write!(f, "the peer's certificate {presented} is not pinned")?
            }
            Expected::Clients(n) => write!(
                f,
                "the client's certificate {presented} is none of the {n} allowed fingerprints"
            )?,
        }
        f.write_str(", and no CA is configured (tls.ca)")
    }
}

impl std::fmt::Debug for NotPinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for NotPinned {}

fn refused(cert: &CertificateDer<'_>, expected: Expected) -> rustls::Error {
    let why = NotPinned {
        presented: Fingerprint::of(cert),
        expected,
    };
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(why))))
}

#[derive(Debug)]
pub(super) struct ServerVerifier {
    pub(super) pinned: Option<Fingerprint>,
    pub(super) ca: Option<Arc<WebPkiServerVerifier>>,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
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
            None => Err(refused(end_entity, Expected::Server(self.pinned))),
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
pub(super) struct ClientVerifier {
    pub(super) allowed: HashSet<Fingerprint>,
    pub(super) ca: Option<Arc<dyn ClientCertVerifier>>,
    /// The collector's listener: any certificate, or none, as long as the client proves it
    /// holds the key (the TLS 1.3 CertificateVerify); the collector's admission decides per
    /// request.
    pub(super) any_key: bool,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        !self.any_key
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
        if self.any_key || self.allowed.contains(&Fingerprint::of(end_entity)) {
            return Ok(ClientCertVerified::assertion());
        }
        match &self.ca {
            Some(ca) => ca.verify_client_cert(end_entity, intermediates, now),
            None => Err(refused(end_entity, Expected::Clients(self.allowed.len()))),
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
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate carrying `names`.
    pub(crate) fn cert(names: &[&str]) -> CertificateDer<'static> {
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
}

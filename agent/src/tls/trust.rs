//! Peer trust for QUIC probes, throughput tests and the collector's HTTPS channel: the rustls
//! configurations quinn and the HTTPS ends use, the names a client asks for, which
//! configured peer a certificate is, and whom the collector takes snapshots from.
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
/// decided per request against the pins and the CA ([`ClientTrust::authorize`]), so the pins
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

/// Whom the collector takes snapshots from: agents pinned by fingerprint (the mesh file's
/// and `tls.agents`), and, with a CA, agents whose CA-issued certificate carries their id.
#[derive(Clone)]
pub struct ClientTrust {
    pins: Vec<(AgentId, Fingerprint)>,
    ca: Option<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTrust")
            .field("pins", &self.pins)
            .field("ca", &self.ca.is_some())
            .finish()
    }
}

/// Why a client may not report as the agent it names (the collector answers 403).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Forbidden {
    #[error("no client certificate: agents report with their [tls] key pair")]
    NoCertificate,
    #[error("certificate {fingerprint} is pinned for agent {owner}, not for {claimed}")]
    OtherAgent {
        fingerprint: Fingerprint,
        owner: AgentId,
        claimed: AgentId,
    },
    #[error("agent {claimed} is pinned to another certificate than {fingerprint}")]
    NotItsPin {
        fingerprint: Fingerprint,
        claimed: AgentId,
    },
    #[error("certificate {fingerprint} is not pinned for agent {claimed}, and {ca}")]
    Unknown {
        fingerprint: Fingerprint,
        claimed: AgentId,
        /// What the CA said, or that there is none.
        ca: CaVerdict,
    },
}

/// Why the CA did not vouch for an unpinned agent's certificate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CaVerdict {
    #[error("no CA is configured (tls.ca)")]
    NoCa,
    #[error("tls.ca does not vouch for it: {0}")]
    NotIssued(rustls::Error),
    #[error("its CA-issued certificate does not carry the name {0}")]
    OtherName(AgentId),
}

impl ClientTrust {
    pub fn new(
        pins: impl IntoIterator<Item = (AgentId, Fingerprint)>,
        ca: Option<Arc<RootCertStore>>,
    ) -> Result<ClientTrust, TlsError> {
        let ca = ca
            .map(|roots| {
                WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(TlsError::Ca)
            })
            .transpose()?;
        Ok(ClientTrust {
            pins: pins.into_iter().collect(),
            ca,
        })
    }

    /// The same CA with other pins (the mesh file changed).
    pub fn with_pins(&self, pins: impl IntoIterator<Item = (AgentId, Fingerprint)>) -> Self {
        ClientTrust {
            pins: pins.into_iter().collect(),
            ca: self.ca.clone(),
        }
    }

    /// Whether the client that presented `chain` (end entity first; empty for none) may
    /// report as `claimed`, at `now`. A pin decides alone, either way: an agent pinned to
    /// one key is not taken on another key by name, and a pinned key reports only as its
    /// own agent. Without a pin the CA must vouch for the chain and the certificate must
    /// carry `claimed` among its names.
    pub fn authorize(
        &self,
        chain: &[CertificateDer<'static>],
        claimed: &AgentId,
        now: UnixTime,
    ) -> Result<(), Forbidden> {
        let Some((end, intermediates)) = chain.split_first() else {
            return Err(Forbidden::NoCertificate);
        };
        let fingerprint = Fingerprint::of(end);
        if let Some((owner, _)) = self.pins.iter().find(|(_, f)| *f == fingerprint) {
            return if owner == claimed {
                Ok(())
            } else {
                Err(Forbidden::OtherAgent {
                    fingerprint,
                    owner: owner.clone(),
                    claimed: claimed.clone(),
                })
            };
        }
        if self.pins.iter().any(|(id, _)| id == claimed) {
            return Err(Forbidden::NotItsPin {
                fingerprint,
                claimed: claimed.clone(),
            });
        }
        let unknown = |ca: CaVerdict| Forbidden::Unknown {
            fingerprint,
            claimed: claimed.clone(),
            ca,
        };
        let Some(ca) = &self.ca else {
            return Err(unknown(CaVerdict::NoCa));
        };
        ca.verify_client_cert(end, intermediates, now)
            .map_err(|e| unknown(CaVerdict::NotIssued(e)))?;
        if names_peer(end, claimed.as_str()) {
            Ok(())
        } else {
            Err(unknown(CaVerdict::OtherName(claimed.clone())))
        }
    }
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
struct ClientVerifier {
    allowed: HashSet<Fingerprint>,
    ca: Option<Arc<dyn ClientCertVerifier>>,
    /// The collector's listener: any certificate, or none, as long as the client proves it
    /// holds the key (the TLS 1.3 CertificateVerify); [`ClientTrust`] decides per request.
    any_key: bool,
    algorithms: WebPkiSupportedAlgorithms,
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
    fn the_collector_takes_an_agent_only_on_its_own_certificate() {
        let id = |s: &str| s.parse::<AgentId>().unwrap();
        let now = UnixTime::now();
        let (az, oci, stranger) = (cert(&["az-1"]), cert(&["oci-1"]), cert(&["az-9"]));
        let trust = ClientTrust::new(
            [
                (id("az-1"), Fingerprint::of(&az)),
                (id("oci-1"), Fingerprint::of(&oci)),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            trust.authorize(std::slice::from_ref(&az), &id("az-1"), now),
            Ok(())
        );
        assert_eq!(
            trust.authorize(&[], &id("az-1"), now),
            Err(Forbidden::NoCertificate)
        );
        // oci-1's key posting as az-1.
        assert_eq!(
            trust.authorize(std::slice::from_ref(&oci), &id("az-1"), now),
            Err(Forbidden::OtherAgent {
                fingerprint: Fingerprint::of(&oci),
                owner: id("oci-1"),
                claimed: id("az-1"),
            })
        );
        // A stranger naming a pinned agent, and naming itself.
        assert!(matches!(
            trust.authorize(&[cert(&["az-1"])], &id("az-1"), now),
            Err(Forbidden::NotItsPin { .. })
        ));
        let e = trust
            .authorize(std::slice::from_ref(&stranger), &id("az-9"), now)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "certificate {} is not pinned for agent az-9, and no CA is configured (tls.ca)",
                Fingerprint::of(&stranger)
            )
        );
        // New pins replace the old ones (the mesh file changed).
        let moved = trust.with_pins([(id("az-9"), Fingerprint::of(&stranger))]);
        assert_eq!(moved.authorize(&[stranger], &id("az-9"), now), Ok(()));
        assert!(moved.authorize(&[az], &id("az-1"), now).is_err());
    }

    #[test]
    fn a_ca_vouches_for_the_names_it_issued() {
        let id = |s: &str| s.parse::<AgentId>().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let issued = |name: &str| {
            let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            p.signed_by(&rcgen::KeyPair::generate().unwrap(), &ca)
                .unwrap()
                .der()
                .clone()
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let pinned = cert(&["oci-1"]);
        let trust = ClientTrust::new(
            [(id("oci-1"), Fingerprint::of(&pinned))],
            Some(Arc::new(roots)),
        )
        .unwrap();
        let now = UnixTime::now();
        assert_eq!(trust.authorize(&[issued("az-1")], &id("az-1"), now), Ok(()));
        // Issued to another name; or to a pinned agent's name on another key.
        let e = trust
            .authorize(&[issued("az-2")], &id("az-1"), now)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("its CA-issued certificate does not carry the name az-1"),
            "{e}"
        );
        assert!(matches!(
            trust.authorize(&[issued("oci-1")], &id("oci-1"), now),
            Err(Forbidden::NotItsPin { .. })
        ));
        // Self-signed, not issued by the CA.
        let e = trust
            .authorize(&[cert(&["az-1"])], &id("az-1"), now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.ca does not vouch for it"), "{e}");
    }

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

//! TLS identity and peer trust for QUIC probes: the agent's key pair (files given in config,
//! or generated at first start and kept in a directory), certificate fingerprints, and the
//! rustls configurations quinn uses on both sides.
//!
//! Trust is mutual. A peer's certificate is accepted when its SHA-256 fingerprint is pinned
//! (the peer's `fingerprint`, or `tls.allow` for clients that are not probed back), or when
//! it chains to the configured CA (`tls.ca`) and, as a server, names the peer's id. Pinning
//! compares the whole certificate, so it ignores names and validity dates; the handshake
//! signature is still checked against the pinned certificate's key. A client nobody pinned
//! and no CA vouches for is refused in the handshake. [`KnownPeers`] tells which configured
//! peer a trusted certificate belongs to (for `bench.allow` and the load label).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use xcbench_snapshot::AgentId;

/// ALPN of xcbench's QUIC probes.
pub const ALPN: &[u8] = b"xcbench-probe/1";
/// ALPN of throughput test control between agents.
pub const ALPN_BENCH: &[u8] = b"xcbench-bench/1";
/// File names of a generated key pair inside `tls.dir`.
pub const CERT_FILE: &str = "agent.crt";
pub const KEY_FILE: &str = "agent.key";

/// SHA-256 of a DER certificate, written `sha256:` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Fingerprint {
        let d = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Fingerprint(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = String;
    /// `sha256:` then 64 hex digits, optionally separated by colons (as openssl prints them).
    fn from_str(s: &str) -> Result<Fingerprint, String> {
        let expected = || "must be \"sha256:\" followed by 64 hex digits".to_owned();
        let hex: String = s
            .strip_prefix("sha256:")
            .ok_or_else(expected)?
            .chars()
            .filter(|c| *c != ':')
            .collect();
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(expected());
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| expected())?;
        }
        Ok(Fingerprint(out))
    }
}

/// Where the agent's key pair comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// PEM files: a certificate (chain) and its private key.
    Files { cert: PathBuf, key: PathBuf },
    /// A directory holding `agent.crt` and `agent.key`, generated there at first start.
    Dir(PathBuf),
    /// Generated in memory for this process only (the demo and tests).
    Ephemeral,
}

/// The `[tls]` section: identity and whom to trust besides pinned peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub key: KeySource,
    /// PEM file of CA certificates; peers with a certificate it issued are trusted.
    pub ca: Option<PathBuf>,
    /// Client fingerprints the reflector accepts besides those of configured peers.
    pub allow: Vec<Fingerprint>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("tls setup: {0}")]
    Setup(String),
}

fn file_error(path: &Path, message: impl fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// The agent's certificate chain and private key.
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub fingerprint: Fingerprint,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint,
        }
    }
}

impl TlsIdentity {
    /// Loads (or for [`KeySource::Dir`] at first start, generates and stores) the key pair.
    /// `name` goes into a generated certificate's subject alternative names.
    pub fn load(source: &KeySource, name: &str) -> Result<TlsIdentity, TlsError> {
        match source {
            KeySource::Ephemeral => TlsIdentity::generate(name).map(|(id, _, _)| id),
            KeySource::Files { cert, key } => TlsIdentity::read(cert, key),
            KeySource::Dir(dir) => {
                let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
                match (cert.exists(), key.exists()) {
                    (true, true) => TlsIdentity::read(&cert, &key),
                    (false, false) => {
                        let (id, cert_pem, key_pem) = TlsIdentity::generate(name)?;
                        store(dir, &cert, &key, &cert_pem, &key_pem)?;
                        tracing::info!(dir = %dir.display(), fingerprint = %id.fingerprint, "generated the agent's TLS key pair");
                        Ok(id)
                    }
                    (true, false) => Err(file_error(&key, "missing while its certificate exists; restore it or remove both to generate a new pair")),
                    (false, true) => Err(file_error(&cert, "missing while its key exists; restore it or remove both to generate a new pair")),
                }
            }
        }
    }

    fn read(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| file_error(cert, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| file_error(cert, e))?;
        let Some(first) = chain.first() else {
            return Err(file_error(cert, "holds no PEM certificate"));
        };
        let fingerprint = Fingerprint::of(first);
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
        Ok(TlsIdentity {
            chain,
            key,
            fingerprint,
        })
    }

    /// A fresh self-signed ECDSA P-256 pair, with its PEM texts.
    fn generate(name: &str) -> Result<(TlsIdentity, String, String), TlsError> {
        let mut names = vec!["xcbench".to_owned()];
        if name != "xcbench" {
            names.insert(0, name.to_owned());
        }
        let pair = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Setup(format!("generating a key pair: {e}")))?;
        let der = pair.cert.der().clone();
        let id = TlsIdentity {
            fingerprint: Fingerprint::of(&der),
            chain: vec![der],
            key: PrivateKeyDer::Pkcs8(pair.signing_key.serialize_der().into()),
        };
        Ok((id, pair.cert.pem(), pair.signing_key.serialize_pem()))
    }
}

fn store(
    dir: &Path,
    cert: &Path,
    key: &Path,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| file_error(dir, format!("cannot create: {e}")))?;
    for (path, text, mode) in [(key, key_pem, 0o600), (cert, cert_pem, 0o644)] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| file_error(path, format!("cannot write: {e}")))?;
    }
    Ok(())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file of CA certificates.
pub fn load_ca(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| file_error(path, e))? {
        roots
            .add(cert.map_err(|e| file_error(path, e))?)
            .map_err(|e| file_error(path, e))?;
    }
    if roots.is_empty() {
        return Err(file_error(path, "holds no PEM certificate"));
    }
    Ok(Arc::new(roots))
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
                .map_err(|e| TlsError::Setup(format!("tls.ca: {e}")))
        })
        .transpose()?;
    let verifier = Arc::new(ClientVerifier {
        allowed,
        ca,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Setup(format!("the agent's key pair: {e}")))?;
    config.alpn_protocols = vec![ALPN.to_vec(), ALPN_BENCH.to_vec()];
    // quinn's requirement for 0-RTT: unlimited early data (flow control bounds it).
    config.max_early_data_size = u32::MAX;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    QuicServerConfig::try_from(config)
        .map(Arc::new)
        .map_err(|e| TlsError::Setup(e.to_string()))
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

/// [`client_crypto`] for another application protocol (e.g. [`ALPN_BENCH`]).
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
                .map_err(|e| TlsError::Setup(format!("tls.ca: {e}")))
        })
        .transpose()?;
    let verifier = Arc::new(ServerVerifier {
        pinned,
        ca,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Setup(format!("the agent's key pair: {e}")))?;
    config.alpn_protocols = vec![alpn.to_vec()];
    if resume {
        config.enable_early_data = true;
        config.resumption = Resumption::in_memory_sessions(16);
    } else {
        config.resumption = Resumption::disabled();
    }
    QuicClientConfig::try_from(config)
        .map(Arc::new)
        .map_err(|e| TlsError::Setup(e.to_string()))
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
    fn fingerprint_text_round_trips_and_errors_say_the_format() {
        let f = Fingerprint::of(b"certificate");
        let text = f.to_string();
        assert!(
            text.starts_with("sha256:") && text.len() == 7 + 64,
            "{text}"
        );
        assert_eq!(text.parse::<Fingerprint>().unwrap(), f);
        let colons: String = text[7..]
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(
            format!("sha256:{colons}").parse::<Fingerprint>().unwrap(),
            f
        );
        for bad in ["", "sha256:", &text[7..], "sha256:zz", &format!("{text}00")] {
            assert_eq!(
                bad.parse::<Fingerprint>().unwrap_err(),
                "must be \"sha256:\" followed by 64 hex digits",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_key_pair_is_generated_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("xcbench-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = TlsIdentity::load(&KeySource::Dir(dir.clone()), "az-1").unwrap();
        let again = TlsIdentity::load(&KeySource::Dir(dir.clone()), "az-1").unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let files = KeySource::Files {
            cert: dir.join(CERT_FILE),
            key: dir.join(KEY_FILE),
        };
        assert_eq!(
            TlsIdentity::load(&files, "x").unwrap().fingerprint,
            first.fingerprint
        );
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        let err = TlsIdentity::load(&KeySource::Dir(dir.clone()), "az-1")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("agent.key: missing while its certificate exists"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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

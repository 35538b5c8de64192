//! The agent's TLS identity: its key pair (PEM files given in config, or generated at first
//! start and kept in a directory, or in memory for the demo), the certificate fingerprints
//! peers pin, and the CA file that may vouch for peers instead.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

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
        write!(f, "sha256:{}", crate::wire::hex::encode(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = xcbench_snapshot::Expected;
    /// `sha256:` then 64 hex digits, optionally separated by colons (as openssl prints them).
    fn from_str(s: &str) -> Result<Fingerprint, Self::Err> {
        let expected =
            || xcbench_snapshot::Expected("must be \"sha256:\" followed by 64 hex digits".into());
        let hex: String = s
            .strip_prefix("sha256:")
            .ok_or_else(expected)?
            .chars()
            .filter(|c| *c != ':')
            .collect();
        crate::wire::hex::decode_array(&hex)
            .map(Fingerprint)
            .ok_or_else(expected)
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

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("generating a key pair")]
    Generate(#[source] rcgen::Error),
    #[error("tls.ca")]
    Ca(#[source] rustls::server::VerifierBuilderError),
    #[error("the agent's key pair")]
    KeyPair(#[source] rustls::Error),
    #[error("tls setup")]
    Rustls(#[source] rustls::Error),
    #[error("tls setup: no cipher suite QUIC can start with")]
    Quic(#[source] quinn::crypto::rustls::NoInitialCipherSuite),
}

fn file_error(path: &Path, message: impl fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// The agent's certificate chain and private key.
pub struct TlsIdentity {
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: PrivateKeyDer<'static>,
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
        let pair = rcgen::generate_simple_self_signed(names).map_err(TlsError::Generate)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_text_round_trips_and_errors_say_the_format() {
        let f = Fingerprint::of(b"certificate");
        let text = f.to_string();
        assert!(
            text.starts_with("sha256:") && text.len() == 7 + 64,
            "{text}"
        );
        assert_eq!(text.parse::<Fingerprint>().unwrap(), f);
        let colons: String = text.as_bytes()[7..]
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
                bad.parse::<Fingerprint>().unwrap_err().to_string(),
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
}

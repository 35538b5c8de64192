//! `[tls]`: where the agent's key pair comes from and whom it trusts besides pinned peers.

use std::path::PathBuf;

use super::raw::RawTls;
use super::units::{ConfigError, Ctx};
use crate::tls::{Fingerprint, KeySource};

/// The `[tls]` section: identity and whom to trust besides pinned peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub key: KeySource,
    /// PEM file of CA certificates; peers with a certificate it issued are trusted.
    pub ca: Option<PathBuf>,
    /// Client fingerprints the reflector accepts besides those of configured peers.
    pub allow: Vec<Fingerprint>,
}

pub(crate) fn parse_tls(cx: &Ctx, raw: &RawTls) -> Result<TlsConfig, ConfigError> {
    let path = |field: &str, text: &String| -> Result<PathBuf, ConfigError> {
        if text.is_empty() {
            return Err(cx.err(field, "\"\"", "must be a path"));
        }
        Ok(PathBuf::from(text))
    };
    let key =
        match (&raw.dir, &raw.cert, &raw.key) {
            (Some(d), None, None) => KeySource::Dir(path("tls.dir", d)?),
            (None, Some(c), Some(k)) => KeySource::Files {
                cert: path("tls.cert", c)?,
                key: path("tls.key", k)?,
            },
            (None, Some(c), None) => {
                return Err(cx.err("tls.cert", format!("{c:?}"), "needs tls.key beside it"))
            }
            (None, None, Some(k)) => {
                return Err(cx.err("tls.key", format!("{k:?}"), "needs tls.cert beside it"))
            }
            (None, None, None) => return Err(cx.err(
                "tls",
                "{}",
                "must set dir (a key pair generated at first start) or cert and key (PEM files)",
            )),
            (Some(d), _, _) => {
                return Err(cx.err(
                    "tls.dir",
                    format!("{d:?}"),
                    "must not be set together with tls.cert and tls.key",
                ))
            }
        };
    let ca = raw.ca.as_ref().map(|c| path("tls.ca", c)).transpose()?;
    let allow = raw
        .allow
        .iter()
        .enumerate()
        .map(|(i, f)| super::units::parse_fingerprint(cx, &format!("tls.allow[{i}]"), f))
        .collect::<Result<_, _>>()?;
    Ok(TlsConfig { key, ca, allow })
}

//! `[tls]`: where the agent's key pair comes from and whom it trusts besides pinned peers;
//! and the files a `[tls]` section names (the agent's or the collector's), checked when the
//! configuration is loaded ([`check_files`]).

use std::path::{Path, PathBuf};

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

/// The files a `[tls]` section (the agent's or the collector's, in `file`) names, checked
/// where they are: a certificate, key and CA that can be read; a `dir` that is a directory
/// (or can be made one at first start) holding both halves of a pair or neither. At load,
/// so a missing file is a configuration error naming its field, not a failure at start.
pub fn check_files(file: &str, key: &KeySource, ca: Option<&Path>) -> Result<(), ConfigError> {
    let cx = Ctx { file };
    match key {
        KeySource::Files { cert, key } => {
            check_readable(&cx, "tls.cert", cert, cert)?;
            check_readable(&cx, "tls.key", key, key)?;
        }
        KeySource::Dir(dir) => check_dir(&cx, dir)?,
        KeySource::Ephemeral => {}
    }
    if let Some(ca) = ca {
        check_readable(&cx, "tls.ca", ca, ca)?;
    }
    Ok(())
}

/// `path` (what `field` is set to) names a regular file `file` that can be opened.
fn check_readable(cx: &Ctx, field: &str, path: &Path, file: &Path) -> Result<(), ConfigError> {
    let value = format!("{:?}", path.display().to_string());
    let what = match file == path {
        true => String::new(),
        false => format!("{}: ", file.display()),
    };
    // The kind first: opening a FIFO would wait for a writer.
    let opened = std::fs::metadata(file).and_then(|m| match m.is_file() {
        true => std::fs::File::open(file).map(|_| m),
        false => Ok(m),
    });
    match opened {
        Err(e) => Err(cx.err(
            field,
            value,
            format!("must be a readable PEM file: {what}{e}"),
        )),
        Ok(m) if !m.is_file() => Err(cx.err(
            field,
            value,
            format!("must be a PEM file: {what}not a regular file"),
        )),
        Ok(_) => Ok(()),
    }
}

/// `tls.dir`: a directory, or a path one can be made at (its nearest existing ancestor is a
/// directory); holding both `agent.crt` and `agent.key`, readable, or neither.
fn check_dir(cx: &Ctx, dir: &Path) -> Result<(), ConfigError> {
    use crate::tls::identity::{CERT_FILE, KEY_FILE};
    let value = format!("{:?}", dir.display().to_string());
    let pair = "(the agent.crt and agent.key pair is kept there, generated at first start)";
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
            match (cert.exists(), key.exists()) {
                (true, true) => {
                    check_readable(cx, "tls.dir", dir, &cert)?;
                    check_readable(cx, "tls.dir", dir, &key)
                }
                (false, false) => Ok(()),
                (true, false) | (false, true) => {
                    let (has, lacks) = match cert.exists() {
                        true => (CERT_FILE, KEY_FILE),
                        false => (KEY_FILE, CERT_FILE),
                    };
                    Err(cx.err(
                        "tls.dir",
                        value,
                        format!("holds {has} but not {lacks}: restore {lacks}, or remove {has} to generate a new pair at start"),
                    ))
                }
            }
        }
        Ok(_) => Err(cx.err(
            "tls.dir",
            value,
            format!("must be a directory {pair}: it is a file"),
        )),
        Err(e) => {
            // Made at first start: an ancestor that is a file is why it cannot be.
            let mut up = dir.parent();
            while let Some(p) = up.filter(|p| !p.as_os_str().is_empty()) {
                match std::fs::metadata(p) {
                    Ok(m) if m.is_dir() => break,
                    Ok(_) => {
                        return Err(cx.err(
                            "tls.dir",
                            value,
                            format!(
                                "must be a directory {pair}: it cannot be made, {} is a file",
                                p.display()
                            ),
                        ))
                    }
                    Err(_) => up = p.parent(),
                }
            }
            match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(cx.err("tls.dir", value, format!("must be a directory {pair}: {e}"))),
            }
        }
    }
}

//! STAMP key files: `stamp_keys` in `[reflector]`, `[probe_defaults]`, a `[[peers]]` entry
//! and the mesh's probe settings name one (an absolute path: the keys themselves never
//! travel, a mesh names a path every agent has). Parsing keeps the path; the agent's host
//! reads the files ([`KeyRing::load`], at load and at bind), so a missing, unreadable,
//! world-readable or malformed file is a configuration error naming the field that named
//! it, and the collector checking a mesh needs no keys.
//!
//! A key file holds one or two keys, one per line, as hex (at least 32 digits: 16 octets);
//! blank lines and lines starting with `#` are skipped. The first key is the one packets
//! are sent with; a second is accepted too, for a rotation (see docs/agents-and-mesh.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::units::{ConfigError, Ctx};
use super::AgentConfig;
use crate::wire::stamp_auth::{KeyError, StampKey, StampKeys, MAX_KEYS, MIN_KEY_LEN};

/// A key file a configuration names, and where it names it (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    pub path: PathBuf,
    file: String,
    field: String,
}

/// The key file path `text` at `field`: absolute, since a mesh names the same path on
/// every agent. Read later, by [`KeyRing::load`] on the agent's host.
pub(crate) fn parse_path(cx: &Ctx, field: &str, text: &str) -> Result<KeyPath, ConfigError> {
    if !text.starts_with('/') {
        return Err(cx.err(
            field,
            format!("{text:?}"),
            "must be an absolute path to a key file, e.g. \"/etc/xcbench/stamp.keys\"",
        ));
    }
    Ok(KeyPath {
        path: PathBuf::from(text),
        file: cx.file.to_owned(),
        field: field.to_owned(),
    })
}

impl KeyPath {
    /// The keys in the file; the error names the field that named it.
    pub fn read(&self) -> Result<StampKeys, ConfigError> {
        let cx = Ctx { file: &self.file };
        let fail = |why: KeyFileError| {
            cx.err(
                &self.field,
                format!("{:?}", self.path.display().to_string()),
                why.to_string(),
            )
        };
        let body = read_private(&self.path).map_err(fail)?;
        parse(&body).map_err(fail)
    }
}

/// Every key file a configuration names, read once each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRing(HashMap<PathBuf, Arc<StampKeys>>);

impl KeyRing {
    /// Reads `[reflector] stamp_keys` and every peer's.
    pub fn load(config: &AgentConfig) -> Result<KeyRing, ConfigError> {
        let mut ring = KeyRing::default();
        let named = config.reflector.stamp_keys.iter();
        for k in named.chain(
            config
                .peers
                .iter()
                .filter_map(|p| p.probe.stamp_keys.as_ref()),
        ) {
            if !ring.0.contains_key(&k.path) {
                ring.0.insert(k.path.clone(), Arc::new(k.read()?));
            }
        }
        Ok(ring)
    }

    /// Every file's key ids, e.g. `/etc/xcbench/stamp.keys: 1a2b3c4d, 5e6f7a8b`.
    pub fn ids(&self) -> String {
        let mut files: Vec<String> = (self.0.iter())
            .map(|(path, keys)| format!("{}: {}", path.display(), keys.ids()))
            .collect();
        files.sort();
        files.join("; ")
    }

    /// The keys of a file [`KeyRing::load`] read.
    pub fn get(&self, path: &KeyPath) -> Option<Arc<StampKeys>> {
        self.0.get(&path.path).cloned()
    }
}

/// Why a key file was not taken (the configuration error names the field and the file).
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("must be a key file that can be read: {0}")]
    Unreadable(std::io::Error),
    #[error("is open to other users (mode {0:o}): a key file must be 600 or 640 (chmod 600)")]
    OpenToOthers(u32),
    #[error("line {0}: not hex: a key is hex digits, e.g. `openssl rand -hex 32`")]
    NotHex(usize),
    #[error("line {line}: {digits} hex digits: a key must be at least {} ({MIN_KEY_LEN} octets)", 2 * MIN_KEY_LEN)]
    TooShort { line: usize, digits: usize },
    #[error("line {0}: {1}")]
    Key(usize, KeyError),
    #[error(transparent)]
    Keys(KeyError),
    #[error("holds {0} keys: must hold 1 or {MAX_KEYS}, one per line (the key sent with first, then one still accepted during a rotation)")]
    Count(usize),
}

/// The file's text, if only its owner (and group) may read it.
fn read_private(path: &Path) -> Result<String, KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(KeyFileError::Unreadable)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(KeyFileError::OpenToOthers(mode));
    }
    std::fs::read_to_string(path).map_err(KeyFileError::Unreadable)
}

/// The keys in a key file's text.
pub fn parse(body: &str) -> Result<StampKeys, KeyFileError> {
    let mut keys = Vec::new();
    for (n, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = n + 1;
        let secret = crate::wire::hex::decode(line).ok_or(KeyFileError::NotHex(at))?;
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyFileError::TooShort {
                line: at,
                digits: line.len(),
            });
        }
        keys.push(StampKey::new(&secret).map_err(|e| KeyFileError::Key(at, e))?);
    }
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(KeyFileError::Count(keys.len()));
    }
    StampKeys::new(keys).map_err(KeyFileError::Keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn one_or_two_keys_comments_skipped() {
        let one = parse(&format!("# current\n{K}\n\n")).unwrap();
        // The id against Python's hashlib.sha256(bytes.fromhex(K)).hexdigest()[:8].
        assert_eq!(one.ids(), "a8faed6a");
        let two = parse(&format!("{K}\n  {}  \n", K.repeat(2))).unwrap();
        assert_eq!(two.ids().split(", ").count(), 2);
    }

    #[test]
    fn bad_files_say_which_line_and_why() {
        for (body, want) in [
            ("", "holds 0 keys: must hold 1 or 2"),
            ("# only a comment\n", "holds 0 keys"),
            (&format!("{K}\n{K}\n{K}\n"), "holds 3 keys"),
            ("\n0011zz\n", "line 2: not hex"),
            ("abc\n", "line 1: not hex"),
            (
                "00112233445566778899aabbccddee\n",
                "line 1: 30 hex digits: a key must be at least 32 (16 octets)",
            ),
        ] {
            let got = parse(body).unwrap_err().to_string();
            assert!(got.starts_with(want), "{body:?}: {got}");
        }
    }

    #[test]
    fn the_file_must_be_absolute_readable_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("xcbench-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stamp.keys");
        std::fs::write(&path, format!("{K}\n")).unwrap();
        let cx = Ctx { file: "agent.toml" };
        let named = parse_path(&cx, "peers[0].stamp_keys", path.to_str().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = named.read().unwrap_err().to_string();
        assert!(
            err.starts_with("agent.toml: peers[0].stamp_keys = \"/"),
            "{err}"
        );
        assert!(err.contains("mode 644"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(named.read().unwrap().ids(), "a8faed6a");
        let err = parse_path(&cx, "reflector.stamp_keys", "stamp.keys")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be an absolute path"), "{err}");
        let missing = parse_path(
            &cx,
            "reflector.stamp_keys",
            dir.join("none").to_str().unwrap(),
        )
        .unwrap();
        let err = missing.read().unwrap_err().to_string();
        assert!(err.contains("must be a key file that can be read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

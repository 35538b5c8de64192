//! The mesh file at the collector: served to agents (`GET /api/v1/mesh`, with an ETag so a
//! re-fetch of an unchanged file costs a 304), and its agents listed for `/metrics`
//! (`xcbench_mesh_agent_info`). The file is read again every [`RELOAD_EVERY`]; a change
//! that does not parse is logged and the last good mesh stays served, so agents never
//! fetch a broken one from here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use xcbench_agent::config::mesh::MeshFile;
use xcbench_agent::tls::Fingerprint;
use xcbench_snapshot::config_text::ConfigError;
use xcbench_snapshot::{AgentId, Identity};

/// How often the file is read again.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// A mesh as served: its text, the ETag of that text, and its agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedMesh {
    pub text: String,
    /// A strong validator: the text's FNV-1a hash, quoted.
    pub etag: String,
    pub agents: Vec<Identity>,
    /// The agents the mesh pins a certificate for: the collector takes their snapshots
    /// only over that certificate.
    pub pins: Vec<(AgentId, Fingerprint)>,
}

impl ServedMesh {
    /// The mesh of `text`, if it is valid (sans-IO).
    pub fn parse(file: &str, text: String) -> Result<ServedMesh, ConfigError> {
        let mesh = MeshFile::parse(file, &text)?;
        Ok(ServedMesh {
            etag: etag(&text),
            agents: mesh.agents().map(|a| a.identity.clone()).collect(),
            pins: mesh
                .agents()
                .filter_map(|a| a.fingerprint.map(|f| (a.identity.id.clone(), f)))
                .collect(),
            text,
        })
    }

    /// Whether a request's `If-None-Match` names this version.
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == self.etag)
    }
}

/// The file and the version being served.
#[derive(Debug)]
pub struct MeshSource {
    path: PathBuf,
    served: ServedMesh,
}

/// What a reload found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    /// A new version is served.
    Changed,
}

impl MeshSource {
    /// Reads the file; it must be valid.
    pub fn open(path: &Path) -> Result<MeshSource, ConfigError> {
        let (file, text) = xcbench_snapshot::config_text::read(path)?;
        Ok(MeshSource {
            path: path.to_owned(),
            served: ServedMesh::parse(&file, text)?,
        })
    }

    pub fn served(&self) -> &ServedMesh {
        &self.served
    }

    /// Reads the file again; a valid change replaces what is served, an invalid one is
    /// the error (and the last good version stays).
    pub fn reload(&mut self) -> Result<Reload, ConfigError> {
        let (file, text) = xcbench_snapshot::config_text::read(&self.path)?;
        if text == self.served.text {
            return Ok(Reload::Unchanged);
        }
        self.served = ServedMesh::parse(&file, text)?;
        Ok(Reload::Changed)
    }
}

/// FNV-1a, 64 bits, as a quoted ETag: stable across restarts and builds.
fn etag(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../deploy/mesh.sample.toml");

    #[test]
    fn a_served_mesh_lists_its_agents_and_is_named_by_its_etag() {
        let m = ServedMesh::parse("mesh.toml", SAMPLE.to_owned()).unwrap();
        assert_eq!(m.agents.len(), 8);
        assert_eq!(m.agents[0].id.as_str(), "az-eastus-app1");
        assert_eq!(m.agents[4].cloud, xcbench_snapshot::Cloud::Oci);
        assert_eq!(m.etag, etag(SAMPLE));
        assert!(m.etag.starts_with('"') && m.etag.len() == 18);
        assert!(m.matches(&m.etag));
        assert!(m.matches(&format!("\"0\", W/{}", m.etag)));
        assert!(m.matches("*"));
        assert!(!m.matches("\"0000000000000000\""));
        let changed = SAMPLE.replace("interval = \"20ms\"", "interval = \"30ms\"");
        assert_ne!(etag(&changed), m.etag);
        assert!(ServedMesh::parse("mesh.toml", "[mesh]\n".into()).is_err());
    }

    #[test]
    fn a_broken_change_keeps_the_last_good_mesh() {
        let dir = std::env::temp_dir().join(format!("xcbench-mesh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mesh.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        let mut source = MeshSource::open(&path).unwrap();
        assert_eq!(source.reload().unwrap(), Reload::Unchanged);
        std::fs::write(&path, SAMPLE.replace("10.20.2.11:862", "10.30.2.11:862")).unwrap();
        let e = source.reload().unwrap_err().to_string();
        assert!(
            e.contains("oci.agents[3].address = \"10.30.2.11:862\": must be inside"),
            "{e}"
        );
        assert_eq!(source.served().text, SAMPLE, "the last good one stays");
        let grown = SAMPLE.replace("same_side = false", "same_side = true");
        std::fs::write(&path, &grown).unwrap();
        assert_eq!(source.reload().unwrap(), Reload::Changed);
        assert_eq!(source.served().text, grown);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

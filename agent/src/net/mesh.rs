//! `[agent] mesh` at start and while the agent runs: the mesh read from its file or fetched
//! from the collector (`GET /api/v1/mesh`; again with `If-None-Match`, so an unchanged mesh
//! costs a 304), with a short timeout. [`crate::config::mesh`] parses and applies it; this
//! only moves the bytes (over mutual TLS for an `https://` mesh, as reports go).

use std::time::Duration;

use crate::config::defaults::{MESH_FETCH_TIMEOUT, MESH_MAX_BYTES};
use crate::config::mesh::derive::{MeshLink, MeshSource};
use crate::config::mesh::MeshFile;
use crate::config::{AgentConfig, ConfigError};
use crate::http::ClientKeys;
use crate::tls::{TlsError, TlsIdentity};

/// Why the mesh could not be had or used.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// The collector could not be asked, or its answer not read (a matter of time: the
    /// collector may be starting).
    #[error("agent.mesh = {url:?}: cannot fetch: {message}")]
    Fetch { url: String, message: String },
    /// The collector answered, but not with a mesh.
    #[error("agent.mesh = {url:?}: the collector answered HTTP {status}: {reason}")]
    Status {
        url: String,
        status: u16,
        reason: String,
    },
    /// The mesh (or its file) is not usable for this agent: a configuration matter.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key pair or CA for an `https://` mesh could not be loaded.
    #[error("agent.mesh: tls")]
    Tls(#[from] TlsError),
}

impl MeshError {
    /// Whether the remedy is a configuration file (exit code 2) rather than time.
    pub fn is_config(&self) -> bool {
        match self {
            MeshError::Config(_) | MeshError::Tls(_) => true,
            // 404: the collector serves no mesh; 4xx: the URL is wrong.
            MeshError::Status { status, .. } => (400..500).contains(status),
            MeshError::Fetch { .. } => false,
        }
    }
}

/// A mesh's text and the name its errors carry (the file's path, or the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshText {
    pub name: String,
    pub text: String,
}

impl MeshText {
    pub fn parse(&self) -> Result<MeshFile, ConfigError> {
        MeshFile::parse(&self.name, &self.text)
    }
}

/// Watches a mesh source: each [`MeshWatch::poll`] reads the file or asks the collector,
/// and hands out the text only when it differs from the last one handed out.
pub struct MeshWatch {
    source: MeshSource,
    client: reqwest::Client,
    etag: Option<String>,
    last: Option<String>,
    timeout: Duration,
}

impl MeshWatch {
    /// A watch of `link`'s source; an `https://` one is fetched with the agent's key pair
    /// and CA (`keys`), the collector known by `agent.mesh_fingerprint` or the CA.
    pub fn new(link: &MeshLink, keys: Option<ClientKeys<'_>>) -> Result<MeshWatch, TlsError> {
        let keys = keys.filter(|_| link.source.is_https());
        Ok(MeshWatch {
            source: link.source.clone(),
            client: crate::http::collector_client(MESH_FETCH_TIMEOUT, keys, link.fingerprint)?,
            etag: None,
            last: None,
            timeout: MESH_FETCH_TIMEOUT,
        })
    }

    /// The mesh when it changed since the last call (the first call: the mesh).
    pub async fn poll(&mut self) -> Result<Option<MeshText>, MeshError> {
        let fetched = match self.source.clone() {
            MeshSource::File(path) => {
                let read =
                    tokio::task::spawn_blocking(move || xcbench_snapshot::config_text::read(&path))
                        .await
                        .map_err(|e| ConfigError::Read {
                            file: self.source.to_string(),
                            message: e.to_string(),
                        })??;
                Some(read)
            }
            MeshSource::Url(url) => self.fetch(&url).await?.map(|text| (url, text)),
        };
        match fetched {
            Some((name, text)) if self.last.as_ref() != Some(&text) => {
                self.last = Some(text.clone());
                Ok(Some(MeshText { name, text }))
            }
            _ => Ok(None),
        }
    }

    /// The collector's mesh, or `None` when it answers that the one this watch has is
    /// current.
    async fn fetch(&mut self, url: &str) -> Result<Option<String>, MeshError> {
        let unreachable = |e: &dyn std::error::Error| MeshError::Fetch {
            url: url.to_owned(),
            message: super::chain(e),
        };
        let mut request = self.client.get(url);
        if let Some(etag) = &self.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag.as_str());
        }
        let exchange = async {
            let response = request.send().await.map_err(|e| unreachable(&e))?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(None);
            }
            let etag = response
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.bytes().await.map_err(|e| unreachable(&e))?;
            if !status.is_success() {
                let reason = String::from_utf8_lossy(&body[..body.len().min(200)]);
                return Err(MeshError::Status {
                    url: url.to_owned(),
                    status: status.as_u16(),
                    reason: reason.trim().to_owned(),
                });
            }
            if body.len() > MESH_MAX_BYTES {
                return Err(MeshError::Fetch {
                    url: url.to_owned(),
                    message: format!("answer longer than {MESH_MAX_BYTES} bytes"),
                });
            }
            let text = String::from_utf8(body.to_vec()).map_err(|e| unreachable(&e))?;
            Ok(Some((text, etag)))
        };
        let answer = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| MeshError::Fetch {
                url: url.to_owned(),
                message: format!("no answer within {:?}", self.timeout),
            })??;
        Ok(answer.map(|(text, etag)| {
            self.etag = etag;
            text
        }))
    }
}

/// `config` with the mesh it names applied (read or fetched now); as it is without one,
/// or when it was applied already (a mesh file [`AgentConfig::load`] read). Instance
/// metadata must have been read first ([`super::metadata::resolve`]).
pub async fn resolve(config: AgentConfig) -> Result<AgentConfig, MeshError> {
    let Some(link) = config.mesh.as_ref().filter(|m| !m.applied) else {
        return Ok(config);
    };
    // The key pair is loaded here only for an https:// mesh (the agent loads it again at
    // bind: a key pair in tls.dir reads back the same).
    let identity = match (&config.tls, link.source.is_https()) {
        (Some(t), true) => Some((
            TlsIdentity::load(&t.key, config.identity.id.as_str())?,
            t.ca.as_deref().map(crate::tls::load_ca).transpose()?,
        )),
        _ => None,
    };
    let keys = identity.as_ref().map(|(identity, ca)| ClientKeys {
        identity,
        ca: ca.as_ref(),
    });
    // A new watch has handed out nothing yet: its first poll hands out the mesh.
    let mesh = MeshWatch::new(link, keys)?
        .poll()
        .await?
        .ok_or_else(|| MeshError::Fetch {
            url: link.source.to_string(),
            message: "no mesh in the answer".into(),
        })?
        .parse()?;
    let config = config.with_mesh(&mesh)?;
    tracing::info!(
        mesh = %link.source,
        cloud = %config.identity.cloud,
        region = %config.identity.region,
        peers = config.peers.len(),
        "peers from the mesh"
    );
    Ok(config)
}

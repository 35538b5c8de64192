//! The one HTTP client builder: every request xcbench makes (reports and the mesh fetch to
//! the collector, instance metadata, the gate's sources) goes through [`client`]: never
//! through a proxy (private and link-local addresses only), a connect timeout and a whole-
//! request timeout, and over `https://` a rustls configuration of [`crate::tls`] (the peer by
//! its pin or a CA; the agent's key pair as its client certificate when it has one).
//! [`read_bounded`] reads a body up to a size limit.

use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;

use crate::tls::{Fingerprint, TlsError, TlsIdentity};

/// An HTTP client: no proxy, `connect` to connect, `whole` per request; with `tls`,
/// `https://` only, through that configuration.
pub fn client(
    connect: Duration,
    whole: Duration,
    tls: Option<rustls::ClientConfig>,
) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(whole)
        .no_proxy();
    let builder = match tls {
        None => builder,
        Some(config) => builder.use_preconfigured_tls(config).https_only(true),
    };
    builder
        .build()
        .expect("an HTTP client with a rustls configuration builds")
}

/// The agent's side of an `https://` collector link: its key pair (its client
/// certificate) and the CA that may vouch for the collector.
#[derive(Clone, Copy)]
pub struct ClientKeys<'a> {
    pub identity: &'a TlsIdentity,
    pub ca: Option<&'a Arc<RootCertStore>>,
}

/// A client of the collector (reports, the mesh fetch), `timeout` to connect and per
/// request; with `keys`, `https://` only, mutual TLS with the agent's key pair, the
/// collector known by `pinned` or through the CA.
pub fn collector_client(
    timeout: Duration,
    keys: Option<ClientKeys<'_>>,
    pinned: Option<Fingerprint>,
) -> Result<reqwest::Client, TlsError> {
    let tls = keys
        .map(|k| crate::tls::https_client(Some(k.identity), pinned, k.ca.cloned()))
        .transpose()?;
    Ok(client(timeout, timeout, tls))
}

/// Why a bounded body was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("answer longer than {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// A response's body, refused past `max` bytes (checked as it arrives, not after).
pub async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

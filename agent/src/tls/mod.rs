//! TLS for QUIC probes, throughput tests and the channel to the collector: who this agent
//! (or the collector) is and whom it trusts.
//!
//! # Layout
//! - [`identity`]: the key pair, fingerprints, the CA file.
//! - [`config`]: the rustls configurations for both sides of QUIC and HTTPS, the ALPNs.
//! - [`trust`]: the verifiers (pins or a CA), peer names, [`KnownPeers`].

pub mod config;
pub mod identity;
pub mod trust;

pub use config::{
    client_crypto, client_crypto_for, https_client, https_server, server_crypto, ALPN, ALPN_HTTP,
    ALPN_THROUGHPUT,
};
pub use identity::{load_ca, Fingerprint, KeySource, TlsError, TlsIdentity, CERT_FILE, KEY_FILE};
pub use trust::{names_peer, server_name, KnownPeers};

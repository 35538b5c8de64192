//! TLS for QUIC probes, throughput tests and the channel to the collector: who this agent
//! (or the collector) is and whom it trusts.
//!
//! # Layout
//! - [`identity`]: the key pair, fingerprints, the CA file.
//! - [`trust`]: rustls configurations for both sides, verifiers, [`KnownPeers`].

pub mod identity;
pub mod trust;

pub use identity::{load_ca, Fingerprint, KeySource, TlsError, TlsIdentity, CERT_FILE, KEY_FILE};
pub use trust::{
    client_crypto, client_crypto_for, https_client, https_server, names_peer, server_crypto,
    server_name, CaVerdict, ClientTrust, Forbidden, KnownPeers, ALPN, ALPN_HTTP, ALPN_THROUGHPUT,
};

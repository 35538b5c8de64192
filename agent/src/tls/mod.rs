//! TLS for QUIC probes and throughput tests: who this agent is and whom it trusts.
//!
//! # Layout
//! - [`identity`]: the key pair, fingerprints, the CA file.
//! - [`trust`]: rustls configurations for both sides, verifiers, [`KnownPeers`].

pub mod identity;
pub mod trust;

pub use identity::{load_ca, Fingerprint, KeySource, TlsError, TlsIdentity, CERT_FILE, KEY_FILE};
pub use trust::{
    client_crypto, client_crypto_for, names_peer, server_crypto, server_name, KnownPeers, ALPN,
    ALPN_THROUGHPUT,
};

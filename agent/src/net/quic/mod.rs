//! QUIC over quinn: what the probe responder, the probe sessions and throughput-test control
//! share (transport settings, close codes, one request/response exchange, the peer's
//! certificate), and where each lives.
//!
//! quinn offers no kernel receive timestamps, so every QUIC time is read in user space (the
//! series carry `timestamping="user"`). Requests use the TCP probes' framing
//! ([`crate::wire::rr`]); a response is never longer than its request.
//!
//! # Layout
//! - [`endpoint`]: the one accept loop of an agent's QUIC port: per-source cap, handshake
//!   (0.5-RTT for resumed clients), dispatch by ALPN to the probe responder or the
//!   throughput server.
//! - [`responder`]: answers stream and DATAGRAM probe requests on one connection.
//! - [`prober`]: the probe sessions towards one peer: connect, resume, rr, datagram.

pub mod endpoint;
pub mod prober;
pub mod responder;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, TransportConfig, VarInt};
use rustls::pki_types::CertificateDer;

use crate::wire::rr::MAX_FRAME_LEN;

pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Streams a client may have open at once on one connection.
const MAX_STREAMS: u32 = 256;
/// The largest DATAGRAM probe: fits QUIC's minimum 1200-byte packet with its headers.
pub const MAX_DATAGRAM_PROBE: usize = 1_100;
/// Application close codes.
pub const CLOSE_DONE: VarInt = VarInt::from_u32(0);
pub const CLOSE_MALFORMED: VarInt = VarInt::from_u32(1);

fn transport(keep_alive: bool) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .expect("60 s is a valid idle timeout"),
    ));
    t.max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.datagram_receive_buffer_size(Some(256 * 1024));
    if keep_alive {
        t.keep_alive_interval(Some(Duration::from_secs(10)));
    }
    Arc::new(t)
}

/// The responder's endpoint on `addr` (UDP).
pub fn server_endpoint(
    addr: SocketAddr,
    crypto: Arc<QuicServerConfig>,
) -> std::io::Result<Endpoint> {
    Endpoint::server(server_config(crypto), addr)
}

/// quinn's server configuration around the TLS side.
pub fn server_config(crypto: Arc<QuicServerConfig>) -> quinn::ServerConfig {
    let mut config = quinn::ServerConfig::with_crypto(crypto);
    config.transport_config(transport(false));
    config
}

/// quinn's client configuration around the TLS side.
pub fn client_config(crypto: Arc<QuicClientConfig>, keep_alive: bool) -> quinn::ClientConfig {
    let mut config = quinn::ClientConfig::new(crypto);
    config.transport_config(transport(keep_alive));
    config
}

/// Why one request/response exchange on a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("opening a stream")]
    Open(#[source] quinn::ConnectionError),
    #[error("sending the request")]
    Write(#[source] quinn::WriteError),
    #[error("reading the response")]
    Read(#[source] quinn::ReadToEndError),
}

/// One request on a fresh bidirectional stream; the whole response.
pub async fn exchange(conn: &Connection, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(ExchangeError::Open)?;
    send.write_all(request)
        .await
        .map_err(ExchangeError::Write)?;
    let _ = send.finish();
    recv.read_to_end(MAX_FRAME_LEN)
        .await
        .map_err(ExchangeError::Read)
}

/// The certificate the other end of `conn` presented.
pub fn peer_certificate(conn: &Connection) -> Option<CertificateDer<'static>> {
    conn.peer_identity()
        .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.first().cloned())
}

/// The fingerprint of the certificate the other end of `conn` presented.
pub fn peer_fingerprint(conn: &Connection) -> Option<crate::tls::Fingerprint> {
    peer_certificate(conn).map(|c| crate::tls::Fingerprint::of(&c))
}

/// The application protocol the handshake settled on.
pub fn alpn(conn: &Connection) -> Option<Vec<u8>> {
    conn.handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol)
}

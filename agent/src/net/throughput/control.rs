//! Test control on the QUIC stream between the two agents: length-prefixed JSON messages
//! ([`Control`]) read and written whole, refusals with their code, and the asking side's
//! control connection (mutual TLS, pinned or CA-vouched peer, keep-alives so a vanished peer
//! is noticed within seconds).

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, RecvStream, SendStream};

use super::SETUP_TIMEOUT;
use crate::config::PeerConfig;
use crate::probe::throughput::Refusal;
use crate::tls::{self, TlsIdentity};
use crate::wire::throughput::Control;
use crate::wire::WireError;

/// How often the control connection keeps itself alive, and when silence means the peer is
/// gone (the smaller of the two sides' idle timeouts applies).
const KEEP_ALIVE: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(5);

/// Why the control conversation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("opening the control stream")]
    Open(#[source] quinn::ConnectionError),
    #[error("writing")]
    Write(#[source] quinn::WriteError),
    #[error("reading")]
    Read(#[source] quinn::ReadError),
    #[error("the peer closed the control stream")]
    Closed,
    #[error("undecodable message")]
    Decode(#[source] WireError),
    #[error("expected {expected}, got {got}")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
    #[error("cookie {0:?}: must be 32 hex digits")]
    Cookie(String),
    #[error("no results from the peer within {0:?}")]
    NoResults(Duration),
    #[error("lost the peer during the test")]
    Lost(#[source] quinn::ConnectionError),
}

/// Why the control connection did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("a client endpoint")]
    Bind(#[source] std::io::Error),
    #[error("connecting")]
    Start(#[source] quinn::ConnectError),
    #[error("handshake")]
    Handshake(#[source] quinn::ConnectionError),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// The kind of a message, for errors.
pub fn kind(msg: &Control) -> &'static str {
    match msg {
        Control::Request(_) => "a request",
        Control::Accept { .. } => "an accept",
        Control::Refuse { .. } => "a refusal",
        Control::Results { .. } => "results",
    }
}

pub async fn write(send: &mut SendStream, msg: &Control) -> Result<(), ControlError> {
    let mut buf = Vec::new();
    msg.encode(&mut buf);
    send.write_all(&buf).await.map_err(ControlError::Write)
}

pub async fn read(recv: &mut RecvStream) -> Result<Control, ControlError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match Control::decode(&buf) {
            Ok((msg, _)) => return Ok(msg),
            Err(WireError::Truncated { .. }) => {}
            Err(e) => return Err(ControlError::Decode(e)),
        }
        match recv.read(&mut chunk).await {
            Ok(Some(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(None) => return Err(ControlError::Closed),
            Err(e) => return Err(ControlError::Read(e)),
        }
    }
}

/// Declines the test and ends the stream.
pub async fn refuse(send: &mut SendStream, refusal: Refusal) {
    let msg = Control::Refuse {
        code: refusal.code,
        field: refusal.field,
        reason: refusal.reason,
    };
    let _ = write(send, &msg).await;
    let _ = send.finish();
}

/// The TLS side of the control connection to `peer` (ALPN `xcbench-bench/1`): this agent's
/// certificate, and the peer trusted by its pinned fingerprint or through `ca`.
pub fn crypto(
    identity: &TlsIdentity,
    ca: Option<Arc<rustls::RootCertStore>>,
    peer: &PeerConfig,
) -> Result<Arc<QuicClientConfig>, tls::TlsError> {
    tls::client_crypto_for(identity, peer.fingerprint, ca, false, tls::ALPN_THROUGHPUT)
}

/// Opens the control connection to `peer` with `crypto` (see [`crypto`]). A peer that
/// vanishes mid-test is noticed within 5 s, and the test's streams stop. The endpoint must
/// outlive the connection.
pub async fn connect(
    crypto: Arc<QuicClientConfig>,
    peer: &PeerConfig,
) -> Result<(Endpoint, Connection), ConnectError> {
    let bind = crate::net::any_local_for(peer.quic_address);
    let endpoint = Endpoint::client(bind).map_err(ConnectError::Bind)?;
    let mut client = quinn::ClientConfig::new(crypto);
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    transport.max_idle_timeout(Some(IDLE.try_into().expect("5 s is a valid idle timeout")));
    client.transport_config(Arc::new(transport));
    let connecting = endpoint
        .connect_with(
            client,
            peer.quic_address,
            &tls::server_name(peer.identity.id.as_str()),
        )
        .map_err(ConnectError::Start)?;
    let conn = tokio::time::timeout(SETUP_TIMEOUT, connecting)
        .await
        .map_err(|_| ConnectError::TimedOut(SETUP_TIMEOUT))?
        .map_err(ConnectError::Handshake)?;
    Ok((endpoint, conn))
}

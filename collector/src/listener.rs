//! The collector's listener: plain TCP (on loopback, or by the explicit `plain_http`
//! opt-out), or TLS 1.3 whose clients may present a certificate. Each connection carries its
//! [`Peer`] (address, and the certificate chain it presented) to the handlers, which decide
//! per request whether the client may report as the agent it names
//! ([`crate::admission::ClientTrust`]).
//!
//! Handshakes run beside the accept loop, each bounded by [`HANDSHAKE_TIMEOUT`], so a client
//! that connects and stays silent holds up nobody; a failed handshake is logged and dropped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 64;

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The connection is TLS (else plain HTTP).
    pub tls: bool,
    /// The certificate chain the client presented, end entity first (empty: none, or plain).
    pub chain: Arc<[CertificateDer<'static>]>,
}

/// A connection: plain TCP or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The collector's listener (see the module doc).
pub struct Incoming {
    local: SocketAddr,
    kind: Kind,
}

enum Kind {
    Plain(TcpListener),
    Tls {
        accepted: mpsc::Receiver<(Stream, Peer)>,
        acceptor: JoinHandle<()>,
    },
}

impl Incoming {
    /// Plain HTTP on `listener`.
    pub fn plain(listener: TcpListener) -> io::Result<Incoming> {
        Ok(Incoming {
            local: listener.local_addr()?,
            kind: Kind::Plain(listener),
        })
    }

    /// TLS with `config` on `listener`; must be called inside a Tokio runtime.
    pub fn tls(listener: TcpListener, config: rustls::ServerConfig) -> io::Result<Incoming> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let acceptor = tokio::spawn(accept_tls(
            listener,
            TlsAcceptor::from(Arc::new(config)),
            tx,
        ));
        Ok(Incoming {
            local,
            kind: Kind::Tls { accepted, acceptor },
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.kind, Kind::Tls { .. })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Kind::Tls { acceptor, .. } = &self.kind {
            acceptor.abort();
        }
    }
}

/// Accepts TCP connections and hands each one's TLS handshake to its own task.
async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(Stream, Peer)>,
) {
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "collector: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let chain: Arc<[CertificateDer<'static>]> = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default();
                    let peer = Peer {
                        addr,
                        tls: true,
                        chain,
                    };
                    let _ = tx.send((Stream::Tls(Box::new(tls)), peer)).await;
                }
                Ok(Err(e)) => tracing::info!(%addr, error = %e, "collector: TLS handshake failed"),
                Err(_) => tracing::info!(%addr, "collector: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Stream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Stream, Peer) {
        match &mut self.kind {
            Kind::Plain(listener) => {
                // axum's own accept for TCP, which logs and waits out accept errors.
                let (tcp, addr) = axum::serve::Listener::accept(listener).await;
                let peer = Peer {
                    addr,
                    tls: false,
                    chain: Arc::new([]),
                };
                (Stream::Plain(tcp), peer)
            }
            Kind::Tls { accepted, .. } => match accepted.recv().await {
                Some(c) => c,
                // The acceptor task ended (aborted at shutdown): nothing more will come.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        Ok(Peer {
            addr: self.local,
            tls: self.is_tls(),
            chain: Arc::new([]),
        })
    }
}

impl Connected<IncomingStream<'_, Incoming>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Incoming>) -> Self {
        stream.remote_addr().clone()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

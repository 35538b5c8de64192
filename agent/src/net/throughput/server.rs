//! The answering side of throughput tests: the data ports (TCP and UDP at the port plan's
//! data port, QUIC data on the next), one control conversation per test, and the limits a
//! request is admitted by: a valid request ([`Test`]), from a client in `bench.allow`,
//! within this agent's `[bench]` limits, while no other test runs. A refusal says which.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use quinn::{Connection, SendStream};
use rustls::pki_types::CertificateDer;
use tokio::io::AsyncReadExt;
use tokio::sync::{watch, Notify, Semaphore};

use super::control;
use super::slot::{TestSlot, Tester};
use super::{cookie, relay, tcp, ThroughputError, SETUP_TIMEOUT};
use crate::config::PortPlan;
use crate::net::lock;
use crate::net::quic::{peer_certificate, CLOSE_MALFORMED};
use crate::probe::throughput::{Refusal, ServeLimits, Test};
use crate::tls::{Fingerprint, KnownPeers, TlsIdentity};
use crate::wire::throughput::{cookie_text, Control, Hello, Protocol, RefuseCode, HELLO_LEN};

/// Data connections that may wait for their hello at once (a test has at most 256).
const MAX_HELLO_WAITERS: usize = 512;

/// A TCP test accepted and waiting for its data connections.
struct Pending {
    cookie: [u8; 16],
    slots: Vec<Option<std::net::TcpStream>>,
}

/// The answering side: its data sockets, its limits and the one test it may run.
pub struct Server {
    limits: ServeLimits,
    /// Peers that may ask; empty = every client the TLS layer trusts.
    allow: KnownPeers,
    data_port: u16,
    /// UDP tests' data socket, on the TCP data port's number.
    udp: Arc<UdpSocket>,
    /// QUIC tests' data socket (UDP).
    quic: Arc<UdpSocket>,
    /// The certificate the QUIC data endpoint presents.
    identity: TlsIdentity,
    slot: Arc<TestSlot>,
    pending: Mutex<Option<Pending>>,
    arrived: Notify,
}

/// The TCP data listener, served by [`Server::serve_data`] once the agent runs.
pub struct DataListener(std::net::TcpListener);

impl Server {
    /// Binds the data ports of the STAMP address `stamp` (any free ports when its port is
    /// 0).
    pub fn bind(
        stamp: SocketAddr,
        limits: ServeLimits,
        allow: KnownPeers,
        identity: TlsIdentity,
        slot: Arc<TestSlot>,
    ) -> std::io::Result<(Arc<Server>, DataListener)> {
        let listener = std::net::TcpListener::bind(PortPlan::at(stamp, PortPlan::data))?;
        let data_port = listener.local_addr()?.port();
        let udp = super::udp::data_socket(SocketAddr::new(stamp.ip(), data_port))?;
        let quic = super::udp::data_socket(PortPlan::at(stamp, PortPlan::quic_data))?;
        let server = Arc::new(Server {
            limits,
            allow,
            data_port,
            udp: Arc::new(udp),
            quic: Arc::new(quic),
            identity,
            slot,
            pending: Mutex::new(None),
            arrived: Notify::new(),
        });
        Ok((server, DataListener(listener)))
    }

    /// The TCP and UDP data port.
    pub fn data_port(&self) -> u16 {
        self.data_port
    }

    /// The QUIC data port (UDP).
    pub fn quic_port(&self) -> u16 {
        self.quic.local_addr().map_or(0, |a| a.port())
    }

    /// Takes TCP data connections until `stop` changes. Each reads its hello on a task of
    /// its own, so a silent client holds no one up; at most [`MAX_HELLO_WAITERS`] wait at
    /// once, the rest are closed.
    pub async fn serve_data(
        self: Arc<Self>,
        listener: DataListener,
        mut stop: watch::Receiver<bool>,
    ) {
        let listener = match listener
            .0
            .set_nonblocking(true)
            .and_then(|_| tokio::net::TcpListener::from_std(listener.0))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "throughput data listener");
                return;
            }
        };
        let waiters = Arc::new(Semaphore::new(MAX_HELLO_WAITERS));
        while let Some((stream, from)) =
            crate::net::accept(&listener, &mut stop, "throughput data").await
        {
            let Ok(permit) = waiters.clone().try_acquire_owned() else {
                tracing::warn!(%from, "throughput data connection closed: too many waiting for their hello");
                continue;
            };
            let server = self.clone();
            tokio::spawn(async move {
                server.handle_data_connection(stream, from).await;
                drop(permit);
            });
        }
    }

    async fn handle_data_connection(&self, mut s: tokio::net::TcpStream, from: SocketAddr) {
        let mut hello = [0u8; HELLO_LEN];
        let read = tokio::time::timeout(SETUP_TIMEOUT, s.read_exact(&mut hello)).await;
        let hello = match read {
            Ok(Ok(_)) => match Hello::decode(&hello) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(%from, error = %e, "throughput data connection closed: no valid hello");
                    return;
                }
            },
            _ => {
                tracing::warn!(%from, "throughput data connection closed: no hello within 10 s");
                return;
            }
        };
        // The streams move bulk data on blocking threads.
        let Ok(s) = s
            .into_std()
            .and_then(|s| s.set_nonblocking(false).map(|_| s))
        else {
            return;
        };
        let mut pending = lock(&self.pending);
        match pending.as_mut() {
            Some(p) if p.cookie == hello.cookie => {
                match p.slots.get_mut(usize::from(hello.stream)) {
                    Some(slot @ None) => {
                        *slot = Some(s);
                        self.arrived.notify_one();
                    }
                    _ => tracing::warn!(
                        %from,
                        stream = hello.stream,
                        "throughput data connection closed: stream out of range or taken"
                    ),
                }
            }
            _ => tracing::warn!(%from, "throughput data connection closed: unknown cookie"),
        }
    }

    /// Whether this client's request is a test this agent runs now.
    fn admit(
        &self,
        msg: Control,
        certificate: Option<&CertificateDer<'_>>,
    ) -> Result<Test, Refusal> {
        let spec = match msg {
            Control::Request(spec) => spec,
            other => {
                return Err(Refusal {
                    code: RefuseCode::BadRequest,
                    field: None,
                    reason: format!("expected a request, got {}", control::kind(&other)),
                })
            }
        };
        let test = Test::try_from(spec)?;
        if !self.allow.is_empty() && certificate.and_then(|c| self.allow.identify(c)).is_none() {
            return Err(Refusal::not_allowed());
        }
        self.limits.check(&test)?;
        Ok(test)
    }

    /// Answers one control connection (ALPN `xcbench-bench/1`) until its test is over.
    pub async fn serve_control(self: Arc<Self>, conn: Connection) {
        let from = conn.remote_address();
        let (mut send, mut recv) = match tokio::time::timeout(SETUP_TIMEOUT, conn.accept_bi()).await
        {
            Ok(Ok(s)) => s,
            _ => return,
        };
        let msg = match control::read(&mut recv).await {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(%from, error = %crate::net::chain(&e), "throughput control closed");
                conn.close(CLOSE_MALFORMED, b"bad control message");
                return;
            }
        };
        let certificate = peer_certificate(&conn);
        let client = certificate.as_ref().map(|c| Fingerprint::of(c));
        match self.admit(msg, certificate.as_ref()) {
            Err(refusal) => {
                tracing::info!(%from, reason = %refusal, "throughput request refused");
                control::refuse(&mut send, refusal).await;
            }
            Ok(test) => match self.slot.try_begin(Tester {
                peer: None,
                certificate,
            }) {
                Some(guard) => {
                    let result = self.answer(&conn, &test, client, &mut send).await;
                    *lock(&self.pending) = None;
                    drop(guard);
                    if let Err(e) = result {
                        tracing::warn!(%from, error = %crate::net::chain(&e), "throughput test ended early");
                    }
                    let _ = send.finish();
                }
                None => control::refuse(&mut send, Refusal::busy()).await,
            },
        }
        // The asking side closes once it has read the answer; dropping the connection here
        // first would discard what is still in flight.
        let _ = tokio::time::timeout(SETUP_TIMEOUT, conn.closed()).await;
    }

    async fn answer(
        &self,
        conn: &Connection,
        test: &Test,
        client: Option<Fingerprint>,
        send: &mut SendStream,
    ) -> Result<(), ThroughputError> {
        let cookie = cookie()?;
        // The asking side sends on the streams it asked to send on; the rest are ours.
        let asker_sends = test.asker_sends();
        let ours: Vec<bool> = asker_sends.iter().map(|asker| !asker).collect();
        let data_port = match test.protocol {
            Protocol::Quic => self.quic_port(),
            Protocol::Tcp | Protocol::Udp => self.data_port,
        };
        if test.protocol == Protocol::Tcp {
            *lock(&self.pending) = Some(Pending {
                cookie,
                slots: (0..ours.len()).map(|_| None).collect(),
            });
        }
        let accept = Control::Accept {
            data_port,
            cookie: cookie_text(&cookie),
        };
        control::write(send, &accept).await?;
        let figures = match test.protocol {
            Protocol::Udp => {
                let (sock, test) = (self.udp.clone(), test.clone());
                relay(
                    move |p| super::udp::serve_test(&sock, &test, cookie, &asker_sends, &p),
                    |_| {},
                    conn.clone(),
                )
                .await
            }
            Protocol::Quic => {
                // Mutual TLS: every client that got this far presented a certificate.
                let client = client.ok_or(ThroughputError::NoCertificate)?;
                let (sock, identity, test) =
                    (self.quic.clone(), self.identity.clone(), test.clone());
                relay(
                    move |p| {
                        super::quic::serve_test(&sock, &identity, client, &test, cookie, &ours, &p)
                    },
                    |_| {},
                    conn.clone(),
                )
                .await?
            }
            Protocol::Tcp => {
                let streams = self.tcp_streams().await?;
                tcp::run_streams(streams, &ours, test, |_| {}, conn.clone()).await
            }
        };
        control::write(send, &Control::Results { streams: figures }).await?;
        Ok(())
    }

    /// Waits for the TCP data connections of the pending test.
    async fn tcp_streams(&self) -> Result<Vec<std::net::TcpStream>, ThroughputError> {
        let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
        loop {
            let notified = self.arrived.notified();
            {
                let mut pending = lock(&self.pending);
                if let Some(p) = pending.as_mut() {
                    if p.slots.iter().all(Option::is_some) {
                        return Ok(p.slots.drain(..).flatten().collect());
                    }
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(ThroughputError::DataLate(SETUP_TIMEOUT));
            }
        }
    }
}

//! The asking side of a throughput test, one type for `xcbench bench` and the scheduler:
//! [`Client`] finds the peer in the agent's configuration, checks there is a way to trust
//! it, loads this agent's identity, and runs tests: the control connection, the request,
//! this side's streams, and both sides' figures at the end.

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, RecvStream, SendStream};

use super::control::{self, ControlError};
use super::{relay, tcp, Interval, ThroughputError, DRAIN_TIMEOUT, SETUP_TIMEOUT};
use crate::config::{AgentConfig, PeerConfig};
use crate::net::clock::now_unix_ns;
use crate::probe::throughput::{Addresses, Test, TestReport};
use crate::tls::{self, TlsIdentity};
use crate::wire::throughput::{parse_cookie, Control, Protocol, StreamFigures};

/// Why this agent is not set up to ask `peer` for a test (a usage error).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{file}: tls is not set: throughput tests run over the agents' authenticated QUIC channel"
    )]
    NoTls { file: String },
    #[error("peer {peer:?} is not in {file}: must be one of {known}")]
    UnknownPeer {
        peer: String,
        file: String,
        known: String,
    },
    #[error(
        "{file}: peer {peer:?} has no fingerprint and tls.ca is not set: nothing to trust it by"
    )]
    Untrusted { peer: String, file: String },
    #[error("{file}: tls")]
    Tls {
        file: String,
        #[source]
        source: tls::TlsError,
    },
}

/// This agent, ready to ask one peer for tests.
pub struct Client {
    identity: TlsIdentity,
    crypto: Arc<QuicClientConfig>,
    peer: PeerConfig,
}

impl Client {
    /// From `config` (read from `file`, named in errors): the peer `peer_id`, this agent's
    /// key pair and CA.
    pub fn from_config(
        config: &AgentConfig,
        file: &str,
        peer_id: &str,
    ) -> Result<Client, SetupError> {
        let Some(t) = &config.tls else {
            return Err(SetupError::NoTls { file: file.into() });
        };
        let Some(peer) = config
            .peers
            .iter()
            .find(|p| p.identity.id.as_str() == peer_id)
        else {
            let known: Vec<&str> = config
                .peers
                .iter()
                .map(|p| p.identity.id.as_str())
                .collect();
            return Err(SetupError::UnknownPeer {
                peer: peer_id.into(),
                file: file.into(),
                known: known.join(", "),
            });
        };
        if peer.fingerprint.is_none() && t.ca.is_none() {
            return Err(SetupError::Untrusted {
                peer: peer_id.into(),
                file: file.into(),
            });
        }
        let tls_error = |source| SetupError::Tls {
            file: file.into(),
            source,
        };
        let identity = TlsIdentity::load(&t.key, config.identity.id.as_str()).map_err(tls_error)?;
        let ca =
            t.ca.as_deref()
                .map(tls::load_ca)
                .transpose()
                .map_err(tls_error)?;
        Client::new(identity, ca, peer.clone()).map_err(tls_error)
    }

    /// For an agent whose identity and CA are loaded already.
    pub fn new(
        identity: TlsIdentity,
        ca: Option<Arc<rustls::RootCertStore>>,
        peer: PeerConfig,
    ) -> Result<Client, tls::TlsError> {
        let crypto = control::crypto(&identity, ca, &peer)?;
        Ok(Client {
            identity,
            crypto,
            peer,
        })
    }

    pub fn peer(&self) -> &PeerConfig {
        &self.peer
    }

    /// Runs `test` with the peer: opens the control connection, asks, runs this side's
    /// streams and collects both sides' figures. `on_interval` sees this side's intervals
    /// as they close. A QUIC test without a window gets windows sized from the control
    /// connection's round trip.
    pub async fn run(
        &self,
        test: Test,
        on_interval: impl FnMut(Interval),
    ) -> Result<TestReport, ThroughputError> {
        let (endpoint, conn) = control::connect(self.crypto.clone(), &self.peer)
            .await
            .map_err(|source| ThroughputError::Connect {
                addr: self.peer.quic_address,
                source,
            })?;
        let report = self.ask(conn, test, on_interval).await;
        endpoint.wait_idle().await;
        report
    }

    async fn ask(
        &self,
        control: Connection,
        test: Test,
        on_interval: impl FnMut(Interval),
    ) -> Result<TestReport, ThroughputError> {
        let test = test.with_window_for(control.rtt());
        let (mut send, mut recv) = control.open_bi().await.map_err(ControlError::Open)?;
        control::write(&mut send, &Control::Request(test.spec().clone())).await?;
        let (port, cookie) = match control::read(&mut recv).await? {
            Control::Accept { data_port, cookie } => (
                data_port,
                parse_cookie(&cookie).ok_or(ControlError::Cookie(cookie))?,
            ),
            Control::Refuse {
                code,
                field,
                reason,
            } => {
                return Err(ThroughputError::Refused {
                    code,
                    field,
                    reason,
                })
            }
            other => {
                return Err(ControlError::Unexpected {
                    expected: "an accept",
                    got: control::kind(&other),
                }
                .into())
            }
        };
        let addr = SocketAddr::new(self.peer.address.ip(), port);
        let sends = test.asker_sends();
        let data_error = |source| ThroughputError::Data { addr, source };
        let started_unix_ns = now_unix_ns();
        let (local, connections) = match test.protocol {
            Protocol::Udp => {
                let (t, s) = (test.clone(), sends.clone());
                relay(
                    move |p| super::udp::run_client(addr, &t, cookie, &s, &p),
                    on_interval,
                    control.clone(),
                )
                .await
                .map_err(data_error)?
            }
            Protocol::Quic => {
                let server = crate::net::quic::peer_fingerprint(&control)
                    .ok_or(ThroughputError::NoCertificate)?;
                let (t, s, id) = (test.clone(), sends.clone(), self.identity.clone());
                relay(
                    move |p| super::quic::run_client(addr, &id, server, &t, cookie, &s, &p),
                    on_interval,
                    control.clone(),
                )
                .await?
            }
            Protocol::Tcp => {
                let streams = tcp::open_streams(addr, &test, cookie).map_err(data_error)?;
                let connections = streams
                    .iter()
                    .map(|s| (s.local_addr().unwrap_or(addr), addr))
                    .collect();
                let local =
                    tcp::run_streams(streams, &sends, &test, on_interval, control.clone()).await;
                (local, connections)
            }
        };
        finish(
            control,
            send,
            recv,
            test,
            connections,
            local,
            started_unix_ns,
        )
        .await
    }
}

/// Both sides' figures: ours go out, the peer's come back.
async fn finish(
    control: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    test: Test,
    connections: Vec<Addresses>,
    local: Vec<StreamFigures>,
    started_unix_ns: u64,
) -> Result<TestReport, ThroughputError> {
    if let Some(reason) = control.close_reason() {
        return Err(ControlError::Lost(reason).into());
    }
    control::write(
        &mut send,
        &Control::Results {
            streams: local.clone(),
        },
    )
    .await?;
    let _ = send.finish();
    let wait = SETUP_TIMEOUT + DRAIN_TIMEOUT;
    let remote = match tokio::time::timeout(wait, control::read(&mut recv)).await {
        Ok(Ok(Control::Results { streams })) => streams,
        Ok(Ok(other)) => {
            return Err(ControlError::Unexpected {
                expected: "results",
                got: control::kind(&other),
            }
            .into())
        }
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(ControlError::NoResults(wait).into()),
    };
    control.close(crate::net::quic::CLOSE_DONE, b"done");
    Ok(TestReport {
        test,
        connections,
        local,
        remote,
        started_unix_ns,
    })
}

//! The QUIC probe sessions towards one peer:
//!
//! - `connect`: a fresh connection with no session ticket, timed from `connect` until the
//!   handshake completes (about 1 RTT plus both sides' certificate signing and checking).
//! - `resume`: a resumed connection whose first request rides in 0-RTT data, timed from
//!   `connect` until that request's response arrives, minus the responder's dwell time. About
//!   1 RTT when the peer accepts 0-RTT; 2 RTT when it rejects it or no ticket was held (the
//!   `xcbench_quic_zero_rtt_total` result says which).
//! - `rr`: one bidirectional stream per request on a persistent connection.
//! - `datagram`: RFC 9221 DATAGRAM request/response on the same connection.
//!
//! `rr` and `datagram` run through the [`driver`](crate::net::driver) over one connection;
//! `connect` and `resume` through the [`fresh`](crate::net::fresh) schedule. Every time is
//! read on the monotonic clock in user space.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint};
use tokio::sync::{mpsc, watch};
use xcbench_snapshot::{ProbeKind, Protocol, QuicPath, TimestampSource};

use super::{client_config, exchange, CLOSE_DONE, CLOSE_MALFORMED, MAX_DATAGRAM_PROBE};
use crate::config::PeerConfig;
use crate::net::clock::{now, now_mono_ns};
use crate::net::driver::{drive, Delivery, Transport};
use crate::net::lock;
use crate::probe::{Event, Moment, RrSession, SenderConfig};
use crate::record::{QuicGrowth, Recorder, SeriesKey, ZeroRtt};
use crate::tls::server_name;
use crate::wire::rr::{Frame, FrameType, HEADER_LEN, MAX_FRAME_LEN};

/// How often path statistics are read on the persistent connection.
const STATS_EVERY_NS: u64 = 1_000_000_000;
/// The gap between connection attempts while a peer is unreachable.
const RECONNECT_NS: u64 = 1_000_000_000;

/// Everything a peer's QUIC sessions share: one client endpoint and the two TLS setups.
#[derive(Clone)]
pub struct QuicClient {
    pub endpoint: Endpoint,
    /// No session tickets: every connection is a full handshake.
    pub full: quinn::ClientConfig,
    /// Keeps tickets and sends 0-RTT.
    pub resume: quinn::ClientConfig,
}

/// Why a connection to the peer did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting")]
    Start(#[source] quinn::ConnectError),
    #[error("handshake")]
    Handshake(#[source] quinn::ConnectionError),
    #[error("handshake timed out")]
    TimedOut,
}

impl QuicClient {
    pub fn new(
        peer: &PeerConfig,
        full: Arc<QuicClientConfig>,
        resume: Arc<QuicClientConfig>,
    ) -> std::io::Result<QuicClient> {
        Ok(QuicClient {
            endpoint: Endpoint::client(crate::net::any_local_for(peer.quic_address))?,
            full: client_config(full, true),
            resume: client_config(resume, false),
        })
    }

    fn connect(
        &self,
        peer: &PeerConfig,
        config: &quinn::ClientConfig,
    ) -> Result<quinn::Connecting, ConnectError> {
        self.endpoint
            .connect_with(
                config.clone(),
                peer.quic_address,
                &server_name(peer.identity.id.as_str()),
            )
            .map_err(ConnectError::Start)
    }

    /// A full connection, handshake included, within `wait`.
    fn open(
        &self,
        peer: &PeerConfig,
        wait: Duration,
    ) -> impl Future<Output = Result<Connection, ConnectError>> + Send + 'static {
        let connecting = self.connect(peer, &self.full);
        async move {
            match tokio::time::timeout(wait, connecting?).await {
                Ok(r) => r.map_err(ConnectError::Handshake),
                Err(_) => Err(ConnectError::TimedOut),
            }
        }
    }
}

/// The session config of one peer's probes of at most `max_len` bytes.
fn session_config(peer: &PeerConfig, max_len: usize) -> SenderConfig {
    let config = SenderConfig::from(&peer.probe);
    SenderConfig {
        packet_len: config.packet_len.clamp(HEADER_LEN, max_len),
        ..config
    }
}

/// Path statistics and how the loss counters grew since `last`.
fn path_reading(conn: &Connection, last: &mut QuicGrowth) -> (QuicPath, QuicGrowth) {
    let p = conn.stats().path;
    let now = QuicGrowth {
        lost_packets: p.lost_packets,
        congestion_events: p.congestion_events,
        black_holes: p.black_holes_detected,
    };
    let growth = QuicGrowth {
        lost_packets: now.lost_packets.saturating_sub(last.lost_packets),
        congestion_events: now.congestion_events.saturating_sub(last.congestion_events),
        black_holes: now.black_holes.saturating_sub(last.black_holes),
    };
    *last = now;
    (
        QuicPath {
            rtt_ns: p.rtt.as_nanos() as u64,
            cwnd_bytes: p.cwnd,
            mtu_bytes: p.current_mtu,
        },
        growth,
    )
}

type Handshake = Pin<Box<dyn Future<Output = Result<Connection, ConnectError>> + Send>>;

/// A stream's whole response and when it arrived (T4).
type Response = (Moment, Vec<u8>);

/// Probe 0: a stream per request; probe 1: a DATAGRAM per request; one connection.
const STREAM: usize = 0;
const DATAGRAM: usize = 1;

/// The persistent connection of one peer's `rr` and `datagram` probes.
struct Persistent {
    peer: PeerConfig,
    client: QuicClient,
    wait: Duration,
    conn: Option<Connection>,
    connecting: Option<Handshake>,
    next_connect_ns: u64,
    /// Stream responses arrive from their own tasks.
    responses: (
        mpsc::UnboundedSender<Response>,
        mpsc::UnboundedReceiver<Response>,
    ),
    /// Path statistics go to this series.
    key: SeriesKey,
    last: QuicGrowth,
    next_stats_ns: u64,
}

impl Transport for Persistent {
    fn initial_source(&self) -> TimestampSource {
        TimestampSource::User
    }

    async fn open(&mut self) {
        self.conn = self.client.open(&self.peer, self.wait).await.ok();
        self.next_connect_ns = now_mono_ns() + RECONNECT_NS;
    }

    fn poll_reopen(&mut self, now_mono: u64) {
        if self.conn.is_none() && self.connecting.is_none() && now_mono >= self.next_connect_ns {
            self.next_connect_ns = now_mono + RECONNECT_NS;
            self.connecting = Some(Box::pin(self.client.open(&self.peer, self.wait)));
        }
    }

    async fn send(&mut self, probe: usize, bytes: &[u8]) -> bool {
        let Some(c) = self.conn.clone() else {
            return true;
        };
        if probe == STREAM {
            let (request, tx) = (bytes.to_vec(), self.responses.0.clone());
            tokio::spawn(async move {
                if let Ok(data) = exchange(&c, &request).await {
                    let _ = tx.send((now(), data));
                }
            });
        } else {
            let _ = c.send_datagram(bytes.to_vec().into());
        }
        // A request past its timeout is lost; QUIC keeps retransmitting it, and the
        // connection itself reports when the path is gone.
        true
    }

    async fn next(&mut self, buf: &mut Vec<u8>) -> Delivery {
        let c = self.conn.clone();
        let datagram = async {
            match &c {
                Some(c) => c.read_datagram().await.ok(),
                None => std::future::pending().await,
            }
        };
        let closed = async {
            match &c {
                Some(c) => c.closed().await,
                None => std::future::pending().await,
            }
        };
        let handshake = async {
            match self.connecting.as_mut() {
                Some(h) => h.await,
                None => std::future::pending().await,
            }
        };
        let mut input = |probe, at, data: &[u8]| {
            buf.clear();
            buf.extend_from_slice(data);
            Delivery::Input {
                probe,
                at,
                source: TimestampSource::User,
                tos: None,
                len: data.len(),
            }
        };
        tokio::select! {
            h = handshake => {
                self.connecting = None;
                match h {
                    Ok(c) => {
                        self.last = QuicGrowth::default();
                        self.conn = Some(c);
                    }
                    Err(e) => tracing::debug!(peer = %self.peer.identity.id, error = %e, "quic connect failed"),
                }
                Delivery::Nothing
            }
            Some((at, data)) = self.responses.1.recv() => input(STREAM, at, &data),
            d = datagram => match d {
                Some(data) => input(DATAGRAM, now(), &data),
                None => Delivery::Broken,
            },
            _ = closed => Delivery::Broken,
        }
    }

    fn reopen_after_stall(&self) -> bool {
        false
    }

    fn observe(&mut self, recorder: &Mutex<Recorder>, broken: bool) {
        let Some(c) = &self.conn else { return };
        if broken || now_mono_ns() >= self.next_stats_ns {
            self.next_stats_ns = now_mono_ns() + STATS_EVERY_NS;
            let (path, growth) = path_reading(c, &mut self.last);
            lock(recorder).handle_quic_path(&self.key, path, growth);
        }
    }

    fn disconnect(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close(CLOSE_MALFORMED, b"bad response");
        }
    }

    fn close(&mut self) {
        if let Some(c) = &self.conn {
            c.close(CLOSE_DONE, b"done");
        }
    }
}

/// Stream and DATAGRAM request/response on one persistent connection, re-opened when it
/// closes. While there is no connection, scheduled probes still count: they are lost.
pub async fn run_rr(
    peer: PeerConfig,
    client: QuicClient,
    recorder: Arc<Mutex<Recorder>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let rr_key: SeriesKey = (peer.identity.id.clone(), Protocol::Quic, ProbeKind::Rr);
    let dg_key: SeriesKey = (
        peer.identity.id.clone(),
        Protocol::Quic,
        ProbeKind::Datagram,
    );
    let (stream_config, datagram_config) = (
        session_config(&peer, MAX_FRAME_LEN),
        session_config(&peer, MAX_DATAGRAM_PROBE),
    );
    let transport = Persistent {
        // Long enough for quinn to resend a lost Initial (its first PTO is about 1 s): the
        // connection is not a measurement, and giving up early costs a second of probes.
        wait: peer.probe.loss_timeout.get().max(HANDSHAKE_WAIT_MIN),
        peer,
        client,
        conn: None,
        connecting: None,
        next_connect_ns: 0,
        responses: mpsc::unbounded_channel(),
        key: rr_key.clone(),
        last: QuicGrowth::default(),
        next_stats_ns: 0,
    };
    let make = move |start| {
        vec![
            (rr_key, RrSession::new(stream_config, start)),
            (dg_key, RrSession::new(datagram_config, start)),
        ]
    };
    drive(make, transport, recorder, stop, Default::default()).await
}

/// How long a handshake probe waits: long enough for lost Initial packets to be resent
/// (quinn's first PTO is about 1 s) and show as latency rather than loss.
pub const HANDSHAKE_WAIT_MIN: Duration = Duration::from_secs(4);
/// Handshake probes in flight at once per kind.
pub const MAX_HANDSHAKES_IN_FLIGHT: usize = 16;

/// A full handshake (`connect`) and a 0-RTT resumption (`resume`) every `connect_interval`,
/// each in its own task so a slow handshake never delays the next.
pub async fn run_handshakes(
    peer: PeerConfig,
    client: QuicClient,
    recorder: Arc<Mutex<Recorder>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let connect_key: SeriesKey = (peer.identity.id.clone(), Protocol::Quic, ProbeKind::Connect);
    let resume_key: SeriesKey = (peer.identity.id.clone(), Protocol::Quic, ProbeKind::Resume);
    let wait = peer.probe.loss_timeout.get().max(HANDSHAKE_WAIT_MIN);
    let interval = peer.probe.connect_interval.get();
    let peer = Arc::new(peer);
    // One untimed resumable connection first, so the first resume probe holds a ticket.
    if let Ok(connecting) = client.connect(&peer, &client.resume) {
        if let Ok(Ok(conn)) = tokio::time::timeout(wait, connecting).await {
            linger_for_tickets(&conn).await;
            conn.close(CLOSE_DONE, b"done");
        }
    }
    let rec = recorder.clone();
    crate::net::fresh::run(
        vec![connect_key, resume_key],
        interval,
        2 * MAX_HANDSHAKES_IN_FLIGHT,
        wait,
        recorder,
        stop,
        move |key, seq| {
            let (recorder, peer, client) = (rec.clone(), peer.clone(), client.clone());
            async move {
                let event = if key.2 == ProbeKind::Connect {
                    full_handshake(&peer, &client, &key, &recorder, seq, wait).await
                } else {
                    resumed_request(&peer, &client, &key, &recorder, seq, wait).await
                };
                event.unwrap_or(Event::Lost { seq })
            }
        },
    )
    .await
}

async fn full_handshake(
    peer: &PeerConfig,
    client: &QuicClient,
    key: &SeriesKey,
    recorder: &Mutex<Recorder>,
    seq: u32,
    wait: Duration,
) -> Option<Event> {
    let t0 = now_mono_ns();
    let connecting = client.connect(peer, &client.full).ok()?;
    let conn = tokio::time::timeout(wait, connecting).await.ok()?.ok()?;
    let t1 = now_mono_ns();
    // The client's side completes a round trip before the server has checked the client's
    // certificate; a refusal arrives about one RTT later. Only a connection that survives
    // that long counts as answered.
    let confirm = (conn.rtt() * 2 + Duration::from_millis(50)).min(Duration::from_secs(1));
    if let Ok(reason) = tokio::time::timeout(confirm, conn.closed()).await {
        tracing::debug!(peer = %peer.identity.id, %reason, "quic handshake refused by the peer");
        return None;
    }
    let (path, growth) = path_reading(&conn, &mut QuicGrowth::default());
    lock(recorder).handle_quic_path(key, path, growth);
    conn.close(CLOSE_DONE, b"done");
    Some(Event::Rtt {
        seq,
        rtt_ns: t1 - t0,
    })
}

/// Why a resumed request was not answered.
#[derive(Debug, thiserror::Error)]
enum ResumeError {
    #[error("handshake")]
    Handshake(#[source] quinn::ConnectionError),
    #[error("request")]
    Exchange(#[source] super::ExchangeError),
}

async fn resumed_request(
    peer: &PeerConfig,
    client: &QuicClient,
    key: &SeriesKey,
    recorder: &Mutex<Recorder>,
    seq: u32,
    wait: Duration,
) -> Option<Event> {
    let t0 = now();
    let connecting = client.connect(peer, &client.resume).ok()?;
    let mut request = Vec::with_capacity(HEADER_LEN);
    Frame {
        kind: FrameType::Request,
        seq,
        t1: t0.wall_ns,
        t2: 0,
        t3: 0,
        len: peer
            .probe
            .payload_size
            .get()
            .clamp(HEADER_LEN, MAX_FRAME_LEN),
    }
    .encode(&mut request);
    let attempt = async {
        let (conn, zero_rtt) = match connecting.into_0rtt() {
            Ok((conn, accepted)) => (conn, Some(accepted)),
            Err(connecting) => (connecting.await.map_err(ResumeError::Handshake)?, None),
        };
        let data = exchange(&conn, &request)
            .await
            .map_err(ResumeError::Exchange)?;
        let t4 = now_mono_ns();
        let outcome = match zero_rtt {
            Some(accepted) => match accepted.await {
                true => ZeroRtt::Accepted,
                false => ZeroRtt::Rejected,
            },
            None => ZeroRtt::Unavailable,
        };
        Ok::<_, ResumeError>((conn, data, t4, outcome))
    };
    let (conn, data, t4, outcome) = match tokio::time::timeout(wait, attempt).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer.identity.id, error = %e, "quic resume probe");
            return None;
        }
        Err(_) => return None,
    };
    let f = Frame::decode(&data).ok()?;
    let answer = (f.kind == FrameType::Response && f.seq == seq && f.t1 == t0.wall_ns).then(|| {
        match crate::probe::less_dwell(t4.saturating_sub(t0.mono_ns), f.t2, f.t3) {
            Some(rtt_ns) => Event::Rtt { seq, rtt_ns },
            None => Event::ClockMoved { seq },
        }
    });
    {
        let mut rec = lock(recorder);
        rec.handle_zero_rtt(key, outcome);
        let (path, growth) = path_reading(&conn, &mut QuicGrowth::default());
        rec.handle_quic_path(key, path, growth);
    }
    linger_for_tickets(&conn).await;
    conn.close(CLOSE_DONE, b"done");
    answer
}

/// Session tickets arrive after the handshake; keep the connection open a few RTTs so the
/// next resume probe has one.
async fn linger_for_tickets(conn: &Connection) {
    let linger = (conn.rtt() * 3 + Duration::from_millis(5)).min(Duration::from_secs(1));
    tokio::time::sleep(linger).await;
}

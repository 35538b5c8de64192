//! QUIC probes over quinn: the responder that answers stream and DATAGRAM requests, and the
//! client sessions towards one peer.
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
//! quinn offers no kernel receive timestamps, so every QUIC time is read in user space (the
//! series carry `timestamping="user"`). Requests use the TCP probes' framing
//! ([`crate::wire::rr`]); a response is never longer than its request.
//!
//! Responder limits: at most [`MAX_CONNECTIONS_PER_SOURCE`] connections per source address,
//! handshakes that do not finish in [`HANDSHAKE_TIMEOUT`] are dropped, connections idle for
//! [`IDLE_TIMEOUT`] close, and anything that is not probe framing closes that connection
//! with a logged reason. Requests are answered before the handshake completes (0.5-RTT) only
//! on resumed connections, whose client certificate is already known from the ticket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, TransportConfig, VarInt};
use tokio::sync::{mpsc, watch};
use xcbench_snapshot::{ProbeKind, Protocol, QuicPath, ReflectorCounters, TimestampSource};

use crate::config::PeerConfig;
use crate::net::clock::now_unix_ns;
use crate::net::reflector::lock;
use crate::net::throughput::BenchServer;
use crate::net::timer::DeadlineTimer;
use crate::probe::{Event, RrSession, SenderConfig};
use crate::record::{QuicGrowth, Recorder, SeriesKey, ZeroRtt};
use crate::tls::server_name;
use crate::wire::rr::{Frame, FrameType, HEADER_LEN, MAX_FRAME_LEN};

pub const MAX_CONNECTIONS_PER_SOURCE: usize = 64;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams a client may have open at once on one connection.
const MAX_STREAMS: u32 = 256;
/// The largest DATAGRAM probe: fits QUIC's minimum 1200-byte packet with its headers.
pub const MAX_DATAGRAM_PROBE: usize = 1_100;
/// Application close codes.
const CLOSE_DONE: u32 = 0;
const CLOSE_MALFORMED: u32 = 1;
/// How often path statistics are read on the persistent connection.
const STATS_EVERY_NS: u64 = 1_000_000_000;

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

/// Accepts QUIC probe connections until `stop` changes.
/// Connections that negotiated the throughput-test ALPN go to `bench`.
pub async fn serve(
    endpoint: Endpoint,
    counters: Arc<Mutex<ReflectorCounters>>,
    bench: Option<Arc<BenchServer>>,
    mut stop: watch::Receiver<bool>,
) {
    let per_source: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let incoming = tokio::select! {
            _ = stop.changed() => break,
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => break,
            },
        };
        let from = incoming.remote_address();
        {
            let mut map = lock(&per_source);
            let n = map.entry(from.ip()).or_insert(0);
            if *n >= MAX_CONNECTIONS_PER_SOURCE {
                lock(&counters).quic_refused += 1;
                tracing::warn!(%from, "quic probe connection refused: per-source limit reached");
                incoming.refuse();
                continue;
            }
            *n += 1;
        }
        let (counters, per_source, stop, bench) = (
            counters.clone(),
            per_source.clone(),
            stop.clone(),
            bench.clone(),
        );
        tokio::spawn(async move {
            match incoming.accept() {
                Ok(connecting) => answer(connecting, from, &counters, bench, stop).await,
                Err(e) => {
                    lock(&counters).quic_refused += 1;
                    tracing::debug!(%from, error = %e, "quic probe connection refused");
                }
            }
            let mut map = lock(&per_source);
            if let Some(n) = map.get_mut(&from.ip()) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&from.ip());
                }
            }
        });
    }
    endpoint.close(VarInt::from_u32(CLOSE_DONE), b"reflector stopping");
}

async fn answer(
    connecting: quinn::Connecting,
    from: SocketAddr,
    counters: &Mutex<ReflectorCounters>,
    bench: Option<Arc<BenchServer>>,
    mut stop: watch::Receiver<bool>,
) {
    // 0.5-RTT: a resumed client is known from its ticket and may be answered at once;
    // anyone else first completes the handshake (its certificate is checked there).
    let (conn, established) = match connecting.into_0rtt() {
        Ok(pair) => pair,
        Err(connecting) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
            Ok(Ok(conn)) => return route(conn, from, counters, bench, &mut stop).await,
            Ok(Err(e)) => return refuse(counters, from, &e.to_string()),
            Err(_) => return refuse(counters, from, "handshake timed out"),
        },
    };
    if conn.peer_identity().is_none() {
        // Resolves when the handshake completes or fails (its value is meaningless on a
        // server); a verified client certificate is what tells the two apart.
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, established).await {
            Ok(_) if conn.peer_identity().is_some() => {}
            Ok(_) => {
                let why = conn
                    .close_reason()
                    .map_or_else(|| "no client certificate".to_owned(), |r| r.to_string());
                return refuse(counters, from, &why);
            }
            Err(_) => {
                conn.close(VarInt::from_u32(CLOSE_DONE), b"handshake timed out");
                return refuse(counters, from, "handshake timed out");
            }
        }
    }
    route(conn, from, counters, bench, &mut stop).await;
}

/// Probe connections are answered here; throughput-test control goes to `bench`.
async fn route(
    conn: Connection,
    from: SocketAddr,
    counters: &Mutex<ReflectorCounters>,
    bench: Option<Arc<BenchServer>>,
    stop: &mut watch::Receiver<bool>,
) {
    let alpn = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol);
    if alpn.as_deref() != Some(crate::tls::ALPN_BENCH) {
        return serve_connection(conn, from, counters, stop).await;
    }
    match bench {
        Some(b) => crate::net::throughput::serve_control(conn, b).await,
        None => conn.close(
            VarInt::from_u32(CLOSE_MALFORMED),
            b"no throughput tests on this agent",
        ),
    }
}

fn refuse(counters: &Mutex<ReflectorCounters>, from: SocketAddr, why: &str) {
    lock(counters).quic_refused += 1;
    tracing::warn!(%from, reason = why, "quic probe connection refused");
}

/// Why a request could not be answered.
enum Bad {
    /// The connection is gone; nothing to count.
    Gone,
    /// Not probe framing: close the connection.
    Malformed(String),
}

async fn serve_connection(
    conn: Connection,
    from: SocketAddr,
    counters: &Mutex<ReflectorCounters>,
    stop: &mut watch::Receiver<bool>,
) {
    let (bad_tx, mut bad_rx) = mpsc::unbounded_channel::<String>();
    let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let flush = |answered: &std::sync::atomic::AtomicU64| {
        let n = answered.swap(0, std::sync::atomic::Ordering::Relaxed);
        if n > 0 {
            lock(counters).quic_reflected += n;
        }
    };
    let mut out = Vec::with_capacity(MAX_DATAGRAM_PROBE);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                conn.close(VarInt::from_u32(CLOSE_DONE), b"reflector stopping");
                break;
            }
            why = bad_rx.recv() => {
                let why = why.unwrap_or_default();
                lock(counters).quic_malformed += 1;
                tracing::warn!(%from, reason = %why, "quic probe connection closed: not probe framing");
                conn.close(VarInt::from_u32(CLOSE_MALFORMED), b"not xcbench probe framing");
                break;
            }
            s = conn.accept_bi() => match s {
                Ok((mut send, mut recv)) => {
                    let (bad_tx, answered) = (bad_tx.clone(), answered.clone());
                    tokio::spawn(async move {
                        let result = async {
                            let data = recv.read_to_end(MAX_FRAME_LEN).await.map_err(|e| match e {
                                quinn::ReadToEndError::TooLong => {
                                    Bad::Malformed(format!("stream longer than {MAX_FRAME_LEN} bytes"))
                                }
                                _ => Bad::Gone,
                            })?;
                            let t2 = now_unix_ns();
                            let mut out = Vec::with_capacity(data.len());
                            respond(&data, t2, &mut out).map_err(Bad::Malformed)?;
                            send.write_all(&out).await.map_err(|_| Bad::Gone)?;
                            let _ = send.finish();
                            Ok(())
                        }
                        .await;
                        match result {
                            Ok(()) => {
                                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(Bad::Malformed(why)) => {
                                let _ = bad_tx.send(why);
                            }
                            Err(Bad::Gone) => {}
                        }
                    });
                }
                Err(_) => break,
            },
            d = conn.read_datagram() => match d {
                Ok(data) => {
                    let t2 = now_unix_ns();
                    match respond(&data, t2, &mut out) {
                        Ok(()) => {
                            if conn.send_datagram(out.clone().into()).is_ok() {
                                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        Err(why) => {
                            let _ = bad_tx.send(why);
                        }
                    }
                }
                Err(_) => break,
            },
        }
        flush(&answered);
    }
    flush(&answered);
}

/// The response to one whole request (a stream's bytes or one datagram), into `out`.
fn respond(data: &[u8], t2: u64, out: &mut Vec<u8>) -> Result<(), String> {
    let f = Frame::decode(data).map_err(|e| e.to_string())?;
    if f.kind != FrameType::Request {
        return Err("a response where a request belongs".into());
    }
    if f.len != data.len() {
        return Err(format!(
            "request of {} bytes carries {} bytes",
            f.len,
            data.len()
        ));
    }
    out.clear();
    Frame {
        kind: FrameType::Response,
        t2,
        ..f
    }
    .encode(out);
    Frame::stamp_send(out, now_unix_ns());
    Ok(())
}

/// Everything a peer's QUIC sessions share: one client endpoint and the two TLS setups.
#[derive(Clone)]
pub struct QuicClient {
    pub endpoint: Endpoint,
    /// No session tickets: every connection is a full handshake.
    pub full: quinn::ClientConfig,
    /// Keeps tickets and sends 0-RTT.
    pub resume: quinn::ClientConfig,
}

impl QuicClient {
    pub fn new(
        peer: &PeerConfig,
        full: Arc<QuicClientConfig>,
        resume: Arc<QuicClientConfig>,
    ) -> std::io::Result<QuicClient> {
        let bind = match peer.quic_address {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
        };
        Ok(QuicClient {
            endpoint: Endpoint::client(bind)?,
            full: client_config(full, true),
            resume: client_config(resume, false),
        })
    }

    async fn connect(
        &self,
        peer: &PeerConfig,
        config: &quinn::ClientConfig,
    ) -> Result<quinn::Connecting, String> {
        self.endpoint
            .connect_with(
                config.clone(),
                peer.quic_address,
                &server_name(peer.identity.id.as_str()),
            )
            .map_err(|e| e.to_string())
    }
}

fn session_config(peer: &PeerConfig, max_len: usize) -> SenderConfig {
    SenderConfig {
        interval_ns: peer.probe.interval.0.as_nanos() as u64,
        timeout_ns: peer.probe.loss_timeout.0.as_nanos() as u64,
        packet_len: peer.probe.payload_size.0.clamp(HEADER_LEN, max_len),
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

/// Stream and DATAGRAM request/response on one persistent connection, re-opened when it
/// closes. While there is no connection, scheduled probes still count: they are lost.
pub async fn run_rr(
    peer: PeerConfig,
    client: QuicClient,
    recorder: Arc<Mutex<Recorder>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let rr_key: SeriesKey = (peer.identity.id.clone(), Protocol::Quic, ProbeKind::Rr);
    let dg_key: SeriesKey = (
        peer.identity.id.clone(),
        Protocol::Quic,
        ProbeKind::Datagram,
    );
    let wait = peer.probe.loss_timeout.0.max(Duration::from_secs(1));
    let handshake = |connecting: quinn::Connecting| async move {
        match tokio::time::timeout(wait, connecting).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("handshake timed out".to_owned()),
        }
    };
    // The schedule starts after the first attempt, so a handshake in progress at start-up
    // is not counted as lost probes; later reconnects run beside the schedule.
    let mut conn: Option<Connection> = match client.connect(&peer, &client.full).await {
        Ok(c) => handshake(c).await.ok(),
        Err(_) => None,
    };
    let mut next_connect_ns = now_unix_ns() + 1_000_000_000;
    let start = now_unix_ns();
    let mut rr = RrSession::new(session_config(&peer, MAX_FRAME_LEN), start);
    let mut dg = RrSession::new(session_config(&peer, MAX_DATAGRAM_PROBE), start);
    let timer = DeadlineTimer::new()?;
    let (resp_tx, mut resp_rx) = mpsc::unbounded_channel::<(u64, Vec<u8>)>();
    type Handshake =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Connection, String>> + Send>>;
    let mut connecting: Option<Handshake> = None;
    let mut last = QuicGrowth::default();
    let mut next_stats_ns = 0u64;
    let mut out = Vec::with_capacity(MAX_FRAME_LEN);
    let mut stopping = false;
    loop {
        if stopping && !rr.has_pending() && !dg.has_pending() {
            if let Some(c) = &conn {
                c.close(VarInt::from_u32(CLOSE_DONE), b"done");
            }
            return Ok(());
        }
        // Connecting runs beside the schedule, so probes due meanwhile are sent (and lost)
        // instead of silently skipped.
        if conn.is_none() && connecting.is_none() && !stopping && now_unix_ns() >= next_connect_ns {
            next_connect_ns = now_unix_ns() + 1_000_000_000;
            match client.connect(&peer, &client.full).await {
                Ok(c) => connecting = Some(Box::pin(handshake(c))),
                Err(e) => tracing::warn!(peer = %peer.identity.id, error = %e, "quic connect"),
            }
        }
        let deadline = match (rr.poll_timeout(), dg.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        timer.arm(deadline)?;
        let c = conn.clone();
        let datagram = async {
            match &c {
                Some(c) => c.read_datagram().await.map_err(|_| ()),
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
            match connecting.as_mut() {
                Some(h) => h.await,
                None => std::future::pending().await,
            }
        };
        let mut broken = false;
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                stopping = true;
                rr.stop();
                dg.stop();
            }
            h = handshake => {
                connecting = None;
                match h {
                    Ok(c) => {
                        last = QuicGrowth::default();
                        conn = Some(c);
                    }
                    Err(e) => tracing::debug!(peer = %peer.identity.id, error = %e, "quic connect failed"),
                }
            }
            _ = timer.wait() => {
                let now = now_unix_ns();
                // A stream request past its timeout is lost; QUIC keeps retransmitting it, and
                // the connection itself reports when the path is gone.
                rr.handle_timeout(now);
                dg.handle_timeout(now);
                if rr.poll_transmit(now, &mut out) {
                    if let Some(c) = conn.clone() {
                        let (request, tx) = (out.clone(), resp_tx.clone());
                        tokio::spawn(async move {
                            if let Ok(data) = exchange(&c, &request).await {
                                let _ = tx.send((now_unix_ns(), data));
                            }
                        });
                    }
                }
                if dg.poll_transmit(now, &mut out) {
                    if let Some(c) = &conn {
                        let _ = c.send_datagram(out.clone().into());
                    }
                }
            }
            Some((t4, data)) = resp_rx.recv() => {
                match Frame::decode(&data) {
                    Ok(f) if f.len == data.len() => rr.handle_frame(t4, &f),
                    _ => {
                        tracing::warn!(peer = %peer.identity.id, "quic probe connection closed: bad stream response");
                        broken = true;
                    }
                }
            }
            d = datagram => match d {
                Ok(data) => {
                    let t4 = now_unix_ns();
                    match Frame::decode(&data) {
                        Ok(f) if f.len == data.len() => dg.handle_frame(t4, &f),
                        _ => {
                            tracing::warn!(peer = %peer.identity.id, "quic probe connection closed: bad datagram response");
                            broken = true;
                        }
                    }
                }
                Err(()) => broken = true,
            },
            _ = closed => broken = true,
        }
        if let Some(c) = &conn {
            if broken || now_unix_ns() >= next_stats_ns {
                next_stats_ns = now_unix_ns() + STATS_EVERY_NS;
                let (path, growth) = path_reading(c, &mut last);
                lock(&recorder).handle_quic_path(&rr_key, path, growth);
            }
        }
        if broken {
            if let Some(c) = conn.take() {
                c.close(VarInt::from_u32(CLOSE_MALFORMED), b"bad response");
            }
            rr.handle_disconnect();
            dg.handle_disconnect();
        }
        let mut rec = None;
        for (key, session) in [(&rr_key, &mut rr), (&dg_key, &mut dg)] {
            while let Some(event) = session.poll_event() {
                rec.get_or_insert_with(|| lock(&recorder)).handle_event(
                    key,
                    &event,
                    TimestampSource::User,
                );
            }
        }
    }
}

/// One request on a fresh bidirectional stream; the whole response.
async fn exchange(conn: &Connection, request: &[u8]) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(request).await.map_err(|e| e.to_string())?;
    let _ = send.finish();
    recv.read_to_end(MAX_FRAME_LEN)
        .await
        .map_err(|e| e.to_string())
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
    let wait = peer.probe.loss_timeout.0.max(HANDSHAKE_WAIT_MIN);
    let interval = peer.probe.connect_interval.0;
    let peer = Arc::new(peer);
    // One untimed resumable connection first, so the first resume probe holds a ticket.
    if let Ok(connecting) = client.connect(&peer, &client.resume).await {
        if let Ok(Ok(conn)) = tokio::time::timeout(wait, connecting).await {
            linger_for_tickets(&conn).await;
            conn.close(VarInt::from_u32(CLOSE_DONE), b"done");
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
    let t0 = now_unix_ns();
    let connecting = client.connect(peer, &client.full).await.ok()?;
    let conn = tokio::time::timeout(wait, connecting).await.ok()?.ok()?;
    let t1 = now_unix_ns();
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
    conn.close(VarInt::from_u32(CLOSE_DONE), b"done");
    Some(Event::Rtt {
        seq,
        rtt_ns: t1 - t0,
    })
}

async fn resumed_request(
    peer: &PeerConfig,
    client: &QuicClient,
    key: &SeriesKey,
    recorder: &Mutex<Recorder>,
    seq: u32,
    wait: Duration,
) -> Option<Event> {
    let t0 = now_unix_ns();
    let connecting = client.connect(peer, &client.resume).await.ok()?;
    let mut request = Vec::with_capacity(HEADER_LEN);
    Frame {
        kind: FrameType::Request,
        seq,
        t1: t0,
        t2: 0,
        t3: 0,
        len: peer.probe.payload_size.0.clamp(HEADER_LEN, MAX_FRAME_LEN),
    }
    .encode(&mut request);
    let attempt = async {
        let (conn, zero_rtt) = match connecting.into_0rtt() {
            Ok((conn, accepted)) => (conn, Some(accepted)),
            Err(connecting) => (connecting.await.map_err(|e| e.to_string())?, None),
        };
        let data = exchange(&conn, &request).await?;
        let t4 = now_unix_ns();
        let outcome = match zero_rtt {
            Some(accepted) => match accepted.await {
                true => ZeroRtt::Accepted,
                false => ZeroRtt::Rejected,
            },
            None => ZeroRtt::Unavailable,
        };
        Ok::<_, String>((conn, data, t4, outcome))
    };
    let (conn, data, t4, outcome) = tokio::time::timeout(wait, attempt).await.ok()?.ok()?;
    let f = Frame::decode(&data).ok()?;
    let answer =
        (f.kind == FrameType::Response && f.seq == seq && f.t1 == t0).then(|| Event::Rtt {
            seq,
            rtt_ns: t4
                .saturating_sub(t0)
                .saturating_sub(f.t3.saturating_sub(f.t2)),
        });
    {
        let mut rec = lock(recorder);
        rec.handle_zero_rtt(key, outcome);
        let (path, growth) = path_reading(&conn, &mut QuicGrowth::default());
        rec.handle_quic_path(key, path, growth);
    }
    linger_for_tickets(&conn).await;
    conn.close(VarInt::from_u32(CLOSE_DONE), b"done");
    answer
}

/// Session tickets arrive after the handshake; keep the connection open a few RTTs so the
/// next resume probe has one.
async fn linger_for_tickets(conn: &Connection) {
    let linger = (conn.rtt() * 3 + Duration::from_millis(5)).min(Duration::from_secs(1));
    tokio::time::sleep(linger).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{client_crypto, server_crypto, KeySource, TlsIdentity};
    use std::collections::HashSet;

    struct Responder {
        addr: SocketAddr,
        counters: Arc<Mutex<ReflectorCounters>>,
        _stop: watch::Sender<bool>,
    }

    fn identity(name: &str) -> TlsIdentity {
        TlsIdentity::load(&KeySource::Ephemeral, name).unwrap()
    }

    fn responder(server: &TlsIdentity, allowed: &[&TlsIdentity]) -> Responder {
        let allowed: HashSet<_> = allowed.iter().map(|i| i.fingerprint).collect();
        let crypto = server_crypto(server, allowed, None).unwrap();
        let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), crypto).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let counters: Arc<Mutex<ReflectorCounters>> = Arc::default();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(serve(endpoint, counters.clone(), None, rx));
        Responder {
            addr,
            counters,
            _stop: stop,
        }
    }

    async fn connect(
        client: &TlsIdentity,
        server: &TlsIdentity,
        addr: SocketAddr,
    ) -> Result<Connection, quinn::ConnectionError> {
        let endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let crypto = client_crypto(client, Some(server.fingerprint), None, false).unwrap();
        endpoint
            .connect_with(client_config(crypto, false), addr, "xcbench")
            .unwrap()
            .await
    }

    fn request(seq: u32, len: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        Frame {
            kind: FrameType::Request,
            seq,
            t1: 42,
            t2: 0,
            t3: 0,
            len,
        }
        .encode(&mut buf);
        buf
    }

    async fn settle(what: impl Fn() -> bool) {
        for _ in 0..200 {
            if what() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn streams_and_datagrams_are_answered_with_equal_lengths() {
        let (server, client) = (identity("oci-1"), identity("az-1"));
        let r = responder(&server, &[&client]);
        let conn = connect(&client, &server, r.addr).await.unwrap();
        for (seq, len) in [(0, 34), (1, 300), (2, MAX_FRAME_LEN)] {
            let data = exchange(&conn, &request(seq, len)).await.unwrap();
            let f = Frame::decode(&data).unwrap();
            assert_eq!(
                (f.kind, f.seq, f.t1, data.len()),
                (FrameType::Response, seq, 42, len)
            );
            assert!(f.t3 >= f.t2 && f.t2 > 0);
        }
        conn.send_datagram(request(7, 500).into()).unwrap();
        let data = conn.read_datagram().await.unwrap();
        assert_eq!(data.len(), 500);
        assert_eq!(Frame::decode(&data).unwrap().seq, 7);
        settle(|| lock(&r.counters).quic_reflected == 4).await;
        assert_eq!(lock(&r.counters).quic_reflected, 4);
    }

    #[tokio::test]
    async fn garbage_closes_only_that_connection() {
        let (server, client) = (identity("oci-1"), identity("az-1"));
        let r = responder(&server, &[&client]);
        let good = connect(&client, &server, r.addr).await.unwrap();
        for garbage in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![0u8; MAX_FRAME_LEN + 1],
            {
                let mut response = request(1, 64);
                response[3] = 2;
                response
            },
        ] {
            let bad = connect(&client, &server, r.addr).await.unwrap();
            // The stream may fail either way once the responder closes the connection.
            let _ = exchange(&bad, &garbage).await;
            let reason = tokio::time::timeout(Duration::from_secs(5), bad.closed())
                .await
                .expect("the responder closes a connection that sends garbage");
            assert!(
                matches!(&reason, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == VarInt::from_u32(CLOSE_MALFORMED)),
                "{reason}"
            );
        }
        // A datagram that is not a request closes its connection too.
        let bad = connect(&client, &server, r.addr).await.unwrap();
        bad.send_datagram(b"\x58\x42\x01\x01short".to_vec().into())
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), bad.closed())
            .await
            .unwrap();
        assert_eq!(lock(&r.counters).quic_malformed, 4);
        // The well-behaved connection never noticed.
        let data = exchange(&good, &request(9, 44)).await.unwrap();
        assert_eq!(Frame::decode(&data).unwrap().seq, 9);
    }

    #[tokio::test]
    async fn an_unknown_client_is_refused_and_a_wrong_server_is_not_trusted() {
        let (server, client, stranger) = (identity("oci-1"), identity("az-1"), identity("x"));
        let r = responder(&server, &[&client]);
        let refused = connect(&stranger, &server, r.addr).await;
        // The client may complete its side before the server's refusal arrives.
        if let Ok(conn) = refused {
            let e = exchange(&conn, &request(0, 44)).await;
            assert!(e.is_err(), "a stranger got an answer");
        }
        settle(|| lock(&r.counters).quic_refused == 1).await;
        assert_eq!(lock(&r.counters).quic_refused, 1);
        assert_eq!(lock(&r.counters).quic_reflected, 0);
        // The client pins the server: another certificate at that address is rejected.
        let impostor = responder(&stranger, &[&client]);
        assert!(connect(&client, &server, impostor.addr).await.is_err());
    }

    /// A CA-issued key pair in `dir`, named `name`, usable as server and client.
    fn issued(
        dir: &std::path::Path,
        ca: &rcgen::CertifiedIssuer<'_, rcgen::KeyPair>,
        name: &str,
    ) -> TlsIdentity {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        TlsIdentity::load(&KeySource::Files { cert: c, key: k }, name).unwrap()
    }

    #[tokio::test]
    async fn a_ca_vouches_for_peers_that_nobody_pinned() {
        let dir = std::env::temp_dir().join(format!("xcbench-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let roots = crate::tls::load_ca(&dir.join("ca.pem")).unwrap();
        let (server, client, other) = (
            issued(&dir, &ca, "oci-1"),
            issued(&dir, &ca, "az-1"),
            issued(&dir, &ca, "oci-2"),
        );
        let serve_with_ca = |id: &TlsIdentity| {
            let crypto = server_crypto(id, HashSet::new(), Some(roots.clone())).unwrap();
            let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), crypto).unwrap();
            let addr = endpoint.local_addr().unwrap();
            let counters: Arc<Mutex<ReflectorCounters>> = Arc::default();
            let (stop, rx) = watch::channel(false);
            tokio::spawn(serve(endpoint, counters.clone(), None, rx));
            (addr, counters, stop)
        };
        let connect_as = |id: &TlsIdentity, addr, name: &str| {
            let endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            let crypto = client_crypto(id, None, Some(roots.clone()), false).unwrap();
            let connecting = endpoint
                .connect_with(client_config(crypto, false), addr, name)
                .unwrap();
            async move { (connecting.await, endpoint) }
        };
        let (addr, counters, _stop) = serve_with_ca(&server);
        let (conn, _e) = connect_as(&client, addr, "oci-1").await;
        let data = exchange(&conn.unwrap(), &request(3, 44)).await.unwrap();
        assert_eq!(Frame::decode(&data).unwrap().seq, 3);
        // A self-signed client the CA never saw is refused.
        let stranger = identity("az-9");
        let (conn, _e) = connect_as(&stranger, addr, "oci-1").await;
        if let Ok(conn) = conn {
            assert!(exchange(&conn, &request(4, 44)).await.is_err());
        }
        settle(|| lock(&counters).quic_refused == 1).await;
        assert_eq!(lock(&counters).quic_refused, 1);
        // A server the CA issued for another agent is not the peer asked for.
        let (addr2, _c2, _stop2) = serve_with_ca(&other);
        assert!(connect_as(&client, addr2, "oci-1").await.0.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn connections_per_source_are_capped() {
        let (server, client) = (identity("oci-1"), identity("az-1"));
        let r = responder(&server, &[&client]);
        let mut open = Vec::new();
        for _ in 0..MAX_CONNECTIONS_PER_SOURCE {
            let conn = connect(&client, &server, r.addr).await.unwrap();
            // Answered, so the responder holds the connection.
            exchange(&conn, &request(0, 44)).await.unwrap();
            open.push(conn);
        }
        assert!(
            connect(&client, &server, r.addr).await.is_err(),
            "one too many"
        );
        assert_eq!(lock(&r.counters).quic_refused, 1);
        // Closing one frees its slot.
        open.pop()
            .unwrap()
            .close(VarInt::from_u32(CLOSE_DONE), b"done");
        let mut again = None;
        for _ in 0..100 {
            if let Ok(c) = connect(&client, &server, r.addr).await {
                again = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        exchange(&again.expect("a slot again"), &request(1, 44))
            .await
            .unwrap();
    }
}

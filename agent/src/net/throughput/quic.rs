//! QUIC throughput tests: one quinn connection per stream, each carrying one bidirectional
//! QUIC stream that opens with the test's [`Hello`] and then carries bulk bytes one way.
//!
//! Flow-control windows (stream, connection and send) are the test's `window_bytes`, which
//! the asking side sizes to the bandwidth-delay product
//! ([`window_for`](crate::probe::throughput::spec::window_for)) unless told otherwise. The
//! UDP sockets ask for large buffers, and quinn sends with GSO and receives with GRO where
//! the kernel offers them (the end figures say how many segments).
//!
//! Trust is pinned both ways: the answering side's data endpoint accepts only the
//! certificate that asked for the test on the control channel, and the asking side accepts
//! only the certificate that answered there. Each side runs its endpoint on a runtime of its
//! own, off the agent's, so bulk data does not delay the latency probes' timers.
//!
//! Bytes counted: by a sender, bytes quinn accepted into the stream's send buffer; by a
//! receiver, bytes the application read from the stream.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{
    Connection, Endpoint, EndpointConfig, RecvStream, SendStream, TransportConfig, VarInt,
};

use super::{Progress, SETUP_TIMEOUT};
use crate::net::clock::now_mono_ns;
use crate::probe::throughput::spec::MIN_WINDOW;
use crate::probe::throughput::{Addresses, Counts, Meter, Sending, Step, Test};
use crate::tls::{self, Fingerprint, TlsIdentity};
use crate::wire::throughput::{Hello, QuicEnd, StreamFigures, HELLO_LEN};
/// A sender waits this long for its bytes to be acknowledged, a receiver this long for the
/// sender's last bytes after the planned end.
const DRAIN: Duration = Duration::from_secs(10);
/// A data connection whose peer went silent ends after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes the answering side runs at once (only the pinned client can finish one).
const MAX_HANDSHAKES: usize = 64;
/// Bulk writes hand quinn this many bytes at once when the spec asks for less.
const MIN_WRITE: usize = 64 * 1024;

/// Why the QUIC data side of a test could not run.
#[derive(Debug, thiserror::Error)]
pub enum QuicDataError {
    #[error("a runtime for the QUIC test")]
    Runtime(#[source] std::io::Error),
    #[error("the data socket")]
    Socket(#[source] std::io::Error),
    #[error("tls")]
    Tls(#[source] tls::TlsError),
    #[error("connecting")]
    Connect(#[source] quinn::ConnectError),
    #[error("handshake")]
    Handshake(#[source] quinn::ConnectionError),
    #[error("no QUIC handshake within {0:?}")]
    HandshakeLate(Duration),
    #[error("saying hello")]
    Hello(#[source] quinn::WriteError),
    #[error("the data endpoint closed")]
    Closed,
    #[error("the data connections did not arrive within {0:?}")]
    Late(Duration),
    #[error("lost the peer")]
    Lost,
}

/// The answering side: takes the data connections of the test with `cookie` on `socket`
/// (only from the certificate `client`), then sends or receives on each (`ours[i]`: this
/// side sends on stream `i`). Returns this side's figures per stream.
pub fn serve_test(
    socket: &UdpSocket,
    identity: &TlsIdentity,
    client: Fingerprint,
    test: &Test,
    cookie: [u8; 16],
    ours: &[bool],
    progress: &Progress,
) -> Result<Vec<StreamFigures>, QuicDataError> {
    let socket = socket.try_clone().map_err(QuicDataError::Socket)?;
    let offload = offload(&socket);
    runtime()?.block_on(async {
        let crypto =
            tls::server_crypto(identity, [client].into(), None).map_err(QuicDataError::Tls)?;
        let mut config = quinn::ServerConfig::with_crypto(crypto);
        config.transport_config(Arc::new(transport(test)));
        let endpoint = Endpoint::new(
            EndpointConfig::default(),
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(QuicDataError::Socket)?;
        let result = accept_streams(&endpoint, cookie, ours.len(), progress).await;
        let figures = match result {
            Ok(streams) => Ok(run_streams(streams, ours, test, offload, progress).await),
            Err(e) => Err(e),
        };
        endpoint.close(VarInt::from_u32(0), b"test over");
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        figures
    })
}

/// The asking side: opens one connection per stream to `addr` (trusting only the
/// certificate `server`), says hello with `cookie`, and sends or receives on each
/// (`roles[i]`: this side sends on stream `i`). Returns this side's figures and each
/// connection's (local, remote) addresses.
pub fn run_client(
    addr: SocketAddr,
    identity: &TlsIdentity,
    server: Fingerprint,
    test: &Test,
    cookie: [u8; 16],
    roles: &[bool],
    progress: &Progress,
) -> Result<(Vec<StreamFigures>, Vec<Addresses>), QuicDataError> {
    let bind = crate::net::any_local_for(addr);
    let socket = super::udp::data_socket(bind).map_err(QuicDataError::Socket)?;
    let local = socket.local_addr().map_err(QuicDataError::Socket)?;
    let offload = offload(&socket);
    runtime()?.block_on(async {
        let crypto =
            tls::client_crypto_for(identity, Some(server), None, false, tls::ALPN_THROUGHPUT)
                .map_err(QuicDataError::Tls)?;
        let mut config = quinn::ClientConfig::new(crypto);
        config.transport_config(Arc::new(transport(test)));
        let mut endpoint = Endpoint::new(
            EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(QuicDataError::Socket)?;
        endpoint.set_default_client_config(config);
        let mut streams = Vec::with_capacity(roles.len());
        for i in 0..roles.len() {
            let connecting = endpoint
                .connect(addr, "xcbench")
                .map_err(QuicDataError::Connect)?;
            let conn = tokio::time::timeout(SETUP_TIMEOUT, connecting)
                .await
                .map_err(|_| QuicDataError::HandshakeLate(SETUP_TIMEOUT))?
                .map_err(QuicDataError::Handshake)?;
            let (mut send, recv) = conn.open_bi().await.map_err(QuicDataError::Handshake)?;
            let mut hello = Vec::with_capacity(HELLO_LEN);
            Hello {
                stream: i as u8,
                cookie,
            }
            .encode(&mut hello);
            send.write_all(&hello).await.map_err(QuicDataError::Hello)?;
            streams.push((conn, send, recv));
        }
        let connections = vec![(local, addr); streams.len()];
        let figures = run_streams(streams, roles, test, offload, progress).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        Ok((figures, connections))
    })
}

type DataStream = (Connection, SendStream, RecvStream);

/// Why a data connection did not say its hello.
#[derive(Debug, thiserror::Error)]
enum HelloError {
    #[error("handshake")]
    Handshake(#[source] quinn::ConnectionError),
    #[error("reading the hello")]
    Read(#[source] quinn::ReadExactError),
    #[error("hello")]
    Decode(#[source] crate::wire::WireError),
    #[error("no hello within {0:?}")]
    Late(Duration),
}

/// Accepts connections until every stream has said hello with the cookie.
async fn accept_streams(
    endpoint: &Endpoint,
    cookie: [u8; 16],
    n: usize,
    progress: &Progress,
) -> Result<Vec<DataStream>, QuicDataError> {
    let mut slots: Vec<Option<DataStream>> = (0..n).map(|_| None).collect();
    let mut handshakes = tokio::task::JoinSet::new();
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    while slots.iter().any(Option::is_none) {
        tokio::select! {
            incoming = endpoint.accept(), if handshakes.len() < MAX_HANDSHAKES => {
                let Some(incoming) = incoming else {
                    return Err(QuicDataError::Closed);
                };
                handshakes.spawn(async move {
                    let from = incoming.remote_address();
                    let said = tokio::time::timeout(SETUP_TIMEOUT, async {
                        let conn = incoming.await.map_err(HelloError::Handshake)?;
                        let (send, mut recv) = conn.accept_bi().await.map_err(HelloError::Handshake)?;
                        let mut buf = [0u8; HELLO_LEN];
                        recv.read_exact(&mut buf).await.map_err(HelloError::Read)?;
                        let hello = Hello::decode(&buf).map_err(HelloError::Decode)?;
                        Ok((hello, (conn, send, recv)))
                    })
                    .await
                    .unwrap_or(Err(HelloError::Late(SETUP_TIMEOUT)));
                    said.map_err(|e| (from, e))
                });
            }
            Some(done) = handshakes.join_next() => match done {
                Ok(Ok((hello, stream))) => {
                    let slot = slots.get_mut(usize::from(hello.stream));
                    match slot {
                        Some(slot @ None) if hello.cookie == cookie => *slot = Some(stream),
                        _ => {
                            tracing::warn!(from = %stream.0.remote_address(), stream = hello.stream, "throughput quic connection closed: unknown cookie, stream out of range or taken");
                            stream.0.close(crate::net::quic::CLOSE_MALFORMED, b"bad hello");
                        }
                    }
                }
                Ok(Err((from, e))) => tracing::warn!(%from, error = %crate::net::chain(&e), "throughput quic connection closed"),
                Err(_) => {}
            },
            _ = tokio::time::sleep_until(deadline) => {
                return Err(QuicDataError::Late(SETUP_TIMEOUT));
            }
        }
        if progress.aborted() {
            return Err(QuicDataError::Lost);
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Runs every stream as its own task; `sends[i]`: this side sends on stream `i`.
async fn run_streams(
    streams: Vec<DataStream>,
    sends: &[bool],
    test: &Test,
    offload: (u64, u64),
    progress: &Progress,
) -> Vec<StreamFigures> {
    let start = now_mono_ns();
    let tasks: Vec<_> = streams
        .into_iter()
        .zip(sends.iter().copied())
        .enumerate()
        .map(|(i, ((conn, mut send, recv), sender))| {
            let (test, progress) = (test.clone(), progress.clone());
            tokio::spawn(async move {
                if sender {
                    send_bulk(conn, send, i as u8, &test, start, offload, &progress).await
                } else {
                    let _ = send.finish();
                    receive_bulk(conn, recv, i as u8, &test, start, &progress).await
                }
            })
        })
        .collect();
    let mut figures = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(f) = t.await {
            figures.push(f);
        }
    }
    figures
}

async fn send_bulk(
    conn: Connection,
    mut send: SendStream,
    stream: u8,
    test: &Test,
    start: u64,
    offload: (u64, u64),
    progress: &Progress,
) -> StreamFigures {
    // One buffer for the whole test: quinn keeps references to it, not copies.
    let chunk = Bytes::from(vec![0u8; (test.write_bytes as usize).max(MIN_WRITE)]);
    let end = start + test.duration_ns();
    let mut sending = Sending::new(
        Meter::for_test(test, start),
        end,
        test.rate_per_stream(),
        now_mono_ns(),
        1,
        chunk.len(),
    );
    let counts = |sent: u64| Counts {
        bytes: sent,
        retransmits: conn.stats().path.lost_packets,
        ..Counts::default()
    };
    let mut sent = 0u64;
    let mut bufs = [Bytes::new()];
    loop {
        let now = now_mono_ns();
        // A write quinn took only in part finishes before the next step.
        let step = match bufs[0].is_empty() {
            true => sending.poll(now, sent, progress.aborted()),
            false => Step::Write(bufs[0].len()),
        };
        match step {
            Step::Sample => {
                progress.interval(stream, true, sending.sample(now, counts(sent)));
                continue;
            }
            Step::Done => break,
            Step::Wait(ns) => {
                tokio::time::sleep(Duration::from_nanos(ns).min(Duration::from_millis(100))).await;
                continue;
            }
            Step::Write(n) if bufs[0].is_empty() => bufs[0] = chunk.slice(..n),
            Step::Write(_) => {}
        }
        let wait = Duration::from_nanos(sending.next_deadline().saturating_sub(now));
        match tokio::time::timeout(wait, send.write_chunks(&mut bufs)).await {
            Ok(Ok(written)) => sent += written.bytes as u64,
            Ok(Err(_)) => break,
            Err(_) => {
                // The deadline passed mid-write: sample or stop before going on.
                if sending.poll(now_mono_ns(), sent, progress.aborted()) == Step::Done {
                    break;
                }
            }
        }
    }
    let _ = send.finish();
    progress.interval(stream, true, sending.finish(now_mono_ns(), counts(sent)));
    // Everything written is acknowledged (or the peer is gone) before the connection closes.
    let _ = tokio::time::timeout(DRAIN, send.stopped()).await;
    let path = conn.stats().path;
    conn.close(VarInt::from_u32(0), b"done");
    StreamFigures {
        stream,
        sender: true,
        intervals: sending.into_records(),
        tcp: None,
        quic: Some(QuicEnd {
            lost_packets: path.lost_packets,
            sent_packets: path.sent_packets,
            congestion_events: path.congestion_events,
            cwnd_bytes: path.cwnd,
            rtt_us: path.rtt.as_micros() as u64,
            mtu_bytes: u64::from(path.current_mtu),
            gso_segments: offload.0,
            gro_segments: offload.1,
            window_bytes: u64::from(test.window_bytes.unwrap_or(MIN_WINDOW)),
        }),
    }
}

async fn receive_bulk(
    conn: Connection,
    mut recv: RecvStream,
    stream: u8,
    test: &Test,
    start: u64,
    progress: &Progress,
) -> StreamFigures {
    let mut meter = Meter::for_test(test, start);
    let give_up = start + test.duration_ns() + DRAIN.as_nanos() as u64;
    let counts = |received: u64| Counts {
        bytes: received,
        ..Counts::default()
    };
    let mut received = 0u64;
    loop {
        let now = now_mono_ns();
        let wake = meter.poll_timeout().unwrap_or(give_up).min(give_up);
        let wait = Duration::from_nanos(wake.saturating_sub(now));
        match tokio::time::timeout(wait, recv.read_chunk(usize::MAX, true)).await {
            Ok(Ok(Some(chunk))) => received += chunk.bytes.len() as u64,
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => {}
        }
        let now = now_mono_ns();
        if meter.is_due(now) {
            progress.interval(stream, false, meter.handle_sample(now, counts(received)));
        }
        if now >= give_up || progress.aborted() {
            break;
        }
    }
    progress.interval(stream, false, meter.finish(now_mono_ns(), counts(received)));
    // The sender closes once its bytes are acknowledged; closing first could cut that short.
    let _ = tokio::time::timeout(DRAIN, conn.closed()).await;
    StreamFigures {
        stream,
        sender: false,
        intervals: meter.into_records(),
        tcp: None,
        quic: None,
    }
}

fn transport(test: &Test) -> TransportConfig {
    let window = test.window_bytes.unwrap_or(MIN_WINDOW);
    let mut t = TransportConfig::default();
    t.stream_receive_window(VarInt::from_u32(window));
    t.receive_window(VarInt::from_u32(window));
    t.send_window(u64::from(window));
    t.max_concurrent_bidi_streams(VarInt::from_u32(1));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.datagram_receive_buffer_size(None);
    // Search the path MTU to the byte (quinn stops at 20 by default): on a 1400-byte path
    // that is about 1% more payload per packet.
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.minimum_change(1);
    t.mtu_discovery_config(Some(mtu));
    t.keep_alive_interval(Some(Duration::from_secs(1)));
    t.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .expect("5 s is a valid idle timeout"),
    ));
    match test.congestion.as_deref() {
        Some("newreno") => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default()))
        }
        Some("bbr") => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
        }
        _ => t.congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default())),
    };
    t
}

/// GSO segments per send and GRO segments per receive the kernel offers on `socket`.
fn offload(socket: &UdpSocket) -> (u64, u64) {
    match quinn::udp::UdpSocketState::new(socket.into()) {
        Ok(s) => (s.max_gso_segments() as u64, s.gro_segments() as u64),
        Err(_) => (1, 1),
    }
}

/// Two worker threads: connection drivers and stream tasks of one side.
fn runtime() -> Result<tokio::runtime::Runtime, QuicDataError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("throughput-quic")
        .enable_all()
        .build()
        .map_err(QuicDataError::Runtime)
}

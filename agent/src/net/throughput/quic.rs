//! QUIC throughput tests: one quinn connection per stream, each carrying one bidirectional
//! QUIC stream that opens with the test's [`Hello`] and then carries bulk bytes one way.
//!
//! Flow-control windows (stream, connection and send) are the spec's `window_bytes`, which
//! the asking side sizes to the bandwidth-delay product ([`window_for`]) unless told
//! otherwise. The UDP sockets ask for large buffers, and quinn sends with GSO and receives
//! with GRO where the kernel offers them (the end figures say how many segments).
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

use super::{Addresses, Report};
use crate::net::clock::now_unix_ns;
use crate::probe::throughput::{Counts, Meter, Pacer};
use crate::tls::{self, Fingerprint, TlsIdentity};
use crate::wire::throughput::{Hello, QuicEnd, StreamFigures, TestSpec, HELLO_LEN};

/// The link rate windows are sized for when the asking side picks them: the largest
/// FastConnect/ExpressRoute port.
pub const WINDOW_LINK_BPS: u64 = 10_000_000_000;
/// Windows are at least this large (short paths: scheduling delays, not the RTT, dominate).
pub const MIN_WINDOW: u32 = 8 << 20;
/// And at most this large (what `TestSpec::check` allows).
pub const MAX_WINDOW: u32 = 256 << 20;
/// How long the answering side waits for the data connections.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A sender waits this long for its bytes to be acknowledged, a receiver this long for the
/// sender's last bytes after the planned end.
const DRAIN: Duration = Duration::from_secs(10);
/// A data connection whose peer went silent ends after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes the answering side runs at once (only the pinned client can finish one).
const MAX_HANDSHAKES: usize = 64;
/// Bulk writes hand quinn this many bytes at once when the spec asks for less.
const MIN_WRITE: usize = 64 * 1024;

/// Twice the bandwidth-delay product of a [`WINDOW_LINK_BPS`] link at `rtt`, within
/// [`MIN_WINDOW`] and [`MAX_WINDOW`].
pub fn window_for(rtt: Duration) -> u32 {
    let bdp = u128::from(WINDOW_LINK_BPS / 8) * rtt.as_nanos() / 1_000_000_000;
    (2 * bdp).clamp(u128::from(MIN_WINDOW), u128::from(MAX_WINDOW)) as u32
}

/// The answering side: takes the data connections of the test with `cookie` on `socket`
/// (only from the certificate `client`), then sends or receives on each (`ours[i]`: this
/// side sends on stream `i`). Returns this side's figures per stream.
pub fn serve_test(
    socket: &UdpSocket,
    identity: &TlsIdentity,
    client: Fingerprint,
    spec: &TestSpec,
    cookie: [u8; 16],
    ours: &[bool],
    report: &Report,
) -> Result<Vec<StreamFigures>, String> {
    let socket = socket.try_clone().map_err(|e| e.to_string())?;
    let offload = offload(&socket);
    runtime()?.block_on(async {
        let crypto =
            tls::server_crypto(identity, [client].into(), None).map_err(|e| e.to_string())?;
        let mut config = quinn::ServerConfig::with_crypto(crypto);
        config.transport_config(Arc::new(transport(spec)));
        let endpoint = Endpoint::new(
            EndpointConfig::default(),
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| e.to_string())?;
        let result = accept_streams(&endpoint, cookie, ours.len(), report).await;
        let figures = match result {
            Ok(streams) => Ok(run_streams(streams, ours, spec, offload, report).await),
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
    spec: &TestSpec,
    cookie: [u8; 16],
    roles: &[bool],
    report: &Report,
) -> std::io::Result<(Vec<StreamFigures>, Vec<Addresses>)> {
    let other = |e: String| std::io::Error::other(e);
    let bind = crate::net::any_local_for(addr);
    let socket = super::udp::data_socket(bind)?;
    let local = socket.local_addr()?;
    let offload = offload(&socket);
    runtime().map_err(other)?.block_on(async {
        let crypto = tls::client_crypto_for(identity, Some(server), None, false, tls::ALPN_BENCH)
            .map_err(|e| other(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(crypto);
        config.transport_config(Arc::new(transport(spec)));
        let mut endpoint = Endpoint::new(
            EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        endpoint.set_default_client_config(config);
        let mut streams = Vec::with_capacity(roles.len());
        for i in 0..roles.len() {
            let connecting = endpoint
                .connect(addr, "xcbench")
                .map_err(|e| other(e.to_string()))?;
            let conn = tokio::time::timeout(SETUP_TIMEOUT, connecting)
                .await
                .map_err(|_| other(format!("no QUIC handshake in {SETUP_TIMEOUT:?}")))?
                .map_err(|e| other(e.to_string()))?;
            let (mut send, recv) = conn.open_bi().await.map_err(|e| other(e.to_string()))?;
            let mut hello = Vec::with_capacity(HELLO_LEN);
            Hello {
                stream: i as u8,
                cookie,
            }
            .encode(&mut hello);
            send.write_all(&hello)
                .await
                .map_err(|e| other(e.to_string()))?;
            streams.push((conn, send, recv));
        }
        let connections = vec![(local, addr); streams.len()];
        let figures = run_streams(streams, roles, spec, offload, report).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        Ok((figures, connections))
    })
}

type DataStream = (Connection, SendStream, RecvStream);

/// Accepts connections until every stream has said hello with the cookie.
async fn accept_streams(
    endpoint: &Endpoint,
    cookie: [u8; 16],
    n: usize,
    report: &Report,
) -> Result<Vec<DataStream>, String> {
    let mut slots: Vec<Option<DataStream>> = (0..n).map(|_| None).collect();
    let mut handshakes = tokio::task::JoinSet::new();
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    while slots.iter().any(Option::is_none) {
        tokio::select! {
            incoming = endpoint.accept(), if handshakes.len() < MAX_HANDSHAKES => {
                let Some(incoming) = incoming else {
                    return Err("the QUIC data endpoint closed".into());
                };
                handshakes.spawn(async move {
                    let from = incoming.remote_address();
                    let said = tokio::time::timeout(SETUP_TIMEOUT, async {
                        let conn = incoming.await.map_err(|e| e.to_string())?;
                        let (send, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
                        let mut buf = [0u8; HELLO_LEN];
                        recv.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
                        let hello = Hello::decode(&buf).map_err(|e| e.to_string())?;
                        Ok::<_, String>((hello, (conn, send, recv)))
                    })
                    .await
                    .unwrap_or_else(|_| Err("no hello in 10 s".into()));
                    said.map_err(|e| (from, e))
                });
            }
            Some(done) = handshakes.join_next() => match done {
                Ok(Ok((hello, stream))) => {
                    let slot = slots.get_mut(usize::from(hello.stream));
                    match slot {
                        Some(slot @ None) if hello.cookie == cookie => *slot = Some(stream),
                        _ => {
                            tracing::warn!(from = %stream.0.remote_address(), stream = hello.stream, "bench quic connection closed: unknown cookie, stream out of range or taken");
                            stream.0.close(VarInt::from_u32(1), b"bad hello");
                        }
                    }
                }
                Ok(Err((from, e))) => tracing::warn!(%from, error = %e, "bench quic connection closed"),
                Err(_) => {}
            },
            _ = tokio::time::sleep_until(deadline) => {
                return Err("data connections did not arrive in 10 s".into());
            }
        }
        if report.aborted() {
            return Err("lost the peer".into());
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Runs every stream as its own task; `sends[i]`: this side sends on stream `i`.
async fn run_streams(
    streams: Vec<DataStream>,
    sends: &[bool],
    spec: &TestSpec,
    offload: (u64, u64),
    report: &Report,
) -> Vec<StreamFigures> {
    let start = now_unix_ns();
    let tasks: Vec<_> = streams
        .into_iter()
        .zip(sends.iter().copied())
        .enumerate()
        .map(|(i, ((conn, mut send, recv), sender))| {
            let (spec, report) = (spec.clone(), report.clone());
            tokio::spawn(async move {
                if sender {
                    send_bulk(conn, send, i as u8, &spec, start, offload, &report).await
                } else {
                    let _ = send.finish();
                    receive_bulk(conn, recv, i as u8, &spec, start, &report).await
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
    spec: &TestSpec,
    start: u64,
    offload: (u64, u64),
    report: &Report,
) -> StreamFigures {
    // One buffer for the whole test: quinn keeps references to it, not copies.
    let chunk = Bytes::from(vec![0u8; (spec.write_bytes as usize).max(MIN_WRITE)]);
    let mut meter = Meter::for_spec(spec, start);
    let end = start + spec.duration_ms * 1_000_000;
    let counts = |sent: u64| Counts {
        bytes: sent,
        retransmits: conn.stats().path.lost_packets,
        ..Counts::default()
    };
    let mut sent = 0u64;
    let mut bufs = [Bytes::new()];
    let pacer = spec
        .rate_per_stream()
        .map(|rate| Pacer::new(now_unix_ns(), rate));
    loop {
        let now = now_unix_ns();
        if meter.is_due(now) {
            report.interval(stream, true, meter.handle_sample(now, counts(sent)));
        }
        if now >= end || report.aborted() {
            break;
        }
        if bufs[0].is_empty() {
            bufs[0] = match &pacer {
                None => chunk.clone(),
                Some(p) => match super::paced_write(p, now, sent, chunk.len()) {
                    Ok(n) => chunk.slice(..n),
                    Err(wait) => {
                        tokio::time::sleep(wait.min(Duration::from_millis(100))).await;
                        continue;
                    }
                },
            };
        }
        let wake = meter.poll_timeout().unwrap_or(end).min(end);
        let wait = Duration::from_nanos(wake.saturating_sub(now));
        match tokio::time::timeout(wait, send.write_chunks(&mut bufs)).await {
            Ok(Ok(written)) => sent += written.bytes as u64,
            Ok(Err(_)) => break,
            Err(_) => {}
        }
    }
    let _ = send.finish();
    report.interval(stream, true, meter.finish(now_unix_ns(), counts(sent)));
    // Everything written is acknowledged (or the peer is gone) before the connection closes.
    let _ = tokio::time::timeout(DRAIN, send.stopped()).await;
    let path = conn.stats().path;
    conn.close(VarInt::from_u32(0), b"done");
    StreamFigures {
        stream,
        sender: true,
        intervals: meter.into_records(),
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
            window_bytes: u64::from(spec.window_bytes.unwrap_or(MIN_WINDOW)),
        }),
    }
}

async fn receive_bulk(
    conn: Connection,
    mut recv: RecvStream,
    stream: u8,
    spec: &TestSpec,
    start: u64,
    report: &Report,
) -> StreamFigures {
    let mut meter = Meter::for_spec(spec, start);
    let give_up = start + spec.duration_ms * 1_000_000 + DRAIN.as_nanos() as u64;
    let counts = |received: u64| Counts {
        bytes: received,
        ..Counts::default()
    };
    let mut received = 0u64;
    loop {
        let now = now_unix_ns();
        let wake = meter.poll_timeout().unwrap_or(give_up).min(give_up);
        let wait = Duration::from_nanos(wake.saturating_sub(now));
        match tokio::time::timeout(wait, recv.read_chunk(usize::MAX, true)).await {
            Ok(Ok(Some(chunk))) => received += chunk.bytes.len() as u64,
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => {}
        }
        let now = now_unix_ns();
        if meter.is_due(now) {
            report.interval(stream, false, meter.handle_sample(now, counts(received)));
        }
        if now >= give_up || report.aborted() {
            break;
        }
    }
    report.interval(stream, false, meter.finish(now_unix_ns(), counts(received)));
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

fn transport(spec: &TestSpec) -> TransportConfig {
    let window = spec.window_bytes.unwrap_or(MIN_WINDOW);
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
    match spec.congestion.as_deref() {
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
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-quic")
        .enable_all()
        .build()
        .map_err(|e| format!("a runtime for the QUIC test: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_the_bandwidth_delay_product() {
        assert_eq!(window_for(Duration::from_micros(50)), MIN_WINDOW);
        // 10 Gbit/s x 10 ms = 12.5 MB; twice that.
        assert_eq!(window_for(Duration::from_millis(10)), 25_000_000);
        assert_eq!(window_for(Duration::from_secs(1)), MAX_WINDOW);
    }
}

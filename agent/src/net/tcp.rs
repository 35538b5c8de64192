//! TCP probes: the responder that answers request/response frames, and the two client
//! sessions, persistent request/response (TCP_RR style, TCP_NODELAY) and fresh-connection
//! handshakes (TCP_CRR style). TCP_INFO is read after every answer and every connect.
//! Request/response takes T2 and T4 from kernel receive timestamps (SO_TIMESTAMPNS via
//! recvmsg) like STAMP; connect times are read in user space around `connect()`.
//!
//! Responder limits: at most [`MAX_CONNECTIONS_PER_SOURCE`] connections per source address,
//! a connection idle for [`IDLE_TIMEOUT`] is closed, and anything that is not probe framing
//! closes that connection (logged with the reason) without touching the others.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use xcbench_snapshot::{ProbeKind, Protocol, ReflectorCounters, TcpInfo, TimestampSource};

use super::clock::now_unix_ns;
use super::reflector::lock;
use super::socket::{enable_rx_timestamps, read_stream};
use super::timer::DeadlineTimer;
use crate::config::PeerConfig;
use crate::probe::{Event, RrSession, SenderConfig};
use crate::record::{Recorder, SeriesKey};
use crate::wire::rr::{Frame, FrameType, MAX_FRAME_LEN};
use crate::wire::WireError;

pub const MAX_CONNECTIONS_PER_SOURCE: usize = 64;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts TCP probe connections until `stop` changes.
pub async fn serve(
    listener: TcpListener,
    timestamps: TimestampSource,
    counters: Arc<Mutex<ReflectorCounters>>,
    mut stop: watch::Receiver<bool>,
) {
    let per_source: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let (stream, from) = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "tcp accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        {
            let mut map = lock(&per_source);
            let n = map.entry(from.ip()).or_insert(0);
            if *n >= MAX_CONNECTIONS_PER_SOURCE {
                lock(&counters).tcp_refused += 1;
                tracing::warn!(%from, "tcp probe connection refused: per-source limit reached");
                continue;
            }
            *n += 1;
        }
        let (counters, per_source, stop) = (counters.clone(), per_source.clone(), stop.clone());
        tokio::spawn(async move {
            answer(stream, from, timestamps, &counters, stop).await;
            let mut map = lock(&per_source);
            if let Some(n) = map.get_mut(&from.ip()) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&from.ip());
                }
            }
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    from: SocketAddr,
    timestamps: TimestampSource,
    counters: &Mutex<ReflectorCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    if timestamps == TimestampSource::Kernel {
        enable_rx_timestamps(stream.as_raw_fd());
    }
    let mut buf = Vec::with_capacity(2 * MAX_FRAME_LEN);
    let mut chunk = vec![0u8; MAX_FRAME_LEN];
    let mut out = Vec::with_capacity(MAX_FRAME_LEN);
    loop {
        let n = tokio::select! {
            _ = stop.changed() => return,
            r = tokio::time::timeout(IDLE_TIMEOUT, read_stream(&stream, &mut chunk)) => match r {
                Err(_) => {
                    lock(counters).tcp_refused += 1;
                    tracing::debug!(%from, "tcp probe connection idle: closed");
                    return;
                }
                Ok(Ok((0, _, _))) | Ok(Err(_)) => return,
                Ok(Ok(read)) => read,
            },
        };
        // T2: kernel receive timestamp of the request's last segment (or the clock now).
        let (n, t2, _) = n;
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match Frame::decode(&buf) {
                Ok(f) if f.kind == FrameType::Request => {
                    out.clear();
                    Frame {
                        kind: FrameType::Response,
                        t2,
                        ..f
                    }
                    .encode(&mut out);
                    Frame::stamp_send(&mut out, now_unix_ns());
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                    lock(counters).tcp_reflected += 1;
                    buf.drain(..f.len);
                }
                Ok(_) => {
                    lock(counters).tcp_malformed += 1;
                    tracing::warn!(%from, "tcp probe connection closed: a response where a request belongs");
                    return;
                }
                Err(WireError::Truncated { .. }) => break,
                Err(e) => {
                    lock(counters).tcp_malformed += 1;
                    tracing::warn!(%from, error = %e, "tcp probe connection closed: not probe framing");
                    return;
                }
            }
        }
    }
}

/// Reads TCP_INFO of a connected socket.
pub fn tcp_info(stream: &TcpStream) -> Option<(TcpInfo, u32)> {
    // SAFETY: getsockopt writes at most `len` bytes into a zeroed tcp_info we own.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| {
        (
            TcpInfo {
                srtt_ns: u64::from(info.tcpi_rtt) * 1_000,
                rttvar_ns: u64::from(info.tcpi_rttvar) * 1_000,
                min_rtt_ns: u64::from(info.tcpi_min_rtt) * 1_000,
                pmtu_bytes: info.tcpi_pmtu,
                snd_cwnd_segments: info.tcpi_snd_cwnd,
                delivery_rate_bytes_per_second: info.tcpi_delivery_rate,
            },
            info.tcpi_total_retrans,
        )
    })
}

fn session_config(peer: &PeerConfig) -> SenderConfig {
    SenderConfig {
        interval_ns: peer.probe.interval.0.as_nanos() as u64,
        timeout_ns: peer.probe.loss_timeout.0.as_nanos() as u64,
        packet_len: peer.probe.payload_size.0,
    }
}

/// Request/response probes on one persistent connection, reconnecting after a stall or an
/// error. While there is no connection, scheduled probes still count: they are lost.
pub async fn run_rr(
    peer: PeerConfig,
    timestamps: TimestampSource,
    recorder: Arc<Mutex<Recorder>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut source = TimestampSource::User;
    let key: SeriesKey = (peer.identity.id.clone(), Protocol::Tcp, ProbeKind::Rr);
    let (addr, wait) = (
        peer.address,
        peer.probe.loss_timeout.0.min(Duration::from_secs(1)),
    );
    let connect = move || async move {
        match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => Some(s),
            _ => None,
        }
    };
    let prepare = |s: TcpStream| {
        let _ = s.set_nodelay(true);
        if timestamps == TimestampSource::Kernel {
            enable_rx_timestamps(s.as_raw_fd());
        }
        let retrans = tcp_info(&s).map_or(0, |(_, r)| r);
        (s, retrans)
    };
    // The schedule starts after the first attempt, so start-up is not counted as lost
    // probes; later reconnects run beside the schedule, so probes due meanwhile are sent
    // (and lost) instead of silently skipped.
    let mut conn: Option<(TcpStream, u32)> = connect().await.map(prepare);
    let mut next_connect_ns = now_unix_ns() + 1_000_000_000;
    type Connecting =
        std::pin::Pin<Box<dyn std::future::Future<Output = Option<TcpStream>> + Send>>;
    let mut connecting: Option<Connecting> = None;
    let mut session = RrSession::new(session_config(&peer), now_unix_ns());
    let timer = DeadlineTimer::new()?;
    let mut buf = Vec::with_capacity(2 * MAX_FRAME_LEN);
    let mut chunk = vec![0u8; MAX_FRAME_LEN];
    let mut out = Vec::with_capacity(MAX_FRAME_LEN);
    let mut stopping = false;
    loop {
        if stopping && !session.has_pending() {
            return Ok(());
        }
        if conn.is_none() && connecting.is_none() && !stopping && now_unix_ns() >= next_connect_ns {
            next_connect_ns = now_unix_ns() + 1_000_000_000;
            connecting = Some(Box::pin(connect()));
        }
        timer.arm(session.poll_timeout())?;
        let connected = async {
            match connecting.as_mut() {
                Some(c) => c.await,
                None => std::future::pending().await,
            }
        };
        let readable = async {
            match conn.as_mut() {
                Some((s, _)) => read_stream(s, &mut chunk).await,
                None => std::future::pending().await,
            }
        };
        let mut broken = false;
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                stopping = true;
                session.stop();
            }
            c = connected => {
                connecting = None;
                if let Some(s) = c {
                    buf.clear();
                    conn = Some(prepare(s));
                }
            }
            _ = timer.wait() => {
                if session.handle_timeout(now_unix_ns()) {
                    broken = true;
                }
                if session.poll_transmit(now_unix_ns(), &mut out) {
                    if let Some((s, _)) = conn.as_mut() {
                        if s.write_all(&out).await.is_err() {
                            broken = true;
                        }
                    }
                }
            }
            r = readable => match r {
                Ok((0, _, _)) | Err(_) => broken = true,
                Ok((n, t4, from)) => {
                    source = from;
                    buf.extend_from_slice(&chunk[..n]);
                    loop {
                        match Frame::decode(&buf) {
                            Ok(f) => {
                                session.handle_frame(t4, &f);
                                buf.drain(..f.len);
                            }
                            Err(WireError::Truncated { .. }) => break,
                            Err(e) => {
                                tracing::warn!(peer = %peer.identity.id, error = %e, "tcp probe connection closed: bad response");
                                broken = true;
                                break;
                            }
                        }
                    }
                    if let Some((s, last)) = conn.as_mut() {
                        if let Some((info, total)) = tcp_info(s) {
                            lock(&recorder).handle_tcp_info(&key, info, u64::from(total.saturating_sub(*last)));
                            *last = total;
                        }
                    }
                }
            }
        }
        if broken {
            conn = None;
            session.handle_disconnect();
        }
        let mut rec = None;
        while let Some(event) = session.poll_event() {
            rec.get_or_insert_with(|| lock(&recorder))
                .handle_event(&key, &event, source);
        }
    }
}

/// How long a connect probe waits: long enough that SYN retransmissions (at 1 s and 3 s)
/// show as latency and in the retransmit counter instead of as a loss.
pub const CONNECT_WAIT_MIN: Duration = Duration::from_secs(4);
/// Connect probes in flight at once; beyond this a probe counts as lost at once (the path is
/// already failing every handshake).
pub const MAX_CONNECTS_IN_FLIGHT: usize = 16;

/// One fresh connection per `connect_interval`, each in its own task so a slow handshake
/// never delays the next: the time `connect()` takes (about one RTT; a dropped SYN adds
/// about 1 s), SYN retransmissions from TCP_INFO. Waits up to max(loss_timeout, 4 s).
pub async fn run_connect(
    peer: PeerConfig,
    recorder: Arc<Mutex<Recorder>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let key: SeriesKey = (peer.identity.id.clone(), Protocol::Tcp, ProbeKind::Connect);
    let wait = peer.probe.loss_timeout.0.max(CONNECT_WAIT_MIN);
    let addr = peer.address;
    let rec = recorder.clone();
    super::fresh::run(
        vec![key],
        peer.probe.connect_interval.0,
        MAX_CONNECTS_IN_FLIGHT,
        wait,
        recorder,
        stop,
        move |key, seq| {
            let recorder = rec.clone();
            async move {
                let t0 = now_unix_ns();
                let result = tokio::time::timeout(wait, TcpStream::connect(addr)).await;
                let t1 = now_unix_ns();
                match result {
                    Ok(Ok(stream)) => {
                        if let Some((info, syn_retrans)) = tcp_info(&stream) {
                            lock(&recorder).handle_tcp_info(&key, info, u64::from(syn_retrans));
                        }
                        Event::Rtt {
                            seq,
                            rtt_ns: t1 - t0,
                        }
                    }
                    _ => Event::Lost { seq },
                }
            }
        },
    )
    .await
}

//! TCP probes: the responder that answers request/response frames, and the two client
//! sessions, persistent request/response (TCP_RR style, TCP_NODELAY, through the
//! [`driver`](super::driver)) and fresh-connection handshakes (TCP_CRR style, through
//! [`fresh`](super::fresh)). TCP_INFO is read after every answer and every connect.
//! Request/response takes T2 and T4 from kernel receive timestamps (SO_TIMESTAMPNS via
//! recvmsg) like STAMP; connect times are read on the monotonic clock around `connect()`.
//!
//! Responder limits: at most [`MAX_CONNECTIONS_PER_SOURCE`] connections per source address,
//! a connection idle for [`IDLE_TIMEOUT`] is closed, and anything that is not probe framing
//! closes that connection (logged with the reason) without touching the others.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use xcbench_snapshot::{ProbeKind, Protocol, ResponderCount, TimestampSource};

use super::clock::{now_mono_ns, now_unix_ns};
use super::driver::{drive, Delivery, Transport};
use super::limits::PerSource;
use super::lock;
use super::socket::{enable_rx_timestamps, read_stream, tcp_info};
use crate::config::PeerConfig;
use crate::probe::rr::respond;
use crate::probe::{Event, Moment, RrSession, SenderConfig};
use crate::record::{Recorder, SeriesKey};
use crate::wire::rr::{Frame, MAX_FRAME_LEN};
use crate::wire::WireError;

pub const MAX_CONNECTIONS_PER_SOURCE: usize = 64;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts TCP probe connections until `stop` changes.
pub async fn serve(
    listener: TcpListener,
    timestamps: TimestampSource,
    counters: Arc<Mutex<ResponderCount>>,
    mut stop: watch::Receiver<bool>,
) {
    let per_source = PerSource::new(MAX_CONNECTIONS_PER_SOURCE);
    while let Some((stream, from)) = super::accept(&listener, &mut stop, "tcp probes").await {
        let Some(slot) = per_source.try_take(from.ip()) else {
            lock(&counters).refused += 1;
            tracing::warn!(%from, "tcp probe connection refused: per-source limit reached");
            continue;
        };
        let (counters, stop) = (counters.clone(), stop.clone());
        tokio::spawn(async move {
            answer(stream, from, timestamps, &counters, stop).await;
            drop(slot);
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    from: SocketAddr,
    timestamps: TimestampSource,
    counters: &Mutex<ResponderCount>,
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
        let (n, t2, _) = tokio::select! {
            _ = stop.changed() => return,
            r = tokio::time::timeout(IDLE_TIMEOUT, read_stream(&stream, &mut chunk)) => match r {
                Err(_) => {
                    lock(counters).refused += 1;
                    tracing::debug!(%from, "tcp probe connection idle: closed");
                    return;
                }
                Ok(Ok((0, _, _))) | Ok(Err(_)) => return,
                Ok(Ok(read)) => read,
            },
        };
        // T2: kernel receive timestamp of the request's last segment (or the clock now).
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let len = match Frame::decode(&buf) {
                Ok(f) => f.len,
                Err(WireError::Truncated { .. }) => break,
                Err(e) => {
                    lock(counters).malformed += 1;
                    tracing::warn!(%from, error = %e, "tcp probe connection closed: not probe framing");
                    return;
                }
            };
            if let Err(e) = respond(&buf[..len], t2.wall_ns, &mut out) {
                lock(counters).malformed += 1;
                tracing::warn!(%from, error = %e, "tcp probe connection closed");
                return;
            }
            Frame::stamp_send(&mut out, now_unix_ns());
            if stream.write_all(&out).await.is_err() {
                return;
            }
            lock(counters).reflected += 1;
            buf.drain(..len);
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Option<TcpStream>> + Send>>;

/// The persistent request/response connection of one peer.
struct Stream {
    addr: SocketAddr,
    /// How long a connection attempt may take.
    wait: Duration,
    timestamps: TimestampSource,
    key: SeriesKey,
    /// The connection and its TCP_INFO retransmission total at the last reading.
    conn: Option<(TcpStream, u32)>,
    connecting: Option<Connecting>,
    next_connect_ns: u64,
    /// Bytes read but not yet a whole frame, and when the last of them arrived.
    pending: Vec<u8>,
    last_read: (Moment, TimestampSource),
    chunk: Vec<u8>,
    read_since_observed: bool,
}

/// The gap between connection attempts while a peer is unreachable.
const RECONNECT_NS: u64 = 1_000_000_000;

impl Stream {
    fn connect(&self) -> Connecting {
        let (addr, wait) = (self.addr, self.wait);
        Box::pin(async move {
            match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => Some(s),
                _ => None,
            }
        })
    }

    fn adopt(&mut self, s: TcpStream) {
        let _ = s.set_nodelay(true);
        if self.timestamps == TimestampSource::Kernel {
            enable_rx_timestamps(s.as_raw_fd());
        }
        let retrans = tcp_info(&s).map_or(0, |i| i.total_retrans);
        self.pending.clear();
        self.conn = Some((s, retrans));
    }
}

impl Transport for Stream {
    fn initial_source(&self) -> TimestampSource {
        TimestampSource::User
    }

    async fn open(&mut self) {
        if let Some(s) = self.connect().await {
            self.adopt(s);
        }
        self.next_connect_ns = now_mono_ns() + RECONNECT_NS;
    }

    fn poll_reopen(&mut self, now_mono: u64) {
        if self.conn.is_none() && self.connecting.is_none() && now_mono >= self.next_connect_ns {
            self.next_connect_ns = now_mono + RECONNECT_NS;
            self.connecting = Some(self.connect());
        }
    }

    /// A stall re-opens a connection there is; without one, a request that timed out never
    /// left (it is lost, and the others are not abandoned).
    fn reopen_after_stall(&self) -> bool {
        self.conn.is_some()
    }

    async fn send(&mut self, _: usize, bytes: &[u8]) -> bool {
        match self.conn.as_mut() {
            Some((s, _)) => s.write_all(bytes).await.is_ok(),
            None => true,
        }
    }

    async fn next(&mut self, buf: &mut Vec<u8>) -> Delivery {
        loop {
            if self.conn.is_some() {
                match Frame::decode(&self.pending) {
                    Ok(f) => {
                        buf.clear();
                        buf.extend(self.pending.drain(..f.len));
                        let (at, source) = self.last_read;
                        return Delivery::Input {
                            probe: 0,
                            at,
                            source,
                            tos: None,
                            len: f.len,
                        };
                    }
                    Err(WireError::Truncated { .. }) => {}
                    Err(e) => {
                        tracing::warn!(peer = %self.key.0, error = %e, "tcp probe connection closed: bad response");
                        return Delivery::Broken;
                    }
                }
            }
            let connected = async {
                match self.connecting.as_mut() {
                    Some(c) => c.await,
                    None => std::future::pending().await,
                }
            };
            let readable = async {
                match self.conn.as_ref() {
                    Some((s, _)) => read_stream(s, &mut self.chunk).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = connected => {
                    self.connecting = None;
                    if let Some(s) = c {
                        self.adopt(s);
                    }
                    return Delivery::Nothing;
                }
                r = readable => match r {
                    Ok((0, _, _)) | Err(_) => return Delivery::Broken,
                    Ok((n, at, source)) => {
                        self.pending.extend_from_slice(&self.chunk[..n]);
                        self.last_read = (at, source);
                        self.read_since_observed = true;
                    }
                },
            }
        }
    }

    fn observe(&mut self, recorder: &Mutex<Recorder>, _: bool) {
        if !std::mem::take(&mut self.read_since_observed) {
            return;
        }
        if let Some((s, last)) = self.conn.as_mut() {
            if let Some(info) = tcp_info(s) {
                let grown = info.total_retrans.saturating_sub(*last);
                lock(recorder).handle_tcp_info(&self.key, info.probe_info(), u64::from(grown));
                *last = info.total_retrans;
            }
        }
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }

    fn close(&mut self) {}
}

/// Request/response probes on one persistent connection, reconnecting after a stall or an
/// error. While there is no connection, scheduled probes still count: they are lost.
pub async fn run_rr(
    peer: PeerConfig,
    timestamps: TimestampSource,
    recorder: Arc<Mutex<Recorder>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let key: SeriesKey = (peer.identity.id.clone(), Protocol::Tcp, ProbeKind::Rr);
    let stream = Stream {
        addr: peer.address,
        wait: peer.probe.loss_timeout.get().min(Duration::from_secs(1)),
        timestamps,
        key: key.clone(),
        conn: None,
        connecting: None,
        next_connect_ns: 0,
        pending: Vec::with_capacity(2 * MAX_FRAME_LEN),
        last_read: (Moment::default(), TimestampSource::User),
        chunk: vec![0u8; MAX_FRAME_LEN],
        read_since_observed: false,
    };
    let config = SenderConfig::from(&peer.probe);
    let make = move |start| vec![(key, RrSession::new(config, start))];
    drive(make, stream, recorder, stop, Default::default()).await
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
    let wait = peer.probe.loss_timeout.get().max(CONNECT_WAIT_MIN);
    let addr = peer.address;
    let rec = recorder.clone();
    super::fresh::run(
        vec![key],
        peer.probe.connect_interval.get(),
        MAX_CONNECTS_IN_FLIGHT,
        wait,
        recorder,
        stop,
        move |key, seq| {
            let recorder = rec.clone();
            async move {
                let t0 = now_mono_ns();
                let result = tokio::time::timeout(wait, TcpStream::connect(addr)).await;
                let t1 = now_mono_ns();
                match result {
                    Ok(Ok(stream)) => {
                        if let Some(info) = tcp_info(&stream) {
                            let syn_retrans = u64::from(info.total_retrans);
                            lock(&recorder).handle_tcp_info(&key, info.probe_info(), syn_retrans);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::settle;
    use crate::wire::rr::FrameType;
    use tokio::io::AsyncReadExt;

    async fn responder() -> (SocketAddr, Arc<Mutex<ResponderCount>>, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counters: Arc<Mutex<ResponderCount>> = Arc::default();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(serve(
            listener,
            TimestampSource::Kernel,
            counters.clone(),
            rx,
        ));
        (addr, counters, stop)
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

    #[tokio::test]
    async fn frames_split_and_joined_anyhow_are_each_answered_at_their_length() {
        let (addr, counters, _stop) = responder().await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Two requests in one write, then one cut in three.
        let mut both = request(1, 40);
        both.extend(request(2, 300));
        s.write_all(&both).await.unwrap();
        let third = request(3, 1_000);
        for part in [&third[..10], &third[10..500], &third[500..]] {
            s.write_all(part).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut got = vec![0u8; 40 + 300 + 1_000];
        s.read_exact(&mut got).await.unwrap();
        let mut at = 0;
        for (seq, len) in [(1, 40), (2, 300), (3, 1_000)] {
            let f = Frame::decode(&got[at..]).unwrap();
            assert_eq!(
                (f.kind, f.seq, f.t1, f.len),
                (FrameType::Response, seq, 42, len)
            );
            assert!(f.t3 >= f.t2 && f.t2 > 0);
            at += len;
        }
        settle(|| lock(&counters).reflected == 3).await;
        assert_eq!(
            *lock(&counters),
            ResponderCount {
                reflected: 3,
                ..ResponderCount::default()
            }
        );
    }

    #[tokio::test]
    async fn garbage_closes_only_its_connection_and_the_cap_holds() {
        let (addr, counters, _stop) = responder().await;
        let mut good = TcpStream::connect(addr).await.unwrap();
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), bad.read_to_end(&mut rest)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "closed without an answer"
        );
        good.write_all(&request(9, 64)).await.unwrap();
        let mut answer = vec![0u8; 64];
        good.read_exact(&mut answer).await.unwrap();
        assert_eq!(Frame::decode(&answer).unwrap().seq, 9);
        // Up to the cap from one source (the two above still count while open).
        let mut open = Vec::new();
        for _ in 0..MAX_CONNECTIONS_PER_SOURCE {
            open.push(TcpStream::connect(addr).await.unwrap());
        }
        settle(|| lock(&counters).refused >= 1).await;
        let c = *lock(&counters);
        assert_eq!((c.malformed, c.reflected), (1, 1));
        assert!(
            c.refused >= 1,
            "{c:?}: connections beyond the cap are refused"
        );
    }

    #[tokio::test]
    async fn request_response_over_loopback_times_each_probe_and_recovers_from_a_dead_peer() {
        let (addr, counters, stop_responder) = responder().await;
        let peer = crate::config::tests::peer_at(addr);
        let recorder = Arc::new(Mutex::new(Recorder::new()));
        lock(&recorder).add_series(peer.identity.clone(), Protocol::Tcp, ProbeKind::Rr);
        let (stop, rx) = watch::channel(false);
        let run = tokio::spawn(run_rr(
            peer.clone(),
            TimestampSource::Kernel,
            recorder.clone(),
            rx,
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = stop.send(true);
        run.await.unwrap().unwrap();
        let series = lock(&recorder).take_series(0);
        let c = series[0].counters;
        assert!(c.sent >= 20, "{c:?}");
        assert_eq!((c.received, c.lost), (c.sent, 0), "{c:?}");
        assert_eq!(series[0].timestamping, TimestampSource::Kernel);
        assert!(series[0].tcp.is_some(), "TCP_INFO read");
        assert_eq!(lock(&counters).reflected, c.sent);
        // Nobody listening: every request is lost, none is silently skipped.
        drop(stop_responder);
        let dead = crate::config::tests::peer_at("127.0.0.1:9".parse().unwrap());
        let recorder = Arc::new(Mutex::new(Recorder::new()));
        lock(&recorder).add_series(dead.identity.clone(), Protocol::Tcp, ProbeKind::Rr);
        let (stop, rx) = watch::channel(false);
        let run = tokio::spawn(run_rr(dead, TimestampSource::Kernel, recorder.clone(), rx));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(true);
        run.await.unwrap().unwrap();
        let c = lock(&recorder).take_series(0)[0].counters;
        assert!(c.sent >= 10, "{c:?}");
        assert_eq!((c.received, c.lost), (0, c.sent), "{c:?}");
    }
}

//! Throughput tests between two agents (iperf3-like). The answering agent takes control
//! requests on QUIC connections with ALPN `xcbench-bench/1` (mutual TLS: only a trusted peer
//! can ask) and data at its data port (the STAMP port + 2): TCP connections here, each
//! opened with the cookie it handed out; UDP datagrams on the same number
//! ([`udp`]); QUIC connections on the next number ([`quic`]).
//! The asking side is [`run`] (`xcbench bench`).
//!
//! TCP bulk data moves on blocking sockets, one thread per stream, so the async runtime never
//! sits between the kernel and the byte counters. A sending stream counts bytes the kernel
//! accepted; a receiving stream counts bytes delivered to it. Each stream samples its own
//! counters at interval boundaries ([`Meter`]); both sides exchange their figures at the end.
//! One test at a time per agent: a second request is refused while one runs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream, VarInt};

pub mod quic;
pub mod schedule;
pub mod udp;

use crate::net::clock::now_unix_ns;
use crate::net::reflector::lock;
use crate::probe::throughput::{Counts, Meter, Pacer, ReadMark};
use crate::wire::throughput::{
    cookie_text, parse_cookie, BenchProtocol, Control, Direction, Hello, IntervalBytes,
    StreamFigures, TcpEnd, TestSpec, HELLO_LEN,
};
use crate::wire::WireError;
use rustls::pki_types::CertificateDer;

/// The data port is the STAMP port + 2 (QUIC has + 1).
pub const DATA_PORT_OFFSET: u16 = 2;
/// How long the answering side waits for control messages and data connections.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A receiving stream gives up this long after the planned end if the sender never closes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Data connections that may wait for their hello at once (a test has at most 256).
const MAX_HELLO_WAITERS: usize = 512;
/// The refusal while another test runs (the asking agent's scheduler retries on it).
pub const BUSY: &str = "busy: another throughput test is running on this agent";
/// Blocking socket calls wake up at least this often to sample their counters.
const WAKE: Duration = Duration::from_millis(100);
/// The most the TCP receivers of one test side let queue before their reads wake (see
/// [`ReadMark`]); 128 KiB is one default read.
const MAX_READ_MARK: usize = 128 * 1024;

/// Why a test could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error("the peer refused the test: {0}")]
    Refused(String),
    #[error("control: {0}")]
    Control(String),
    #[error("{0}")]
    Connect(String),
    #[error("data connection {addr}: {source}")]
    Data {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A data connection's (local, remote) addresses.
pub type Addresses = (SocketAddr, SocketAddr);

/// A test accepted by the answering side and waiting for its data connections.
struct Pending {
    cookie: [u8; 16],
    slots: Vec<Option<TcpStream>>,
}

/// Where a stream's thread sends its intervals, and how it learns that the test is off
/// (the control connection to the peer is gone).
#[derive(Clone)]
pub struct Report {
    tx: tokio::sync::mpsc::UnboundedSender<(u8, bool, IntervalBytes)>,
    abort: Arc<AtomicBool>,
}

impl Report {
    /// Passes on an interval a [`Meter`] closed (nothing when it closed none).
    pub fn interval(&self, stream: u8, sender: bool, closed: Option<IntervalBytes>) {
        if let Some(iv) = closed {
            let _ = self.tx.send((stream, sender, iv));
        }
    }

    /// True once the peer is lost: stop now.
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

/// Who an agent runs its one test with: the peer's id when this agent asked, the client's
/// certificate when it answers (the configured peers identify it, see
/// [`crate::tls::KnownPeers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tester {
    pub peer: Option<xcbench_snapshot::AgentId>,
    pub certificate: Option<CertificateDer<'static>>,
}

/// The one throughput test an agent takes part in at a time, answering or asking, and whom
/// it runs with (so probes to that peer are recorded as under load meanwhile).
pub struct TestSlot {
    busy: AtomicBool,
    with: tokio::sync::watch::Sender<Option<Tester>>,
}

/// Holds the [`TestSlot`] until dropped.
pub struct SlotGuard(Arc<TestSlot>);

impl TestSlot {
    pub fn new() -> Arc<TestSlot> {
        Arc::new(TestSlot {
            busy: AtomicBool::new(false),
            with: tokio::sync::watch::channel(None).0,
        })
    }

    /// Takes the slot for a test with `tester`; `None` while another test runs.
    pub fn try_begin(self: &Arc<Self>, tester: Tester) -> Option<SlotGuard> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.with.send_replace(Some(tester));
        Some(SlotGuard(self.clone()))
    }

    /// Follows whom the running test is with (`None` between tests).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<Option<Tester>> {
        self.with.subscribe()
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.with.send_replace(None);
        self.0.busy.store(false, Ordering::Release);
    }
}

/// What the answering agent allows (its `[bench]` section).
#[derive(Debug, Clone, Default)]
pub struct ServeLimits {
    pub max_duration_ms: u64,
    pub max_streams: u16,
    pub max_udp_rate_bps: u64,
    /// Peers that may ask; empty = every client the TLS layer trusts.
    pub allow: crate::tls::KnownPeers,
}

impl ServeLimits {
    /// Checks a request from the client with certificate `client`; the reason names the
    /// field, the value and this agent's limit.
    pub fn check(
        &self,
        spec: &TestSpec,
        client: Option<&CertificateDer<'_>>,
    ) -> Result<(), String> {
        if !self.allow.is_empty() && client.and_then(|c| self.allow.identify(c)).is_none() {
            return Err("this client is not in the peer's bench.allow".into());
        }
        if spec.duration_ms > self.max_duration_ms {
            return Err(format!(
                "duration_ms = {}: this agent allows at most {} (bench.max_duration)",
                spec.duration_ms, self.max_duration_ms
            ));
        }
        if spec.streams > self.max_streams {
            return Err(format!(
                "streams = {}: this agent allows at most {} (bench.max_streams)",
                spec.streams, self.max_streams
            ));
        }
        let udp_rate = spec
            .bitrate_bps
            .filter(|_| spec.protocol == BenchProtocol::Udp);
        if let Some(b) = udp_rate.filter(|b| *b > self.max_udp_rate_bps) {
            return Err(format!(
                "bitrate_bps = {b}: this agent allows at most {} (bench.max_udp_rate)",
                self.max_udp_rate_bps
            ));
        }
        Ok(())
    }
}

/// The answering side: its data listener and the one test it may run.
pub struct BenchServer {
    limits: ServeLimits,
    data_port: u16,
    /// UDP tests' data socket, on the same port number.
    udp: Arc<std::net::UdpSocket>,
    /// QUIC tests' data socket: the data port + 1 (UDP).
    quic: Arc<std::net::UdpSocket>,
    /// The certificate the QUIC data endpoint presents.
    identity: crate::tls::TlsIdentity,
    slot: Arc<TestSlot>,
    pending: Mutex<Option<Pending>>,
    arrived: tokio::sync::Notify,
}

impl BenchServer {
    /// Binds the data listener (TCP), the UDP data socket on the same number and the QUIC
    /// data socket on the next (any free port when `addr`'s port is 0), and starts taking
    /// data connections.
    pub fn bind(
        addr: SocketAddr,
        limits: ServeLimits,
        identity: crate::tls::TlsIdentity,
        slot: Arc<TestSlot>,
    ) -> std::io::Result<Arc<BenchServer>> {
        let listener = TcpListener::bind(addr)?;
        let data_port = listener.local_addr()?.port();
        let udp = udp::data_socket(SocketAddr::new(addr.ip(), data_port))?;
        let quic_port = match addr.port() {
            0 => 0,
            _ => data_port.wrapping_add(1),
        };
        let quic = udp::data_socket(SocketAddr::new(addr.ip(), quic_port))?;
        let server = Arc::new(BenchServer {
            limits,
            data_port,
            udp: Arc::new(udp),
            quic: Arc::new(quic),
            identity,
            slot,
            pending: Mutex::new(None),
            arrived: tokio::sync::Notify::new(),
        });
        let weak = Arc::downgrade(&server);
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("bench-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Some(server) = weak.upgrade() else { return };
                    let Ok(s) = conn else { continue };
                    // The hello is read on its own thread, so a silent client holds no one
                    // up; at most MAX_HELLO_WAITERS wait at once, the rest are closed.
                    if waiting.fetch_add(1, Ordering::AcqRel) >= MAX_HELLO_WAITERS {
                        waiting.fetch_sub(1, Ordering::AcqRel);
                        tracing::warn!(peer = ?s.peer_addr().ok(), "bench data connection closed: too many waiting for their hello");
                        continue;
                    }
                    let waiting = waiting.clone();
                    std::thread::spawn(move || {
                        server.handle_data_connection(s);
                        waiting.fetch_sub(1, Ordering::AcqRel);
                    });
                }
            })?;
        Ok(server)
    }

    pub fn data_port(&self) -> u16 {
        self.data_port
    }

    /// The QUIC data port (UDP).
    pub fn quic_port(&self) -> u16 {
        self.quic.local_addr().map_or(0, |a| a.port())
    }

    fn handle_data_connection(&self, mut s: TcpStream) {
        let from = s.peer_addr().ok();
        let mut hello = [0u8; HELLO_LEN];
        let _ = s.set_read_timeout(Some(SETUP_TIMEOUT));
        let parsed = s
            .read_exact(&mut hello)
            .map_err(|e| e.to_string())
            .and_then(|_| Hello::decode(&hello).map_err(|e| e.to_string()));
        let hello = match parsed {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(?from, error = %e, "bench data connection closed: no valid hello");
                return;
            }
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
                        ?from,
                        stream = hello.stream,
                        "bench data connection closed: stream out of range or taken"
                    ),
                }
            }
            _ => tracing::warn!(?from, "bench data connection closed: unknown cookie"),
        }
    }
}

/// Answers one control connection (ALPN `xcbench-bench/1`) until its test is over.
pub async fn serve_control(conn: Connection, server: Arc<BenchServer>) {
    let from = conn.remote_address();
    let (mut send, mut recv) = match tokio::time::timeout(SETUP_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        _ => return,
    };
    match read_control(&mut recv).await {
        Ok(Control::Request(spec)) => {
            let certificate = peer_certificate(&conn);
            let client = certificate.as_ref().map(|c| crate::tls::Fingerprint::of(c));
            if let Err(e) = spec
                .check()
                .and_then(|_| server.limits.check(&spec, certificate.as_ref()))
            {
                tracing::info!(%from, reason = %e, "bench request refused");
                refuse(&mut send, &e).await;
            } else if let Some(guard) = server.slot.try_begin(Tester {
                peer: None,
                certificate,
            }) {
                let result = answer_test(&conn, &server, &spec, client, &mut send).await;
                *lock(&server.pending) = None;
                drop(guard);
                if let Err(e) = result {
                    tracing::warn!(%from, error = %e, "bench test ended early");
                }
                let _ = send.finish();
            } else {
                refuse(&mut send, BUSY).await;
            }
        }
        Ok(other) => refuse(&mut send, &format!("expected a request, got {other:?}")).await,
        Err(e) => {
            tracing::warn!(%from, error = %e, "bench control closed");
            conn.close(VarInt::from_u32(1), b"bad control message");
            return;
        }
    }
    // The asking side closes once it has read the answer; dropping the connection here
    // first would discard what is still in flight.
    let _ = tokio::time::timeout(SETUP_TIMEOUT, conn.closed()).await;
}

/// The certificate the other end of `conn` presented.
pub fn peer_certificate(conn: &Connection) -> Option<CertificateDer<'static>> {
    conn.peer_identity()
        .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.first().cloned())
}

/// The fingerprint of the certificate the other end of `conn` presented.
pub fn peer_fingerprint(conn: &Connection) -> Option<crate::tls::Fingerprint> {
    peer_certificate(conn).map(|c| crate::tls::Fingerprint::of(&c))
}

async fn answer_test(
    conn: &Connection,
    server: &BenchServer,
    spec: &TestSpec,
    client: Option<crate::tls::Fingerprint>,
    send: &mut SendStream,
) -> Result<(), BenchError> {
    let mut cookie = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut cookie)
        .map_err(|_| BenchError::Setup("no random numbers for a cookie".into()))?;
    let roles = roles(spec.direction, usize::from(spec.streams));
    // The asking side sends on the streams it asked to send on; the rest are ours to send.
    let ours: Vec<bool> = roles.iter().map(|asker_sends| !asker_sends).collect();
    let data_port = match spec.protocol {
        BenchProtocol::Quic => server.quic_port(),
        BenchProtocol::Tcp | BenchProtocol::Udp => server.data_port,
    };
    if spec.protocol == BenchProtocol::Tcp {
        *lock(&server.pending) = Some(Pending {
            cookie,
            slots: (0..roles.len()).map(|_| None).collect(),
        });
    }
    write_control(
        send,
        &Control::Accept {
            data_port,
            cookie: cookie_text(&cookie),
        },
    )
    .await?;
    let figures = match spec.protocol {
        BenchProtocol::Udp => {
            let (sock, spec) = (server.udp.clone(), spec.clone());
            relay(
                move |report| udp::serve_test(&sock, &spec, cookie, &roles, &report),
                |_| {},
                conn.clone(),
            )
            .await
        }
        BenchProtocol::Quic => {
            // Mutual TLS: every client that got this far presented a certificate.
            let client = client
                .ok_or_else(|| BenchError::Setup("the client presented no certificate".into()))?;
            let (sock, identity, spec) =
                (server.quic.clone(), server.identity.clone(), spec.clone());
            relay(
                move |report| {
                    quic::serve_test(&sock, &identity, client, &spec, cookie, &ours, &report)
                },
                |_| {},
                conn.clone(),
            )
            .await
            .map_err(BenchError::Setup)?
        }
        BenchProtocol::Tcp => {
            let streams = tcp_streams(server).await?;
            run_streams(streams, &ours, spec, |_| {}, conn.clone()).await
        }
    };
    write_control(send, &Control::Results { streams: figures }).await
}

/// Waits for the TCP data connections of the pending test.
async fn tcp_streams(server: &BenchServer) -> Result<Vec<TcpStream>, BenchError> {
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let notified = server.arrived.notified();
        {
            let mut pending = lock(&server.pending);
            if let Some(p) = pending.as_mut() {
                if p.slots.iter().all(Option::is_some) {
                    return Ok(p.slots.drain(..).flatten().collect());
                }
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Err(BenchError::Setup(
                "data connections did not arrive in 10 s".into(),
            ));
        }
    }
}

/// Per data connection: does the asking side send on it? Bidirectional tests use `n`
/// connections each way.
fn roles(direction: Direction, n: usize) -> Vec<bool> {
    match direction {
        Direction::Forward => vec![true; n],
        Direction::Reverse => vec![false; n],
        Direction::Bidirectional => (0..2 * n).map(|i| i < n).collect(),
    }
}

async fn refuse(send: &mut SendStream, reason: &str) {
    let _ = write_control(
        send,
        &Control::Refuse {
            reason: reason.to_owned(),
        },
    )
    .await;
    let _ = send.finish();
}

async fn write_control(send: &mut SendStream, msg: &Control) -> Result<(), BenchError> {
    let mut buf = Vec::new();
    msg.encode(&mut buf);
    send.write_all(&buf)
        .await
        .map_err(|e| BenchError::Control(e.to_string()))
}

async fn read_control(recv: &mut RecvStream) -> Result<Control, BenchError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match Control::decode(&buf) {
            Ok((msg, _)) => return Ok(msg),
            Err(WireError::Truncated { .. }) => {}
            Err(e) => return Err(BenchError::Control(e.to_string())),
        }
        match recv.read(&mut chunk).await {
            Ok(Some(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(None) => {
                return Err(BenchError::Control(
                    "the peer closed the control stream".into(),
                ))
            }
            Err(e) => return Err(BenchError::Control(e.to_string())),
        }
    }
}

/// Runs every stream on its own thread; `sends[i]` says whether this side sends on stream
/// `i`. `on_interval` sees each interval as it closes.
async fn run_streams(
    streams: Vec<TcpStream>,
    sends: &[bool],
    spec: &TestSpec,
    on_interval: impl FnMut((u8, bool, IntervalBytes)),
    control: Connection,
) -> Vec<StreamFigures> {
    if let Some(w) = spec.window_bytes {
        for s in &streams {
            let s = socket2::SockRef::from(s);
            let _ = s.set_send_buffer_size(w as usize);
            let _ = s.set_recv_buffer_size(w as usize);
        }
    }
    let start = now_unix_ns();
    let sends = sends.to_vec();
    let spec = spec.clone();
    // The receivers of this process share MAX_READ_MARK: on a path fast enough to reach it,
    // one receiver gains from fewer wake-ups, while several already keep the CPUs busy.
    let read_mark = MAX_READ_MARK / sends.iter().filter(|s| !**s).count().max(1);
    relay(
        move |tx| {
            let threads: Vec<_> = streams
                .into_iter()
                .zip(sends)
                .enumerate()
                .map(|(i, (s, sender))| {
                    let (spec, tx) = (spec.clone(), tx.clone());
                    std::thread::spawn(move || {
                        if sender {
                            send_stream(s, i as u8, &spec, start, &tx)
                        } else {
                            receive_stream(s, i as u8, &spec, start, read_mark, &tx)
                        }
                    })
                })
                .collect();
            threads.into_iter().filter_map(|t| t.join().ok()).collect()
        },
        on_interval,
        control,
    )
    .await
}

/// Runs blocking `work` on the blocking pool and hands the intervals it reports to
/// `on_interval` as they come, until it returns. If `control` closes meanwhile (the peer is
/// gone), `work` is told to stop.
async fn relay<R: Send + 'static>(
    work: impl FnOnce(Report) -> R + Send + 'static,
    mut on_interval: impl FnMut((u8, bool, IntervalBytes)),
    control: Connection,
) -> R {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let abort = Arc::new(AtomicBool::new(false));
    let report = Report {
        tx,
        abort: abort.clone(),
    };
    let worker = tokio::task::spawn_blocking(move || work(report));
    let mut closed = std::pin::pin!(control.closed());
    loop {
        tokio::select! {
            // Every sender is gone once `work` has returned.
            iv = rx.recv() => match iv {
                Some(iv) => on_interval(iv),
                None => break,
            },
            reason = &mut closed, if !abort.load(Ordering::Relaxed) => {
                tracing::warn!(%reason, "bench: lost the peer; stopping the streams");
                abort.store(true, Ordering::Relaxed);
            }
        }
    }
    worker.await.expect("bench worker")
}

fn ms(d: u64) -> u64 {
    d * 1_000_000
}

fn send_stream(
    mut s: TcpStream,
    stream: u8,
    spec: &TestSpec,
    start: u64,
    report: &Report,
) -> StreamFigures {
    let _ = s.set_write_timeout(Some(WAKE));
    if let Some(cc) = &spec.congestion {
        if let Err(e) = set_congestion(&s, cc) {
            tracing::warn!(congestion = %cc, error = %e, "congestion control not set");
        }
    }
    let buf = vec![0u8; spec.write_bytes as usize];
    let mut meter = Meter::for_spec(spec, start);
    let end = start + ms(spec.duration_ms);
    let counts = |sent: u64, tcp: Option<TcpEnd>| Counts {
        bytes: sent,
        retransmits: tcp.map_or(0, |t| t.retransmits),
        ..Counts::default()
    };
    let mut sent = 0u64;
    let pacer = spec
        .rate_per_stream()
        .map(|rate| Pacer::new(now_unix_ns(), rate));
    loop {
        let now = now_unix_ns();
        if meter.is_due(now) {
            report.interval(
                stream,
                true,
                meter.handle_sample(now, counts(sent, tcp_end(&s))),
            );
        }
        if now >= end || report.aborted() {
            break;
        }
        let n = match &pacer {
            None => buf.len(),
            Some(p) => match paced_write(p, now, sent, buf.len()) {
                Ok(n) => n,
                Err(wait) => {
                    std::thread::sleep(wait.min(WAKE));
                    continue;
                }
            },
        };
        match s.write(&buf[..n]) {
            Ok(n) => sent += n as u64,
            Err(e) if transient(&e) => {}
            Err(_) => break,
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let tcp = tcp_end(&s);
    report.interval(stream, true, meter.finish(now_unix_ns(), counts(sent, tcp)));
    // Wait for the receiver to close, so the connection is not reset under data in flight.
    let _ = s.set_read_timeout(Some(DRAIN_TIMEOUT));
    let _ = s.read(&mut [0u8; 1]);
    StreamFigures {
        stream,
        sender: true,
        intervals: meter.into_records(),
        tcp,
        quic: None,
    }
}

fn receive_stream(
    mut s: TcpStream,
    stream: u8,
    spec: &TestSpec,
    start: u64,
    read_mark: usize,
    report: &Report,
) -> StreamFigures {
    let _ = s.set_read_timeout(Some(WAKE));
    let mut buf = vec![0u8; (spec.write_bytes as usize).max(128 * 1024)];
    let mut meter = Meter::for_spec(spec, start);
    let give_up = start + ms(spec.duration_ms) + DRAIN_TIMEOUT.as_nanos() as u64;
    let counts = |received: u64| Counts {
        bytes: received,
        ..Counts::default()
    };
    let mut received = 0u64;
    let mut mark = ReadMark::new(now_unix_ns(), buf.len().min(read_mark));
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n as u64,
            Err(e) if transient(&e) => {}
            Err(_) => break,
        }
        let now = now_unix_ns();
        if let Some(bytes) = mark.handle_read(now, received) {
            if let Err(e) = set_read_mark(&s, bytes) {
                tracing::debug!(error = %e, "SO_RCVLOWAT not set");
            }
        }
        if meter.is_due(now) {
            report.interval(stream, false, meter.handle_sample(now, counts(received)));
        }
        if now >= give_up || report.aborted() {
            break;
        }
    }
    report.interval(stream, false, meter.finish(now_unix_ns(), counts(received)));
    StreamFigures {
        stream,
        sender: false,
        intervals: meter.into_records(),
        tcp: None,
        quic: None,
    }
}

/// Under a cap: the bytes of a write of at most `max` to make at `now`, or how long to wait
/// until a millisecond's worth (or `max`) is due.
pub(crate) fn paced_write(p: &Pacer, now: u64, sent: u64, max: usize) -> Result<usize, Duration> {
    let want = p.quantum().min(max as u64);
    match p.allowance(now, sent) {
        a if a >= want => Ok(a.min(max as u64) as usize),
        _ => Err(Duration::from_nanos(
            p.due_at(sent + want).saturating_sub(now).max(1),
        )),
    }
}

/// A blocking socket call that only timed out or was interrupted: go round again.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

fn set_congestion(s: &TcpStream, name: &str) -> std::io::Result<()> {
    // SAFETY: setsockopt reads `name.len()` bytes from a live buffer.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// SO_RCVLOWAT: the bytes queued before a blocked read wakes (it still returns less at its
/// timeout, at the end of the stream, or when the receive window is nearly closed).
fn set_read_mark(s: &TcpStream, bytes: usize) -> std::io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads one c_int from a live local.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// TCP_INFO of a sending socket.
fn tcp_end(s: &TcpStream) -> Option<TcpEnd> {
    // SAFETY: getsockopt writes at most `len` bytes into a zeroed tcp_info we own.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| TcpEnd {
        retransmits: u64::from(info.tcpi_total_retrans),
        snd_cwnd_bytes: u64::from(info.tcpi_snd_cwnd) * u64::from(info.tcpi_snd_mss),
        srtt_us: u64::from(info.tcpi_rtt),
        delivery_rate_bytes_per_second: info.tcpi_delivery_rate,
        rwnd_limited_us: info.tcpi_rwnd_limited,
        sndbuf_limited_us: info.tcpi_sndbuf_limited,
        busy_us: info.tcpi_busy_time,
    })
}

/// Opens the control connection to `peer` (ALPN `xcbench-bench/1`) with this agent's
/// certificate, trusting the peer by its pinned fingerprint or through `ca`. A peer that
/// vanishes mid-test is noticed within 5 s (keep-alives every second; the idle timeout is
/// the smaller of the two sides'), and the test's streams stop. The endpoint must outlive
/// the connection.
pub async fn connect_control(
    identity: &crate::tls::TlsIdentity,
    ca: Option<Arc<rustls::RootCertStore>>,
    peer: &crate::config::PeerConfig,
) -> Result<(quinn::Endpoint, Connection), BenchError> {
    use crate::tls;
    let crypto = tls::client_crypto_for(identity, peer.fingerprint, ca, false, tls::ALPN_BENCH)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let bind = crate::net::any_local_for(peer.quic_address);
    let endpoint = quinn::Endpoint::client(bind).map_err(|e| BenchError::Connect(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(crypto);
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(1)));
    transport.max_idle_timeout(Some(
        Duration::from_secs(5)
            .try_into()
            .expect("5 s is a valid idle timeout"),
    ));
    client.transport_config(Arc::new(transport));
    let addr = peer.quic_address;
    let connecting = endpoint
        .connect_with(client, addr, &tls::server_name(peer.identity.id.as_str()))
        .map_err(|e| BenchError::Connect(format!("{addr}: {e}")))?;
    let conn = tokio::time::timeout(SETUP_TIMEOUT, connecting)
        .await
        .map_err(|_| BenchError::Connect(format!("{addr}: no answer in 10 s")))?
        .map_err(|e| BenchError::Connect(format!("{addr}: {e}")))?;
    Ok((endpoint, conn))
}

/// One direction of a test: the sending side's streams and the receiving side's, paired
/// by stream index.
pub struct Flow<'a> {
    /// The asking agent sent.
    pub forward: bool,
    pub sender: Vec<&'a StreamFigures>,
    pub receiver: Vec<&'a StreamFigures>,
}

/// What the asking side learned.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub spec: TestSpec,
    /// Data connections: (local, remote) addresses, by stream index.
    pub connections: Vec<Addresses>,
    /// This side's figures per stream.
    pub local: Vec<StreamFigures>,
    /// The answering side's figures per stream.
    pub remote: Vec<StreamFigures>,
    /// When the data started (Unix ns).
    pub started_unix_ns: u64,
}

impl BenchReport {
    /// The test's directions: forward, reverse, or both.
    pub fn flows(&self) -> Vec<Flow<'_>> {
        fn pick(v: &[StreamFigures], sender: bool) -> Vec<&StreamFigures> {
            v.iter().filter(|s| s.sender == sender).collect()
        }
        // Stream i's sending side pairs with stream i's receiving side at the other end.
        let forward = Flow {
            forward: true,
            sender: pick(&self.local, true),
            receiver: pick(&self.remote, false),
        };
        let reverse = Flow {
            forward: false,
            sender: pick(&self.remote, true),
            receiver: pick(&self.local, false),
        };
        match self.spec.direction {
            Direction::Forward => vec![forward],
            Direction::Reverse => vec![reverse],
            Direction::Bidirectional => vec![forward, reverse],
        }
    }
}

/// Asks the peer behind `control` for a test, runs this side's streams and collects both
/// sides' figures. `data_ip` is where the peer's data port is; `identity` is this agent's
/// certificate (QUIC data connections present it). `on_interval` sees this side's
/// intervals as they close: (stream, this side sends, figures). A QUIC test without
/// `window_bytes` gets windows sized from the control connection's RTT.
pub async fn run(
    control: Connection,
    data_ip: std::net::IpAddr,
    mut spec: TestSpec,
    identity: &crate::tls::TlsIdentity,
    on_interval: impl FnMut((u8, bool, IntervalBytes)),
) -> Result<BenchReport, BenchError> {
    if spec.protocol == BenchProtocol::Quic && spec.window_bytes.is_none() {
        spec.window_bytes = Some(quic::window_for(control.rtt()));
    }
    let (mut send, mut recv) = control
        .open_bi()
        .await
        .map_err(|e| BenchError::Control(e.to_string()))?;
    write_control(&mut send, &Control::Request(spec.clone())).await?;
    let (port, cookie) = match read_control(&mut recv).await? {
        Control::Accept { data_port, cookie } => (
            data_port,
            parse_cookie(&cookie)
                .ok_or_else(|| BenchError::Control(format!("cookie {cookie:?}")))?,
        ),
        Control::Refuse { reason } => return Err(BenchError::Refused(reason)),
        other => {
            return Err(BenchError::Control(format!(
                "expected accept, got {other:?}"
            )))
        }
    };
    let addr = SocketAddr::new(data_ip, port);
    let roles = roles(spec.direction, usize::from(spec.streams));
    let data_error = |source| BenchError::Data { addr, source };
    let started_unix_ns = now_unix_ns();
    let (local, connections) = match spec.protocol {
        BenchProtocol::Udp => {
            let (s2, r2) = (spec.clone(), roles.clone());
            relay(
                move |report| udp::run_client(addr, &s2, cookie, &r2, &report),
                on_interval,
                control.clone(),
            )
            .await
            .map_err(data_error)?
        }
        BenchProtocol::Quic => {
            let server = peer_fingerprint(&control)
                .ok_or_else(|| BenchError::Control("the peer presented no certificate".into()))?;
            let (s2, r2, id) = (spec.clone(), roles.clone(), identity.clone());
            relay(
                move |report| quic::run_client(addr, &id, server, &s2, cookie, &r2, &report),
                on_interval,
                control.clone(),
            )
            .await
            .map_err(data_error)?
        }
        BenchProtocol::Tcp => {
            let mut streams = Vec::with_capacity(roles.len());
            let mut connections = Vec::with_capacity(roles.len());
            for i in 0..roles.len() {
                let s = connect_data(addr, &spec).map_err(data_error)?;
                let mut hello = Vec::with_capacity(HELLO_LEN);
                Hello {
                    stream: i as u8,
                    cookie,
                }
                .encode(&mut hello);
                (&s).write_all(&hello).map_err(data_error)?;
                connections.push((s.local_addr().unwrap_or(addr), addr));
                streams.push(s);
            }
            let local = run_streams(streams, &roles, &spec, on_interval, control.clone()).await;
            (local, connections)
        }
    };
    finish_exchange(
        control,
        send,
        recv,
        spec,
        connections,
        local,
        started_unix_ns,
    )
    .await
}

/// Both sides' figures: ours go out, the peer's come back.
async fn finish_exchange(
    control: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    spec: TestSpec,
    connections: Vec<Addresses>,
    local: Vec<StreamFigures>,
    started_unix_ns: u64,
) -> Result<BenchReport, BenchError> {
    if let Some(reason) = control.close_reason() {
        return Err(BenchError::Control(format!(
            "lost the peer during the test: {reason}"
        )));
    }
    write_control(
        &mut send,
        &Control::Results {
            streams: local.clone(),
        },
    )
    .await?;
    let _ = send.finish();
    let remote =
        match tokio::time::timeout(SETUP_TIMEOUT + DRAIN_TIMEOUT, read_control(&mut recv)).await {
            Ok(Ok(Control::Results { streams })) => streams,
            Ok(Ok(other)) => {
                return Err(BenchError::Control(format!(
                    "expected results, got {other:?}"
                )))
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(BenchError::Control("no results from the peer".into())),
        };
    control.close(VarInt::from_u32(0), b"done");
    Ok(BenchReport {
        spec,
        connections,
        local,
        remote,
        started_unix_ns,
    })
}

fn connect_data(addr: SocketAddr, spec: &TestSpec) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if let Some(w) = spec.window_bytes {
        socket.set_send_buffer_size(w as usize)?;
        socket.set_recv_buffer_size(w as usize)?;
    }
    socket.connect_timeout(&addr.into(), SETUP_TIMEOUT)?;
    Ok(socket.into())
}

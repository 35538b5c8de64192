//! UDP throughput tests: paced datagrams at the requested rate, each with a [`DataHeader`]
//! (stream, sequence, send time, the test's cookie), and receivers that count delivered
//! bytes, datagrams missing from the sequence, late (out-of-order) ones and RFC 3550 jitter.
//!
//! The answering agent reads every stream on its one data socket (the TCP data port's
//! number, over UDP) and ignores datagrams without the cookie. For streams it sends on, it
//! learns where to send from the asking side's hellos, which the asking side repeats every
//! 100 ms until data arrives (so a lost hello only delays, and NAT on the way is fine).
//! Pacing ([`Sending`]): a sender keeps the bytes it has sent at `elapsed x rate`, sleeping
//! between bursts of at most [`MAX_BURST`] datagrams, handed over with UDP GSO (or one
//! `sendmmsg` call where the kernel refuses GSO). Datagrams of a burst share one send time,
//! so jitter on a slow link includes the burst's serialization. Send and receive times are
//! each host's monotonic clock: jitter only takes differences of transit times, in which the
//! offset between the two clocks cancels and which no wall-clock step can bend.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Progress;
use crate::net::clock::now_mono_ns;
use crate::net::lock;
use crate::probe::throughput::{Addresses, Counts, Datagrams, Meter, Sending, Step, Test};
use crate::wire::throughput::{DataHeader, StreamFigures, DATA_HEADER_LEN, HELLO_SEQ};

/// Datagrams sent back to back at most before the pacer looks at the clock again.
pub const MAX_BURST: usize = 64;
/// Receivers keep counting this long after the planned end (data still in flight).
pub const DRAIN: Duration = Duration::from_secs(1);
/// Socket buffers asked for (the kernel caps them at net.core.[rw]mem_max).
const SOCKET_BUFFER: usize = 8 << 20;

/// Makes a UDP socket for bulk data: large buffers.
pub fn data_socket(bind: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(bind),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.bind(&bind.into())?;
    Ok(s.into())
}

/// Sends stream `stream` at its share of the rate until the planned end; to `dest`, or on
/// a connected socket when `None`.
pub fn send(
    sock: &UdpSocket,
    dest: Option<SocketAddr>,
    stream: u8,
    cookie: [u8; 16],
    test: &Test,
    start: u64,
    progress: &Progress,
) -> StreamFigures {
    let size = test.write_bytes as usize;
    // One buffer per datagram of a burst, handed to the kernel at once.
    let mut block = vec![0u8; size * MAX_BURST];
    let dest = dest.map(socket2::SockAddr::from);
    // UDP GSO: one send hands the kernel up to 64 KB of equal datagrams, segmented once in
    // the stack; off when the kernel refuses it (sendmmsg instead).
    let mut gso = size * 2 <= GSO_MAX_BYTES;
    let rate = test.rate_per_stream().unwrap_or(1e6);
    let end = start + test.duration_ns();
    let mut sending = Sending::new(
        Meter::for_test(test, start),
        end,
        Some(rate),
        now_mono_ns(),
        size,
        block.len(),
    );
    let (mut seq, mut sent) = (0u64, 0u64);
    let counts = |seq: u64, sent: u64| Counts {
        bytes: sent,
        packets: seq,
        ..Counts::default()
    };
    loop {
        let now = now_mono_ns();
        match sending.poll(now, sent, progress.aborted()) {
            Step::Sample => {
                let closed = sending.sample(now, counts(seq, sent));
                progress.interval(stream, true, closed);
            }
            Step::Done => break,
            Step::Wait(ns) => std::thread::sleep(Duration::from_nanos(ns.min(1_000_000))),
            Step::Write(bytes) => {
                let n = bytes / size;
                for (k, chunk) in block.chunks_mut(size).take(n).enumerate() {
                    DataHeader {
                        stream,
                        seq: seq + k as u64,
                        sent_ns: now,
                        cookie,
                    }
                    .write(chunk);
                }
                // Fewer than `n` go out when the socket buffer is full or the peer's port
                // answered with an ICMP error; the rest are tried again on the next round.
                let done = if gso {
                    match send_gso(sock, dest.as_ref(), &block, size, n) {
                        Ok(d) => d,
                        Err(GsoError::Unsupported) => {
                            gso = false;
                            send_batch(sock, dest.as_ref(), &block, size, n)
                        }
                        Err(GsoError::Busy(d)) => d,
                    }
                } else {
                    send_batch(sock, dest.as_ref(), &block, size, n)
                };
                seq += done as u64;
                sent += (done * size) as u64;
            }
        }
    }
    progress.interval(
        stream,
        true,
        sending.finish(now_mono_ns(), counts(seq, sent)),
    );
    StreamFigures {
        stream,
        sender: true,
        intervals: sending.into_records(),
        tcp: None,
        quic: None,
    }
}

/// Largest UDP GSO send (the kernel's limit is one 64 KiB IP payload).
const GSO_MAX_BYTES: usize = 65_000;
/// `UDP_SEGMENT` (linux/udp.h): the segment size for UDP GSO, as a cmsg at SOL_UDP.
const UDP_SEGMENT: libc::c_int = 103;

enum GsoError {
    /// The kernel or device does not do UDP GSO here.
    Unsupported,
    /// Stopped after this many datagrams (full buffer, ICMP error).
    Busy(usize),
}

/// Sends the first `n` datagrams of `block` in GSO sends of up to 64 KB each.
fn send_gso(
    sock: &UdpSocket,
    dest: Option<&socket2::SockAddr>,
    block: &[u8],
    size: usize,
    n: usize,
) -> Result<usize, GsoError> {
    use std::os::fd::AsRawFd;
    let per_send = (GSO_MAX_BYTES / size).max(1);
    let mut done = 0;
    while done < n {
        let k = (n - done).min(per_send);
        let data = &block[done * size..(done + k) * size];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // u64s keep the control buffer aligned for cmsghdr.
        let mut control = [0u64; 8];
        // SAFETY: an all-zero msghdr is a valid empty header; the fields set below point at
        // `iov`, `control` and `dest`, which outlive the call; CMSG_* stay inside `control`
        // (CMSG_SPACE(2) is 24 bytes of its 64).
        let r = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            if let Some(a) = dest {
                msg.msg_name = a.as_ptr() as *mut libc::c_void;
                msg.msg_namelen = a.len();
            }
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(2) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(2) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), size as u16);
            libc::sendmsg(sock.as_raw_fd(), &msg, 0)
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                    if done == 0 =>
                {
                    Err(GsoError::Unsupported)
                }
                _ => Err(GsoError::Busy(done)),
            };
        }
        done += k;
    }
    Ok(done)
}

/// Sends the first `n` datagrams of `block` (each `size` bytes) with one sendmmsg call, to
/// `dest` or on the connected socket; returns how many the kernel took.
fn send_batch(
    sock: &UdpSocket,
    dest: Option<&socket2::SockAddr>,
    block: &[u8],
    size: usize,
    n: usize,
) -> usize {
    use std::os::fd::AsRawFd;
    let mut iovs: Vec<libc::iovec> = block
        .chunks(size)
        .take(n)
        .map(|c| libc::iovec {
            iov_base: c.as_ptr() as *mut libc::c_void,
            iov_len: c.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: an all-zero mmsghdr is a valid empty message header.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            if let Some(a) = dest {
                m.msg_hdr.msg_name = a.as_ptr() as *mut libc::c_void;
                m.msg_hdr.msg_namelen = a.len();
            }
            m
        })
        .collect();
    // SAFETY: every header points at an iovec and address that outlive the call, and each
    // iovec at `size` bytes inside `block`.
    let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as u32, 0) };
    if r < 0 {
        0
    } else {
        r as usize
    }
}

/// A receiving stream: its interval meter and datagram accounting.
struct Received {
    meter: Meter,
    datagrams: Datagrams,
}

impl Received {
    fn new(test: &Test, start: u64) -> Received {
        Received {
            meter: Meter::for_test(test, start),
            datagrams: Datagrams::default(),
        }
    }

    fn handle(&mut self, h: &DataHeader, len: usize, now: u64) {
        self.datagrams.handle(h.seq, h.sent_ns, len, now);
    }

    fn sample(&mut self, stream: u8, now: u64, progress: &Progress) {
        if let Some(due) = self.meter.poll_timeout().filter(|due| now >= *due) {
            // Woken by a read timeout after a silence: nothing arrived since the boundary,
            // so the interval ends there, not at the wake-up.
            let at = if self.datagrams.last_rx_ns <= due {
                due
            } else {
                now
            };
            progress.interval(
                stream,
                false,
                self.meter.handle_sample(at, self.datagrams.counts),
            );
        }
    }

    fn finish(mut self, stream: u8, progress: &Progress) -> StreamFigures {
        let d = &self.datagrams;
        progress.interval(stream, false, self.meter.finish(d.last_rx_ns, d.counts));
        StreamFigures {
            stream,
            sender: false,
            intervals: self.meter.into_records(),
            tcp: None,
            quic: None,
        }
    }
}

/// The answering side of a UDP test on its data socket. `asker_sends[i]` says who sends on
/// stream `i`. Returns this side's figures per stream, in stream order.
pub fn serve_test(
    sock: &Arc<UdpSocket>,
    test: &Test,
    cookie: [u8; 16],
    asker_sends: &[bool],
    progress: &Progress,
) -> Vec<StreamFigures> {
    let start = now_mono_ns();
    let end = start + test.duration_ns();
    let give_up = end + DRAIN.as_nanos() as u64;
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut receivers: HashMap<u8, Received> = asker_sends
        .iter()
        .enumerate()
        .filter(|(_, a)| **a)
        .map(|(i, _)| (i as u8, Received::new(test, start)))
        .collect();
    let senders: Arc<Mutex<Vec<std::thread::JoinHandle<StreamFigures>>>> = Arc::default();
    let mut started: Vec<bool> = vec![false; asker_sends.len()];
    let mut buf = vec![0u8; 65_536];
    loop {
        let now = now_mono_ns();
        if now >= give_up || (now >= end && receivers.is_empty()) || progress.aborted() {
            break;
        }
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let now = now_mono_ns();
            if let Ok(h) = DataHeader::decode(&buf[..n]) {
                let i = usize::from(h.stream);
                if h.cookie != cookie || i >= asker_sends.len() {
                    continue;
                }
                if h.seq == HELLO_SEQ {
                    // The asking side receives on this stream: start sending to it.
                    if !asker_sends[i] && !started[i] && now < end {
                        started[i] = true;
                        let (sock, test, progress) = (sock.clone(), test.clone(), progress.clone());
                        lock(&senders).push(std::thread::spawn(move || {
                            send(&sock, Some(from), h.stream, cookie, &test, start, &progress)
                        }));
                    }
                } else if let Some(r) = receivers.get_mut(&h.stream) {
                    r.handle(&h, n, now);
                }
            }
        }
        let now = now_mono_ns();
        for (stream, r) in receivers.iter_mut() {
            r.sample(*stream, now, progress);
        }
    }
    let mut figures: Vec<StreamFigures> = receivers
        .into_iter()
        .map(|(stream, r)| r.finish(stream, progress))
        .collect();
    let handles = std::mem::take(&mut *lock(&senders));
    figures.extend(handles.into_iter().filter_map(|h| h.join().ok()));
    figures.sort_by_key(|f| f.stream);
    figures
}

/// The asking side: one connected socket per stream to `addr`; sends on the streams where
/// `asker_sends[i]`, receives (after hellos) on the others. Returns its figures in stream
/// order and each socket's local address.
pub fn run_client(
    addr: SocketAddr,
    test: &Test,
    cookie: [u8; 16],
    asker_sends: &[bool],
    progress: &Progress,
) -> std::io::Result<(Vec<StreamFigures>, Vec<Addresses>)> {
    let bind = crate::net::any_local_for(addr);
    let mut sockets = Vec::new();
    for _ in asker_sends {
        let s = data_socket(bind)?;
        s.connect(addr)?;
        sockets.push(s);
    }
    let connections = sockets
        .iter()
        .map(|s| (s.local_addr().unwrap_or(bind), addr))
        .collect();
    let start = now_mono_ns();
    let threads: Vec<_> = sockets
        .into_iter()
        .zip(asker_sends)
        .enumerate()
        .map(|(i, (s, &sends))| {
            let (test, progress) = (test.clone(), progress.clone());
            std::thread::spawn(move || {
                if sends {
                    send(&s, None, i as u8, cookie, &test, start, &progress)
                } else {
                    receive_one(&s, i as u8, cookie, &test, start, &progress)
                }
            })
        })
        .collect();
    let mut figures: Vec<StreamFigures> =
        threads.into_iter().filter_map(|t| t.join().ok()).collect();
    figures.sort_by_key(|f| f.stream);
    Ok((figures, connections))
}

/// One receiving stream on a connected socket, announcing itself until data arrives.
fn receive_one(
    sock: &UdpSocket,
    stream: u8,
    cookie: [u8; 16],
    test: &Test,
    start: u64,
    progress: &Progress,
) -> StreamFigures {
    let end = start + test.duration_ns();
    let give_up = end + DRAIN.as_nanos() as u64;
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut r = Received::new(test, start);
    let mut hello = vec![0u8; DATA_HEADER_LEN];
    let mut next_hello = 0u64;
    let mut buf = vec![0u8; 65_536];
    loop {
        let now = now_mono_ns();
        if now >= give_up || progress.aborted() {
            break;
        }
        if r.datagrams.counts.packets == 0 && now >= next_hello && now < end {
            DataHeader {
                stream,
                seq: HELLO_SEQ,
                sent_ns: now,
                cookie,
            }
            .write(&mut hello);
            let _ = sock.send(&hello);
            next_hello = now + 100_000_000;
        }
        if let Ok(n) = sock.recv(&mut buf) {
            let now = now_mono_ns();
            if let Ok(h) = DataHeader::decode(&buf[..n]) {
                if h.cookie == cookie && h.stream == stream && h.seq != HELLO_SEQ {
                    r.handle(&h, n, now);
                }
            }
        }
        r.sample(stream, now_mono_ns(), progress);
    }
    r.finish(stream, progress)
}

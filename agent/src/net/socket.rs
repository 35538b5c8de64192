//! Sockets and their options, once each: UDP probe sockets with DSCP marking, kernel receive
//! timestamps (SO_TIMESTAMPNS), the received TTL / hop limit, traffic class (DSCP and ECN)
//! and destination address, read with recvmsg(2) control messages; timestamped reads of TCP streams; TCP_INFO; congestion control and SO_RCVLOWAT
//! for throughput sockets. When the kernel refuses SO_TIMESTAMPNS, or data arrives without a
//! timestamp, the clock is read in user space right after recvmsg and the result says so.
//! Receive times are [`Moment`]s: the kernel stamps the wall clock, mapped to the monotonic
//! clock right after the read ([`super::clock::moment_before`]).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use xcbench_snapshot::TimestampSource;

use super::clock::{correlated, moment_before};
use crate::probe::Moment;

/// Socket buffer size asked for (the kernel caps it at net.core.{r,w}mem_max).
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// A bound probe socket.
pub struct ProbeSocket {
    inner: UdpSocket,
    kernel_timestamps: bool,
}

/// One received datagram's metadata.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// Receive time.
    pub at: Moment,
    pub source: TimestampSource,
    pub ttl: Option<u8>,
    /// The IP header's traffic class octet (DSCP << 2 | ECN), if the kernel said.
    pub tos: Option<u8>,
    /// The address the datagram was sent to (this host's), if the kernel said.
    pub to: Option<IpAddr>,
    /// The datagram was larger than the buffer and cut by the kernel.
    pub truncated: bool,
}

impl ProbeSocket {
    /// Binds a UDP socket with the DSCP (0..=63) on outgoing packets; `timestamps` asks for
    /// kernel receive timestamps or deliberately takes them in user space.
    pub fn bind(
        addr: SocketAddr,
        dscp: u8,
        timestamps: TimestampSource,
    ) -> io::Result<ProbeSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
        let tos = u32::from(dscp) << 2;
        let fd = socket.as_raw_fd();
        if addr.is_ipv4() {
            if tos != 0 {
                socket.set_tos(tos)?;
            }
            setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
            setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, 1)?;
            setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        } else {
            if tos != 0 {
                setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tos as i32)?;
            }
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1)?;
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        }
        let kernel_timestamps = timestamps == TimestampSource::Kernel && enable_rx_timestamps(fd);
        socket.bind(&addr.into())?;
        Ok(ProbeSocket {
            inner: UdpSocket::from_std(socket.into())?,
            kernel_timestamps,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Whether the kernel agreed to timestamp received datagrams.
    pub fn kernel_timestamps(&self) -> bool {
        self.kernel_timestamps
    }

    /// Sets the DSCP (0..=63) of what the socket sends from now on (ECN not-ECT).
    pub fn set_dscp(&self, dscp: u8) -> io::Result<()> {
        let fd = self.inner.as_raw_fd();
        let tos = i32::from(dscp) << 2;
        match self.inner.local_addr()?.is_ipv4() {
            true => setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TOS, tos),
            false => setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tos),
        }
    }

    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.inner.send_to(buf, to).await
    }

    /// As [`ProbeSocket::recv`], polled: one of several sockets can be waited on at once.
    /// Nothing is taken from the socket unless `Ready` is returned.
    pub fn poll_recv(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<Received>> {
        use std::task::Poll;
        let fd = self.inner.as_raw_fd();
        loop {
            match self.inner.poll_recv_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            match self.inner.try_io(Interest::READABLE, || recvmsg(fd, buf)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    /// Receives one datagram into `buf` with its timestamp and TTL.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.inner.as_raw_fd();
        self.inner
            .async_io(Interest::READABLE, || recvmsg(fd, buf))
            .await
    }
}

/// Sets an integer socket option.
pub fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: passes a pointer to a live i32 and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to timestamp what this socket receives (SO_TIMESTAMPNS); works for TCP
/// as well as UDP. False if refused.
pub fn enable_rx_timestamps(fd: i32) -> bool {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).is_ok()
}

/// Reads from a connected stream socket with recvmsg, returning the bytes read and when they
/// arrived: the kernel timestamp of the last segment read if the socket has them enabled
/// ([`enable_rx_timestamps`]), else the clock right after the read. 0 bytes means EOF.
pub async fn read_stream(
    stream: &tokio::net::TcpStream,
    buf: &mut [u8],
) -> io::Result<(usize, Moment, TimestampSource)> {
    let fd = stream.as_raw_fd();
    stream
        .async_io(Interest::READABLE, || recvmsg_raw(fd, buf))
        .await
        .map(|r| (r.len, r.at, r.source))
}

fn recvmsg(fd: i32, buf: &mut [u8]) -> io::Result<Received> {
    let r = recvmsg_raw(fd, buf)?;
    let from = r
        .from
        .ok_or_else(|| io::Error::other("datagram from a non-IP address"))?;
    Ok(Received {
        len: r.len,
        from,
        at: r.at,
        source: r.source,
        ttl: r.ttl,
        tos: r.tos,
        to: r.to,
        truncated: r.truncated,
    })
}

/// Where one datagram's receive time came from (preflight's check that the kernel
/// timestamps).
pub(crate) fn received_source(fd: i32, buf: &mut [u8]) -> io::Result<TimestampSource> {
    recvmsg(fd, buf).map(|r| r.source)
}

/// What recvmsg returned, for datagram and stream sockets alike.
struct RawReceived {
    len: usize,
    from: Option<SocketAddr>,
    at: Moment,
    source: TimestampSource,
    ttl: Option<u8>,
    tos: Option<u8>,
    to: Option<IpAddr>,
    truncated: bool,
}

fn recvmsg_raw(fd: i32, buf: &mut [u8]) -> io::Result<RawReceived> {
    // SAFETY: every pointer handed to recvmsg refers to a live local buffer with its true
    // length; control messages are walked with the libc CMSG macros within msg_controllen.
    unsafe {
        let mut name: libc::sockaddr_storage = zeroed();
        let mut control = [0u64; 32];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 32]>();
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // Both clocks at one instant: a kernel stamp is mapped through this pair.
        let user = correlated();
        let mut kernel_ns = None;
        let (mut ttl, mut tos, mut to) = (None, None, None);
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            match (c.cmsg_level, c.cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let ts: libc::timespec = std::ptr::read_unaligned(data.cast());
                    kernel_ns = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
                (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let v: i32 = std::ptr::read_unaligned(data.cast());
                    ttl = u8::try_from(v).ok();
                }
                // IPv4 hands the TOS octet itself; IPv6 the traffic class as an int.
                (libc::IPPROTO_IP, libc::IP_TOS) => tos = Some(*data),
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
                    let v: i32 = std::ptr::read_unaligned(data.cast());
                    tos = u8::try_from(v).ok();
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                    let addr = u32::from_be(info.ipi_addr.s_addr);
                    to = Some(IpAddr::V4(Ipv4Addr::from(addr)));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                    to = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        // Stream sockets leave the name empty.
        let from = SockAddr::new(name, msg.msg_namelen).as_socket();
        let (at, source) = match kernel_ns {
            Some(ns) => (moment_before(user, ns), TimestampSource::Kernel),
            None => (user, TimestampSource::User),
        };
        Ok(RawReceived {
            len: n as usize,
            from,
            at,
            source,
            ttl,
            tos,
            to,
            truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        })
    }
}

/// What TCP_INFO says about a connection, in the kernel's units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpInfoReading {
    pub srtt_us: u32,
    pub rttvar_us: u32,
    pub min_rtt_us: u32,
    pub pmtu: u32,
    pub snd_cwnd_segments: u32,
    pub snd_mss: u32,
    pub delivery_rate: u64,
    pub total_retrans: u32,
    pub rwnd_limited_us: u64,
    pub sndbuf_limited_us: u64,
    pub busy_us: u64,
}

impl TcpInfoReading {
    /// The probe series' view (TCP_INFO gauges of a probe connection).
    pub fn probe_info(&self) -> xcbench_snapshot::TcpInfo {
        xcbench_snapshot::TcpInfo {
            srtt_ns: u64::from(self.srtt_us) * 1_000,
            rttvar_ns: u64::from(self.rttvar_us) * 1_000,
            min_rtt_ns: u64::from(self.min_rtt_us) * 1_000,
            pmtu_bytes: self.pmtu,
            snd_cwnd_segments: self.snd_cwnd_segments,
            delivery_rate_bytes_per_second: self.delivery_rate,
        }
    }

    /// A throughput sender's view at the end of its test.
    pub fn test_end(&self) -> crate::wire::throughput::TcpEnd {
        crate::wire::throughput::TcpEnd {
            retransmits: u64::from(self.total_retrans),
            snd_cwnd_bytes: u64::from(self.snd_cwnd_segments) * u64::from(self.snd_mss),
            srtt_us: u64::from(self.srtt_us),
            delivery_rate_bytes_per_second: self.delivery_rate,
            rwnd_limited_us: self.rwnd_limited_us,
            sndbuf_limited_us: self.sndbuf_limited_us,
            busy_us: self.busy_us,
        }
    }
}

/// Reads TCP_INFO of a connected socket.
pub fn tcp_info(fd: &impl AsRawFd) -> Option<TcpInfoReading> {
    // SAFETY: an all-zero tcp_info is valid; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `info`, which outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(TcpInfoReading {
        srtt_us: info.tcpi_rtt,
        rttvar_us: info.tcpi_rttvar,
        min_rtt_us: info.tcpi_min_rtt,
        pmtu: info.tcpi_pmtu,
        snd_cwnd_segments: info.tcpi_snd_cwnd,
        snd_mss: info.tcpi_snd_mss,
        delivery_rate: info.tcpi_delivery_rate,
        total_retrans: info.tcpi_total_retrans,
        rwnd_limited_us: info.tcpi_rwnd_limited,
        sndbuf_limited_us: info.tcpi_sndbuf_limited,
        busy_us: info.tcpi_busy_time,
    })
}

/// Sets a TCP socket's congestion control (TCP_CONGESTION), e.g. "cubic" or "bbr".
pub fn set_congestion(fd: &impl AsRawFd, name: &str) -> io::Result<()> {
    // SAFETY: setsockopt reads `name.len()` bytes from a live buffer.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// SO_RCVLOWAT: the bytes queued before a blocked read wakes (it still returns less at its
/// timeout, at the end of the stream, or when the receive window is nearly closed).
pub fn set_read_mark(fd: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    let v = i32::try_from(bytes).unwrap_or(i32::MAX);
    setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVLOWAT, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::clock::now;

    #[tokio::test]
    async fn kernel_timestamp_and_ttl_on_loopback() {
        let k = TimestampSource::Kernel;
        let a = ProbeSocket::bind("127.0.0.1:0".parse().unwrap(), 46, k).unwrap();
        let b = ProbeSocket::bind("127.0.0.1:0".parse().unwrap(), 0, k).unwrap();
        assert!(b.kernel_timestamps());
        let before = now();
        a.send_to(b"hello", b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 3];
        let r = b.recv(&mut buf).await.unwrap();
        let after = now();
        assert_eq!(r.source, TimestampSource::Kernel);
        assert!(
            r.at.wall_ns >= before.wall_ns && r.at.wall_ns <= after.wall_ns,
            "{r:?}"
        );
        // The monotonic reading follows from the wall one; a ms covers the reads' order.
        assert!(r.at.mono_ns + 1_000_000 >= before.mono_ns && r.at.mono_ns <= after.mono_ns);
        assert_eq!(r.from, a.local_addr().unwrap());
        assert_eq!(r.ttl, Some(64));
        // Sent with DSCP 46 (EF), ECN not-ECT: the octet is 46 << 2; to 127.0.0.1.
        assert_eq!(r.tos, Some(46 << 2));
        assert_eq!(r.to, Some("127.0.0.1".parse().unwrap()));
        assert!(r.truncated, "5 bytes into 3");
    }

    #[tokio::test]
    async fn ipv6_loopback_hop_limit() {
        let u = TimestampSource::User;
        let Ok(a) = ProbeSocket::bind("[::1]:0".parse().unwrap(), 10, u) else {
            eprintln!("skipped: no IPv6 loopback on this host");
            return;
        };
        let b = ProbeSocket::bind("[::1]:0".parse().unwrap(), 0, u).unwrap();
        assert!(!b.kernel_timestamps(), "user space asked for");
        let before = now();
        a.send_to(b"x", b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 16];
        let r = b.recv(&mut buf).await.unwrap();
        assert_eq!(r.source, TimestampSource::User);
        assert!(r.at.mono_ns >= before.mono_ns);
        assert_eq!((r.len, r.truncated), (1, false));
        assert!(r.ttl.is_some());
        assert_eq!(r.tos, Some(10 << 2));
        assert_eq!(r.to, Some("::1".parse().unwrap()));
    }

    #[tokio::test]
    async fn tcp_info_of_a_loopback_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (client, (server, _)) = (client.unwrap(), accepted.unwrap());
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = (client, server);
        client.write_all(b"ping").await.unwrap();
        assert!(enable_rx_timestamps(server.as_raw_fd()));
        let mut buf = [0u8; 16];
        let (n, at, source) = read_stream(&server, &mut buf).await.unwrap();
        assert_eq!((n, source), (4, TimestampSource::Kernel));
        assert!(at.wall_ns > 0);
        let info = tcp_info(&client).expect("TCP_INFO on a connected socket");
        assert!(info.pmtu >= 1_280 && info.snd_mss > 0, "{info:?}");
        assert_eq!(info.probe_info().pmtu_bytes, info.pmtu);
        assert_eq!(
            info.test_end().snd_cwnd_bytes,
            u64::from(info.snd_cwnd_segments * info.snd_mss)
        );
        set_congestion(&client, "reno")
            .or_else(|_| set_congestion(&client, "cubic"))
            .unwrap();
        assert!(set_congestion(&client, "no-such-cc").is_err());
        set_read_mark(&server, 4096).unwrap();
    }
}

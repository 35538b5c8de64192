//! The sockets of `xcbench preflight`: whether each port a peer should answer on does, told
//! apart as precisely as the network allows (an answer; a refusal: ICMP port unreachable or
//! a TCP RST, "nothing listening"; an ICMP unreachable from a router or filter; silence),
//! and the path MTU toward the peer (STAMP packets sent with DF, the largest that is
//! reflected, and what the kernel learned from ICMP "fragmentation needed").

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::wire::stamp::{ReflectedPacket, TestPacket, UNAUTH_LEN};
use crate::wire::stamp_auth::{StampKeys, AUTH_LEN};
use crate::wire::{ErrorEstimate, Timestamp};

/// What one port did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PortState {
    /// It answered as the protocol should (a reflected STAMP packet, a TCP handshake, a QUIC
    /// version negotiation), after `rtt_us`.
    Open { rtt_us: u64 },
    /// The host refused it (ICMP port unreachable, or a TCP RST): the path is open but
    /// nothing listens there.
    Closed,
    /// An ICMP unreachable other than "port" came back: a router or filter rejects it.
    Rejected,
    /// No answer at all: a filter drops it silently, or the host is down.
    Silent,
    /// UDP that answers no stranger (throughput data): nothing refused it, which is as far as
    /// the network tells.
    NotRefused,
}

impl PortState {
    /// Whether a rule (or a listener) is missing.
    pub fn blocked(self) -> bool {
        matches!(self, PortState::Rejected | PortState::Silent)
    }
}

/// The monotonic clock (the crate's), as a duration since its epoch.
fn mono() -> Duration {
    Duration::from_nanos(super::clock::now_mono_ns())
}

fn classify(e: &io::Error) -> Option<PortState> {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Some(PortState::Closed),
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EACCES | libc::EPERM) => {
            Some(PortState::Rejected)
        }
        _ => None,
    }
}

fn udp_to(peer: SocketAddr, timeout: Duration) -> io::Result<std::net::UdpSocket> {
    let unspecified: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(unspecified)?;
    s.connect(peer)?;
    s.set_read_timeout(Some(timeout))?;
    Ok(s)
}

/// Sends `datagram` and waits for an answer `accept` takes, `tries` times.
fn exchange(
    peer: SocketAddr,
    timeout: Duration,
    tries: u32,
    datagram: &dyn Fn(u32) -> Vec<u8>,
    accept: &dyn Fn(&[u8], u32) -> bool,
) -> io::Result<PortState> {
    let s = udp_to(peer, timeout)?;
    let mut buf = vec![0u8; 65_536];
    for attempt in 0..tries {
        let sent_at = mono();
        if let Err(e) = s.send(&datagram(attempt)) {
            if let Some(state) = classify(&e) {
                return Ok(state);
            }
            return Err(e);
        }
        let deadline = sent_at + timeout;
        loop {
            let left = deadline.saturating_sub(mono());
            if left.is_zero() {
                break;
            }
            s.set_read_timeout(Some(left))?;
            match s.recv(&mut buf) {
                Ok(n) if accept(&buf[..n], attempt) => {
                    return Ok(PortState::Open {
                        rtt_us: (mono() - sent_at).as_micros() as u64,
                    })
                }
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => match classify(&e) {
                    Some(state) => return Ok(state),
                    None => return Err(e),
                },
            }
        }
    }
    Ok(PortState::Silent)
}

/// A test packet of `len` bytes (at least the mode's own size).
fn stamp_packet(seq: u32, len: usize, keys: Option<&StampKeys>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(len.max(AUTH_LEN));
    let packet = TestPacket {
        seq,
        timestamp: Timestamp::from_unix_ns(super::clock::now_unix_ns()),
        error_estimate: ErrorEstimate::from_error_ns(0, false),
        ssid: 0,
        len: UNAUTH_LEN,
    };
    match keys {
        None => packet.encode(&mut buf),
        Some(keys) => packet.encode_authenticated(keys.current(), &mut buf),
    }
    crate::wire::stamp_tlv::pad(&mut buf, len);
    buf
}

fn reflects(reply: &[u8], seq: u32, keys: Option<&StampKeys>) -> bool {
    let reply = match keys {
        None => ReflectedPacket::decode(reply).ok(),
        Some(keys) => ReflectedPacket::decode_authenticated(reply, keys)
            .ok()
            .map(|a| a.packet),
    };
    reply.is_some_and(|r| r.sender_seq == seq)
}

/// A STAMP test packet reflected by the peer's reflector; in authenticated mode with the
/// peer's keys (a reply that does not authenticate is no reply).
pub fn stamp_port(
    peer: SocketAddr,
    timeout: Duration,
    keys: Option<&StampKeys>,
) -> io::Result<PortState> {
    exchange(
        peer,
        timeout,
        3,
        &|attempt| stamp_packet(0x7072_0000 + attempt, UNAUTH_LEN, keys),
        &|reply, attempt| reflects(reply, 0x7072_0000 + attempt, keys),
    )
}

/// A TCP handshake.
pub fn tcp_port(peer: SocketAddr, timeout: Duration) -> io::Result<PortState> {
    let started = mono();
    match std::net::TcpStream::connect_timeout(&peer, timeout) {
        Ok(_) => Ok(PortState::Open {
            rtt_us: (mono() - started).as_micros() as u64,
        }),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(PortState::Silent),
        Err(e) => classify(&e).ok_or(e),
    }
}

/// A QUIC endpoint: a 1,200-byte long-header packet of a version nobody speaks
/// (0x?a?a?a?a, reserved by RFC 9000 for exactly this) makes a QUIC server answer with
/// Version Negotiation, statelessly and before any TLS; no certificate needed.
pub fn quic_port(peer: SocketAddr, timeout: Duration) -> io::Result<PortState> {
    let datagram = |attempt: u32| {
        let mut p = vec![0u8; 1_200];
        p[0] = 0xc0; // long header, fixed bit
        p[1..5].copy_from_slice(&0x1a2a_3a4a_u32.to_be_bytes());
        p[5] = 8; // destination connection id length
        p[6..14].copy_from_slice(&(0x7072_6566_6c69_6768_u64 ^ u64::from(attempt)).to_be_bytes());
        p[14] = 8; // source connection id length
        p[15..23].copy_from_slice(&0x7863_6265_6e63_6800_u64.to_be_bytes());
        p
    };
    // Version Negotiation: long header form, version 0.
    exchange(peer, timeout, 3, &datagram, &|reply, _| {
        reply.len() >= 7 && reply[0] & 0x80 != 0 && reply[1..5] == [0, 0, 0, 0]
    })
}

/// A UDP port that answers no stranger (throughput data): only a refusal can be seen.
pub fn udp_port(peer: SocketAddr, timeout: Duration) -> io::Result<PortState> {
    let state = exchange(
        peer,
        timeout,
        2,
        &|_| b"xcbench preflight".to_vec(),
        &|_, _| false,
    )?;
    Ok(match state {
        PortState::Silent => PortState::NotRefused,
        other => other,
    })
}

/// The path MTU toward a STAMP reflector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PathMtu {
    /// The largest IP packet (header included) the reflector answered with DF set.
    pub answered: Option<u16>,
    /// What the kernel holds for the route (the interface's, or less from ICMP
    /// "fragmentation needed" / "packet too big").
    pub kernel: u16,
    /// The interface's MTU as the kernel first reported it.
    pub interface: u16,
    /// The largest size tried: the interface's MTU, or STAMP's largest packet (9,000 bytes
    /// of UDP payload) where the interface allows more.
    pub ceiling: u16,
}

/// Searches the largest STAMP packet the reflector answers with DF set, between 576 (IPv4's
/// minimum; 1280 for IPv6) and the route's MTU: each size tried twice, `timeout` each; a size
/// the kernel refuses (EMSGSIZE, after ICMP taught it a smaller MTU) narrows the search to
/// what it learned. In authenticated mode with the peer's `keys`.
pub fn path_mtu(
    peer: SocketAddr,
    timeout: Duration,
    keys: Option<&StampKeys>,
) -> io::Result<PathMtu> {
    let s = udp_to(peer, timeout)?;
    let fd = s.as_raw_fd();
    let (level, discover, mtu_opt, header) = if peer.is_ipv4() {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_MTU,
            28usize,
        )
    } else {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_MTU,
            48usize,
        )
    };
    // IP_PMTUDISC_DO: DF on every packet, never fragment locally.
    super::socket::setsockopt_int(fd, level, discover, libc::IP_PMTUDISC_DO)?;
    let read_mtu = || -> io::Result<u16> {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: v and len are valid for the call.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                level,
                mtu_opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u16::try_from(v).unwrap_or(u16::MAX))
    };
    let interface = read_mtu()?;
    let floor: usize = if peer.is_ipv4() { 576 } else { 1_280 };
    let max = usize::from(interface).min(crate::wire::stamp::MAX_PACKET_LEN + header);
    let mut buf = vec![0u8; 65_536];
    let mut seq = 0x6d74_0000u32;
    let mut answered = |size: usize| -> io::Result<bool> {
        for _ in 0..2 {
            seq += 1;
            match s.send(&stamp_packet(seq, size - header, keys)) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => return Ok(false),
                Err(e) => return Err(e),
            }
            let deadline = mono() + timeout;
            loop {
                let left = deadline.saturating_sub(mono());
                if left.is_zero() {
                    break;
                }
                s.set_read_timeout(Some(left))?;
                match s.recv(&mut buf) {
                    Ok(n) if reflects(&buf[..n], seq, keys) => return Ok(true),
                    Ok(_) => continue,
                    // An ICMP error queued on the socket (e.g. frag-needed): this size failed.
                    Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => return Ok(false),
                    Err(_) => break,
                }
            }
        }
        Ok(false)
    };
    let answered_size = if answered(max)? {
        Some(max)
    } else if !answered(floor)? {
        None
    } else {
        let (mut lo, mut hi) = (floor, max);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if answered(mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    };
    Ok(PathMtu {
        answered: answered_size.map(|v| v as u16),
        kernel: read_mtu()?,
        interface,
        ceiling: max as u16,
    })
}

/// Whether this kernel timestamps received UDP datagrams (SO_TIMESTAMPNS) on a socket: a
/// datagram sent to ourselves on loopback must carry one.
pub fn kernel_rx_timestamps() -> bool {
    let Ok(s) = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)) else {
        return false;
    };
    super::socket::enable_rx_timestamps(s.as_raw_fd())
        && s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .is_ok()
        && s.set_read_timeout(Some(Duration::from_secs(1))).is_ok()
        && s.local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| s.send_to(b"t", &a.into()).is_ok())
        && {
            let mut buf = [0u8; 16];
            super::socket::received_source(s.as_raw_fd(), &mut buf)
                .is_ok_and(|source| source == xcbench_snapshot::TimestampSource::Kernel)
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_udp_and_tcp_port_is_told_from_silence() {
        // A port nothing listens on: loopback answers ICMP port unreachable / RST.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let peer: SocketAddr = ([127, 0, 0, 1], port).into();
        let t = Duration::from_millis(300);
        assert_eq!(stamp_port(peer, t, None).unwrap(), PortState::Closed);
        assert_eq!(quic_port(peer, t).unwrap(), PortState::Closed);
        assert_eq!(udp_port(peer, t).unwrap(), PortState::Closed);
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        drop(tcp);
        assert_eq!(
            tcp_port(([127, 0, 0, 1], port).into(), t).unwrap(),
            PortState::Closed
        );
        // A socket that takes datagrams and never answers: silence.
        let mute = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = mute.local_addr().unwrap();
        assert_eq!(stamp_port(peer, t, None).unwrap(), PortState::Silent);
        assert_eq!(udp_port(peer, t).unwrap(), PortState::NotRefused);
    }

    #[test]
    fn loopback_path_mtu_is_the_interface_s() {
        // A tiny reflector on loopback: answers every STAMP packet with a reflected one.
        let r = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = r.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = r.recv_from(&mut buf) {
                let Ok(t) = TestPacket::decode(&buf[..n]) else {
                    continue;
                };
                let mut out = Vec::new();
                ReflectedPacket {
                    seq: t.seq,
                    timestamp: t.timestamp,
                    error_estimate: t.error_estimate,
                    ssid: t.ssid,
                    receive_timestamp: t.timestamp,
                    sender_seq: t.seq,
                    sender_timestamp: t.timestamp.raw,
                    sender_error_estimate: t.error_estimate,
                    sender_ttl: 64,
                    len: n,
                }
                .encode(&mut out);
                let _ = r.send_to(&out, from);
            }
        });
        assert!(matches!(
            stamp_port(peer, Duration::from_secs(1), None).unwrap(),
            PortState::Open { .. }
        ));
        let m = path_mtu(peer, Duration::from_millis(500), None).unwrap();
        // Loopback's MTU is 65536; STAMP packets stop at 9000 bytes.
        assert_eq!(m.answered, Some(9_028), "{m:?}");
        assert_eq!(m.kernel, m.interface);
    }
}

//! STAMP over UDP: the session-reflector loop, and the session-sender's transport for the
//! [`driver`](super::driver). Each peer is probed on its own sockets and task, so a dead or
//! slow peer never delays probes to the others: one socket per flow (source port), each
//! flow a session of its own taking its turn in the schedule, so ECMP inside the
//! providers' networks may carry the flows over different paths. T1 is read right before each
//! send; T2 and T4 are kernel receive timestamps where the socket has them; T3 is read right
//! before the reflector's send. Replies go only to a datagram's source and are never larger
//! than what arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use xcbench_snapshot::{ProbeKind, Protocol, TimestampSource};

use super::clock::{now_unix_ns, EstimateCache};
use super::driver::{drive, Delivery, Transport};
use super::lock;
use super::socket::ProbeSocket;
use crate::config::PeerConfig;
use crate::probe::{Arrival, Event, Reflector, Sender, SenderConfig};
use crate::record::{Recorder, SeriesKey};
use crate::wire::error_estimate::ClockErrorSource;
use crate::wire::stamp_auth::StampKeys;
use crate::wire::{Timestamp, MAX_PACKET_LEN};

/// Reflects on `socket` until `stop` changes.
pub async fn reflect(
    socket: ProbeSocket,
    state: Arc<Mutex<Reflector>>,
    mut stop: watch::Receiver<bool>,
    clock_error: ClockErrorSource,
) {
    let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
    let mut out = Vec::with_capacity(MAX_PACKET_LEN);
    let mut estimate = EstimateCache::new(clock_error);
    let local_port = socket.local_addr().map_or(0, |a| a.port());
    let mut sending_dscp = 0;
    loop {
        let rx = tokio::select! {
            _ = stop.changed() => return,
            rx = socket.recv(&mut buf) => rx,
        };
        let rx = match rx {
            Ok(rx) => rx,
            Err(e) => {
                tracing::debug!(error = %e, "reflector receive error");
                continue;
            }
        };
        if rx.truncated || rx.len > MAX_PACKET_LEN {
            lock(&state).handle_oversized();
            continue;
        }
        if rx.from.port() == 0 {
            continue;
        }
        let arrival = Arrival {
            at: rx.at,
            from: rx.from,
            to: rx.to,
            local_port,
            ttl: rx.ttl,
            tos: rx.tos,
        };
        let answered =
            lock(&state).handle_datagram(&arrival, estimate.get(), &buf[..rx.len], &mut out);
        let seal = match answered {
            Ok(seal) => seal,
            Err(e) => {
                tracing::debug!(from = %rx.from, error = %e, "not answered");
                continue;
            }
        };
        // RFC 8972 Class of Service: the reply goes with the DSCP the test packet asked for.
        let dscp = seal.dscp.unwrap_or(0);
        if dscp != sending_dscp {
            match socket.set_dscp(dscp) {
                Ok(()) => sending_dscp = dscp,
                Err(e) => tracing::debug!(dscp, error = %e, "reflector DSCP not set"),
            }
        }
        let t3 = Timestamp::from_unix_ns(now_unix_ns());
        seal.stamp_transmit(&mut out, t3);
        if let Err(e) = socket.send_to(&out, rx.from).await {
            tracing::debug!(to = %rx.from, error = %e, "reflector send error");
        }
        if seal.follows_up() {
            lock(&state).transmitted(&seal, t3);
        }
    }
}

/// A peer's sender sessions: one socket (source port) per flow, talking to one peer.
struct Udp {
    sockets: Vec<ProbeSocket>,
    peer: SocketAddr,
    /// The socket polled first next time, so a busy flow cannot starve the others.
    turn: usize,
}

impl Transport for Udp {
    fn initial_source(&self) -> TimestampSource {
        if self.sockets.iter().all(ProbeSocket::kernel_timestamps) {
            TimestampSource::Kernel
        } else {
            TimestampSource::User
        }
    }

    async fn open(&mut self) {}

    fn poll_reopen(&mut self, _: u64) {}

    async fn send(&mut self, flow: usize, bytes: &[u8]) -> bool {
        if let Err(e) = self.sockets[flow].send_to(bytes, self.peer).await {
            tracing::debug!(peer = %self.peer, error = %e, "probe send error");
        }
        true
    }

    async fn next(&mut self, buf: &mut Vec<u8>) -> Delivery {
        buf.resize(MAX_PACKET_LEN + 1, 0);
        let (sockets, start) = (&self.sockets, self.turn);
        let (flow, rx) = std::future::poll_fn(|cx| {
            for k in 0..sockets.len() {
                let i = (start + k) % sockets.len();
                if let std::task::Poll::Ready(rx) = sockets[i].poll_recv(cx, buf) {
                    return std::task::Poll::Ready((i, rx));
                }
            }
            std::task::Poll::Pending
        })
        .await;
        self.turn = (flow + 1) % self.sockets.len();
        match rx {
            Ok(rx) if rx.truncated => Delivery::Stray(Event::Malformed),
            Ok(rx) if rx.from != self.peer => Delivery::Stray(Event::Unmatched),
            Ok(rx) => Delivery::Input {
                probe: flow,
                at: rx.at,
                source: rx.source,
                tos: rx.tos,
                len: rx.len,
            },
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "probe receive error");
                Delivery::Nothing
            }
        }
    }

    fn observe(&mut self, _: &Mutex<Recorder>, _: bool) {}

    fn disconnect(&mut self) {}

    fn close(&mut self) {}
}

/// Probes `peer` until `stop` changes, then waits for outstanding replies (at most the loss
/// timeout) so every probe sent ends up received or lost.
pub async fn run_sender(
    peer: PeerConfig,
    timestamps: TimestampSource,
    clock_error: ClockErrorSource,
    keys: Option<Arc<StampKeys>>,
    recorder: Arc<Mutex<Recorder>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let bind = super::any_local_for(peer.address);
    let flows = u64::from(peer.probe.flows.get());
    let sockets = (0..flows)
        .map(|_| ProbeSocket::bind(bind, peer.probe.dscp.get(), timestamps))
        .collect::<std::io::Result<Vec<_>>>()?;
    let key: SeriesKey = (peer.identity.id.clone(), Protocol::Udp, ProbeKind::Stamp);
    let config = SenderConfig::from(&peer.probe);
    // Spread sessions over the interval so many peers do not all fire at once.
    let stagger = stagger_ns(&peer, config.interval_ns);
    let transport = Udp {
        sockets,
        peer: peer.address,
        turn: 0,
    };
    let ssid = session_ssid(&peer);
    // The flows take turns: each probes every `flows` intervals, one interval after the
    // flow before it, so the peer sees the configured interval in all.
    let per_flow = SenderConfig {
        interval_ns: config.interval_ns * flows,
        ..config
    };
    let make = move |start: u64| {
        (0..flows)
            .map(|f| {
                let session = Sender::new(per_flow, start + stagger + f * config.interval_ns)
                    .authenticated(keys.clone())
                    .with_ssid(ssid);
                (key.clone(), session)
            })
            .collect()
    };
    drive(make, transport, recorder, stop, clock_error).await
}

/// A session's RFC 8972 SSID: nonzero, and another at each start (a reflector behind which
/// a restarted sender reuses its port tells the two sessions apart).
fn session_ssid(peer: &PeerConfig) -> u16 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    peer.identity.id.hash(&mut h);
    now_unix_ns().hash(&mut h);
    (h.finish() as u16).max(1)
}

fn stagger_ns(peer: &PeerConfig, interval_ns: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    peer.identity.id.hash(&mut h);
    peer.address.hash(&mut h);
    h.finish() % interval_ns.max(1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::probe::ReflectorLimits;
    use crate::wire::stamp_tlv::{self, kind, U};
    use crate::wire::{ErrorEstimate, ReflectedPacket, TestPacket};

    /// A reflector task on a loopback port; stopped by sending `true`.
    fn spawn_reflector() -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let k = TimestampSource::Kernel;
        let reflector = ProbeSocket::bind("127.0.0.1:0".parse().unwrap(), 0, k).unwrap();
        let at = reflector.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Reflector::new(ReflectorLimits::default())));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(reflect(
            reflector,
            state,
            stopped,
            ClockErrorSource::Declared(1_000),
        ));
        (at, stop, task)
    }

    /// Through real sockets: a test packet sent with DSCP 10 whose Class of Service TLV asks
    /// for DSCP 46 comes back with DSCP 46 on the wire, the TLV saying 10 was received; the
    /// next reply without the TLV goes with the socket's own DSCP again (0). Location names
    /// both ends as the kernel saw them.
    #[tokio::test]
    async fn class_of_service_sets_the_reply_dscp_and_reports_the_received_one() {
        let k = TimestampSource::Kernel;
        let (at, stop, task) = spawn_reflector();
        let sender = ProbeSocket::bind("127.0.0.1:0".parse().unwrap(), 10, k).unwrap();
        let mut buf = vec![0u8; 2048];
        for (seq, cos) in [(0u32, true), (1, false)] {
            let mut p = Vec::new();
            TestPacket {
                seq,
                timestamp: Timestamp::from_unix_ns(now_unix_ns()),
                error_estimate: ErrorEstimate::from_error_ns(1_000, false),
                ssid: 1,
                len: 44,
            }
            .encode(&mut p);
            if cos {
                stamp_tlv::put(&mut p, U, kind::CLASS_OF_SERVICE, &[46 << 2, 0, 0, 0]);
            }
            stamp_tlv::put(&mut p, U, kind::LOCATION, &[0; 4]);
            sender.send_to(&p, at).await.unwrap();
            let rx = tokio::time::timeout(Duration::from_secs(5), sender.recv(&mut buf))
                .await
                .expect("a reply")
                .unwrap();
            let reply = &buf[..rx.len];
            assert_eq!(ReflectedPacket::decode(reply).unwrap().sender_seq, seq);
            assert_eq!(rx.len, p.len());
            let tlvs: Vec<_> = stamp_tlv::walk(reply, 44).collect();
            let value = |i: usize| match tlvs[i] {
                stamp_tlv::Step::Tlv(t) => (t.flags, reply[t.value()].to_vec()),
                other => panic!("{other:?}"),
            };
            match cos {
                true => {
                    assert_eq!(rx.tos, Some(46 << 2), "the reply went with DSCP 46");
                    let (flags, v) = value(0);
                    assert_eq!(flags, 0);
                    assert_eq!(v, vec![46 << 2, 10 << 4, 0, 0], "DSCP 10 received");
                }
                false => assert_eq!(rx.tos, Some(0), "back to the socket's own"),
            }
            let (flags, v) = value(usize::from(cos));
            assert_eq!(flags, 0);
            let ports = [
                at.port().to_be_bytes(),
                sender.local_addr().unwrap().port().to_be_bytes(),
            ];
            assert_eq!(v, ports.concat());
        }
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    /// A session-sender configured for EF (46) whose socket sends DSCP 10 (as if the path
    /// re-marked EF to 10 on the way out): through the real reflector, every reply says so
    /// (forward re-marked, 10 at the reflector), and the reply, sent with the 46 its Class of
    /// Service TLV asked for, arrives with 46 (reverse kept).
    #[tokio::test]
    async fn the_sender_sees_forward_remarking_and_a_kept_reply_dscp() {
        use crate::probe::Probe;
        let k = TimestampSource::Kernel;
        let (at, stop, task) = spawn_reflector();
        let socket = ProbeSocket::bind("127.0.0.1:0".parse().unwrap(), 10, k).unwrap();
        let config = SenderConfig {
            interval_ns: 1_000_000,
            timeout_ns: 1_000_000_000,
            packet_len: 64,
            dscp: 46,
        };
        let mut sender = Sender::new(config, 0).with_ssid(9);
        let (mut out, mut buf) = (Vec::new(), vec![0u8; 2048]);
        let est = ErrorEstimate::from_error_ns(1_000, false);
        let mut seen = Vec::new();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert!(sender.poll_transmit(super::super::clock::now(), est, &mut out));
            assert_eq!(out.len(), 64);
            socket.send_to(&out, at).await.unwrap();
            let rx = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
                .await
                .expect("a reply")
                .unwrap();
            sender.handle_input(rx.at, rx.tos, &buf[..rx.len]);
            while let Some(e) = sender.poll_event() {
                if let Event::Reply(r) = e {
                    seen.push(r.dscp.expect("the Class of Service TLV answered"));
                }
            }
        }
        assert_eq!(seen.len(), 5);
        for d in seen {
            assert_eq!(
                (d.sent, d.at_reflector, d.reflected, d.back),
                (46, 10, 46, Some(46))
            );
            assert!(d.forward_remarked() && !d.reverse_remarked());
            assert_eq!(
                (d.ecn_at_reflector, d.ecn_back),
                (0, Some(0)),
                "Not-ECT each way"
            );
        }
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}

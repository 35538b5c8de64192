//! Drives one STAMP [`Sender`] session towards one peer on its own socket and task, so a dead
//! or slow peer never delays probes to the others. T1 is read right before each send; T4 is
//! the kernel receive timestamp where the socket has one.

use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use xcbench_snapshot::{ProbeKind, Protocol, TimestampSource};

use super::clock::{now_unix_ns, EstimateCache};
use super::reflector::lock;
use super::socket::ProbeSocket;
use super::timer::DeadlineTimer;
use crate::config::PeerConfig;
use crate::probe::{Event, Sender, SenderConfig};
use crate::record::{Recorder, SeriesKey};
use crate::wire::MAX_PACKET_LEN;

/// Probes `peer` until `stop` changes, then waits for outstanding replies (at most the loss
/// timeout) so every probe sent ends up received or lost.
pub async fn run_session(
    peer: PeerConfig,
    timestamps: TimestampSource,
    recorder: Arc<Mutex<Recorder>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let bind = super::any_local_for(peer.address);
    let socket = ProbeSocket::bind(bind, peer.probe.dscp.0, timestamps)?;
    let key: SeriesKey = (peer.identity.id.clone(), Protocol::Udp, ProbeKind::Stamp);
    let config = SenderConfig {
        interval_ns: peer.probe.interval.0.as_nanos() as u64,
        timeout_ns: peer.probe.loss_timeout.0.as_nanos() as u64,
        packet_len: peer.probe.payload_size.0,
    };
    // Spread sessions over the interval so many peers do not all fire at once.
    let stagger = stagger_ns(&peer, config.interval_ns);
    let mut sender = Sender::new(config, now_unix_ns() + stagger);
    let mut source = if socket.kernel_timestamps() {
        TimestampSource::Kernel
    } else {
        TimestampSource::User
    };
    let mut out = Vec::with_capacity(MAX_PACKET_LEN);
    let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
    let mut stopping = false;
    let timer = DeadlineTimer::new()?;
    let mut estimate_cache = EstimateCache::new();
    loop {
        let deadline = sender.poll_timeout();
        if stopping && (deadline.is_none() || !sender.has_pending()) {
            break;
        }
        timer.arm(deadline)?;
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                stopping = true;
                sender.stop();
            }
            _ = timer.wait() => {
                sender.handle_timeout(now_unix_ns());
                let estimate = estimate_cache.get();
                if sender.poll_transmit(now_unix_ns(), estimate, &mut out) {
                    if let Err(e) = socket.send_to(&out, peer.address).await {
                        tracing::debug!(peer = %peer.identity.id, error = %e, "probe send error");
                    }
                }
            }
            rx = socket.recv(&mut buf) => match rx {
                Ok(rx) if rx.from != peer.address || rx.truncated => {
                    let event = if rx.truncated { Event::Malformed } else { Event::Unmatched };
                    lock(&recorder).handle_event(&key, &event, source);
                }
                Ok(rx) => {
                    source = rx.source;
                    sender.handle_datagram(rx.at_ns, &buf[..rx.len]);
                }
                Err(e) => tracing::debug!(peer = %peer.identity.id, error = %e, "probe receive error"),
            }
        }
        let mut rec = None;
        while let Some(event) = sender.poll_event() {
            rec.get_or_insert_with(|| lock(&recorder))
                .handle_event(&key, &event, source);
        }
    }
    Ok(())
}

fn stagger_ns(peer: &PeerConfig, interval_ns: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    peer.identity.id.hash(&mut h);
    peer.address.hash(&mut h);
    h.finish() % interval_ns.max(1)
}

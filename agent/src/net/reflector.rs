//! Drives a [`Reflector`] on one UDP socket: receive with kernel timestamp (T2), answer,
//! stamp T3 right before the send. Replies go only to the datagram's source and are never
//! larger than what arrived.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::clock::{now_unix_ns, EstimateCache};
use super::socket::ProbeSocket;
use crate::probe::Reflector;
use crate::wire::{ReflectedPacket, Timestamp, MAX_PACKET_LEN};

/// Serves until `stop` changes.
pub async fn serve(
    socket: ProbeSocket,
    state: Arc<Mutex<Reflector>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
    let mut out = Vec::with_capacity(MAX_PACKET_LEN);
    let mut estimate = EstimateCache::new();
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
        let answered = lock(&state).handle_datagram(
            rx.at_ns,
            rx.from,
            rx.ttl,
            estimate.get(),
            &buf[..rx.len],
            &mut out,
        );
        if let Err(e) = answered {
            tracing::debug!(from = %rx.from, error = %e, "not answered");
            continue;
        }
        ReflectedPacket::stamp_transmit(&mut out, Timestamp::from_unix_ns(now_unix_ns()));
        if let Err(e) = socket.send_to(&out, rx.from).await {
            tracing::debug!(to = %rx.from, error = %e, "reflector send error");
        }
    }
}

/// A poisoned lock only means another task panicked mid-update of plain counters; carry on.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

//! The one drive loop for every sans-IO prober ([`Probe`]): a timer armed from
//! `poll_timeout`, a stop signal, and a [`Transport`] that sends bytes and delivers what
//! arrives; `handle_*` in, `poll_*` out, events into the recorder. A transport that
//! connects (TCP, QUIC) re-opens beside the schedule, so probes due while the peer is
//! unreachable are sent into the void and counted lost, not silently skipped.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use xcbench_snapshot::TimestampSource;

use super::clock::{now, now_mono_ns, EstimateCache};
use super::lock;
use super::timer::DeadlineTimer;
use crate::probe::{earliest, Event, Probe};
use crate::record::{Recorder, SeriesKey};
use crate::wire::error_estimate::ClockErrorSource;

/// What a transport delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delivery {
    /// `len` bytes for probe number `probe` (its place in the driver's list), now in the
    /// driver's buffer, that arrived at `at`.
    Input {
        probe: usize,
        at: crate::probe::Moment,
        source: TimestampSource,
        /// The IP traffic class octet it arrived with, where the socket tells.
        tos: Option<u8>,
        len: usize,
    },
    /// Something arrived that is nobody's reply (another source, cut short by the kernel).
    Stray(Event),
    /// The connection broke: what is outstanding will not be answered.
    Broken,
    /// Nothing for the probes (a connection opened, a receive error was logged).
    Nothing,
}

/// How probes reach their peer.
pub trait Transport {
    /// How receive times are taken until the first delivery says otherwise.
    fn initial_source(&self) -> TimestampSource;

    /// Opens the transport once before the schedule starts, so start-up is not counted as
    /// lost probes; a failure leaves it down (it is re-opened beside the schedule).
    fn open(&mut self) -> impl Future<Output = ()> + Send;

    /// While down: starts re-opening if that is due at `now_mono`.
    fn poll_reopen(&mut self, now_mono: u64);

    /// Sends probe `probe`'s bytes; false when the transport broke. While it is down the
    /// bytes go nowhere and the probe ends lost at its timeout.
    fn send(&mut self, probe: usize, bytes: &[u8]) -> impl Future<Output = bool> + Send;

    /// The next delivery into `buf`. Cancel-safe: it may be dropped for the timer or the
    /// stop signal at any await point without losing bytes.
    fn next(&mut self, buf: &mut Vec<u8>) -> impl Future<Output = Delivery> + Send;

    /// Whether a probe that stalled for its whole timeout means the connection is stuck
    /// (TCP: re-open it), or only that this one probe is lost (QUIC keeps resending a
    /// stream's data and says itself when the path is gone; a lost datagram is never resent).
    fn reopen_after_stall(&self) -> bool {
        true
    }

    /// After every step: the transport's own figures into the recorder (TCP_INFO, quinn's
    /// path statistics); `broken` says the connection is about to be dropped.
    fn observe(&mut self, recorder: &Mutex<Recorder>, broken: bool);

    /// Drops a broken connection; it is re-opened later.
    fn disconnect(&mut self);

    /// The probes have settled: close.
    fn close(&mut self);
}

/// Runs `make(start)`'s probes, each recorded under its key (several under one key are
/// its flows), over `transport` until `stop`
/// changes, then waits for outstanding replies (at most each probe's timeout) so every
/// probe sent ends up answered or lost. `start` is the monotonic time after the transport
/// first opened.
pub async fn drive<P, T>(
    make: impl FnOnce(u64) -> Vec<(SeriesKey, P)> + Send,
    mut transport: T,
    recorder: Arc<Mutex<Recorder>>,
    mut stop: watch::Receiver<bool>,
    clock_error: ClockErrorSource,
) -> std::io::Result<()>
where
    P: Probe + Send,
    T: Transport + Send,
{
    let timer = DeadlineTimer::new()?;
    transport.open().await;
    let mut probes = make(now_mono_ns());
    let flows = flows_of(&probes);
    let mut sources = vec![transport.initial_source(); probes.len()];
    let mut estimate = EstimateCache::new(clock_error);
    let mut out = Vec::with_capacity(crate::wire::MAX_PACKET_LEN);
    let mut buf = Vec::with_capacity(crate::wire::MAX_PACKET_LEN + 1);
    let mut stopping = false;
    loop {
        if stopping && !probes.iter().any(|(_, p)| p.has_pending()) {
            break;
        }
        if !stopping {
            transport.poll_reopen(now_mono_ns());
        }
        let deadline = probes
            .iter()
            .fold(None, |d, (_, p)| earliest(d, p.poll_timeout()));
        timer.arm(deadline)?;
        let mut broken = false;
        let mut stalled = false;
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                stopping = true;
                probes.iter_mut().for_each(|(_, p)| p.stop());
            }
            _ = timer.wait() => {
                let now_mono = now_mono_ns();
                for (_, p) in probes.iter_mut() {
                    stalled |= p.handle_timeout(now_mono) && transport.reopen_after_stall();
                }
                broken |= stalled;
                let est = estimate.get();
                for (i, (_, p)) in probes.iter_mut().enumerate() {
                    if p.poll_transmit(now(), est, &mut out) && !transport.send(i, &out).await {
                        broken = true;
                    }
                }
            }
            d = transport.next(&mut buf) => match d {
                Delivery::Input { probe, at, source, tos, len } => {
                    sources[probe] = source;
                    let (key, p) = &mut probes[probe];
                    if !p.handle_input(at, tos, &buf[..len]) {
                        tracing::warn!(peer = %key.0, protocol = %key.1, kind = %key.2, "probe connection closed: not a response");
                        broken = true;
                    }
                }
                Delivery::Stray(event) => {
                    if let Some((key, _)) = probes.first() {
                        lock(&recorder).handle_event(key, &event, sources[0]);
                    }
                }
                Delivery::Broken => broken = true,
                Delivery::Nothing => {}
            },
        }
        transport.observe(&recorder, broken);
        if broken {
            transport.disconnect();
            probes
                .iter_mut()
                .for_each(|(_, p)| p.handle_disconnect(stalled));
        }
        let mut rec = None;
        for (((key, p), source), flow) in probes.iter_mut().zip(&sources).zip(&flows) {
            while let Some(event) = p.poll_event() {
                let rec = rec.get_or_insert_with(|| lock(&recorder));
                match flow {
                    None => rec.handle_event(key, &event, *source),
                    Some(f) => rec.handle_flow_event(key, *f, &event, *source),
                }
            }
        }
    }
    transport.close();
    Ok(())
}

/// Probes that share a key are that series' flows, numbered in list order; a key alone
/// has none.
fn flows_of<P>(probes: &[(SeriesKey, P)]) -> Vec<Option<u8>> {
    probes
        .iter()
        .enumerate()
        .map(|(i, (key, _))| {
            let same = |(k, _): &(SeriesKey, P)| k == key;
            match probes.iter().filter(|p| same(p)).count() {
                1 => None,
                _ => Some(probes[..i].iter().filter(|p| same(p)).count() as u8),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xcbench_snapshot::{ProbeKind, Protocol};

    #[test]
    fn probes_sharing_a_key_are_numbered_flows() {
        let key = |p: Protocol, k: ProbeKind| -> SeriesKey { ("oci-1".parse().unwrap(), p, k) };
        let stamp = key(Protocol::Udp, ProbeKind::Stamp);
        let rr = key(Protocol::Tcp, ProbeKind::Rr);
        let probes = [
            (stamp.clone(), ()),
            (rr, ()),
            (stamp.clone(), ()),
            (stamp, ()),
        ];
        assert_eq!(flows_of(&probes), vec![Some(0), None, Some(1), Some(2)]);
    }
}

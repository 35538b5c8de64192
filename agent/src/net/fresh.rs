//! The schedule shared by probes that open a fresh connection each time (TCP connect, QUIC
//! connect and resume): one probe per series every interval, each on its own task so a slow
//! handshake never delays the next, a bounded number in flight (beyond it a probe counts as
//! lost at once: the path is already failing every handshake), and at stop a wait for those
//! in flight so every probe sent is counted as answered or lost.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use xcbench_snapshot::TimestampSource;

use super::clock::now_mono_ns;
use super::lock;
use super::timer::DeadlineTimer;
use crate::probe::Event;
use crate::record::{Recorder, SeriesKey};

/// Runs `probe(key, seq)` for each of `keys` every `interval` until `stop` changes; each
/// probe's event (an RTT, or lost) is recorded for its key, timed in user space on the
/// monotonic clock.
pub async fn run<F, Fut>(
    keys: Vec<SeriesKey>,
    interval: Duration,
    max_in_flight: usize,
    wait: Duration,
    recorder: Arc<Mutex<Recorder>>,
    mut stop: watch::Receiver<bool>,
    probe: F,
) -> std::io::Result<()>
where
    F: Fn(SeriesKey, u32) -> Fut,
    Fut: Future<Output = Event> + Send + 'static,
{
    let timer = DeadlineTimer::new()?;
    let interval = interval.as_nanos() as u64;
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let mut due = now_mono_ns();
    let mut seq = 0u32;
    loop {
        timer.arm(Some(due))?;
        tokio::select! {
            _ = stop.changed() => break,
            _ = timer.wait() => {}
        }
        let skipped;
        (due, skipped) = crate::probe::sender::next_slot(due, interval, now_mono_ns());
        for key in &keys {
            if skipped > 0 {
                let event = Event::Skipped { count: skipped };
                lock(&recorder).handle_event(key, &event, TimestampSource::User);
            }
            lock(&recorder).handle_event(key, &Event::Sent { seq }, TimestampSource::User);
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                lock(&recorder).handle_event(key, &Event::Lost { seq }, TimestampSource::User);
                continue;
            };
            let (attempt, recorder, key) = (probe(key.clone(), seq), recorder.clone(), key.clone());
            tokio::spawn(async move {
                let event = attempt.await;
                lock(&recorder).handle_event(&key, &event, TimestampSource::User);
                drop(permit);
            });
        }
        seq = seq.wrapping_add(1);
    }
    let _ = tokio::time::timeout(
        wait + Duration::from_secs(1),
        slots.acquire_many(max_in_flight as u32),
    )
    .await;
    Ok(())
}

//! The one throughput test an agent takes part in at a time, answering or asking, and whom it
//! runs with; and the follower that files probe outcomes to that peer under `load="bench"`
//! while the test runs (latency under load).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::pki_types::CertificateDer;
use tokio::sync::watch;
use xcbench_snapshot::{AgentId, Load};

use crate::net::lock;
use crate::record::Recorder;
use crate::tls::KnownPeers;

/// Who an agent runs its one test with: the peer's id when this agent asked, the client's
/// certificate when it answers (the configured peers identify it, see [`KnownPeers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tester {
    pub peer: Option<AgentId>,
    pub certificate: Option<CertificateDer<'static>>,
}

/// The test slot.
pub struct TestSlot {
    busy: AtomicBool,
    with: watch::Sender<Option<Tester>>,
}

/// Holds the [`TestSlot`] until dropped.
pub struct SlotGuard(Arc<TestSlot>);

impl TestSlot {
    pub fn new() -> Arc<TestSlot> {
        Arc::new(TestSlot {
            busy: AtomicBool::new(false),
            with: watch::channel(None).0,
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
    pub fn watch(&self) -> watch::Receiver<Option<Tester>> {
        self.with.subscribe()
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.with.send_replace(None);
        self.0.busy.store(false, Ordering::Release);
    }
}

/// While a test runs, files the outcomes of probes to its peer under that peer's
/// `load="bench"` series, until `stop` changes.
pub async fn follow_load(
    slot: Arc<TestSlot>,
    peers: KnownPeers,
    recorder: Arc<Mutex<Recorder>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut testing = slot.watch();
    let mut current: Option<AgentId> = None;
    loop {
        let tester = testing.borrow_and_update().clone();
        let peer = tester.and_then(|t| {
            t.peer
                .or_else(|| peers.identify(t.certificate.as_ref()?).cloned())
        });
        if peer != current {
            let mut r = lock(&recorder);
            if let Some(old) = &current {
                r.set_load(old, Load::Idle);
            }
            if let Some(new) = &peer {
                r.set_load(new, Load::Bench);
            }
            current = peer;
        }
        tokio::select! {
            _ = stop.changed() => return,
            changed = testing.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_test_at_a_time_and_its_peer_is_under_load_meanwhile() {
        let slot = TestSlot::new();
        let peer: AgentId = "oci-1".parse().unwrap();
        let tester = Tester {
            peer: Some(peer.clone()),
            certificate: None,
        };
        let recorder = Arc::new(Mutex::new(Recorder::new()));
        let (stop, rx) = watch::channel(false);
        let follower = tokio::spawn(follow_load(
            slot.clone(),
            KnownPeers::default(),
            recorder.clone(),
            rx,
        ));
        let guard = slot.try_begin(tester.clone()).unwrap();
        assert!(slot.try_begin(tester.clone()).is_none(), "busy");
        let loaded = |r: &Mutex<Recorder>| lock(r).load_of(&peer);
        for _ in 0..100 {
            if loaded(&recorder) == Load::Bench {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(loaded(&recorder), Load::Bench);
        drop(guard);
        for _ in 0..100 {
            if loaded(&recorder) == Load::Idle {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(loaded(&recorder), Load::Idle);
        assert!(slot.try_begin(tester).is_some(), "free again");
        let _ = stop.send(true);
        follower.await.unwrap();
    }
}

//! Sending snapshots to the collector. Each interval's deltas are encoded once and queued;
//! the queue is sent oldest first and an entry leaves it only when the collector acknowledged
//! it (accepted or already had it), so a collector outage delays data instead of losing it.
//! The queue is bounded: past [`MAX_QUEUED`] snapshots the oldest is dropped and logged. A
//! refusal of the snapshot itself (4xx) drops it; a refusal of the sender (403: the collector
//! does not take this certificate for this agent yet) keeps it for when the pin is added.
//!
//! With `[agent] spool` every queued snapshot is also a file there (written and synced when
//! it is taken, removed when the collector acknowledges it or it is given up), and a start
//! queues what an earlier run left first, oldest first: an agent restarted while its
//! collector is unreachable loses nothing up to the bound. The collector takes a resend of
//! what it already has as a duplicate.
//!
//! To an `https://` collector the agent presents its `[tls]` key pair as its client
//! certificate (the collector takes a snapshot only in the name of the agent the
//! certificate is) and accepts the collector only by its pin or through `tls.ca`
//! (`http::collector_client`, which the mesh fetch uses too).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use xcbench_snapshot::{Identity, ResponderCounters, Snapshot, FORMAT_VERSION};

use crate::config::CollectorLink;
use crate::http::collector_client;
pub use crate::http::ClientKeys;
use crate::record::Recorder;
use crate::tls::TlsError;

/// One hour of 10 s reports.
pub const MAX_QUEUED: usize = 360;
/// The collector's ingest path.
pub const INGEST_PATH: &str = "/api/v1/snapshots";
/// How long one report may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a flush stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("collector {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("collector refused snapshot seq {seq} with {status}: {reason}")]
    Refused {
        seq: u64,
        status: u16,
        reason: String,
    },
}

/// Why reporting could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("agent.spool = {path:?}: must be a directory the agent can create, read and write: {source}")]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A snapshot waiting for the collector: its sequence, its encoded body, and its file in
/// the spool (if there is one).
struct Queued {
    seq: u64,
    body: Vec<u8>,
    file: Option<PathBuf>,
}

/// A collector reports may go to: its ingest URL and a client that knows it.
struct Target {
    url: String,
    client: reqwest::Client,
}

/// Builds, queues and sends snapshots for one agent instance.
pub struct Reporter {
    agent: Identity,
    instance: u64,
    next_seq: u64,
    interval_start_ns: u64,
    queue: VecDeque<Queued>,
    /// The collector, then the other shards of the mesh in this agent's rendezvous order;
    /// empty without a collector.
    targets: Vec<Target>,
    dropped: u64,
    spool: Option<PathBuf>,
}

impl Reporter {
    /// `started_ns` is the agent's start time: it is also the instance id. `tls` is the
    /// agent's key pair and CA, needed for an `https://` collector.
    pub fn new(
        agent: Identity,
        collector: Option<&CollectorLink>,
        keys: Option<ClientKeys<'_>>,
        started_ns: u64,
        spool: Option<&Path>,
    ) -> Result<Reporter, ReporterError> {
        let keys = collector.filter(|c| c.is_https()).and(keys);
        if let Some(c) = collector.filter(|c| c.plain_http) {
            tracing::warn!(
                url = %c.url,
                "reporting over plain HTTP (plain_http = true): unauthenticated and unencrypted"
            );
        }
        let mut reporter = Reporter {
            agent,
            instance: started_ns,
            next_seq: 1,
            interval_start_ns: started_ns,
            queue: VecDeque::new(),
            targets: Vec::new(),
            dropped: 0,
            spool: None,
        };
        if let Some(c) = collector {
            let shards = std::iter::once((&c.url, c.fingerprint))
                .chain(c.fallbacks.iter().map(|s| (&s.url, s.fingerprint)));
            for (url, pinned) in shards {
                reporter.targets.push(Target {
                    url: format!("{url}{INGEST_PATH}"),
                    client: collector_client(REQUEST_TIMEOUT, keys, pinned)?,
                });
            }
        }
        if let (Some(dir), Some(_)) = (spool, collector) {
            reporter
                .open_spool(dir)
                .map_err(|source| ReporterError::Spool {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        Ok(reporter)
    }

    /// Takes the spool: what an earlier run left is queued first, oldest first (file names
    /// sort as instance, then sequence); unfinished writes are removed.
    fn open_spool(&mut self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("snapshot") => files.push(path),
                Some("partial") => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        files.sort();
        for path in files {
            let seq = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.split_once('-'))
                .and_then(|(_, seq)| seq.parse().ok())
                .unwrap_or(0);
            let body = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, file = %path.display(), "spooled snapshot unreadable: left where it is");
                    continue;
                }
            };
            self.enqueue(Queued {
                seq,
                body,
                file: Some(path),
            });
        }
        if !self.queue.is_empty() {
            tracing::info!(
                snapshots = self.queue.len(),
                "spooled snapshots of an earlier run queued first"
            );
        }
        self.spool = Some(dir.to_owned());
        Ok(())
    }

    /// The back of the queue; past [`MAX_QUEUED`] the oldest is given up, logged.
    fn enqueue(&mut self, q: Queued) {
        if self.queue.len() >= MAX_QUEUED {
            if let Some(old) = self.queue.pop_front() {
                forget(&old);
            }
            self.dropped += 1;
            tracing::error!(
                dropped = self.dropped,
                "snapshot queue full: oldest snapshot dropped"
            );
        }
        self.queue.push_back(q);
    }

    /// `body` as a file of the spool, synced: `instance-seq.snapshot`, written aside first so
    /// a crash leaves no half file under that name. `None` (logged) if it could not be.
    fn spool_file(&self, seq: u64, body: &[u8]) -> Option<PathBuf> {
        use std::io::Write;
        let dir = self.spool.as_ref()?;
        let name = format!("{:020}-{seq:020}", self.instance);
        let path = dir.join(format!("{name}.snapshot"));
        let partial = dir.join(format!("{name}.partial"));
        // The rename is durable once the directory is synced too.
        let written = std::fs::File::create(&partial)
            .and_then(|mut f| f.write_all(body).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&partial, &path))
            .and_then(|()| std::fs::File::open(dir).and_then(|d| d.sync_all()));
        match written {
            Ok(()) => Some(path),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "snapshot kept in memory only: spool not written");
                None
            }
        }
    }

    /// Takes the recorder's deltas into a new snapshot at the back of the queue.
    pub fn take_snapshot(
        &mut self,
        recorder: &mut Recorder,
        responders: ResponderCounters,
        now_ns: u64,
    ) -> Snapshot {
        let interval_end_unix_ns = now_ns.max(self.interval_start_ns);
        let snapshot = Snapshot {
            format: FORMAT_VERSION,
            agent: self.agent.clone(),
            instance: self.instance,
            seq: self.next_seq,
            interval_start_unix_ns: self.interval_start_ns,
            interval_end_unix_ns,
            responders,
            sender: recorder.take_sender_counters(),
            series: recorder.take_series(interval_end_unix_ns),
            throughput: recorder.take_throughput(),
            throughput_flows: recorder.scheduled().to_vec(),
            given_up: Some(self.dropped),
        };
        self.next_seq += 1;
        self.interval_start_ns = snapshot.interval_end_unix_ns;
        let mut bytes = Vec::new();
        snapshot.encode(&mut bytes);
        if !self.targets.is_empty() {
            let file = self.spool_file(snapshot.seq, &bytes);
            self.enqueue(Queued {
                seq: snapshot.seq,
                body: bytes,
                file,
            });
        }
        snapshot
    }

    /// Snapshots waiting for the collector.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Sends queued snapshots oldest first until the queue is empty or the collector fails.
    /// Each goes to the first collector (in rendezvous order) that can be reached: one that
    /// cannot be connected to was given nothing, so the next is asked. A request that
    /// reached a collector and got no answer may have been taken there: it is not sent to
    /// another (a sharded mesh would count it twice) but asked again next time.
    pub async fn flush(&mut self) -> Result<(), ReportError> {
        while let Some(Queued { seq, body, .. }) = self.queue.front() {
            let seq = *seq;
            let mut answer = None;
            let mut unreachable = Vec::new();
            for (i, target) in self.targets.iter().enumerate() {
                match target
                    .client
                    .post(&target.url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(response) => {
                        if i > 0 {
                            tracing::debug!(url = %target.url, seq, "snapshot sent to a fallback collector");
                        }
                        answer = Some(response);
                        break;
                    }
                    Err(e) => {
                        unreachable.push(format!("{}: {}", target.url, root_cause(&e)));
                        if !e.is_connect() {
                            break;
                        }
                    }
                }
            }
            let Some(response) = answer else {
                if unreachable.is_empty() {
                    return Ok(());
                }
                return Err(ReportError::Unreachable {
                    url: self.targets[0].url.clone(),
                    message: unreachable.join("; "),
                });
            };
            let status = response.status();
            if status.is_success() {
                if let Some(done) = self.queue.pop_front() {
                    forget(&done);
                }
                continue;
            }
            let reason = response.text().await.unwrap_or_default();
            // A 403 is about who is asking, not about the snapshot: the collector does not
            // know this agent's certificate yet (a pin still to add), so the agent keeps its
            // data and asks again next interval, as for a 503 (the queue stays bounded).
            if status.is_client_error() && status != reqwest::StatusCode::FORBIDDEN {
                // It will never be accepted; keeping it would block every later snapshot.
                if let Some(refused) = self.queue.pop_front() {
                    forget(&refused);
                }
            }
            return Err(ReportError::Refused {
                seq,
                status: status.as_u16(),
                reason,
            });
        }
        Ok(())
    }
}

/// What went wrong underneath a request error (reqwest's own text names only the URL):
/// "Connection refused (os error 111)", "connection timed out", a certificate refused.
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Removes a snapshot's spool file, if it has one (one left behind is sent again and taken
/// as a duplicate).
fn forget(q: &Queued) {
    if let Some(f) = &q.file {
        if let Err(e) = std::fs::remove_file(f) {
            tracing::warn!(error = %e, file = %f.display(), "spooled snapshot not removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A collector stand-in on loopback answering each request with the next of `statuses`.
    async fn answering(statuses: Vec<u16>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for status in statuses {
                let (mut s, _) = listener.accept().await.unwrap();
                // The request is small: headers and a JSON body in one read or a few.
                let mut seen = Vec::new();
                let mut buf = [0u8; 65536];
                while let Ok(n) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf))
                    .await
                    .unwrap_or(Ok(0))
                {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 7\r\nconnection: close\r\n\r\nreason\n"
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        url
    }

    fn reporter(url: String) -> Reporter {
        let identity = Identity {
            id: "az-1".parse().unwrap(),
            cloud: xcbench_snapshot::Cloud::Azure,
            region: "eastus".into(),
            zone: String::new(),
        };
        let link = CollectorLink {
            url,
            report_interval: Duration::from_secs(1),
            fingerprint: None,
            plain_http: false,
            fallbacks: Vec::new(),
        };
        Reporter::new(identity, Some(&link), None, 1, None).unwrap()
    }

    #[tokio::test]
    async fn a_forbidden_sender_keeps_its_snapshots_a_refused_snapshot_goes() {
        let url = answering(vec![403, 403, 200, 422]).await;
        let mut r = reporter(url);
        let mut recorder = Recorder::new();
        r.take_snapshot(&mut recorder, ResponderCounters::default(), 10);
        // 403: the collector does not take this certificate yet; the snapshot stays.
        let e = r.flush().await.unwrap_err();
        assert!(matches!(e, ReportError::Refused { status: 403, .. }), "{e}");
        assert_eq!(r.queued(), 1);
        r.take_snapshot(&mut recorder, ResponderCounters::default(), 20);
        assert!(r.flush().await.is_err());
        assert_eq!(r.queued(), 2, "both kept while forbidden");
        // The pin is added: 200 for the oldest, then 422 (over the series limit) for the
        // next, which will never be taken and goes.
        let e = r.flush().await.unwrap_err();
        assert!(matches!(e, ReportError::Refused { status: 422, .. }), "{e}");
        assert_eq!(r.queued(), 0);
    }

    /// A sharded mesh: the agent's own collector refuses connections, so each snapshot
    /// goes to the next in its order; once its own answers again, it gets them again.
    #[tokio::test]
    async fn snapshots_go_to_the_next_collector_while_the_first_cannot_be_reached() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let next = answering(vec![200, 200]).await;
        let mut link = CollectorLink {
            url: closed.clone(),
            report_interval: Duration::from_secs(1),
            fingerprint: None,
            plain_http: false,
            fallbacks: vec![crate::config::Shard {
                url: next,
                fingerprint: None,
            }],
        };
        let identity = Identity {
            id: "az-1".parse().unwrap(),
            cloud: xcbench_snapshot::Cloud::Azure,
            region: "eastus".into(),
            zone: String::new(),
        };
        let mut recorder = Recorder::new();
        let mut r = Reporter::new(identity.clone(), Some(&link), None, 1, None).unwrap();
        for t in [10, 20] {
            r.take_snapshot(&mut recorder, ResponderCounters::default(), t);
        }
        r.flush().await.unwrap();
        assert_eq!(r.queued(), 0, "both taken by the second collector");
        // Neither answers: the snapshot stays, and the error names both.
        link.fallbacks[0].url = closed.clone();
        let mut r = Reporter::new(identity, Some(&link), None, 2, None).unwrap();
        r.take_snapshot(&mut recorder, ResponderCounters::default(), 30);
        let e = r.flush().await.unwrap_err().to_string();
        assert_eq!(r.queued(), 1);
        assert_eq!(e.matches(closed.as_str()).count(), 3, "{e}");
        assert_eq!(e.matches("refused").count(), 2, "{e}");
    }

    /// Snapshots taken while the collector is unreachable survive the agent's restart in
    /// the spool, go first (oldest first) once it answers, and leave the spool when taken;
    /// past the bound the oldest file goes with its snapshot.
    #[tokio::test]
    async fn the_spool_keeps_snapshots_across_a_restart() {
        let dir = std::env::temp_dir().join(format!("xcbench-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let identity = Identity {
            id: "az-1".parse().unwrap(),
            cloud: xcbench_snapshot::Cloud::Azure,
            region: "eastus".into(),
            zone: String::new(),
        };
        let link = |url: String| CollectorLink {
            url,
            report_interval: Duration::from_secs(1),
            fingerprint: None,
            plain_http: false,
            fallbacks: Vec::new(),
        };
        // Nothing listens here: every flush fails.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let mut recorder = Recorder::new();
        {
            let mut r = Reporter::new(identity.clone(), Some(&link(closed)), None, 100, Some(&dir))
                .unwrap();
            for t in [110, 120, 130] {
                r.take_snapshot(&mut recorder, ResponderCounters::default(), t);
            }
            assert!(r.flush().await.is_err());
        }
        let files = || std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files(), 3, "one file per snapshot not taken");
        // A partial write of a crashed run is cleared, not sent.
        std::fs::write(dir.join("x.partial"), b"half").unwrap();
        let url = answering(vec![200; 4]).await;
        let mut r = Reporter::new(identity, Some(&link(url)), None, 200, Some(&dir)).unwrap();
        assert_eq!(r.queued(), 3);
        let first = r.take_snapshot(&mut recorder, ResponderCounters::default(), 210);
        assert_eq!((first.instance, first.seq), (200, 1));
        let order: Vec<u64> = r.queue.iter().map(|q| q.seq).collect();
        assert_eq!(order, [1, 2, 3, 1], "the earlier run's first, in order");
        r.flush().await.unwrap();
        assert_eq!((r.queued(), files()), (0, 0));
        // Past the bound: the oldest goes, and its file with it.
        let mut r = Reporter::new(
            Identity {
                id: "az-2".parse().unwrap(),
                cloud: xcbench_snapshot::Cloud::Azure,
                region: "eastus".into(),
                zone: String::new(),
            },
            Some(&link("http://127.0.0.1:9".into())),
            None,
            300,
            Some(&dir),
        )
        .unwrap();
        for t in 0..(MAX_QUEUED as u64 + 2) {
            r.take_snapshot(&mut recorder, ResponderCounters::default(), 310 + t);
        }
        assert_eq!((r.queued(), files()), (MAX_QUEUED, MAX_QUEUED));
        assert_eq!(r.queue.front().unwrap().seq, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The durable remote-write queue: requests (encoded `WriteRequest` bodies, as sent)
//! in arrival order in a redb table (`remote_write.redb` under `data_dir`, or in memory
//! without one), each committed with fsync before the snapshot that made it is
//! acknowledged, removed only once the receiver took it or refused it for good. Bounded in
//! bytes: past the bound the oldest requests give way, counted.

use std::path::Path;
use std::sync::Mutex;

use redb::{Database, Durability, ReadableTable, TableDefinition};

/// redb's page cache for the queue: requests are written once and read once, in order, so
/// its default (1 GiB) would only hold pages nobody reads again.
const CACHE_BYTES: usize = 16 << 20;

/// Request number -> `samples (varint) | body`.
const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");

/// The queue's database failed (boxed: redb's error is large).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(Box<redb::Error>);

macro_rules! from_redb {
    ($($t:ty),+) => {$(
        impl From<$t> for QueueError {
            fn from(e: $t) -> QueueError {
                QueueError(Box::new(e.into()))
            }
        }
    )+};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A queued request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub samples: u64,
    pub body: Vec<u8>,
}

/// The queue and what it holds.
pub struct Outbox {
    db: Database,
    depth: Mutex<Depth>,
}

/// What the queue holds, and the next request's number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    pub requests: u64,
    pub samples: u64,
    pub bytes: u64,
    next: u64,
}

impl Outbox {
    /// `dir/remote_write.redb`, created if missing; what it held is sent first.
    pub fn open(dir: &Path) -> Result<Outbox, QueueError> {
        std::fs::create_dir_all(dir).map_err(|e| QueueError(Box::new(redb::Error::Io(e))))?;
        Outbox::with(
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(dir.join("remote_write.redb"))?,
        )
    }

    /// A queue that lives as long as the process (no `data_dir`).
    pub fn in_memory() -> Result<Outbox, QueueError> {
        Outbox::with(
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?,
        )
    }

    fn with(db: Database) -> Result<Outbox, QueueError> {
        let txn = db.begin_write()?;
        txn.open_table(QUEUE)?;
        txn.commit()?;
        let mut depth = Depth::default();
        {
            let txn = db.begin_read()?;
            let table = txn.open_table(QUEUE)?;
            for entry in table.iter()? {
                let (k, v) = entry?;
                let (samples, body) = split(v.value());
                depth.requests += 1;
                depth.samples += samples;
                depth.bytes += body.len() as u64;
                depth.next = k.value() + 1;
            }
        }
        Ok(Outbox {
            db,
            depth: Mutex::new(depth),
        })
    }

    pub fn depth(&self) -> Depth {
        *self.depth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `requests` (samples, body) durably; then, while the queue holds more than
    /// `max_bytes`, drops the oldest. Returns the samples dropped.
    pub fn push(&self, requests: &[(usize, Vec<u8>)], max_bytes: u64) -> Result<u64, QueueError> {
        let mut depth = self.depth.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = *depth;
        let mut dropped = 0;
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        {
            let mut table = txn.open_table(QUEUE)?;
            let mut value = Vec::new();
            for (samples, body) in requests {
                value.clear();
                xcbench_snapshot::varint::put(&mut value, *samples as u64);
                value.extend_from_slice(body);
                table.insert(next.next, value.as_slice())?;
                next.next += 1;
                next.requests += 1;
                next.samples += *samples as u64;
                next.bytes += body.len() as u64;
            }
            while next.bytes > max_bytes && next.requests > 1 {
                let Some((_, v)) = table.pop_first()? else {
                    break;
                };
                let (samples, body) = split(v.value());
                next.requests -= 1;
                next.samples -= samples;
                next.bytes -= body.len() as u64;
                dropped += samples;
            }
        }
        txn.commit()?;
        *depth = next;
        Ok(dropped)
    }

    /// The oldest request, if any.
    pub fn front(&self) -> Result<Option<Request>, QueueError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(QUEUE)?;
        let Some(entry) = table.first()? else {
            return Ok(None);
        };
        let (k, v) = entry;
        let (samples, body) = split(v.value());
        Ok(Some(Request {
            id: k.value(),
            samples,
            body: body.to_vec(),
        }))
    }

    /// Removes request `id` (sent, or refused for good); whether it was still there (the
    /// bound may have pushed it out meanwhile, and counted it then). Not synced: a crash
    /// before the next sync sends it once more, which a receiver takes as the same samples
    /// again.
    pub fn remove(&self, id: u64) -> Result<bool, QueueError> {
        let mut depth = self.depth.lock().unwrap_or_else(|p| p.into_inner());
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Eventual);
        let removed = {
            let mut table = txn.open_table(QUEUE)?;
            let removed = table.remove(id)?.map(|v| {
                let (samples, body) = split(v.value());
                (samples, body.len() as u64)
            });
            removed
        };
        txn.commit()?;
        if let Some((samples, bytes)) = removed {
            depth.requests -= 1;
            depth.samples -= samples;
            depth.bytes -= bytes;
        }
        Ok(removed.is_some())
    }
}

/// A stored value's sample count and body. Values are only ever written by [`Outbox::push`];
/// one that does not start with a varint reads as no samples.
fn split(value: &[u8]) -> (u64, &[u8]) {
    match xcbench_snapshot::varint::get(value) {
        Some((samples, n)) => (samples, &value[n..]),
        None => (0, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("xcbench-outbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn requests_leave_in_order_and_survive_a_reopen() {
        let d = dir("order");
        {
            let q = Outbox::open(&d).unwrap();
            q.push(&[(2, b"ab".to_vec()), (500, vec![7; 300])], u64::MAX)
                .unwrap();
            assert_eq!(
                q.depth(),
                Depth {
                    requests: 2,
                    samples: 502,
                    bytes: 302,
                    next: 2
                }
            );
            let first = q.front().unwrap().unwrap();
            assert_eq!(
                (first.id, first.samples, &first.body[..]),
                (0, 2, &b"ab"[..])
            );
            assert!(q.remove(first.id).unwrap());
            assert!(!q.remove(first.id).unwrap(), "gone already");
        }
        // A restart finds the rest, and numbers new requests after it.
        let q = Outbox::open(&d).unwrap();
        assert_eq!(q.depth().samples, 500);
        q.push(&[(1, b"c".to_vec())], u64::MAX).unwrap();
        assert_eq!(q.front().unwrap().unwrap().id, 1);
        q.remove(1).unwrap();
        assert_eq!(q.front().unwrap().unwrap().body, b"c");
        q.remove(2).unwrap();
        assert_eq!(q.front().unwrap(), None);
        assert_eq!(q.depth().bytes, 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Past the bound the oldest give way, counted; the newest request always stays.
    #[test]
    fn the_oldest_give_way_past_the_bound() {
        let q = Outbox::in_memory().unwrap();
        assert_eq!(
            q.push(&[(10, vec![0; 100]), (20, vec![0; 100])], 250)
                .unwrap(),
            0
        );
        assert_eq!(q.push(&[(30, vec![0; 100])], 250).unwrap(), 10);
        assert_eq!(q.depth().samples, 50);
        assert_eq!(q.front().unwrap().unwrap().samples, 20);
        assert_eq!(q.push(&[(40, vec![0; 1000])], 250).unwrap(), 50);
        assert_eq!(q.depth().requests, 1);
    }
}

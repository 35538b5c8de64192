//! The durable history: an embedded redb database (`history.redb` under the data directory,
//! or in memory when none is configured). A snapshot is written in one transaction, committed
//! with `Durability::Immediate` (fsync) before the collector acknowledges it: what was
//! acknowledged survives a SIGKILL, and a restart continues every cumulative series.
//!
//! Why redb: a crash-safe, copy-on-write B-tree with checksums and an fsync'd two-slot commit,
//! in pure Rust (no C library to build), whose ordered keys serve the only access patterns
//! here, "slots of series X from T1 to T2" and "slots of series X older than T".
//!
//! Tables: `series` (id -> [`SeriesKey`] JSON), `slots` ((series, tier, start) ->
//! [`SlotRecord`]), `totals` (series -> [`SlotRecord`] of everything since it first reported,
//! so a restart reads one record per series), `agents` (id -> [`AgentState`] JSON: the
//! idempotency high-water marks and cumulative responder counters), `tests` (n -> a scheduled
//! throughput test's result). The slot logic itself is sans-IO, in
//! [`crate::store::history`].//!
//! # Layout
//! - this file: [`History`]: open, append, downsample, query, restore.
//! - `tests`: the history written, reopened, downsampled and queried.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use xcbench_snapshot::{Histograms, Metric, Snapshot, ThroughputResult};

use xcbench_snapshot::history::{
    AgentSeen, HistoryAnswer, ScheduledSeen, Selection, SeriesLabels, TestSeen,
};

use crate::store::history::{
    selects, Fate, Fold, Restored, SlotCodecError, SlotRecord, Span, Tiers,
};
use crate::store::{AgentState, SeriesKey, ThroughputKey};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("series");
const SLOTS: TableDefinition<(u64, u8, u64), &[u8]> = TableDefinition::new("slots");
const TOTALS: TableDefinition<u64, &[u8]> = TableDefinition::new("totals");
const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
const TESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("tests");

/// The layout version of the database; a collector refuses a file of another version.
const SCHEMA: u64 = 1;
/// redb's page cache for the history (its default is 1 GiB): enough for every series'
/// totals and the slots being filled at 10,000 series (about 30 MB and 10 MB), with room for
/// the pages of a query; older slots are read from the file when asked for.
const CACHE_BYTES: usize = 128 << 20;
/// Series migrated per write transaction, so ingest waits for no long downsampling pass.
const MIGRATE_BATCH: usize = 256;

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: cannot create the data directory")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("history database")]
    Db(#[from] Box<redb::Error>),
    #[error("history database: schema version {found}, this collector writes {SCHEMA}")]
    Schema { found: u64 },
    #[error("history database: a stored record")]
    Record(#[from] SlotCodecError),
    #[error("history database: a stored key or agent")]
    Json(#[from] serde_json::Error),
}

macro_rules! db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for HistoryError {
            fn from(e: $t) -> Self {
                HistoryError::Db(Box::new(e.into()))
            }
        }
    )*};
}
db_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A scheduled throughput test as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct TestRecord {
    key: ThroughputKey,
    result: ThroughputResult,
}

/// What one downsampling pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Migrated {
    pub merged: u64,
    pub expired: u64,
}

/// A day in nanoseconds: how long a series that went quiet is missed by a window.
const DAY_NS: u64 = 86_400_000_000_000;

/// The database and the series ids it has handed out.
pub struct History {
    db: Database,
    tiers: Tiers,
    ids: HashMap<SeriesKey, u64>,
    keys: BTreeMap<u64, SeriesKey>,
    next_test: u64,
}

impl History {
    /// Opens (or creates) `dir/history.redb`.
    pub fn open(dir: &Path, tiers: Tiers) -> Result<History, HistoryError> {
        std::fs::create_dir_all(dir).map_err(|source| HistoryError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join("history.redb"))?;
        History::with(db, tiers)
    }

    /// A history that lives as long as the process (no data directory configured).
    pub fn in_memory(tiers: Tiers) -> Result<History, HistoryError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        History::with(db, tiers)
    }

    fn with(db: Database, tiers: Tiers) -> Result<History, HistoryError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get("schema")?.map(|v| v.value());
            match found {
                Some(v) if v != SCHEMA => return Err(HistoryError::Schema { found: v }),
                Some(_) => {}
                None => {
                    meta.insert("schema", SCHEMA)?;
                }
            }
            for table in [SERIES, TOTALS, TESTS] {
                txn.open_table(table)?;
            }
            txn.open_table(SLOTS)?;
            txn.open_table(AGENTS)?;
        }
        txn.commit()?;
        relayout(&db, &tiers)?;
        let mut h = History {
            db,
            tiers,
            ids: HashMap::new(),
            keys: BTreeMap::new(),
            next_test: 0,
        };
        let txn = h.db.begin_read()?;
        for entry in txn.open_table(SERIES)?.iter()? {
            let (id, key) = entry?;
            let key: SeriesKey = serde_json::from_slice(key.value())?;
            h.ids.insert(key.clone(), id.value());
            h.keys.insert(id.value(), key);
        }
        h.next_test = txn
            .open_table(TESTS)?
            .last()?
            .map_or(0, |(k, _)| k.value() + 1);
        Ok(h)
    }

    /// Writes an accepted snapshot, received at `now`, in one durable transaction: its
    /// series' finest slots and totals, the agent's high-water mark and counters, and its
    /// scheduled tests. Returns once the data is on disk.
    pub fn append(
        &mut self,
        snapshot: &Snapshot,
        histograms: &Histograms,
        now: u64,
    ) -> Result<(), HistoryError> {
        let mut new_ids = Vec::new();
        let result = self.write_snapshot(snapshot, histograms, now, &mut new_ids);
        if result.is_err() {
            // Nothing was committed: forget the ids this attempt handed out.
            for key in new_ids {
                if let Some(id) = self.ids.remove(&key) {
                    self.keys.remove(&id);
                }
            }
        }
        result
    }

    fn write_snapshot(
        &mut self,
        snapshot: &Snapshot,
        histograms: &Histograms,
        now: u64,
        new_ids: &mut Vec<SeriesKey>,
    ) -> Result<(), HistoryError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        {
            let mut series = txn.open_table(SERIES)?;
            let mut slots = txn.open_table(SLOTS)?;
            let mut totals = txn.open_table(TOTALS)?;
            let start = self.tiers.slot_start(0, snapshot.interval_end_unix_ns);
            for (s, hists) in snapshot.series.iter().zip(histograms) {
                let key = SeriesKey::of(&snapshot.agent, s);
                let id = match self.ids.get(&key) {
                    Some(id) => *id,
                    None => {
                        let id = self.keys.keys().next_back().map_or(0, |k| k + 1);
                        series.insert(id, serde_json::to_vec(&key)?.as_slice())?;
                        self.ids.insert(key.clone(), id);
                        self.keys.insert(id, key.clone());
                        new_ids.push(key);
                        id
                    }
                };
                let measured = (
                    snapshot.interval_start_unix_ns,
                    snapshot.interval_end_unix_ns,
                );
                let record = SlotRecord::of(s, hists, measured);
                merge(&mut slots, (id, 0, start), &record)?;
                merge(&mut totals, id, &record)?;
                // Directions learnt for earlier losses join those losses' slot (a slot
                // migrated meanwhile gets them when this finest one migrates: by addition).
                for e in &s.earlier_directions {
                    let late = SlotRecord::of_directions(e);
                    let at = self.tiers.slot_start(0, e.interval_end_unix_ns);
                    merge(&mut slots, (id, 0, at), &late)?;
                    merge(&mut totals, id, &late)?;
                }
            }
            let mut agents = txn.open_table(AGENTS)?;
            let id = snapshot.agent.id.as_str();
            let mut agent = match agents.get(id)? {
                Some(v) => serde_json::from_slice::<AgentState>(v.value())?,
                None => AgentState::new(snapshot, now),
            };
            agent.take_report(snapshot, now);
            agents.insert(id, serde_json::to_vec(&agent)?.as_slice())?;
            let mut tests = txn.open_table(TESTS)?;
            for t in &snapshot.throughput {
                let record = TestRecord {
                    key: ThroughputKey::of(&snapshot.agent, t),
                    result: t.clone(),
                };
                tests.insert(self.next_test, serde_json::to_vec(&record)?.as_slice())?;
                self.next_test += 1;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Moves every slot whose tier has kept it long enough into the next tier (by addition:
    /// exact), and drops those past the last tier (their counts stay in the totals).
    pub fn migrate(&mut self, now: u64) -> Result<Migrated, HistoryError> {
        let mut done = Migrated::default();
        let ids: Vec<u64> = self.keys.keys().copied().collect();
        for batch in ids.chunks(MIGRATE_BATCH) {
            let txn = self.db.begin_write()?;
            {
                let mut slots = txn.open_table(SLOTS)?;
                for &id in batch {
                    for tier in 0..self.tiers.get().len() as u8 {
                        let cutoff = self.tiers.cutoff(tier, now);
                        let aged: Vec<(u64, Vec<u8>)> = slots
                            .range((id, tier, 0)..(id, tier, cutoff))?
                            .map(|e| e.map(|(k, v)| (k.value().2, v.value().to_vec())))
                            .collect::<Result<_, _>>()?;
                        for (start, bytes) in aged {
                            slots.remove((id, tier, start))?;
                            match self.tiers.fate(tier, start, now) {
                                Fate::Stay => {
                                    slots.insert((id, tier, start), bytes.as_slice())?;
                                }
                                Fate::Merge { tier, start_ns } => {
                                    merge(
                                        &mut slots,
                                        (id, tier, start_ns),
                                        &SlotRecord::decode(&bytes)?,
                                    )?;
                                    done.merged += 1;
                                }
                                Fate::Expire => done.expired += 1,
                            }
                        }
                    }
                }
            }
            txn.commit()?;
        }
        Ok(done)
    }

    /// The slots that overlap `[from, to)` of the series `selection` matches, folded into
    /// one answer for `metrics` with their counts within `thresholds_ns`. A series counts
    /// only with data in the range; its agent is listed then, and also when it has none there
    /// but the agent reported within one range's length before `from`: an agent that fell
    /// silent just before the window is a reason to doubt the window (the gate says
    /// `agent_silent`), not a series to forget. The scheduled throughput tests are read
    /// only when the selection names no probe kind (tests have none).
    pub fn query(
        &self,
        selection: &Selection,
        span: Span,
        metrics: &[Metric],
        thresholds_ns: &[u64],
        lowest: impl Fn(u64) -> u64,
    ) -> Result<HistoryAnswer, HistoryError> {
        let Span { from, to, now } = span;
        let txn = self.db.begin_read()?;
        let slots = txn.open_table(SLOTS)?;
        let agents = txn.open_table(AGENTS)?;
        let mut fold = Fold::default();
        let mut series = Vec::new();
        let mut quiet = Vec::new();
        let mut seen: BTreeMap<String, AgentSeen> = BTreeMap::new();
        // How far back a series that went quiet is still expected in the window.
        let expected_since = from.saturating_sub((to.saturating_sub(from)).max(DAY_NS));
        for (id, key) in self.keys.iter().filter(|(_, k)| selects(selection, k)) {
            let mut has_data = false;
            // The end of the latest data at or before `to`: the agent's last report as of
            // the window's end, for a window in the past.
            let mut last_by_to = None::<u64>;
            for (tier, t) in self.tiers.get().iter().enumerate() {
                // Only slots measured wholly inside the range: data from outside it never
                // decides a verdict (the coverage says what the edges cost). The slot
                // holding `to` counts when `to` is now: nothing after it exists yet.
                let first = from.saturating_sub(t.slot_ns - 1);
                for entry in slots.range((*id, tier as u8, first)..(*id, tier as u8, to))? {
                    let (k, v) = entry?;
                    let start = k.value().2;
                    let record = SlotRecord::decode(v.value())?;
                    let (a, b) = record
                        .measured
                        .unwrap_or((start, start.saturating_add(t.slot_ns)));
                    if b > to {
                        // Reports straddled the window's end: the agent ran then.
                        last_by_to = last_by_to.max(Some(to));
                    }
                    if a < from || (b > to && to < now) {
                        continue;
                    }
                    fold.handle_slot(start, t.slot_ns, &record);
                    has_data = true;
                    last_by_to = last_by_to.max(Some(b.min(to)));
                }
            }
            if has_data {
                series.push(SeriesLabels::from(key));
            } else {
                // The latest slot before the window, any tier.
                for (tier, t) in self.tiers.get().iter().enumerate() {
                    let range = (*id, tier as u8, expected_since)..(*id, tier as u8, from);
                    if let Some(entry) = slots.range(range)?.next_back() {
                        let (k, v) = entry?;
                        let start = k.value().2;
                        let end = SlotRecord::decode(v.value())?
                            .measured
                            .map_or(start.saturating_add(t.slot_ns), |m| m.1);
                        last_by_to = last_by_to.max(Some(end.min(from)));
                    }
                }
                if last_by_to.is_some() && key.load != xcbench_snapshot::Load::Bench {
                    quiet.push(SeriesLabels::from(key));
                }
            }
            let agent = key.source.id.as_str();
            if let Some(s) = seen.get_mut(agent) {
                // Another of its series: its latest data before `to` may be later.
                if s.last_report_unix_ns < to {
                    s.last_report_unix_ns = s.last_report_unix_ns.max(last_by_to.unwrap_or(0));
                }
                continue;
            }
            if let Some(a) = agents.get(agent)? {
                let a: AgentState = serde_json::from_slice(a.value())?;
                let recently = from.saturating_sub(to.saturating_sub(from));
                // As of the window's end: an agent that reports now may have been silent
                // then (its data, not its latest report, says).
                let last_report = if a.last_report_ns <= to {
                    a.last_report_ns
                } else {
                    last_by_to.unwrap_or(0)
                };
                if !has_data && !(recently..to).contains(&last_report) {
                    continue;
                }
                seen.insert(
                    agent.to_owned(),
                    AgentSeen {
                        agent: agent.to_owned(),
                        last_report_unix_ns: last_report,
                        gaps: a
                            .gaps
                            .into_iter()
                            .filter(|g| g.to_unix_ns > from && g.from_unix_ns < to)
                            .collect(),
                    },
                );
            }
        }
        let agents = seen.into_values().collect();
        let mut tests = Vec::new();
        let test_table = txn.open_table(TESTS)?;
        let test_rows = if selection.kind.is_none() {
            Some(test_table.iter()?)
        } else {
            None
        };
        for entry in test_rows.into_iter().flatten() {
            let (_, v) = entry?;
            let t: TestRecord = serde_json::from_slice(v.value())?;
            let started = t.result.started_unix_ns;
            if started < from
                || started >= to
                || !selection.matches_test(&t.key.source, &t.key.peer, t.key.protocol)
            {
                continue;
            }
            tests.push(TestSeen {
                src_agent: t.key.source.id.to_string(),
                dst_agent: t.key.peer.id.to_string(),
                protocol: t.key.protocol,
                flow: t.key.flow,
                outcome: t.result.outcome,
                started_unix_ns: started,
                receiver_bytes: t.result.counts.receiver_bytes,
                receiver_ns: t.result.counts.receiver_ns,
            });
        }
        let mut scheduled = Vec::new();
        if selection.kind.is_none() {
            let agent_table = txn.open_table(AGENTS)?;
            for entry in agent_table.iter()? {
                let (_, v) = entry?;
                let a: AgentState = serde_json::from_slice(v.value())?;
                for f in &a.flows {
                    let (Some(every_ns), true) = (
                        f.every_ns,
                        selection.matches_test(&a.identity, &f.peer, f.protocol),
                    ) else {
                        continue;
                    };
                    scheduled.push(ScheduledSeen {
                        src_agent: a.identity.id.to_string(),
                        dst_agent: f.peer.id.to_string(),
                        protocol: f.protocol,
                        flow: f.flow,
                        every_ns,
                    });
                }
            }
        }
        let mut answer = fold.answer(from, to, series, metrics, thresholds_ns, agents, lowest);
        answer.tests = tests;
        answer.quiet = quiet;
        answer.scheduled = scheduled;
        Ok(answer)
    }

    /// Everything the store needs after a restart: every series' totals and its finest
    /// slots that start at or after `since` (for the sliding window), the agents, the tests.
    pub fn restore(&self, since: u64) -> Result<Restored, HistoryError> {
        let txn = self.db.begin_read()?;
        let totals = txn.open_table(TOTALS)?;
        let slots = txn.open_table(SLOTS)?;
        let mut restored = Restored::default();
        for (id, key) in &self.keys {
            let total = match totals.get(*id)? {
                Some(v) => SlotRecord::decode(v.value())?,
                None => SlotRecord::default(),
            };
            let recent = slots
                .range((*id, 0, since)..(*id, 1, 0))?
                .map(|e| {
                    let (k, v) = e?;
                    Ok((k.value().2, SlotRecord::decode(v.value())?))
                })
                .collect::<Result<Vec<_>, HistoryError>>()?;
            restored.series.push((key.clone(), total, recent));
        }
        for entry in txn.open_table(AGENTS)?.iter()? {
            let (_, v) = entry?;
            restored.agents.push(serde_json::from_slice(v.value())?);
        }
        for entry in txn.open_table(TESTS)?.iter()? {
            let (_, v) = entry?;
            let t: TestRecord = serde_json::from_slice(v.value())?;
            restored.tests.push((t.key, t.result));
        }
        Ok(restored)
    }

    /// What the database holds, by redb's own count: bytes of keys and values in every
    /// table, of its B-tree pages beyond them, and of pages allocated but free (a file
    /// also grows ahead of its use).
    pub fn usage(&self) -> Result<Usage, HistoryError> {
        let txn = self.db.begin_write()?;
        let stats = txn.stats()?;
        let usage = Usage {
            stored_bytes: stats.stored_bytes(),
            metadata_bytes: stats.metadata_bytes(),
            fragmented_bytes: stats.fragmented_bytes(),
        };
        txn.abort()?;
        Ok(usage)
    }

    /// Stored slots by tier, and the bytes they take (keys and values).
    pub fn footprint(&self) -> Result<Vec<(u64, u64)>, HistoryError> {
        let txn = self.db.begin_read()?;
        let slots = txn.open_table(SLOTS)?;
        let mut per_tier = vec![(0u64, 0u64); self.tiers.get().len()];
        for entry in slots.iter()? {
            let (k, v) = entry?;
            let t = &mut per_tier[usize::from(k.value().1)];
            t.0 += 1;
            t.1 += 17 + v.value().len() as u64;
        }
        let _ = slots.len()?;
        Ok(per_tier)
    }
}

/// See [`History::usage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub stored_bytes: u64,
    pub metadata_bytes: u64,
    pub fragmented_bytes: u64,
}

/// The tiers a file's slots were written with, as `meta` records them (`tiers`, then
/// `tier{i}` = slot length in ns); files that predate the record were written with the
/// tiers configured now, or, when today's default is configured, with the default before it.
fn written_with(
    meta: &impl ReadableTable<&'static str, u64>,
    now: &Tiers,
) -> Result<Vec<u64>, HistoryError> {
    let Some(n) = meta.get("tiers")?.map(|v| v.value()) else {
        let assumed = match *now == Tiers::default() {
            true => Tiers::before_v2(),
            false => now.clone(),
        };
        return Ok(assumed.get().iter().map(|t| t.slot_ns).collect());
    };
    (0..n)
        .map(|i| {
            Ok(meta
                .get(format!("tier{i}").as_str())?
                .map_or(0, |v| v.value()))
        })
        .collect()
}

/// Moves every slot written under other tiers into the configured ones, by addition (a slot
/// lands in the finest tier whose slots hold it whole, at that slot's start; its measured
/// span goes with it), series by series in batches, then records the tiers. Nothing to do
/// when they are unchanged; a crash part way through does it again on the next open, which
/// leaves slots already moved where they are.
fn relayout(db: &Database, tiers: &Tiers) -> Result<(), HistoryError> {
    let (old, ids) = {
        let txn = db.begin_read()?;
        let old = written_with(&txn.open_table(META)?, tiers)?;
        let ids: Vec<u64> = txn
            .open_table(SERIES)?
            .iter()?
            .map(|e| e.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        (old, ids)
    };
    let now: Vec<u64> = tiers.get().iter().map(|t| t.slot_ns).collect();
    if old != now {
        for batch in ids.chunks(MIGRATE_BATCH) {
            let txn = db.begin_write()?;
            {
                let mut slots = txn.open_table(SLOTS)?;
                for &id in batch {
                    let mut moved: BTreeMap<(u8, u64), SlotRecord> = BTreeMap::new();
                    for (tier, slot_ns) in old.iter().enumerate() {
                        let tier = tier as u8;
                        let home = tiers.home_of((*slot_ns).max(1));
                        if home == tier && now.get(usize::from(tier)) == Some(slot_ns) {
                            continue;
                        }
                        let starts: Vec<u64> = slots
                            .range((id, tier, 0)..=(id, tier, u64::MAX))?
                            .map(|e| e.map(|(k, _)| k.value().2))
                            .collect::<Result<_, _>>()?;
                        for start in starts {
                            if let Some(v) = slots.remove((id, tier, start))? {
                                moved
                                    .entry((home, tiers.slot_start(home, start)))
                                    .or_default()
                                    .add(&SlotRecord::decode(v.value())?);
                            }
                        }
                    }
                    for ((home, start), record) in moved {
                        merge(&mut slots, (id, home, start), &record)?;
                    }
                }
            }
            txn.commit()?;
        }
    }
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert("tiers", now.len() as u64)?;
        for (i, slot_ns) in now.iter().enumerate() {
            meta.insert(format!("tier{i}").as_str(), *slot_ns)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Adds `record` to what `table` holds at `key`.
fn merge<K: redb::Key + 'static>(
    table: &mut redb::Table<K, &'static [u8]>,
    key: K::SelfType<'_>,
    record: &SlotRecord,
) -> Result<(), HistoryError>
where
    for<'a> K::SelfType<'a>: Copy,
{
    let mut merged = match table.get(key)? {
        Some(v) => SlotRecord::decode(v.value())?,
        None => SlotRecord::default(),
    };
    merged.add(record);
    let mut buf = Vec::new();
    merged.encode(&mut buf);
    table.insert(key, buf.as_slice())?;
    Ok(())
}

#[cfg(test)]
mod tests;

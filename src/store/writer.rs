//! The one writer: a thread that commits each applied poll — items and sync state — in one
//! transaction.

use super::changes::Retention;
use super::compression::Encoder;
use super::schema::{column_text, table, upsert_sql};
use super::{Store, StoreError, snapshot};
use crate::cache::Cache;
use crate::model::inventory::Inventory;
use crate::model::item::Item;
use crate::model::row::Row;
use crate::model::status::Outcome;
use crate::sync::{Applied, Journal};
use crate::telemetry::events;
use crate::time::format;
use chrono::{DateTime, Utc};
use rusqlite::params;
use std::time::{Duration, Instant};

impl Store {
    /// Commits one applied poll: its items and the inventory's sync state in one transaction.
    /// `cache` is read only to rewrite a table after an earlier failed write.
    pub fn write(&mut self, applied: &Applied, cache: &Cache) -> Result<WriteStats, StoreError> {
        let inv = applied.inventory;
        // After a failed write the table may lack changes that are in the cache. The next write
        // of any kind rewrites it from the cache before its sync state moves on: an anchor
        // committed past the lost poll would vouch for items the file does not hold.
        let rewrite = self.dirty[inv.index()];
        let result = self.write_tx(applied, rewrite.then_some(cache));
        // Committed: the table holds the cache's whole polls (rewritten or not). Failed: it
        // may lack this one.
        self.dirty[inv.index()] = result.is_err();
        if result.is_err() {
            // The change log's size may have been counted for a write that did not commit.
            self.retention.size = None;
        }
        result.map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            error: source,
        })
    }

    fn write_tx(
        &mut self,
        applied: &Applied,
        rewrite_from: Option<&Cache>,
    ) -> rusqlite::Result<WriteStats> {
        let started = Instant::now();
        let inv = applied.inventory;
        let t = table(inv);
        let report = &applied.report;
        let mut stats = WriteStats::default();
        // A dictionary trained here is recorded in this transaction: its encoder is kept only
        // once the transaction commits, so no row is ever written against one the file lacks.
        let mut trained = None;
        let tx = self.conn.transaction()?;
        // The change log's last entry before this write's.
        let mut mark = None;
        if let Some(cache) = rewrite_from {
            // After a failed write the table may have missed changes: take the cache's (whole
            // polls only) as the truth. Later journal entries re-apply idempotently.
            tx.execute(&format!("DELETE FROM \"{t}\""), [])?;
            let items = cache.snapshot(inv);
            let stored = self.encoders[inv.index()].as_mut();
            stats.upserted = upsert_all(&tx, inv, &items, stored, &mut trained)?;
            // The rows now carry the cache's own last_seen.
            write_full_seen(&tx, inv, None, &[])?;
        } else {
            let logging = Instant::now();
            mark = Some(Retention::mark(&tx)?);
            let begun = super::changes::begin(&tx, applied)?;
            stats.history += logging.elapsed();
            let upserts = begun.as_ref().is_some_and(|b| b.upserts);
            // A large write's entries are prepared on a thread of their own while the rows
            // are written; a small one's after them.
            let prepared = std::thread::scope(|scope| {
                let preparing = (upserts && applied.upserts.len() >= PREPARE_APART)
                    .then(|| scope.spawn(|| super::changes::prepare(applied)));
                {
                    let mut delete =
                        tx.prepare_cached(&format!("DELETE FROM \"{t}\" WHERE key = ?1"))?;
                    for key in &applied.removed {
                        stats.removed += delete.execute([key.as_str()])?;
                    }
                }
                let stored = self.encoders[inv.index()].as_mut();
                stats.upserted = upsert_all(&tx, inv, &applied.upserts, stored, &mut trained)?;
                let waiting = Instant::now();
                let prepared = match preparing {
                    Some(thread) => thread.join().unwrap_or_else(|_| {
                        Err(format!("{inv}: preparing the change log's entries failed"))
                    }),
                    None if upserts => super::changes::prepare(applied),
                    None => Ok(Vec::new()),
                };
                stats.history += waiting.elapsed();
                prepared.map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
            })?;
            if let Some(begun) = begun {
                let logging = Instant::now();
                stats.changes = super::changes::finish(&tx, applied, begun, prepared)?;
                stats.history += logging.elapsed();
            }
            // (A failed poll journals no unchanged keys: it applied nothing.)
            if applied.unseen.is_some() {
                // A complete full pass saw every item it did not list as unseen: recorded once,
                // below, instead of rewriting each row (a row is a whole record: its upstream
                // JSON and every column).
                stats.touched = applied.unchanged.len();
            } else if !applied.unchanged.is_empty() {
                let seen = format::nanos(report.finished);
                let mut touch = tx.prepare_cached(&format!(
                    "UPDATE \"{t}\" SET last_seen = ?1 WHERE key = ?2 AND last_seen < ?1"
                ))?;
                for key in &applied.unchanged {
                    stats.touched += touch.execute(params![seen, key.as_str()])?;
                }
            }
        }
        write_state(&tx, applied)?;
        if let Some(unseen) = &applied.unseen {
            write_full_seen(&tx, inv, Some(report.finished), unseen)?;
        }
        if let Some(cache) = rewrite_from {
            // The failed write may have carried a change of the marks too.
            let mut awaiting: Vec<_> = cache.awaiting(inv).into_iter().collect();
            awaiting.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            write_awaiting(&tx, inv, &awaiting)?;
        } else if let Some(awaiting) = &applied.awaiting {
            write_awaiting(&tx, inv, awaiting)?;
        }
        if let Some(keys) = &applied.placement {
            write_placement(&tx, inv, keys)?;
        }
        super::history::append(&tx, applied)?;
        let written_after = match mark {
            Some(m) => m,
            None => Retention::mark(&tx)?,
        };
        let pruning = Instant::now();
        stats.pruned = self.retention.prune(&tx, report.finished, written_after)?;
        stats.history += pruning.elapsed();
        tx.commit()?;
        if trained.is_some() {
            self.encoders[inv.index()] = trained;
        }
        if stats.removed > 0 || stats.pruned > 0 || rewrite_from.is_some() {
            // Give the freed pages back (a no-op for files made without auto_vacuum). The pragma
            // frees a page per step: step it to the end.
            let mut vacuum = self.conn.prepare_cached("PRAGMA incremental_vacuum")?;
            let mut steps = vacuum.query([])?;
            while steps.next()?.is_some() {}
        }
        stats.duration = started.elapsed();
        Ok(stats)
    }

    /// Consumes the journal on a dedicated thread until every sender is gone. Returns the
    /// journal to give the pollers and the handle to wait for the last commit.
    pub fn spawn_writer(mut self, cache: Cache) -> (Journal, Writer) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Applied>();
        let thread = std::thread::Builder::new()
            .name("ses-store".into())
            .spawn(move || {
                loop {
                    // Rows without their cells are filled in while no poll waits.
                    let next = if self.fill_cells.iter().any(Option::is_some) {
                        match rx.try_recv() {
                            Ok(applied) => Some(applied),
                            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                                self.fill_some_cells();
                                continue;
                            }
                            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => None,
                        }
                    } else {
                        rx.blocking_recv()
                    };
                    let Some(applied) = next else { break };
                    match self.write(&applied, &cache) {
                        Ok(stats) => events::StoreWritten {
                            inventory: applied.inventory,
                            kind: applied.report.kind,
                            outcome: applied.report.outcome,
                            upserted: stats.upserted,
                            removed: stats.removed,
                            touched: stats.touched,
                            changes: stats.changes,
                            pruned: stats.pruned,
                            duration: stats.duration,
                        }
                        .emit(),
                        Err(error) => events::StoreWriteFailed {
                            inventory: applied.inventory,
                            error: &error,
                        }
                        .emit(),
                    }
                }
                if self.snapshot_on_stop {
                    self.leave_snapshot(&cache);
                }
                // Fold the WAL back into the file on a clean stop.
                let _ = self
                    .conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .expect("the store writer thread starts");
        (tx, Writer { thread })
    }
}

impl Store {
    /// On a clean stop, every poll committed: writes the stop snapshot of the three inventories
    /// from `cache` and names its token in the file (see `snapshot`). Only when the cache is
    /// the rows: no write failed since the last rewrite, and every inventory's count agrees
    /// with its table. Whatever fails leaves no snapshot, and the next start reads the rows.
    fn leave_snapshot(&mut self, cache: &Cache) {
        let started = Instant::now();
        let views = Inventory::ALL.map(|inv| cache.view(inv));
        let result = (|| -> Result<u64, String> {
            if let Some(inv) = Inventory::ALL.into_iter().find(|i| self.dirty[i.index()]) {
                return Err(format!("the last write of {inv} failed"));
            }
            for inv in Inventory::ALL {
                let rows: i64 = self
                    .conn
                    .query_row(
                        &format!("SELECT count(*) FROM \"{}\"", table(inv)),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(|e| e.to_string())?;
                let held = views[inv.index()].len();
                if usize::try_from(rows).ok() != Some(held) {
                    return Err(format!("{inv}: {rows} rows, the cache holds {held}"));
                }
            }
            let token = std::hash::BuildHasher::hash_one(
                &std::hash::RandomState::new(),
                (std::process::id(), std::time::SystemTime::now()),
            );
            let mut bytes = 0;
            for inv in Inventory::ALL {
                let placed_by = cache.status(inv).placed_by;
                let items = views[inv.index()].items();
                bytes += snapshot::write(&self.path, inv, token, items, placed_by)
                    .map_err(|e| format!("{}: {e}", snapshot::path(&self.path, inv).display()))?;
            }
            snapshot::sync_dir(&self.path).map_err(|e| e.to_string())?;
            self.conn
                .execute(
                    "INSERT OR REPLACE INTO snapshot (id, token) VALUES (1, ?1)",
                    [token as i64],
                )
                .map_err(|e| e.to_string())?;
            Ok(bytes)
        })();
        match result {
            Ok(bytes) => events::StoreSnapshotWritten {
                items: views.each_ref().map(|v| v.len()),
                bytes,
                duration: started.elapsed(),
            }
            .emit(),
            Err(reason) => {
                snapshot::remove(&self.path);
                events::StoreSnapshotSkipped { reason: &reason }.emit();
            }
        }
    }
}

/// Rows filled in per transaction: short, so that a poll's write waits little behind one.
const FILL_CHUNK: usize = 2000;

impl Store {
    /// Stores the cells of the next rows of the first inventory being filled in (see
    /// `CellFill`), in one short transaction; the row's cells are extracted from its own
    /// upstream JSON, so a row and its cells always agree. A failure stops the filling (the
    /// rows are extracted again at the next start).
    fn fill_some_cells(&mut self) {
        let Some(inv) = Inventory::ALL
            .into_iter()
            .find(|inv| self.fill_cells[inv.index()].is_some())
        else {
            return;
        };
        let started = Instant::now();
        let Some(mut fill) = self.fill_cells[inv.index()].take() else {
            return;
        };
        let end = (fill.done + FILL_CHUNK).min(fill.rowids.len());
        match fill_rows(&mut self.conn, inv, &fill.rowids[fill.done..end]) {
            Ok(()) => {
                fill.done = end;
                fill.took += started.elapsed();
                if fill.done < fill.rowids.len() {
                    self.fill_cells[inv.index()] = Some(fill);
                } else {
                    events::StoreCellsFilled {
                        inventory: inv,
                        rows: fill.done,
                        duration: fill.took,
                    }
                    .emit();
                }
            }
            Err(error) => events::StoreWriteFailed {
                inventory: inv,
                error: &StoreError::Sqlite {
                    path: self.path.clone(),
                    error,
                },
            }
            .emit(),
        }
    }
}

/// Stores the cells of the rows `rowids` of `inv`, extracted from each row's own JSON, in one
/// transaction (a row gone since the warm start is skipped; one rewritten since gets its new
/// JSON's cells).
fn fill_rows(
    conn: &mut rusqlite::Connection,
    inv: Inventory,
    rowids: &[i64],
) -> rusqlite::Result<()> {
    let t = table(inv);
    let tx = conn.transaction()?;
    // Read per chunk: a dictionary trained by a write since is in the file, not in a copy.
    let mut decoders = super::compression::Decoders::read(&tx, inv)?;
    {
        let mut select = tx.prepare(&format!(
            "SELECT raw, raw_dict FROM \"{t}\" WHERE rowid = ?1"
        ))?;
        let mut update = tx.prepare(&format!("UPDATE \"{t}\" SET cells = ?1 WHERE rowid = ?2"))?;
        for &rowid in rowids {
            let mut rows = select.query([rowid])?;
            let Some(r) = rows.next()? else { continue };
            let raw = decoders.json(r.get_ref(0)?, r.get(1)?, 0)?;
            let cells =
                crate::model::row::packed::Packed::new(inv, raw.into_boxed_str()).stored_cells();
            update.execute(params![cells, rowid])?;
        }
    }
    tx.commit()
}

/// Upserts from which the change log's entries are prepared on a thread of their own.
const PREPARE_APART: usize = 256;

/// What one commit did.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    pub upserted: usize,
    pub removed: usize,
    pub touched: usize,
    /// Entries written to the change log, and pruned from it.
    pub changes: usize,
    pub pruned: usize,
    /// Of `duration`, the time the change log took (its entries and pruning).
    pub history: Duration,
    pub duration: Duration,
}

/// The writer thread; [`Writer::finish`] waits for the last commit once the pollers are gone.
pub struct Writer {
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    /// Waits until every journalled poll is committed (call after the pollers stopped).
    pub async fn finish(self) {
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Writes `items`, compressed against the inventory's dictionary (`stored`), or against one
/// trained from them into `trained` when it has none yet. A large write compresses on a
/// second thread, a chunk ahead of the inserts, so that compressing costs the writer no time.
fn upsert_all(
    tx: &rusqlite::Transaction<'_>,
    inv: crate::model::inventory::Inventory,
    items: &[std::sync::Arc<Item>],
    stored: Option<&mut Encoder>,
    trained: &mut Option<Encoder>,
) -> rusqlite::Result<usize> {
    /// Items compressed at a time.
    const CHUNK: usize = 4096;
    if stored.is_none() {
        *trained = Encoder::train(tx, inv, items)?;
    }
    let encoder = trained.as_mut().or(stored);
    let mut upsert = tx.prepare_cached(&upsert_sql(inv))?;
    let failed = |item: &Item, e: std::io::Error| {
        rusqlite::Error::ToSqlConversionFailure(
            format!("{inv} {}: compressing: {e}", item.key.as_str()).into(),
        )
    };
    match encoder {
        None => {
            for item in items {
                upsert_item(&mut upsert, item, Raw::Text)?;
            }
        }
        Some(encoder) if items.len() <= CHUNK => {
            for item in items {
                let frame = encoder.encode(item.raw()).map_err(|e| failed(item, e))?;
                upsert_item(&mut upsert, item, Raw::Frame(&frame, encoder.id))?;
            }
        }
        Some(encoder) => {
            let id = encoder.id;
            let mut worker = encoder.twin().map_err(|e| failed(&items[0], e))?;
            std::thread::scope(|scope| {
                // Dropped before the scope ends: a failed insert stops the compressing thread.
                let (send, frames) = std::sync::mpsc::sync_channel(2);
                scope.spawn(move || {
                    for chunk in items.chunks(CHUNK) {
                        let compressed: Vec<_> =
                            chunk.iter().map(|i| worker.encode(i.raw())).collect();
                        if send.send(compressed).is_err() {
                            return;
                        }
                    }
                });
                for chunk in items.chunks(CHUNK) {
                    let compressed = frames.recv().expect("the compressing thread sends a chunk");
                    for (item, frame) in chunk.iter().zip(compressed) {
                        let frame = frame.map_err(|e| failed(item, e))?;
                        upsert_item(&mut upsert, item, Raw::Frame(&frame, id))?;
                    }
                }
                Ok::<_, rusqlite::Error>(())
            })?;
        }
    }
    Ok(items.len())
}

/// How a row's upstream JSON is written.
enum Raw<'a> {
    /// As text (the inventory has no dictionary yet).
    Text,
    /// A zstd frame against dictionary `.1`.
    Frame(&'a [u8], i64),
}

fn upsert_item(
    stmt: &mut rusqlite::CachedStatement<'_>,
    item: &Item,
    raw: Raw<'_>,
) -> rusqlite::Result<()> {
    let inv = item.inventory();
    let cols = Row::columns(inv);
    // Texts are bound borrowed from the item; entries are written as JSON straight from the
    // cell (no `Value`). Parameters: key, the columns, raw, first_seen, last_seen, raw_dict,
    // cells.
    stmt.raw_bind_parameter(1, item.key.as_str())?;
    for (i, c) in cols.iter().enumerate() {
        let cell = item.cell(i);
        stmt.raw_bind_parameter(i + 2, column_text(c.kind, &cell).as_deref())?;
    }
    let at = cols.len() + 2;
    match raw {
        Raw::Frame(frame, dict) => {
            stmt.raw_bind_parameter(at, frame)?;
            stmt.raw_bind_parameter(at + 3, dict)?;
        }
        Raw::Text => {
            stmt.raw_bind_parameter(at, item.raw())?;
            stmt.raw_bind_parameter(at + 3, rusqlite::types::Null)?;
        }
    }
    stmt.raw_bind_parameter(at + 1, format::nanos(item.first_seen))?;
    stmt.raw_bind_parameter(at + 2, format::nanos(item.last_seen()))?;
    stmt.raw_bind_parameter(at + 4, item.stored_cells())?;
    stmt.raw_execute()?;
    Ok(())
}

/// Records that a complete full pass that ended at `seen` saw every item of `inv` but the
/// `unseen` ones (`None`: no such pass; the rows' own `last_seen` hold).
fn write_full_seen(
    tx: &rusqlite::Transaction<'_>,
    inv: crate::model::inventory::Inventory,
    seen: Option<DateTime<Utc>>,
    unseen: &[crate::model::item::Key],
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sync_state SET full_seen_at = ?2 WHERE inventory = ?1",
        params![inv.as_str(), seen.map(format::nanos)],
    )?;
    tx.execute("DELETE FROM unseen WHERE inventory = ?1", [inv.as_str()])?;
    let mut insert = tx.prepare_cached("INSERT INTO unseen (inventory, key) VALUES (?1, ?2)")?;
    for key in unseen {
        insert.execute(params![inv.as_str(), key.as_str()])?;
    }
    Ok(())
}

fn write_state(tx: &rusqlite::Transaction<'_>, applied: &Applied) -> rusqlite::Result<()> {
    let r = &applied.report;
    let opt = |t: Option<DateTime<Utc>>| t.map(format::nanos);
    let complete = r.outcome == Outcome::Complete;
    tx.execute(
        "INSERT INTO sync_state (inventory, last_complete_full, window_anchor, last_success,
            last_poll_kind, last_poll_outcome, last_poll_started, last_poll_finished,
            skipped_pages, last_error, last_error_at, last_report, settled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(inventory) DO UPDATE SET
            last_complete_full = excluded.last_complete_full,
            window_anchor = excluded.window_anchor,
            last_success = coalesce(excluded.last_success, sync_state.last_success),
            last_poll_kind = excluded.last_poll_kind,
            last_poll_outcome = excluded.last_poll_outcome,
            last_poll_started = excluded.last_poll_started,
            last_poll_finished = excluded.last_poll_finished,
            skipped_pages = excluded.skipped_pages,
            last_error = coalesce(excluded.last_error, sync_state.last_error),
            last_error_at = coalesce(excluded.last_error_at, sync_state.last_error_at),
            last_report = excluded.last_report,
            settled = excluded.settled",
        params![
            applied.inventory.as_str(),
            opt(applied.times.last_complete_full),
            opt(applied.times.window_anchor),
            complete.then(|| format::nanos(r.finished)),
            r.kind.as_str(),
            r.outcome.as_str(),
            format::nanos(r.started),
            format::nanos(r.finished),
            serde_json::to_string(&r.skipped_pages).unwrap_or_else(|_| "[]".into()),
            r.error.as_deref(),
            r.error.as_ref().map(|_| format::nanos(r.finished)),
            serde_json::to_string(r).unwrap_or_default(),
            applied.settled,
        ],
    )?;
    Ok(())
}

/// Replaces the order of the last full listing of `inv`: its keys as a JSON array, compressed.
fn write_placement(
    tx: &rusqlite::Transaction<'_>,
    inv: crate::model::inventory::Inventory,
    keys: &[crate::model::item::Key],
) -> rusqlite::Result<()> {
    let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    let json = serde_json::to_vec(&keys).unwrap_or_default();
    let blob = zstd::bulk::compress(&json, 3)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.execute(
        "INSERT INTO placement (inventory, keys) VALUES (?1, ?2)
         ON CONFLICT(inventory) DO UPDATE SET keys = excluded.keys",
        params![inv.as_str(), blob],
    )?;
    Ok(())
}

/// Replaces the items of `inv` awaiting a second witness.
fn write_awaiting(
    tx: &rusqlite::Transaction<'_>,
    inv: crate::model::inventory::Inventory,
    awaiting: &[(crate::model::item::Key, crate::model::status::Mark)],
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM awaiting WHERE inventory = ?1", [inv.as_str()])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO awaiting (inventory, key, since, misses, certain, gone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (key, mark) in awaiting {
        insert.execute(params![
            inv.as_str(),
            key.as_str(),
            format::nanos(mark.since),
            mark.misses,
            mark.certain,
            mark.gone,
        ])?;
    }
    Ok(())
}

//! The durable store: an embedded SQLite file holding every inventory and its sync state, so
//! that a restart (or a crash, or a power cut) comes back with the inventory intact.
//!
//! - **Layout** (schema version [`SCHEMA_VERSION`], in `PRAGMA user_version`): one table per
//!   inventory (`services`, `carriers`, `resources`) whose columns are the row's columns
//!   ([`Row::columns`]: text; dates as RFC 3339 UTC text; single entries and lists as JSON
//!   text), plus `key` (primary key), `raw` (the upstream JSON), `first_seen` and `last_seen`;
//!   and `sync_state`, one row per inventory with the refresh window's timestamps. Timestamps
//!   the store itself writes (`first_seen`, `last_seen`, `sync_state`) carry nanoseconds, fixed
//!   width, so that comparing them as text compares them as times.
//! - **One writer**: a dedicated thread consumes the pollers' journal ([`Applied`]) and commits
//!   each applied poll in one transaction — items *and* sync state together, so the refresh
//!   window's anchor never runs ahead of the items it vouches for. WAL mode: readers (`export`,
//!   `sqlite3`) never block it. A failed write is logged and never stops polling; the next
//!   write of that inventory (whatever its poll) rewrites its table from the cache first.
//! - **Opening**: a file written by a newer schema is refused and left untouched; a corrupt or
//!   unreadable file is moved aside (never deleted) and the daemon starts empty; a location
//!   that cannot be written is an error at startup.
//! - **Warm start** ([`Store::load`]): items go into the cache before the pollers start; an
//!   inventory with a complete full pass on record is ready at once, and its next poll's window
//!   follows from the stored timestamps (see `window::plan`).

pub mod export;

use crate::cache::{Cache, ItemMap};
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::row::{ColumnKind, Row};
use crate::model::status::{
    ErrorNote, FullReason, Outcome, Phase, PollKind, PollReport, SyncTimes,
};
use crate::sync::{Applied, Journal};
use crate::telemetry::events;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "store {path}: written by a newer ses-inventory (schema version {found}; this one knows up to {SCHEMA_VERSION}); refusing to use it, the file is left untouched (upgrade ses-inventory or point store.path elsewhere)"
    )]
    Newer { path: PathBuf, found: i64 },
    #[error("store {path}: cannot create its directory {dir}: {error}")]
    Directory {
        path: PathBuf,
        dir: PathBuf,
        error: std::io::Error,
    },
    #[error("store {path}: cannot be written ({error}); check store.path and its permissions")]
    Unwritable {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("store {path}: corrupt or unreadable ({reason}), and moving it aside failed: {error}")]
    MoveAside {
        path: PathBuf,
        reason: String,
        error: std::io::Error,
    },
    #[error("store {path}: no such file (is store.path right, and has the daemon run?)")]
    Missing { path: PathBuf },
    #[error("store {path}: {error}")]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
}

/// Resolves `store.path`: empty disables the store; a relative path is taken under systemd's
/// `$STATE_DIRECTORY` when set (`StateDirectory=`), else under the working directory.
pub fn resolve_path(configured: &str) -> Option<PathBuf> {
    let configured = configured.trim();
    if configured.is_empty() {
        return None;
    }
    let path = Path::new(configured);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    // systemd may list several directories separated by ':'; the first is ours.
    let state = std::env::var("STATE_DIRECTORY").ok();
    match state.as_deref().and_then(|s| s.split(':').next()) {
        Some(dir) if !dir.is_empty() => Some(Path::new(dir).join(path)),
        _ => Some(path.to_path_buf()),
    }
}

/// SQL table of an inventory.
pub fn table(inv: Inventory) -> &'static str {
    inv.as_str()
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_time(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// What opening the store found.
#[derive(Debug, Default)]
pub struct Opened {
    /// A corrupt or unreadable file was moved here; the store starts empty.
    pub moved_aside: Option<PathBuf>,
    /// The file did not exist and was created.
    pub created: bool,
}

/// What a warm start loaded, per inventory.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    pub items: [usize; 3],
    pub ready: [bool; 3],
    pub duration: Duration,
}

/// An open store (read-write, for the daemon and `sync-once`).
pub struct Store {
    path: PathBuf,
    conn: Connection,
    /// Inventories whose table may differ from the cache after a failed write.
    dirty: [bool; 3],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`, migrating an older schema. A newer schema is
    /// refused without touching the file; a corrupt or unreadable file is moved aside and a new
    /// one created; a location that cannot be written is an error.
    pub fn open(path: &Path) -> Result<(Store, Opened), StoreError> {
        let mut opened = Opened::default();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| StoreError::Directory {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
                error,
            })?;
        }
        opened.created = !path.exists();
        match Self::open_existing(path) {
            Ok(store) => return Ok((store, opened)),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Corrupt(reason)) => {
                let aside = move_aside(path).map_err(|source| StoreError::MoveAside {
                    path: path.to_path_buf(),
                    reason: reason.clone(),
                    error: source,
                })?;
                events::StoreMovedAside {
                    path,
                    moved_to: &aside,
                    reason: &reason,
                }
                .emit();
                opened.moved_aside = Some(aside);
            }
        }
        match Self::open_existing(path) {
            Ok(store) => Ok((store, opened)),
            Err(Failure::Fatal(e)) => Err(e),
            Err(Failure::Corrupt(reason)) => Err(StoreError::MoveAside {
                path: path.to_path_buf(),
                reason,
                error: std::io::Error::other("a fresh file is still unreadable"),
            }),
        }
    }

    fn open_existing(path: &Path) -> Result<Store, Failure> {
        let unwritable = |source| {
            Failure::Fatal(StoreError::Unwritable {
                path: path.to_path_buf(),
                error: source,
            })
        };
        let classify = |source: rusqlite::Error| {
            if is_corruption(&source) || source.sqlite_error_code() == Some(ErrorCode::CannotOpen) {
                // A file we cannot read as a database; whether the directory is writable is
                // found out when it is moved aside and recreated.
                if path.exists() {
                    return Failure::Corrupt(source.to_string());
                }
            }
            if matches!(
                source.sqlite_error_code(),
                Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen)
            ) {
                return unwritable(source);
            }
            Failure::Corrupt(source.to_string())
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(classify)?;
        // Reading the version touches the header only: it is checked before anything is written.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(classify)?;
        if version > SCHEMA_VERSION {
            return Err(Failure::Fatal(StoreError::Newer {
                path: path.to_path_buf(),
                found: version,
            }));
        }
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(classify)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(classify)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Read-only media answer with their current mode instead of switching.
            return Err(unwritable(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                Some(format!("journal_mode stays {mode}")),
            )));
        }
        // WAL with synchronous=NORMAL: a power cut may lose the last commits, never corrupt.
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;")
            .map_err(classify)?;
        let mut store = Store {
            path: path.to_path_buf(),
            conn,
            dirty: [false; 3],
        };
        store.migrate(version).map_err(classify)?;
        // A light integrity probe: every table is readable. (A full `integrity_check` would
        // read the whole file at each start.)
        for inv in Inventory::ALL {
            store
                .conn
                .query_row(
                    &format!("SELECT count(*) FROM \"{}\"", table(inv)),
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(classify)?;
        }
        Ok(store)
    }

    fn migrate(&mut self, from: i64) -> rusqlite::Result<()> {
        if from == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        if from < 1 {
            tx.execute_batch(&schema_v1())?;
        }
        // Later versions: `if from < 2 { ... }`, each step inside this transaction.
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads every inventory into `cache` and restores its sync state; an inventory with a
    /// complete full pass on record is marked ready. Call before the pollers start.
    pub fn load(&self, cache: &Cache) -> Result<Loaded, StoreError> {
        let started = Instant::now();
        let sqlite = |source| StoreError::Sqlite {
            path: self.path.clone(),
            error: source,
        };
        // Each inventory on its own thread with its own read connection: parsing rows is the cost.
        let maps = std::thread::scope(|scope| {
            let handles = Inventory::ALL.map(|inv| {
                let path = &self.path;
                scope.spawn(move || read_items(path, inv))
            });
            handles.map(|h| h.join().expect("store loader panicked"))
        });
        let mut loaded = Loaded::default();
        for (inv, map) in Inventory::ALL.into_iter().zip(maps) {
            let map = map.map_err(sqlite)?;
            loaded.items[inv.index()] = map.len();
            drop(cache.replace(inv, map));
            let state = self.read_state(inv).map_err(sqlite)?;
            if let Some(state) = state {
                let ready = state.times.last_complete_full.is_some();
                cache.update_status(inv, |s| {
                    s.times = state.times;
                    s.last_success = state.last_success;
                    s.last_error = state.last_error.clone();
                    if ready {
                        s.phase = Phase::Ready;
                    }
                });
                if ready {
                    cache.mark_ready(inv);
                }
                loaded.ready[inv.index()] = ready;
            }
        }
        loaded.duration = started.elapsed();
        events::StoreLoaded {
            path: &self.path,
            items: loaded.items,
            ready: loaded.ready,
            duration: loaded.duration,
        }
        .emit();
        Ok(loaded)
    }

    fn read_state(&self, inv: Inventory) -> rusqlite::Result<Option<StoredState>> {
        self.conn
            .query_row(
                "SELECT last_complete_full, window_anchor, last_success, last_error, last_error_at
                 FROM sync_state WHERE inventory = ?1",
                [inv.as_str()],
                |r| {
                    let error: Option<String> = r.get(3)?;
                    let error_at = parse_time(r.get(4)?);
                    Ok(StoredState {
                        times: SyncTimes {
                            last_complete_full: parse_time(r.get(0)?),
                            window_anchor: parse_time(r.get(1)?),
                        },
                        last_success: parse_time(r.get(2)?),
                        last_error: error
                            .zip(error_at)
                            .map(|(message, at)| ErrorNote { at, message }),
                    })
                },
            )
            .optional()
    }

    /// Commits one applied poll: its items and the inventory's sync state in one transaction.
    /// `cache` is read only to rewrite a table after an earlier failed write.
    pub fn write(&mut self, applied: &Applied, cache: &Cache) -> Result<WriteStats, StoreError> {
        let inv = applied.inventory;
        // After a failed write the table may lack changes that are in the cache. The next write
        // of any kind rewrites it from the cache before its sync state moves on: an anchor
        // committed past the lost poll would vouch for items the file does not hold.
        let rewrite = self.dirty[inv.index()];
        let result = self.write_tx(applied, rewrite.then_some(cache));
        match &result {
            Ok(_) if rewrite => self.dirty[inv.index()] = false,
            Ok(_) => {}
            Err(_) => self.dirty[inv.index()] = true,
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
        let tx = self.conn.transaction()?;
        if let Some(cache) = rewrite_from {
            // After a failed write the table may have missed changes: take the cache's (whole
            // polls only) as the truth. Later journal entries re-apply idempotently.
            tx.execute(&format!("DELETE FROM \"{t}\""), [])?;
            let items = cache.snapshot(inv);
            let mut upsert = tx.prepare_cached(&upsert_sql(inv))?;
            for item in &items {
                upsert_item(&mut upsert, item)?;
            }
            stats.upserted = items.len();
        } else {
            {
                let mut delete =
                    tx.prepare_cached(&format!("DELETE FROM \"{t}\" WHERE key = ?1"))?;
                for key in &applied.removed {
                    stats.removed += delete.execute([key.as_str()])?;
                }
            }
            {
                let mut upsert = tx.prepare_cached(&upsert_sql(inv))?;
                for item in &applied.upserts {
                    upsert_item(&mut upsert, item)?;
                }
                stats.upserted = applied.upserts.len();
            }
            if report.outcome != Outcome::Failed && !applied.unchanged.is_empty() {
                let seen = time_text(report.finished);
                if report.kind == PollKind::Full && report.outcome == Outcome::Complete {
                    // After a complete full pass and its sweep, every row left was seen by it:
                    // one statement instead of one per key. Rows upserted by this pass already
                    // carry a later time than its start.
                    stats.touched = tx.execute(
                        &format!("UPDATE \"{t}\" SET last_seen = ?1 WHERE last_seen < ?2"),
                        params![seen, time_text(report.started)],
                    )?;
                } else {
                    let mut touch = tx.prepare_cached(&format!(
                        "UPDATE \"{t}\" SET last_seen = ?1 WHERE key = ?2 AND last_seen < ?1"
                    ))?;
                    for key in &applied.unchanged {
                        stats.touched += touch.execute(params![seen, key.as_str()])?;
                    }
                }
            }
        }
        write_state(&tx, applied)?;
        tx.commit()?;
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
                while let Some(applied) = rx.blocking_recv() {
                    match self.write(&applied, &cache) {
                        Ok(stats) => events::StoreWritten {
                            inventory: applied.inventory,
                            kind: applied.report.kind,
                            outcome: applied.report.outcome,
                            upserted: stats.upserted,
                            removed: stats.removed,
                            touched: stats.touched,
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
                // Fold the WAL back into the file on a clean stop.
                let _ = self
                    .conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .expect("the store writer thread starts");
        (tx, Writer { thread })
    }
}

/// What one commit did.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    pub upserted: usize,
    pub removed: usize,
    pub touched: usize,
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

enum Failure {
    Fatal(StoreError),
    Corrupt(String),
}

struct StoredState {
    times: SyncTimes,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<ErrorNote>,
}

/// Renames `path` (and its `-wal`/`-shm` companions) to `<name>.corrupt-<UTC time>`.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let with_suffix = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    let aside = with_suffix(path, &format!(".corrupt-{stamp}"));
    std::fs::rename(path, &aside)?;
    for companion in ["-wal", "-shm"] {
        let from = with_suffix(path, companion);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&aside, companion))?;
        }
    }
    Ok(aside)
}

/// The SQL column type of a row column.
fn sql_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text | ColumnKind::Time | ColumnKind::One | ColumnKind::Many => "TEXT",
    }
}

fn schema_v1() -> String {
    let mut sql = String::new();
    for inv in Inventory::ALL {
        let mut cols = String::from("  key TEXT PRIMARY KEY NOT NULL,\n");
        for c in Row::columns(inv) {
            cols.push_str(&format!("  \"{}\" {},\n", c.name, sql_type(c.kind)));
        }
        cols.push_str(
            "  raw TEXT NOT NULL,\n  first_seen TEXT NOT NULL,\n  last_seen TEXT NOT NULL\n",
        );
        sql.push_str(&format!("CREATE TABLE \"{}\" (\n{cols});\n", table(inv)));
    }
    sql.push_str(
        "CREATE TABLE sync_state (
  inventory TEXT PRIMARY KEY NOT NULL,
  last_complete_full TEXT,
  window_anchor TEXT,
  last_success TEXT,
  last_poll_kind TEXT,
  last_poll_outcome TEXT,
  last_poll_started TEXT,
  last_poll_finished TEXT,
  skipped_pages TEXT NOT NULL DEFAULT '[]',
  last_error TEXT,
  last_error_at TEXT,
  last_report TEXT
);\n",
    );
    sql
}

fn upsert_sql(inv: Inventory) -> String {
    let cols = Row::columns(inv);
    let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let n = cols.len();
    let placeholders: Vec<String> = (1..=n + 4).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = names
        .iter()
        .chain(["raw".to_string(), "first_seen".into(), "last_seen".into()].iter())
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO \"{t}\" (key, {names}, raw, first_seen, last_seen) VALUES ({ph})
         ON CONFLICT(key) DO UPDATE SET {updates}",
        t = table(inv),
        names = names.join(", "),
        ph = placeholders.join(", "),
        updates = updates.join(", "),
    )
}

fn upsert_item(stmt: &mut rusqlite::CachedStatement<'_>, item: &Item) -> rusqlite::Result<()> {
    let inv = item.row.inventory();
    let cols = Row::columns(inv);
    let mut values: Vec<Option<String>> = Vec::with_capacity(cols.len() + 4);
    values.push(Some(item.key.to_string()));
    for (i, c) in cols.iter().enumerate() {
        let cell = item.row.cell(i);
        values.push(match c.kind {
            ColumnKind::Text | ColumnKind::Time => cell.to_text(),
            ColumnKind::One if cell.is_empty() => None,
            ColumnKind::One | ColumnKind::Many => Some(cell.to_json().to_string()),
        });
    }
    values.push(Some(item.raw.to_string()));
    values.push(Some(time_text(item.first_seen)));
    values.push(Some(time_text(item.last_seen())));
    stmt.execute(rusqlite::params_from_iter(values.iter()))?;
    Ok(())
}

/// The last poll's report as the store keeps it in `sync_state.last_report` (for people
/// reading the file; nothing loads it back). The store's own shape: fields are named here.
fn stored_report(r: &PollReport) -> serde_json::Value {
    serde_json::json!({
        "kind": r.kind.as_str(),
        "reason": r.reason.map(FullReason::as_str),
        "days_ago": r.days_ago,
        "started": time_text(r.started),
        "finished": time_text(r.finished),
        "pages": r.pages,
        "skipped_pages": r.skipped_pages,
        "skipped": {
            "no_key": r.skipped.no_key,
            "not_object": r.skipped.not_object,
            "duplicates": r.skipped.duplicates,
            "not_kept": r.skipped.not_kept,
        },
        "received": r.received,
        "added": r.added,
        "updated": r.updated,
        "removed": r.removed,
        "candidates": r.churn.candidates,
        "recovered": r.churn.recovered,
        "confirmed_removed": r.churn.confirmed_removed,
        "deferred": r.churn.deferred,
        "outcome": r.outcome.as_str(),
        "error": r.error,
    })
}

fn write_state(tx: &rusqlite::Transaction<'_>, applied: &Applied) -> rusqlite::Result<()> {
    let r = &applied.report;
    let opt = |t: Option<DateTime<Utc>>| t.map(time_text);
    let complete = r.outcome == Outcome::Complete;
    tx.execute(
        "INSERT INTO sync_state (inventory, last_complete_full, window_anchor, last_success,
            last_poll_kind, last_poll_outcome, last_poll_started, last_poll_finished,
            skipped_pages, last_error, last_error_at, last_report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
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
            last_report = excluded.last_report",
        params![
            applied.inventory.as_str(),
            opt(applied.times.last_complete_full),
            opt(applied.times.window_anchor),
            complete.then(|| time_text(r.finished)),
            r.kind.as_str(),
            r.outcome.as_str(),
            time_text(r.started),
            time_text(r.finished),
            serde_json::to_string(&r.skipped_pages).unwrap_or_else(|_| "[]".into()),
            r.error.as_deref(),
            r.error.as_ref().map(|_| time_text(r.finished)),
            stored_report(r).to_string(),
        ],
    )?;
    Ok(())
}

/// Reads one inventory's items on a connection of its own (read-only).
fn read_items(path: &Path, inv: Inventory) -> rusqlite::Result<ItemMap> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let n: i64 = conn.query_row(
        &format!("SELECT count(*) FROM \"{}\"", table(inv)),
        [],
        |r| r.get(0),
    )?;
    let mut map = ItemMap::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut stmt = conn.prepare(&format!(
        "SELECT key, raw, first_seen, last_seen FROM \"{}\"",
        table(inv)
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let raw: String = r.get(1)?;
        let first_seen = parse_time(r.get(2)?).unwrap_or_default();
        let last_seen = parse_time(r.get(3)?).unwrap_or(first_seen);
        // The row is extracted again from the upstream JSON, so rows follow this build's rules.
        let value: serde_json::Value =
            serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null);
        let row = Row::extract(inv, &value);
        drop(value);
        let key = Key::new(&key);
        map.insert(
            key.clone(),
            Arc::new(Item::new(
                key,
                raw.into_boxed_str(),
                row,
                first_seen,
                last_seen,
            )),
        );
    }
    Ok(map)
}

/// Opens the store read-only for readers (`export`): never creates, migrates or moves it.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    let sqlite = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        error: source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(sqlite)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found: version,
        });
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_go_under_the_state_directory_and_empty_disables() {
        assert_eq!(resolve_path("  "), None);
        assert_eq!(
            resolve_path("/x/inventory.db"),
            Some(PathBuf::from("/x/inventory.db"))
        );
        // Relative: under $STATE_DIRECTORY when set (not set by the test runner).
        if std::env::var_os("STATE_DIRECTORY").is_none() {
            assert_eq!(resolve_path("a.db"), Some(PathBuf::from("a.db")));
        }
    }

    #[test]
    fn the_schema_has_every_row_column_and_is_readable_by_name() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&schema_v1()).unwrap();
        for inv in Inventory::ALL {
            let stmt = conn
                .prepare(&format!("SELECT * FROM \"{}\"", table(inv)))
                .unwrap();
            let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
            let mut expected = vec!["key".to_string()];
            expected.extend(Row::columns(inv).iter().map(|c| c.name.to_string()));
            expected.extend(["raw", "first_seen", "last_seen"].map(String::from));
            assert_eq!(names, expected, "{inv}");
            // The upsert statement is valid SQL for this table.
            conn.prepare(&upsert_sql(inv)).unwrap();
        }
    }
}

//! The durable store: an embedded SQLite file holding every inventory and its sync state, so
//! that a restart (or a crash, or a power cut) comes back with the inventory intact.
//!
//! - **Layout** (schema version [`SCHEMA_VERSION`], in `PRAGMA user_version`): one table per
//!   inventory (`services`, `carriers`, `resources`) whose columns are the row's columns
//!   ([`Row::columns`]: text; dates as RFC 3339 UTC text; single entries and lists as JSON
//!   text), plus `key` (primary key), `raw` (the upstream JSON: a zstd frame against the
//!   dictionary `raw_dict` names, or text when it names none; see `compression`),
//!   `first_seen` and `last_seen` (as of the row's own last write: a complete full pass
//!   records once, in `sync_state.full_seen_at`, that it saw every item but those it lists in
//!   `unseen`; `schema::LAST_SEEN` is the item's `last_seen` in SQL), `cells` (the row as the
//!   cache packs it, so that a warm start reads rows instead of extracting them; see
//!   `schema_v5`);
//!   and `sync_state`, one row per inventory with the refresh window's timestamps (and
//!   whether its first buildup was settled); `awaiting`, the items awaiting a second witness
//!   before they are removed (replaced in the transaction of each poll that changed them); and
//!   `poll_history`, the recent polls of each inventory (`history`: created when missing, no
//!   schema version of its own). Timestamps
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
//!   follows from the stored timestamps (see `window::plan`). After a clean stop the items come
//!   from the stop snapshot the writer left (`snapshot`; its token in the `snapshot` table,
//!   schema 6, taken out by every read-write open), else from the rows.

pub mod changes;
mod compression;
pub mod export;
mod history;
mod load;
mod schema;
mod snapshot;
mod writer;

pub use load::Loaded;
pub(crate) use schema::LAST_SEEN;
pub use schema::table;
use schema::{schema_v1, schema_v2, schema_v3, schema_v4, schema_v5, schema_v6};
pub use writer::{WriteStats, Writer};

use crate::model::inventory::Inventory;
use crate::telemetry::events;
use chrono::Utc;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 6;

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
pub(crate) fn resolve_path(configured: &str) -> Option<PathBuf> {
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

/// An open store (read-write, for the daemon and `sync-once`).
pub struct Store {
    path: PathBuf,
    conn: Connection,
    /// Inventories whose table may differ from the cache after a failed write.
    dirty: [bool; 3],
    /// Each inventory's compressor, once it has a dictionary.
    encoders: [Option<compression::Encoder>; 3],
    /// The change log's retention.
    retention: changes::Retention,
    /// Per inventory, the rows whose cells the warm start could not take: the writer fills
    /// them in between polls.
    fill_cells: [Option<CellFill>; 3],
    /// The token of the stop snapshot the file named when it was opened (taken out of the
    /// file by the open): the warm start reads the snapshot files that carry it.
    snapshot_token: Option<u64>,
    /// Whether the writer leaves a stop snapshot behind on a clean stop (see `snapshot`).
    snapshot_on_stop: bool,
}

/// The rows of an inventory whose cells the warm start could not take (missing, of another
/// extraction, or not fitting their JSON), and how far the writer is in filling them in (see
/// `schema_v5`).
#[derive(Debug, Default)]
struct CellFill {
    /// Their rowids, as the warm start read them.
    rowids: Vec<i64>,
    /// How many of `rowids` are done.
    done: usize,
    took: Duration,
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
        if version < 0 {
            // No build writes one: a damaged header. Moved aside as it is, like the next case.
            return Err(Failure::Corrupt(format!(
                "schema version {version}: not a store of ses-inventory"
            )));
        }
        if version == 0 {
            // Version 0 is a new, empty file. One that holds tables is not a store (a corrupt
            // header, or another program's database): moved aside as it is, before the first
            // migration's VACUUM rewrites it.
            let tables: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(classify)?;
            if tables > 0 {
                return Err(Failure::Corrupt(format!(
                    "schema version 0, yet {tables} tables: not a store of ses-inventory"
                )));
            }
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
        // After a checkpoint the WAL is cut back to 64 MiB: a full pass writes hundreds of
        // megabytes in one transaction, which would otherwise stay on disk as the WAL's size.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; \
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(classify)?;
        let mut store = Store {
            path: path.to_path_buf(),
            conn,
            dirty: [false; 3],
            fill_cells: [None, None, None],
            snapshot_token: None,
            snapshot_on_stop: false,
            encoders: [None, None, None],
            retention: changes::Retention::new(90, 0),
        };
        store.migrate(version).map_err(classify)?;
        store
            .conn
            .execute_batch(schema::POLL_HISTORY)
            .map_err(classify)?;
        store
            .conn
            .execute_batch(changes::CHANGES)
            .map_err(classify)?;
        store.snapshot_token = store.take_snapshot_token().map_err(classify)?;
        for inv in Inventory::ALL {
            store.encoders[inv.index()] =
                compression::Encoder::stored(&store.conn, inv).map_err(classify)?;
        }
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
        if from < 1 {
            // A new file returns the pages of removed items to the file system after each
            // write that removed some (`incremental_vacuum`); only settable before any table
            // exists. (Files made before keep reusing their free pages, which bounds them too.)
            // (The empty file already has its header, written when WAL was turned on: an empty
            // VACUUM rewrites it with the new setting, at once.)
            self.conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
        }
        let tx = self.conn.transaction()?;
        if from < 1 {
            tx.execute_batch(&schema_v1())?;
        }
        if from < 2 {
            tx.execute_batch(&schema_v2())?;
        }
        if from < 3 {
            tx.execute_batch(&schema_v3())?;
        }
        if from < 4 {
            tx.execute_batch(&schema_v4())?;
        }
        if from < 5 {
            tx.execute_batch(&schema_v5())?;
        }
        if from < 6 {
            tx.execute_batch(&schema_v6())?;
        }
        // Later versions: `if from < 7 { ... }`, each step inside this transaction.
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()
    }

    /// Keeps the change log's entries at most `max_age_days` days and `max_bytes` bytes
    /// (0: no bound); 90 days and no bound until called.
    pub fn with_retention(mut self, max_age_days: u64, max_bytes: u64) -> Store {
        self.retention = changes::Retention::new(max_age_days, max_bytes);
        self
    }

    /// Leaves a stop snapshot behind on a clean stop (off until called): only where every
    /// change to the cache goes through the journal, so that the cache at the stop is the file's
    /// rows (not on a standby, whose cache follows the mirror).
    pub fn with_snapshot_on_stop(mut self, on: bool) -> Store {
        self.snapshot_on_stop = on;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the current stop snapshot's token out of the file (committed before anything else
    /// is written, so that no later write can leave it looking current); without one, removes
    /// any snapshot files left behind.
    fn take_snapshot_token(&mut self) -> rusqlite::Result<Option<u64>> {
        let token: Option<i64> = self
            .conn
            .query_row("SELECT token FROM snapshot WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        match token {
            Some(_) => {
                self.conn.execute("DELETE FROM snapshot", [])?;
            }
            None => snapshot::remove(&self.path),
        }
        Ok(token.map(|t| t as u64))
    }
}

enum Failure {
    Fatal(StoreError),
    Corrupt(String),
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
    use super::schema::upsert_sql;
    use super::*;
    use crate::model::row::Row;
    use crate::time::format;

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

    fn service(n: usize) -> std::sync::Arc<crate::model::item::Item> {
        use crate::model::item::{Item, Key};
        let key = format!("SES-SVC-{n:05}");
        let raw = serde_json::json!({
            "id": format!("{n:032x}"),
            "externalId": key,
            "name": format!("Service {n} \u{e9}\"quoted\""),
            "status": "Operational",
            "category": "CFS",
            "relatedParty": [{"id": format!("CUST-{}", n % 7), "name": "Customer", "role": "Customer"}],
        })
        .to_string();
        let t = chrono::DateTime::from_timestamp(1_700_000_000 + n as i64, 0).unwrap();
        std::sync::Arc::new(Item::new(
            Key::new(&key),
            Inventory::Services,
            raw.into_boxed_str(),
            t,
            t,
        ))
    }

    fn applied(upserts: Vec<std::sync::Arc<crate::model::item::Item>>) -> crate::sync::Applied {
        crate::sync::Applied::refresh(Inventory::Services, upserts, chrono::Utc::now())
    }

    /// An applied refresh of services that ended `days` after a fixed day.
    fn applied_at(
        upserts: Vec<std::sync::Arc<crate::model::item::Item>>,
        days: i64,
    ) -> crate::sync::Applied {
        let mut a = applied(upserts);
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
            + chrono::Duration::days(days);
        a.report.started = t;
        a.report.finished = t;
        a
    }

    /// Service `n` with its name changed to `name`.
    fn renamed(n: usize, name: &str) -> std::sync::Arc<crate::model::item::Item> {
        let s = service(n);
        let mut raw: serde_json::Value = serde_json::from_str(s.raw()).unwrap();
        raw["name"] = serde_json::json!(name);
        std::sync::Arc::new(crate::model::item::Item::new(
            s.key.clone(),
            Inventory::Services,
            raw.to_string().into_boxed_str(),
            s.first_seen,
            s.first_seen,
        ))
    }

    /// Service 1 renamed `day N` on day `day`, replacing its version of the day before.
    fn rename_on(day: i64) -> crate::sync::Applied {
        let previous = match day {
            1 => service(1),
            _ => renamed(1, &format!("day {}", day - 1)),
        };
        applied_at(vec![renamed(1, &format!("day {day}"))], day).with_previous(vec![Some(previous)])
    }

    fn change_days(store: &Store) -> Vec<(String, i64)> {
        let mut stmt = store
            .conn
            .prepare("SELECT CASE c.kind WHEN 0 THEN 'baseline' ELSE 'updated' END, (unixepoch(p.at) - 1800000000) / 86400 FROM change_log c JOIN change_polls p ON p.id = c.poll ORDER BY c.id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn every_earlier_version_reads_back_exactly_and_as_it_was_at_a_time() {
        let dir = std::env::temp_dir().join(format!("sesinv-versions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inventory.db");
        let cache = crate::cache::Cache::new();
        let (mut store, _) = Store::open(&path).unwrap();
        // Enough items for a dictionary: rows are frames, as in production.
        let all: Vec<_> = (1..=150).map(service).collect();
        store.write(&applied_at(all, 0), &cache).unwrap();
        let mut written = vec![service(1).raw().to_string()];
        for day in 1..=3 {
            written.push(renamed(1, &format!("day {day}")).raw().to_string());
            store.write(&rename_on(day), &cache).unwrap();
        }
        // Removed (gone upstream) on day 4, back on day 5.
        let mut gone = applied_at(Vec::new(), 4);
        gone.removed = vec![service(1).key.clone()];
        gone.gone = gone.removed.clone();
        store.write(&gone, &cache).unwrap();
        store
            .write(&applied_at(vec![service(1)], 5), &cache)
            .unwrap();

        let conn = open_read_only(&path).unwrap();
        let key = service(1).key.to_string();
        let versions = changes::versions(&conn, Inventory::Services, &key).unwrap();
        let kinds: Vec<_> = versions.iter().map(|(c, _)| c.kind.as_str()).collect();
        assert_eq!(kinds, ["updated", "updated", "updated", "removed", "added"]);
        let befores: Vec<_> = versions.iter().map(|(_, b)| b.as_deref()).collect();
        assert_eq!(
            befores,
            [
                Some(written[0].as_str()),
                Some(written[1].as_str()),
                Some(written[2].as_str()),
                Some(written[3].as_str()),
                None
            ]
        );
        assert_eq!(versions[3].0.reason.as_deref(), Some("gone"));
        let day = |d: i64, h: i64| {
            chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
                + chrono::Duration::days(d)
                + chrono::Duration::hours(h)
        };
        let at = |t| changes::item_at(&conn, Inventory::Services, &key, t).unwrap();
        for d in 0..=3 {
            assert_eq!(
                at(day(d, 12)).as_deref(),
                Some(written[d as usize].as_str()),
                "day {d}"
            );
        }
        assert_eq!(at(day(4, 12)), None, "removed then");
        assert_eq!(at(day(5, 12)).as_deref(), Some(service(1).raw()), "back");
        assert_eq!(at(day(-1, 0)), None, "before the log");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_write_that_fails_midway_leaves_neither_items_nor_history_half_written() {
        let dir = std::env::temp_dir().join(format!("sesinv-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inventory.db");
        let cache = crate::cache::Cache::new();
        let (mut store, _) = Store::open(&path).unwrap();
        store
            .write(&applied_at(vec![service(1), service(2)], 0), &cache)
            .unwrap();
        // The row of service 2 cannot be written: the write fails after it recorded its poll in
        // the change log and wrote service 1's row.
        store
            .conn
            .execute_batch(&format!(
                "CREATE TRIGGER refuse BEFORE UPDATE ON services WHEN new.key = '{}'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
                service(2).key.as_str()
            ))
            .unwrap();
        let count = |store: &Store, sql: &str| -> i64 {
            store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        let log = |store: &Store| count(store, "SELECT count(*) FROM change_log");
        let polls = |store: &Store| count(store, "SELECT count(*) FROM change_polls");
        let (entries, polls_before) = (log(&store), polls(&store));
        let mut both = applied_at(vec![renamed(1, "x"), renamed(2, "y")], 1)
            .with_previous(vec![Some(service(1)), Some(service(2))]);
        both.removed = Vec::new();
        assert!(store.write(&both, &cache).is_err());
        assert_eq!(log(&store), entries, "no entry of the failed write");
        assert_eq!(polls(&store), polls_before, "nor its poll");
        let name: String = store
            .conn
            .query_row(
                "SELECT name FROM services WHERE key = ?1",
                [service(1).key.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(name, "Service 1 \u{e9}\"quoted\"", "nor service 1's row");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_change_log_is_pruned_by_age_then_by_size() {
        let dir = std::env::temp_dir().join(format!("sesinv-changes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inventory.db");
        let cache = crate::cache::Cache::new();
        let (store, _) = Store::open(&path).unwrap();
        // Kept three days.
        let mut store = store.with_retention(3, 0);
        store
            .write(&applied_at(vec![service(1), service(2)], 0), &cache)
            .unwrap();
        for day in 1..=5 {
            store.write(&rename_on(day), &cache).unwrap();
        }
        // Written on day 5: what is older than day 2 is gone (the baseline of day 0, day 1's).
        assert_eq!(
            change_days(&store),
            [
                ("updated".into(), 2),
                ("updated".into(), 3),
                ("updated".into(), 4),
                ("updated".into(), 5)
            ]
        );
        // Bounded by size: two entries fit.
        let one: i64 = store
            .conn
            .query_row(
                &format!("SELECT max({}) FROM change_log", changes::ENTRY_SIZE),
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut store = store.with_retention(0, (2 * one + one / 2) as u64);
        store.write(&rename_on(6), &cache).unwrap();
        assert_eq!(
            change_days(&store),
            [("updated".into(), 5), ("updated".into(), 6)],
            "the oldest go first, until the rest fit"
        );
        // The next write counts only what it added.
        store.write(&rename_on(7), &cache).unwrap();
        assert_eq!(
            change_days(&store),
            [("updated".into(), 6), ("updated".into(), 7)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// key → upstream JSON of every cached service after a warm start from `path`.
    fn loaded(path: &Path) -> std::collections::BTreeMap<String, String> {
        let cache = crate::cache::Cache::new();
        let (mut store, _) = Store::open(path).unwrap();
        store.load(&cache).unwrap();
        cache
            .snapshot(Inventory::Services)
            .iter()
            .map(|i| (i.key.to_string(), i.raw().to_string()))
            .collect()
    }

    #[test]
    fn a_version_1_file_is_migrated_in_place_and_its_rows_read_beside_compressed_ones() {
        let dir = std::env::temp_dir().join(format!("sesinv-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inventory.db");
        // A file as version 1 wrote it: the upstream JSON as text.
        let old: Vec<_> = (0..3).map(service).collect();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema_v1()).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            for item in &old {
                conn.execute(
                    "INSERT INTO services (key, raw, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)",
                    rusqlite::params![item.key.as_str(), item.raw(), format::nanos(item.first_seen)],
                )
                .unwrap();
            }
        }
        let mut expected: std::collections::BTreeMap<String, String> = old
            .iter()
            .map(|i| (i.key.to_string(), i.raw().to_string()))
            .collect();
        assert_eq!(loaded(&path), expected, "version 1 rows load as they were");

        // Too few items to train on: stored as text. Then enough: a dictionary, and frames
        // (more than a chunk: compressed on a second thread ahead of the inserts).
        let few: Vec<_> = (3..10).map(service).collect();
        let many: Vec<_> = (10..10_010).map(service).collect();
        {
            let (mut store, _) = Store::open(&path).unwrap();
            let cache = crate::cache::Cache::new();
            store.write(&applied(few.clone()), &cache).unwrap();
            assert!(store.encoders[0].is_none(), "no dictionary from 7 items");
            store.write(&applied(many.clone()), &cache).unwrap();
            assert!(
                store.encoders[0].is_some(),
                "a dictionary from 10,000 items"
            );
        }
        for item in few.iter().chain(&many) {
            expected.insert(item.key.to_string(), item.raw().to_string());
        }
        assert_eq!(
            loaded(&path),
            expected,
            "text and compressed rows load alike"
        );

        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let kinds: Vec<(String, i64, i64)> = conn
            .prepare(
                "SELECT typeof(raw), count(*), coalesce(sum(length(raw)), 0) FROM services
                 GROUP BY typeof(raw) ORDER BY 1",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert_eq!((kinds[0].0.as_str(), kinds[0].1), ("blob", 10_000));
        assert_eq!((kinds[1].0.as_str(), kinds[1].1), ("text", 10));
        let json_bytes: usize = many.iter().map(|i| i.raw().len()).sum();
        assert!(
            (kinds[0].2 as usize) * 3 < json_bytes,
            "compressed to under a third: {} of {json_bytes} bytes",
            kinds[0].2
        );
        // Every frame names the dictionary it needs, which the file holds.
        let orphans: i64 = conn
            .query_row(
                "SELECT count(*) FROM services WHERE raw_dict IS NOT NULL
                 AND raw_dict NOT IN (SELECT id FROM dictionaries WHERE inventory = 'services')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_schema_has_every_row_column_and_is_readable_by_name() {
        let conn = Connection::open_in_memory().unwrap();
        for step in [
            schema_v1(),
            schema_v2(),
            schema_v3(),
            schema_v4(),
            schema_v5(),
            schema_v6(),
        ] {
            conn.execute_batch(&step).unwrap();
        }
        for inv in Inventory::ALL {
            let stmt = conn
                .prepare(&format!("SELECT * FROM \"{}\"", table(inv)))
                .unwrap();
            let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
            let mut expected = vec!["key".to_string()];
            expected.extend(Row::columns(inv).iter().map(|c| c.name.to_string()));
            expected
                .extend(["raw", "first_seen", "last_seen", "raw_dict", "cells"].map(String::from));
            assert_eq!(names, expected, "{inv}");
            // The upsert statement is valid SQL for this table.
            conn.prepare(&upsert_sql(inv)).unwrap();
        }
    }
}

//! The change log: one entry per item a poll added, updated or removed, written in that poll's
//! transaction (so the items and their history never disagree), read by the API, the console
//! and `ses-inventory changes`.
//!
//! - An **update** names the row's columns that changed, each from what to what (the columns'
//!   text as the inventory's table holds it; `null` for empty), and keeps the item's upstream
//!   JSON as it was before, compressed against the version that replaced it
//!   ([`Deltas`]: what changed costs bytes, what stayed almost none). A change outside the
//!   columns is an update with no columns.
//! - A **removal** says why (`gone`: gone upstream, by two witnesses; `not_kept`: it left the
//!   keep rules) and keeps the last version as the row held it (its frame, copied).
//! - An item's versions are therefore read newest first: the row as it is now, then each
//!   update's `before` against the version after it ([`versions`]).
//! - The first poll that fills an empty inventory of a file without history is its
//!   **baseline**: one entry with the number of items, not one addition per item.
//! - **Polls** are kept once (`change_polls`: inventory, kind, reason, start, end, and the range
//!   of entry ids they wrote), entries name theirs: a time filter becomes a range of entry ids.
//! - **Retention**: entries older than `store.history_max_age_days` go, oldest first, after
//!   each write; so do the oldest while the log is larger than `store.history_max_bytes`.
//!
//! The tables are created when missing, on every open, like `poll_history`: older builds ignore
//! them. Times are the store's fixed-width nanosecond text.

use super::compression::{Decoders, Deltas};
use super::schema::table;
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::row::Row;
use crate::sync::Applied;
use crate::time::format;
use chrono::{DateTime, Utc};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use std::collections::HashSet;

pub(super) const CHANGES: &str = "CREATE TABLE IF NOT EXISTS change_polls (
  id INTEGER PRIMARY KEY,
  inventory INTEGER NOT NULL,
  kind TEXT NOT NULL,
  reason TEXT,
  started TEXT NOT NULL,
  at TEXT NOT NULL,
  first_entry INTEGER NOT NULL,
  last_entry INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS change_polls_by_time ON change_polls (at);
CREATE TABLE IF NOT EXISTS change_log (
  id INTEGER PRIMARY KEY,
  poll INTEGER NOT NULL,
  inventory INTEGER NOT NULL,
  key TEXT NOT NULL,
  kind INTEGER NOT NULL,
  columns TEXT,
  reason INTEGER,
  items INTEGER,
  before BLOB,
  before_form INTEGER
);
CREATE INDEX IF NOT EXISTS change_log_by_item ON change_log (inventory, key, id);\n";

/// How an entry's `before` is held: text, against the version after it, or a row's frame
/// against the inventory's dictionary `n > 0` (copied from the row).
const FORM_TEXT: i64 = 0;
const FORM_DELTA: i64 = -1;

/// A removal's reasons, as stored.
const GONE: i64 = 1;
const NOT_KEPT: i64 = 2;

/// What happened to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The inventory's first fill: one entry per inventory, with its number of items.
    Baseline,
    Added,
    Updated,
    Removed,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 4] = [
        ChangeKind::Baseline,
        ChangeKind::Added,
        ChangeKind::Updated,
        ChangeKind::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Baseline => "baseline",
            ChangeKind::Added => "added",
            ChangeKind::Updated => "updated",
            ChangeKind::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn code(self) -> i64 {
        self as i64
    }

    fn from_code(code: i64) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// A write's entries, begun before its rows change: its poll, and the entries written so far
/// (a baseline, or the removals, which copy the rows they remove).
pub(super) struct Begun {
    poll: i64,
    first: i64,
    written: usize,
    /// The upserts are entries too (not a baseline).
    pub(super) upserts: bool,
}

/// An upsert's entry, prepared off the writer's thread ([`prepare`]).
pub(super) struct Prepared {
    kind: ChangeKind,
    columns: Option<String>,
    frame: Option<Vec<u8>>,
}

/// Begins the entries of `applied`, before its rows are written: its poll, a baseline for a
/// first fill, the removals (the rows they remove are copied). `None` when it changed nothing.
pub(super) fn begin(tx: &Transaction<'_>, applied: &Applied) -> rusqlite::Result<Option<Begun>> {
    let inv = applied.inventory;
    let t = table(inv);
    let report = &applied.report;
    if applied.upserts.is_empty() && applied.removed.is_empty() {
        return Ok(None);
    }
    let inv_code = inv.index() as i64;
    let first: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM change_log", [], |r| {
        r.get(0)
    })?;
    tx.execute(
        "INSERT INTO change_polls (inventory, kind, reason, started, at, first_entry, last_entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            inv_code,
            report.kind.as_str(),
            report.reason.map(|r| r.as_str()),
            format::nanos(report.started),
            format::nanos(report.finished),
            first,
        ],
    )?;
    let poll = tx.last_insert_rowid();
    let empty: bool = tx.query_row(
        &format!(
            "SELECT NOT EXISTS (SELECT 1 FROM \"{t}\")
                AND NOT EXISTS (SELECT 1 FROM change_polls WHERE inventory = ?1 AND id < ?2)"
        ),
        params![inv_code, poll],
        |r| r.get(0),
    )?;
    let mut begun = Begun {
        poll,
        first,
        written: 0,
        upserts: !empty,
    };
    if empty {
        tx.execute(
            "INSERT INTO change_log (poll, inventory, key, kind, items) VALUES (?1, ?2, '', ?3, ?4)",
            params![
                poll,
                inv_code,
                ChangeKind::Baseline.code(),
                applied.upserts.len() as i64
            ],
        )?;
        begun.written = 1;
        return Ok(Some(begun));
    }
    let gone: HashSet<&Key> = applied.gone.iter().collect();
    let mut removed = tx.prepare_cached(&format!(
        "INSERT INTO change_log (poll, inventory, key, kind, reason, before, before_form)
         SELECT ?1, ?2, key, ?3, ?4, raw, coalesce(raw_dict, {FORM_TEXT}) FROM \"{t}\" WHERE key = ?5"
    ))?;
    for key in &applied.removed {
        let reason = if gone.contains(key) { GONE } else { NOT_KEPT };
        begun.written += removed.execute(params![
            poll,
            inv_code,
            ChangeKind::Removed.code(),
            reason,
            key.as_str()
        ])?;
    }
    Ok(Some(begun))
}

/// The entries of `applied`'s upserts: for an update, the columns that changed and the version
/// it replaces (from `applied.previous`, as the cache held it, and so the table: the journal is
/// written in the order the polls were applied) against the new one. No SQL: it runs on any
/// thread, while the writer writes the rows.
pub(super) fn prepare(applied: &Applied) -> Result<Vec<Prepared>, String> {
    let inv = applied.inventory;
    let mut deltas = Deltas::new();
    applied
        .upserts
        .iter()
        .enumerate()
        .map(
            |(i, item)| match applied.previous.get(i).and_then(Option::as_ref) {
                None => Ok(Prepared {
                    kind: ChangeKind::Added,
                    columns: None,
                    frame: None,
                }),
                Some(old) => Ok(Prepared {
                    kind: ChangeKind::Updated,
                    columns: Some(diff(inv, old, item)),
                    frame: Some(deltas.encode(old.raw(), item.raw()).map_err(|e| {
                        format!("{inv} {}: the version before: {e}", item.key.as_str())
                    })?),
                }),
            },
        )
        .collect()
}

/// Writes the upserts' entries [`prepare`] made and closes the poll's range; returns how many
/// entries the write made in all.
pub(super) fn finish(
    tx: &Transaction<'_>,
    applied: &Applied,
    mut begun: Begun,
    prepared: Vec<Prepared>,
) -> rusqlite::Result<usize> {
    let inv_code = applied.inventory.index() as i64;
    let mut insert = tx.prepare_cached(
        "INSERT INTO change_log (poll, inventory, key, kind, columns, before, before_form)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (item, p) in applied.upserts.iter().zip(prepared) {
        insert.execute(params![
            begun.poll,
            inv_code,
            item.key.as_str(),
            p.kind.code(),
            p.columns,
            p.frame,
            frame_form(&p.kind),
        ])?;
        begun.written += 1;
    }
    if begun.written == 0 {
        tx.execute("DELETE FROM change_polls WHERE id = ?1", [begun.poll])?;
    } else {
        tx.execute(
            "UPDATE change_polls SET last_entry = ?2 WHERE id = ?1",
            params![begun.poll, begun.first + begun.written as i64 - 1],
        )?;
    }
    Ok(begun.written)
}

fn frame_form(kind: &ChangeKind) -> Option<i64> {
    (*kind == ChangeKind::Updated).then_some(FORM_DELTA)
}

/// The columns of `item` that differ from `old`'s, as a JSON object `{"column": [from, to]}`
/// (texts as the table holds them).
fn diff(inv: Inventory, old: &Item, item: &Item) -> String {
    let mut out = serde_json::Map::new();
    for (i, c) in Row::columns(inv).iter().enumerate() {
        let (was, now) = (old.cell(i), item.cell(i));
        if was == now {
            continue;
        }
        let was = super::schema::column_text(c.kind, &was);
        let now = super::schema::column_text(c.kind, &now);
        if was != now {
            out.insert(c.name.to_string(), serde_json::json!([was, now]));
        }
    }
    serde_json::Value::Object(out).to_string()
}

/// How long and how large the change log may grow, and its size as last counted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retention {
    /// Entries older than this go (0: no bound).
    pub(super) max_age_days: u64,
    /// The oldest entries go while the log is larger (0: no bound).
    pub(super) max_bytes: u64,
    /// The log's size as [`Retention::prune`] counts it ([`ENTRY_SIZE`]), once counted: kept
    /// up to date by each write, so the whole log is read once.
    /// `None` after a write failed.
    pub(super) size: Option<i64>,
}

/// What an entry costs on disk, near enough, in SQL: its kept version, its columns, its key
/// twice (the row and the item index) and 24 bytes of numbers and record headers.
pub(super) const ENTRY_SIZE: &str =
    "coalesce(length(before), 0) + coalesce(length(columns), 0) + 2 * length(key) + 24";

impl Retention {
    pub(super) fn new(max_age_days: u64, max_bytes: u64) -> Retention {
        Retention {
            max_age_days,
            max_bytes,
            size: None,
        }
    }

    /// The entry ids this transaction starts after: [`Retention::prune`] counts what it wrote.
    pub(super) fn mark(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
        tx.query_row("SELECT coalesce(max(id), 0) FROM change_log", [], |r| {
            r.get(0)
        })
    }

    /// Deletes the entries of the polls that ended more than `max_age_days` ago, then the
    /// oldest while the log is larger than `max_bytes`; `written_after` is the
    /// [`Retention::mark`] taken before this write's entries. Returns how many went.
    pub(super) fn prune(
        &mut self,
        tx: &Transaction<'_>,
        now: DateTime<Utc>,
        written_after: i64,
    ) -> rusqlite::Result<usize> {
        let size = |tx: &Transaction<'_>, from: i64, to: i64| {
            tx.query_row(
                &format!(
                    "SELECT coalesce(sum({ENTRY_SIZE}), 0)
                     FROM change_log WHERE id > ?1 AND id <= ?2"
                ),
                [from, to],
                |r| r.get::<_, i64>(0),
            )
        };
        let mut pruned = 0;
        if self.max_bytes > 0 {
            self.size = Some(match self.size {
                Some(known) => known + size(tx, written_after, i64::MAX)?,
                None => size(tx, 0, i64::MAX)?,
            });
        }
        if self.max_age_days > 0 {
            let horizon = now - chrono::Duration::days(self.max_age_days.min(100_000) as i64);
            // Entry ids grow with the polls' ends (one writer): the entries of the polls that
            // ended before the horizon are those up to the last such poll's last entry.
            let last: Option<i64> = tx.query_row(
                "SELECT max(last_entry) FROM change_polls WHERE at < ?1",
                [format::nanos(horizon)],
                |r| r.get(0),
            )?;
            if let Some(last) = last {
                if let Some(total) = self.size.as_mut() {
                    *total -= size(tx, 0, last)?;
                }
                pruned += tx.execute("DELETE FROM change_log WHERE id <= ?1", [last])?;
            }
        }
        if let Some(total) = self.size.as_mut() {
            let mut excess = *total - self.max_bytes as i64;
            if excess > 0 {
                // The oldest entries that cover the excess.
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT id, {ENTRY_SIZE} FROM change_log ORDER BY id"
                ))?;
                let mut rows = stmt.query([])?;
                let mut last = None;
                while excess > 0 {
                    let Some(r) = rows.next()? else { break };
                    let (id, bytes): (i64, i64) = (r.get(0)?, r.get(1)?);
                    excess -= bytes;
                    *total -= bytes;
                    last = Some(id);
                }
                drop(rows);
                if let Some(id) = last {
                    pruned += tx.execute("DELETE FROM change_log WHERE id <= ?1", [id])?;
                }
            }
        }
        if pruned > 0 {
            tx.execute(
                "DELETE FROM change_polls
                 WHERE last_entry < coalesce((SELECT min(id) FROM change_log), 1 << 62)",
                [],
            )?;
        }
        Ok(pruned)
    }
}

/// One entry of the change log, as the API, the console and the CLI show it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// The entry's number, increasing with time: the cursor of the change log's pages.
    pub seq: i64,
    #[schema(value_type = String)]
    pub inventory: Inventory,
    /// The item's id (empty for a baseline).
    pub id: String,
    pub kind: ChangeKind,
    /// When the poll that made it ended (RFC 3339).
    pub at: String,
    /// The poll that made it: `full` or `refresh`.
    pub poll_kind: String,
    /// Why that full pass ran (`initial`, `settling`, `scheduled`, `requested`, ...).
    pub poll_reason: Option<String>,
    /// When that poll started (RFC 3339): `poll=` takes it.
    pub poll_started: String,
    /// For an update: each changed column, `[from, to]`.
    #[schema(value_type = Option<Object>)]
    pub columns: Option<serde_json::Value>,
    /// For a removal: `gone` (gone upstream) or `not_kept` (left the keep rules).
    pub reason: Option<String>,
    /// For a baseline: the items the inventory was filled with.
    pub items: Option<i64>,
    /// Whether the version before this change is kept (`?at=` can show it).
    pub has_before: bool,
}

/// Which entries to read; every filter optional, newest first.
#[derive(Clone, Debug, Default)]
pub struct ChangeFilter {
    pub inventory: Option<Inventory>,
    pub key: Option<String>,
    pub kinds: Vec<ChangeKind>,
    /// Only updates that changed this column.
    pub column: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only the changes of the poll that started at this time.
    pub poll: Option<DateTime<Utc>>,
    /// Only entries older than this id (the cursor).
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// The columns every reader of entries selects, over `change_log c JOIN change_polls p`.
const ENTRY: &str = "c.id, c.inventory, c.key, c.kind, p.at, p.kind, p.reason, p.started,
    c.columns, c.reason, c.items, c.before IS NOT NULL";

/// Reads entries of the change log; `limit + 1` are read, so the caller knows whether a next
/// page exists.
pub fn list(conn: &Connection, f: &ChangeFilter) -> rusqlite::Result<Vec<Change>> {
    let mut sql =
        format!("SELECT {ENTRY} FROM change_log c JOIN change_polls p ON p.id = c.poll WHERE 1");
    let mut args: Vec<Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(inv) = f.inventory {
        // With an id, the item index finds its entries; without, the scan goes newest first
        // by id and stops at the page's end (`+` keeps SQLite from sorting a whole inventory's
        // entries found by that index instead).
        let clause = if f.key.is_some() {
            " AND c.inventory = ?"
        } else {
            " AND +c.inventory = ?"
        };
        arg(&mut sql, clause, (inv.index() as i64).into());
    }
    if let Some(key) = &f.key {
        arg(&mut sql, " AND c.key = ?", key.clone().into());
    }
    if !f.kinds.is_empty() {
        let list: Vec<String> = f.kinds.iter().map(|k| k.code().to_string()).collect();
        sql.push_str(&format!(" AND c.kind IN ({})", list.join(", ")));
    }
    if let Some(column) = &f.column {
        arg(
            &mut sql,
            &format!(
                " AND c.kind = {} AND json_type(c.columns, '$.\"' || ? || '\"') IS NOT NULL",
                ChangeKind::Updated.code()
            ),
            column.replace('"', "").into(),
        );
    }
    // Times select polls, and polls ranges of entry ids: the scan starts and stops there.
    if let Some(since) = f.since {
        let since = format::nanos(since);
        arg(
            &mut sql,
            " AND c.id >= coalesce((SELECT min(first_entry) FROM change_polls WHERE at >= ?), 1 << 62)",
            since.clone().into(),
        );
        arg(&mut sql, " AND p.at >= ?", since.into());
    }
    if let Some(until) = f.until {
        let until = format::nanos(until);
        arg(
            &mut sql,
            " AND c.id <= coalesce((SELECT max(last_entry) FROM change_polls WHERE at < ?), 0)",
            until.clone().into(),
        );
        arg(&mut sql, " AND p.at < ?", until.into());
    }
    if let Some(poll) = f.poll {
        // As the API shows it: to the millisecond.
        let (from, to) = (
            format::nanos(poll),
            format::nanos(poll + chrono::Duration::milliseconds(1)),
        );
        arg(
            &mut sql,
            " AND c.poll IN (SELECT id FROM change_polls WHERE started >= ?",
            from.into(),
        );
        arg(&mut sql, " AND started < ?)", to.into());
    }
    if let Some(id) = f.before_id {
        arg(&mut sql, " AND c.id < ?", id.into());
    }
    sql.push_str(&format!(" ORDER BY c.id DESC LIMIT {}", f.limit + 1));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), read_change)?;
    rows.collect()
}

fn read_change(r: &rusqlite::Row<'_>) -> rusqlite::Result<Change> {
    let inv: i64 = r.get(1)?;
    let kind: i64 = r.get(3)?;
    let time = |i: usize| -> rusqlite::Result<String> {
        let s: String = r.get(i)?;
        Ok(format::parse(&s).map_or(s, format::millis))
    };
    let columns: Option<String> = r.get(8)?;
    let reason: Option<i64> = r.get(9)?;
    Ok(Change {
        seq: r.get(0)?,
        inventory: usize::try_from(inv)
            .ok()
            .and_then(|i| Inventory::ALL.get(i).copied())
            .ok_or_else(|| bad_code(1, inv))?,
        id: r.get(2)?,
        kind: ChangeKind::from_code(kind).ok_or_else(|| bad_code(3, kind))?,
        at: time(4)?,
        poll_kind: r.get(5)?,
        poll_reason: r.get(6)?,
        poll_started: time(7)?,
        columns: columns.and_then(|c| serde_json::from_str(&c).ok()),
        reason: match reason {
            None => None,
            Some(GONE) => Some("gone".into()),
            Some(NOT_KEPT) => Some("not_kept".into()),
            Some(other) => return Err(bad_code(9, other)),
        },
        items: r.get(10)?,
        has_before: r.get(11)?,
    })
}

fn bad_code(col: usize, code: i64) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Integer,
        format!("unexpected {code} in the change log").into(),
    )
}

/// An item as it was at `at`: its upstream JSON, or `None` when it was not in the inventory
/// then (not yet added, or already removed) or the log does not reach back that far.
pub fn item_at(
    conn: &Connection,
    inv: Inventory,
    key: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<Option<String>> {
    let at_text = format::nanos(at);
    // Before the log's first poll of this inventory nothing is known.
    let start: Option<String> = conn.query_row(
        "SELECT min(at) FROM change_polls WHERE inventory = ?1",
        [inv.index() as i64],
        |r| r.get(0),
    )?;
    if start.is_none_or(|s| s > at_text) {
        return Ok(None);
    }
    let (versions, current) = read_versions(conn, inv, key)?;
    // The first change after `at` holds the version current then; none: the row as it is.
    match versions.into_iter().find(|(c, _)| c.at_nanos > at_text) {
        Some((c, _)) if c.change.kind == ChangeKind::Added => Ok(None),
        Some((_, before)) => Ok(before),
        None => Ok(current
            .filter(|(first_seen, _)| *first_seen <= at_text)
            .map(|(_, json)| json)),
    }
}

/// The versions of an item the log keeps, oldest first: each change, and the upstream JSON it
/// replaced (`before`; `None` for an addition, a baseline, or a version that cannot be read
/// back because a later one was lost).
pub fn versions(
    conn: &Connection,
    inv: Inventory,
    key: &str,
) -> rusqlite::Result<Vec<(Change, Option<String>)>> {
    let (versions, _) = read_versions(conn, inv, key)?;
    Ok(versions
        .into_iter()
        .map(|(c, before)| (c.change, before))
        .collect())
}

/// A change with its end as the store writes it (fixed width: compares as text).
struct Dated {
    change: Change,
    at_nanos: String,
}

/// The item's changes oldest first, each with the version it replaced, and its row now
/// (`first_seen`, JSON) if it has one.
#[allow(clippy::type_complexity)]
fn read_versions(
    conn: &Connection,
    inv: Inventory,
    key: &str,
) -> rusqlite::Result<(Vec<(Dated, Option<String>)>, Option<(String, String)>)> {
    let mut decoders = Decoders::read(conn, inv)?;
    let t = table(inv);
    let current: Option<(String, String)> = conn
        .query_row(
            &format!("SELECT first_seen, raw, raw_dict FROM \"{t}\" WHERE key = ?1"),
            [key],
            |r| {
                let dict: Option<i64> = r.get(2)?;
                Ok((r.get(0)?, decoders.json(r.get_ref(1)?, dict, 1)?))
            },
        )
        .optional()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {ENTRY}, c.before, c.before_form, p.at FROM change_log c
         JOIN change_polls p ON p.id = c.poll
         WHERE c.inventory = ?1 AND c.key = ?2 ORDER BY c.id DESC"
    ))?;
    let mut rows = stmt.query(params![inv.index() as i64, key])?;
    // Newest first: each update's `before` is against the version after it.
    let mut after: Option<String> = current.as_ref().map(|(_, json)| json.clone());
    let mut deltas = Deltas::new();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let change = read_change(r)?;
        let form: Option<i64> = r.get(13)?;
        let blob = r.get_ref(12)?;
        let before = match (change.kind, form) {
            (ChangeKind::Updated, Some(FORM_DELTA)) => match (&after, blob) {
                (Some(next), ValueRef::Blob(frame)) => deltas.decode(frame, next).ok(),
                _ => None,
            },
            (ChangeKind::Removed, Some(FORM_TEXT)) => decoders.json(blob, None, 12).ok(),
            (ChangeKind::Removed, Some(dict)) => decoders.json(blob, Some(dict), 12).ok(),
            _ => None,
        };
        after = match change.kind {
            ChangeKind::Added => None,
            ChangeKind::Baseline => after,
            ChangeKind::Updated | ChangeKind::Removed => before.clone(),
        };
        let at_nanos: String = r.get(14)?;
        out.push((Dated { change, at_nanos }, before));
    }
    out.reverse();
    Ok((out, current))
}

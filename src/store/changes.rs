//! The change log: one entry per item a poll added, updated or removed, written in that poll's
//! transaction (so the items and their history never disagree), read by the API, the console
//! and `ses-inventory changes`.
//!
//! - An **update** names the row's columns that changed, each from what to what (the columns'
//!   text as the inventory's table holds it; `null` for empty), and keeps the item's upstream
//!   JSON as it was before, as the table held it (a zstd frame against the inventory's
//!   dictionary, copied, not compressed again). A change outside the columns is an update with
//!   no columns.
//! - A **removal** says why (`gone`: gone upstream, by two witnesses; `not_kept`: it left the
//!   keep rules) and keeps the last version the same way.
//! - The first poll that fills an empty inventory of a file without history is its
//!   **baseline**: one entry with the number of items, not one addition per item.
//! - **Retention**: entries older than `history.max_age_days` go, oldest first, after each
//!   write; so do the oldest while the log's versions take more than `history.max_bytes`.
//!
//! The table is created when missing, on every open, like `poll_history`: older builds ignore
//! it. Times are the poll's end (`at`), in the store's fixed-width nanosecond text.

use super::compression::Decoders;
use super::schema::table;
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::row::Row;
use crate::sync::Applied;
use crate::time::format;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use std::collections::HashSet;

pub(super) const CHANGES: &str = "CREATE TABLE IF NOT EXISTS changes (
  id INTEGER PRIMARY KEY,
  inventory TEXT NOT NULL,
  key TEXT NOT NULL,
  kind TEXT NOT NULL,
  at TEXT NOT NULL,
  poll_kind TEXT NOT NULL,
  poll_reason TEXT,
  poll_started TEXT NOT NULL,
  columns TEXT,
  reason TEXT,
  items INTEGER,
  before BLOB,
  before_dict INTEGER
);
CREATE INDEX IF NOT EXISTS changes_by_item ON changes (inventory, key, id);
CREATE INDEX IF NOT EXISTS changes_by_time ON changes (at);\n";

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
}

/// Writes the entries of `applied` (before its rows are written: an update and a removal read
/// the row as it was). Returns how many were written.
pub(super) fn record(tx: &Transaction<'_>, applied: &Applied) -> rusqlite::Result<usize> {
    let inv = applied.inventory;
    let t = table(inv);
    let report = &applied.report;
    if applied.upserts.is_empty() && applied.removed.is_empty() {
        return Ok(0);
    }
    let at = format::nanos(report.finished);
    let poll = (
        report.kind.as_str(),
        report.reason.map(|r| r.as_str()),
        format::nanos(report.started),
    );
    let mut insert = tx.prepare_cached(
        "INSERT INTO changes (inventory, key, kind, at, poll_kind, poll_reason, poll_started,
                              columns, reason, items, before, before_dict)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let empty: bool = tx.query_row(
        &format!(
            "SELECT NOT EXISTS (SELECT 1 FROM \"{t}\")
                AND NOT EXISTS (SELECT 1 FROM changes WHERE inventory = ?1)"
        ),
        [inv.as_str()],
        |r| r.get(0),
    )?;
    if empty {
        insert.execute(params![
            inv.as_str(),
            "",
            ChangeKind::Baseline.as_str(),
            at,
            poll.0,
            poll.1,
            poll.2,
            None::<String>,
            None::<String>,
            applied.upserts.len() as i64,
            None::<Vec<u8>>,
            None::<i64>,
        ])?;
        return Ok(1);
    }
    let cols = Row::columns(inv);
    let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let mut old = tx.prepare_cached(&format!(
        "SELECT {}, raw, raw_dict FROM \"{t}\" WHERE key = ?1",
        names.join(", ")
    ))?;
    let mut written = 0;
    for item in &applied.upserts {
        let before = old
            .query_row([item.key.as_str()], |r| {
                let mut values = Vec::with_capacity(cols.len());
                for i in 0..cols.len() {
                    values.push(r.get::<_, Option<String>>(i)?);
                }
                let raw: rusqlite::types::Value = r.get(cols.len())?;
                let dict: Option<i64> = r.get(cols.len() + 1)?;
                Ok((values, raw, dict))
            })
            .optional()?;
        let (kind, columns, raw, dict) = match before {
            None => (ChangeKind::Added, None, None, None),
            Some((values, raw, dict)) => {
                let diff = diff(inv, &values, item);
                (ChangeKind::Updated, Some(diff), Some(raw), dict)
            }
        };
        insert.execute(params![
            inv.as_str(),
            item.key.as_str(),
            kind.as_str(),
            at,
            poll.0,
            poll.1,
            poll.2,
            columns,
            None::<String>,
            None::<i64>,
            raw,
            dict,
        ])?;
        written += 1;
    }
    let gone: HashSet<&Key> = applied.gone.iter().collect();
    let mut removed = tx.prepare_cached(&format!(
        "INSERT INTO changes (inventory, key, kind, at, poll_kind, poll_reason, poll_started,
                              reason, before, before_dict)
         SELECT ?1, key, 'removed', ?2, ?3, ?4, ?5, ?6, raw, raw_dict FROM \"{t}\" WHERE key = ?7"
    ))?;
    for key in &applied.removed {
        let reason = if gone.contains(key) {
            "gone"
        } else {
            "not_kept"
        };
        written += removed.execute(params![
            inv.as_str(),
            at,
            poll.0,
            poll.1,
            poll.2,
            reason,
            key.as_str()
        ])?;
    }
    Ok(written)
}

/// The columns of `item` that differ from the `old` values, as a JSON object
/// `{"column": [from, to]}` (texts as the table holds them).
fn diff(inv: Inventory, old: &[Option<String>], item: &Item) -> String {
    let mut out = serde_json::Map::new();
    for (i, c) in Row::columns(inv).iter().enumerate() {
        let new = super::schema::column_text(c.kind, &item.cell(i));
        let new = new.as_deref();
        let was = old.get(i).and_then(|v| v.as_deref());
        if was != new {
            out.insert(c.name.to_string(), serde_json::json!([was, new]));
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
    /// The log's size as [`Retention::prune`] counts it (each entry's kept version and 64
    /// bytes), once counted: kept up to date by each write, so the whole log is read once.
    /// `None` after a write failed.
    pub(super) size: Option<i64>,
}

/// What one entry costs beside the version it keeps.
const ENTRY_BYTES: i64 = 64;

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
        tx.query_row("SELECT coalesce(max(id), 0) FROM changes", [], |r| r.get(0))
    }

    /// Deletes the entries older than `max_age_days`, then the oldest while the log is larger
    /// than `max_bytes`; `written_after` is the [`Retention::mark`] taken before this write's
    /// entries. Returns how many went.
    pub(super) fn prune(
        &mut self,
        tx: &Transaction<'_>,
        now: DateTime<Utc>,
        written_after: i64,
    ) -> rusqlite::Result<usize> {
        let size = |tx: &Transaction<'_>, filter: &str, arg: rusqlite::types::Value| {
            tx.query_row(
                &format!(
                    "SELECT coalesce(sum(coalesce(length(before), 0) + {ENTRY_BYTES}), 0) FROM changes WHERE {filter}"
                ),
                [arg],
                |r| r.get::<_, i64>(0),
            )
        };
        let mut pruned = 0;
        if self.max_bytes > 0 {
            self.size = Some(match self.size {
                Some(known) => known + size(tx, "id > ?1", written_after.into())?,
                None => size(tx, "?1", 1.into())?,
            });
        }
        if self.max_age_days > 0 {
            let horizon = now - chrono::Duration::days(self.max_age_days.min(100_000) as i64);
            let horizon = format::nanos(horizon);
            if let Some(total) = self.size.as_mut() {
                *total -= size(tx, "at < ?1", horizon.clone().into())?;
            }
            pruned += tx.execute("DELETE FROM changes WHERE at < ?1", [horizon])?;
        }
        let Some(total) = self.size.as_mut() else {
            return Ok(pruned);
        };
        let mut excess = *total - self.max_bytes as i64;
        if excess > 0 {
            // The oldest entries that cover the excess.
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT id, coalesce(length(before), 0) + {ENTRY_BYTES} FROM changes ORDER BY id"
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
                pruned += tx.execute("DELETE FROM changes WHERE id <= ?1", [id])?;
            }
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

/// Reads entries of the change log; `limit + 1` are read, so the caller knows whether a next
/// page exists.
pub fn list(conn: &Connection, f: &ChangeFilter) -> rusqlite::Result<Vec<Change>> {
    let mut sql = String::from(
        "SELECT id, inventory, key, kind, at, poll_kind, poll_reason, poll_started, columns,
                reason, items, before IS NOT NULL FROM changes WHERE 1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(inv) = f.inventory {
        arg(
            &mut sql,
            " AND inventory = ?",
            inv.as_str().to_owned().into(),
        );
    }
    if let Some(key) = &f.key {
        arg(&mut sql, " AND key = ?", key.clone().into());
    }
    if !f.kinds.is_empty() {
        let list: Vec<String> = f
            .kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        sql.push_str(&format!(" AND kind IN ({})", list.join(", ")));
    }
    if let Some(column) = &f.column {
        arg(
            &mut sql,
            " AND kind = 'updated' AND json_type(columns, '$.\"' || ? || '\"') IS NOT NULL",
            column.replace('"', "").into(),
        );
    }
    if let Some(since) = f.since {
        arg(&mut sql, " AND at >= ?", format::nanos(since).into());
    }
    if let Some(until) = f.until {
        arg(&mut sql, " AND at < ?", format::nanos(until).into());
    }
    if let Some(poll) = f.poll {
        // As the API shows it: to the millisecond.
        arg(
            &mut sql,
            " AND poll_started >= ?",
            format::nanos(poll).into(),
        );
        let end = poll + chrono::Duration::milliseconds(1);
        arg(&mut sql, " AND poll_started < ?", format::nanos(end).into());
    }
    if let Some(id) = f.before_id {
        arg(&mut sql, " AND id < ?", id.into());
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", f.limit + 1));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), read_change)?;
    rows.collect()
}

fn read_change(r: &rusqlite::Row<'_>) -> rusqlite::Result<Change> {
    let inv: String = r.get(1)?;
    let kind: String = r.get(3)?;
    let time = |i: usize| -> rusqlite::Result<String> {
        let s: String = r.get(i)?;
        Ok(format::parse(&s).map_or(s, format::millis))
    };
    let columns: Option<String> = r.get(8)?;
    Ok(Change {
        seq: r.get(0)?,
        inventory: inv.parse().map_err(|_| bad_text(1, &inv))?,
        id: r.get(2)?,
        kind: ChangeKind::parse(&kind).ok_or_else(|| bad_text(3, &kind))?,
        at: time(4)?,
        poll_kind: r.get(5)?,
        poll_reason: r.get(6)?,
        poll_started: time(7)?,
        columns: columns.and_then(|c| serde_json::from_str(&c).ok()),
        reason: r.get(9)?,
        items: r.get(10)?,
        has_before: r.get(11)?,
    })
}

fn bad_text(col: usize, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("unexpected {text:?} in the change log").into(),
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
    let at = format::nanos(at);
    // Before the log's first entry for this inventory nothing is known.
    let start: Option<String> = conn
        .query_row(
            "SELECT min(at) FROM changes WHERE inventory = ?1",
            [inv.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if start.as_ref().is_none_or(|s| *s > at) {
        return Ok(None);
    }
    // The first change after `at` holds the version current then.
    let next = conn
        .query_row(
            "SELECT kind, before, before_dict FROM changes
             WHERE inventory = ?1 AND key = ?2 AND at > ?3 ORDER BY id LIMIT 1",
            params![inv.as_str(), key, at],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, rusqlite::types::Value>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            },
        )
        .optional()?;
    let mut decoders = Decoders::read(conn, inv)?;
    match next {
        Some((kind, _, _)) if kind == "added" => Ok(None),
        Some((_, before, dict)) => {
            if matches!(before, rusqlite::types::Value::Null) {
                return Ok(None);
            }
            let value = rusqlite::types::ValueRef::from(&before);
            decoders.json(value, dict, 1).map(Some)
        }
        None => {
            // No change since: the row as it is now, if it was there at `at`.
            let t = table(inv);
            conn.query_row(
                &format!(
                    "SELECT raw, raw_dict, first_seen FROM \"{t}\" WHERE key = ?1 AND first_seen <= ?2"
                ),
                params![key, at],
                |r| {
                    let dict: Option<i64> = r.get(1)?;
                    decoders.json(r.get_ref(0)?, dict, 0)
                },
            )
            .optional()
        }
    }
}

/// The versions of an item the log keeps, oldest first: each change's upstream JSON before it
/// (`before`), and the change itself.
pub fn versions(
    conn: &Connection,
    inv: Inventory,
    key: &str,
) -> rusqlite::Result<Vec<(Change, Option<String>)>> {
    let mut decoders = Decoders::read(conn, inv)?;
    let mut stmt = conn.prepare(
        "SELECT id, inventory, key, kind, at, poll_kind, poll_reason, poll_started, columns,
                reason, items, before IS NOT NULL, before, before_dict
         FROM changes WHERE inventory = ?1 AND key = ?2 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![inv.as_str(), key])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let change = read_change(r)?;
        let before = if change.has_before {
            let dict: Option<i64> = r.get(13)?;
            Some(decoders.json(r.get_ref(12)?, dict, 12)?)
        } else {
            None
        };
        out.push((change, before));
    }
    Ok(out)
}

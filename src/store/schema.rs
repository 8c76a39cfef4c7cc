//! The SQL of the layout: one table per inventory with the row's columns, `sync_state`, and
//! the steps from one schema version to the next.

use crate::model::inventory::Inventory;
use crate::model::row::{Cell, ColumnKind, Row};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// SQL table of an inventory.
pub fn table(inv: Inventory) -> &'static str {
    inv.as_str()
}

pub(super) fn parse_time(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| crate::time::format::parse(&s))
}

/// The SQL column type of a row column.
pub(super) fn sql_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text | ColumnKind::Time | ColumnKind::One | ColumnKind::Many => "TEXT",
    }
}

pub(super) fn schema_v1() -> String {
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

/// Version 2: compressed upstream JSON. Rows written from then on name their dictionary in
/// `raw_dict`; rows already there keep their text (`raw_dict` NULL) until rewritten.
pub(super) fn schema_v2() -> String {
    let mut sql = String::new();
    for inv in Inventory::ALL {
        sql.push_str(&format!(
            "ALTER TABLE \"{}\" ADD COLUMN raw_dict INTEGER;\n",
            table(inv)
        ));
    }
    sql.push_str(super::compression::DICTIONARIES);
    sql
}

/// Version 3: removal by absence survives a restart. `awaiting` holds each item a complete
/// listing did not return, awaiting a second witness (see `model::status::Mark`); `settled`
/// says whether the first buildup's settling pass has run (files written before it were
/// settled by their many passes); `placement` the keys in the order of the last full listing
/// (a JSON array of strings, zstd-compressed), so that a warm start can tell a miss inside a
/// page from one at a boundary.
pub(super) fn schema_v3() -> String {
    "CREATE TABLE awaiting (
  inventory TEXT NOT NULL,
  key TEXT NOT NULL,
  since TEXT NOT NULL,
  misses INTEGER NOT NULL,
  certain INTEGER NOT NULL,
  gone INTEGER NOT NULL,
  PRIMARY KEY (inventory, key)
) WITHOUT ROWID;
CREATE TABLE placement (
  inventory TEXT PRIMARY KEY NOT NULL,
  keys BLOB NOT NULL
);
ALTER TABLE sync_state ADD COLUMN settled INTEGER NOT NULL DEFAULT 1;\n"
        .into()
}

/// Version 4: a complete full pass records once that it saw every item it did not leave
/// unseen, instead of rewriting each row's `last_seen`: an item's `last_seen` is the later of
/// its row's and its inventory's `sync_state.full_seen_at`, unless its key is in `unseen` (the
/// items that pass kept without having returned them). See [`LAST_SEEN`].
pub(super) fn schema_v4() -> String {
    "ALTER TABLE sync_state ADD COLUMN full_seen_at TEXT;
CREATE TABLE unseen (
  inventory TEXT NOT NULL,
  key TEXT NOT NULL,
  PRIMARY KEY (inventory, key)
) WITHOUT ROWID;\n"
        .into()
}

/// Version 5: each row keeps its cells as the cache packs them (`cells`: see
/// `Item::stored_cells`), so that a warm start reads rows instead of extracting them from the
/// upstream JSON. Rows written before have none (NULL) until the writer fills them in
/// (`Store::fill_some_cells`, for the rows the warm start extracted); cells of another
/// extraction version are treated as none. An earlier
/// build would rewrite rows without their cells, so it must refuse the file: hence a version.
pub(super) fn schema_v5() -> String {
    Inventory::ALL
        .iter()
        .map(|&inv| format!("ALTER TABLE \"{}\" ADD COLUMN cells BLOB;\n", table(inv)))
        .collect()
}

/// Version 6: `snapshot`, the token of the stop snapshot that is current (at most one row; see
/// `snapshot`). Every read-write open takes it out, so a build that did not know of snapshots
/// could leave a stale one looking current: hence a version, which such a build refuses.
pub(super) fn schema_v6() -> String {
    "CREATE TABLE snapshot (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  token INTEGER NOT NULL
);\n"
        .into()
}

/// An item's `last_seen` in SQL, over its table aliased `t` (`?1` = the inventory): the row's,
/// or the last complete full pass's when that is later and the pass saw the item.
pub(crate) const LAST_SEEN: &str = "CASE
    WHEN EXISTS (SELECT 1 FROM unseen u WHERE u.inventory = ?1 AND u.key = t.key) THEN t.last_seen
    ELSE max(t.last_seen, coalesce(
        (SELECT s.full_seen_at FROM sync_state s WHERE s.inventory = ?1), ''))
  END";

/// A column's value as its table holds it: texts as they are, times as RFC 3339, entries as
/// JSON; `None` (NULL) for an empty single entry.
pub(super) fn column_text<'a>(kind: ColumnKind, cell: &Cell<'a>) -> Option<Cow<'a, str>> {
    match (kind, cell) {
        (_, Cell::Text(Some(t))) if !t.is_empty() => Some(Cow::Borrowed(*t)),
        (ColumnKind::Text | ColumnKind::Time, _) => cell.to_text().map(Cow::Owned),
        (ColumnKind::One, _) if cell.is_empty() => None,
        (ColumnKind::One | ColumnKind::Many, _) => {
            Some(Cow::Owned(serde_json::to_string(cell).unwrap_or_default()))
        }
    }
}

pub(super) fn upsert_sql(inv: Inventory) -> String {
    let cols = Row::columns(inv);
    let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let n = cols.len();
    let placeholders: Vec<String> = (1..=n + 6).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = names
        .iter()
        .chain(
            [
                "raw".to_string(),
                "first_seen".into(),
                "last_seen".into(),
                "raw_dict".into(),
                "cells".into(),
            ]
            .iter(),
        )
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO \"{t}\" (key, {names}, raw, first_seen, last_seen, raw_dict, cells) VALUES ({ph})
         ON CONFLICT(key) DO UPDATE SET {updates}",
        t = table(inv),
        names = names.join(", "),
        ph = placeholders.join(", "),
        updates = updates.join(", "),
    )
}

/// The recent polls of each inventory (the console's charts), at most
/// [`crate::cache::HISTORY_LEN`] per inventory. Created when missing, on every open: an additive
/// table that needs no schema version (older builds ignore it, so a file stays usable by them).
pub(super) const POLL_HISTORY: &str = "CREATE TABLE IF NOT EXISTS poll_history (
  inventory TEXT NOT NULL,
  kind TEXT NOT NULL,
  outcome TEXT NOT NULL,
  started TEXT NOT NULL,
  finished TEXT NOT NULL,
  items INTEGER NOT NULL,
  added INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  removed INTEGER NOT NULL,
  skipped_pages INTEGER NOT NULL,
  skipped_items INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS poll_history_by_inventory ON poll_history (inventory, finished);\n";

//! The poll history on disk: each applied poll's [`PollPoint`] is appended in the poll's own
//! transaction, trimmed to the newest [`HISTORY_LEN`] per inventory, and read back at startup.

use super::schema::parse_time;
use super::{Store, StoreError};
use crate::cache::{Cache, HISTORY_LEN, PollPoint};
use crate::model::inventory::Inventory;
use crate::model::status::{Outcome, PollKind};
use crate::sync::Applied;
use crate::time::format;
use rusqlite::params;

/// Appends `applied`'s poll and drops the inventory's points beyond the newest [`HISTORY_LEN`].
pub(super) fn append(tx: &rusqlite::Transaction<'_>, applied: &Applied) -> rusqlite::Result<()> {
    let p = PollPoint::new(&applied.report, applied.items);
    let inv = applied.inventory.as_str();
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO poll_history (inventory, kind, outcome, started, finished, items, added,
            updated, removed, skipped_pages, skipped_items)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            inv,
            p.kind.as_str(),
            p.outcome.as_str(),
            format::nanos(p.started),
            format::nanos(p.finished),
            n(p.items),
            n(p.added),
            n(p.updated),
            n(p.removed),
            n(p.skipped_pages),
            n(p.skipped_items),
        ],
    )?;
    tx.execute(
        "DELETE FROM poll_history WHERE inventory = ?1 AND rowid NOT IN
            (SELECT rowid FROM poll_history WHERE inventory = ?1
             ORDER BY finished DESC, rowid DESC LIMIT ?2)",
        params![inv, HISTORY_LEN as i64],
    )?;
    Ok(())
}

impl Store {
    /// Restores every inventory's poll history into `cache` (oldest first). Rows that do not
    /// read back (an unknown kind, a bad time) are skipped.
    pub(crate) fn load_history(&self, cache: &Cache) -> Result<(), StoreError> {
        let sqlite = |error| StoreError::Sqlite {
            path: self.path.clone(),
            error,
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT kind, outcome, started, finished, items, added, updated, removed,
                    skipped_pages, skipped_items
                 FROM poll_history WHERE inventory = ?1 ORDER BY finished, rowid",
            )
            .map_err(sqlite)?;
        for inv in Inventory::ALL {
            let rows = stmt
                .query_map([inv.as_str()], |r| {
                    let kind: String = r.get(0)?;
                    let outcome: String = r.get(1)?;
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                    Ok((|| {
                        Some(PollPoint {
                            kind: match kind.as_str() {
                                "full" => PollKind::Full,
                                "refresh" => PollKind::Refresh,
                                _ => return None,
                            },
                            outcome: match outcome.as_str() {
                                "complete" => Outcome::Complete,
                                "incomplete" => Outcome::Incomplete,
                                "failed" => Outcome::Failed,
                                _ => return None,
                            },
                            started: parse_time(r.get(2).ok()?)?,
                            finished: parse_time(r.get(3).ok()?)?,
                            items: n(4).ok()?,
                            added: n(5).ok()?,
                            updated: n(6).ok()?,
                            removed: n(7).ok()?,
                            skipped_pages: n(8).ok()?,
                            skipped_items: n(9).ok()?,
                        })
                    })())
                })
                .map_err(sqlite)?;
            let mut points = Vec::new();
            for row in rows {
                if let Some(point) = row.map_err(sqlite)? {
                    points.push(point);
                }
            }
            cache.restore_history(inv, points);
        }
        Ok(())
    }
}

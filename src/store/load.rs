//! The warm start: the file's items and sync state into the cache, before any poller runs.

use super::compression::Decoders;
use super::schema::{parse_time, table};
use super::{CellFill, Store, StoreError, snapshot};
use crate::cache::view::View;
use crate::cache::{Awaiting, Cache, ItemMap};
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::status::{ErrorNote, Mark, Phase, SyncTimes};
use crate::telemetry::events;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a warm start loaded, per inventory.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    pub items: [usize; 3],
    /// Of `items`, those whose row was extracted from the upstream JSON (no stored cells, or
    /// cells of another extraction): the writer stores their cells in the background.
    pub extracted: [usize; 3],
    /// Inventories read from the stop snapshot rather than from their rows.
    pub from_snapshot: [bool; 3],
    pub ready: [bool; 3],
    pub duration: Duration,
}

struct StoredState {
    times: SyncTimes,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<ErrorNote>,
    settled: bool,
}

impl Store {
    /// Loads every inventory into `cache` and restores its sync state; an inventory with a
    /// complete full pass on record is marked ready. Call before the pollers start. All or
    /// nothing: when any part of the file cannot be read, the error leaves `cache` untouched.
    pub fn load(&mut self, cache: &Cache) -> Result<Loaded, StoreError> {
        let started = Instant::now();
        let sqlite = |source| StoreError::Sqlite {
            path: self.path.clone(),
            error: source,
        };
        // Each inventory on its own thread: from the stop snapshot when the file names one,
        // else from its rows on a read connection of its own (parsing rows is the cost).
        let token = self.snapshot_token.take();
        let maps = std::thread::scope(|scope| {
            let handles = Inventory::ALL.map(|inv| {
                let path = &self.path;
                scope.spawn(move || {
                    let refused = match token.map(|t| snapshot::read(path, inv, t)) {
                        Some(Ok(read)) => {
                            let items = (read.map, read.sorted, Vec::new());
                            return (Ok(items), Some(read.placed_by));
                        }
                        Some(Err(reason)) => Some(reason),
                        None => None,
                    };
                    if let Some(reason) = refused {
                        events::StoreSnapshotRefused {
                            inventory: inv,
                            reason: &reason,
                        }
                        .emit();
                    }
                    (read_items(path, inv), None)
                })
            });
            handles.map(|h| h.join().expect("store loader panicked"))
        });
        if token.is_some() {
            // Used once: the file no longer names it.
            snapshot::remove_used(&self.path);
        }
        // Everything is read before anything goes into the cache: a load that fails leaves the
        // cache as it was (all or nothing).
        let mut read = Vec::with_capacity(Inventory::ALL.len());
        let mut loaded = Loaded::default();
        for (inv, (map, snapshot_placed_by)) in Inventory::ALL.into_iter().zip(maps) {
            let map = map.map_err(sqlite)?;
            loaded.from_snapshot[inv.index()] = snapshot_placed_by.is_some();
            let state = self.read_state(inv).map_err(sqlite)?;
            // The generation that placed the items: a snapshot placed them itself (0: unplaced),
            // the rows by the stored order of keys.
            let placed_by = match snapshot_placed_by {
                Some(generation) => (generation != 0).then_some(generation),
                None => self
                    .read_placement(inv)
                    .map_err(sqlite)?
                    .map(|keys| place(&map.0, &keys)),
            };
            let awaiting = self.read_awaiting(inv).map_err(sqlite)?;
            read.push((inv, map, state, placed_by, awaiting));
        }
        for (inv, (map, sorted, extracted), state, placed_by, awaiting) in read {
            loaded.items[inv.index()] = map.len();
            loaded.extracted[inv.index()] = extracted.len();
            self.fill_cells[inv.index()] = (!extracted.is_empty()).then(|| CellFill {
                rowids: extracted,
                ..CellFill::default()
            });
            drop(cache.replace_sorted(inv, map, sorted));
            if let Some(state) = state {
                let ready = state.times.last_complete_full.is_some();
                cache.update_status(inv, |s| {
                    s.times = state.times;
                    s.last_success = state.last_success;
                    s.last_error = state.last_error.clone();
                    s.settled = state.settled;
                    if ready {
                        s.phase = Phase::Ready;
                    }
                });
                if ready {
                    cache.mark_ready(inv);
                }
                loaded.ready[inv.index()] = ready;
            }
            if let Some(generation) = placed_by {
                cache.update_status(inv, |s| s.placed_by = generation);
            }
            cache.set_awaiting(inv, awaiting);
        }
        loaded.duration = started.elapsed();
        events::StoreLoaded {
            path: &self.path,
            items: loaded.items,
            ready: loaded.ready,
            extracted: loaded.extracted.iter().sum(),
            from_snapshot: loaded.from_snapshot,
            duration: loaded.duration,
        }
        .emit();
        Ok(loaded)
    }

    fn read_state(&self, inv: Inventory) -> rusqlite::Result<Option<StoredState>> {
        self.conn
            .query_row(
                "SELECT last_complete_full, window_anchor, last_success, last_error, last_error_at,
                        settled
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
                        settled: r.get::<_, i64>(5)? != 0,
                    })
                },
            )
            .optional()
    }

    /// The keys of `inv` in the order the last full listing placed them (see `Item::place`). A
    /// missing or unreadable order is none: the items stay unplaced, the next pass's misses are
    /// then uncertain, which only delays removals.
    fn read_placement(&self, inv: Inventory) -> rusqlite::Result<Option<Vec<String>>> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT keys FROM placement WHERE inventory = ?1",
                [inv.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(blob
            .and_then(|b| zstd::stream::decode_all(b.as_slice()).ok())
            .and_then(|json| serde_json::from_slice::<Vec<String>>(&json).ok()))
    }

    /// The items of `inv` awaiting a second witness, as the last poll that changed them left
    /// them.
    fn read_awaiting(&self, inv: Inventory) -> rusqlite::Result<Awaiting> {
        let mut stmt = self.conn.prepare(
            "SELECT key, since, misses, certain, gone FROM awaiting WHERE inventory = ?1",
        )?;
        let rows = stmt.query_map([inv.as_str()], |r| {
            let since = parse_time(r.get(1)?).unwrap_or_default();
            Ok((
                Key::new(&r.get::<_, String>(0)?),
                Mark {
                    since,
                    misses: u8::try_from(r.get::<_, i64>(2)?).unwrap_or(u8::MAX),
                    certain: r.get::<_, i64>(3)? != 0,
                    gone: r.get::<_, i64>(4)? != 0,
                },
            ))
        })?;
        rows.collect()
    }
}

/// Places the items of `map` in the order of `keys` (a listing of a new generation, which it
/// returns).
fn place(map: &ItemMap, keys: &[String]) -> u32 {
    let generation = crate::model::item::new_generation();
    for (i, key) in keys.iter().enumerate() {
        if let Some(item) = map.get(key.as_str()) {
            let position = u32::try_from((i as u64 + 1) * 256).unwrap_or(u32::MAX);
            item.set_place(generation, position);
        }
    }
    generation
}

/// Reads one inventory's items on a connection of its own (read-only), each row from its
/// stored cells when they are this build's: the items by key, in key order (for the view), and
/// the rowids of the rows that had to be extracted.
fn read_items(
    path: &Path,
    inv: Inventory,
) -> rusqlite::Result<(ItemMap, Vec<Arc<Item>>, Vec<i64>)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Pages read in place from the page cache rather than copied (SQLite bounds the map).
    conn.pragma_update(None, "mmap_size", 1_i64 << 40)?;
    let n: i64 = conn.query_row(
        &format!("SELECT count(*) FROM \"{}\"", table(inv)),
        [],
        |r| r.get(0),
    )?;
    let mut map =
        ItemMap::with_capacity_and_hasher(usize::try_from(n).unwrap_or(0), Default::default());
    let mut decoders = Decoders::read(&conn, inv)?;
    // The last complete full pass saw every item but the unseen ones (see `schema::LAST_SEEN`).
    let full_seen: Option<DateTime<Utc>> = conn
        .query_row(
            "SELECT full_seen_at FROM sync_state WHERE inventory = ?1",
            [inv.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .flatten()
        .and_then(|t: String| parse_time(Some(t)));
    let unseen: std::collections::HashSet<String> = conn
        .prepare("SELECT key FROM unseen WHERE inventory = ?1")?
        .query_map([inv.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT key, raw, first_seen, last_seen, raw_dict, cells, rowid FROM \"{}\"",
        table(inv)
    ))?;
    let mut rows = stmt.query([])?;
    let mut extracted = Vec::new();
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let cells = r.get_ref(5)?.as_blob_or_null()?;
        let room = cells.map_or(0, crate::model::row::packed::stored_extras_len);
        let raw = decoders.json_with_room(r.get_ref(1)?, r.get(4)?, 1, room)?;
        let first_seen = parse_time(r.get(2)?).unwrap_or_default();
        let mut last_seen = parse_time(r.get(3)?).unwrap_or(first_seen);
        if let Some(full) = full_seen
            && full > last_seen
            && !unseen.contains(&key)
        {
            last_seen = full;
        }
        // Cells of another extraction are not taken: rows follow this build's rules.
        let key = Key::new(&key);
        let (item, fresh) = Item::from_stored(key.clone(), inv, raw, cells, first_seen, last_seen);
        if fresh {
            extracted.push(r.get(6)?);
        }
        map.insert(key, Arc::new(item));
    }
    let sorted = View::sorted(map.values().cloned());
    Ok((map, sorted, extracted))
}

//! Items: what one upstream element becomes in the cache (its key, its compact JSON, its row).

use crate::model::inventory::Inventory;
use crate::model::json::Val;
use crate::model::row::packed::Packed;
use crate::model::row::{Cell, Row};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The cache key of an item: `externalId` for services and carriers, `id` for resources
/// (configurable). Cheap to clone: the pass's seen-set and the cache share one allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Arc<str>);

impl Key {
    pub fn new(s: &str) -> Key {
        Key(Arc::from(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A generation for a listing that places items ([`Item::set_place`]), unique in the process:
/// pollers restarted on a takeover, and a warm start, share items with the ones before them.
pub(crate) fn new_generation() -> u32 {
    static GENERATION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// One cached item. Immutable but for `last_seen`, so readers share it through `Arc` and a pass
/// that finds it unchanged keeps the same allocation.
pub struct Item {
    pub key: Key,
    /// The upstream JSON, compact, and the row's cells located in it.
    packed: Packed,
    pub first_seen: DateTime<Utc>,
    last_seen_ms: AtomicI64,
    /// Where the last reference listing that returned it placed it: `(generation << 32) |
    /// position` (0: nowhere known). See [`Item::place`].
    place: AtomicU64,
}

impl Item {
    /// The item of `inventory` whose compact upstream JSON is `raw`; its row is extracted here.
    pub fn new(
        key: Key,
        inventory: Inventory,
        raw: Box<str>,
        first_seen: DateTime<Utc>,
        last_seen: DateTime<Utc>,
    ) -> Item {
        Item {
            key,
            packed: Packed::new(inventory, raw),
            first_seen,
            last_seen_ms: AtomicI64::new(last_seen.timestamp_millis()),
            place: AtomicU64::new(0),
        }
    }

    /// As [`Item::new`], with the row read from `json`, the tape value of `raw`'s text as the
    /// page holds it (`source`, the same bytes as `raw`).
    pub(crate) fn from_tape(
        key: Key,
        inventory: Inventory,
        raw: Box<str>,
        (json, source): (Val<'_, '_>, &str),
        first_seen: DateTime<Utc>,
        last_seen: DateTime<Utc>,
    ) -> Item {
        Item {
            key,
            packed: Packed::from_tape(inventory, raw, json, source),
            first_seen,
            last_seen_ms: AtomicI64::new(last_seen.timestamp_millis()),
            place: AtomicU64::new(0),
        }
    }

    /// As [`Item::new`], with the row taken from `cells` (as the store keeps them:
    /// [`Item::stored_cells`]) when they are of this build's extraction and fit `raw`, else
    /// extracted. The second value says whether the row was extracted.
    pub(crate) fn from_stored(
        key: Key,
        inventory: Inventory,
        raw: String,
        cells: Option<&[u8]>,
        first_seen: DateTime<Utc>,
        last_seen: DateTime<Utc>,
    ) -> (Item, bool) {
        let stored = match cells {
            Some(cells) => Packed::from_stored(inventory, raw, cells),
            None => Err(raw),
        };
        let (packed, extracted) = match stored {
            Ok(packed) => (packed, false),
            Err(raw) => (Packed::new(inventory, raw.into_boxed_str()), true),
        };
        let item = Item {
            key,
            packed,
            first_seen,
            last_seen_ms: AtomicI64::new(last_seen.timestamp_millis()),
            place: AtomicU64::new(0),
        };
        (item, extracted)
    }

    /// The row's cells as the store keeps them (see [`Item::from_stored`]).
    pub(crate) fn stored_cells(&self) -> Vec<u8> {
        self.packed.stored_cells()
    }

    /// The upstream JSON, compact.
    pub fn raw(&self) -> &str {
        self.packed.raw()
    }

    pub fn inventory(&self) -> Inventory {
        self.packed.inventory()
    }

    /// The cell of column `index` of the inventory's [`Row::columns`].
    pub fn cell(&self, index: usize) -> Cell<'_> {
        self.packed.cell(index)
    }

    /// The cell of the column named `name` (snake_case); `None` for an unknown column.
    pub fn cell_by_name(&self, name: &str) -> Option<Cell<'_>> {
        Row::column_index(self.inventory(), name).map(|i| self.cell(i))
    }

    /// The item's row, its texts borrowed from the item.
    pub fn row(&self) -> Row<'_> {
        self.packed.row()
    }

    /// Bytes the item holds outside its own struct: JSON text and cell words (the key is
    /// shared with the cache's map).
    pub fn heap_bytes(&self) -> usize {
        self.packed.heap_bytes()
    }

    pub fn last_seen(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.last_seen_ms.load(Ordering::Relaxed))
            .unwrap_or_default()
    }

    /// [`Item::last_seen`] in milliseconds since the epoch, as the item keeps it.
    pub(crate) fn last_seen_ms(&self) -> i64 {
        self.last_seen_ms.load(Ordering::Relaxed)
    }

    /// Records that a poll saw the item again, unchanged.
    pub(crate) fn touch(&self, at: DateTime<Utc>) {
        self.last_seen_ms
            .fetch_max(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Its position in the listing of generation `.0` that placed it last (`(0, 0)`: none).
    /// Positions of one generation order the items as that listing returned them; the pollers
    /// use them to tell a miss inside a page from one at a page boundary.
    pub fn place(&self) -> (u32, u32) {
        let p = self.place.load(Ordering::Relaxed);
        ((p >> 32) as u32, p as u32)
    }

    /// Records that listing `generation` returned the item at `position`.
    pub(crate) fn set_place(&self, generation: u32, position: u32) {
        self.place.store(
            (u64::from(generation) << 32) | u64::from(position),
            Ordering::Relaxed,
        );
    }

    /// The upstream JSON as a value (parsed on demand, for readers that serve it).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.raw()).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("key", &self.key)
            .field("row", &self.row())
            .finish_non_exhaustive()
    }
}

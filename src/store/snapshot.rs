//! The stop snapshot: on a clean stop the writer, once every poll is committed, writes each
//! inventory's items as the cache holds them (key, times, the compact JSON and its cells) to a
//! plain file beside the store, so that the next start reads them sequentially instead of
//! decompressing every row. The rows stay the only source of truth; a snapshot is a copy of
//! them that is used once, and only while the file says it is current:
//!
//! - the writer records the snapshot's token in the store (`snapshot` table, schema 6) only
//!   after the three files are complete, synced and renamed into place;
//! - every read-write open of the store takes the token out (`Store::open`), before anything
//!   else is written: a later write, a crash, `sync-once`, can never leave a stale snapshot
//!   looking current;
//! - a file that does not match (token, this build's cell version, inventory, length, key
//!   order, UTF-8) is ignored and the inventory is read from its rows; the files are removed
//!   once the load is done.
//!
//! Layout, little-endian: [`MAGIC`], token `u64`, cell version `u32`, inventory index `u32`,
//! whether the last full listing placed the items `u32` (1 or 0), item count `u64`; per item, in
//! key order: key length `u32` and key, `first_seen` seconds `i64` and nanoseconds `u32`,
//! `last_seen` milliseconds `i64`, its position in that listing `u64` ([`UNPLACED`]: none), cells
//! length `u32` and cells, JSON length `u32` and JSON; then [`END`] and the count again. The
//! places come back under a new generation (positions compare only within one).

use crate::cache::ItemMap;
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::row::packed::{CELLS_VERSION, stored_extras_len};
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"SESSNAP1";
const END: &[u8; 8] = b"SESSNAPE";
/// The position of an item the last full listing did not place.
const UNPLACED: u64 = u64::MAX;
/// Buffer of the sequential reads and writes.
const BUFFER: usize = 1 << 20;

/// The snapshot file of `inv` beside the store at `store` (`<store>-snapshot-<inventory>`, like
/// SQLite's `-wal`).
pub(super) fn path(store: &Path, inv: Inventory) -> PathBuf {
    with_suffix(store, &format!("-snapshot-{}", inv.as_str()))
}

/// Removes the snapshot files of the store at `store` (none is an answer too).
pub(super) fn remove(store: &Path) {
    for inv in Inventory::ALL {
        for path in [
            path(store, inv),
            temporary(&path(store, inv)),
            used(&path(store, inv)),
        ] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes the snapshot files of the store at `store` once they have been read: renamed at
/// once (the next stop writes new ones under their names), deleted on a thread of their own
/// (freeing gigabytes of file takes a while).
pub(super) fn remove_used(store: &Path) {
    let used: Vec<PathBuf> = Inventory::ALL
        .into_iter()
        .map(|inv| path(store, inv))
        .filter_map(|p| std::fs::rename(&p, used(&p)).ok().map(|()| used(&p)))
        .collect();
    let removing = std::thread::Builder::new()
        .name("ses-snapshot-rm".into())
        .spawn({
            let used = used.clone();
            move || used.iter().for_each(|p| drop(std::fs::remove_file(p)))
        });
    if removing.is_err() {
        used.iter().for_each(|p| drop(std::fs::remove_file(p)));
    }
}

fn temporary(path: &Path) -> PathBuf {
    with_suffix(path, ".tmp")
}

fn used(path: &Path) -> PathBuf {
    with_suffix(path, ".used")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `items` (in key order, as the view holds them) as the snapshot of `inv` with `token`,
/// with their places in the listing of generation `placed_by` (0: none): to a temporary file,
/// synced, then renamed into place. Returns the bytes written.
pub(super) fn write(
    store: &Path,
    inv: Inventory,
    token: u64,
    items: &[Arc<Item>],
    placed_by: u32,
) -> std::io::Result<u64> {
    let target = path(store, inv);
    let tmp = temporary(&target);
    let mut out = BufWriter::with_capacity(BUFFER, File::create(&tmp)?);
    let count = items.len() as u64;
    out.write_all(MAGIC)?;
    out.write_all(&token.to_le_bytes())?;
    out.write_all(&CELLS_VERSION.to_le_bytes())?;
    out.write_all(&(inv.index() as u32).to_le_bytes())?;
    out.write_all(&u32::from(placed_by != 0).to_le_bytes())?;
    out.write_all(&count.to_le_bytes())?;
    for item in items {
        let cells = item.stored_cells();
        out.write_all(&len32(item.key.as_str().len())?.to_le_bytes())?;
        out.write_all(item.key.as_str().as_bytes())?;
        out.write_all(&item.first_seen.timestamp().to_le_bytes())?;
        out.write_all(&item.first_seen.timestamp_subsec_nanos().to_le_bytes())?;
        out.write_all(&item.last_seen_ms().to_le_bytes())?;
        let position = match item.place() {
            (generation, position) if placed_by != 0 && generation == placed_by => {
                u64::from(position)
            }
            _ => UNPLACED,
        };
        out.write_all(&position.to_le_bytes())?;
        out.write_all(&len32(cells.len())?.to_le_bytes())?;
        out.write_all(&cells)?;
        out.write_all(&len32(item.raw().len())?.to_le_bytes())?;
        out.write_all(item.raw().as_bytes())?;
    }
    out.write_all(END)?;
    out.write_all(&count.to_le_bytes())?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    drop(file);
    std::fs::rename(&tmp, &target)?;
    Ok(bytes)
}

/// Syncs the directory holding the store, so that the renamed snapshots are on disk before the
/// store names their token.
pub(super) fn sync_dir(store: &Path) -> std::io::Result<()> {
    match store.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

fn len32(n: usize) -> std::io::Result<u32> {
    u32::try_from(n).map_err(|_| std::io::Error::other(format!("a field of {n} bytes")))
}

/// Why a snapshot was not used.
pub(super) type Refusal = String;

/// What a snapshot gives back of an inventory: its items by key and in key order, and the
/// generation that placed them (as `SyncStatus::placed_by`; 0: none).
#[derive(Debug)]
pub(super) struct Snapshot {
    pub map: ItemMap,
    pub sorted: Vec<Arc<Item>>,
    pub placed_by: u32,
}

/// Reads the snapshot of `inv` written with `token`. Any mismatch or damage is a refusal naming
/// it (the caller then reads the rows).
pub(super) fn read(store: &Path, inv: Inventory, token: u64) -> Result<Snapshot, Refusal> {
    let target = path(store, inv);
    let file = File::open(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = Reader {
        input: BufReader::with_capacity(BUFFER, file),
        left: size,
    };
    let mut magic = [0u8; 8];
    r.exact(&mut magic)?;
    if &magic != MAGIC {
        return Err("not a snapshot of ses-inventory".into());
    }
    if r.u64()? != token {
        return Err("its token is not the store's".into());
    }
    let version = r.u32()?;
    if version != CELLS_VERSION {
        return Err(format!(
            "cells of version {version}, this build's are {CELLS_VERSION}"
        ));
    }
    if r.u32()? != inv.index() as u32 {
        return Err("the snapshot of another inventory".into());
    }
    let placed_by = match r.u32()? {
        0 => 0,
        1 => crate::model::item::new_generation(),
        other => return Err(format!("a placement flag of {other}")),
    };
    let count = r.u64()?;
    // Every item takes at least 44 bytes: a count beyond the file's size is damage.
    if count > r.left / 44 {
        return Err(format!("{count} items claimed in {size} bytes"));
    }
    let count = count as usize;
    let mut map = ItemMap::with_capacity_and_hasher(count, Default::default());
    let mut sorted: Vec<Arc<Item>> = Vec::with_capacity(count);
    // The key's and the cells' bytes are read into buffers reused from item to item.
    let (mut key_buf, mut cells) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let key_len = r.u32()? as usize;
        r.fill(&mut key_buf, key_len)?;
        let key = std::str::from_utf8(&key_buf).map_err(|_| "a key that is not UTF-8")?;
        let first_secs = r.i64()?;
        let first_nanos = r.u32()?;
        let last_ms = r.i64()?;
        let position = r.u64()?;
        let cells_len = r.u32()? as usize;
        r.fill(&mut cells, cells_len)?;
        let raw_len = r.u32()? as usize;
        let raw = r.text_with_room(raw_len, stored_extras_len(&cells))?;
        let (Some(first_seen), Some(last_seen)) = (
            DateTime::<Utc>::from_timestamp(first_secs, first_nanos),
            DateTime::<Utc>::from_timestamp_millis(last_ms),
        ) else {
            return Err(format!("item {key:?}: a time out of range"));
        };
        if sorted.last().is_some_and(|last| last.key.as_str() >= key) {
            return Err(format!("item {key:?}: out of key order"));
        }
        let key = Key::new(key);
        let (item, _) =
            Item::from_stored(key.clone(), inv, raw, Some(&cells), first_seen, last_seen);
        match u32::try_from(position) {
            Ok(position) if placed_by != 0 => item.set_place(placed_by, position),
            _ if position == UNPLACED => {}
            _ => return Err(format!("item {key:?}: a position of {position}")),
        }
        let item = Arc::new(item);
        sorted.push(item.clone());
        map.insert(key, item);
    }
    let mut end = [0u8; 8];
    r.exact(&mut end)?;
    if &end != END || r.u64()? != count as u64 || r.left != 0 {
        return Err("its end is damaged".into());
    }
    Ok(Snapshot {
        map,
        sorted,
        placed_by,
    })
}

/// A bounded reader: nothing is allocated beyond what the file still holds.
struct Reader {
    input: BufReader<File>,
    left: u64,
}

impl Reader {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), Refusal> {
        if (buf.len() as u64) > self.left {
            return Err("cut short".into());
        }
        self.input
            .read_exact(buf)
            .map_err(|e| format!("unreadable: {e}"))?;
        self.left -= buf.len() as u64;
        Ok(())
    }
    fn u32(&mut self) -> Result<u32, Refusal> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, Refusal> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn i64(&mut self) -> Result<i64, Refusal> {
        Ok(self.u64()? as i64)
    }
    /// The next `len` bytes into `buf` (its earlier content dropped).
    fn fill(&mut self, buf: &mut Vec<u8>, len: usize) -> Result<(), Refusal> {
        if len as u64 > self.left {
            return Err("cut short".into());
        }
        buf.clear();
        buf.resize(len, 0);
        self.exact(buf)
    }
    /// A text of `len` bytes, with room for `room` more.
    fn text_with_room(&mut self, len: usize, room: usize) -> Result<String, Refusal> {
        if len as u64 > self.left {
            return Err("cut short".into());
        }
        let mut buf = Vec::with_capacity(len + room);
        self.fill(&mut buf, len)?;
        String::from_utf8(buf).map_err(|_| "a text that is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::item::Item;

    fn item(key: &str, name: &str) -> Arc<Item> {
        let raw = format!(r#"{{"externalId":"{key}","name":"{name}","status":"active"}}"#);
        let first = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let last = DateTime::from_timestamp_millis(1_700_000_500_250).unwrap();
        Arc::new(Item::new(
            Key::new(key),
            Inventory::Services,
            raw.into_boxed_str(),
            first,
            last,
        ))
    }

    #[test]
    fn a_snapshot_reads_back_item_for_item_and_any_damage_is_refused() {
        let dir = std::env::temp_dir().join(format!("sesinv-snapshot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = dir.join("inventory.db");
        let items = vec![item("A-1", "first"), item("B-2", "sécond"), item("C-3", "")];
        let inv = Inventory::Services;
        items[0].set_place(7, 0);
        items[2].set_place(7, 512);
        items[1].set_place(6, 256);
        write(&store, inv, 42, &items, 7).unwrap();
        let Snapshot {
            map,
            sorted,
            placed_by,
        } = read(&store, inv, 42).unwrap();
        assert_eq!(map.len(), 3);
        assert_ne!(placed_by, 0, "placed, under a generation of this process");
        let places: Vec<_> = sorted.iter().map(|i| i.place()).collect();
        assert_eq!(places, [(placed_by, 0), (0, 0), (placed_by, 512)]);
        for (a, b) in items.iter().zip(&sorted) {
            assert_eq!(a.key, b.key);
            assert_eq!(a.raw(), b.raw());
            assert_eq!(a.first_seen, b.first_seen);
            assert_eq!(a.last_seen(), b.last_seen());
            assert_eq!(format!("{:?}", a.row()), format!("{:?}", b.row()));
        }
        // Another token, another inventory: refused.
        assert!(read(&store, inv, 43).unwrap_err().contains("token"));
        let bytes = std::fs::read(path(&store, inv)).unwrap();
        std::fs::copy(path(&store, inv), path(&store, Inventory::Carriers)).unwrap();
        assert!(
            read(&store, Inventory::Carriers, 42)
                .unwrap_err()
                .contains("another inventory")
        );
        // Cut anywhere, or any byte changed: refused or the same items, never a panic.
        for cut in 0..bytes.len() {
            std::fs::write(path(&store, inv), &bytes[..cut]).unwrap();
            assert!(read(&store, inv, 42).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x5a;
            std::fs::write(path(&store, inv), &damaged).unwrap();
            if let Ok(read) = read(&store, inv, 42) {
                assert_eq!(read.map.len(), 3, "byte {i}");
            }
        }
        remove(&store);
        assert!(!path(&store, inv).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

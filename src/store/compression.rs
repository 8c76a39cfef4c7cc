//! The upstream JSON at rest: each item's compact JSON as a zstd frame against a dictionary
//! trained once per inventory.
//!
//! Items of one inventory share most of their text (member names, statuses, parties, sites),
//! so a frame against a dictionary of that text is a sixth of the JSON (about 200 bytes for
//! 1.3 KB), where a frame of its own would be half. The dictionary is trained from the items
//! of the inventory's first write that has [`MIN_SAMPLES`] of them, kept in the table
//! `dictionaries` and committed in the same transaction as the first row that needs it; each
//! row names its dictionary in `raw_dict`. A row without one (`raw_dict` NULL: written by
//! schema version 1, or before its inventory had enough items to train on) holds the JSON as
//! text.

use crate::model::inventory::Inventory;
use crate::model::item::Item;
use crate::telemetry::events;
use crate::time::format;
use chrono::Utc;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;
use std::sync::Arc;

/// Created when missing (schema version 2).
pub(super) const DICTIONARIES: &str = "CREATE TABLE IF NOT EXISTS dictionaries (
  id INTEGER PRIMARY KEY,
  inventory TEXT NOT NULL,
  created TEXT NOT NULL,
  samples INTEGER NOT NULL,
  dict BLOB NOT NULL
);\n";

/// Fewer items than this are stored as text: too few to learn from, too few to matter.
const MIN_SAMPLES: usize = 100;
/// At most this many items (spread over the write) train a dictionary.
const MAX_SAMPLES: usize = 2_000;
/// Dictionary size: 16 KiB gives within 3 % of 64 KiB's ratio on the simulator's items.
const DICT_BYTES: usize = 16 * 1024;
/// zstd's default level: ~3 µs an item; higher levels gain a few percent for twice the time.
const LEVEL: i32 = 3;

/// Compresses one inventory's items against its dictionary.
pub(super) struct Encoder {
    pub(super) id: i64,
    dict: Arc<[u8]>,
    compressor: zstd::bulk::Compressor<'static>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("id", &self.id).finish()
    }
}

impl Encoder {
    fn new(id: i64, dict: &[u8]) -> std::io::Result<Encoder> {
        let mut compressor = zstd::bulk::Compressor::with_dictionary(LEVEL, dict)?;
        // The row names its dictionary; the frame need not.
        compressor.include_dictid(false)?;
        compressor.include_contentsize(true)?;
        Ok(Encoder {
            id,
            dict: dict.into(),
            compressor,
        })
    }

    /// Another encoder of the same dictionary (for another thread).
    pub(super) fn twin(&self) -> std::io::Result<Encoder> {
        Encoder::new(self.id, &self.dict)
    }

    /// The encoder of `inv`'s newest dictionary in the file, if it has one.
    pub(super) fn stored(conn: &Connection, inv: Inventory) -> rusqlite::Result<Option<Encoder>> {
        let found: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT id, dict FROM dictionaries WHERE inventory = ?1 ORDER BY id DESC LIMIT 1",
                [inv.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        found
            .map(|(id, dict)| Encoder::new(id, &dict).map_err(|e| codec_error(inv, id, e)))
            .transpose()
    }

    /// Trains a dictionary on `items` and records it in `tx`: `None` when there are too few
    /// items or zstd cannot learn from them (the items are then stored as text). The encoder
    /// is only valid once `tx` commits.
    pub(super) fn train(
        tx: &rusqlite::Transaction<'_>,
        inv: Inventory,
        items: &[Arc<Item>],
    ) -> rusqlite::Result<Option<Encoder>> {
        if items.len() < MIN_SAMPLES {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let step = items.len().div_ceil(MAX_SAMPLES);
        let samples: Vec<&[u8]> = items
            .iter()
            .step_by(step)
            .map(|i| i.raw().as_bytes())
            .collect();
        let Ok(dict) = zstd::dict::from_samples(&samples, DICT_BYTES) else {
            return Ok(None);
        };
        tx.execute(
            "INSERT INTO dictionaries (inventory, created, samples, dict) VALUES (?1, ?2, ?3, ?4)",
            params![
                inv.as_str(),
                format::nanos(Utc::now()),
                samples.len() as i64,
                dict
            ],
        )?;
        let id = tx.last_insert_rowid();
        events::StoreDictionaryTrained {
            inventory: inv,
            samples: samples.len(),
            bytes: dict.len(),
            duration: started.elapsed(),
        }
        .emit();
        Encoder::new(id, &dict)
            .map(Some)
            .map_err(|e| codec_error(inv, id, e))
    }

    pub(super) fn encode(&mut self, json: &str) -> std::io::Result<Vec<u8>> {
        self.compressor.compress(json.as_bytes())
    }
}

/// Decompresses one inventory's rows (each loader thread has its own).
pub(super) struct Decoders {
    inventory: Inventory,
    /// Each dictionary's decompressor, and its bytes (for frames too large to decode at once).
    by_id: HashMap<i64, (zstd::bulk::Decompressor<'static>, Vec<u8>)>,
}

impl Decoders {
    /// Every dictionary of `inv` in the file.
    pub(super) fn read(conn: &Connection, inv: Inventory) -> rusqlite::Result<Decoders> {
        let mut stmt = conn.prepare("SELECT id, dict FROM dictionaries WHERE inventory = ?1")?;
        let mut rows = stmt.query([inv.as_str()])?;
        let mut by_id = HashMap::new();
        while let Some(r) = rows.next()? {
            let (id, dict): (i64, Vec<u8>) = (r.get(0)?, r.get(1)?);
            let d = zstd::bulk::Decompressor::with_dictionary(&dict)
                .map_err(|e| codec_error(inv, id, e))?;
            by_id.insert(id, (d, dict));
        }
        Ok(Decoders {
            inventory: inv,
            by_id,
        })
    }

    /// The JSON of a row from its `raw` and `raw_dict` (column `col` of the statement).
    pub(super) fn json(
        &mut self,
        raw: ValueRef<'_>,
        dict: Option<i64>,
        col: usize,
    ) -> rusqlite::Result<String> {
        self.json_with_room(raw, dict, col, 0)
    }

    /// As [`Decoders::json`], in a string with room for `room` more bytes.
    pub(super) fn json_with_room(
        &mut self,
        raw: ValueRef<'_>,
        dict: Option<i64>,
        col: usize,
        room: usize,
    ) -> rusqlite::Result<String> {
        let bad = |what: String| {
            rusqlite::Error::FromSqlConversionFailure(
                col,
                raw.data_type(),
                format!("{} raw: {what}", self.inventory).into(),
            )
        };
        match (raw, dict) {
            (ValueRef::Text(t), None) => {
                let mut text = Vec::with_capacity(t.len() + room);
                text.extend_from_slice(t);
                String::from_utf8(text).map_err(|e| bad(e.to_string()))
            }
            (ValueRef::Blob(frame), Some(id)) => {
                let (d, dict) = self
                    .by_id
                    .get_mut(&id)
                    .ok_or_else(|| bad(format!("dictionary {id} is not in the file")))?;
                let size = zstd::zstd_safe::get_frame_content_size(frame)
                    .ok()
                    .flatten()
                    .ok_or_else(|| bad("not a zstd frame with its size".into()))?;
                let bytes = match usize::try_from(size) {
                    Ok(size) if size <= AT_ONCE => {
                        let mut bytes = Vec::with_capacity(size + room);
                        d.decompress_to_buffer(frame, &mut bytes)
                            .map_err(|e| bad(e.to_string()))?;
                        bytes
                    }
                    // Memory as the text comes: a damaged header can claim any size.
                    _ => {
                        use std::io::Read;
                        let mut bytes = Vec::new();
                        zstd::stream::read::Decoder::with_dictionary(frame, dict)
                            .and_then(|r| r.take(size.saturating_add(1)).read_to_end(&mut bytes))
                            .map_err(|e| bad(e.to_string()))?;
                        if bytes.len() as u64 != size {
                            return Err(bad(format!(
                                "a frame claiming {size} bytes gives {}",
                                bytes.len()
                            )));
                        }
                        bytes.reserve_exact(room);
                        bytes
                    }
                };
                String::from_utf8(bytes).map_err(|e| bad(e.to_string()))
            }
            (_, dict) => Err(bad(format!(
                "a {:?} with dictionary {dict:?}",
                raw.data_type()
            ))),
        }
    }
}

/// Frames claiming up to this size are decompressed at once, into a buffer of that size;
/// larger ones as a stream.
const AT_ONCE: usize = 1 << 26;

/// Earlier versions of an item, each compressed against the version that replaced it (zstd with
/// that text as its dictionary): what changed costs bytes, what stayed costs almost none. One
/// per write; the contexts are reused from item to item.
pub(super) struct Deltas {
    compress: zstd::zstd_safe::CCtx<'static>,
    decompress: zstd::zstd_safe::DCtx<'static>,
}

/// The level deltas are written at: they are small, and a write makes thousands.
const DELTA_LEVEL: i32 = 1;

impl Deltas {
    pub(super) fn new() -> Deltas {
        Deltas {
            compress: zstd::zstd_safe::CCtx::create(),
            decompress: zstd::zstd_safe::DCtx::create(),
        }
    }

    /// `old` as a frame against `new`.
    pub(super) fn encode(&mut self, old: &str, new: &str) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(old.len()));
        self.compress
            .compress_using_dict(&mut out, old.as_bytes(), new.as_bytes(), DELTA_LEVEL)
            .map_err(zstd_error)?;
        Ok(out)
    }

    /// The text [`Deltas::encode`] wrote as `frame` against `new`; an error when `new` is not the
    /// text it was written against (the frame's size or the JSON does not come out).
    pub(super) fn decode(&mut self, frame: &[u8], new: &str) -> std::io::Result<String> {
        let size = zstd::zstd_safe::get_frame_content_size(frame)
            .ok()
            .flatten()
            .ok_or_else(|| std::io::Error::other("not a zstd frame with its size"))?;
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        self.decompress
            .decompress_using_dict(&mut out, frame, new.as_bytes())
            .map_err(zstd_error)?;
        let text = String::from_utf8(out).map_err(std::io::Error::other)?;
        if text.len() as u64 == size && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok()
        {
            Ok(text)
        } else {
            Err(std::io::Error::other(
                "an earlier version does not decode against the one after it",
            ))
        }
    }
}

fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(zstd::zstd_safe::get_error_name(code))
}

fn codec_error(inv: Inventory, id: i64, e: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Blob,
        format!("{inv} dictionary {id}: {e}").into(),
    )
}

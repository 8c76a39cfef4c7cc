//! A cached item's row, packed against the item's own JSON text.
//!
//! A row's texts are nearly always written verbatim in the item's compact JSON (a name, a
//! status, an id). Copying each into its own allocation made the cache hold every item about
//! twice, in some forty small allocations. A [`Packed`] row holds the JSON text once, followed by
//! the few texts that are not verbatim in it (strings with escapes, numbers and booleans read as
//! text, trimmed copies are still verbatim), and one array of `u32` words that locates every
//! cell in that text:
//!
//! | column kind | words |
//! |---|---|
//! | Text | `start, len` (absent: `NONE, 0`) |
//! | Time | seconds (low, high), nanoseconds (absent: nanoseconds `NONE`) |
//! | One, Many | the number of entries, then each entry |
//! | entry | a mask of its set fields (bit i = field i of `id, name, role, value, value_type, relationship_type`), then `start, len` per set field |
//!
//! Columns follow [`Row::columns`]; a cell is found by walking the columns before it (at most a
//! dozen). Reading a text cell allocates nothing; an entry cell allocates its list only.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::{Cell, Entry, Row};
use crate::model::inventory::Inventory;
use crate::model::json::{Tape, Val};

/// An absent text's start, an absent time's nanoseconds.
const NONE: u32 = u32::MAX;

/// The version of the row extraction and of this packing, written with stored cells
/// ([`Packed::stored_cells`]). **Bump it whenever either changes** (a column, a rule of
/// [`Row::from_json`], the words): cells stored by another version are not taken back, their
/// rows are extracted again. `tests::cells_version_follows_the_extraction` fails when the
/// extraction of a fixed sample changes and this did not.
pub(crate) const CELLS_VERSION: u32 = 1;
/// The entry fields, in mask-bit order.
const ENTRY_FIELDS: usize = 6;

/// An item's JSON text and its row's cells.
pub(crate) struct Packed {
    /// The compact upstream JSON, then the texts that are not verbatim in it.
    text: Box<str>,
    raw_len: u32,
    inventory: Inventory,
    words: Box<[u32]>,
}

/// The length of the texts that follow the JSON in stored cells (0 when they are not stored
/// cells): the room to leave after the JSON for them.
pub(crate) fn stored_extras_len(stored: &[u8]) -> usize {
    let words_len = stored_header(stored, 3).unwrap_or(0) as usize;
    stored.len().saturating_sub(16 + words_len)
}

/// Word `i` of stored cells' header: the version, the JSON's length, the number of words, the
/// bytes they take.
fn stored_header(stored: &[u8], i: usize) -> Option<u32> {
    let bytes = stored.get(4 * i..4 * i + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// A word of stored cells: LEB128 of the word plus one, so that `NONE` and the many small
/// offsets and lengths take one or two bytes.
fn put_word(out: &mut Vec<u8>, word: u32) {
    let mut v = word.wrapping_add(1);
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The word at the start of `bytes` ([`put_word`]) and the bytes after it; `None` when cut
/// short or longer than a `u32`.
fn take_word(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let word = u32::try_from(v).ok()?.wrapping_sub(1);
            return Some((word, &bytes[i + 1..]));
        }
    }
    None
}

impl Packed {
    /// Extracts the row of `raw` (an item's compact JSON) and packs it. JSON that does not parse
    /// gives an all-empty row, as [`Row::from_json`] does for a non-object.
    pub fn new(inventory: Inventory, raw: Box<str>) -> Packed {
        let words_and_extras = {
            let mut tree = None;
            let tape = Tape::parse(&raw, &mut tree);
            Packed::encode(inventory, tape.root(), &raw)
        };
        Packed::assemble(inventory, raw, words_and_extras)
    }

    /// As [`Packed::new`], from `json`, the tape value already read from `source`: text with the
    /// same bytes as `raw` (the page's copy of the element), so the row is not read twice.
    pub(crate) fn from_tape(
        inventory: Inventory,
        raw: Box<str>,
        json: Val<'_, '_>,
        source: &str,
    ) -> Packed {
        debug_assert_eq!(source, &*raw, "the tape is read from the item's own text");
        let words_and_extras = Packed::encode(inventory, json, source);
        Packed::assemble(inventory, raw, words_and_extras)
    }

    /// The row of `json` (read from `source`) as words, and the texts not verbatim in `source`.
    fn encode(inventory: Inventory, json: Val<'_, '_>, source: &str) -> (Box<[u32]>, String) {
        let mut extras = String::new();
        let row = Row::from_json(inventory, json);
        let words = Encoder {
            raw: source,
            extras: &mut extras,
            words: Vec::with_capacity(48),
        }
        .row(&row);
        (words, extras)
    }

    fn assemble(
        inventory: Inventory,
        raw: Box<str>,
        (words, extras): (Box<[u32]>, String),
    ) -> Packed {
        let raw_len = u32::try_from(raw.len()).expect("an item's JSON is under 4 GiB");
        let text = if extras.is_empty() {
            raw
        } else {
            let mut text = String::with_capacity(raw.len() + extras.len());
            text.push_str(&raw);
            text.push_str(&extras);
            text.into_boxed_str()
        };
        Packed {
            text,
            raw_len,
            inventory,
            words,
        }
    }

    /// The cells as the store keeps them beside the compressed JSON, so that a warm start reads
    /// them instead of extracting the row again: [`CELLS_VERSION`], the JSON's length, the
    /// number of words and the bytes they take (`u32` little-endian each), the words (each as
    /// [`put_word`] writes it), then the texts that follow the JSON.
    pub(crate) fn stored_cells(&self) -> Vec<u8> {
        let extras = &self.text.as_bytes()[self.raw_len as usize..];
        let mut out = Vec::with_capacity(16 + 2 * self.words.len() + extras.len());
        out.extend_from_slice(&CELLS_VERSION.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for &word in &self.words {
            put_word(&mut out, word);
        }
        let words_len = (out.len() - 16) as u32;
        out[12..16].copy_from_slice(&words_len.to_le_bytes());
        out.extend_from_slice(extras);
        out
    }

    /// The packed row of `raw` from `stored` ([`Packed::stored_cells`]) without extracting it;
    /// `raw` given back when the cells are of another version, of another JSON's length, or
    /// do not fit it (a damaged file): the caller extracts the row instead.
    pub(crate) fn from_stored(
        inventory: Inventory,
        raw: String,
        stored: &[u8],
    ) -> Result<Packed, String> {
        let header = |i| stored_header(stored, i);
        let (Some(CELLS_VERSION), Some(raw_len), Some(count), Some(words_len)) =
            (header(0), header(1), header(2), header(3))
        else {
            return Err(raw);
        };
        let Some(encoded) = stored.get(16..16 + words_len as usize) else {
            return Err(raw);
        };
        if raw_len as usize != raw.len() || count as usize > encoded.len() {
            return Err(raw);
        }
        let Ok(extras) = std::str::from_utf8(&stored[16 + words_len as usize..]) else {
            return Err(raw);
        };
        let mut words = Vec::with_capacity(count as usize);
        let mut rest = encoded;
        while let Some((word, after)) = take_word(rest) {
            words.push(word);
            rest = after;
        }
        if words.len() != count as usize || !rest.is_empty() {
            return Err(raw);
        }
        let mut text = raw;
        text.push_str(extras);
        let packed = Packed {
            text: text.into_boxed_str(),
            raw_len,
            inventory,
            words: words.into_boxed_slice(),
        };
        if packed.fits() {
            Ok(packed)
        } else {
            let mut raw = String::from(packed.text);
            raw.truncate(packed.raw_len as usize);
            Err(raw)
        }
    }

    /// Whether the words describe the inventory's columns and every text they locate lies in
    /// the text, on character boundaries: what reading a cell relies on not to panic.
    fn fits(&self) -> bool {
        use super::ColumnKind::*;
        let words = &self.words;
        let text_fits = |at: usize| -> bool {
            let (Some(&start), Some(&len)) = (words.get(at), words.get(at + 1)) else {
                return false;
            };
            if start == NONE {
                return true;
            }
            let (start, end) = (start as usize, start as usize + len as usize);
            end <= self.text.len()
                && self.text.is_char_boundary(start)
                && self.text.is_char_boundary(end)
        };
        let mut at = 0;
        for column in Row::columns(self.inventory) {
            match column.kind {
                Text => {
                    if !text_fits(at) {
                        return false;
                    }
                    at += 2;
                }
                Time => at += 3,
                One | Many => {
                    let Some(&count) = words.get(at) else {
                        return false;
                    };
                    if column.kind == One && count > 1 || count as usize > words.len() {
                        return false;
                    }
                    at += 1;
                    for _ in 0..count {
                        let Some(&mask) = words.get(at) else {
                            return false;
                        };
                        if mask >> ENTRY_FIELDS != 0 {
                            return false;
                        }
                        at += 1;
                        for _ in 0..mask.count_ones() {
                            if !text_fits(at) {
                                return false;
                            }
                            at += 2;
                        }
                    }
                }
            }
        }
        at == words.len()
    }

    /// The item's compact upstream JSON.
    pub fn raw(&self) -> &str {
        &self.text[..self.raw_len as usize]
    }

    pub fn inventory(&self) -> Inventory {
        self.inventory
    }

    /// The cell of column `index` of [`Row::columns`]. Panics on an out-of-range index.
    pub fn cell(&self, index: usize) -> Cell<'_> {
        let columns = Row::columns(self.inventory);
        assert!(
            index < columns.len(),
            "column index {index} out of range for {} ({} columns)",
            self.inventory,
            columns.len()
        );
        let mut at = 0;
        for column in &columns[..index] {
            at = self.skip(column.kind, at);
        }
        self.decode(columns[index].kind, at).0
    }

    /// Every cell, in column order.
    pub(crate) fn cells(&self) -> impl Iterator<Item = Cell<'_>> {
        let mut at = 0;
        Row::columns(self.inventory).iter().map(move |column| {
            let (cell, next) = self.decode(column.kind, at);
            at = next;
            cell
        })
    }

    /// The whole row (its texts borrowed from the item).
    pub fn row(&self) -> Row<'_> {
        Row::from_cells(self.inventory, self.cells())
    }

    /// Bytes held: the text and the words (for the benchmarks' bytes per item).
    pub fn heap_bytes(&self) -> usize {
        self.text.len() + self.words.len() * 4
    }

    fn skip(&self, kind: super::ColumnKind, at: usize) -> usize {
        use super::ColumnKind::*;
        match kind {
            Text => at + 2,
            Time => at + 3,
            One | Many => {
                let mut next = at + 1;
                for _ in 0..self.words[at] {
                    next += 1 + 2 * self.words[next].count_ones() as usize;
                }
                next
            }
        }
    }

    fn text_at(&self, at: usize) -> Option<&str> {
        let start = self.words[at];
        (start != NONE).then(|| {
            let start = start as usize;
            &self.text[start..start + self.words[at + 1] as usize]
        })
    }

    /// The entry at `at`, and where the next word is.
    fn entry_at(&self, at: usize) -> (Entry<'_>, usize) {
        let mask = self.words[at];
        let mut next = at + 1;
        let mut fields: [Option<Cow<'_, str>>; ENTRY_FIELDS] = Default::default();
        for (bit, field) in fields.iter_mut().enumerate() {
            if mask & (1 << bit) != 0 {
                *field = self.text_at(next).map(Cow::Borrowed);
                next += 2;
            }
        }
        let [id, name, role, value, value_type, relationship_type] = fields;
        let entry = Entry {
            id,
            name,
            role,
            value,
            value_type,
            relationship_type,
        };
        (entry, next)
    }

    /// The cell of `kind` at `at`, and where the next column starts.
    fn decode(&self, kind: super::ColumnKind, at: usize) -> (Cell<'_>, usize) {
        use super::ColumnKind::*;
        match kind {
            Text => (Cell::Text(self.text_at(at)), at + 2),
            Time => {
                let nanos = self.words[at + 2];
                let seconds = i64::from(self.words[at]) | (i64::from(self.words[at + 1]) << 32);
                let time = (nanos != NONE)
                    .then(|| DateTime::<Utc>::from_timestamp(seconds, nanos))
                    .flatten();
                (Cell::Time(time), at + 3)
            }
            One | Many => {
                let count = self.words[at] as usize;
                let mut next = at + 1;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let (entry, after) = self.entry_at(next);
                    entries.push(entry);
                    next = after;
                }
                let cell = if kind == One {
                    Cell::One(entries.pop().map(Cow::Owned))
                } else {
                    Cell::Many(Cow::Owned(entries))
                };
                (cell, next)
            }
        }
    }
}

/// Writes a row's words; texts not found in `raw` go to `extras`.
struct Encoder<'r> {
    raw: &'r str,
    extras: &'r mut String,
    words: Vec<u32>,
}

impl Encoder<'_> {
    fn row(mut self, row: &Row<'_>) -> Box<[u32]> {
        for index in 0..Row::columns(row.inventory()).len() {
            match row.cell(index) {
                Cell::Text(text) => self.text(text),
                Cell::Time(None) => self.words.extend([0, 0, NONE]),
                Cell::Time(Some(time)) => {
                    let seconds = time.timestamp();
                    self.words.extend([
                        seconds as u32,
                        (seconds >> 32) as u32,
                        time.timestamp_subsec_nanos(),
                    ]);
                }
                Cell::One(entry) => {
                    self.words.push(u32::from(entry.is_some()));
                    if let Some(entry) = entry {
                        self.entry(&entry);
                    }
                }
                Cell::Many(list) => {
                    self.words.push(list.len() as u32);
                    for entry in list.iter() {
                        self.entry(entry);
                    }
                }
            }
        }
        self.words.into_boxed_slice()
    }

    fn entry(&mut self, entry: &Entry<'_>) {
        let fields = [
            &entry.id,
            &entry.name,
            &entry.role,
            &entry.value,
            &entry.value_type,
            &entry.relationship_type,
        ];
        let mask = fields
            .iter()
            .enumerate()
            .filter(|(_, field)| field.is_some())
            .fold(0u32, |mask, (bit, _)| mask | 1 << bit);
        self.words.push(mask);
        for field in fields.into_iter().flatten() {
            self.text(Some(field));
        }
    }

    fn text(&mut self, text: Option<&str>) {
        let Some(text) = text else {
            self.words.extend([NONE, 0]);
            return;
        };
        let base = self.raw.as_ptr() as usize;
        let at = text.as_ptr() as usize;
        let start = if at >= base && at + text.len() <= base + self.raw.len() {
            at - base
        } else {
            let start = self.raw.len() + self.extras.len();
            self.extras.push_str(text);
            start
        };
        self.words.extend([start as u32, text.len() as u32]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Packing then unpacking gives the row extracted from the same JSON, cell for cell.
    fn round_trip(inventory: Inventory, item: serde_json::Value) -> Packed {
        let raw = item.to_string();
        let packed = Packed::new(inventory, raw.clone().into_boxed_str());
        let expected = Row::extract(inventory, &item);
        assert_eq!(packed.raw(), raw, "the JSON text comes back as given");
        assert_eq!(packed.row(), expected, "{inventory}: {raw}");
        for (i, column) in Row::columns(inventory).iter().enumerate() {
            assert_eq!(
                packed.cell(i),
                expected.cell(i),
                "{inventory}.{}",
                column.name
            );
        }
        assert_eq!(packed.cells().count(), Row::columns(inventory).len());
        packed
    }

    fn every_column() -> serde_json::Value {
        json!({
            "externalId": "X-1", "name": "  padded name  ", "description": "tab\there \"quoted\"",
            "status": true, "@type": 42, "startDate": "1969-07-20T20:17:40.123456789Z",
            "endDate": "9999-12-31", "lastUpdate": "2024-03-01 10:20:30",
            "creationDate": "2023-12-31T23:59:59+01:00",
            "relatedParty": [{"id": "p1", "name": "Other", "role": "user"},
                             {"partyOrPartyRole": {"id": "p2", "name": "ACME é"}, "role": "Customer"}],
            "place": [{"id": "l", "role": "site"}, "not an object", {}],
            "serviceSpecification": "bare name", "resourceSpecification": {"id": "rs"},
            "supportingResource": [{"resource": {"id": "r", "name": "R"}}],
            "supportingService": {"id": "s"},
            "serviceCharacteristic": [{"name": "n", "value": {"a": [1, 2]}}, {"name": "e", "value": ""},
                                      {"name": "s", "value": "text", "valueType": "string"}],
            "resourceCharacteristic": [{"id": "c", "name": "c", "value": 2.5, "@type": "Num"}],
            "resourceRelationship": [{"relationshipType": "contains", "resource": {"id": "rr"}}]
        })
    }

    #[test]
    fn every_column_of_every_inventory_round_trips() {
        for inventory in Inventory::ALL {
            round_trip(inventory, every_column());
            round_trip(inventory, json!({}));
            round_trip(inventory, json!({"externalId": "only"}));
        }
    }

    #[test]
    fn verbatim_texts_are_not_copied() {
        let item = json!({"externalId": "SES-1", "name": "plain", "status": "active"});
        let packed = round_trip(Inventory::Services, item.clone());
        assert_eq!(
            packed.text.len(),
            item.to_string().len(),
            "nothing appended"
        );
        // An escaped string, a number and a boolean are not verbatim: they follow the JSON.
        let item = json!({"externalId": 7, "name": "a\"b", "status": false});
        let packed = round_trip(Inventory::Services, item.clone());
        assert_eq!(
            &packed.text[item.to_string().len()..],
            "7a\"bfalse",
            "the unescaped texts follow the JSON"
        );
    }

    #[test]
    fn json_that_is_not_an_object_gives_an_empty_row() {
        for raw in ["[1,2]", "\"text\"", "not json"] {
            let packed = Packed::new(Inventory::Resources, raw.into());
            assert_eq!(packed.raw(), raw);
            assert!(packed.cells().all(|cell| cell.is_empty()), "{raw}");
        }
    }

    #[test]
    fn stored_cells_come_back_as_extracted() {
        let samples = [
            every_column(),
            json!({}),
            json!({"externalId": 7, "name": "a\"b"}),
        ];
        for inventory in Inventory::ALL {
            for item in &samples {
                let packed = round_trip(inventory, item.clone());
                let stored = packed.stored_cells();
                let back = Packed::from_stored(inventory, item.to_string(), &stored)
                    .unwrap_or_else(|_| panic!("{inventory}: the stored cells are taken back"));
                assert_eq!(back.raw(), packed.raw());
                assert_eq!(back.row(), packed.row(), "{inventory}: {item}");
                assert_eq!(back.text, packed.text);
            }
        }
    }

    #[test]
    fn stored_cells_that_do_not_fit_are_refused() {
        let item = every_column();
        let raw = item.to_string();
        let stored = Packed::new(Inventory::Services, raw.clone().into()).stored_cells();
        let refused = |stored: &[u8], raw: &str, why: &str| match Packed::from_stored(
            Inventory::Services,
            raw.to_string(),
            stored,
        ) {
            Ok(_) => panic!("taken back: {why}"),
            Err(back) => assert_eq!(back, raw, "{why}: the JSON is given back whole"),
        };
        let mut other_version = stored.clone();
        other_version[0] ^= 0xff;
        refused(&other_version, &raw, "another version");
        refused(&stored, &raw[1..], "another JSON's length");
        refused(&stored[..stored.len() / 2], &raw, "cut short");
        refused(&stored[..12], &raw, "no word count");
        // The first column's text (the name) moved past the text, or into the middle of a
        // character ("ACME é").
        let with_first = |start: u32| {
            let (_, rest) = take_word(&stored[16..]).unwrap();
            let first_len = stored.len() - 16 - rest.len();
            let mut first = Vec::new();
            put_word(&mut first, start);
            let words_len = u32::from_le_bytes(stored[12..16].try_into().unwrap()) as usize;
            let mut out = stored[..12].to_vec();
            out.extend_from_slice(&((words_len - first_len + first.len()) as u32).to_le_bytes());
            out.extend_from_slice(&first);
            out.extend_from_slice(rest);
            out
        };
        assert!(Packed::from_stored(Inventory::Services, raw.clone(), &with_first(1)).is_ok());
        refused(
            &with_first(raw.len() as u32 + 100),
            &raw,
            "a text past the end",
        );
        let accent = raw.find('é').unwrap() as u32;
        refused(&with_first(accent + 1), &raw, "a text inside a character");
        // Any byte flipped gives back either the row or the JSON, never a panic.
        for at in 0..stored.len() {
            let mut flipped = stored.clone();
            flipped[at] ^= 0x5a;
            if let Ok(packed) = Packed::from_stored(Inventory::Services, raw.clone(), &flipped) {
                let _ = packed.row();
            }
        }
    }

    /// A fingerprint of what the extraction makes of a fixed sample. When it changes, rows
    /// stored with cells of [`CELLS_VERSION`] no longer match this build's: bump the version,
    /// then set the fingerprint this test prints.
    #[test]
    fn cells_version_follows_the_extraction() {
        let samples = [
            every_column(),
            json!({}),
            json!({"externalId": 7, "name": "a\"b", "status": false}),
            json!({"id": "r-1", "resourceStatus": "available", "operationalState": "enable",
                   "category": "antenna", "resourceCharacteristic": [{"name": "band", "value": "Ku"}]}),
        ];
        // FNV-1a over every inventory's stored cells of every sample.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for inventory in Inventory::ALL {
            for item in &samples {
                for byte in Packed::new(inventory, item.to_string().into()).stored_cells() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        assert_eq!(
            (CELLS_VERSION, hash),
            (1, 0x2129_8fbe_1e30_56a7),
            "the extraction changed: bump CELLS_VERSION and set the fingerprint to {hash:#x}"
        );
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn a_cell_past_the_last_column_panics() {
        Packed::new(Inventory::Carriers, "{}".into()).cell(9);
    }
}

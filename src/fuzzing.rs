//! The checks the fuzz targets run (`fuzz/`, `cargo +nightly fuzz`): one `pub fn <target>(data:
//! &[u8])` per target, each running the daemon's own code on what the bytes make and panicking
//! with a message naming the broken property. Compiled for the tests and with the `fuzzing`
//! feature only, so that nothing internal has to be made public for the fuzz crate: its targets
//! are one-liners calling these functions.
//!
//! | target | bytes become | checked against |
//! |---|---|---|
//! | [`page_decoder`] | a page body, under one of a few inventory configurations | `serde_json` reading the same bytes: the page's elements, the keep rules' verdicts (key, status, type), the compact text, the rows |
//! | [`row_extraction`] | an element (JSON text, or an object built from the bytes) | `Row::extract` of the same JSON, cell by cell, for every inventory and both ways of reading (tape, tree); the text columns against a reading written here |
//! | [`list_query`] | a small inventory and a list query | filtering, searching, sorting and paging written here, naively |
//! | [`config_loader`] | a TOML file and a few environment pairs | what an error must say (the key), secrets kept out of prints |
//! | [`store_loader`] | flipped bytes in the pages of a small valid store file | the store's promises: refuse, move aside or load, never half a cache |
//!
//! The unit tests run every committed seed (`fuzz/seeds/<target>/`) and every saved crash
//! (`fuzz/regressions/<target>/`) through these functions in a plain `cargo test`.

use crate::cache::Cache;
use crate::cache::view::View;
use crate::config::{Config, ConfigError, InventoryConfig};
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::json::{self, Tape};
use crate::model::row::{Cell, Row};
use crate::model::secret::Secret;
use crate::serve::api::query::{ListQuery, Next};
use crate::source::{PageError, parse_items};
use crate::store::Store;
use crate::sync::rules::{Rules, Verdict};
use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A fixed time for every item the checks make.
fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

/// The built-in configuration, read once per process.
fn defaults() -> &'static Config {
    static DEFAULTS: OnceLock<Config> = OnceLock::new();
    DEFAULTS.get_or_init(Config::defaults)
}

/// Small choices read from the fuzzer's bytes (zeros once they run out).
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data, at: 0 }
    }

    fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        let v = if n > 256 {
            usize::from(self.byte()) << 8 | usize::from(self.byte())
        } else {
            usize::from(self.byte())
        };
        v % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    /// Up to `max` bytes, as text (lossy).
    fn text(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        let end = (self.at + n).min(self.data.len());
        let start = self.at.min(end);
        self.at += n;
        String::from_utf8_lossy(&self.data[start..end]).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// An independent reading of an element, from `serde_json::Value`: the documented rules
// (README, model::row's tolerance rule, the keep rules), written again without the daemon's code.
// ---------------------------------------------------------------------------------------------

/// Text as a row reads it: a string trimmed and not empty, a number or a boolean as its text.
fn row_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Text as a keep rule reads a key, a status or a type member: a string that is not blank (as
/// written), or a number's text.
fn rule_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The objects of a list member: an object alone, or an array's objects.
fn objects(v: Option<&Value>) -> Vec<&Map<String, Value>> {
    match v {
        Some(Value::Object(o)) => vec![o],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    }
}

/// The External ID column: `externalId` as text, else the first usable `id` of the identifiers
/// in `externalId` (a list or an object of them) or in v5's `externalIdentifier`.
fn external_id(o: &Map<String, Value>) -> Option<String> {
    let ids = |v| {
        objects(v)
            .into_iter()
            .find_map(|identifier| row_text(identifier.get("id")))
    };
    row_text(o.get("externalId"))
        .or_else(|| ids(o.get("externalId")))
        .or_else(|| ids(o.get("externalIdentifier")))
}

const SERVICE_STATUS: [&str; 3] = ["status", "state", "operatingStatus"];
const RESOURCE_STATUS: [&str; 6] = [
    "status",
    "resourceStatus",
    "operationalState",
    "state",
    "operatingStatus",
    "lifecycleState",
];
const TYPES: [&str; 3] = ["@type", "type", "category"];

fn status_members(inventory: Inventory) -> &'static [&'static str] {
    match inventory {
        Inventory::Resources => &RESOURCE_STATUS,
        _ => &SERVICE_STATUS,
    }
}

fn first_row_text(o: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| row_text(o.get(*n)))
}

/// Whether `value` is one of `list`, trimmed, ignoring case.
fn one_of(value: &str, list: &[String]) -> bool {
    let value = value.trim().to_lowercase();
    list.iter().any(|l| l.trim().to_lowercase() == value)
}

/// What the keep rules must say of an element, read by `serde_json`.
#[derive(Debug, PartialEq)]
enum Expected {
    Keep(String),
    NotKept(String),
    NoKey,
    NotObject,
}

fn expected_verdict(inventory: Inventory, cfg: &InventoryConfig, element: &Value) -> Expected {
    let Some(o) = element.as_object() else {
        return Expected::NotObject;
    };
    let key = rule_text(o.get(&cfg.key_field)).or_else(|| {
        (cfg.key_field == "externalId")
            .then(|| external_id(o))
            .flatten()
    });
    let Some(key) = key else {
        return Expected::NoKey;
    };
    if !cfg.keep_statuses.is_empty() {
        let status = rule_text(o.get(&cfg.status_field))
            .or_else(|| first_row_text(o, status_members(inventory)));
        if !status.is_some_and(|s| one_of(&s, &cfg.keep_statuses)) {
            return Expected::NotKept(key);
        }
    }
    if !cfg.exclude_types.is_empty() {
        let ty = rule_text(o.get(&cfg.type_field)).or_else(|| first_row_text(o, &TYPES));
        if ty.is_some_and(|t| one_of(&t, &cfg.exclude_types)) {
            return Expected::NotKept(key);
        }
    }
    Expected::Keep(key)
}

fn as_expected(verdict: &Verdict<'_>) -> Expected {
    match verdict {
        Verdict::Keep { key } => Expected::Keep(key.to_string()),
        Verdict::NotKept { key } => Expected::NotKept(key.to_string()),
        Verdict::NoKey => Expected::NoKey,
        Verdict::NotObject => Expected::NotObject,
    }
}

/// The text columns every inventory has (0 to 4), read by `serde_json`.
fn expected_texts(inventory: Inventory, element: &Value) -> [Option<String>; 5] {
    let Some(o) = element.as_object() else {
        return Default::default();
    };
    [
        external_id(o),
        row_text(o.get("name")),
        row_text(o.get("description")),
        first_row_text(o, status_members(inventory)),
        first_row_text(o, &TYPES),
    ]
}

/// `text` without the whitespace outside its strings (as the upstream's compact text), written
/// here character by character.
fn compact_by_hand(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
            in_string = c == '"';
        }
    }
    out
}

/// The names of `text`'s top-level members, in order (`None` when it is not an object that
/// `serde_json` reads).
fn top_level_names(text: &str) -> Option<Vec<String>> {
    struct Names;
    impl<'de> Visitor<'de> for Names {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("anything")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut names = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                names.push(name);
            }
            Ok(Some(names))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let names = de::Deserializer::deserialize_any(&mut de, Names).ok()?;
    de.end().ok()?;
    names
}

/// `Row::extract` of `value` when it reads the same JSON the daemon reads from the text `value`
/// was read from: `Row::extract` prints the value and reads it back, and `serde_json` (without
/// its `float_roundtrip` feature) may read a float it printed as a neighbouring one. `None` then.
fn extract(inventory: Inventory, value: &Value) -> Option<Row<'static>> {
    let again = serde_json::from_str::<Value>(&value.to_string()).ok()?;
    (again == *value).then(|| Row::extract(inventory, value))
}

/// A cell as JSON, an entry's `value` (a characteristic's value: a string as is, any other JSON
/// as its text) as the JSON it reads as. The daemon writes such a value from the element's text,
/// every member of an object included; `Row::extract`, from a `serde_json::Value`, has only the
/// last of a repeated name: the two texts differ, the JSON they read as does not.
fn as_json(cell: &Cell<'_>) -> Value {
    let mut json = cell.to_json();
    let entries = match &mut json {
        Value::Array(entries) => entries.iter_mut().collect(),
        entry @ Value::Object(_) => vec![entry],
        _ => Vec::new(),
    };
    for entry in entries {
        if let Some(value) = entry.get_mut("value")
            && let Some(read) = value.as_str().and_then(|t| serde_json::from_str(t).ok())
        {
            *value = read;
        }
    }
    json
}

/// Every cell of `item` equals `expected`'s (a characteristic's value as the JSON it reads as,
/// see [`as_json`]), and the text columns equal the reading written here; `what` names the case
/// in a failure.
fn assert_row(item: &Item, inventory: Inventory, expected: &Row<'_>, value: &Value, what: &str) {
    for (i, column) in Row::columns(inventory).iter().enumerate() {
        let (got, want) = (item.cell(i), expected.cell(i));
        if got != want {
            assert_eq!(
                as_json(&got),
                as_json(&want),
                "{what}: {inventory}.{} of the packed row differs from Row::extract: {got:?}",
                column.name
            );
        }
    }
    let texts = expected_texts(inventory, value);
    for (i, want) in texts.iter().enumerate() {
        let got = match item.cell(i) {
            Cell::Text(t) => t.map(str::to_owned),
            other => panic!("{what}: column {i} is not text: {other:?}"),
        };
        assert_eq!(
            got.as_deref(),
            want.as_deref(),
            "{what}: {inventory}.{} read by serde_json",
            Row::columns(inventory)[i].name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. page_decoder
// ---------------------------------------------------------------------------------------------

/// Where the item array is, per the first byte (`items_pointer`).
const POINTERS: [&str; 4] = ["", "/result", "/data/0/items", "/a~1b~0c"];

/// The inventory configuration the first byte of a page input chooses: the inventory (`% 3`),
/// the item array's place (`/ 3 % 4`), and the rules (`/ 12 % 4`: the inventory's defaults; keyed
/// by `id`; strict statuses and excluded types; other members read).
fn page_config(selector: u8) -> (Inventory, InventoryConfig) {
    let s = usize::from(selector);
    let inventory = Inventory::ALL[s % 3];
    let mut cfg = defaults().inventory(inventory).clone();
    cfg.items_pointer = POINTERS[s / 3 % POINTERS.len()].to_owned();
    match s / 12 % 4 {
        1 => cfg.key_field = "id".into(),
        2 => {
            cfg.keep_statuses = vec!["Operational".into(), " active ".into(), "7".into()];
            cfg.exclude_types = vec!["CFS".into(), "true".into(), "Résumé".into()];
        }
        3 => {
            cfg.key_field = "name".into();
            cfg.status_field = "state".into();
            cfg.type_field = "category".into();
            cfg.keep_statuses = vec!["ACTIVE".into()];
            cfg.exclude_types = vec!["element".into()];
        }
        _ => {}
    }
    (inventory, cfg)
}

/// A page body (after a first byte that chooses the configuration, see [`page_config`]) as the
/// daemon reads it — `source::parse_items`, then per element what a listing does: the tape,
/// the keep rules, the compact text, the item and its row — against `serde_json`:
///
/// - a body that `serde_json` reads, whose item array is where the configuration says: the
///   daemon finds the same elements (each reads as the array's element), else it refuses the
///   page (`NotArray`);
/// - a body that `serde_json` does not read: the daemon refuses it, or (its element finder
///   skips values without decoding them) it finds elements that are JSON text, and each one
///   `serde_json` cannot read on its own (a lone surrogate escape, a number out of range) is
///   skipped as not an object, or (nesting deeper than `json::MAX_DEPTH`) not taken;
/// - each element: the verdict on the tape equals the verdict on the text; the verdict equals
///   the rules applied to `serde_json`'s reading (key as written, status and type with their
///   fallbacks, case-insensitive lists) — unless a top-level name repeats: the daemon decides
///   on the first occurrences by design (reading stops early), `serde_json` keeps the last;
/// - a kept element: its compact text is the element without whitespace outside strings and
///   reads as the same value; unless it nests deeper than `json::MAX_DEPTH` (then no version of
///   it is taken), its item's row (from the tape and from the text) equals
///   `Row::extract` of `serde_json`'s value (see [`extract`] for the floats it cannot), and its
///   text columns the reading written here.
pub fn page_decoder(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (inventory, cfg) = page_config(selector);
    let rules = Rules::new(inventory, &cfg);
    let reference = serde_json::from_slice::<Value>(body);
    let page = parse_items(body.to_vec(), &cfg, "fuzz");
    let items = match (&reference, page) {
        (Ok(value), page) => {
            let target = if cfg.items_pointer.is_empty() {
                Some(value)
            } else {
                value.pointer(&cfg.items_pointer)
            };
            match (target, page) {
                (Some(Value::Array(array)), Ok(items)) => {
                    assert_eq!(
                        items.elements.len(),
                        array.len(),
                        "the page's elements are the array's"
                    );
                    for (range, want) in items.elements.iter().zip(array) {
                        let got: Value = serde_json::from_str(&items.text[range.clone()])
                            .expect("an element of a page serde_json reads");
                        assert_eq!(&got, want, "an element reads as the array's element");
                    }
                    items
                }
                (Some(Value::Array(_)), Err(e)) => {
                    panic!("serde_json finds the item array, the daemon refuses the page: {e}")
                }
                (_, Ok(items)) => panic!(
                    "no item array at `{}` for serde_json, yet the daemon found {} elements",
                    cfg.items_pointer,
                    items.elements.len()
                ),
                (_, Err(e)) => {
                    assert!(
                        matches!(e, PageError::NotArray { .. }),
                        "JSON without the item array is refused as not an array: {e}"
                    );
                    return;
                }
            }
        }
        (Err(_), Err(_)) => return,
        (Err(_), Ok(items)) => {
            // Only syntax is checked while finding the elements: each one must at least be
            // JSON text.
            for range in &items.elements {
                let element = &items.text[range.clone()];
                assert!(
                    serde_json::from_str::<&serde_json::value::RawValue>(element).is_ok(),
                    "an element of an accepted page is not JSON text: {element:?}"
                );
            }
            items
        }
    };
    let mut tape = Tape::with_capacity(items.text.len() / 8 + 4);
    let mut scratch = String::new();
    for (n, range) in items.elements.iter().enumerate() {
        let element = &items.text[range.clone()];
        let what = format!("element {n} of {inventory} ({element:?})");
        let reference = serde_json::from_str::<Value>(element).ok();
        let on_tape = tape.append_compact(element);
        let on_text = rules.judge(element);
        let verdict = match on_tape {
            Some(at) => {
                let v = rules.judge_tape(tape.value(at));
                assert_eq!(
                    as_expected(&v),
                    as_expected(&on_text),
                    "{what}: the verdict on the tape and on the text"
                );
                assert!(
                    reference.is_some(),
                    "{what}: read onto the tape, but serde_json cannot read it"
                );
                v
            }
            None => on_text,
        };
        let Some(value) = reference else {
            // Unless it nests too deep to be taken at all (the listing's `too_deep` rule).
            assert!(
                as_expected(&verdict) == Expected::NotObject
                    || json::nests_deeper_than(element, json::MAX_DEPTH),
                "{what}: serde_json cannot read it, yet the rules took it: {verdict:?}"
            );
            continue;
        };
        let names = top_level_names(element).unwrap_or_default();
        let repeated = names
            .iter()
            .enumerate()
            .any(|(i, name)| names[..i].contains(name));
        if !repeated {
            assert_eq!(
                as_expected(&verdict),
                expected_verdict(inventory, &cfg, &value),
                "{what}: the verdict"
            );
        }
        let Verdict::Keep { key } = verdict else {
            continue;
        };
        let compact = match on_tape {
            Some(_) => element,
            None => json::compact(element, &mut scratch),
        };
        assert_eq!(
            compact,
            compact_by_hand(element),
            "{what}: the compact text"
        );
        let again: Value = serde_json::from_str(compact)
            .unwrap_or_else(|e| panic!("{what}: the compact text does not read: {e}"));
        assert_eq!(
            again, value,
            "{what}: the compact text reads as the element"
        );
        if json::nests_deeper_than(compact, json::MAX_DEPTH) {
            // Not taken (skipped as too deep): no item, no row.
            continue;
        }
        let item = Item::new(Key::new(&key), inventory, compact.into(), epoch(), epoch());
        assert_eq!(item.raw(), compact);
        let expected = extract(inventory, &value).unwrap_or_else(|| item.row().into_owned());
        assert_row(&item, inventory, &expected, &value, &what);
        if let Some(at) = on_tape {
            let item = Item::from_tape(
                Key::new(&key),
                inventory,
                compact.into(),
                (tape.value(at), element),
                epoch(),
                epoch(),
            );
            assert_row(
                &item,
                inventory,
                &expected,
                &value,
                &format!("{what} (tape)"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. row_extraction
// ---------------------------------------------------------------------------------------------

/// Member names the row reads, and a few it does not.
const NAMES: [&str; 44] = [
    "externalId",
    "externalIdentifier",
    "id",
    "name",
    "description",
    "status",
    "state",
    "operatingStatus",
    "resourceStatus",
    "operationalState",
    "lifecycleState",
    "@type",
    "type",
    "category",
    "startDate",
    "endDate",
    "lastUpdate",
    "lastUpdateDate",
    "lastModifiedDate",
    "creationDate",
    "createdDate",
    "relatedParty",
    "partyOrPartyRole",
    "party",
    "role",
    "place",
    "location",
    "serviceSpecification",
    "resourceSpecification",
    "supportingResource",
    "supportingService",
    "resource",
    "service",
    "serviceCharacteristic",
    "resourceCharacteristic",
    "value",
    "valueType",
    "resourceRelationship",
    "relationshipType",
    "owner",
    "href",
    "@referredType",
    "",
    "x",
];

/// Texts: dates in the shapes seen upstream and odd ones, roles, padding, escapes, Unicode.
const TEXTS: [&str; 40] = [
    "2024-03-01T10:20:30Z",
    "2024-03-01T10:20:30.123456789+01:00",
    "2024-03-01 10:20:30",
    "2024-03-01 10:20:30.5",
    "2024-03-01T10:20:30+0100",
    "2024-03-01",
    "1969-07-20T20:17:40.123Z",
    "2016-12-31T23:59:60Z",
    "2016-12-31T23:59:60.999999999+00:00",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00Z",
    "+262143-12-31",
    "-0001-01-01",
    "2024-02-30",
    "2024-13-01",
    " 2024-03-01 ",
    "customer",
    "Customer",
    "CUSTOMER",
    "user",
    "Operational",
    "operational",
    "element",
    "CFS",
    "",
    " ",
    "  padded  ",
    "a\"b\\c",
    "tab\there\nnewline",
    "\u{0}",
    "é ü 中文",
    "🚀",
    "\u{212a}",
    "Σ",
    "SES-SVC-0000001",
    "contains",
    "true",
    "42",
    "x",
    "<b>&amp;</b>",
];

/// A JSON value built from the bytes: objects of the row's member names mostly.
fn value_from(b: &mut Bytes<'_>, depth: usize) -> Value {
    let kinds = if depth >= 5 { 6 } else { 9 };
    match b.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(b.byte() & 1 == 1),
        2 => match b.below(6) {
            0 => Value::from(i64::from(b.byte() as i8)),
            1 => Value::from(u64::MAX - u64::from(b.byte())),
            2 => Value::from(i64::MIN + i64::from(b.byte())),
            3 => Value::from(f64::from(b.byte()) / 8.0 - 10.0),
            4 => Value::from(-0.0),
            _ => Value::from(1e300 * f64::from(b.byte())),
        },
        3 | 4 => Value::String(b.pick(&TEXTS).to_owned()),
        5 => Value::String(b.text(12)),
        6 | 7 => {
            let n = b.below(6);
            let mut o = Map::new();
            for _ in 0..n {
                let name = match b.below(8) {
                    0 => b.text(6),
                    _ => b.pick(&NAMES).to_owned(),
                };
                let v = value_from(b, depth + 1);
                o.insert(name, v);
            }
            Value::Object(o)
        }
        _ => {
            let n = b.below(5);
            Value::Array((0..n).map(|_| value_from(b, depth + 1)).collect())
        }
    }
}

/// An element's row, for every inventory and every way the daemon reads it: the packed cells
/// of an item (from its text, and from a tape where the text is compact) equal `Row::extract`
/// of the same JSON, every column (for a float `Row::extract` cannot print and read back, see
/// [`extract`], the rows of all the texts agree); the text columns equal the reading written
/// here; text that does not parse gives an all-empty row; cells print
/// as text and JSON and compare equal to themselves. The first byte chooses: odd, the rest is
/// JSON text (as given, and compacted); even, the rest builds an object of the row's members
/// (written compact, with escapes, and pretty).
pub fn row_extraction(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (value, texts): (Value, Vec<String>) = if mode & 1 == 1 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            // Text that does not parse gives an all-empty row.
            for inventory in Inventory::ALL {
                let item = Item::new(Key::new("k"), inventory, text.into(), epoch(), epoch());
                assert!(
                    item.row() == Row::from_cells(inventory, std::iter::empty()),
                    "{inventory}: text that does not parse gives an empty row: {text:?}"
                );
            }
            return;
        };
        let mut scratch = String::new();
        let compact = json::compact(text, &mut scratch).to_owned();
        (value, vec![text.to_owned(), compact])
    } else {
        let mut b = Bytes::new(rest);
        let mut o = Map::new();
        while !b.is_empty() && o.len() < 24 {
            let name = b.pick(&NAMES).to_owned();
            let v = value_from(&mut b, 1);
            o.insert(name, v);
        }
        let built = Value::Object(o);
        let compact = built.to_string();
        // As the daemon reads the text (floats as serde_json reads their digits).
        let Ok(value) = serde_json::from_str::<Value>(&compact) else {
            return;
        };
        // The same value with every non-ASCII character and a few others escaped.
        let mut escaped = String::with_capacity(compact.len() * 2);
        for c in compact.chars() {
            match c {
                '/' => escaped.push_str("\\/"),
                c if c.is_ascii() => escaped.push(c),
                c => {
                    for unit in c.encode_utf16(&mut [0; 2]) {
                        escaped.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
        let pretty = serde_json::to_string_pretty(&built).unwrap_or_default();
        (value, vec![compact, escaped, pretty])
    };
    for inventory in Inventory::ALL {
        let expected = extract(inventory, &value).unwrap_or_else(|| {
            let first = Item::new(
                Key::new("k"),
                inventory,
                texts[0].as_str().into(),
                epoch(),
                epoch(),
            );
            first.row().into_owned()
        });
        for (n, text) in texts.iter().enumerate() {
            // (Each input is saved by the fuzzer: the message names which of its texts.)
            let what = format!("{inventory}, text {n} ({} bytes)", text.len());
            let item = Item::new(
                Key::new("k"),
                inventory,
                text.as_str().into(),
                epoch(),
                epoch(),
            );
            assert_eq!(item.raw(), text, "{what}: the JSON comes back as given");
            assert_row(&item, inventory, &expected, &value, &what);
            for i in 0..Row::columns(inventory).len() {
                let cell = item.cell(i);
                assert_eq!(cell.compare(&cell), Ordering::Equal, "{what}: column {i}");
                assert_eq!(cell.to_text().is_none(), cell.is_empty(), "{what}: {i}");
                let _ = cell.to_json();
            }
            if let Some(tape) = Tape::read_compact(text) {
                let item = Item::from_tape(
                    Key::new("k"),
                    inventory,
                    text.as_str().into(),
                    (tape.root(), text),
                    epoch(),
                    epoch(),
                );
                assert_row(
                    &item,
                    inventory,
                    &expected,
                    &value,
                    &format!("{what} (tape)"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. list_query
// ---------------------------------------------------------------------------------------------

/// Keys of the small inventories: near-duplicates in case and Unicode.
const KEYS: [&str; 16] = [
    "a", "A", "b", "B", "ab", "a b", "é", "É", "k", "\u{212a}", "z", "Z9", "0", "10", "9", "_",
];

/// Values of the small inventories' texts and of the queries.
const WORDS: [&str; 24] = [
    "alpha",
    "Alpha",
    "ALPHA",
    "beta",
    "al",
    "Operational",
    "operational",
    "Planned",
    "CFS",
    "RFS",
    "",
    " ",
    "é",
    "É",
    "straße",
    "STRASSE",
    "Σίσυφος",
    "ΣΊΣΥΦΟΣ",
    "\u{212a}",
    "k",
    "a\u{0}b",
    "2024-01-01",
    "2023-05-05T10:00:00+02:00",
    "bad date",
];

/// The query parameter names: reserved ones, columns, and unknown ones.
const PARAMS: [&str; 20] = [
    "q",
    "sort",
    "offset",
    "limit",
    "fields",
    "after",
    "id",
    "external_id",
    "name",
    "description",
    "status",
    "type",
    "last_update",
    "related_party",
    "location",
    "creation_date",
    "related_parties",
    "colour",
    "",
    "Status",
];

/// Sort and field lists.
const LISTS: [&str; 16] = [
    "name",
    "-name",
    "+name",
    "id",
    "-id",
    "status,-name",
    "-type,id",
    "last_update",
    "-last_update,name",
    "related_party",
    "-related_parties",
    "creation_date",
    " name , , -status ",
    "-",
    "name,colour",
    "",
];

/// An inventory item built from the bytes: its key, and JSON with the listed columns' members.
fn list_item(b: &mut Bytes<'_>, inventory: Inventory) -> (String, Value) {
    let key = match b.below(8) {
        0 => b.text(4),
        _ => b.pick(&KEYS).to_owned(),
    };
    let mut o = Map::new();
    let word = |b: &mut Bytes<'_>| match b.below(6) {
        0 => b.text(6),
        _ => b.pick(&WORDS).to_owned(),
    };
    if b.below(4) > 0 {
        let id = if b.below(4) == 0 {
            word(b)
        } else {
            key.clone()
        };
        o.insert(
            match inventory {
                Inventory::Resources => "id",
                _ => "externalId",
            }
            .to_owned(),
            Value::String(id),
        );
    }
    for member in [
        "name",
        "description",
        "status",
        "@type",
        "lastUpdate",
        "creationDate",
    ] {
        if b.below(3) > 0 {
            o.insert(member.to_owned(), Value::String(word(b)));
        }
    }
    if b.below(3) == 0 {
        let party = serde_json::json!({"name": word(b), "role": word(b)});
        o.insert("relatedParty".to_owned(), Value::Array(vec![party]));
    }
    (key, Value::Object(o))
}

/// A cell's text for filtering and sorting as the docs say: a text cell's text, another kind's
/// printed text, empty as `""`.
fn cell_text(item: &Item, field: Option<usize>) -> String {
    match field {
        None => item.key.to_string(),
        Some(i) => match item.cell(i) {
            Cell::Text(t) => t.unwrap_or_default().to_owned(),
            cell => cell.to_text().unwrap_or_default(),
        },
    }
}

fn is_empty_cell(item: &Item, field: Option<usize>) -> bool {
    field.is_some_and(|i| item.cell(i).is_empty())
}

/// Two cells of a column in list order, ascending, as the docs say: text by its lower case then
/// as written, times by value, the rest by their text (empty cells are handled by the caller).
fn cell_order(a: &Item, b: &Item, field: Option<usize>) -> Ordering {
    let Some(i) = field else {
        return a.key.cmp(&b.key);
    };
    match (a.cell(i), b.cell(i)) {
        (Cell::Time(Some(x)), Cell::Time(Some(y))) => x.cmp(&y),
        (Cell::Text(Some(x)), Cell::Text(Some(y))) => {
            let lower = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<String>();
            lower(x).cmp(&lower(y)).then_with(|| x.cmp(y))
        }
        (x, y) => x.to_text().cmp(&y.to_text()),
    }
}

/// What a list query parsed here is (the parameters as the docs read them).
struct Naive {
    filters: Vec<(Option<usize>, Vec<String>)>,
    q: Option<String>,
    sort: Vec<(Option<usize>, bool)>,
    offset: usize,
    offset_given: bool,
    limit: usize,
    after: Option<String>,
    fields: Vec<Option<usize>>,
}

/// The parameters read as docs/api.md says, or why they are refused.
fn naive_parse(inventory: Inventory, pairs: &[(String, String)]) -> Result<Naive, String> {
    let column = |name: &str| -> Result<Option<usize>, String> {
        if name == "id" {
            return Ok(None);
        }
        Row::columns(inventory)
            .iter()
            .position(|c| c.name == name)
            .map(Some)
            .ok_or_else(|| format!("unknown column {name:?}"))
    };
    let mut naive = Naive {
        filters: Vec::new(),
        q: None,
        sort: Vec::new(),
        offset: 0,
        offset_given: false,
        limit: 100,
        after: None,
        fields: Vec::new(),
    };
    let reserved = ["q", "sort", "offset", "limit", "fields", "after"];
    for (i, (key, value)) in pairs.iter().enumerate() {
        if reserved.contains(&key.as_str()) && pairs[..i].iter().any(|(k, _)| k == key) {
            return Err(format!("{key} repeated"));
        }
        let list = || value.split(',').map(str::trim).filter(|p| !p.is_empty());
        match key.as_str() {
            "q" => {
                let q = value.trim().to_lowercase();
                naive.q = (!q.is_empty()).then_some(q);
            }
            "offset" => {
                naive.offset = value.parse().map_err(|_| "offset".to_string())?;
                naive.offset_given = true;
            }
            "limit" => {
                naive.limit = value
                    .parse()
                    .ok()
                    .filter(|n| *n <= 1000)
                    .ok_or("limit".to_string())?;
            }
            "after" => naive.after = Some(value.clone()),
            "sort" => {
                for part in list() {
                    let (name, descending) = match part.strip_prefix('-') {
                        Some(name) => (name, true),
                        None => (part.strip_prefix('+').unwrap_or(part), false),
                    };
                    naive.sort.push((column(name)?, descending));
                }
            }
            "fields" => {
                if naive.fields.is_empty() {
                    naive.fields.push(None);
                }
                for name in list() {
                    let field = column(name)?;
                    if !naive.fields.contains(&field) {
                        naive.fields.push(field);
                    }
                }
            }
            name => {
                let field = column(name)?;
                match naive.filters.iter_mut().find(|(f, _)| *f == field) {
                    Some((_, values)) => values.push(value.clone()),
                    None => naive.filters.push((field, vec![value.clone()])),
                }
            }
        }
    }
    if naive.after.is_some()
        && (naive.offset_given || !(naive.sort.is_empty() || naive.sort == [(None, false)]))
    {
        return Err("after with offset or another sort".into());
    }
    if naive.fields.is_empty() {
        naive.fields.push(None);
        naive
            .fields
            .extend((0..Row::columns(inventory).len()).map(Some));
    }
    Ok(naive)
}

/// The page by hand: every item tested, all of them sorted, the page cut out. The total, the
/// page's keys and the next page.
fn naive_run(naive: &Naive, items: &[Arc<Item>]) -> (usize, Vec<String>, Option<Next>) {
    let mut matched: Vec<&Arc<Item>> = items
        .iter()
        .filter(|item| {
            naive.filters.iter().all(|(field, values)| {
                let text = cell_text(item, *field);
                values.contains(&text)
            })
        })
        .filter(|item| {
            naive.q.as_ref().is_none_or(|q| {
                let mut texts = vec![item.key.to_string()];
                for i in 0..3 {
                    if let Cell::Text(Some(t)) = item.cell(i) {
                        texts.push(t.to_owned());
                    }
                }
                texts.iter().any(|t| t.to_lowercase().contains(q.as_str()))
            })
        })
        .collect();
    matched.sort_by(|a, b| {
        for &(field, descending) in &naive.sort {
            let (ea, eb) = (is_empty_cell(a, field), is_empty_cell(b, field));
            let ord = match (ea, eb) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ if descending => cell_order(a, b, field).reverse(),
                _ => cell_order(a, b, field),
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.key.cmp(&b.key)
    });
    let total = matched.len();
    let from = match &naive.after {
        Some(after) => matched
            .iter()
            .filter(|i| i.key.as_str() <= after.as_str())
            .count(),
        None => naive.offset.min(total),
    };
    let end = from.saturating_add(naive.limit).min(total);
    let page: Vec<String> = matched[from.min(end)..end]
        .iter()
        .map(|i| i.key.to_string())
        .collect();
    let default_order = naive.sort.is_empty() || naive.sort == [(None, false)];
    let next = (end < total).then(|| match page.last() {
        Some(last) if default_order && naive.offset == 0 => Next::After(last.clone()),
        _ => Next::Offset(end),
    });
    (total, page, next)
}

/// A small inventory and a list query built from the bytes, run by `ListQuery` over a `View`
/// (built at once, and built from part of it then updated, with indexes built before the
/// update and carried) against the same query done naively here: refused exactly when the
/// docs refuse it, else the same total, page, next page and fields.
pub fn list_query(data: &[u8]) {
    let mut b = Bytes::new(data);
    let inventory = Inventory::ALL[b.below(3)];
    let n = match b.below(8) {
        0 => 64 + b.below(40),
        k => k * 2,
    };
    let mut by_key = std::collections::BTreeMap::new();
    for _ in 0..n {
        let (key, value) = list_item(&mut b, inventory);
        let item = Item::new(
            Key::new(&key),
            inventory,
            value.to_string().into(),
            epoch(),
            epoch(),
        );
        by_key.insert(key, Arc::new(item));
    }
    let items: Vec<Arc<Item>> = by_key.into_values().collect();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for _ in 0..b.below(7) {
        let key = match b.below(10) {
            0 => b.text(6),
            _ => b.pick(&PARAMS).to_owned(),
        };
        let value = match (key.as_str(), b.below(8)) {
            (_, 0) => b.text(8),
            ("offset" | "limit", _) => b
                .pick(&[
                    "0",
                    "1",
                    "2",
                    "3",
                    "5",
                    "+2",
                    "1000",
                    "1001",
                    "-1",
                    "99999999999999999999",
                ])
                .to_owned(),
            ("sort" | "fields", _) => b.pick(&LISTS).to_owned(),
            ("after" | "id", _) => b.pick(&KEYS).to_owned(),
            _ => b.pick(&WORDS).to_owned(),
        };
        pairs.push((key, value));
    }
    let what = format!("{inventory}, {pairs:?}");
    let parsed = ListQuery::parse(inventory, &pairs);
    let naive = naive_parse(inventory, &pairs);
    let (query, naive) = match (parsed, naive) {
        (Ok(q), Ok(n)) => (q, n),
        (Err(_), Err(_)) => return,
        (Ok(_), Err(why)) => panic!("{what}: accepted, but the docs refuse it ({why})"),
        (Err(e), Ok(_)) => panic!("{what}: refused ({e}), but the docs accept it"),
    };
    // The same inventory published at once (its indexes warmed), rebuilt from a view that
    // held part of it, and updated from such a view: the views a request meets after a load,
    // a full pass and a refresh, with the indexes the query uses built before and carried.
    let whole = View::build(1, items.iter().cloned());
    whole.warm(|| true);
    let split = b.below(items.len() + 1);
    let mut before: Vec<Arc<Item>> = items[..split].to_vec();
    for item in &items[split..] {
        if b.byte() & 1 == 1 {
            // An older version of the item, which the update replaces.
            let old = Item::new(item.key.clone(), inventory, "{}".into(), epoch(), epoch());
            before.push(Arc::new(old));
        }
    }
    let mut removals: Vec<Key> = Vec::new();
    for i in 0..b.below(4) {
        let key = Key::new(&format!("gone{i}"));
        let raw = format!(r#"{{"name":"gone {i}","status":"Planned"}}"#);
        before.push(Arc::new(Item::new(
            key.clone(),
            inventory,
            raw.into(),
            epoch(),
            epoch(),
        )));
        removals.push(key);
    }
    let earlier = View::build(1, before);
    if b.byte() & 1 == 1 {
        earlier.warm(|| true);
    }
    let _ = query.run(&earlier);
    let upserts: Vec<Arc<Item>> = items[split..].to_vec();
    // Removed and put back by one update: the upsert wins.
    removals.extend(upserts.first().map(|i| i.key.clone()));
    let updated = earlier.updated(2, upserts, &removals);
    let map: crate::cache::ItemMap = items.iter().map(|i| (i.key.clone(), i.clone())).collect();
    let rebuilt = earlier.rebuilt(3, &map);
    let (total, page, next) = naive_run(&naive, &items);
    for (name, view) in [
        ("built", &whole),
        ("updated", &updated),
        ("rebuilt", &rebuilt),
    ] {
        assert_eq!(view.len(), items.len(), "{what}: the {name} view's items");
        let got = query.run(view);
        let keys: Vec<String> = got.items.iter().map(|i| i.key.to_string()).collect();
        assert_eq!(
            (got.total, &keys),
            (total, &page),
            "{what}: the {name} view's total and page"
        );
        assert_eq!(got.next, next, "{what}: the {name} view's next page");
        let rows = got.rows();
        let names: Vec<&str> = naive
            .fields
            .iter()
            .map(|f| f.map_or("id", |i| Row::columns(inventory)[i].name))
            .collect();
        for (row, key) in rows.iter().zip(&keys) {
            let row_names: Vec<&str> = row
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(row_names, names, "{what}: the fields of a row");
            assert_eq!(row["id"], Value::String(key.clone()), "{what}: a row's id");
        }
        let written: Value = serde_json::from_slice(&got.to_json()).expect("rows are JSON");
        assert_eq!(written, Value::Array(rows), "{what}: rows written in place");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. config_loader
// ---------------------------------------------------------------------------------------------

/// The configuration's sections: an error's key starts with one of them.
const SECTIONS: [&str; 12] = [
    "tmf638",
    "tmf639",
    "http",
    "poll",
    "services",
    "carriers",
    "resources",
    "store",
    "api",
    "log",
    "nats",
    "ha",
];

/// A directory of the calling thread for the files a check writes (in memory when `/dev/shm`
/// is there), emptied when made and removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let thread: String = format!("{:?}", std::thread::current().id())
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let dir = base.join(format!(
            "sesinv-fuzz-{}-{thread}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every secret of `cfg` (passwords and tokens) that is set.
fn secrets(cfg: &Config) -> Vec<String> {
    [
        &cfg.tmf638.password,
        &cfg.tmf639.password,
        &cfg.api.token,
        &cfg.nats.token,
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .map(|s| s.expose().to_owned())
    .collect()
}

/// `cfg` with its secrets emptied.
fn without_secrets(cfg: &Config) -> Config {
    let mut bare = cfg.clone();
    for s in [
        &mut bare.tmf638.password,
        &mut bare.tmf639.password,
        &mut bare.api.token,
        &mut bare.nats.token,
    ] {
        *s = Secret::default();
    }
    bare
}

/// What a configuration error must say: a file's syntax error its line and column, an invalid
/// value its key (`section.key`), an unknown key its name as written, a value of the wrong type
/// (the `config` crate's errors) the key it is for.
fn assert_names_the_key(e: &ConfigError, file: &Path, toml: &str, env: &[(String, String)]) {
    let message = e.to_string();
    match e {
        ConfigError::File { path, message } => {
            assert_eq!(path, file, "{e}");
            assert!(
                message.starts_with("line ") || message.contains("UTF-8"),
                "a file's error gives its line and column: {e}"
            );
        }
        ConfigError::Invalid { key, .. } => {
            let section = key.split('.').next().unwrap_or_default();
            assert!(
                key.contains('.') && SECTIONS.contains(&section),
                "an invalid value names its key as section.key: {e}"
            );
        }
        ConfigError::Parse(text) => {
            // The `config` crate's: an unknown key is named as written; a value of the wrong
            // type by the key it is for.
            let quoted = |after: &str| {
                let rest = text.split_once(after)?.1;
                Some(rest.split('`').next().unwrap_or_default().to_owned())
            };
            if let Some(rest) = text.strip_prefix("environment variables ") {
                // A value and a key inside it: both named, as set.
                let named = env
                    .iter()
                    .filter(|(k, _)| rest.contains(&k.to_ascii_uppercase()))
                    .count();
                assert!(named >= 2, "both variables are named as set: {message}");
            } else if let Some(name) = text.strip_prefix("unknown field `") {
                let name = name.split('`').next().unwrap_or_default();
                // An environment variable's name reads as `section.key`, lower case.
                let written = toml.contains(name)
                    || env.iter().any(|(k, _)| {
                        let key = k.strip_prefix("SES_INVENTORY__").unwrap_or(k);
                        key.to_lowercase().replace("__", ".").contains(name)
                    });
                assert!(written, "an unknown key is named as written: {message}");
            } else {
                let key = quoted("for key `").unwrap_or_default();
                let section = key.split('.').next().unwrap_or_default();
                assert!(
                    SECTIONS.contains(&section),
                    "an error names the key it is about: {message}"
                );
            }
        }
    }
}

/// A TOML file (the bytes up to the first NUL) and environment pairs (the lines after it,
/// `SECTION__KEY=value`, prefixed with `SES_INVENTORY__`) loaded as `Config::load` does —
/// `Config::build` with the environment as a parameter, then the secrets (only when no secret
/// file is named: the check reads no file the bytes name) and `validate` — must give a
/// configuration or an error naming what is wrong ([`assert_names_the_key`]); no secret appears
/// in the configuration's Debug print or its redacted TOML, or in an error.
pub fn config_loader(data: &[u8]) {
    let (toml_bytes, env_bytes) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env_bytes)
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once('=')?;
            Some((format!("SES_INVENTORY__{k}"), v.to_owned()))
        })
        .collect();
    let toml = String::from_utf8_lossy(toml_bytes).into_owned();
    let scratch = Scratch::new("config");
    let path = scratch.0.join("config.toml");
    std::fs::write(&path, toml_bytes).expect("the configuration file is written");
    let built = Config::build(Some(&path), env.clone().into_iter());
    let mut cfg = match built {
        Ok(cfg) => cfg,
        Err(e) => {
            assert_names_the_key(&e, &path, &toml, &env);
            return;
        }
    };
    let reads_files = [
        &cfg.tmf638.password_file,
        &cfg.tmf639.password_file,
        &cfg.api.token_file,
        &cfg.nats.token_file,
        &cfg.nats.credentials_file,
    ]
    .iter()
    .any(|f| !f.is_empty());
    let secrets_now = secrets(&cfg);
    let checked = if reads_files {
        cfg.validate()
    } else {
        cfg.resolve_secrets(None).and_then(|()| cfg.validate())
    };
    let leaks = |text: &str, bare: &str, what: &str| {
        for secret in &secrets_now {
            assert!(
                text.matches(secret.as_str()).count() <= bare.matches(secret.as_str()).count(),
                "a secret appears in {what}"
            );
        }
    };
    let bare = without_secrets(&cfg);
    if let Err(e) = &checked {
        assert_names_the_key(e, &path, &toml, &env);
        // A secret written nowhere else in the input cannot come from another value.
        let input: String = std::iter::once(toml.clone())
            .chain(env.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        let message = e.to_string();
        for secret in &secrets_now {
            let fields = secrets_now.iter().filter(|s| *s == secret).count();
            if secret.len() >= 8 && input.matches(secret.as_str()).count() <= fields {
                assert!(
                    !message.contains(secret.as_str()),
                    "a secret appears in an error"
                );
            }
        }
    }
    leaks(&format!("{cfg:?}"), &format!("{bare:?}"), "the Debug print");
    leaks(
        &cfg.to_redacted_toml(),
        &bare.to_redacted_toml(),
        "the redacted TOML",
    );
}

// ---------------------------------------------------------------------------------------------
// 5. store_loader
// ---------------------------------------------------------------------------------------------

/// Each inventory's items as (key, JSON).
type Contents = [Vec<(String, String)>; 3];

/// SQLite's page size for the files the store writes.
const PAGE: usize = 4096;

/// A small valid store, written once per process with the store's own writer: services enough
/// to be compressed against a dictionary, a few carriers and resources as text, each inventory
/// with its sync state, placement, items awaiting a second witness and poll history. The file's
/// bytes, and every item's key and JSON by inventory.
fn valid_store() -> &'static (Vec<u8>, Contents) {
    static STORE: OnceLock<(Vec<u8>, Contents)> = OnceLock::new();
    STORE.get_or_init(|| {
        use crate::model::status::{Churn, Mark, Outcome, PollKind, PollReport, SkipCounts};
        use crate::model::status::{FullReason, SyncTimes};
        use crate::sync::Applied;
        let scratch = Scratch::new("valid-store");
        let path = scratch.0.join("inventory.db");
        let (mut store, _) = Store::open(&path).expect("a new store opens");
        let cache = Cache::new();
        let now = epoch();
        let mut expected: Contents = Default::default();
        for (inventory, n) in Inventory::ALL.into_iter().zip([120, 4, 6]) {
            let items: Vec<Arc<Item>> = (0..n)
                .map(|i| {
                    let key = format!("{}-{i:04}", inventory.as_str().to_uppercase());
                    let status = ["Operational", "Planned"][i % 2];
                    let raw = serde_json::json!({
                        "id": key, "externalId": key, "name": format!("Item {i} é\"q\""),
                        "status": status, "@type": "CFS",
                        "lastUpdate": format!("2024-01-{:02}T10:00:00Z", i % 28 + 1),
                        "relatedParty": [{"id": format!("C-{}", i % 7), "role": "Customer"}],
                    })
                    .to_string();
                    Arc::new(Item::new(Key::new(&key), inventory, raw.into(), now, now))
                })
                .collect();
            expected[inventory.index()] = items
                .iter()
                .map(|i| (i.key.to_string(), i.raw().to_owned()))
                .collect();
            let keys: Vec<Key> = items.iter().map(|i| i.key.clone()).collect();
            let applied = Applied {
                inventory,
                report: PollReport {
                    kind: PollKind::Full,
                    reason: Some(FullReason::Initial),
                    days_ago: None,
                    started: now,
                    finished: now,
                    pages: 1,
                    skipped_pages: Vec::new(),
                    short_pages: Vec::new(),
                    skipped: SkipCounts::default(),
                    received: n as u64,
                    added: n as u64,
                    updated: 0,
                    removed: 0,
                    churn: Churn::default(),
                    outcome: Outcome::Complete,
                    credentials_rejected: false,
                    error: None,
                },
                times: SyncTimes {
                    last_complete_full: Some(now),
                    window_anchor: Some(now),
                },
                settled: true,
                previous: vec![None; items.len()],
                upserts: items,
                unchanged: Vec::new(),
                removed: Vec::new(),
                gone: Vec::new(),
                swept: true,
                unseen: Some(Vec::new()),
                items: n,
                awaiting: Some(vec![(Key::new("GONE-1"), Mark::new(now))]),
                placement: Some(keys),
            };
            store.write(&applied, &cache).expect("the store writes");
        }
        drop(store);
        let bytes = std::fs::read(&path).expect("the store file");
        assert_eq!(bytes.len() % PAGE, 0, "whole pages");
        (bytes, expected)
    })
}

/// The inventories of `cache` as key → JSON.
fn contents(cache: &Cache) -> Contents {
    Inventory::ALL.map(|inventory| {
        let mut items: Vec<(String, String)> = cache
            .snapshot(inventory)
            .iter()
            .map(|i| (i.key.to_string(), i.raw().to_owned()))
            .collect();
        items.sort();
        items
    })
}

/// A small valid store file (see [`valid_store`]) with bytes changed as the input says —
/// groups of four: a page, an offset in it (two bytes), a value XORed in — and, when the first
/// byte is odd, cut after the page the second byte names; then opened and loaded into a fresh
/// cache as the daemon does at startup. The store's promises: a file of a newer schema is
/// refused and left as it was; a corrupt file is moved aside whole (never deleted) and the
/// store starts empty; a load that fails leaves the cache empty (all or nothing); a load that
/// succeeds holds what it says it loaded, each item in its own inventory; the file unchanged
/// loads exactly what was written.
pub fn store_loader(data: &[u8]) {
    let (valid, written) = valid_store();
    let mut bytes = valid.clone();
    let pages = bytes.len() / PAGE;
    let mut b = Bytes::new(data);
    if b.byte() & 1 == 1 {
        let keep = (b.below(pages) + 1) * PAGE;
        bytes.truncate(keep);
    }
    let pages = bytes.len() / PAGE;
    while !b.is_empty() {
        let page = b.below(pages);
        let offset = usize::from(b.byte()) << 8 | usize::from(b.byte());
        let value = b.byte();
        bytes[page * PAGE + offset % PAGE] ^= value;
    }
    let scratch = Scratch::new("store");
    let path = scratch.0.join("inventory.db");
    std::fs::write(&path, &bytes).expect("the store file is written");
    let unchanged = bytes == *valid;
    let cache = Cache::new();
    let empty = |cache: &Cache| {
        Inventory::ALL
            .iter()
            .all(|&inv| cache.len(inv) == 0 && !cache.is_ready(inv))
    };
    let (mut store, opened) = match Store::open(&path) {
        Ok(opened) => opened,
        Err(crate::store::StoreError::Newer { .. }) => {
            assert!(
                std::fs::read(&path).is_ok_and(|kept| kept == bytes),
                "a newer file is left untouched"
            );
            return;
        }
        Err(e) => panic!("a corrupt file is moved aside, not an error: {e}"),
    };
    if let Some(aside) = &opened.moved_aside {
        assert!(!unchanged, "the valid file was moved aside");
        assert!(
            std::fs::read(aside).is_ok_and(|kept| kept == bytes),
            "the corrupt file is kept whole where it was moved"
        );
    }
    match store.load(&cache) {
        Ok(loaded) => {
            for inventory in Inventory::ALL {
                assert_eq!(
                    loaded.items[inventory.index()],
                    cache.len(inventory),
                    "{inventory}: the items it says it loaded are in the cache"
                );
                assert!(
                    cache
                        .snapshot(inventory)
                        .iter()
                        .all(|i| i.inventory() == inventory),
                    "{inventory}: items of another inventory"
                );
            }
            if opened.moved_aside.is_some() {
                assert!(empty(&cache), "a store started anew loads nothing");
            }
            if unchanged {
                let mut expected = written.clone();
                for list in &mut expected {
                    list.sort();
                }
                assert_eq!(
                    contents(&cache),
                    expected,
                    "the valid file loads as written"
                );
                assert!(Inventory::ALL.iter().all(|&inv| cache.is_ready(inv)));
            }
        }
        Err(e) => {
            assert!(!unchanged, "the valid file does not load: {e}");
            assert!(
                empty(&cache),
                "a failed load left part of the file in the cache: {e}"
            );
        }
    }
    drop(store);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs every file of `fuzz/seeds/<target>/` (there must be some) and of
    /// `fuzz/regressions/<target>/` through `check`.
    fn run(target: &str, check: fn(&[u8])) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        for (kind, required) in [("seeds", true), ("regressions", false)] {
            let dir = root.join(kind).join(target);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
                .unwrap_or_default();
            files.retain(|f| f.is_file());
            files.sort();
            assert!(
                !required || !files.is_empty(),
                "no seeds in {}",
                dir.display()
            );
            for file in files {
                let data = std::fs::read(&file).unwrap();
                if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or(panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    panic!("{}: {message}", file.display());
                }
            }
        }
    }

    #[test]
    fn page_decoder_seeds_and_regressions() {
        run("page_decoder", page_decoder);
    }

    #[test]
    fn row_extraction_seeds_and_regressions() {
        run("row_extraction", row_extraction);
    }

    #[test]
    fn list_query_seeds_and_regressions() {
        run("list_query", list_query);
    }

    #[test]
    fn config_loader_seeds_and_regressions() {
        run("config_loader", config_loader);
    }

    #[test]
    fn store_loader_seeds_and_regressions() {
        run("store_loader", store_loader);
    }

    #[test]
    fn the_checks_see_what_they_check() {
        // The compact text by hand, and the names of an object.
        assert_eq!(
            compact_by_hand("{ \"a b\" : [ 1 ,\n 2 ], \"c\":\"x \\\" y\" }"),
            r#"{"a b":[1,2],"c":"x \" y"}"#
        );
        assert_eq!(
            top_level_names(r#"{"a":1,"b":{"a":2},"a":3}"#),
            Some(vec!["a".into(), "b".into(), "a".into()])
        );
        assert_eq!(top_level_names("[1]"), None);
        // The keep rules read by hand.
        let (inventory, cfg) = page_config(0);
        let v = serde_json::json!({"externalIdentifier": [{"id": " X "}], "status": "operational"});
        assert_eq!(
            expected_verdict(inventory, &cfg, &v),
            Expected::Keep("X".into())
        );
        // An unchanged store loads as written (and the checks find a broken page).
        store_loader(&[0]);
    }
}

//! Deterministic data generator: SES-like services, carriers and resources in a mix of TMF v4
//! and v5 shapes, with the anomalies the daemon must cope with, and the ground truth ([`Facts`])
//! recorded while generating.
//!
//! The generator never reads its own JSON back to decide what a cache should hold. Each stored
//! item carries the key and the "keepable" verdict the generator *chose* when it built the item;
//! [`Dataset::facts`] folds those choices with the documented rules (first occurrence wins,
//! empty keys skipped). To keep that fold unambiguous, each key is duplicated at most once, and
//! [`Dataset::mutate`] only changes the status of items whose key is not duplicated. Most
//! duplicates repeat a keepable first occurrence; a few repeat a first occurrence that is *not*
//! kept with a copy that would be (the first occurrence still wins: the key is not kept).
//!
//! Statuses and resource types are sometimes spelled with another case or surrounding blanks
//! (`OPERATIONAL`, ` Operational `, `card\t`), as hand-typed upstream data is: the daemon's rules
//! match ignoring both.
//!
//! Items are written straight to compact JSON text by a tiny writer and stored as text rather
//! than `serde_json::Value`: a `Value` tree costs several times the memory of its text and ~150
//! allocations to build. Pages are served by joining the stored text, so serving is a copy, not
//! a serialization. Measured (release, 2-core VM, `generate_a_million`): 1,000,000 resources in
//! ~6.6 s on one thread, ~0.9 GB of JSON; the three inventories are generated in parallel.

use super::SimConfig;
use crate::Inventory;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};

/// Ground truth for one generated dataset: what a correct cache holds after a complete listing.
///
/// Every item falls in exactly one bucket, so
/// `kept.len() + empty_keys + duplicates + not_kept` equals the dataset's length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Keys a correct cache holds.
    pub kept: BTreeSet<String>,
    /// Items whose key is missing, null or empty.
    pub empty_keys: usize,
    /// Items repeating the key of an earlier item (the earlier one wins).
    pub duplicates: usize,
    /// First occurrences excluded by a rule: services not `Operational`, resources of an
    /// excluded `@type`.
    pub not_kept: usize,
}

/// Resource `@type`s the daemon must not keep.
pub const EXCLUDED_TYPES: [&str; 7] = [
    "Card",
    "BandwidthSegment",
    "LogicalPort",
    "Multicast",
    "Slot",
    "Port",
    "Circuit",
];
const KEPT_TYPES: [&str; 6] = [
    "LogicalResource",
    "PhysicalResource",
    "Antenna",
    "Modem",
    "Satellite",
    "Transponder",
];

/// SplitMix64: tiny, fast, good enough for test data, and identical on every platform.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(1) as usize) as i64
    }

    fn permille(&mut self, p: usize) -> bool {
        self.below(1000) < p
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// The SplitMix64 finalizer: a bijection on `u64`, so distinct inputs give distinct outputs.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn salt(inv: Inventory) -> u64 {
    match inv {
        Inventory::Services => 0x5E5_0638_0001,
        Inventory::Carriers => 0x5E5_0638_0002,
        Inventory::Resources => 0x5E5_0639_0003,
    }
}

/// The key of the `serial`-th distinct item of an inventory. Services and carriers get readable
/// ServiceNow-like numbers; resources get 32-hex `sys_id`s (unique: the first half is a bijection
/// of the serial).
pub(crate) fn key_for(inv: Inventory, serial: u64) -> String {
    match inv {
        Inventory::Services => format!("SES-SVC-{serial:07}"),
        Inventory::Carriers => format!("SES-CAR-{serial:07}"),
        Inventory::Resources => format!(
            "{:016x}{:016x}",
            mix(serial ^ 0xA5A5_5A5A_0639_0639),
            mix(serial.wrapping_add(0x0639).rotate_left(17))
        ),
    }
}

const H: i64 = 3_600_000;
const D: i64 = 24 * H;

type Sat = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);
const SATELLITES: [Sat; 19] = [
    ("SES-17", "S17", "67.1°W", &["Ka"]),
    ("SES-12", "S12", "95°E", &["Ku", "Ka"]),
    ("SES-14", "S14", "47.5°W", &["C", "Ku"]),
    ("SES-15", "S15", "129°W", &["Ku", "Ka"]),
    ("SES-4", "S04", "22°W", &["C", "Ku"]),
    ("SES-5", "S05", "5°E", &["C", "Ku", "Ka"]),
    ("SES-9", "S09", "108.2°E", &["Ku"]),
    ("SES-10", "S10", "67°W", &["Ku"]),
    ("SES-22", "S22", "135°W", &["C"]),
    ("O3b mPOWER F3", "MP3", "MEO", &["Ka"]),
    ("O3b mPOWER F5", "MP5", "MEO", &["Ka"]),
    ("O3b FM19", "O19", "MEO", &["Ka"]),
    ("Astra 1KR", "A1K", "19.2°E", &["Ku"]),
    ("Astra 1N", "A1N", "19.2°E", &["Ku", "Ka"]),
    ("Astra 2E", "A2E", "28.2°E", &["Ku", "Ka"]),
    ("Astra 2F", "A2F", "28.2°E", &["Ku", "Ka"]),
    ("Astra 3B", "A3B", "23.5°E", &["Ku", "Ka"]),
    ("Astra 5B", "A5B", "31.5°E", &["Ku", "Ka"]),
    ("NSS-12", "N12", "57°E", &["C", "Ku"]),
];

type Teleport = (&'static str, &'static str, &'static str);
const TELEPORTS: [Teleport; 12] = [
    ("Betzdorf", "BTZ", "LU"),
    ("Redu", "RDU", "BE"),
    ("Woodbine", "WDB", "US"),
    ("Manassas", "MNS", "US"),
    ("Gibraltar", "GIB", "GI"),
    ("Hawaii", "HAW", "US"),
    ("Dubbo", "DBO", "AU"),
    ("Lurin", "LUR", "PE"),
    ("Vernon", "VRN", "US"),
    ("Kista", "KIS", "SE"),
    ("Bucharest", "BUC", "RO"),
    ("Johannesburg", "JNB", "ZA"),
];

/// Invented customers (no real contracts implied).
const CUSTOMERS: [&str; 16] = [
    "Nordic Maritime Link AS",
    "Andes Telecom S.A.",
    "Pacific Islands Connect Ltd",
    "EuroBroadcast Media GmbH",
    "Sahel Mobile SA",
    "Caribbean Cruise Networks Inc.",
    "Atlas Energy Offshore",
    "Global Aero Connect",
    "Kalahari Cellular (Pty) Ltd",
    "Meridian Government Services",
    "Lusitania TV",
    "Baltic Backup Networks OÜ",
    "Altiplano Rural Broadband",
    "Coral Sea Shipping",
    "Helios Broadcast Group",
    "Northern Territory Health Net",
];

const SERVICE_SPECS: [(&str, &str); 9] = [
    ("SPEC-MC-01", "Managed Connectivity"),
    ("SPEC-BVD-02", "Broadcast Video Distribution"),
    ("SPEC-CBH-03", "Cellular Backhaul"),
    ("SPEC-MAR-04", "Maritime Broadband"),
    ("SPEC-AER-05", "Aero Connectivity"),
    ("SPEC-GOV-06", "Government Secure Link"),
    ("SPEC-IPT-07", "Enterprise IP Trunking"),
    ("SPEC-DTH-08", "DTH Platform Services"),
    ("SPEC-OCC-09", "Occasional Use Video"),
];

const NON_OPERATIONAL: [&str; 5] = [
    "Terminated",
    "Pending",
    "Suspended",
    "Designed",
    "Cancelled",
];
const CARRIER_OTHER: [&str; 3] = ["Planned", "Decommissioned", "Testing"];
const RESOURCE_STATUS: [&str; 6] = [
    "available",
    "available",
    "available",
    "reserved",
    "standby",
    "suspended",
];
const MODEMS: [&str; 5] = [
    "Newtec MDM3310",
    "Newtec MDM5010",
    "iDirect iQ 200",
    "Comtech CDM-760",
    "ST Engineering MCD7000",
];

/// Band plan: uplink range in MHz and the uplink-to-downlink translation.
fn band_plan(band: &str) -> (f64, f64, f64) {
    match band {
        "C" => (5925.0, 6425.0, 2225.0),
        "Ku" => (13750.0, 14500.0, 2300.0),
        _ => (27500.0, 30000.0, 9800.0),
    }
}

/// Formats a UTC instant in one of four styles: with or without milliseconds, `Z` or `+01:00`.
pub(crate) fn fmt_ts(ms: i64, style: usize) -> String {
    let offset = style % 4 >= 2;
    let local = ms + if offset { H } else { 0 };
    let t = DateTime::<Utc>::from_timestamp_millis(local)
        .unwrap_or_default()
        .naive_utc();
    let mut s = String::with_capacity(29);
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if style % 2 == 1 {
        let _ = write!(s, ".{:03}", ms.rem_euclid(1000));
    }
    s.push_str(if offset { "+01:00" } else { "Z" });
    s
}

/// Parses a date as the simulator's `updatedDaysAgo` filter reads it: RFC 3339, or a naive
/// date-time taken as UTC. Returns epoch milliseconds.
pub(crate) fn parse_ts(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| n.and_utc().timestamp_millis())
}

/// The item's `lastUpdate` (or `lastUpdateDate`) in epoch milliseconds, if parseable.
pub(crate) fn updated_ms(m: &Map<String, Value>) -> Option<i64> {
    ["lastUpdate", "lastUpdateDate"]
        .iter()
        .find_map(|f| m.get(*f).and_then(Value::as_str).and_then(parse_ts))
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One stored item: its JSON text, when it was last updated (for `updatedDaysAgo`), and the
/// generator's own record of its key and whether a correct cache keeps it.
#[derive(Clone, Debug)]
pub(crate) struct StoredItem {
    pub(crate) json: Box<str>,
    pub(crate) updated: Option<i64>,
    pub(crate) key: Option<Box<str>>,
    pub(crate) keep: bool,
}

impl StoredItem {
    fn new(m: Map<String, Value>, key: Option<String>, keep: bool) -> Self {
        let updated = updated_ms(&m);
        // Serialize into a reused buffer, then allocate the stored text once at its exact size:
        // growing a fresh String per item fragments glibc's heap badly at a million items.
        let json = SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            serde_json::to_writer(&mut *buf, &m).expect("a JSON map serializes");
            Box::<str>::from(std::str::from_utf8(buf).expect("serde_json writes UTF-8"))
        });
        drop(m);
        StoredItem {
            json,
            updated,
            key: key.map(String::into_boxed_str),
            keep,
        }
    }
}

/// A change to one dataset, applied in the order delete, insert, update: by
/// `Simulator::edit`, or between two pages by a `FaultKind::Edit` fault. Keys are what
/// `key_of` reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edit {
    /// Keys to delete (every item with that key; unknown keys ignored).
    pub delete: Vec<String>,
    /// Items to insert: (position in the dataset, clamped to its length; JSON object text).
    /// Applied one after the other, each position counted in the dataset as it is then.
    pub insert: Vec<(usize, String)>,
    /// Keys to update (every item with that key; unknown keys ignored): the item's `name` gets
    /// a ` #revN` suffix (N a counter of the dataset's edits) and its `lastUpdate` (or
    /// `lastUpdateDate` when that is the field it has) becomes now; with `resort_on_update`
    /// it moves to the end.
    pub update: Vec<String>,
}

/// An item's key as the simulator's own operations (edits, item GETs) address it: the
/// generator's key when it recorded one, else the top-level `externalId` (services, carriers)
/// or `id` (resources) of the item's JSON, as crafted items have. Empty is no key.
pub(crate) fn key_of(item: &StoredItem, inv: Inventory) -> Option<String> {
    if let Some(k) = item.key.as_deref() {
        return Some(k.to_owned());
    }
    let field = match inv {
        Inventory::Resources => "id",
        Inventory::Services | Inventory::Carriers => "externalId",
    };
    let m = serde_json::from_str::<Map<String, Value>>(&item.json).ok()?;
    m.get(field)
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Moves the items at `order` (distinct indices) to the end of `items`, in that order; the
/// others keep their relative order.
fn move_to_end(items: &mut Vec<StoredItem>, order: &[usize]) {
    if order.is_empty() {
        return;
    }
    let mut rank = vec![None; items.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = Some(r);
    }
    let mut stay = Vec::with_capacity(items.len());
    let mut moved: Vec<Option<StoredItem>> =
        std::iter::repeat_with(|| None).take(order.len()).collect();
    for (i, item) in items.drain(..).enumerate() {
        match rank[i] {
            Some(r) => moved[r] = Some(item),
            None => stay.push(item),
        }
    }
    stay.extend(moved.into_iter().flatten());
    *items = stay;
}

/// `order` without repeats, each index at its last occurrence (an item updated twice moves
/// to the end as of its last update).
fn last_occurrences(order: &[usize]) -> Vec<usize> {
    let mut seen = HashSet::new();
    let mut out: Vec<usize> = order
        .iter()
        .rev()
        .copied()
        .filter(|i| seen.insert(*i))
        .collect();
    out.reverse();
    out
}

/// One inventory's items, in the order the upstream lists them.
#[derive(Debug)]
pub(crate) struct Dataset {
    pub(crate) inventory: Inventory,
    pub(crate) items: Vec<StoredItem>,
    /// False once a test replaced the items with `set_items`, or inserted its own with an
    /// [`Edit`]: facts are then unknown.
    pub(crate) generated: bool,
    next_serial: u64,
    /// Items updated by edits so far: the N of their ` #revN`.
    revisions: u64,
}

#[derive(Clone, Copy)]
enum KeySpec {
    /// The key of this serial (new, or a duplicate of an earlier one).
    Serial(u64),
    /// A missing or empty key, in one of several shapes.
    Empty(usize),
}

struct Gen {
    rng: Rng,
    inv: Inventory,
    anchor_ms: i64,
    /// Dataset sizes, for references between inventories.
    sizes: [usize; 3],
    next_serial: u64,
    /// Make the next item one a cache must not keep (inactive service, excluded resource).
    force_not_kept: bool,
    /// Make the next item one a cache keeps (wins over `force_not_kept`).
    force_kept: bool,
    /// Reused output buffer.
    buf: String,
    /// The shape of the data (see `SimConfig::mix`).
    mix: crate::Mix,
}

impl Dataset {
    /// Generates `config`'s dataset for `inv`. Dates are relative to `anchor_ms` (epoch ms);
    /// everything else depends only on `config.seed` and the sizes.
    pub(crate) fn generate(inv: Inventory, config: &SimConfig, anchor_ms: i64) -> Dataset {
        let count = config.count(inv);
        let mut g = Gen {
            rng: Rng::new(mix(config.seed ^ salt(inv))),
            inv,
            anchor_ms,
            sizes: [config.services, config.carriers, config.resources],
            next_serial: 0,
            force_not_kept: false,
            force_kept: false,
            buf: String::new(),
            mix: config.mix,
        };
        // Serials of keepable first occurrences that may still be duplicated (each at most once).
        let mut pool: Vec<u64> = Vec::new();
        // Serials of first occurrences that are not kept, not yet duplicated.
        let mut dropped_pool: Vec<u64> = Vec::new();
        let mut items = Vec::with_capacity(count);
        // Each anomaly is random at a few percent, and forced once at a fixed position if the
        // dice have not produced it by then, so even small datasets contain every kind.
        let (mut empties, mut dups, mut dropped, mut planted) = (0, 0, 0, 0);
        for i in 0..count {
            let r = g.rng.below(1000);
            let force = |at: usize, seen: usize| count >= 8 && i == count * at / 8 && seen == 0;
            g.force_not_kept = force(3, dropped) && inv != Inventory::Carriers;
            let want_empty = force(2, empties);
            let want_dup = force(5, dups) && !pool.is_empty();
            // A kept copy after a not-kept first occurrence.
            let want_planted = force(6, planted) && !dropped_pool.is_empty();
            let random = !g.force_not_kept && !want_empty && !want_dup && !want_planted;
            let (spec, fresh_serial) = if want_empty || (random && r < 25) {
                empties += 1;
                (KeySpec::Empty(g.rng.below(5)), None)
            } else if want_dup || (random && r < 50 && !pool.is_empty()) {
                dups += 1;
                let i = g.rng.below(pool.len());
                (KeySpec::Serial(pool.swap_remove(i)), None)
            } else if want_planted || (random && r < 60 && !dropped_pool.is_empty()) {
                planted += 1;
                g.force_kept = true;
                let i = g.rng.below(dropped_pool.len());
                (KeySpec::Serial(dropped_pool.swap_remove(i)), None)
            } else {
                let s = g.next_serial;
                g.next_serial += 1;
                (KeySpec::Serial(s), Some(s))
            };
            let item = g.item(spec, false);
            g.force_kept = false;
            match (fresh_serial, item.keep) {
                (Some(s), true) => pool.push(s),
                (Some(s), false) => {
                    dropped += 1;
                    dropped_pool.push(s);
                }
                (None, _) => {}
            }
            items.push(item);
        }
        Dataset {
            inventory: inv,
            items,
            generated: true,
            next_serial: g.next_serial,
            revisions: 0,
        }
    }

    /// A dataset of exactly these items, as a test crafted them. Facts are unknown.
    pub(crate) fn from_values(inv: Inventory, values: Vec<Value>) -> Dataset {
        let items = values
            .into_iter()
            .map(|v| StoredItem {
                updated: v.as_object().and_then(updated_ms),
                json: v.to_string().into_boxed_str(),
                key: None,
                keep: false,
            })
            .collect();
        Dataset {
            inventory: inv,
            items,
            generated: false,
            next_serial: 0,
            revisions: 0,
        }
    }

    pub(crate) fn values(&self) -> Vec<Value> {
        self.items
            .iter()
            .map(|i| serde_json::from_str(&i.json).expect("stored items are valid JSON"))
            .collect()
    }

    /// Ground truth from the generator's records; `None` for crafted datasets.
    pub(crate) fn facts(&self) -> Option<Facts> {
        if !self.generated {
            return None;
        }
        let mut facts = Facts::default();
        let mut seen: HashSet<&str> = HashSet::with_capacity(self.items.len());
        for item in &self.items {
            match item.key.as_deref() {
                None => facts.empty_keys += 1,
                Some(k) if !seen.insert(k) => facts.duplicates += 1,
                Some(k) if item.keep => {
                    facts.kept.insert(k.to_owned());
                }
                Some(_) => facts.not_kept += 1,
            }
        }
        Some(facts)
    }

    /// Renders one page: `(body, total matching items, items on this page)`.
    ///
    /// `since` (epoch ms) keeps only items updated at or after it; `limit` cuts the page to its
    /// first `limit` items (a short page where the collection goes on); `extra_element` appends
    /// a bare `42` to the array.
    pub(crate) fn render_page(
        &self,
        since: Option<i64>,
        index: usize,
        size: usize,
        limit: usize,
        wrap: Option<&str>,
        extra_element: bool,
    ) -> (String, usize, usize) {
        let start = index.saturating_mul(size);
        let end = start.saturating_add(size);
        let mut body = String::with_capacity(size.min(1000) * 700 + 32);
        if let Some(w) = wrap {
            body.push('{');
            body.push_str(&Value::from(w).to_string());
            body.push(':');
        }
        body.push('[');
        let mut count = 0;
        let mut push = |body: &mut String, s: &str| {
            if count >= limit {
                return;
            }
            if count > 0 {
                body.push(',');
            }
            body.push_str(s);
            count += 1;
        };
        let total = match since {
            None => {
                let len = self.items.len();
                if start < len {
                    for it in &self.items[start..end.min(len)] {
                        push(&mut body, &it.json);
                    }
                }
                len
            }
            Some(t) => {
                let mut total = 0;
                for it in self
                    .items
                    .iter()
                    .filter(|i| i.updated.is_some_and(|u| u >= t))
                {
                    if (start..end).contains(&total) {
                        push(&mut body, &it.json);
                    }
                    total += 1;
                }
                total
            }
        };
        if extra_element {
            body.push_str(if count > 0 { ",42" } else { "42" });
        }
        body.push(']');
        if wrap.is_some() {
            body.push('}');
        }
        (body, total, count)
    }

    /// The stored text of the first item whose top-level `id` string is `x`, or whose key
    /// ([`key_of`]) is. A linear scan: only items whose text holds `x` as a JSON string are
    /// parsed.
    pub(crate) fn find(&self, x: &str) -> Option<&str> {
        let quoted = Value::from(x).to_string();
        self.items
            .iter()
            .find(|it| {
                it.key.as_deref() == Some(x)
                    || (it.json.contains(&quoted)
                        && (serde_json::from_str::<Map<String, Value>>(&it.json)
                            .is_ok_and(|m| m.get("id").and_then(Value::as_str) == Some(x))
                            || key_of(it, self.inventory).as_deref() == Some(x)))
            })
            .map(|it| &*it.json)
    }

    /// Applies an [`Edit`]: deletes, then inserts, then updates (stamped `now_ms`; moved to the
    /// end when `resort`). An insert that is not a JSON object is an error, and then nothing
    /// changes. Inserting makes a generated dataset's facts unknown (the simulator does not
    /// judge items it did not generate), so `mutate` leaves it alone from then on.
    pub(crate) fn edit(&mut self, edit: &Edit, resort: bool, now_ms: i64) -> Result<(), String> {
        let inserts = edit
            .insert
            .iter()
            .map(|(pos, text)| match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => Ok((*pos, m)),
                _ => Err(format!(
                    "edit of {}: insert at {pos} is not a JSON object: {text}",
                    self.inventory
                )),
            })
            .collect::<Result<Vec<_>, String>>()?;
        let inv = self.inventory;
        if !edit.delete.is_empty() {
            let doomed: HashSet<&str> = edit.delete.iter().map(String::as_str).collect();
            self.items
                .retain(|it| key_of(it, inv).is_none_or(|k| !doomed.contains(k.as_str())));
        }
        for (pos, m) in inserts {
            let at = pos.min(self.items.len());
            self.items.insert(at, StoredItem::new(m, None, false));
            self.generated = false;
        }
        if edit.update.is_empty() {
            return Ok(());
        }
        let keys: Vec<Option<String>> = self.items.iter().map(|it| key_of(it, inv)).collect();
        let mut updated = Vec::new();
        for wanted in &edit.update {
            for (i, key) in keys.iter().enumerate() {
                if key.as_deref() != Some(wanted.as_str()) {
                    continue;
                }
                let item = &mut self.items[i];
                let Ok(mut m) = serde_json::from_str::<Map<String, Value>>(&item.json) else {
                    continue;
                };
                self.revisions += 1;
                rename(&mut m, self.revisions);
                stamp(&mut m, now_ms);
                *item = StoredItem::new(m, item.key.take().map(String::from), item.keep);
                updated.push(i);
            }
        }
        if resort {
            move_to_end(&mut self.items, &last_occurrences(&updated));
        }
        Ok(())
    }

    /// One deterministic change step (see `Simulator::mutate`). Crafted datasets are left alone.
    pub(crate) fn mutate(&mut self, config: &SimConfig, step: u64, now_ms: i64) {
        if !self.generated {
            return;
        }
        let inv = self.inventory;
        let mut g = Gen {
            rng: Rng::new(mix(config.seed
                ^ salt(inv)
                ^ mix(step.wrapping_add(0x5EED)))),
            inv,
            anchor_ms: now_ms,
            sizes: [config.services, config.carriers, config.resources],
            next_serial: self.next_serial,
            force_not_kept: false,
            force_kept: false,
            buf: String::new(),
            mix: config.mix,
        };
        let n = self.items.len();
        let (updates, deletes, adds) = (n.div_ceil(50), n.div_ceil(100), n.div_ceil(100));

        let dup_keys: HashSet<Box<str>> = {
            let mut counts: HashMap<&str, u32> = HashMap::new();
            for k in self.items.iter().filter_map(|i| i.key.as_deref()) {
                *counts.entry(k).or_default() += 1;
            }
            counts
                .into_iter()
                .filter(|&(_, c)| c > 1)
                .map(|(k, _)| k.into())
                .collect()
        };
        let mut updated = Vec::with_capacity(updates);
        for _ in 0..updates {
            let i = g.rng.below(n);
            let unique = self.items[i]
                .key
                .as_ref()
                .is_none_or(|k| !dup_keys.contains(k));
            update_item(&mut self.items[i], &mut g, unique, step, now_ms);
            updated.push(i);
        }
        if config.resort_on_update {
            move_to_end(&mut self.items, &last_occurrences(&updated));
        }

        let doomed: HashSet<usize> = (0..deletes).map(|_| g.rng.below(n)).collect();
        let mut index = 0;
        self.items.retain(|_| {
            index += 1;
            !doomed.contains(&(index - 1))
        });

        for _ in 0..adds {
            let s = g.next_serial;
            g.next_serial += 1;
            let spec = KeySpec::Serial(s);
            let item = g.item(spec, true);
            self.items.push(item);
        }
        self.next_serial = g.next_serial;
    }

    /// Changes the data in front of a listing's cursor, the way a live upstream does while a
    /// client pages through it: of the first `read` items of the view (the items updated at or
    /// after `since`, or all), deletes `deletes` evenly spaced ones, then inserts `inserts` new
    /// items (`lastUpdate` = now) at evenly spaced positions among what remains of them.
    /// Deterministic for the same arguments. Returns the keys deleted and inserted.
    ///
    /// New items come from the generator for generated datasets (facts stay right); in a
    /// crafted dataset each is a copy of its neighbour with `externalId` and `id` set to
    /// `CHURN-<n>`.
    pub(crate) fn churn(
        &mut self,
        config: &SimConfig,
        change: Churn,
        now_ms: i64,
    ) -> (Vec<String>, Vec<String>) {
        let in_view = |i: &StoredItem| {
            change
                .since
                .is_none_or(|t| i.updated.is_some_and(|u| u >= t))
        };
        let view: Vec<usize> = (0..self.items.len())
            .filter(|&i| in_view(&self.items[i]))
            .take(change.read)
            .collect();
        let spread = |n: usize, len: usize| -> Vec<usize> {
            (0..n.min(len))
                .map(|k| (k * len) / n.min(len).max(1))
                .collect()
        };
        let mut doomed: Vec<usize> = spread(change.deletes, view.len())
            .into_iter()
            .map(|p| view[p])
            .collect();
        doomed.sort_unstable();
        doomed.dedup();
        let mut deleted = Vec::new();
        for &i in doomed.iter().rev() {
            let item = self.items.remove(i);
            deleted.push(item.key.as_deref().map(str::to_owned).unwrap_or_else(|| {
                serde_json::from_str::<Value>(&item.json)
                    .ok()
                    .and_then(|v| v.get("externalId").or(v.get("id")).cloned())
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }));
        }
        // The view's first items again, after the deletions.
        let view: Vec<usize> = (0..self.items.len())
            .filter(|&i| in_view(&self.items[i]))
            .take(change.read.saturating_sub(doomed.len()))
            .collect();
        let mut g = Gen {
            rng: Rng::new(mix(config.seed
                ^ salt(self.inventory)
                ^ mix(self.next_serial))),
            inv: self.inventory,
            anchor_ms: now_ms,
            sizes: [config.services, config.carriers, config.resources],
            next_serial: self.next_serial,
            force_not_kept: false,
            force_kept: false,
            buf: String::new(),
            mix: config.mix,
        };
        let mut at: Vec<usize> = if view.is_empty() {
            vec![0; change.inserts]
        } else {
            (0..change.inserts)
                .map(|k| view[(k * view.len()) / change.inserts.max(1)])
                .collect()
        };
        at.sort_unstable();
        let mut inserted = Vec::new();
        // From the back, so earlier positions stay valid.
        for &pos in at.iter().rev() {
            let item = if self.generated {
                let s = g.next_serial;
                g.next_serial += 1;
                g.item(KeySpec::Serial(s), true)
            } else {
                let n = g.next_serial;
                g.next_serial += 1;
                let neighbour = self.items.get(pos).or(self.items.last());
                let mut m = neighbour
                    .and_then(|i| serde_json::from_str::<Map<String, Value>>(&i.json).ok())
                    .unwrap_or_default();
                let key = format!("CHURN-{n}");
                for field in ["externalId", "id"] {
                    if m.contains_key(field) || m.is_empty() {
                        m.insert(field.into(), key.clone().into());
                    }
                }
                m.insert("lastUpdate".into(), fmt_ts(now_ms, 1).into());
                StoredItem::new(m, None, false)
            };
            inserted.push(
                item.key
                    .as_deref()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("CHURN-{}", g.next_serial - 1)),
            );
            self.items.insert(pos.min(self.items.len()), item);
        }
        self.next_serial = g.next_serial;
        (deleted, inserted)
    }
}

/// One change in front of a listing's cursor (see [`Dataset::churn`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Churn {
    /// The view: items updated at or after this (epoch ms), or all.
    pub(crate) since: Option<i64>,
    /// How many of the view's first items the listing has already read.
    pub(crate) read: usize,
    pub(crate) deletes: usize,
    pub(crate) inserts: usize,
}

/// Renames an item or changes its status, and stamps `lastUpdate` with `now_ms`. A service's
/// status only changes when its key is not duplicated, so the facts stay unambiguous.
fn update_item(item: &mut StoredItem, g: &mut Gen, unique: bool, step: u64, now_ms: i64) {
    let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(&item.json) else {
        return;
    };
    if unique && g.rng.permille(400) {
        let field = match g.inv {
            Inventory::Resources => "resourceStatus",
            _ => ["status", "state", "operatingStatus"]
                .into_iter()
                .find(|f| m.contains_key(*f))
                .unwrap_or("status"),
        };
        let current = m.get(field).and_then(Value::as_str).unwrap_or("");
        // Statuses may be spelled in another case or with blanks around them.
        let operational = current.trim().eq_ignore_ascii_case("Operational");
        let new = match g.inv {
            Inventory::Services if operational => g.rng.pick(&NON_OPERATIONAL),
            Inventory::Carriers if operational => g.rng.pick(&CARRIER_OTHER),
            Inventory::Services | Inventory::Carriers => "Operational",
            Inventory::Resources if current == "available" => "suspended",
            Inventory::Resources => "available",
        };
        m.insert(field.into(), new.into());
        if g.inv == Inventory::Services {
            item.keep = new == "Operational";
        }
    } else {
        rename(&mut m, step);
    }
    stamp(&mut m, now_ms);
    *item = StoredItem::new(m, item.key.take().map(String::from), item.keep);
}

/// Renames an item `<name> #rev<n>` (any earlier ` #rev` suffix replaced).
fn rename(m: &mut Map<String, Value>, n: u64) {
    let old = m.get("name").and_then(Value::as_str).unwrap_or("Unnamed");
    let base = old.split(" #rev").next().unwrap_or(old);
    let name = format!("{base} #rev{n}");
    m.insert("name".into(), name.into());
}

/// Sets the item's `lastUpdate` (or `lastUpdateDate` when that is the field it has) to `now_ms`.
fn stamp(m: &mut Map<String, Value>, now_ms: i64) {
    let field = if m.contains_key("lastUpdateDate") && !m.contains_key("lastUpdate") {
        "lastUpdateDate"
    } else {
        "lastUpdate"
    };
    m.insert(field.into(), fmt_ts(now_ms, 1).into());
}

/// A minimal JSON writer for the generator's hot path: building a `serde_json::Value` tree per
/// item costs ~150 allocations, which made a million items take half a minute. Keys are
/// literals chosen here (no escaping needed); string values are escaped.
struct Obj<'b> {
    b: &'b mut String,
    first: bool,
}

struct Arr<'b> {
    b: &'b mut String,
    first: bool,
}

/// Escapes what JSON requires (quotes, backslashes, control characters) while writing.
struct Esc<'b>(&'b mut String);

impl fmt::Write for Esc<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, byte) in s.bytes().enumerate() {
            if !matches!(byte, b'"' | b'\\' | 0..=0x1f) {
                continue;
            }
            self.0.push_str(&s[start..i]);
            match byte {
                b'"' => self.0.push_str("\\\""),
                b'\\' => self.0.push_str("\\\\"),
                c => write!(self.0, "\\u{c:04x}")?,
            }
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

impl<'b> Obj<'b> {
    fn open(b: &'b mut String) -> Self {
        b.push('{');
        Obj { b, first: true }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.b.push(',');
        }
        self.first = false;
        self.b.push('"');
        self.b.push_str(k);
        self.b.push_str("\":");
        self.b
    }

    fn s(&mut self, k: &str, v: &str) -> &mut Self {
        self.f(k, format_args!("{v}"))
    }

    fn f(&mut self, k: &str, v: fmt::Arguments<'_>) -> &mut Self {
        let b = self.key(k);
        b.push('"');
        let _ = Esc(b).write_fmt(v);
        b.push('"');
        self
    }

    fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k).push_str(json);
        self
    }

    fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        let mut o = Obj::open(self.key(k));
        f(&mut o);
        o.close();
        self
    }

    fn arr(&mut self, k: &str, f: impl FnOnce(&mut Arr<'_>)) -> &mut Self {
        let b = self.key(k);
        b.push('[');
        let mut a = Arr { b, first: true };
        f(&mut a);
        a.b.push(']');
        self
    }

    fn close(self) {
        self.b.push('}');
    }
}

impl Arr<'_> {
    fn obj(&mut self, f: impl FnOnce(&mut Obj<'_>)) {
        if !self.first {
            self.b.push(',');
        }
        self.first = false;
        let mut o = Obj::open(self.b);
        f(&mut o);
        o.close();
    }
}

/// A characteristic's value and how it is typed.
enum Cv {
    S(String),
    F(f64),
    I(u64),
}

impl From<&str> for Cv {
    fn from(s: &str) -> Self {
        Cv::S(s.to_owned())
    }
}

impl From<String> for Cv {
    fn from(s: String) -> Self {
        Cv::S(s)
    }
}

impl Gen {
    fn key_string(&self, spec: KeySpec) -> Option<String> {
        match spec {
            KeySpec::Serial(s) => Some(key_for(self.inv, s)),
            KeySpec::Empty(_) => None,
        }
    }

    /// A status or type as upstream data sometimes spells it (about one in eight): upper or
    /// lower case, or surrounded by blanks. The daemon's rules ignore both.
    fn spelled(&mut self, word: &'static str) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow;
        match self.rng.below(32) {
            0 => Cow::Owned(word.to_uppercase()),
            1 => Cow::Owned(word.to_lowercase()),
            2 => Cow::Owned(format!(" {word} ")),
            3 => Cow::Owned(format!("{}\t", word.to_lowercase())),
            _ => Cow::Borrowed(word),
        }
    }

    /// Builds one item; returns it stored, with the generator's verdict on keeping it.
    fn item(&mut self, spec: KeySpec, fresh: bool) -> StoredItem {
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        let (updated, keep) = match self.inv {
            Inventory::Services => self.service(&mut b, spec, fresh),
            Inventory::Carriers => self.carrier(&mut b, spec, fresh),
            Inventory::Resources => self.resource(&mut b, spec, fresh),
        };
        let item = StoredItem {
            json: b.as_str().into(),
            updated,
            key: self.key_string(spec).map(String::into_boxed_str),
            keep,
        };
        self.buf = b;
        item
    }

    fn random_id(&mut self) -> String {
        format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64())
    }

    fn date(&mut self, o: &mut Obj<'_>, k: &str, ms: i64) {
        let style = self.rng.below(4);
        o.s(k, &fmt_ts(ms, style));
    }

    /// Whether the next field takes its v5 shape (a fair coin by default, drawn as it always
    /// was, so the default data stay the same).
    fn v5(&mut self) -> bool {
        match self.mix.v5_permille {
            500 => self.rng.below(2) == 0,
            p => self.rng.permille(p),
        }
    }

    /// `pad_bytes` of words for a description, or nothing.
    fn padding(&mut self) -> String {
        const WORDS: [&str; 8] = [
            "uplink",
            "carrier",
            "beam",
            "transponder",
            "gateway",
            "teleport",
            "redundant",
            "lease",
        ];
        let mut pad = String::new();
        while pad.len() < self.mix.pad_bytes {
            pad.push(' ');
            pad.push_str(self.rng.pick(&WORDS));
        }
        pad
    }

    /// `externalId` (v4) or `externalIdentifier` (v5), or one of the empty-key shapes.
    fn external_key(&mut self, o: &mut Obj<'_>, spec: KeySpec) {
        match spec {
            KeySpec::Serial(s) => {
                let key = key_for(self.inv, s);
                // v4 on a zero, as drawn before mixes existed (the default data stay the same).
                let v4 = match self.mix.v5_permille {
                    500 => self.rng.below(2) == 0,
                    p => !self.rng.permille(p),
                };
                if v4 {
                    o.s("externalId", &key);
                } else {
                    let second = self.rng.permille(300).then(|| self.rng.below(1_000_000));
                    o.arr("externalIdentifier", |a| {
                        a.obj(|o| {
                            o.s("id", &key)
                                .s("owner", "ServiceNow")
                                .s("externalIdentifierType", "number");
                        });
                        if let Some(n) = second {
                            a.obj(|o| {
                                o.f("id", format_args!("DM-{n}")).s("owner", "DataMiner");
                            });
                        }
                    });
                }
            }
            KeySpec::Empty(v) => match v % 5 {
                0 => {}
                1 => {
                    o.s("externalId", "");
                }
                2 => {
                    o.raw("externalId", "null");
                }
                3 => {
                    o.raw("externalIdentifier", "[]");
                }
                _ => {
                    o.raw("externalIdentifier", r#"[{"id":"","owner":"ServiceNow"}]"#);
                }
            },
        }
    }

    /// `status` (v4, sometimes with a TMF `state` that must not win), or v5 `state` and/or
    /// `operatingStatus`.
    fn status(&mut self, o: &mut Obj<'_>, status: &'static str) {
        let spelled = self.spelled(status);
        // Six in ten v4 (`status`), four in ten v5, by default.
        let shape = match self.mix.v5_permille {
            500 => self.rng.below(10),
            p if self.rng.permille(p) => 6 + self.rng.below(4),
            _ => self.rng.below(6),
        };
        match shape {
            0..6 => {
                o.s("status", &spelled);
                if self.rng.below(3) == 0 {
                    o.s(
                        "state",
                        if status == "Operational" {
                            "active"
                        } else {
                            "inactive"
                        },
                    );
                }
            }
            6 | 7 => {
                o.s("state", &spelled);
            }
            8 => {
                o.s("operatingStatus", &spelled);
            }
            _ => {
                o.s("state", &spelled).s("operatingStatus", "running");
            }
        }
    }

    /// Writes `lastUpdate` (or `lastUpdateDate`, or a null/empty/missing one); returns the
    /// instant as the server's filter will read it.
    fn last_update(&mut self, o: &mut Obj<'_>, fresh: bool) -> Option<i64> {
        let field = if self.rng.permille(200) {
            "lastUpdateDate"
        } else {
            "lastUpdate"
        };
        let a = self.anchor_ms;
        let ms = if fresh {
            Some(a)
        } else {
            match self.rng.below(1000) {
                0..30 => None,
                30..80 => Some(a - self.rng.range(60_000, 20 * H)),
                80..130 => Some(a - self.rng.range(26 * H, 46 * H)),
                _ => Some(a - self.rng.range(73 * H, 400 * D)),
            }
        };
        match ms {
            Some(ms) => {
                let text = fmt_ts(ms, self.rng.below(4));
                o.s(field, &text);
                parse_ts(&text)
            }
            None => {
                match self.rng.below(3) {
                    0 => {
                        o.raw(field, "null");
                    }
                    1 => {
                        o.s(field, "");
                    }
                    _ => {}
                }
                None
            }
        }
    }

    fn related_parties(&mut self, o: &mut Obj<'_>, customer: usize) {
        let cust_id = format!("CUST-{:05}", 1000 + customer * 37);
        let role = if self.rng.below(2) == 0 {
            "Customer"
        } else {
            "customer"
        };
        let mut parties = [
            (cust_id.as_str(), CUSTOMERS[customer], role),
            ("SES-ORG-0001", "SES S.A.", "Provider"),
            ("SES-USR-0412", "SES Network Operations Centre", "Operator"),
        ];
        let n = 2 + self.rng.below(2);
        if self.rng.below(2) == 0 {
            parties.swap(0, 1);
        }
        let v5 = self.v5();
        o.arr("relatedParty", |a| {
            for (id, name, role) in &parties[..n] {
                a.obj(|o| {
                    if v5 {
                        o.s("role", role)
                            .obj("partyOrPartyRole", |o| {
                                o.s("id", id)
                                    .s("name", name)
                                    .s("@referredType", "Organization");
                            })
                            .s("@type", "RelatedPartyRefOrPartyRoleRef");
                    } else {
                        o.s("id", id)
                            .s("name", name)
                            .s("role", role)
                            .s("@referredType", "Organization");
                    }
                });
            }
        });
    }

    /// TMF 639 v4 single object, v4 array with roles, or v5 `[{role, place: {...}}]`.
    fn place(
        &mut self,
        o: &mut Obj<'_>,
        id: fmt::Arguments<'_>,
        name: fmt::Arguments<'_>,
        role: &str,
    ) {
        match self.rng.below(3) {
            0 => {
                o.obj("place", |o| {
                    o.f("id", id)
                        .f("name", name)
                        .s("@referredType", "GeographicSite");
                });
            }
            1 => {
                o.arr("place", |a| {
                    a.obj(|o| {
                        o.f("id", id).f("name", name).s("role", role);
                    })
                });
            }
            _ => {
                o.arr("place", |a| {
                    a.obj(|o| {
                        o.s("role", role).obj("place", |o| {
                            o.f("id", id)
                                .f("name", name)
                                .s("@referredType", "GeographicSite");
                        });
                    })
                });
            }
        }
    }

    fn teleport_place(&mut self, o: &mut Obj<'_>, tp: Teleport) {
        let (name, code, country) = tp;
        self.place(
            o,
            format_args!("SITE-{code}"),
            format_args!("{name} Teleport ({country})"),
            "installationSite",
        );
    }

    fn characteristics(&mut self, o: &mut Obj<'_>, k: &str, chars: Vec<(&str, Cv)>) {
        let v5 = self.v5();
        o.arr(k, |a| {
            for (name, value) in chars {
                a.obj(|o| {
                    o.s("name", name);
                    let (vt, t) = match value {
                        Cv::S(s) => {
                            o.s("value", &s);
                            ("string", "StringCharacteristic")
                        }
                        Cv::F(f) => {
                            o.raw("value", &Value::from(f).to_string());
                            ("number", "NumberCharacteristic")
                        }
                        Cv::I(i) => {
                            o.raw("value", &i.to_string());
                            ("integer", "IntegerCharacteristic")
                        }
                    };
                    o.s("valueType", vt);
                    if v5 {
                        o.s("@type", t);
                    }
                });
            }
        });
    }

    fn service(&mut self, b: &mut String, spec: KeySpec, fresh: bool) -> (Option<i64>, bool) {
        let (sat, _, pos, bands) = self.rng.pick(&SATELLITES);
        let band = self.rng.pick(bands);
        let tp = self.rng.pick(&TELEPORTS);
        let cust = self.rng.below(CUSTOMERS.len());
        let customer = CUSTOMERS[cust];
        let (spec_id, spec_name) = self.rng.pick(&SERVICE_SPECS);
        let status = if (self.rng.permille(self.mix.not_kept_permille) || self.force_not_kept)
            && !self.force_kept
        {
            self.rng.pick(&NON_OPERATIONAL)
        } else {
            "Operational"
        };
        let id = self.random_id();
        let mut o = Obj::open(b);
        o.f(
            "href",
            format_args!("/tmf-api/serviceInventory/v4/service/{id}"),
        )
        .s("id", &id);
        self.external_key(&mut o, spec);
        let pad = self.padding();
        o.f("name", format_args!("{spec_name} {sat} {band}-band - {customer}"))
            .f(
                "description",
                format_args!(
                    "{spec_name} for {customer} on {sat} ({pos}), {band}-band, uplinked from {} teleport{pad}",
                    tp.0
                ),
            );
        if self.rng.below(2) == 0 {
            o.s("@type", "Service");
        }
        o.s("category", "CFS");
        self.status(&mut o, status);
        let start = self.anchor_ms - self.rng.range(30 * D, 5 * 365 * D);
        self.date(&mut o, "startDate", start);
        if status != "Operational" || self.rng.permille(250) {
            let end = if status == "Terminated" {
                start + self.rng.range(D, 20 * D)
            } else {
                self.anchor_ms + self.rng.range(30 * D, 3 * 365 * D)
            };
            self.date(&mut o, "endDate", end);
        }
        let updated = self.last_update(&mut o, fresh);
        self.related_parties(&mut o, cust);
        self.teleport_place(&mut o, tp);
        o.obj("serviceSpecification", |o| {
            o.s("id", spec_id).s("name", spec_name).s("version", "1.0");
        });
        let n = 1 + self.rng.below(3);
        o.arr("supportingResource", |a| {
            for _ in 0..n {
                let r = self.rng.below(self.sizes[2].max(1)) as u64;
                let kind = self.rng.pick(&["Modem", "Antenna", "Transponder"]);
                a.obj(|o| {
                    o.s("id", &key_for(Inventory::Resources, r))
                        .f("name", format_args!("{} {kind}", tp.0))
                        .s("@referredType", kind);
                });
            }
        });
        o.close();
        (updated, status == "Operational")
    }

    fn carrier(&mut self, b: &mut String, spec: KeySpec, fresh: bool) -> (Option<i64>, bool) {
        let (sat, sat_code, _, bands) = self.rng.pick(&SATELLITES);
        let band = self.rng.pick(bands);
        let tp = self.rng.pick(&TELEPORTS);
        let customer = self.rng.pick(&CUSTOMERS);
        let cust = CUSTOMERS.iter().position(|c| *c == customer).unwrap_or(0);
        let (lo, hi, offset) = band_plan(band);
        let ul = lo + self.rng.below(((hi - lo) * 8.0) as usize) as f64 / 8.0;
        let dl = ul - offset;
        let n = self.rng.below(10_000);
        let ctype = self
            .rng
            .pick(&["SCPC", "MCPC", "DVB-S2X", "TDMA", "OU Video"]);
        let status = if self.rng.permille(100) {
            self.rng.pick(&CARRIER_OTHER)
        } else {
            "Operational"
        };
        let id = self.random_id();
        let mut o = Obj::open(b);
        o.f(
            "href",
            format_args!("/tmf-api/serviceInventory/v4/service/{id}"),
        )
        .s("id", &id);
        self.external_key(&mut o, spec);
        o.f("name", format_args!("{sat} {band} {ctype} {dl:.3} MHz"))
            .f(
                "description",
                format_args!(
                    "{ctype} carrier for {customer} via {sat}, uplink {ul:.3} MHz from {}",
                    tp.0
                ),
            )
            .s("@type", "element");
        self.status(&mut o, status);
        let created = self.anchor_ms - self.rng.range(60 * D, 6 * 365 * D);
        self.date(&mut o, "creationDate", created);
        let updated = self.last_update(&mut o, fresh);
        let freq = |rng: &mut Rng, f: f64| -> Cv {
            if rng.below(4) == 0 {
                Cv::S(format!("{f:.3}"))
            } else {
                Cv::F(f)
            }
        };
        let ulv = freq(&mut self.rng, ul);
        let dlv = freq(&mut self.rng, dl);
        let chars = vec![
            ("ElementType", Cv::from("Carrier")),
            ("type", Cv::from(ctype)),
            (
                "Uplink Alias",
                Cv::S(format!("{}-{sat_code}-UL-{n:04}", tp.1)),
            ),
            (
                "Downlink Alias",
                Cv::S(format!("{sat_code}-{}-DL-{n:04}", tp.1)),
            ),
            ("Uplink RF Centre Frequency (MHz)", ulv),
            ("Downlink RF Centre Frequency (MHz)", dlv),
            (
                "Symbol Rate (ksps)",
                Cv::I(1000 * (1 + self.rng.below(45)) as u64),
            ),
            (
                "Polarisation",
                Cv::from(self.rng.pick(&["H", "V", "RHCP", "LHCP"])),
            ),
        ];
        self.characteristics(&mut o, "serviceCharacteristic", chars);
        let k = 1 + self.rng.below(2);
        o.arr("supportingService", |a| {
            for _ in 0..k {
                let s = self.rng.below(self.sizes[0].max(1)) as u64;
                a.obj(|o| {
                    o.s("id", &key_for(Inventory::Services, s))
                        .f("name", format_args!("{customer} service on {sat}"))
                        .s("@referredType", "Service");
                });
            }
        });
        if self.rng.permille(700) {
            self.related_parties(&mut o, cust);
        }
        if self.rng.below(2) == 0 {
            self.teleport_place(&mut o, tp);
        }
        o.close();
        (updated, true)
    }

    fn resource(&mut self, b: &mut String, spec: KeySpec, fresh: bool) -> (Option<i64>, bool) {
        let excluded = (self.rng.permille(self.mix.not_kept_permille) || self.force_not_kept)
            && !self.force_kept;
        let rtype = if excluded {
            self.rng.pick(&EXCLUDED_TYPES)
        } else {
            self.rng.pick(&KEPT_TYPES)
        };
        let (sat, sat_code, pos, bands) = self.rng.pick(&SATELLITES);
        let band = self.rng.pick(bands);
        let tp = self.rng.pick(&TELEPORTS);
        let (tp_name, tpc, _) = tp;
        let n = self.rng.below(100);
        let mut o = Obj::open(b);
        match spec {
            KeySpec::Serial(s) => {
                let id = key_for(Inventory::Resources, s);
                o.f(
                    "href",
                    format_args!("/tmf-api/resourceInventory/v4/resource/{id}"),
                )
                .s("id", &id);
            }
            KeySpec::Empty(v) => match v % 3 {
                0 => {}
                1 => {
                    o.s("id", "");
                }
                _ => {
                    o.raw("id", "null");
                }
            },
        }
        let (name, category, chars): (String, &str, Vec<(&str, Cv)>) = match rtype {
            "Satellite" => (
                sat.to_owned(),
                "Space segment",
                vec![
                    ("orbitalPosition", pos.into()),
                    ("bands", bands.join(",").into()),
                ],
            ),
            "Transponder" => (
                format!("{sat} {band} TP {n}"),
                "Space segment",
                vec![
                    ("band", band.into()),
                    ("bandwidthMHz", Cv::I(self.rng.pick(&[36, 54, 72, 250]))),
                    ("polarisation", self.rng.pick(&["H", "V", "RHCP"]).into()),
                ],
            ),
            "Antenna" => {
                let diam = self.rng.pick(&[4.5f64, 7.3, 9.3, 13.0]);
                (
                    format!("{tp_name} {tpc}-ANT-{n:02} {diam}m {band}"),
                    "Ground segment",
                    vec![("diameterM", Cv::F(diam)), ("band", band.into())],
                )
            }
            "Modem" => {
                let model = self.rng.pick(&MODEMS);
                (
                    format!("{model} {tpc}-MDM-{:04}", self.rng.below(10_000)),
                    "Ground segment",
                    vec![
                        ("model", model.into()),
                        (
                            "managementIp",
                            Cv::S(format!(
                                "10.{}.{}.{}",
                                n,
                                self.rng.below(256),
                                self.rng.below(254) + 1
                            )),
                        ),
                    ],
                )
            }
            "LogicalResource" => {
                let vlan = 100 + self.rng.below(3900) as u64;
                (
                    format!("VLAN {vlan} {tp_name}"),
                    "Network",
                    vec![("vlanId", Cv::I(vlan)), ("site", tpc.into())],
                )
            }
            "PhysicalResource" => (
                format!("HPA 750W {tpc}-HPA-{n:02}"),
                "Ground segment",
                vec![("vendor", "CPI".into()), ("powerW", Cv::I(750))],
            ),
            "BandwidthSegment" => (
                format!("{sat} {band} segment {n} ({} MHz)", 1 + self.rng.below(36)),
                "Space segment",
                vec![("band", band.into())],
            ),
            "Multicast" => (
                format!(
                    "MC 239.{}.{}.{}",
                    n,
                    self.rng.below(256),
                    self.rng.below(256)
                ),
                "Network",
                vec![],
            ),
            "LogicalPort" => (
                format!("ge-0/0/{}.{}", n % 48, 100 + self.rng.below(3900)),
                "Network",
                vec![],
            ),
            "Circuit" => (
                format!("CKT-{tpc}-{sat_code}-{:05}", self.rng.below(100_000)),
                "Network",
                vec![],
            ),
            other => (
                format!("{tpc}-CH{:02} {other} {n}", self.rng.below(20)),
                "Ground segment",
                vec![],
            ),
        };
        let pad = self.padding();
        o.s("name", &name)
            .f(
                "description",
                format_args!("{rtype} at {tp_name} teleport for {sat}{pad}"),
            )
            .s("@type", &self.spelled(rtype))
            .s("category", category);
        let rs = self.rng.pick(&RESOURCE_STATUS);
        match self.rng.below(4) {
            0 | 1 => {
                o.s("status", "Operational");
            }
            2 => {
                o.s("operationalState", "enable")
                    .s("administrativeState", "unlocked");
            }
            _ => {
                if self.rng.below(2) == 0 {
                    o.s("state", "Operational");
                } else {
                    o.s("operatingStatus", "Operational");
                }
            }
        }
        o.s("resourceStatus", rs).obj("resourceSpecification", |o| {
            o.f("id", format_args!("RSPEC-{rtype}"))
                .f("name", format_args!("{rtype} specification"))
                .s("version", "2.1");
        });
        if !chars.is_empty() {
            self.characteristics(&mut o, "resourceCharacteristic", chars);
        }
        if self.rng.permille(400) {
            let cust = self.rng.below(CUSTOMERS.len());
            self.related_parties(&mut o, cust);
        }
        if matches!(rtype, "Satellite" | "Transponder" | "BandwidthSegment") {
            self.place(
                &mut o,
                format_args!("ORBIT-{pos}"),
                format_args!("Orbital slot {pos}"),
                "orbitalPosition",
            );
        } else {
            self.teleport_place(&mut o, tp);
        }
        if self.next_serial > 0 && self.rng.permille(600) {
            let v5 = self.v5();
            let k = 1 + self.rng.below(2);
            o.arr("resourceRelationship", |a| {
                for _ in 0..k {
                    let target = key_for(
                        Inventory::Resources,
                        self.rng.below(self.next_serial as usize) as u64,
                    );
                    let rt = self.rng.pick(&["isContainedIn", "dependsOn", "contains"]);
                    a.obj(|o| {
                        o.s("relationshipType", rt);
                        if v5 {
                            o.obj("resource", |o| {
                                o.s("id", &target).s("@referredType", "Resource");
                            });
                        } else {
                            o.s("id", &target);
                        }
                    });
                }
            });
        }
        let updated = self.last_update(&mut o, fresh);
        o.close();
        (updated, !excluded)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The documented key rule, independently of the daemon: `id` for resources, `externalId`
    /// (else the v5 `externalIdentifier[0].id`) for services and carriers; empty is no key.
    pub(crate) fn reference_key(inv: Inventory, item: &Value) -> Option<&str> {
        let key = match inv {
            Inventory::Resources => item.get("id").and_then(Value::as_str),
            _ => item.get("externalId").and_then(Value::as_str).or_else(|| {
                item.pointer("/externalIdentifier/0/id")
                    .and_then(Value::as_str)
            }),
        };
        key.filter(|k| !k.is_empty())
    }

    /// The documented keep rule: services `Operational`, resources not of an excluded type,
    /// both ignoring case and surrounding blanks; carriers always.
    pub(crate) fn reference_keep(inv: Inventory, item: &Value) -> bool {
        match inv {
            Inventory::Services => ["status", "state", "operatingStatus"]
                .iter()
                .find_map(|f| item.get(*f).and_then(Value::as_str))
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("Operational")),
            Inventory::Carriers => true,
            Inventory::Resources => {
                let t = item.get("@type").and_then(Value::as_str).unwrap_or("");
                !EXCLUDED_TYPES
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(t.trim()))
            }
        }
    }

    /// The documented rules applied to the JSON, independently of the generator's bookkeeping:
    /// used only to check that the generator's facts match what it actually produced.
    pub(crate) fn reference_facts(inv: Inventory, items: &[Value]) -> Facts {
        let mut facts = Facts::default();
        let mut seen = HashSet::new();
        for item in items {
            let Some(key) = reference_key(inv, item) else {
                facts.empty_keys += 1;
                continue;
            };
            if !seen.insert(key.to_owned()) {
                facts.duplicates += 1;
                continue;
            }
            if reference_keep(inv, item) {
                facts.kept.insert(key.to_owned());
            } else {
                facts.not_kept += 1;
            }
        }
        facts
    }

    const ANCHOR: i64 = 1_750_000_000_000;

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let cfg = SimConfig::default();
        for inv in Inventory::ALL {
            let a = Dataset::generate(inv, &cfg, ANCHOR).values();
            let b = Dataset::generate(inv, &cfg, ANCHOR).values();
            assert_eq!(a, b, "{inv}");
            assert_eq!(a.len(), cfg.count(inv));
            let other = SimConfig {
                seed: 2,
                ..SimConfig::default()
            };
            assert_ne!(a, Dataset::generate(inv, &other, ANCHOR).values(), "{inv}");
        }
    }

    #[test]
    fn facts_match_the_rules_and_include_every_anomaly() {
        let cfg = SimConfig::default();
        for inv in Inventory::ALL {
            let ds = Dataset::generate(inv, &cfg, ANCHOR);
            let facts = ds.facts().unwrap();
            assert_eq!(facts, reference_facts(inv, &ds.values()), "{inv}");
            assert_eq!(
                facts.kept.len() + facts.empty_keys + facts.duplicates + facts.not_kept,
                ds.items.len()
            );
            assert!(facts.empty_keys > 0, "{inv}: {facts:?}");
            assert!(facts.duplicates > 0, "{inv}: {facts:?}");
            match inv {
                Inventory::Carriers => assert_eq!(facts.not_kept, 0),
                _ => assert!(facts.not_kept > 0, "{inv}"),
            }
        }
    }

    /// The mix moves what it says and keeps the facts true: the share the rules drop, the
    /// share of v5 keys, the size of items.
    #[test]
    fn a_mix_shapes_the_data_and_the_facts_stay_true() {
        let count = |cfg: &SimConfig, inv: Inventory| {
            let ds = Dataset::generate(inv, cfg, ANCHOR);
            let facts = ds.facts().unwrap();
            assert_eq!(
                facts,
                reference_facts(inv, &ds.values()),
                "{inv} {:?}",
                cfg.mix
            );
            let values = ds.values();
            let v5_keys = values
                .iter()
                .filter(|v| v.get("externalIdentifier").is_some())
                .count();
            let bytes: usize = values.iter().map(|v| v.to_string().len()).sum();
            (facts.not_kept, v5_keys, bytes / values.len())
        };
        let sized = |mix: crate::Mix| SimConfig {
            services: 2000,
            resources: 2000,
            mix,
            ..SimConfig::default()
        };
        let default = sized(crate::Mix::default());
        let dropping = sized(crate::Mix {
            not_kept_permille: 400,
            ..crate::Mix::default()
        });
        let (dropped, ..) = count(&dropping, Inventory::Services);
        let (usual, ..) = count(&default, Inventory::Services);
        assert!(dropped > 600 && usual < 200, "{dropped} vs {usual}");
        let (dropped, ..) = count(&dropping, Inventory::Resources);
        assert!(dropped > 600, "{dropped}");
        let (_, all_v5, _) = count(
            &sized(crate::Mix {
                v5_permille: 1000,
                ..crate::Mix::default()
            }),
            Inventory::Services,
        );
        let (_, no_v5, _) = count(
            &sized(crate::Mix {
                v5_permille: 0,
                ..crate::Mix::default()
            }),
            Inventory::Services,
        );
        // Keys of the empty-key anomaly keep their own shapes.
        assert!(all_v5 > 1800 && no_v5 < 100, "{all_v5} vs {no_v5}");
        let (.., plain) = count(&default, Inventory::Resources);
        let (.., padded) = count(
            &sized(crate::Mix {
                pad_bytes: 2000,
                ..crate::Mix::default()
            }),
            Inventory::Resources,
        );
        assert!(padded > plain + 1900, "{padded} vs {plain}");
    }

    #[test]
    fn small_datasets_still_hold_every_anomaly() {
        for seed in 0..20 {
            for size in [8, 13, 40] {
                let cfg = SimConfig {
                    seed,
                    services: size,
                    carriers: size,
                    resources: size,
                    ..SimConfig::default()
                };
                for inv in Inventory::ALL {
                    let ds = Dataset::generate(inv, &cfg, ANCHOR);
                    let f = ds.facts().unwrap();
                    assert_eq!(f, reference_facts(inv, &ds.values()));
                    let dropped = inv == Inventory::Carriers || f.not_kept > 0;
                    assert!(
                        f.empty_keys > 0 && f.duplicates > 0 && dropped,
                        "{seed} {size} {inv}: {f:?}"
                    );
                }
            }
        }
    }

    /// The spellings and the planted duplicate the daemon must cope with are really there.
    #[test]
    fn spellings_vary_and_a_not_kept_first_occurrence_has_a_kept_copy() {
        for inv in [Inventory::Services, Inventory::Resources] {
            for size in [8, 40, 400] {
                let cfg = SimConfig {
                    services: size,
                    resources: size,
                    ..SimConfig::default()
                };
                let values = Dataset::generate(inv, &cfg, ANCHOR).values();
                let judged: Vec<(&str, bool)> = values
                    .iter()
                    .filter_map(|v| Some((reference_key(inv, v)?, reference_keep(inv, v))))
                    .collect();
                let planted = judged.iter().enumerate().any(|(i, (k, kept))| {
                    !kept && judged[i + 1..].iter().any(|(k2, kept2)| k2 == k && *kept2)
                });
                assert!(
                    planted,
                    "{inv} {size}: no kept copy after a not-kept first occurrence"
                );
            }
        }
        let cfg = SimConfig::default();
        let services = Dataset::generate(Inventory::Services, &cfg, ANCHOR).values();
        let statuses: Vec<&str> = services
            .iter()
            .filter_map(|v| {
                ["status", "state", "operatingStatus"]
                    .iter()
                    .find_map(|f| v.get(*f).and_then(Value::as_str))
            })
            .collect();
        assert!(statuses.contains(&"OPERATIONAL") || statuses.contains(&"operational"));
        assert!(statuses.contains(&" Operational "), "{statuses:?}");
        let resources = Dataset::generate(Inventory::Resources, &cfg, ANCHOR).values();
        let odd_types = resources
            .iter()
            .filter_map(|v| v.get("@type").and_then(Value::as_str))
            .filter(|t| !KEPT_TYPES.contains(t) && !EXCLUDED_TYPES.contains(t))
            .count();
        assert!(odd_types > 5, "{odd_types}");
    }

    #[test]
    fn duplicates_differ_in_content() {
        let ds = Dataset::generate(Inventory::Services, &SimConfig::default(), ANCHOR);
        let mut first: HashMap<&str, &str> = HashMap::new();
        let mut dups = 0;
        for it in &ds.items {
            if let Some(k) = it.key.as_deref()
                && let Some(prev) = first.insert(k, &it.json)
            {
                assert_ne!(prev, &*it.json);
                dups += 1;
            }
        }
        assert!(dups > 0);
    }

    #[test]
    fn shapes_are_mixed() {
        let cfg = SimConfig::default();
        let services = Dataset::generate(Inventory::Services, &cfg, ANCHOR).values();
        let count = |f: &dyn Fn(&Value) -> bool| services.iter().filter(|v| f(v)).count();
        assert!(count(&|v| v.get("externalId").is_some()) > 50);
        assert!(count(&|v| v.get("externalIdentifier").is_some()) > 50);
        assert!(count(&|v| v.pointer("/relatedParty/0/partyOrPartyRole").is_some()) > 30);
        assert!(count(&|v| v.pointer("/relatedParty/0/role").is_some()) > 30);
        assert!(count(&|v| v.get("place").is_some_and(Value::is_object)) > 30);
        assert!(count(&|v| v.pointer("/place/0/place").is_some()) > 30);
        assert!(count(&|v| v.pointer("/place/0/name").is_some()) > 30);
        assert!(count(&|v| v.get("status").is_none() && v.get("state").is_some()) > 10);
        assert!(count(&|v| v.get("operatingStatus").is_some()) > 10);
        assert!(count(&|v| v.get("lastUpdateDate").is_some()) > 10);
        let dates: Vec<&str> = services
            .iter()
            .filter_map(|v| v.get("startDate").and_then(Value::as_str))
            .collect();
        assert!(dates.iter().any(|d| d.ends_with('Z') && d.contains('.')));
        assert!(
            dates
                .iter()
                .any(|d| d.ends_with("+01:00") && !d.contains('.'))
        );
        assert!(dates.iter().all(|d| parse_ts(d).is_some()));

        let resources = Dataset::generate(Inventory::Resources, &cfg, ANCHOR).values();
        let types: HashSet<&str> = resources
            .iter()
            .filter_map(|v| v.get("@type").and_then(Value::as_str))
            .collect();
        for t in KEPT_TYPES {
            assert!(types.contains(t), "{t}");
        }
        assert!(
            resources
                .iter()
                .any(|v| v.pointer("/resourceRelationship/0/resource/id").is_some())
        );
        assert!(
            resources
                .iter()
                .any(|v| v.pointer("/resourceRelationship/0/id").is_some())
        );
        let carriers = Dataset::generate(Inventory::Carriers, &cfg, ANCHOR).values();
        assert!(carriers.iter().all(|v| v["@type"] == "element"));
        assert!(
            carriers
                .iter()
                .any(|v| v.pointer("/serviceCharacteristic/0/@type").is_some())
        );
        assert!(carriers.iter().any(|v| {
            v.pointer("/serviceCharacteristic/4/value")
                .is_some_and(Value::is_number)
        }));
    }

    #[test]
    fn mutate_changes_items_and_keeps_facts_true() {
        let cfg = SimConfig::default();
        let now = ANCHOR + 3 * D;
        for inv in Inventory::ALL {
            let mut ds = Dataset::generate(inv, &cfg, ANCHOR);
            let before = ds.values();
            for step in 1..=5 {
                ds.mutate(&cfg, step, now + step as i64);
                assert_eq!(
                    ds.facts().unwrap(),
                    reference_facts(inv, &ds.values()),
                    "{inv} step {step}"
                );
            }
            let after = ds.values();
            assert_ne!(before, after);
            let recent = ds
                .items
                .iter()
                .filter(|i| i.updated.is_some_and(|u| u >= now - 1000))
                .count();
            assert!(recent >= 5 * cfg.count(inv) / 50, "{inv}: {recent}");
            // Same step, same changes.
            let mut again = Dataset::generate(inv, &cfg, ANCHOR);
            for step in 1..=5 {
                again.mutate(&cfg, step, now + step as i64);
            }
            assert_eq!(again.values(), after);
        }
    }

    #[test]
    fn mutate_with_resort_moves_updated_items_to_the_end() {
        let cfg = SimConfig {
            resort_on_update: true,
            ..SimConfig::default()
        };
        for inv in Inventory::ALL {
            let mut ds = Dataset::generate(inv, &cfg, ANCHOR);
            let before: Vec<Box<str>> = ds.items.iter().map(|i| i.json.clone()).collect();
            ds.mutate(&cfg, 1, ANCHOR + D);
            // Unchanged items first, in their old order; then the updated and the new ones.
            let changed_from = ds
                .items
                .iter()
                .position(|i| !before.contains(&i.json))
                .unwrap();
            assert!(
                ds.items[changed_from..]
                    .iter()
                    .all(|i| !before.contains(&i.json)),
                "{inv}"
            );
            let stayed: Vec<&Box<str>> = ds.items[..changed_from].iter().map(|i| &i.json).collect();
            let old_order: Vec<&Box<str>> = before.iter().filter(|j| stayed.contains(j)).collect();
            assert_eq!(stayed, old_order, "{inv}");
            let n = cfg.count(inv);
            assert!(ds.items.len() - changed_from > n.div_ceil(100), "{inv}");
            assert_eq!(
                ds.facts().unwrap(),
                reference_facts(inv, &ds.values()),
                "{inv}"
            );
        }
    }

    #[test]
    fn edits_delete_then_insert_then_update() {
        let ts = fmt_ts(ANCHOR, 0);
        let mut ds = Dataset::from_values(
            Inventory::Services,
            vec![
                json!({"externalId": "a", "name": "A", "lastUpdate": ts}),
                json!({"externalId": "b", "name": "B"}),
                json!({"externalId": "c", "name": "C #rev7", "lastUpdateDate": ts}),
                json!({"externalId": "b", "name": "B2"}),
                json!({"id": "d"}),
            ],
        );
        let edit = Edit {
            delete: vec!["b".into(), "unknown".into()],
            insert: vec![
                (1, r#"{"externalId":"n","name":"N"}"#.into()),
                (99, r#"{"externalId":"m"}"#.into()),
            ],
            update: vec!["c".into(), "n".into(), "b".into()],
        };
        ds.edit(&edit, false, ANCHOR + D).unwrap();
        let v = ds.values();
        let keys: Vec<Option<&str>> = v
            .iter()
            .map(|i| reference_key(Inventory::Services, i))
            .collect();
        assert_eq!(keys, [Some("a"), Some("n"), Some("c"), None, Some("m")]);
        assert_eq!(v[2]["name"], "C #rev1");
        assert_eq!(v[2]["lastUpdateDate"], fmt_ts(ANCHOR + D, 1));
        assert!(v[2].get("lastUpdate").is_none());
        assert_eq!(v[1]["name"], "N #rev2");
        assert_eq!(v[1]["lastUpdate"], fmt_ts(ANCHOR + D, 1));
        assert_eq!(ds.items[1].updated, Some(ANCHOR + D));
        assert_eq!(v[0]["lastUpdate"], ts);
        // With resort, updated items go to the end in the order they were updated.
        let edit = Edit {
            update: vec!["a".into(), "n".into()],
            ..Edit::default()
        };
        ds.edit(&edit, true, ANCHOR + D).unwrap();
        let v = ds.values();
        let order: Vec<Option<&str>> = v
            .iter()
            .map(|i| reference_key(Inventory::Services, i))
            .collect();
        assert_eq!(order, [Some("c"), None, Some("m"), Some("a"), Some("n")]);
        assert_eq!(v[3]["name"], "A #rev3");
        assert_eq!(v[4]["name"], "N #rev4");
        // A bad insert changes nothing.
        let bad = Edit {
            delete: vec!["a".into()],
            insert: vec![(0, "not json".into())],
            ..Edit::default()
        };
        let e = ds.edit(&bad, false, ANCHOR).unwrap_err();
        assert!(e.contains("not json"), "{e}");
        assert_eq!(ds.values(), v);
    }

    #[test]
    fn keys_are_the_generators_else_the_top_level_field() {
        let cfg = SimConfig::default();
        for inv in Inventory::ALL {
            let mut ds = Dataset::generate(inv, &cfg, ANCHOR);
            for item in &ds.items {
                let v: Value = serde_json::from_str(&item.json).unwrap();
                assert_eq!(
                    key_of(item, inv).as_deref(),
                    reference_key(inv, &v),
                    "{inv}"
                );
            }
            // Found by key, or by the top-level `id` when it is not the key.
            let k = key_of(&ds.items[5], inv).unwrap();
            assert_eq!(ds.find(&k), Some(&*ds.items[5].json));
            let v: Value = serde_json::from_str(&ds.items[6].json).unwrap();
            if let Some(id) = v["id"].as_str() {
                assert_eq!(ds.find(id), Some(&*ds.items[6].json));
            }
            assert_eq!(ds.find("SES-SVC-"), None);
            // Deleting and updating keep the facts; inserting makes them unknown.
            let edit = Edit {
                delete: vec![k.clone()],
                update: vec![key_of(&ds.items[9], inv).unwrap()],
                ..Edit::default()
            };
            ds.edit(&edit, true, ANCHOR + D).unwrap();
            assert_eq!(
                ds.facts().unwrap(),
                reference_facts(inv, &ds.values()),
                "{inv}"
            );
            assert_eq!(ds.find(&k), None);
            let edit = Edit {
                insert: vec![(0, r#"{"id":"x","externalId":"x"}"#.into())],
                ..Edit::default()
            };
            ds.edit(&edit, false, ANCHOR).unwrap();
            assert!(ds.facts().is_none());
            assert_eq!(ds.find("x"), Some(r#"{"id":"x","externalId":"x"}"#));
        }
    }

    #[test]
    fn pages_slice_and_filter() {
        let ds = Dataset::from_values(
            Inventory::Services,
            (0..5)
                .map(|i| json!({"externalId": format!("k{i}"), "lastUpdate": fmt_ts(ANCHOR - i * D, i as usize)}))
                .collect(),
        );
        let (body, total, count) = ds.render_page(None, 1, 2, usize::MAX, None, false);
        assert_eq!((total, count), (5, 2));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["externalId"], "k2");
        let (body, _, count) = ds.render_page(None, 3, 2, usize::MAX, Some("result"), true);
        assert_eq!((body.as_str(), count), ("{\"result\":[42]}", 0));
        let (_, total, count) =
            ds.render_page(Some(ANCHOR - D - 1), 0, 40, usize::MAX, None, false);
        assert_eq!((total, count), (2, 2));
        // Cut short: the first item of the page only, the total unchanged.
        let (body, total, count) = ds.render_page(None, 1, 2, 1, None, false);
        assert_eq!((total, count), (5, 1));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["externalId"], "k2");
        assert!(ds.facts().is_none());
    }

    #[test]
    fn writer_escapes_strings() {
        let mut b = String::new();
        let mut o = Obj::open(&mut b);
        let tricky = "a \"quoted\" back\\slash\nnew line \u{1} °Ö";
        o.s("v", tricky).raw("n", "null").arr("a", |a| {
            a.obj(|o| {
                o.f("x", format_args!("{}", 1.5));
            })
        });
        o.close();
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v, json!({"v": tricky, "n": null, "a": [{"x": "1.5"}]}));
    }

    #[test]
    fn dates_round_trip_in_every_style() {
        let ms = 1_750_000_123_456;
        assert_eq!(fmt_ts(ms, 0), "2025-06-15T15:08:43Z");
        assert_eq!(fmt_ts(ms, 1), "2025-06-15T15:08:43.456Z");
        assert_eq!(fmt_ts(ms, 2), "2025-06-15T16:08:43+01:00");
        assert_eq!(fmt_ts(ms, 3), "2025-06-15T16:08:43.456+01:00");
        for style in 0..4 {
            let back = parse_ts(&fmt_ts(ms, style)).unwrap();
            assert_eq!(back, if style % 2 == 1 { ms } else { ms - 456 });
        }
        assert_eq!(parse_ts("2025-06-15 15:08:43"), Some(1_750_000_123_000));
        assert_eq!(parse_ts("yesterday"), None);
    }

    #[test]
    fn rng_is_splitmix64() {
        // First output of SplitMix64 seeded with 0 (reference value).
        assert_eq!(Rng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}

//! Deterministic data generator: SES-like services, carriers and resources in a mix of TMF v4
//! and v5 shapes, with the anomalies the daemon must cope with, and the ground truth ([`Facts`])
//! recorded while generating.
//!
//! The generator never reads its own JSON back to decide what a cache should hold. Each stored
//! item carries the key and the "keepable" verdict the generator *chose* when it built the item;
//! [`Dataset::facts`] folds those choices with the documented rules (first occurrence wins,
//! empty keys skipped). To keep that fold unambiguous, a duplicate only ever repeats the key of a
//! keepable first occurrence, each key is duplicated at most once, and [`Dataset::mutate`] only
//! changes the status of items whose key is not duplicated.
//!
//! Items are stored as compact JSON text rather than `serde_json::Value`: a `Value` tree costs
//! several times the memory of its text, and a million items must fit comfortably. Pages are
//! served by joining the stored text, so serving is a copy, not a serialization.

use super::SimConfig;
use crate::Inventory;
use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};

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
    let utc = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let cet = FixedOffset::east_opt(3600).expect("valid offset");
    match style % 4 {
        0 => utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        1 => utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        2 => utc
            .with_timezone(&cet)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        _ => utc
            .with_timezone(&cet)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
    }
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

/// One inventory's items, in the order the upstream lists them.
#[derive(Debug)]
pub(crate) struct Dataset {
    pub(crate) inventory: Inventory,
    pub(crate) items: Vec<StoredItem>,
    /// False once a test replaced the items with `set_items`: facts are then unknown.
    pub(crate) generated: bool,
    next_serial: u64,
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
        };
        // Serials of keepable first occurrences that may still be duplicated (each at most once).
        let mut pool: Vec<u64> = Vec::new();
        let mut items = Vec::with_capacity(count);
        // Each anomaly is random at a few percent, and forced once at a fixed position if the
        // dice have not produced it by then, so even small datasets contain every kind.
        let (mut empties, mut dups, mut dropped) = (0, 0, 0);
        for i in 0..count {
            let r = g.rng.below(1000);
            let force = |at: usize, seen: usize| count >= 8 && i == count * at / 8 && seen == 0;
            g.force_not_kept = force(3, dropped) && inv != Inventory::Carriers;
            let want_empty = force(2, empties);
            let want_dup = force(5, dups) && !pool.is_empty();
            let random = !g.force_not_kept && !want_empty && !want_dup;
            let (spec, fresh_serial) = if want_empty || (random && r < 25) {
                empties += 1;
                (KeySpec::Empty(g.rng.below(5)), None)
            } else if want_dup || (random && r < 50 && !pool.is_empty()) {
                dups += 1;
                let i = g.rng.below(pool.len());
                (KeySpec::Serial(pool.swap_remove(i)), None)
            } else {
                let s = g.next_serial;
                g.next_serial += 1;
                (KeySpec::Serial(s), Some(s))
            };
            let (m, keep) = g.item(spec, false);
            if let (Some(s), true) = (fresh_serial, keep) {
                pool.push(s);
            }
            if fresh_serial.is_some() && !keep {
                dropped += 1;
            }
            items.push(StoredItem::new(m, g.key_string(spec), keep));
        }
        Dataset {
            inventory: inv,
            items,
            generated: true,
            next_serial: g.next_serial,
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
    /// `since` (epoch ms) keeps only items updated at or after it; `extra_element` appends a
    /// bare `42` to the array.
    pub(crate) fn render_page(
        &self,
        since: Option<i64>,
        index: usize,
        size: usize,
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
        for _ in 0..updates {
            let i = g.rng.below(n);
            let unique = self.items[i]
                .key
                .as_ref()
                .is_none_or(|k| !dup_keys.contains(k));
            update_item(&mut self.items[i], &mut g, unique, step, now_ms);
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
            let (m, keep) = g.item(spec, true);
            self.items
                .push(StoredItem::new(m, g.key_string(spec), keep));
        }
        self.next_serial = g.next_serial;
    }
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
        let new = match g.inv {
            Inventory::Services if current == "Operational" => g.rng.pick(&NON_OPERATIONAL),
            Inventory::Carriers if current == "Operational" => g.rng.pick(&CARRIER_OTHER),
            Inventory::Services | Inventory::Carriers => "Operational",
            Inventory::Resources if current == "available" => "suspended",
            Inventory::Resources => "available",
        };
        m.insert(field.into(), new.into());
        if g.inv == Inventory::Services {
            item.keep = new == "Operational";
        }
    } else {
        let old = m.get("name").and_then(Value::as_str).unwrap_or("Unnamed");
        let base = old.split(" #rev").next().unwrap_or(old);
        m.insert("name".into(), format!("{base} #rev{step}").into());
    }
    let field = if m.contains_key("lastUpdateDate") && !m.contains_key("lastUpdate") {
        "lastUpdateDate"
    } else {
        "lastUpdate"
    };
    m.insert(field.into(), fmt_ts(now_ms, 1).into());
    *item = StoredItem::new(m, item.key.take().map(String::from), item.keep);
}

fn ins(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>) {
    m.insert(k.to_owned(), v.into());
}

impl Gen {
    fn key_string(&self, spec: KeySpec) -> Option<String> {
        match spec {
            KeySpec::Serial(s) => Some(key_for(self.inv, s)),
            KeySpec::Empty(_) => None,
        }
    }

    fn item(&mut self, spec: KeySpec, fresh: bool) -> (Map<String, Value>, bool) {
        match self.inv {
            Inventory::Services => self.service(spec, fresh),
            Inventory::Carriers => self.carrier(spec, fresh),
            Inventory::Resources => self.resource(spec, fresh),
        }
    }

    fn random_id(&mut self) -> String {
        format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64())
    }

    fn date(&mut self, ms: i64) -> String {
        let style = self.rng.below(4);
        fmt_ts(ms, style)
    }

    /// `externalId` (v4) or `externalIdentifier` (v5), or one of the empty-key shapes.
    fn external_key(&mut self, m: &mut Map<String, Value>, spec: KeySpec) {
        match spec {
            KeySpec::Serial(s) => {
                let key = key_for(self.inv, s);
                if self.rng.below(2) == 0 {
                    ins(m, "externalId", key);
                } else {
                    let mut ids = vec![
                        json!({"id": key, "owner": "ServiceNow", "externalIdentifierType": "number"}),
                    ];
                    if self.rng.permille(300) {
                        ids.push(json!({"id": format!("DM-{}", self.rng.below(1_000_000)), "owner": "DataMiner"}));
                    }
                    ins(m, "externalIdentifier", ids);
                }
            }
            KeySpec::Empty(v) => match v % 5 {
                0 => {}
                1 => ins(m, "externalId", ""),
                2 => ins(m, "externalId", Value::Null),
                3 => ins(m, "externalIdentifier", json!([])),
                _ => ins(
                    m,
                    "externalIdentifier",
                    json!([{"id": "", "owner": "ServiceNow"}]),
                ),
            },
        }
    }

    /// `status` (v4, sometimes with a TMF `state` that must not win), or v5 `state` and/or
    /// `operatingStatus`.
    fn status(&mut self, m: &mut Map<String, Value>, status: &str) {
        match self.rng.below(10) {
            0..6 => {
                ins(m, "status", status);
                if self.rng.below(3) == 0 {
                    let tmf = if status == "Operational" {
                        "active"
                    } else {
                        "inactive"
                    };
                    ins(m, "state", tmf);
                }
            }
            6 | 7 => ins(m, "state", status),
            8 => ins(m, "operatingStatus", status),
            _ => {
                ins(m, "state", status);
                ins(m, "operatingStatus", "running");
            }
        }
    }

    fn last_update(&mut self, m: &mut Map<String, Value>, fresh: bool) {
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
                let d = self.date(ms);
                ins(m, field, d);
            }
            None => match self.rng.below(3) {
                0 => ins(m, field, Value::Null),
                1 => ins(m, field, ""),
                _ => {}
            },
        }
    }

    fn related_parties(&mut self, customer: usize) -> Value {
        let cust_id = format!("CUST-{:05}", 1000 + customer * 37);
        let role = if self.rng.below(2) == 0 {
            "Customer"
        } else {
            "customer"
        };
        let mut parties = vec![
            (cust_id.as_str(), CUSTOMERS[customer], role),
            ("SES-ORG-0001", "SES S.A.", "Provider"),
        ];
        if self.rng.below(2) == 0 {
            parties.push(("SES-USR-0412", "SES Network Operations Centre", "Operator"));
        }
        if self.rng.below(2) == 0 {
            parties.swap(0, 1);
        }
        let v5 = self.rng.below(2) == 0;
        let list: Vec<Value> = parties
            .into_iter()
            .map(|(id, name, role)| {
                if v5 {
                    json!({"role": role, "partyOrPartyRole": {"id": id, "name": name, "@referredType": "Organization"}, "@type": "RelatedPartyRefOrPartyRoleRef"})
                } else {
                    json!({"id": id, "name": name, "role": role, "@referredType": "Organization"})
                }
            })
            .collect();
        Value::Array(list)
    }

    fn place(&mut self, id: String, name: String, role: &str) -> Value {
        match self.rng.below(3) {
            0 => json!({"id": id, "name": name, "@referredType": "GeographicSite"}),
            1 => json!([{"id": id, "name": name, "role": role}]),
            _ => {
                json!([{"role": role, "place": {"id": id, "name": name, "@referredType": "GeographicSite"}}])
            }
        }
    }

    fn teleport_place(&mut self, tp: Teleport) -> Value {
        let (name, code, country) = tp;
        self.place(
            format!("SITE-{code}"),
            format!("{name} Teleport ({country})"),
            "installationSite",
        )
    }

    fn characteristics(&mut self, chars: Vec<(&str, Value)>) -> Value {
        let v5 = self.rng.below(2) == 0;
        let list = chars
            .into_iter()
            .map(|(name, value)| {
                let (vt, t) = match &value {
                    Value::Number(n) if n.is_i64() || n.is_u64() => {
                        ("integer", "IntegerCharacteristic")
                    }
                    Value::Number(_) => ("number", "NumberCharacteristic"),
                    Value::Bool(_) => ("boolean", "BooleanCharacteristic"),
                    _ => ("string", "StringCharacteristic"),
                };
                if v5 {
                    json!({"name": name, "value": value, "valueType": vt, "@type": t})
                } else {
                    json!({"name": name, "value": value, "valueType": vt})
                }
            })
            .collect();
        Value::Array(list)
    }

    fn service(&mut self, spec: KeySpec, fresh: bool) -> (Map<String, Value>, bool) {
        let (sat, _, pos, bands) = self.rng.pick(&SATELLITES);
        let band = self.rng.pick(bands);
        let tp = self.rng.pick(&TELEPORTS);
        let cust = self.rng.below(CUSTOMERS.len());
        let (spec_id, spec_name) = self.rng.pick(&SERVICE_SPECS);
        let status = if self.rng.permille(50) || self.force_not_kept {
            self.rng.pick(&NON_OPERATIONAL)
        } else {
            "Operational"
        };
        let mut m = Map::new();
        let id = self.random_id();
        ins(
            &mut m,
            "href",
            format!("/tmf-api/serviceInventory/v4/service/{id}"),
        );
        ins(&mut m, "id", id);
        self.external_key(&mut m, spec);
        ins(
            &mut m,
            "name",
            format!("{spec_name} {sat} {band}-band - {}", CUSTOMERS[cust]),
        );
        ins(
            &mut m,
            "description",
            format!(
                "{spec_name} for {} on {sat} ({pos}), {band}-band, uplinked from {} teleport",
                CUSTOMERS[cust], tp.0
            ),
        );
        if self.rng.below(2) == 0 {
            ins(&mut m, "@type", "Service");
        }
        ins(&mut m, "category", "CFS");
        self.status(&mut m, status);
        let start = self.anchor_ms - self.rng.range(30 * D, 5 * 365 * D);
        let d = self.date(start);
        ins(&mut m, "startDate", d);
        if status != "Operational" || self.rng.permille(250) {
            let end = if status == "Terminated" {
                start + self.rng.range(D, 20 * D)
            } else {
                self.anchor_ms + self.rng.range(30 * D, 3 * 365 * D)
            };
            let d = self.date(end);
            ins(&mut m, "endDate", d);
        }
        self.last_update(&mut m, fresh);
        let parties = self.related_parties(cust);
        ins(&mut m, "relatedParty", parties);
        let place = self.teleport_place(tp);
        ins(&mut m, "place", place);
        ins(
            &mut m,
            "serviceSpecification",
            json!({"id": spec_id, "name": spec_name, "version": "1.0"}),
        );
        let n = 1 + self.rng.below(3);
        let supporting: Vec<Value> = (0..n)
            .map(|_| {
                let r = self.rng.below(self.sizes[2].max(1)) as u64;
                let kind = self.rng.pick(&["Modem", "Antenna", "Transponder"]);
                json!({"id": key_for(Inventory::Resources, r), "name": format!("{} {kind}", tp.0), "@referredType": kind})
            })
            .collect();
        ins(&mut m, "supportingResource", supporting);
        (m, status == "Operational")
    }

    fn carrier(&mut self, spec: KeySpec, fresh: bool) -> (Map<String, Value>, bool) {
        let (sat, sat_code, _, bands) = self.rng.pick(&SATELLITES);
        let band = self.rng.pick(bands);
        let tp = self.rng.pick(&TELEPORTS);
        let cust = self.rng.below(CUSTOMERS.len());
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
        let mut m = Map::new();
        let id = self.random_id();
        ins(
            &mut m,
            "href",
            format!("/tmf-api/serviceInventory/v4/service/{id}"),
        );
        ins(&mut m, "id", id);
        self.external_key(&mut m, spec);
        ins(&mut m, "name", format!("{sat} {band} {ctype} {dl:.3} MHz"));
        ins(
            &mut m,
            "description",
            format!(
                "{ctype} carrier for {} via {sat}, uplink {ul:.3} MHz from {}",
                CUSTOMERS[cust], tp.0
            ),
        );
        ins(&mut m, "@type", "element");
        self.status(&mut m, status);
        let created = self.anchor_ms - self.rng.range(60 * D, 6 * 365 * D);
        let d = self.date(created);
        ins(&mut m, "creationDate", d);
        self.last_update(&mut m, fresh);
        let freq = |rng: &mut Rng, f: f64| -> Value {
            if rng.below(4) == 0 {
                Value::from(format!("{f:.3}"))
            } else {
                Value::from(f)
            }
        };
        let ulv = freq(&mut self.rng, ul);
        let dlv = freq(&mut self.rng, dl);
        let chars = vec![
            ("ElementType", Value::from("Carrier")),
            ("type", Value::from(ctype)),
            (
                "Uplink Alias",
                Value::from(format!("{}-{sat_code}-UL-{n:04}", tp.1)),
            ),
            (
                "Downlink Alias",
                Value::from(format!("{sat_code}-{}-DL-{n:04}", tp.1)),
            ),
            ("Uplink RF Centre Frequency (MHz)", ulv),
            ("Downlink RF Centre Frequency (MHz)", dlv),
            (
                "Symbol Rate (ksps)",
                Value::from(1000 * (1 + self.rng.below(45)) as u64),
            ),
            (
                "Polarisation",
                Value::from(self.rng.pick(&["H", "V", "RHCP", "LHCP"])),
            ),
        ];
        let chars = self.characteristics(chars);
        ins(&mut m, "serviceCharacteristic", chars);
        let k = 1 + self.rng.below(2);
        let supporting: Vec<Value> = (0..k)
            .map(|_| {
                let s = self.rng.below(self.sizes[0].max(1)) as u64;
                json!({"id": key_for(Inventory::Services, s), "name": format!("{} service on {sat}", CUSTOMERS[cust]), "@referredType": "Service"})
            })
            .collect();
        ins(&mut m, "supportingService", supporting);
        if self.rng.permille(700) {
            let parties = self.related_parties(cust);
            ins(&mut m, "relatedParty", parties);
        }
        if self.rng.below(2) == 0 {
            let place = self.teleport_place(tp);
            ins(&mut m, "place", place);
        }
        (m, true)
    }

    fn resource(&mut self, spec: KeySpec, fresh: bool) -> (Map<String, Value>, bool) {
        let excluded = self.rng.permille(50) || self.force_not_kept;
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
        let mut m = Map::new();
        match spec {
            KeySpec::Serial(s) => {
                let id = key_for(Inventory::Resources, s);
                ins(
                    &mut m,
                    "href",
                    format!("/tmf-api/resourceInventory/v4/resource/{id}"),
                );
                ins(&mut m, "id", id);
            }
            KeySpec::Empty(v) => match v % 3 {
                0 => {}
                1 => ins(&mut m, "id", ""),
                _ => ins(&mut m, "id", Value::Null),
            },
        }
        let (name, category, chars): (String, &str, Vec<(&str, Value)>) = match rtype {
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
                    ("bandwidthMHz", self.rng.pick(&[36u64, 54, 72, 250]).into()),
                    ("polarisation", self.rng.pick(&["H", "V", "RHCP"]).into()),
                ],
            ),
            "Antenna" => {
                let diam = self.rng.pick(&[4.5f64, 7.3, 9.3, 13.0]);
                (
                    format!("{tp_name} {tpc}-ANT-{n:02} {diam}m {band}"),
                    "Ground segment",
                    vec![("diameterM", diam.into()), ("band", band.into())],
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
                            format!(
                                "10.{}.{}.{}",
                                n,
                                self.rng.below(256),
                                self.rng.below(254) + 1
                            )
                            .into(),
                        ),
                    ],
                )
            }
            "LogicalResource" => {
                let vlan = 100 + self.rng.below(3900) as u64;
                (
                    format!("VLAN {vlan} {tp_name}"),
                    "Network",
                    vec![("vlanId", vlan.into()), ("site", tpc.into())],
                )
            }
            "PhysicalResource" => (
                format!("HPA 750W {tpc}-HPA-{n:02}"),
                "Ground segment",
                vec![("vendor", "CPI".into()), ("powerW", 750u64.into())],
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
        ins(&mut m, "name", name);
        ins(
            &mut m,
            "description",
            format!("{rtype} at {tp_name} teleport for {sat}"),
        );
        ins(&mut m, "@type", rtype);
        ins(&mut m, "category", category);
        let rs = self.rng.pick(&RESOURCE_STATUS);
        match self.rng.below(4) {
            0 | 1 => ins(&mut m, "status", "Operational"),
            2 => {
                ins(&mut m, "operationalState", "enable");
                ins(&mut m, "administrativeState", "unlocked");
            }
            _ => {
                if self.rng.below(2) == 0 {
                    ins(&mut m, "state", "Operational");
                } else {
                    ins(&mut m, "operatingStatus", "Operational");
                }
            }
        }
        ins(&mut m, "resourceStatus", rs);
        ins(
            &mut m,
            "resourceSpecification",
            json!({"id": format!("RSPEC-{rtype}"), "name": format!("{rtype} specification"), "version": "2.1"}),
        );
        if !chars.is_empty() {
            let chars = self.characteristics(chars);
            ins(&mut m, "resourceCharacteristic", chars);
        }
        if self.rng.permille(400) {
            let cust = self.rng.below(CUSTOMERS.len());
            let parties = self.related_parties(cust);
            ins(&mut m, "relatedParty", parties);
        }
        let place = if matches!(rtype, "Satellite" | "Transponder" | "BandwidthSegment") {
            self.place(
                format!("ORBIT-{pos}"),
                format!("Orbital slot {pos}"),
                "orbitalPosition",
            )
        } else {
            self.teleport_place(tp)
        };
        ins(&mut m, "place", place);
        if self.next_serial > 0 && self.rng.permille(600) {
            let v5 = self.rng.below(2) == 0;
            let k = 1 + self.rng.below(2);
            let rels: Vec<Value> = (0..k)
                .map(|_| {
                    let target = key_for(
                        Inventory::Resources,
                        self.rng.below(self.next_serial as usize) as u64,
                    );
                    let rt = self.rng.pick(&["isContainedIn", "dependsOn", "contains"]);
                    if v5 {
                        json!({"relationshipType": rt, "resource": {"id": target, "@referredType": "Resource"}})
                    } else {
                        json!({"relationshipType": rt, "id": target})
                    }
                })
                .collect();
            ins(&mut m, "resourceRelationship", rels);
        }
        self.last_update(&mut m, fresh);
        (m, !excluded)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The documented rules applied to the JSON, independently of the generator's bookkeeping:
    /// used only to check that the generator's facts match what it actually produced.
    pub(crate) fn reference_facts(inv: Inventory, items: &[Value]) -> Facts {
        let mut facts = Facts::default();
        let mut seen = HashSet::new();
        for item in items {
            let key = match inv {
                Inventory::Resources => item.get("id").and_then(Value::as_str),
                _ => item.get("externalId").and_then(Value::as_str).or_else(|| {
                    item.pointer("/externalIdentifier/0/id")
                        .and_then(Value::as_str)
                }),
            };
            let Some(key) = key.filter(|k| !k.is_empty()) else {
                facts.empty_keys += 1;
                continue;
            };
            if !seen.insert(key.to_owned()) {
                facts.duplicates += 1;
                continue;
            }
            let keep = match inv {
                Inventory::Services => {
                    let s = ["status", "state", "operatingStatus"]
                        .iter()
                        .find_map(|f| item.get(*f).and_then(Value::as_str));
                    s == Some("Operational")
                }
                Inventory::Carriers => true,
                Inventory::Resources => {
                    let t = item.get("@type").and_then(Value::as_str).unwrap_or("");
                    !EXCLUDED_TYPES.contains(&t)
                }
            };
            if keep {
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

    #[test]
    #[ignore = "measurement: cargo test --release --lib -- --ignored --nocapture"]
    fn generate_a_million() {
        let cfg = SimConfig {
            resources: std::env::var("SIM_BENCH_ITEMS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1_000_000),
            ..SimConfig::default()
        };
        let t = std::time::Instant::now();
        let ds = Dataset::generate(Inventory::Resources, &cfg, ANCHOR);
        let bytes: usize = ds.items.iter().map(|i| i.json.len()).sum();
        println!(
            "{} items in {:?}, {} MB of JSON",
            ds.items.len(),
            t.elapsed(),
            bytes >> 20
        );
        let t = std::time::Instant::now();
        let f = ds.facts().unwrap();
        println!("facts in {:?}: {} kept", t.elapsed(), f.kept.len());
        let t = std::time::Instant::now();
        let (_, total, _) = ds.render_page(Some(ANCHOR - D), 0, 40, None, false);
        println!("filtered page in {:?}: {total} recent", t.elapsed());
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
    fn pages_slice_and_filter() {
        let ds = Dataset::from_values(
            Inventory::Services,
            (0..5)
                .map(|i| json!({"externalId": format!("k{i}"), "lastUpdate": fmt_ts(ANCHOR - i * D, i as usize)}))
                .collect(),
        );
        let (body, total, count) = ds.render_page(None, 1, 2, None, false);
        assert_eq!((total, count), (5, 2));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["externalId"], "k2");
        let (body, _, count) = ds.render_page(None, 3, 2, Some("result"), true);
        assert_eq!((body.as_str(), count), ("{\"result\":[42]}", 0));
        let (_, total, count) = ds.render_page(Some(ANCHOR - D - 1), 0, 40, None, false);
        assert_eq!((total, count), (2, 2));
        assert!(ds.facts().is_none());
    }

    #[test]
    fn rng_is_splitmix64() {
        // First output of SplitMix64 seeded with 0 (reference value).
        assert_eq!(Rng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}

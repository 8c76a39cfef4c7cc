//! The normalized row of the connector's tables: one upstream TMF 638 / TMF 639 item becomes
//! one [`Row`] of its inventory, with the columns users know from the DataMiner connector.
//!
//! # Tolerance rule
//!
//! Upstream items come in TMF v4 shapes, TMF v5 shapes and SES's own additions, and nobody on the
//! team can check which one the gateway really sends. Extraction is therefore *tolerant*:
//!
//! - every column is extracted on its own; a field with an unexpected shape (a string where a
//!   list was expected, a number where an object was expected, ...) loses **that column only**
//!   (`None` or an empty list). The item and its other columns are kept;
//! - extraction never panics and never fails: an item that is not a JSON object becomes an
//!   all-empty row of its inventory (the caller then skips it for its missing key);
//! - where several field names or shapes are known for one column (e.g. `status`, `state`,
//!   `operatingStatus`), the first one that yields a usable value wins;
//! - inside list columns, elements that are not objects, or that carry nothing readable, are
//!   skipped; a single object where a list was expected is read as a one-element list;
//! - text is trimmed, empty text is absent, numbers and booleans are read as their text;
//! - dates are parsed by [`parse_datetime`] into UTC; an unparseable date is absent.
//!
//! The accessors ([`Row::columns`], [`Row::cell`], [`Cell::to_text`], [`Cell::to_json`]) give the
//! rest of the daemon (API, CSV, SQL) one uniform view of the three row types.

pub mod extract;
pub mod packed;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::inventory::Inventory;

/// A text cell: borrowed from the item's JSON text where the upstream wrote it verbatim, owned
/// otherwise (escapes, numbers, booleans). Rows are transient: a cached item keeps its cells
/// packed against its own JSON ([`packed`]), and gives rows and cells back on demand.
pub(crate) type Field<'a> = Option<Cow<'a, str>>;

/// A list cell.
pub(crate) type Entries<'a> = Box<[Entry<'a>]>;

/// One element of a list column or a reference column. Unused fields are `None` and are
/// skipped when serialized.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub id: Field<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub name: Field<'a>,
    /// Parties and places: the role played (e.g. `customer`, `installationAddress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub role: Field<'a>,
    /// Characteristics: a string value as is, any other JSON value as compact JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub value: Field<'a>,
    /// Characteristics: `valueType`, else the v5 `@type` (e.g. `StringCharacteristic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub(crate) value_type: Field<'a>,
    /// Relationships: `relationshipType` (e.g. `contains`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub(crate) relationship_type: Field<'a>,
}

fn own(field: Field<'_>) -> Field<'static> {
    field.map(|text| Cow::Owned(text.into_owned()))
}

impl Entry<'_> {
    /// The same entry, owning its texts.
    pub fn into_owned(self) -> Entry<'static> {
        Entry {
            id: own(self.id),
            name: own(self.name),
            role: own(self.role),
            value: own(self.value),
            value_type: own(self.value_type),
            relationship_type: own(self.relationship_type),
        }
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Entry::default()
    }
}

impl fmt::Display for Entry<'_> {
    /// A readable one-liner: the label is the name, else the id; `label=value` for a
    /// characteristic, `label (role)` with a role, `relationship_type: label` for a relationship.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.name.as_deref().or(self.id.as_deref());
        let mut text = match (label, self.value.as_deref()) {
            (Some(label), Some(value)) => format!("{label}={value}"),
            (Some(label), None) => label.to_string(),
            (None, Some(value)) => value.to_string(),
            (None, None) => String::new(),
        };
        if let Some(kind) = &self.relationship_type {
            text = if text.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}: {text}")
            };
        }
        if let Some(role) = &self.role {
            text = if text.is_empty() {
                format!("({role})")
            } else {
                format!("{text} ({role})")
            };
        }
        if text.is_empty() {
            text = match &self.value_type {
                Some(value_type) => format!("({value_type})"),
                // Only an empty-string value is set: show it rather than nothing.
                None if !self.is_empty() => "\"\"".to_string(),
                None => String::new(),
            };
        }
        f.write_str(&text)
    }
}

/// A row of the Services table (TMF 638 services).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceRow<'a> {
    pub external_id: Field<'a>,
    pub name: Field<'a>,
    pub description: Field<'a>,
    pub status: Field<'a>,
    #[serde(rename = "type")]
    pub r#type: Field<'a>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub last_update: Option<DateTime<Utc>>,
    /// The customer party, else the first related party.
    pub related_party: Option<Box<Entry<'a>>>,
    pub location: Entries<'a>,
    pub service_specification: Option<Box<Entry<'a>>>,
    pub supporting_resources: Entries<'a>,
}

/// A row of the Carriers table (TMF 638 services with `@type=element`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CarrierRow<'a> {
    pub external_id: Field<'a>,
    pub name: Field<'a>,
    pub description: Field<'a>,
    pub status: Field<'a>,
    #[serde(rename = "type")]
    pub r#type: Field<'a>,
    pub(crate) creation_date: Option<DateTime<Utc>>,
    pub last_update: Option<DateTime<Utc>>,
    pub(crate) service_characteristics: Entries<'a>,
    pub(crate) supporting_services: Entries<'a>,
}

/// A row of the Resources table (TMF 639 resources).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceRow<'a> {
    pub external_id: Field<'a>,
    pub name: Field<'a>,
    pub description: Field<'a>,
    pub status: Field<'a>,
    #[serde(rename = "type")]
    pub r#type: Field<'a>,
    pub(crate) resource_specification: Option<Box<Entry<'a>>>,
    pub(crate) resource_characteristics: Entries<'a>,
    pub related_parties: Entries<'a>,
    pub(crate) locations: Entries<'a>,
    pub(crate) resource_relationships: Entries<'a>,
}

/// The normalized row of one item. Serializes as just the row's fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Row<'a> {
    Service(ServiceRow<'a>),
    Carrier(CarrierRow<'a>),
    Resource(ResourceRow<'a>),
}

/// How a column's cells are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Optional text.
    Text,
    /// Optional UTC date/time.
    Time,
    /// Optional single [`Entry`].
    One,
    /// Entries of [`Entry`].
    Many,
}

/// One column of a table.
#[derive(Debug)]
pub struct Column {
    /// snake_case name used in APIs and SQL.
    pub name: &'static str,
    /// The connector's column heading, used for CSV.
    pub heading: &'static str,
    pub kind: ColumnKind,
}

const fn col(name: &'static str, heading: &'static str, kind: ColumnKind) -> Column {
    Column {
        name,
        heading,
        kind,
    }
}

use ColumnKind::{Many, One, Text, Time};

static SERVICE_COLUMNS: [Column; 12] = [
    col("external_id", "External ID", Text),
    col("name", "Name", Text),
    col("description", "Description", Text),
    col("status", "Status", Text),
    col("type", "Type", Text),
    col("start_date", "Start Date", Time),
    col("end_date", "End Date", Time),
    col("last_update", "Last Update", Time),
    col("related_party", "Related Party", One),
    col("location", "Location", Many),
    col("service_specification", "Service Specification", One),
    col("supporting_resources", "Supporting Resources", Many),
];

static CARRIER_COLUMNS: [Column; 9] = [
    col("external_id", "External ID", Text),
    col("name", "Name", Text),
    col("description", "Description", Text),
    col("status", "Status", Text),
    col("type", "Type", Text),
    col("creation_date", "Creation Date", Time),
    col("last_update", "Last Update", Time),
    col("service_characteristics", "Service Characteristics", Many),
    col("supporting_services", "Supporting Services", Many),
];

static RESOURCE_COLUMNS: [Column; 10] = [
    col("external_id", "External ID", Text),
    col("name", "Name", Text),
    col("description", "Description", Text),
    col("status", "Status", Text),
    col("type", "Type", Text),
    col("resource_specification", "Resource Specification", One),
    col("resource_characteristics", "Resource Characteristics", Many),
    col("related_parties", "Related Parties", Many),
    col("locations", "Locations", Many),
    col("resource_relationships", "Resource Relationships", Many),
];

/// A view of one cell: text borrowed from the row or the item; entries borrowed from a row, or
/// unpacked (their texts still borrowed) from a cached item.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    Text(Option<&'a str>),
    Time(Option<DateTime<Utc>>),
    One(Option<Cow<'a, Entry<'a>>>),
    Many(Cow<'a, [Entry<'a>]>),
}

impl<'a> Row<'a> {
    /// The same row, owning its texts.
    pub fn into_owned(self) -> Row<'static> {
        fn one(e: Option<Box<Entry<'_>>>) -> Option<Box<Entry<'static>>> {
            e.map(|e| Box::new(e.into_owned()))
        }
        fn many(list: Entries<'_>) -> Entries<'static> {
            list.into_iter().map(Entry::into_owned).collect()
        }
        match self {
            Row::Service(r) => Row::Service(ServiceRow {
                external_id: own(r.external_id),
                name: own(r.name),
                description: own(r.description),
                status: own(r.status),
                r#type: own(r.r#type),
                start_date: r.start_date,
                end_date: r.end_date,
                last_update: r.last_update,
                related_party: one(r.related_party),
                location: many(r.location),
                service_specification: one(r.service_specification),
                supporting_resources: many(r.supporting_resources),
            }),
            Row::Carrier(r) => Row::Carrier(CarrierRow {
                external_id: own(r.external_id),
                name: own(r.name),
                description: own(r.description),
                status: own(r.status),
                r#type: own(r.r#type),
                creation_date: r.creation_date,
                last_update: r.last_update,
                service_characteristics: many(r.service_characteristics),
                supporting_services: many(r.supporting_services),
            }),
            Row::Resource(r) => Row::Resource(ResourceRow {
                external_id: own(r.external_id),
                name: own(r.name),
                description: own(r.description),
                status: own(r.status),
                r#type: own(r.r#type),
                resource_specification: one(r.resource_specification),
                resource_characteristics: many(r.resource_characteristics),
                related_parties: many(r.related_parties),
                locations: many(r.locations),
                resource_relationships: many(r.resource_relationships),
            }),
        }
    }

    /// The row of `inventory` made of its cells in column order (the inverse of [`Row::cell`]).
    /// A cell of the wrong kind, or a missing one, leaves its column empty.
    pub(crate) fn from_cells(
        inventory: Inventory,
        cells: impl IntoIterator<Item = Cell<'a>>,
    ) -> Row<'a> {
        fn text<'a>(cell: Option<Cell<'a>>) -> Field<'a> {
            match cell {
                Some(Cell::Text(t)) => t.map(Cow::Borrowed),
                _ => None,
            }
        }
        fn time(cell: Option<Cell<'_>>) -> Option<DateTime<Utc>> {
            match cell {
                Some(Cell::Time(t)) => t,
                _ => None,
            }
        }
        fn one<'a>(cell: Option<Cell<'a>>) -> Option<Box<Entry<'a>>> {
            match cell {
                Some(Cell::One(Some(e))) => Some(Box::new(e.into_owned())),
                _ => None,
            }
        }
        fn many<'a>(cell: Option<Cell<'a>>) -> Entries<'a> {
            match cell {
                Some(Cell::Many(list)) => list.into_owned().into_boxed_slice(),
                _ => Box::default(),
            }
        }
        let mut cells = cells.into_iter();
        let mut c = || cells.next();
        // Fields are evaluated in the order written: the columns' order.
        match inventory {
            Inventory::Services => Row::Service(ServiceRow {
                external_id: text(c()),
                name: text(c()),
                description: text(c()),
                status: text(c()),
                r#type: text(c()),
                start_date: time(c()),
                end_date: time(c()),
                last_update: time(c()),
                related_party: one(c()),
                location: many(c()),
                service_specification: one(c()),
                supporting_resources: many(c()),
            }),
            Inventory::Carriers => Row::Carrier(CarrierRow {
                external_id: text(c()),
                name: text(c()),
                description: text(c()),
                status: text(c()),
                r#type: text(c()),
                creation_date: time(c()),
                last_update: time(c()),
                service_characteristics: many(c()),
                supporting_services: many(c()),
            }),
            Inventory::Resources => Row::Resource(ResourceRow {
                external_id: text(c()),
                name: text(c()),
                description: text(c()),
                status: text(c()),
                r#type: text(c()),
                resource_specification: one(c()),
                resource_characteristics: many(c()),
                related_parties: many(c()),
                locations: many(c()),
                resource_relationships: many(c()),
            }),
        }
    }

    pub fn inventory(&self) -> Inventory {
        match self {
            Row::Service(_) => Inventory::Services,
            Row::Carrier(_) => Inventory::Carriers,
            Row::Resource(_) => Inventory::Resources,
        }
    }

    /// The columns of `inventory`'s table, in the connector's order.
    pub fn columns(inventory: Inventory) -> &'static [Column] {
        match inventory {
            Inventory::Services => &SERVICE_COLUMNS,
            Inventory::Carriers => &CARRIER_COLUMNS,
            Inventory::Resources => &RESOURCE_COLUMNS,
        }
    }

    /// The cell of column `index` of [`Row::columns`]. Panics only on an out-of-range index.
    pub fn cell(&self, index: usize) -> Cell<'_> {
        fn text<'r>(s: &'r Field<'_>) -> Cell<'r> {
            Cell::Text(s.as_deref())
        }
        fn one<'r>(e: &'r Option<Box<Entry<'r>>>) -> Cell<'r> {
            Cell::One(e.as_deref().map(Cow::Borrowed))
        }
        fn many<'r>(list: &'r [Entry<'r>]) -> Cell<'r> {
            Cell::Many(Cow::Borrowed(list))
        }
        match self {
            Row::Service(r) => match index {
                0 => text(&r.external_id),
                1 => text(&r.name),
                2 => text(&r.description),
                3 => text(&r.status),
                4 => text(&r.r#type),
                5 => Cell::Time(r.start_date),
                6 => Cell::Time(r.end_date),
                7 => Cell::Time(r.last_update),
                8 => one(&r.related_party),
                9 => many(&r.location),
                10 => one(&r.service_specification),
                11 => many(&r.supporting_resources),
                _ => out_of_range(self.inventory(), index),
            },
            Row::Carrier(r) => match index {
                0 => text(&r.external_id),
                1 => text(&r.name),
                2 => text(&r.description),
                3 => text(&r.status),
                4 => text(&r.r#type),
                5 => Cell::Time(r.creation_date),
                6 => Cell::Time(r.last_update),
                7 => many(&r.service_characteristics),
                8 => many(&r.supporting_services),
                _ => out_of_range(self.inventory(), index),
            },
            Row::Resource(r) => match index {
                0 => text(&r.external_id),
                1 => text(&r.name),
                2 => text(&r.description),
                3 => text(&r.status),
                4 => text(&r.r#type),
                5 => one(&r.resource_specification),
                6 => many(&r.resource_characteristics),
                7 => many(&r.related_parties),
                8 => many(&r.locations),
                9 => many(&r.resource_relationships),
                _ => out_of_range(self.inventory(), index),
            },
        }
    }

    /// The index in [`Row::columns`] of `inventory`'s column named `name` (snake_case).
    pub(crate) fn column_index(inventory: Inventory, name: &str) -> Option<usize> {
        Row::columns(inventory).iter().position(|c| c.name == name)
    }

    /// The cell of the column named `name` (snake_case); `None` for an unknown column.
    pub fn cell_by_name(&self, name: &str) -> Option<Cell<'_>> {
        Row::column_index(self.inventory(), name).map(|i| self.cell(i))
    }

    pub fn status(&self) -> Option<&str> {
        match self {
            Row::Service(r) => r.status.as_deref(),
            Row::Carrier(r) => r.status.as_deref(),
            Row::Resource(r) => r.status.as_deref(),
        }
    }

    /// The item's type (`@type`, else `type`, else `category`).
    pub fn item_type(&self) -> Option<&str> {
        match self {
            Row::Service(r) => r.r#type.as_deref(),
            Row::Carrier(r) => r.r#type.as_deref(),
            Row::Resource(r) => r.r#type.as_deref(),
        }
    }

    pub fn external_id(&self) -> Option<&str> {
        match self {
            Row::Service(r) => r.external_id.as_deref(),
            Row::Carrier(r) => r.external_id.as_deref(),
            Row::Resource(r) => r.external_id.as_deref(),
        }
    }
}

fn out_of_range(inventory: Inventory, index: usize) -> ! {
    panic!(
        "column index {index} out of range for {inventory} ({} columns)",
        Row::columns(inventory).len()
    )
}

fn format_time(t: &DateTime<Utc>) -> String {
    crate::time::format::exact(*t)
}

impl Cell<'_> {
    /// The list order of two cells of one column: empty last; text case-insensitively (then
    /// exactly); times by value; others by their text.
    pub(crate) fn compare(&self, other: &Cell<'_>) -> Ordering {
        match (self.is_empty(), other.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        match (self, other) {
            (Cell::Text(Some(x)), Cell::Text(Some(y))) => {
                caseless(x).cmp(caseless(y)).then_with(|| x.cmp(y))
            }
            (Cell::Time(x), Cell::Time(y)) => x.cmp(y),
            _ => self.to_text().cmp(&other.to_text()),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Text(s) => s.is_none_or(str::is_empty),
            Cell::Time(t) => t.is_none(),
            Cell::One(e) => e.as_deref().is_none_or(Entry::is_empty),
            Cell::Many(list) => list.is_empty(),
        }
    }

    /// Readable text: `None` when empty; dates as RFC 3339 UTC with a `Z`; One = the entry's
    /// Display; Many = the entries' Display joined with `"; "`.
    pub fn to_text(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        match self {
            Cell::Text(s) => s.map(str::to_string),
            Cell::Time(t) => t.as_ref().map(format_time),
            Cell::One(e) => e.as_deref().map(Entry::to_string),
            Cell::Many(list) => Some(
                list.iter()
                    .map(Entry::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        }
    }

    /// JSON: `null` when empty for Text/Time/One; Many is always an array (possibly empty);
    /// dates as RFC 3339 text; entries as objects. (What the `Serialize` impl writes.)
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing strings, dates and entries of strings cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Text compared case-insensitively without allocating.
fn caseless(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

/// A cell as JSON: `null` when empty for Text/Time/One; Many always an array; dates as RFC
/// 3339 text; entries as objects (their set fields). Written in place, without a `Value`.
impl Serialize for Cell<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Cell::Many(list) => {
                let mut seq = s.serialize_seq(Some(list.len()))?;
                for entry in list.iter() {
                    seq.serialize_element(entry)?;
                }
                seq.end()
            }
            _ if self.is_empty() => s.serialize_none(),
            Cell::Text(t) => s.serialize_str(t.unwrap_or_default()),
            Cell::Time(t) => match t {
                Some(t) => s.serialize_str(&format_time(t)),
                None => s.serialize_none(),
            },
            Cell::One(e) => match e {
                Some(e) => e.serialize(s),
                None => s.serialize_none(),
            },
        }
    }
}

/// Parses the date/time shapes seen upstream: RFC 3339 with or without fractional seconds, with
/// `Z` or an offset; `YYYY-MM-DDTHH:MM:SS[.f]` and ServiceNow's `YYYY-MM-DD HH:MM:SS[.f]`
/// without zone (taken as UTC); a bare `YYYY-MM-DD` (midnight UTC). `None` for anything else.
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Offsets without a colon ("+0100"), with either separator.
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

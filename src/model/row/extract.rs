//! Tolerant field readers: each returns `None` / an empty list for a missing or mis-shaped field.

//!
//! They read a JSON [`Val`] of a tape: an object's members (`get`) and an array's items are
//! read in place; a value of another kind than the one asked for reads as absent.

use crate::model::json::{Json, Node, Tape, Val};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

use super::{CarrierRow, Entries, Entry, Field, ResourceRow, Row, ServiceRow, parse_datetime};
use crate::model::inventory::Inventory;

impl<'a> Row<'a> {
    /// Normalizes one upstream item of `inventory`. Never panics; an item that is not a JSON
    /// object gives an all-empty row of that inventory. See the module docs for the rules.
    /// The row of an item given as a `serde_json::Value` (tests, tools; the sync path reads the
    /// page's bytes with [`Row::from_json`]).
    pub fn extract(inventory: Inventory, item: &serde_json::Value) -> Row<'static> {
        let text = item.to_string();
        let mut tree = None;
        Row::from_json(inventory, Tape::parse(&text, &mut tree).root()).into_owned()
    }

    /// The row of an item read from its JSON (a [`Tape`]'s value): texts borrow from the
    /// text (or tree) the tape was read from.
    pub(crate) fn from_json(inventory: Inventory, item: Val<'_, 'a>) -> Row<'a> {
        row(inventory, item)
    }
}

/// An item's External ID column (any shape), without extracting the whole row.
pub(crate) fn external_id_of(item: &Json<'_>) -> Option<Box<str>> {
    external_id_in(Tape::of(item).root())
}

/// [`external_id_of`] an item read onto a tape.
pub(crate) fn external_id_in(item: Val<'_, '_>) -> Option<Box<str>> {
    external_id_field(item).map(Into::into)
}

/// A value of the item's JSON (`Object` where an object is expected: anything else reads as
/// an object without members).
type Value<'t, 'a> = Val<'t, 'a>;
type Object<'t, 'a> = Val<'t, 'a>;

pub(super) fn row<'a>(inventory: Inventory, item: Value<'_, 'a>) -> Row<'a> {
    // A non-object has no members: every column reads as absent.
    match inventory {
        Inventory::Services => Row::Service(service(item)),
        Inventory::Carriers => Row::Carrier(carrier(item)),
        Inventory::Resources => Row::Resource(resource(item)),
    }
}

/// The External ID column alone (for keys), without extracting the whole row.
pub(super) fn external_id_field<'a>(item: Value<'_, 'a>) -> Field<'a> {
    if !item.is_object() {
        return None;
    }
    external_id(item)
}

/// The Status column alone (for the keep rule).
pub(crate) fn status_fields(inventory: Inventory) -> &'static [&'static str] {
    match inventory {
        Inventory::Services | Inventory::Carriers => SERVICE_STATUS,
        Inventory::Resources => RESOURCE_STATUS,
    }
}

const SERVICE_STATUS: &[&str] = &["status", "state", "operatingStatus"];
const RESOURCE_STATUS: &[&str] = &[
    "status",
    "resourceStatus",
    "operationalState",
    "state",
    "operatingStatus",
    "lifecycleState",
];
/// The members the Type column is read from, in order.
pub(crate) const TYPE_FIELDS: &[&str] = &["@type", "type", "category"];
const LAST_UPDATE: &[&str] = &["lastUpdate", "lastUpdateDate", "lastModifiedDate"];
const CREATION_DATE: &[&str] = &["creationDate", "createdDate", "startDate"];

fn service<'a>(item: Object<'_, 'a>) -> ServiceRow<'a> {
    ServiceRow {
        external_id: external_id(item),
        name: text_of(item, "name"),
        description: text_of(item, "description"),
        status: first_text(item, SERVICE_STATUS),
        r#type: first_text(item, TYPE_FIELDS),
        start_date: first_date(item, &["startDate"]),
        end_date: first_date(item, &["endDate"]),
        last_update: first_date(item, LAST_UPDATE),
        related_party: customer(related_parties(item)),
        location: places(item),
        service_specification: reference(item.get("serviceSpecification")),
        supporting_resources: references(item.get("supportingResource"), "resource"),
    }
}

fn carrier<'a>(item: Object<'_, 'a>) -> CarrierRow<'a> {
    CarrierRow {
        external_id: external_id(item),
        name: text_of(item, "name"),
        description: text_of(item, "description"),
        status: first_text(item, SERVICE_STATUS),
        r#type: first_text(item, TYPE_FIELDS),
        creation_date: first_date(item, CREATION_DATE),
        last_update: first_date(item, LAST_UPDATE),
        service_characteristics: characteristics(item.get("serviceCharacteristic")),
        supporting_services: references(item.get("supportingService"), "service"),
    }
}

fn resource<'a>(item: Object<'_, 'a>) -> ResourceRow<'a> {
    ResourceRow {
        external_id: external_id(item),
        name: text_of(item, "name"),
        description: text_of(item, "description"),
        status: first_text(item, RESOURCE_STATUS),
        r#type: first_text(item, TYPE_FIELDS),
        resource_specification: reference(item.get("resourceSpecification")),
        resource_characteristics: characteristics(item.get("resourceCharacteristic")),
        related_parties: related_parties(item),
        locations: places(item),
        resource_relationships: relationships(item.get("resourceRelationship")),
    }
}

/// A JSON string (trimmed; empty => None), or a number or bool as its text.
pub(super) fn text<'a>(value: Option<Value<'_, 'a>>) -> Field<'a> {
    match value?.node() {
        Node::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then_some(Cow::Borrowed(s))
        }
        Node::Number(n) => Some(Cow::Owned(n.to_string())),
        Node::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn text_of<'a>(object: Object<'_, 'a>, key: &str) -> Field<'a> {
    text(object.get(key))
}

/// The first of `keys` that holds usable text.
fn first_text<'a>(object: Object<'_, 'a>, keys: &[&str]) -> Field<'a> {
    keys.iter().find_map(|key| text_of(object, key))
}

/// The first of `keys` that holds a parseable date.
fn first_date(object: Object<'_, '_>, keys: &[&str]) -> Option<DateTime<Utc>> {
    keys.iter()
        .find_map(|key| object.get(key)?.as_str().and_then(parse_datetime))
}

/// The objects of a list field: an array's object elements, or a single object on its own.
fn objects<'t, 'a>(value: Option<Value<'t, 'a>>) -> impl Iterator<Item = Object<'t, 'a>> {
    let single = value.filter(Val::is_object);
    let items = value.into_iter().flat_map(Val::items);
    single.into_iter().chain(items.filter(Val::is_object))
}

/// `externalId` as text; else (or when `externalId` is itself a list/object of identifiers)
/// the first non-empty `id` of v5's `externalIdentifier: [{id, owner}]`.
fn external_id<'a>(item: Object<'_, 'a>) -> Field<'a> {
    let identifiers = |value| objects(value).find_map(|identifier| text_of(identifier, "id"));
    let external = item.get("externalId");
    text(external)
        .or_else(|| identifiers(external))
        .or_else(|| identifiers(item.get("externalIdentifier")))
}

/// The first of `nested` keys holding an object (v5 wrappers such as `partyOrPartyRole`), else
/// the element itself (v4 flat references).
fn inner<'t, 'a>(element: Object<'t, 'a>, nested: &[&str]) -> Object<'t, 'a> {
    nested
        .iter()
        .find_map(|key| element.get(key).filter(Val::is_object))
        .unwrap_or(element)
}

/// `{id, name}` of `target`, falling back to the wrapping `element` for missing fields.
fn id_and_name<'a>(target: Object<'_, 'a>, element: Object<'_, 'a>) -> Entry<'a> {
    Entry {
        id: text_of(target, "id").or_else(|| text_of(element, "id")),
        name: text_of(target, "name").or_else(|| text_of(element, "name")),
        ..Entry::default()
    }
}

/// A single reference: an object `{id, name}`, or a bare string taken as the name.
fn reference<'a>(value: Option<Value<'_, 'a>>) -> Option<Box<Entry<'a>>> {
    let entry = match value? {
        object if object.is_object() => id_and_name(object, object),
        other => Entry {
            name: text(Some(other)),
            ..Entry::default()
        },
    };
    (!entry.is_empty()).then(|| Box::new(entry))
}

/// A list of references `[{id, name}]`, also accepting `[{<nested>: {id, name}}]`.
fn references<'a>(value: Option<Value<'_, 'a>>, nested: &str) -> Entries<'a> {
    objects(value)
        .map(|element| id_and_name(inner(element, &[nested]), element))
        .filter(|entry| !entry.is_empty())
        .collect()
}

/// A list of role-bearing references: v4 `[{id, name, role}]`, v5 `[{role, <nested>: {id, name}}]`.
fn roled_references<'a>(value: Option<Value<'_, 'a>>, nested: &[&str]) -> Entries<'a> {
    objects(value)
        .map(|element| Entry {
            role: text_of(element, "role"),
            ..id_and_name(inner(element, nested), element)
        })
        .filter(|entry| !entry.is_empty())
        .collect()
}

fn related_parties<'a>(item: Object<'_, 'a>) -> Entries<'a> {
    roled_references(item.get("relatedParty"), &["partyOrPartyRole", "party"])
}

/// The party whose role is "customer" (any case), else the first party.
fn customer(parties: Entries<'_>) -> Option<Box<Entry<'_>>> {
    let is_customer = |party: &Entry<'_>| {
        party
            .role
            .as_deref()
            .is_some_and(|role| role.eq_ignore_ascii_case("customer"))
    };
    let index = parties.iter().position(is_customer).unwrap_or(0);
    parties.into_vec().into_iter().nth(index).map(Box::new)
}

/// `place` (else `location` when `place` is absent) as one object or a list, v4 or v5 shaped.
fn places<'a>(item: Object<'_, 'a>) -> Entries<'a> {
    let value = match item.get("place") {
        None => item.get("location"),
        Some(place) if place.is_null() => item.get("location"),
        place => place,
    };
    roled_references(value, &["place"])
}

/// `[{name, value, valueType}]`; value any JSON; v5 `@type` as the value type when `valueType`
/// is absent. Elements with neither name nor value are skipped.
fn characteristics<'a>(value: Option<Value<'_, 'a>>) -> Entries<'a> {
    objects(value)
        .filter_map(|element| {
            let value = element.get("value").and_then(|value| match value.node() {
                Node::Null => None,
                Node::String(s) => Some(Cow::Borrowed(*s)),
                // Compact JSON text, as serde_json writes it (a value cannot fail to write).
                _ => Some(Cow::Owned(
                    serde_json::to_string(&value).unwrap_or_default(),
                )),
            });
            let name = text_of(element, "name");
            if name.is_none() && value.as_deref().is_none_or(str::is_empty) {
                return None;
            }
            Some(Entry {
                id: text_of(element, "id"),
                name,
                value,
                value_type: first_text(element, &["valueType", "@type"]),
                ..Entry::default()
            })
        })
        .collect()
}

/// v4 `[{relationshipType, id, name?}]` and v5 `[{relationshipType, resource: {id, name}}]`.
fn relationships<'a>(value: Option<Value<'_, 'a>>) -> Entries<'a> {
    objects(value)
        .map(|element| Entry {
            relationship_type: text_of(element, "relationshipType"),
            ..id_and_name(inner(element, &["resource"]), element)
        })
        .filter(|entry| !entry.is_empty())
        .collect()
}

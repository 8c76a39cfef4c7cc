//! Tolerant field readers: each returns `None` / an empty list for a missing or mis-shaped field.

use crate::model::json::{Json as Value, Obj};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

use super::{CarrierRow, Entries, Entry, Field, ResourceRow, Row, ServiceRow, parse_datetime};
use crate::model::inventory::Inventory;

type Object<'a> = Obj<'a>;

pub(super) fn row<'a>(inventory: Inventory, item: &Value<'a>) -> Row<'a> {
    let empty = Object::default();
    let item = item.as_object().unwrap_or(&empty);
    match inventory {
        Inventory::Services => Row::Service(service(item)),
        Inventory::Carriers => Row::Carrier(carrier(item)),
        Inventory::Resources => Row::Resource(resource(item)),
    }
}

/// The External ID column alone (for keys), without extracting the whole row.
pub(super) fn external_id_of<'a>(item: &Value<'a>) -> Field<'a> {
    external_id(item.as_object()?)
}

/// The Status column alone (for the keep rule).
pub(super) fn status_fields(inventory: Inventory) -> &'static [&'static str] {
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
pub(super) const TYPE: &[&str] = &["@type", "type", "category"];
const LAST_UPDATE: &[&str] = &["lastUpdate", "lastUpdateDate", "lastModifiedDate"];
const CREATION_DATE: &[&str] = &["creationDate", "createdDate", "startDate"];

fn service<'a>(item: &Object<'a>) -> ServiceRow<'a> {
    ServiceRow {
        external_id: external_id(item),
        name: text_of(item, "name"),
        description: text_of(item, "description"),
        status: first_text(item, SERVICE_STATUS),
        r#type: first_text(item, TYPE),
        start_date: first_date(item, &["startDate"]),
        end_date: first_date(item, &["endDate"]),
        last_update: first_date(item, LAST_UPDATE),
        related_party: customer(related_parties(item)),
        location: places(item),
        service_specification: reference(item.get("serviceSpecification")),
        supporting_resources: references(item.get("supportingResource"), "resource"),
    }
}

fn carrier<'a>(item: &Object<'a>) -> CarrierRow<'a> {
    CarrierRow {
        external_id: external_id(item),
        name: text_of(item, "name"),
        description: text_of(item, "description"),
        status: first_text(item, SERVICE_STATUS),
        r#type: first_text(item, TYPE),
        creation_date: first_date(item, CREATION_DATE),
        last_update: first_date(item, LAST_UPDATE),
        service_characteristics: characteristics(item.get("serviceCharacteristic")),
        supporting_services: references(item.get("supportingService"), "service"),
    }
}

fn resource<'a>(item: &Object<'a>) -> ResourceRow<'a> {
    ResourceRow {
        external_id: external_id(item),
        name: text_of(item, "name"),
        description: text_of(item, "description"),
        status: first_text(item, RESOURCE_STATUS),
        r#type: first_text(item, TYPE),
        resource_specification: reference(item.get("resourceSpecification")),
        resource_characteristics: characteristics(item.get("resourceCharacteristic")),
        related_parties: related_parties(item),
        locations: places(item),
        resource_relationships: relationships(item.get("resourceRelationship")),
    }
}

/// A JSON string (trimmed; empty => None), or a number or bool as its text.
pub(super) fn text<'a>(value: Option<&Value<'a>>) -> Field<'a> {
    match value? {
        Value::String(Cow::Borrowed(s)) => {
            let s = s.trim();
            (!s.is_empty()).then_some(Cow::Borrowed(s))
        }
        Value::String(Cow::Owned(s)) => {
            let s = s.trim();
            (!s.is_empty()).then(|| Cow::Owned(s.to_owned()))
        }
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn text_of<'a>(object: &Object<'a>, key: &str) -> Field<'a> {
    text(object.get(key))
}

/// The first of `keys` that holds usable text.
fn first_text<'a>(object: &Object<'a>, keys: &[&str]) -> Field<'a> {
    keys.iter().find_map(|key| text_of(object, key))
}

/// The first of `keys` that holds a parseable date.
fn first_date(object: &Object, keys: &[&str]) -> Option<DateTime<Utc>> {
    keys.iter()
        .find_map(|key| object.get(key)?.as_str().and_then(parse_datetime))
}

/// The objects of a list field: an array's object elements, or a single object on its own.
fn objects<'v, 'a>(value: Option<&'v Value<'a>>) -> impl Iterator<Item = &'v Object<'a>> {
    let items: &[Value<'a>] = match value {
        Some(Value::Array(items)) => items,
        Some(value @ Value::Object(_)) => std::slice::from_ref(value),
        _ => &[],
    };
    items.iter().filter_map(Value::as_object)
}

/// `externalId` as text; else (or when `externalId` is itself a list/object of identifiers)
/// the first non-empty `id` of v5's `externalIdentifier: [{id, owner}]`.
fn external_id<'a>(item: &Object<'a>) -> Field<'a> {
    let identifiers = |value| objects(value).find_map(|identifier| text_of(identifier, "id"));
    let external = item.get("externalId");
    text(external)
        .or_else(|| identifiers(external))
        .or_else(|| identifiers(item.get("externalIdentifier")))
}

/// The first of `nested` keys holding an object (v5 wrappers such as `partyOrPartyRole`), else
/// the element itself (v4 flat references).
fn inner<'v, 'a>(element: &'v Object<'a>, nested: &[&str]) -> &'v Object<'a> {
    nested
        .iter()
        .find_map(|key| element.get(key)?.as_object())
        .unwrap_or(element)
}

/// `{id, name}` of `target`, falling back to the wrapping `element` for missing fields.
fn id_and_name<'a>(target: &Object<'a>, element: &Object<'a>) -> Entry<'a> {
    Entry {
        id: text_of(target, "id").or_else(|| text_of(element, "id")),
        name: text_of(target, "name").or_else(|| text_of(element, "name")),
        ..Entry::default()
    }
}

/// A single reference: an object `{id, name}`, or a bare string taken as the name.
fn reference<'a>(value: Option<&Value<'a>>) -> Option<Box<Entry<'a>>> {
    let entry = match value? {
        Value::Object(object) => id_and_name(object, object),
        other => Entry {
            name: text(Some(other)),
            ..Entry::default()
        },
    };
    (!entry.is_empty()).then(|| Box::new(entry))
}

/// A list of references `[{id, name}]`, also accepting `[{<nested>: {id, name}}]`.
fn references<'a>(value: Option<&Value<'a>>, nested: &str) -> Entries<'a> {
    objects(value)
        .map(|element| id_and_name(inner(element, &[nested]), element))
        .filter(|entry| !entry.is_empty())
        .collect()
}

/// A list of role-bearing references: v4 `[{id, name, role}]`, v5 `[{role, <nested>: {id, name}}]`.
fn roled_references<'a>(value: Option<&Value<'a>>, nested: &[&str]) -> Entries<'a> {
    objects(value)
        .map(|element| Entry {
            role: text_of(element, "role"),
            ..id_and_name(inner(element, nested), element)
        })
        .filter(|entry| !entry.is_empty())
        .collect()
}

fn related_parties<'a>(item: &Object<'a>) -> Entries<'a> {
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
fn places<'a>(item: &Object<'a>) -> Entries<'a> {
    let value = match item.get("place") {
        None | Some(Value::Null) => item.get("location"),
        place => place,
    };
    roled_references(value, &["place"])
}

/// `[{name, value, valueType}]`; value any JSON; v5 `@type` as the value type when `valueType`
/// is absent. Elements with neither name nor value are skipped.
fn characteristics<'a>(value: Option<&Value<'a>>) -> Entries<'a> {
    objects(value)
        .filter_map(|element| {
            let value = match element.get("value") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(Cow::Owned(other.to_string())),
            };
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
fn relationships<'a>(value: Option<&Value<'a>>) -> Entries<'a> {
    objects(value)
        .map(|element| Entry {
            relationship_type: text_of(element, "relationshipType"),
            ..id_and_name(inner(element, &["resource"]), element)
        })
        .filter(|entry| !entry.is_empty())
        .collect()
}

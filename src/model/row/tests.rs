//! Unit tests of the row module: one test per shape per inventory, plus the accessors.

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;

fn service(item: serde_json::Value) -> ServiceRow<'static> {
    match Row::extract(Inventory::Services, &item) {
        Row::Service(row) => row,
        other => panic!("expected a service row, got {other:?}"),
    }
}

fn carrier(item: serde_json::Value) -> CarrierRow<'static> {
    match Row::extract(Inventory::Carriers, &item) {
        Row::Carrier(row) => row,
        other => panic!("expected a carrier row, got {other:?}"),
    }
}

fn resource(item: serde_json::Value) -> ResourceRow<'static> {
    match Row::extract(Inventory::Resources, &item) {
        Row::Resource(row) => row,
        other => panic!("expected a resource row, got {other:?}"),
    }
}

fn entry<'a>(id: Option<&'a str>, name: Option<&'a str>) -> Entry<'a> {
    Entry {
        id: id.map(Into::into),
        name: name.map(Into::into),
        ..Entry::default()
    }
}

fn with_role<'a>(mut entry: Entry<'a>, role: &'a str) -> Entry<'a> {
    entry.role = Some(role.into());
    entry
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

// ---------------------------------------------------------------- services

#[test]
fn service_v4_shape() {
    let row = service(json!({
        "id": "5351",
        "externalId": "SES-0001",
        "name": "vCPE serial 1355615",
        "description": "Instantiation of vCPE",
        "state": "active",
        "category": "CFS",
        "startDate": "2018-01-15T12:26:11.747Z",
        "endDate": "2019-01-15T12:26:11Z",
        "relatedParty": [
            {"id": "456", "name": "John Doe", "role": "user"},
            {"id": "789", "name": "ACME", "role": "Customer"}
        ],
        "place": [{"id": "2435", "name": "Customer primary location", "role": "InstallationAddress"}],
        "serviceSpecification": {"id": "1212", "name": "vCPE", "version": "1.0.0"},
        "supportingResource": [{"id": "4aafacbd", "name": "Router 1", "@referredType": "Router"}]
    }));
    assert_eq!(row.external_id.as_deref(), Some("SES-0001"));
    assert_eq!(row.name.as_deref(), Some("vCPE serial 1355615"));
    assert_eq!(row.description.as_deref(), Some("Instantiation of vCPE"));
    assert_eq!(row.status.as_deref(), Some("active"));
    assert_eq!(row.r#type.as_deref(), Some("CFS"));
    assert_eq!(
        row.start_date,
        Some(utc(2018, 1, 15, 12, 26, 11) + chrono::Duration::milliseconds(747))
    );
    assert_eq!(row.end_date, Some(utc(2019, 1, 15, 12, 26, 11)));
    assert_eq!(row.last_update, None);
    assert_eq!(
        row.related_party,
        Some(Box::new(with_role(
            entry(Some("789"), Some("ACME")),
            "Customer"
        )))
    );
    assert_eq!(
        row.location,
        vec![with_role(
            entry(Some("2435"), Some("Customer primary location")),
            "InstallationAddress"
        )]
        .into_boxed_slice()
    );
    assert_eq!(
        row.service_specification,
        Some(Box::new(entry(Some("1212"), Some("vCPE"))))
    );
    assert_eq!(
        row.supporting_resources,
        vec![entry(Some("4aafacbd"), Some("Router 1"))].into_boxed_slice()
    );
}

#[test]
fn service_v5_shape() {
    let row = service(json!({
        "id": "5351",
        "externalIdentifier": [
            {"owner": "Supplier-B", "id": " "},
            {"owner": "SNOW", "id": "SVC-42", "@type": "ExternalIdentifier"}
        ],
        "name": "vCPE serial 1355615",
        "state": "inactive",
        "operatingStatus": "running",
        "@type": "Service",
        "category": "CFS",
        "startDate": "2018-01-15T12:26:11.747Z",
        "relatedParty": [{
            "role": "user",
            "partyOrPartyRole": {"id": "456", "name": "John Doe", "@type": "PartyRef"},
            "@type": "RelatedPartyRefOrPartyRoleRef"
        }],
        "place": [{
            "role": "InstallationAddress",
            "place": {"id": "2435", "name": "Customer primary location", "@type": "PlaceRef"},
            "@type": "RelatedPlaceRefOrValue"
        }],
        "serviceSpecification": {"id": "1212", "name": "vCPE", "@type": "ServiceSpecificationRef"},
        "supportingResource": [
            {"resource": {"id": "e451a1f1", "name": "Router 2"}},
            {"id": "0d5c8d46", "@type": "ResourceRef"}
        ]
    }));
    assert_eq!(row.external_id.as_deref(), Some("SVC-42"));
    assert_eq!(
        row.status.as_deref(),
        Some("inactive"),
        "state wins over operatingStatus"
    );
    assert_eq!(
        row.r#type.as_deref(),
        Some("Service"),
        "@type wins over category"
    );
    assert_eq!(
        row.related_party,
        Some(Box::new(with_role(
            entry(Some("456"), Some("John Doe")),
            "user"
        ))),
        "no customer: the first party"
    );
    assert_eq!(
        row.location,
        vec![with_role(
            entry(Some("2435"), Some("Customer primary location")),
            "InstallationAddress"
        )]
        .into_boxed_slice()
    );
    assert_eq!(
        row.service_specification,
        Some(Box::new(entry(Some("1212"), Some("vCPE"))))
    );
    assert_eq!(
        row.supporting_resources,
        vec![
            entry(Some("e451a1f1"), Some("Router 2")),
            entry(Some("0d5c8d46"), None)
        ]
        .into_boxed_slice()
    );
}

#[test]
fn service_ses_shape() {
    // SES/ServiceNow additions: numeric externalId, `status`, `lastUpdate` without zone,
    // a single relatedParty object using `party`, `location` instead of `place`, a string spec.
    let row = service(json!({
        "externalId": 100234,
        "name": "  Teleport link  ",
        "status": "Operational",
        "state": "active",
        "type": "Managed",
        "lastUpdate": "2024-03-01 10:20:30",
        "relatedParty": {"role": "CUSTOMER", "party": {"id": "C1", "name": "Telco"}},
        "location": {"id": "L1", "name": "Betzdorf"},
        "serviceSpecification": "Managed Connectivity"
    }));
    assert_eq!(row.external_id.as_deref(), Some("100234"));
    assert_eq!(row.name.as_deref(), Some("Teleport link"), "trimmed");
    assert_eq!(
        row.status.as_deref(),
        Some("Operational"),
        "status wins over state"
    );
    assert_eq!(row.r#type.as_deref(), Some("Managed"));
    assert_eq!(row.last_update, Some(utc(2024, 3, 1, 10, 20, 30)));
    assert_eq!(
        row.related_party,
        Some(Box::new(with_role(
            entry(Some("C1"), Some("Telco")),
            "CUSTOMER"
        )))
    );
    assert_eq!(
        row.location,
        vec![entry(Some("L1"), Some("Betzdorf"))].into_boxed_slice()
    );
    assert_eq!(
        row.service_specification,
        Some(Box::new(entry(None, Some("Managed Connectivity"))))
    );
}

#[test]
fn customer_rule_any_case_else_first() {
    let pick =
        |parties: serde_json::Value| service(json!({ "relatedParty": parties })).related_party;
    let customer = pick(json!([
        {"id": "1", "role": "owner"},
        {"id": "2", "role": "cUsToMeR"},
        {"id": "3", "role": "customer"}
    ]));
    assert_eq!(customer.and_then(|p| p.id).as_deref(), Some("2"));
    let first = pick(json!([{"id": "1", "role": "owner"}, {"id": "2"}]));
    assert_eq!(first.and_then(|p| p.id).as_deref(), Some("1"));
    let skipped_junk = pick(json!(["junk", 7, {"name": "Only", "role": "reseller"}]));
    assert_eq!(skipped_junk.and_then(|p| p.name).as_deref(), Some("Only"));
    assert_eq!(pick(json!([])), None);
}

#[test]
fn external_id_variants() {
    let id = |item: serde_json::Value| service(item).external_id;
    assert_eq!(id(json!({"externalId": "A"})).as_deref(), Some("A"));
    assert_eq!(id(json!({"externalId": 7})).as_deref(), Some("7"));
    assert_eq!(
        id(json!({"externalId": [{"id": "B", "owner": "SNOW"}]})).as_deref(),
        Some("B")
    );
    assert_eq!(id(json!({"externalId": {"id": "C"}})).as_deref(), Some("C"));
    assert_eq!(
        id(json!({"externalIdentifier": {"id": "D"}})).as_deref(),
        Some("D")
    );
    assert_eq!(
        id(json!({"externalId": "", "externalIdentifier": [{"id": "E"}]})).as_deref(),
        Some("E"),
        "an empty externalId falls through"
    );
    assert_eq!(
        id(json!({"externalId": null, "externalIdentifier": "x"})),
        None
    );
    assert_eq!(id(json!({"id": "only-an-id"})), None);
}

#[test]
fn type_falls_back_to_type_then_category() {
    let ty = |item: serde_json::Value| service(item).r#type;
    assert_eq!(
        ty(json!({"@type": "element", "type": "x", "category": "y"})).as_deref(),
        Some("element")
    );
    assert_eq!(
        ty(json!({"type": "x", "category": "y"})).as_deref(),
        Some("x")
    );
    assert_eq!(
        ty(json!({"@type": {}, "category": "y"})).as_deref(),
        Some("y")
    );
}

// ---------------------------------------------------------------- carriers

#[test]
fn carrier_v4_shape() {
    let row = carrier(json!({
        "externalId": "EL-1",
        "name": "SES-17 beam 3",
        "state": "active",
        "@type": "element",
        "creationDate": "2023-05-01T08:00:00+02:00",
        "lastUpdateDate": "2024-01-02T03:04:05.5Z",
        "serviceCharacteristic": [
            {"id": "c1", "name": "ElementType", "valueType": "string", "value": "Carrier"},
            {"name": "UplinkFrequency", "valueType": "number", "value": 14250.5},
            {"name": "Enabled", "value": true},
            {"name": "NoValue"},
            {"valueType": "string"},
            "junk"
        ],
        "supportingService": [{"id": "6500", "name": "Parent"}]
    }));
    assert_eq!(row.external_id.as_deref(), Some("EL-1"));
    assert_eq!(row.status.as_deref(), Some("active"));
    assert_eq!(row.r#type.as_deref(), Some("element"));
    assert_eq!(row.creation_date, Some(utc(2023, 5, 1, 6, 0, 0)));
    assert_eq!(
        row.last_update,
        Some(utc(2024, 1, 2, 3, 4, 5) + chrono::Duration::milliseconds(500))
    );
    let c = &row.service_characteristics;
    assert_eq!(
        c.len(),
        4,
        "element with neither name nor value and a non-object are skipped"
    );
    assert_eq!(
        c[0],
        Entry {
            id: Some("c1".into()),
            name: Some("ElementType".into()),
            value: Some("Carrier".into()),
            value_type: Some("string".into()),
            ..Entry::default()
        }
    );
    assert_eq!(c[1].value.as_deref(), Some("14250.5"));
    assert_eq!(c[2].value.as_deref(), Some("true"));
    assert_eq!(c[2].value_type, None);
    assert_eq!(c[3].value, None);
    assert_eq!(
        row.supporting_services,
        vec![entry(Some("6500"), Some("Parent"))].into_boxed_slice()
    );
}

#[test]
fn carrier_v5_shape() {
    let row = carrier(json!({
        "externalIdentifier": [{"id": "EL-2", "owner": "SNOW"}],
        "operatingStatus": "running",
        "@type": "element",
        "createdDate": "2023-05-01",
        "lastModifiedDate": "2024-01-02T03:04:05",
        "serviceCharacteristic": [
            {"name": "vCPE", "value": {"vCPE_IP": "193.218.236.21", "MaxTxRate": 300},
             "@type": "ObjectCharacteristic"},
            {"name": "aliases", "value": ["UL-1", "DL-1"], "@type": "StringArrayCharacteristic"},
            {"name": "RF", "value": "11.7 GHz", "valueType": "string", "@type": "StringCharacteristic"}
        ],
        "supportingService": [
            {"service": {"id": "6500", "name": "Parent"}, "@type": "ServiceRef"},
            {"id": "6501", "href": "https://host/service/6501", "@type": "ServiceRef"}
        ]
    }));
    assert_eq!(row.external_id.as_deref(), Some("EL-2"));
    assert_eq!(row.status.as_deref(), Some("running"));
    assert_eq!(row.creation_date, Some(utc(2023, 5, 1, 0, 0, 0)));
    assert_eq!(row.last_update, Some(utc(2024, 1, 2, 3, 4, 5)));
    let c = &row.service_characteristics;
    assert_eq!(
        c[0].value.as_deref(),
        Some(r#"{"vCPE_IP":"193.218.236.21","MaxTxRate":300}"#)
    );
    assert_eq!(c[0].value_type.as_deref(), Some("ObjectCharacteristic"));
    assert_eq!(c[1].value.as_deref(), Some(r#"["UL-1","DL-1"]"#));
    assert_eq!(
        c[2].value_type.as_deref(),
        Some("string"),
        "valueType wins over @type"
    );
    assert_eq!(
        row.supporting_services,
        vec![
            entry(Some("6500"), Some("Parent")),
            entry(Some("6501"), None)
        ]
        .into_boxed_slice()
    );
}

#[test]
fn carrier_creation_date_falls_back_to_start_date() {
    let row = carrier(json!({"creationDate": "garbage", "startDate": "2020-02-29 23:59:59"}));
    assert_eq!(row.creation_date, Some(utc(2020, 2, 29, 23, 59, 59)));
}

// ---------------------------------------------------------------- resources

#[test]
fn resource_v4_shape() {
    let row = resource(json!({
        "id": "res-1",
        "externalId": "R-1",
        "name": "Router",
        "description": "Edge router",
        "resourceStatus": "available",
        "operationalState": "enable",
        "@type": "PhysicalResource",
        "resourceSpecification": {"id": "74ed54b9", "name": "Router spec"},
        "resourceCharacteristic": [{"name": "casing size", "valueType": "Quantity", "value": {"amount": 19, "units": "\""}}],
        "relatedParty": [{"id": "p1", "name": "John Doe", "role": "Owner"}],
        "place": {"id": "859ad898", "name": "Teleport", "role": "installationAddress"},
        "resourceRelationship": [
            {"relationshipType": "contains", "id": "0d5c8d46"},
            {"relationshipType": "bundled", "id": "00f00279", "name": "Card 2"}
        ]
    }));
    assert_eq!(row.external_id.as_deref(), Some("R-1"));
    assert_eq!(
        row.status.as_deref(),
        Some("available"),
        "resourceStatus before operationalState"
    );
    assert_eq!(row.r#type.as_deref(), Some("PhysicalResource"));
    assert_eq!(
        row.resource_specification,
        Some(Box::new(entry(Some("74ed54b9"), Some("Router spec"))))
    );
    assert_eq!(
        row.resource_characteristics[0].value.as_deref(),
        Some(r#"{"amount":19,"units":"\""}"#)
    );
    assert_eq!(
        row.related_parties,
        vec![with_role(entry(Some("p1"), Some("John Doe")), "Owner")].into_boxed_slice()
    );
    assert_eq!(
        row.locations,
        vec![with_role(
            entry(Some("859ad898"), Some("Teleport")),
            "installationAddress"
        )]
        .into_boxed_slice()
    );
    assert_eq!(
        row.resource_relationships,
        vec![
            Entry {
                id: Some("0d5c8d46".into()),
                relationship_type: Some("contains".into()),
                ..Entry::default()
            },
            Entry {
                id: Some("00f00279".into()),
                name: Some("Card 2".into()),
                relationship_type: Some("bundled".into()),
                ..Entry::default()
            },
        ]
        .into_boxed_slice()
    );
}

#[test]
fn resource_v5_shape() {
    let row = resource(json!({
        "id": "839933ec",
        "name": "MSISDN 491702283968",
        "startOperatingDate": "2025-09-23T00:00:00.000Z",
        "administrativeState": "unlocked",
        "operationalState": "disabled",
        "externalIdentifier": [{"externalIdentifierType": "Supplier-Router-Id", "id": "B-AGB-6414-X", "owner": "Supplier-B"}],
        "resourceCharacteristic": [
            {"name": "MSISDN", "value": "491702283968", "valueType": "String", "@type": "StringCharacteristic"},
            {"name": "Port count", "value": 48, "@type": "IntegerCharacteristic"}
        ],
        "relatedParty": [
            {"role": "Owner", "partyOrPartyRole": {"id": "fcba712d", "name": "John Doe", "@type": "PartyRef"}},
            {"role": "customer", "partyOrPartyRole": {"id": "c9", "name": "ACME"}}
        ],
        "place": [{"role": "installationAddress", "place": {"id": "859ad898", "@type": "PlaceRef"}}],
        "resourceRelationship": [
            {"relationshipType": "contains", "@type": "ResourceRelationship",
             "resource": {"id": "0d5c8d46", "name": "Port 1", "@type": "ResourceRef"}}
        ],
        "resourceSpecification": {"id": "ca344d7e", "@type": "ResourceSpecificationRef"},
        "@type": "LogicalResource"
    }));
    assert_eq!(row.external_id.as_deref(), Some("B-AGB-6414-X"));
    assert_eq!(row.status.as_deref(), Some("disabled"));
    assert_eq!(row.r#type.as_deref(), Some("LogicalResource"));
    assert_eq!(
        row.resource_specification,
        Some(Box::new(entry(Some("ca344d7e"), None)))
    );
    assert_eq!(
        row.resource_characteristics[0].value_type.as_deref(),
        Some("String")
    );
    assert_eq!(row.resource_characteristics[1].value.as_deref(), Some("48"));
    assert_eq!(
        row.resource_characteristics[1].value_type.as_deref(),
        Some("IntegerCharacteristic")
    );
    assert_eq!(row.related_parties.len(), 2, "resources keep every party");
    assert_eq!(
        row.related_parties[1],
        with_role(entry(Some("c9"), Some("ACME")), "customer")
    );
    assert_eq!(
        row.locations,
        vec![with_role(
            entry(Some("859ad898"), None),
            "installationAddress"
        )]
        .into_boxed_slice()
    );
    assert_eq!(
        row.resource_relationships,
        vec![Entry {
            id: Some("0d5c8d46".into()),
            name: Some("Port 1".into()),
            relationship_type: Some("contains".into()),
            ..Entry::default()
        }]
        .into_boxed_slice()
    );
}

#[test]
fn resource_ses_shape_and_status_order() {
    let row = resource(json!({
        "externalId": "SES-R-9",
        "status": 1,
        "state": "x",
        "category": "Antenna",
        "location": [{"id": "T1", "name": "Betzdorf"}],
        "resourceSpecification": "Antenna 9m"
    }));
    assert_eq!(
        row.status.as_deref(),
        Some("1"),
        "a number becomes its text"
    );
    assert_eq!(row.r#type.as_deref(), Some("Antenna"));
    assert_eq!(
        row.locations,
        vec![entry(Some("T1"), Some("Betzdorf"))].into_boxed_slice()
    );
    assert_eq!(
        row.resource_specification,
        Some(Box::new(entry(None, Some("Antenna 9m"))))
    );

    let status = |item: serde_json::Value| resource(item).status;
    assert_eq!(
        status(json!({"state": "s", "operatingStatus": "o"})).as_deref(),
        Some("s")
    );
    assert_eq!(
        status(json!({"operatingStatus": "o"})).as_deref(),
        Some("o")
    );
    assert_eq!(
        status(json!({"resourceStatus": "", "operationalState": "enable"})).as_deref(),
        Some("enable")
    );
}

// ---------------------------------------------------------------- tolerance

#[test]
fn wrong_shapes_lose_only_their_column() {
    let item = json!({
        "externalId": "S-1",
        "name": {"not": "text"},
        "description": ["nope"],
        "status": "Operational",
        "startDate": 1700000000,
        "lastUpdate": "yesterday",
        "relatedParty": "x",
        "place": 5,
        "serviceSpecification": [1, 2],
        "supportingResource": "r",
        "serviceCharacteristic": {"name": "single", "value": "ok"},
        "supportingService": true,
        "resourceCharacteristic": 3,
        "resourceRelationship": "contains",
        "resourceSpecification": null
    });
    let s = service(item.clone());
    assert_eq!(s.external_id.as_deref(), Some("S-1"));
    assert_eq!(s.status.as_deref(), Some("Operational"));
    assert_eq!((s.name, s.description), (None, None));
    assert_eq!((s.start_date, s.last_update), (None, None));
    assert_eq!(s.related_party, None);
    assert!(s.location.is_empty());
    assert_eq!(s.service_specification, None);
    assert!(s.supporting_resources.is_empty());

    let c = carrier(item.clone());
    assert_eq!(c.external_id.as_deref(), Some("S-1"));
    assert_eq!(
        c.service_characteristics.len(),
        1,
        "a single object is a one-element list"
    );
    assert!(c.supporting_services.is_empty());

    let r = resource(item);
    assert_eq!(r.external_id.as_deref(), Some("S-1"));
    assert!(r.related_parties.is_empty() && r.locations.is_empty());
    assert!(r.resource_characteristics.is_empty() && r.resource_relationships.is_empty());
    assert_eq!(r.resource_specification, None);
}

#[test]
fn place_wins_over_location_unless_absent() {
    let s = service(json!({"place": [{"id": "P"}], "location": [{"id": "L"}]}));
    assert_eq!(s.location, vec![entry(Some("P"), None)].into_boxed_slice());
    let s = service(json!({"place": 5, "location": [{"id": "L"}]}));
    assert!(
        s.location.is_empty(),
        "a present but broken place is not replaced"
    );
    let s = service(json!({"place": null, "location": {"id": "L"}}));
    assert_eq!(s.location, vec![entry(Some("L"), None)].into_boxed_slice());
}

#[test]
fn empty_elements_are_skipped() {
    let s = service(json!({
        "supportingResource": [{}, {"href": "only-a-link"}, {"id": "R"}],
        "place": [{"place": {}}, {"role": "billing"}]
    }));
    assert_eq!(
        s.supporting_resources,
        vec![entry(Some("R"), None)].into_boxed_slice()
    );
    assert_eq!(
        s.location,
        vec![Entry {
            role: Some("billing".into()),
            ..Entry::default()
        }]
        .into_boxed_slice()
    );
}

#[test]
fn non_object_item_gives_an_empty_row_of_its_inventory() {
    for inventory in Inventory::ALL {
        for item in [
            json!(null),
            json!("svc"),
            json!([{"externalId": "A"}]),
            json!(3),
        ] {
            let row = Row::extract(inventory, &item);
            assert_eq!(row.inventory(), inventory);
            for i in 0..Row::columns(inventory).len() {
                assert!(row.cell(i).is_empty(), "{inventory} column {i} of {item}");
            }
        }
    }
    assert_eq!(
        Row::extract(Inventory::Services, &json!(1)),
        Row::Service(ServiceRow::default())
    );
}

// ---------------------------------------------------------------- dates

#[test]
fn parse_datetime_formats() {
    let t = utc(2024, 3, 1, 10, 20, 30);
    let ms = chrono::Duration::milliseconds(123);
    assert_eq!(parse_datetime("2024-03-01T10:20:30Z"), Some(t));
    assert_eq!(parse_datetime("2024-03-01T10:20:30.123Z"), Some(t + ms));
    assert_eq!(parse_datetime("2024-03-01T12:20:30+02:00"), Some(t));
    assert_eq!(
        parse_datetime("2024-03-01T07:20:30.123-03:00"),
        Some(t + ms)
    );
    assert_eq!(parse_datetime("2024-03-01T12:20:30+0200"), Some(t));
    assert_eq!(parse_datetime("2024-03-01T10:20:30"), Some(t));
    assert_eq!(parse_datetime("2024-03-01T10:20:30.123"), Some(t + ms));
    assert_eq!(parse_datetime("2024-03-01 10:20:30"), Some(t));
    assert_eq!(parse_datetime(" 2024-03-01 10:20:30 "), Some(t));
    assert_eq!(parse_datetime("2024-03-01"), Some(utc(2024, 3, 1, 0, 0, 0)));
    for garbage in [
        "",
        "  ",
        "yesterday",
        "2024-13-01",
        "2024-02-30",
        "01/03/2024",
        "1709288430",
        "2024-03-01T25:00:00Z",
    ] {
        assert_eq!(parse_datetime(garbage), None, "{garbage:?}");
    }
}

#[test]
fn dates_fall_through_their_alternatives() {
    let s = service(
        json!({"lastUpdate": "n/a", "lastUpdateDate": 5, "lastModifiedDate": "2024-03-01"}),
    );
    assert_eq!(s.last_update, Some(utc(2024, 3, 1, 0, 0, 0)));
    let s = service(json!({"lastUpdate": "2024-01-01", "lastModifiedDate": "2024-03-01"}));
    assert_eq!(s.last_update, Some(utc(2024, 1, 1, 0, 0, 0)));
}

// ---------------------------------------------------------------- columns and cells

#[test]
fn columns_are_in_connector_order() {
    let names = |inventory| {
        Row::columns(inventory)
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(Inventory::Services),
        [
            "external_id",
            "name",
            "description",
            "status",
            "type",
            "start_date",
            "end_date",
            "last_update",
            "related_party",
            "location",
            "service_specification",
            "supporting_resources"
        ]
    );
    assert_eq!(
        names(Inventory::Carriers),
        [
            "external_id",
            "name",
            "description",
            "status",
            "type",
            "creation_date",
            "last_update",
            "service_characteristics",
            "supporting_services"
        ]
    );
    assert_eq!(
        names(Inventory::Resources),
        [
            "external_id",
            "name",
            "description",
            "status",
            "type",
            "resource_specification",
            "resource_characteristics",
            "related_parties",
            "locations",
            "resource_relationships"
        ]
    );
    let headings = Row::columns(Inventory::Services)
        .iter()
        .map(|c| c.heading)
        .collect::<Vec<_>>();
    assert_eq!(headings[0], "External ID");
    assert_eq!(headings[8], "Related Party");
    assert_eq!(
        Row::columns(Inventory::Carriers)[5].heading,
        "Creation Date"
    );
    assert_eq!(
        Row::columns(Inventory::Resources)[9].heading,
        "Resource Relationships"
    );
}

fn kind_of(cell: &Cell<'_>) -> ColumnKind {
    match cell {
        Cell::Text(_) => ColumnKind::Text,
        Cell::Time(_) => ColumnKind::Time,
        Cell::One(_) => ColumnKind::One,
        Cell::Many(_) => ColumnKind::Many,
    }
}

/// An item that fills every column of every inventory.
fn full_item() -> serde_json::Value {
    json!({
        "externalId": "X", "name": "N", "description": "D", "status": "S", "@type": "T",
        "startDate": "2024-01-01", "endDate": "2024-01-02", "lastUpdate": "2024-01-03",
        "creationDate": "2023-12-31",
        "relatedParty": [{"id": "p"}], "place": [{"id": "l"}],
        "serviceSpecification": {"id": "ss"}, "resourceSpecification": {"id": "rs"},
        "supportingResource": [{"id": "r"}], "supportingService": [{"id": "s"}],
        "serviceCharacteristic": [{"name": "c", "value": 1}],
        "resourceCharacteristic": [{"name": "c", "value": 2}],
        "resourceRelationship": [{"relationshipType": "contains", "id": "rr"}]
    })
}

#[test]
fn cells_match_column_kinds_and_names() {
    for inventory in Inventory::ALL {
        let row = Row::extract(inventory, &full_item());
        for (i, column) in Row::columns(inventory).iter().enumerate() {
            let cell = row.cell(i);
            assert_eq!(kind_of(&cell), column.kind, "{inventory}.{}", column.name);
            assert!(
                !cell.is_empty(),
                "{inventory}.{} should be filled",
                column.name
            );
            assert_eq!(row.cell_by_name(column.name), Some(cell));
        }
        assert_eq!(row.cell_by_name("nope"), None);
        assert_eq!(
            row.cell_by_name("External ID"),
            None,
            "headings are not names"
        );
        assert_eq!(row.external_id(), Some("X"));
        assert_eq!(row.status(), Some("S"));
        assert_eq!(row.item_type(), Some("T"));
    }
}

#[test]
#[should_panic(expected = "out of range")]
fn cell_out_of_range_panics() {
    let row = Row::extract(Inventory::Carriers, &json!({}));
    row.cell(Row::columns(Inventory::Carriers).len());
}

#[test]
fn cell_text_and_json() {
    let t = utc(2024, 3, 1, 10, 20, 30);
    let party = with_role(entry(Some("1"), Some("ACME")), "customer");
    let list = [entry(Some("a"), None), entry(None, Some("B"))];

    assert_eq!(Cell::Text(Some("x")).to_text().as_deref(), Some("x"));
    assert_eq!(Cell::Text(Some("x")).to_json(), json!("x"));
    assert_eq!(Cell::Text(None).to_text(), None);
    assert_eq!(Cell::Text(None).to_json(), json!(null));

    assert_eq!(
        Cell::Time(Some(t)).to_text().as_deref(),
        Some("2024-03-01T10:20:30Z")
    );
    let frac = t + chrono::Duration::milliseconds(5);
    assert_eq!(
        Cell::Time(Some(frac)).to_json(),
        json!("2024-03-01T10:20:30.005Z")
    );
    assert_eq!(Cell::Time(None).to_text(), None);
    assert_eq!(Cell::Time(None).to_json(), json!(null));

    assert_eq!(
        Cell::One(Some(Cow::Borrowed(&party))).to_text().as_deref(),
        Some("ACME (customer)")
    );
    assert_eq!(
        Cell::One(Some(Cow::Borrowed(&party))).to_json(),
        json!({"id": "1", "name": "ACME", "role": "customer"})
    );
    assert_eq!(Cell::One(None).to_text(), None);
    assert_eq!(Cell::One(None).to_json(), json!(null));

    assert_eq!(
        Cell::Many(Cow::Borrowed(&list)).to_text().as_deref(),
        Some("a; B")
    );
    assert_eq!(
        Cell::Many(Cow::Borrowed(&list)).to_json(),
        json!([{"id": "a"}, {"name": "B"}])
    );
    assert_eq!(Cell::Many(Cow::Borrowed(&[])).to_text(), None);
    assert_eq!(Cell::Many(Cow::Borrowed(&[])).to_json(), json!([]));
    assert!(Cell::Many(Cow::Borrowed(&[])).is_empty());
}

#[test]
fn entry_display() {
    let characteristic = Entry {
        name: Some("ElementType".into()),
        value: Some("Carrier".into()),
        value_type: Some("string".into()),
        ..Entry::default()
    };
    assert_eq!(characteristic.to_string(), "ElementType=Carrier");
    let relationship = Entry {
        id: Some("0d5c".into()),
        relationship_type: Some("contains".into()),
        ..Entry::default()
    };
    assert_eq!(relationship.to_string(), "contains: 0d5c");
    assert_eq!(
        with_role(entry(Some("9"), Some("Betzdorf")), "site").to_string(),
        "Betzdorf (site)"
    );
    assert_eq!(
        with_role(entry(Some("9"), None), "site").to_string(),
        "9 (site)"
    );
    assert_eq!(
        entry(Some("9"), Some("Name")).to_string(),
        "Name",
        "name before id"
    );
    assert_eq!(entry(Some("9"), None).to_string(), "9");
    // Never empty when any field is set.
    let role_only = with_role(Entry::default(), "billing");
    assert_eq!(role_only.to_string(), "(billing)");
    let value_only = Entry {
        value: Some("42".into()),
        ..Entry::default()
    };
    assert_eq!(value_only.to_string(), "42");
    let type_only = Entry {
        value_type: Some("String".into()),
        ..Entry::default()
    };
    assert!(!type_only.to_string().is_empty());
    let empty_value = Entry {
        value: Some("".into()),
        ..Entry::default()
    };
    assert!(!empty_value.to_string().is_empty());
    assert_eq!(Entry::default().to_string(), "");
}

#[test]
fn serialization_shapes() {
    let row = Row::extract(Inventory::Resources, &full_item());
    let value = serde_json::to_value(&row).unwrap();
    assert_eq!(
        value["type"],
        json!("T"),
        "r#type serializes as type; untagged row"
    );
    assert_eq!(
        value["resource_specification"],
        json!({"id": "rs"}),
        "None fields skipped"
    );
    assert_eq!(
        value["resource_relationships"],
        json!([{"id": "rr", "relationship_type": "contains"}])
    );
    let back: ResourceRow = serde_json::from_value(value).unwrap();
    assert_eq!(Row::Resource(back), row);
    let partial: ServiceRow = serde_json::from_value(json!({"name": "only"})).unwrap();
    assert_eq!(partial.name.as_deref(), Some("only"));
}

#[test]
fn a_cell_serializes_as_its_json() {
    for inventory in Inventory::ALL {
        for item in [
            full_item(),
            json!({}),
            json!({"name": "", "relatedParty": [{"id": ""}]}),
        ] {
            let row = Row::extract(inventory, &item);
            for i in 0..Row::columns(inventory).len() {
                let cell = row.cell(i);
                assert_eq!(
                    serde_json::to_value(&cell).unwrap(),
                    cell.to_json(),
                    "{inventory} column {i} of {item}"
                );
            }
        }
    }
    // What it writes, column by column, for a filled row and an empty one.
    let cells = |item: serde_json::Value| -> Vec<serde_json::Value> {
        let row = Row::extract(Inventory::Services, &item);
        (0..Row::columns(Inventory::Services).len())
            .map(|i| serde_json::from_str(&serde_json::to_string(&row.cell(i)).unwrap()).unwrap())
            .collect()
    };
    assert_eq!(
        cells(full_item()),
        [
            json!("X"),
            json!("N"),
            json!("D"),
            json!("S"),
            json!("T"),
            json!("2024-01-01T00:00:00Z"),
            json!("2024-01-02T00:00:00Z"),
            json!("2024-01-03T00:00:00Z"),
            json!({"id": "p"}),
            json!([{"id": "l"}]),
            json!({"id": "ss"}),
            json!([{"id": "r"}]),
        ]
    );
    let empty = cells(json!({"name": "", "relatedParty": [{"id": ""}]}));
    assert_eq!(empty[1], json!(null), "empty text is null");
    assert_eq!(empty[5], json!(null), "no date is null");
    assert_eq!(empty[8], json!(null), "no entry is null");
    assert_eq!(empty[9], json!([]), "no list is an empty array");
}

//! The OpenAPI 3.1 document of the read API, health, readiness and metrics, written from the
//! code that serves them: the route paths are the router's own constants ([`super::routes`]),
//! the list parameters are the query parser's ([`query::RESERVED`], [`query::DEFAULT_LIMIT`],
//! [`query::MAX_LIMIT`], and one equality filter per column of [`Row::columns`]), a row's schema
//! is its inventory's columns by kind, and the status, refresh and entry schemas are derived
//! from the structs the handlers serialize (`utoipa::ToSchema`). Served at
//! `GET /api/v1/openapi.json`, printed by `ses-inventory openapi`, and committed as
//! `docs/openapi.json` (a test fails when the file and this module disagree).

use super::body;
use super::query;
use super::routes;
use crate::model::inventory::Inventory;
use crate::model::row::{ColumnKind, Entry, Row};
use crate::model::status::{FullReason, Outcome, Phase, PollKind};
use crate::store::changes::{Change, ChangeKind};
use crate::sync::daemon::RequestOutcome;
use serde_json::{Map, Value, json};
use utoipa::PartialSchema;

/// The document, as served.
pub fn document() -> Value {
    let mut paths = Map::new();
    for inv in Inventory::ALL {
        paths.insert(routes::list(inv), json!({ "get": list(inv) }));
        paths.insert(
            format!("{}/{{id}}", routes::list(inv)),
            json!({ "get": item(inv) }),
        );
        paths.insert(
            routes::HISTORY.replace("{inventory}", inv.as_str()),
            json!({ "get": item_history(inv) }),
        );
    }
    paths.insert(routes::CHANGES.into(), json!({ "get": changes() }));
    paths.insert(routes::STATUS.into(), json!({ "get": status() }));
    paths.insert(routes::REFRESH.into(), json!({ "post": refresh() }));
    paths.insert(routes::OPENAPI.into(), json!({ "get": openapi() }));
    paths.insert(routes::HEALTHZ.into(), json!({ "get": healthz() }));
    paths.insert(routes::READYZ.into(), json!({ "get": readyz() }));
    paths.insert(routes::METRICS.into(), json!({ "get": metrics() }));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ses-inventory",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A live copy of SES's TMF 638/639 service, carrier and resource inventory.",
            "description": "The read API of the `ses-inventory` daemon. Every error is JSON \
                `{\"error\": \"...\"}` naming what was wrong. Answers are compressed when the \
                client asks (`Accept-Encoding: gzip` or `br`). Requests the HTTP parser refuses \
                are answered in the same JSON shape: a URI over 64 KiB with 414, a header \
                section too large with 431, a request that is not HTTP/1.1 with 400.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "security": [{ "bearer": [] }],
        "tags": [
            { "name": "inventory", "description": "The cached rows and items." },
            { "name": "daemon", "description": "Status, refresh, health, readiness, metrics." },
            { "name": "history", "description": "What changed and when: the change log kept in the store." },
        ],
        "paths": paths,
        "components": components(),
    })
}

/// The document as pretty JSON text with a final newline: what `docs/openapi.json` holds.
pub fn text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn response_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// The schema a `utoipa::ToSchema` derive wrote for `T`, as JSON.
fn derived<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or(Value::Null)
}

fn title(inv: Inventory) -> &'static str {
    match inv {
        Inventory::Services => "Service",
        Inventory::Carriers => "Carrier",
        Inventory::Resources => "Resource",
    }
}

/// The schema of a row of `inv`: `id`, then its columns, each shaped by its kind.
fn row_schema(inv: Inventory) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "id".into(),
        json!({ "type": "string", "description": "The cache key (the TMF `id`, else as configured)." }),
    );
    for column in Row::columns(inv) {
        let heading = column.heading;
        let schema = match column.kind {
            ColumnKind::Text => {
                json!({ "type": ["string", "null"], "description": format!("{heading} (empty: null)") })
            }
            ColumnKind::Time => json!({
                "type": ["string", "null"],
                "format": "date-time",
                "description": format!("{heading}, RFC 3339 UTC (none: null)"),
            }),
            ColumnKind::One => json!({
                "oneOf": [schema_ref("Entry"), { "type": "null" }],
                "description": format!("{heading} (none: null)"),
            }),
            ColumnKind::Many => {
                json!({ "type": "array", "items": schema_ref("Entry"), "description": heading })
            }
        };
        properties.insert(column.name.into(), schema);
    }
    json!({
        "type": "object",
        "description": format!(
            "A {} row: `id` and every column, or `id` and the columns named by `fields`.",
            title(inv).to_lowercase()
        ),
        "properties": properties,
        "required": ["id"],
        "additionalProperties": false,
    })
}

fn item_schema(inv: Inventory) -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" },
            "inventory": { "const": inv.as_str() },
            "row": schema_ref(&format!("{}Row", title(inv))),
            "upstream": { "description": "The item's JSON as the upstream sent it." },
            "first_seen": { "type": "string", "format": "date-time" },
            "last_seen": { "type": "string", "format": "date-time" },
        },
        "required": ["id", "inventory", "row", "upstream", "first_seen", "last_seen"],
        "additionalProperties": false,
    })
}

fn components() -> Value {
    let mut schemas = Map::new();
    for inv in Inventory::ALL {
        schemas.insert(format!("{}Row", title(inv)), row_schema(inv));
        schemas.insert(format!("{}Item", title(inv)), item_schema(inv));
    }
    let derived_schemas = [
        ("Entry", derived::<Entry>()),
        ("Status", derived::<body::Status>()),
        ("Ha", derived::<body::Ha>()),
        ("Inventories", derived::<body::Inventories>()),
        ("InventoryStatus", derived::<body::InventoryStatus>()),
        ("Report", derived::<body::Report>()),
        ("Skipped", derived::<body::Skipped>()),
        ("ErrorNote", derived::<body::ErrorNote>()),
        ("Phase", derived::<Phase>()),
        ("PollKind", derived::<PollKind>()),
        ("FullReason", derived::<FullReason>()),
        ("Outcome", derived::<Outcome>()),
        ("RequestOutcome", derived::<RequestOutcome>()),
        ("Change", derived::<Change>()),
        ("ChangeKind", derived::<ChangeKind>()),
    ];
    for (name, schema) in derived_schemas {
        schemas.insert(name.into(), schema);
    }
    let inventories: Map<String, Value> = Inventory::ALL
        .iter()
        .map(|inv| (inv.as_str().to_string(), schema_ref("RequestOutcome")))
        .collect();
    schemas.insert(
        "Refresh".into(),
        json!({
            "type": "object",
            "properties": {
                "kind": { "enum": ["full", "refresh"] },
                "inventories": { "type": "object", "properties": inventories, "additionalProperties": false },
            },
            "required": ["kind", "inventories"],
            "additionalProperties": false,
        }),
    );
    let ready: Map<String, Value> = Inventory::ALL
        .iter()
        .map(|inv| (inv.as_str().to_string(), json!({ "type": "boolean" })))
        .collect();
    schemas.insert(
        "Readiness".into(),
        json!({
            "type": "object",
            "properties": {
                "ready": { "type": "boolean" },
                "reason": { "type": "string", "description": "Which inventories are still waiting, their phase and last error." },
                "inventories": { "type": "object", "properties": ready, "additionalProperties": false },
            },
            "required": ["ready"],
            "additionalProperties": false,
        }),
    );
    schemas.insert(
        "ItemAt".into(),
        json!({
            "type": "object",
            "description": "An item as it was at a time: its upstream JSON then.",
            "properties": {
                "id": { "type": "string" },
                "inventory": { "enum": Inventory::ALL.iter().map(|i| i.as_str()).collect::<Vec<_>>() },
                "at": { "type": "string", "format": "date-time" },
                "upstream": { "type": "object" },
            },
            "required": ["id", "inventory", "at", "upstream"],
            "additionalProperties": false,
        }),
    );
    schemas.insert(
        "ItemHistory".into(),
        json!({
            "type": "object",
            "properties": {
                "id": { "type": "string" },
                "inventory": { "enum": Inventory::ALL.iter().map(|i| i.as_str()).collect::<Vec<_>>() },
                "current": { "type": ["object", "null"], "description": "Its upstream JSON now; null when it is not in the inventory." },
                "changes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "change": schema_ref("Change"),
                            "before": { "type": ["object", "null"], "description": "The upstream JSON this change replaced (updates and removals)." },
                        },
                        "required": ["change", "before"],
                        "additionalProperties": false,
                    },
                },
            },
            "required": ["id", "inventory", "current", "changes"],
            "additionalProperties": false,
        }),
    );
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "properties": { "error": { "type": "string", "description": "What was wrong, naming the parameter, item or path." } },
            "required": ["error"],
            "additionalProperties": false,
        }),
    );
    json!({
        "schemas": schemas,
        "responses": {
            "BadRequest": {
                "description": "A parameter that cannot be honoured; the message names it.",
                "content": json_content(schema_ref("Error")),
            },
            "Unauthorized": {
                "description": "`api.token` is set and the request has no or the wrong `Authorization: Bearer` header.",
                "headers": { "WWW-Authenticate": { "schema": { "type": "string" }, "required": true } },
                "content": json_content(schema_ref("Error")),
            },
            "NotFound": {
                "description": "No such item, inventory or path.",
                "content": json_content(schema_ref("Error")),
            },
            "StoreUnreadable": {
                "description": "The store's file could not be read (the message says why).",
                "content": json_content(schema_ref("Error")),
            },
            "NotModified": {
                "description": "`If-None-Match` names the current `ETag`: nothing changed.",
                "headers": { "ETag": header_ref("ETag") },
            },
        },
        "headers": {
            "ETag": {
                "description": "Lists and items: changes with every applied poll of the inventory (and every restart); the status: of its body.",
                "schema": { "type": "string" },
                "required": true,
            },
        },
        "parameters": {
            "IfNoneMatch": {
                "name": "If-None-Match",
                "in": "header",
                "description": "An `ETag` from an earlier answer: 304 without a body while it is current.",
                "schema": { "type": "string" },
            },
        },
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "`api.token` (or `api.token_file`): needed by `/api/...` (except this document) and `/metrics` when configured; never by `/healthz` and `/readyz`.",
            },
        },
    })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": schema })
}

fn list(inv: Inventory) -> Value {
    let columns = query::columns(inv).join(", ");
    let mut parameters = vec![
        json!({ "$ref": "#/components/parameters/IfNoneMatch" }),
        query_param(
            "q",
            "Case-insensitive substring of `id`, `external_id`, `name` or `description`.",
            json!({ "type": "string" }),
        ),
        query_param(
            "sort",
            &format!(
                "Columns to sort by, comma-separated; `-` before one sorts it descending. Text \
                 compares case-insensitively, empty cells sort last either way, ties by `id` \
                 (the default order). Columns: {columns}."
            ),
            json!({ "type": "string" }),
        ),
        query_param(
            "offset",
            "Rows to skip.",
            json!({ "type": "integer", "minimum": 0, "default": 0 }),
        ),
        query_param(
            "limit",
            "Rows to return at most.",
            json!({ "type": "integer", "minimum": 0, "maximum": query::MAX_LIMIT, "default": query::DEFAULT_LIMIT }),
        ),
        query_param(
            "after",
            "The cursor: the rows after this id, in the default order (not with `offset` or \
             another `sort`). The `Link` header's next page carries it.",
            json!({ "type": "string" }),
        ),
        query_param(
            "fields",
            &format!(
                "Only these columns, comma-separated (`id` is always included). Columns: {columns}."
            ),
            json!({ "type": "string" }),
        ),
    ];
    debug_assert_eq!(parameters.len(), query::RESERVED.len() + 1);
    for column in query::columns(inv) {
        let mut filter = query_param(
            column,
            &format!(
                "Equality on `{column}`'s text; repeat for any of the values; an empty value \
                 matches an empty cell."
            ),
            json!({ "type": "array", "items": { "type": "string" } }),
        );
        filter["style"] = json!("form");
        filter["explode"] = json!(true);
        parameters.push(filter);
    }
    let row = schema_ref(&format!("{}Row", title(inv)));
    json!({
        "tags": ["inventory"],
        "operationId": format!("list{}", capitalized(inv)),
        "summary": format!("The cached {inv}: filtered, searched, sorted and paged."),
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "One page of rows.",
                "headers": {
                    "X-Total-Count": { "description": "Rows matching before paging.", "schema": { "type": "integer", "minimum": 0 }, "required": true },
                    "X-Result-Count": { "description": "Rows in this answer.", "schema": { "type": "integer", "minimum": 0 }, "required": true },
                    "ETag": header_ref("ETag"),
                    "Link": { "description": "`<...>; rel=\"next\"`: the next page, when more rows follow.", "schema": { "type": "string" } },
                },
                "content": json_content(json!({ "type": "array", "items": row })),
            },
            "304": response_ref("NotModified"),
            "400": response_ref("BadRequest"),
            "401": response_ref("Unauthorized"),
        },
    })
}

fn capitalized(inv: Inventory) -> String {
    let name = inv.as_str();
    name[..1].to_uppercase() + &name[1..]
}

fn item(inv: Inventory) -> Value {
    json!({
        "tags": ["inventory"],
        "operationId": format!("get{}", title(inv)),
        "summary": format!("One {}: its row, the upstream JSON, first and last seen.", title(inv).to_lowercase()),
        "parameters": [
            { "name": "id", "in": "path", "required": true, "description": "The item's id (percent-encoded).", "schema": { "type": "string", "minLength": 1 } },
            { "$ref": "#/components/parameters/IfNoneMatch" },
            query_param(
                "at",
                "The item as it was at this time (RFC 3339, or a span back from now: `30m`, \
                 `24h`, `7d`), read from the change log: its upstream JSON then.",
                json!({ "type": "string" }),
            ),
        ],
        "responses": {
            "200": {
                "description": "The item (with `at`: its upstream JSON as it was then).",
                "headers": { "ETag": header_ref("ETag") },
                "content": json_content(json!({ "oneOf": [
                    schema_ref(&format!("{}Item", title(inv))),
                    schema_ref("ItemAt"),
                ] })),
            },
            "304": response_ref("NotModified"),
            "400": response_ref("BadRequest"),
            "401": response_ref("Unauthorized"),
            "404": response_ref("NotFound"),
            "503": response_ref("StoreUnreadable"),
        },
    })
}

fn item_history(inv: Inventory) -> Value {
    json!({
        "tags": ["history"],
        "operationId": format!("get{}History", title(inv)),
        "summary": format!("One {}'s changes in the change log, oldest first, each with the upstream JSON it replaced.", title(inv).to_lowercase()),
        "parameters": [
            { "name": "id", "in": "path", "required": true, "description": "The item's id (percent-encoded).", "schema": { "type": "string", "minLength": 1 } },
            { "$ref": "#/components/parameters/IfNoneMatch" },
        ],
        "responses": {
            "200": {
                "description": "The item's history.",
                "headers": { "ETag": header_ref("ETag") },
                "content": json_content(schema_ref("ItemHistory")),
            },
            "304": response_ref("NotModified"),
            "400": response_ref("BadRequest"),
            "401": response_ref("Unauthorized"),
            "404": response_ref("NotFound"),
            "503": response_ref("StoreUnreadable"),
        },
    })
}

fn changes() -> Value {
    let names: Vec<&str> = Inventory::ALL.iter().map(|inv| inv.as_str()).collect();
    let time = "RFC 3339, or a span back from now (`30m`, `24h`, `7d`).";
    json!({
        "tags": ["history"],
        "operationId": "listChanges",
        "summary": "The change log: what each poll added, updated (which columns, from what to what) and removed, newest first.",
        "parameters": [
            { "$ref": "#/components/parameters/IfNoneMatch" },
            query_param("inventory", "Only this inventory.", json!({ "enum": names })),
            query_param("id", "Only this item's changes.", json!({ "type": "string" })),
            query_param("kind", "Only these kinds, comma-separated: baseline, added, updated, removed.", json!({ "type": "string" })),
            query_param("column", "Only updates that changed this column.", json!({ "type": "string" })),
            query_param("since", &format!("Only changes at or after this time: {time}"), json!({ "type": "string" })),
            query_param("until", &format!("Only changes before this time: {time}"), json!({ "type": "string" })),
            query_param("poll", "Only the changes of the poll that started at this time (to the millisecond, as `poll_started` shows it).", json!({ "type": "string" })),
            query_param("after", "The cursor: entries older than this `seq`. The `Link` header's next page carries it.", json!({ "type": "integer" })),
            query_param("limit", "Entries to return at most.", json!({ "type": "integer", "minimum": 1, "maximum": super::history::MAX_LIMIT, "default": super::history::DEFAULT_LIMIT })),
        ],
        "responses": {
            "200": {
                "description": "One page of the change log.",
                "headers": {
                    "ETag": { "description": "Of the body.", "schema": { "type": "string" }, "required": true },
                    "Link": { "description": "`<...>; rel=\"next\"`: the next page, when more entries follow.", "schema": { "type": "string" } },
                },
                "content": json_content(json!({
                    "type": "object",
                    "properties": {
                        "changes": { "type": "array", "items": schema_ref("Change") },
                        "next": { "type": ["string", "null"], "description": "The next page's path and query, or null." },
                    },
                    "required": ["changes", "next"],
                    "additionalProperties": false,
                })),
            },
            "304": response_ref("NotModified"),
            "400": response_ref("BadRequest"),
            "401": response_ref("Unauthorized"),
            "404": response_ref("NotFound"),
            "503": response_ref("StoreUnreadable"),
        },
    })
}

fn status() -> Value {
    json!({
        "tags": ["daemon"],
        "operationId": "getStatus",
        "summary": "Per inventory: phase, readiness, items, the last passes; version, uptime, HA role.",
        "parameters": [{ "$ref": "#/components/parameters/IfNoneMatch" }],
        "responses": {
            "200": {
                "description": "The status.",
                "headers": { "ETag": header_ref("ETag") },
                "content": json_content(schema_ref("Status")),
            },
            "304": response_ref("NotModified"),
            "401": response_ref("Unauthorized"),
        },
    })
}

fn refresh() -> Value {
    let names: Vec<&str> = Inventory::ALL.iter().map(|inv| inv.as_str()).collect();
    json!({
        "tags": ["daemon"],
        "operationId": "refresh",
        "summary": "Asks the pollers for a poll now instead of at the next timer.",
        "parameters": [
            query_param("inventory", "Only this inventory (default: all three).", json!({ "enum": names })),
            query_param("full", "A full pass (which also finds deletions) instead of a refresh.", json!({ "type": "boolean", "default": false })),
        ],
        "responses": {
            "202": {
                "description": "What became of each request: `queued` (a poll starts now or right after the running one) or `joined` (one of that kind is running).",
                "content": json_content(schema_ref("Refresh")),
            },
            "400": response_ref("BadRequest"),
            "401": response_ref("Unauthorized"),
            "503": {
                "description": "No poller runs (shutting down, or a standby).",
                "content": json_content(schema_ref("Refresh")),
            },
        },
    })
}

fn openapi() -> Value {
    json!({
        "tags": ["daemon"],
        "operationId": "getOpenApi",
        "summary": "This document.",
        "security": [],
        "responses": {
            "200": {
                "description": "The OpenAPI 3.1 document.",
                "content": json_content(json!({ "type": "object" })),
            },
        },
    })
}

fn healthz() -> Value {
    json!({
        "tags": ["daemon"],
        "operationId": "getHealth",
        "summary": "Liveness: 200 while the process serves.",
        "security": [],
        "responses": {
            "200": {
                "description": "Alive.",
                "content": json_content(json!({
                    "type": "object",
                    "properties": { "status": { "const": "ok" } },
                    "required": ["status"],
                    "additionalProperties": false,
                })),
            },
        },
    })
}

fn readyz() -> Value {
    json!({
        "tags": ["daemon"],
        "operationId": "getReadiness",
        "summary": "Readiness: 200 once every inventory holds data from a complete full pass.",
        "security": [],
        "responses": {
            "200": { "description": "Ready.", "content": json_content(schema_ref("Readiness")) },
            "503": {
                "description": "Not ready: `reason` names the inventories still waiting, their phase and last error.",
                "content": json_content(schema_ref("Readiness")),
            },
        },
    })
}

fn metrics() -> Value {
    json!({
        "tags": ["daemon"],
        "operationId": "getMetrics",
        "summary": "Prometheus text exposition (format 0.0.4).",
        "responses": {
            "200": {
                "description": "The metrics.",
                "content": { "text/plain": { "schema": { "type": "string" } } },
            },
            "401": response_ref("Unauthorized"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_a_filter_and_a_row_property() {
        let doc = document();
        for inv in Inventory::ALL {
            let params = doc["paths"][routes::list(inv)]["get"]["parameters"]
                .as_array()
                .unwrap();
            let props = &doc["components"]["schemas"][format!("{}Row", title(inv))]["properties"];
            for column in query::columns(inv) {
                assert!(
                    params.iter().any(|p| p["name"] == column),
                    "{inv}: no filter {column}"
                );
                assert!(props.get(column).is_some(), "{inv}: no property {column}");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(refs.len() > 20, "{refs:?}");
        for r in refs {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::String(s) if k == "$ref" => out.push(s.clone()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(list) => list.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}

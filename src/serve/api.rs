//! The read API, health, readiness and metrics, over HTTP (axum on the daemon's runtime).
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/{services,carriers,resources}` | rows: filters, `q`, `sort`, `offset`/`limit`, `fields` ([`query`]) |
//! | `GET /api/v1/{inventory}/{id}` | one item: row, upstream JSON, first and last seen |
//! | `GET /api/v1/status` | per inventory: phase, readiness, items, last passes; version, uptime |
//! | `POST /api/v1/refresh` | asks pollers for a poll now (`inventory=`, `full=true`) |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (503 until every inventory is ready) |
//! | `GET /metrics` | Prometheus text ([`crate::telemetry::metrics`]) |
//! | `GET /api/v1/openapi.json` | the OpenAPI 3.1 document of all of the above ([`openapi`]) |
//!
//! The handlers; [`crate::serve::server`] routes them, with the web console's pages (`/`,
//! `/ui/...`, which sign in with a session cookie instead of the bearer token).
//!
//! `/api` and `/metrics` need `Authorization: Bearer <api.token>` when a token is configured;
//! the health endpoints never do. Every error is JSON `{"error": "..."}` naming what was wrong.
//!
//! Lists and items read the inventory's published [`crate::cache::View`] (an `Arc`, taken
//! without holding any lock of the pollers'): a list filters through the view's postings, pages
//! through its orders, and serializes one page; a slow client, or a large page, cannot stall a
//! poller. Lists, items and the status carry an `ETag` and answer `If-None-Match` with 304;
//! lists page by `offset` or by the cursor `after=<id>` (default order), and a `Link: <...>;
//! rel="next"` header gives the next page.

pub mod auth;
pub mod body;
pub mod etag;
pub mod failure;
pub mod history;
pub mod link;
pub mod openapi;
pub mod parse_errors;
pub mod query;
pub mod routes;
pub(super) mod warm;

use crate::mirror::lease::HaStatus;
use crate::model::inventory::Inventory;
use crate::serve::state::AppState;
use crate::sync::daemon::RequestOutcome;
use crate::telemetry::metrics;
use crate::time::format;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use failure::{Failure, bad_request, inventory};
use query::ListQuery;
use serde_json::{Map, json};
use std::sync::Arc;

pub(super) async fn not_found(uri: Uri) -> Failure {
    Failure(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {}", uri.path()),
    )
}

pub(super) async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Failure {
    Failure(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

pub(super) async fn require_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    match &state.token {
        Some(token) if !auth::authorized(&headers, token) => {
            let mut response = Failure(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <api.token>)".into(),
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ses-inventory\""),
            );
            response
        }
        _ => next.run(request).await,
    }
}

fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, Failure> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| bad_request(format!("malformed query string: {e}")))
}

fn json_body(status: StatusCode, body: &impl serde::Serialize) -> Response {
    // The bodies are JSON values or plain structs of strings, numbers and dates: serializing
    // them cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

pub(super) async fn list(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    request: HeaderMap,
) -> Result<Response, Failure> {
    let Path(name) = path.map_err(|e| bad_request(e.body_text()))?;
    let inv = inventory(&name)?;
    let pairs = query_pairs(&uri)?;
    let query = ListQuery::parse(inv, &pairs).map_err(bad_request)?;
    let view = state.cache.view(inv); // published whole after each poll; no lock is held
    let tag = etag::of_view(state.boot, inv, view.generation());
    if etag::matches(&request, &tag) {
        return Ok(etag::not_modified(tag));
    }
    // What may take long (a scan for `q` or an unindexed filter, a sort by several columns, the
    // first build of a column's order) runs off the async workers, so that cheap requests
    // are not held up behind it.
    let query = Arc::new(query);
    let page = if query.may_be_slow(&view) {
        let (query, view) = (query.clone(), view.clone());
        tokio::task::spawn_blocking(move || query.run(&view))
            .await
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    } else {
        query.run(&view)
    };
    let shown = page.len();
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        page.to_json(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    headers.insert("x-result-count", HeaderValue::from(shown));
    headers.insert(header::ETAG, tag);
    if let Some(link) = page
        .next
        .as_ref()
        .and_then(|next| link::next_link(uri.path(), &pairs, next))
    {
        headers.insert(header::LINK, link);
    }
    Ok(response)
}

pub(super) async fn one(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    request: HeaderMap,
) -> Result<Response, Failure> {
    let Path((name, id)) = path.map_err(|e| bad_request(e.body_text()))?;
    let inv = inventory(&name)?;
    if let Some((_, at)) = query_pairs(&uri)?.into_iter().find(|(k, _)| k == "at") {
        return history::at(state, inv, id, &at, request).await;
    }
    let view = state.cache.view(inv);
    // An item that is not there is 404 whatever the precondition (`If-None-Match: *` included).
    let item = view.get(&id).ok_or_else(|| {
        Failure(
            StatusCode::NOT_FOUND,
            format!("no {inv} item with id `{id}`"),
        )
    })?;
    let tag = etag::of_view(state.boot, inv, view.generation());
    if etag::matches(&request, &tag) {
        return Ok(etag::not_modified(tag));
    }
    let body = json!({
        "id": item.key.as_str(),
        "inventory": inv,
        "row": query::full_row(inv, item),
        "upstream": item.json(),
        "first_seen": format::millis(item.first_seen),
        "last_seen": format::millis(item.last_seen()),
    });
    let mut response = json_body(StatusCode::OK, &body);
    response.headers_mut().insert(header::ETAG, tag);
    Ok(response)
}

pub(super) async fn changes(
    State(state): State<AppState>,
    uri: Uri,
    request: HeaderMap,
) -> Result<Response, Failure> {
    let pairs = query_pairs(&uri)?;
    history::list(state, uri.path(), pairs, request).await
}

pub(super) async fn item_history(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: HeaderMap,
) -> Result<Response, Failure> {
    let Path((name, id)) = path.map_err(|e| bad_request(e.body_text()))?;
    history::item(state, &name, id, request).await
}

pub(super) async fn status(State(state): State<AppState>, request: HeaderMap) -> Response {
    let inventory = |inv: Inventory| {
        body::InventoryStatus::new(
            state.cache.status(inv),
            state.cache.is_ready(inv),
            state.cache.len(inv),
        )
    };
    let status = body::Status {
        version: env!("CARGO_PKG_VERSION"),
        started: format::millis(state.started_at),
        uptime_seconds: state.started.elapsed().as_secs(),
        ready: state.cache.all_ready(),
        inventories: body::Inventories {
            services: inventory(Inventory::Services),
            carriers: inventory(Inventory::Carriers),
            resources: inventory(Inventory::Resources),
        },
        ha: body::Ha::new(
            &state
                .ha
                .as_ref()
                .map_or_else(HaStatus::off, |ha| ha.borrow().clone()),
        ),
    };
    etag::json_of_body(&request, serde_json::to_vec(&status).unwrap_or_default())
}

pub(super) async fn refresh(State(state): State<AppState>, uri: Uri) -> Result<Response, Failure> {
    let mut targets: Vec<Inventory> = Inventory::ALL.to_vec();
    let mut full = false;
    for (key, value) in query_pairs(&uri)? {
        match key.as_str() {
            "inventory" => {
                targets = vec![inventory(&value).map_err(|e| bad_request(e.1))?];
            }
            "full" => {
                full = match value.as_str() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(bad_request(format!(
                            "`full={value}` is not valid: true or false"
                        )));
                    }
                }
            }
            other => {
                return Err(bad_request(format!(
                    "unknown parameter `{other}`: expected inventory or full"
                )));
            }
        }
    }
    let mut outcomes = Map::new();
    let mut any = false;
    for inv in targets {
        let outcome = state.control().request_poll(inv, full);
        any |= outcome != RequestOutcome::Unavailable;
        outcomes.insert(inv.as_str().into(), json!(outcome));
    }
    let status = if any {
        StatusCode::ACCEPTED
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let kind = if full { "full" } else { "refresh" };
    Ok(json_body(
        status,
        &json!({ "kind": kind, "inventories": outcomes }),
    ))
}

pub(super) async fn healthz() -> Response {
    json_body(StatusCode::OK, &json!({ "status": "ok" }))
}

pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    if state.cache.all_ready() {
        return json_body(StatusCode::OK, &json!({ "ready": true }));
    }
    let mut waiting = Vec::new();
    let mut inventories = Map::new();
    for inv in Inventory::ALL {
        let ready = state.cache.is_ready(inv);
        inventories.insert(inv.as_str().into(), ready.into());
        if !ready {
            let s = state.cache.status(inv);
            let mut why = format!("{inv} ({}", s.phase.as_str());
            if let Some(e) = &s.last_error {
                why.push_str(": ");
                why.push_str(&e.message);
            }
            why.push(')');
            waiting.push(why);
        }
    }
    let reason = format!(
        "waiting for the first complete full pass of {}",
        waiting.join(", ")
    );
    json_body(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({ "ready": false, "reason": reason, "inventories": inventories }),
    )
}

/// The OpenAPI document ([`openapi`]), built once.
pub(super) async fn openapi_json() -> Response {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = TEXT.get_or_init(openapi::text);
    ([(header::CONTENT_TYPE, "application/json")], text.as_str()).into_response()
}

pub(super) async fn metrics_text(State(state): State<AppState>) -> Response {
    let text = metrics::render(&state.cache);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

//! What changed, and when: the change log (`GET /api/v1/changes`), an item's history
//! (`GET /api/v1/{inventory}/{id}/history`) and an item as it was (`GET
//! /api/v1/{inventory}/{id}?at=<time>`), read from the store's change log
//! ([`crate::store::changes`]) on a blocking thread, a read-only connection per request.
//! Without a store (`store.path` empty) they answer 404 naming the setting.

use super::failure::{Failure, bad_request, inventory};
use super::{etag, link};
use crate::model::inventory::Inventory;
use crate::serve::state::AppState;
use crate::store::changes::{self, ChangeFilter, ChangeKind};
use crate::time::format;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::path::PathBuf;

/// Entries on a page of the change log unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// The parameters `GET /api/v1/changes` takes.
pub const PARAMETERS: [&str; 9] = [
    "inventory",
    "id",
    "kind",
    "column",
    "since",
    "until",
    "poll",
    "after",
    "limit",
];

/// The filter a query string asks for, or an error naming the parameter that is wrong.
pub fn filter(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<ChangeFilter, String> {
    let mut f = ChangeFilter {
        limit: DEFAULT_LIMIT,
        ..ChangeFilter::default()
    };
    let time = |k: &str, v: &str| {
        format::parse_or_span(v, now).ok_or_else(|| {
            format!("{k}: `{v}` is neither an RFC 3339 time nor a span like 30m, 24h or 7d")
        })
    };
    for (k, v) in pairs {
        match k.as_str() {
            "inventory" => {
                f.inventory = Some(
                    v.parse::<Inventory>()
                        .ok()
                        .filter(|i| i.as_str() == v)
                        .ok_or_else(|| {
                            format!("inventory: `{v}` is not services, carriers or resources")
                        })?,
                )
            }
            "id" => f.key = Some(v.clone()),
            "kind" => {
                for k in v.split(',') {
                    f.kinds.push(ChangeKind::parse(k).ok_or_else(|| {
                        format!("kind: `{k}` is not baseline, added, updated or removed")
                    })?);
                }
            }
            "column" => f.column = Some(v.clone()),
            "since" => f.since = Some(time(k, v)?),
            "until" => f.until = Some(time(k, v)?),
            "poll" => f.poll = Some(time(k, v)?),
            "after" => {
                f.before_id = Some(
                    v.parse()
                        .map_err(|_| format!("after: `{v}` is not an entry's seq"))?,
                )
            }
            "limit" => {
                f.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| format!("limit: `{v}` is not a number from 1 to {MAX_LIMIT}"))?
            }
            other => {
                return Err(format!(
                    "unknown parameter `{other}` (the change log takes {})",
                    PARAMETERS.join(", ")
                ));
            }
        }
    }
    Ok(f)
}

fn store_of(state: &AppState) -> Result<PathBuf, Failure> {
    state.store.clone().ok_or_else(|| {
        Failure(
            StatusCode::NOT_FOUND,
            "no change log: the daemon runs without a store (store.path is empty)".into(),
        )
    })
}

/// Runs `read` on a read-only connection to the store at `path`, on a blocking thread (the
/// API's history handlers and the console's pages); the error as text.
pub(crate) async fn read<T: Send + 'static>(
    path: PathBuf,
    read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(move || {
        let conn = crate::store::open_read_only(&path).map_err(|e| e.to_string())?;
        read(&conn).map_err(|e| format!("reading the change log: {e}"))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// [`read`] for the API: a store that cannot be read is 503.
async fn read_or_503<T: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    read(path, f)
        .await
        .map_err(|e| Failure(StatusCode::SERVICE_UNAVAILABLE, e))
}

/// A JSON body with a strong tag of its bytes (or 304), and a `Link` to the next page.
fn tagged(request: &HeaderMap, body: &serde_json::Value, link: Option<HeaderValue>) -> Response {
    let mut response = etag::json_of_body(request, serde_json::to_vec(body).unwrap_or_default());
    if let Some(link) = link.filter(|_| response.status() == StatusCode::OK) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// `GET /api/v1/changes`: newest first, a page at a time (`after=<seq>` the cursor).
pub(super) async fn list(
    state: AppState,
    path: &str,
    pairs: Vec<(String, String)>,
    request: HeaderMap,
) -> Result<Response, Failure> {
    let f = filter(&pairs, Utc::now()).map_err(bad_request)?;
    let store = store_of(&state)?;
    let limit = f.limit;
    let mut entries = read_or_503(store, move |conn| changes::list(conn, &f)).await?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next = more
        .then(|| entries.last().map(|c| c.seq))
        .flatten()
        .map(|seq| {
            let mut pairs: Vec<(String, String)> =
                pairs.into_iter().filter(|(k, _)| k != "after").collect();
            pairs.push(("after".into(), seq.to_string()));
            format!("{path}{}", link::query(&pairs))
        });
    let link = next
        .as_ref()
        .and_then(|n| HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")).ok());
    let body = json!({ "changes": entries, "next": next });
    Ok(tagged(&request, &body, link))
}

/// `GET /api/v1/{inventory}/{id}/history`: the item's changes, oldest first, each with the
/// upstream JSON it replaced (`before`).
pub(super) async fn item(
    state: AppState,
    name: &str,
    id: String,
    request: HeaderMap,
) -> Result<Response, Failure> {
    let inv = inventory(name)?;
    let store = store_of(&state)?;
    let key = id.clone();
    let versions = read_or_503(store, move |conn| changes::versions(conn, inv, &key)).await?;
    let current = state.cache.view(inv).get(&id).cloned();
    if versions.is_empty() && current.is_none() {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            format!("no {inv} item with id `{id}`, now or in the change log"),
        ));
    }
    let changes: Vec<_> = versions
        .into_iter()
        .map(|(change, before)| {
            let before = before.and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok());
            json!({ "change": change, "before": before })
        })
        .collect();
    let body = json!({
        "id": id,
        "inventory": inv,
        "current": current.map(|item| item.json()),
        "changes": changes,
    });
    Ok(tagged(&request, &body, None))
}

/// `GET /api/v1/{inventory}/{id}?at=<time>`: the item's upstream JSON as it was then.
pub(super) async fn at(
    state: AppState,
    inv: Inventory,
    id: String,
    at: &str,
    request: HeaderMap,
) -> Result<Response, Failure> {
    let when = format::parse_or_span(at, Utc::now()).ok_or_else(|| {
        bad_request(format!(
            "at: `{at}` is neither an RFC 3339 time nor a span like 30m, 24h or 7d"
        ))
    })?;
    let store = store_of(&state)?;
    let key = id.clone();
    let json = read_or_503(store, move |conn| changes::item_at(conn, inv, &key, when)).await?;
    let Some(json) = json else {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            format!(
                "no {inv} item with id `{id}` at {} (not yet added, already removed, or before the change log)",
                format::millis(when)
            ),
        ));
    };
    let upstream: serde_json::Value =
        serde_json::from_str(&json).unwrap_or(serde_json::Value::Null);
    let body = json!({
        "id": id,
        "inventory": inv,
        "at": format::millis(when),
        "upstream": upstream,
    });
    Ok(tagged(&request, &body, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_parameter_is_named() {
        let now = Utc::now();
        let pairs = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let err = |k: &str, v: &str| filter(&pairs(k, v), now).unwrap_err();
        assert!(err("kind", "added,moved").starts_with("kind: `moved`"));
        assert!(err("limit", "0").starts_with("limit: `0`"));
        assert!(err("limit", "1001").starts_with("limit: `1001`"));
        assert!(err("inventory", "Services").starts_with("inventory: `Services`"));
        assert!(err("since", "yesterday").starts_with("since: `yesterday`"));
        assert!(err("sort", "id").contains("unknown parameter `sort`"));
        let f = filter(&pairs("kind", "added,removed"), now).unwrap();
        assert_eq!(f.kinds, vec![ChangeKind::Added, ChangeKind::Removed]);
        assert_eq!(f.limit, DEFAULT_LIMIT);
    }
}

//! `GET /ui/{inventory}/{id}`: one item — its row (as the API renders it), first and last
//! seen, the items it refers to and the items that refer to it (linked when cached), its
//! history in the change log with two versions side by side (`?a=&b=`, [`history`]), and the
//! upstream JSON, pretty-printed and collapsible. An item no longer in the cache that the change
//! log knows shows its history alone.

use super::history;
use super::html::{self, Esc, Nav};
use super::overview::title;
use super::sessions::Session;
use super::table::{cell_text, inventory};
use crate::cache::View;
use crate::model::inventory::Inventory;
use crate::model::item::Item;
use crate::model::row::{Cell, Entry, Row};
use crate::serve::api::query::full_row;
use crate::serve::state::AppState;
use axum::Extension;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use std::fmt::Write;
use std::sync::Arc;

/// The references between inventories: an item of the first, in this column, names items of
/// the second by their key.
const LINKS: [(Inventory, &str, Inventory); 3] = [
    (
        Inventory::Services,
        "supporting_resources",
        Inventory::Resources,
    ),
    (
        Inventory::Carriers,
        "supporting_services",
        Inventory::Services,
    ),
    (
        Inventory::Resources,
        "resource_relationships",
        Inventory::Resources,
    ),
];

/// At most this many referring items are listed.
const MAX_REFERRERS: usize = 100;

/// The entries of a list column of `item` (none for another kind of column).
fn entries<'i>(item: &'i Item, column: &str) -> Vec<Entry<'i>> {
    match item.cell_by_name(column) {
        Some(Cell::Many(list)) => list.into_owned(),
        _ => Vec::new(),
    }
}

/// `GET /ui/{inventory}/{id}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Response {
    let Ok(Path((name, id))) = path else {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            Some(&session),
            "malformed item path",
        );
    };
    let Some(inv) = inventory(&name) else {
        return html::error_page(
            StatusCode::NOT_FOUND,
            Some(&session),
            &format!("no inventory `{name}`: services, carriers or resources"),
        );
    };
    // `a` and `b` pick the versions compared; nothing else is read from the query.
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let versions = history::versions(&state, inv, &id).await;
    let Some(item) = state.cache.get(inv, &id) else {
        return match &versions {
            Some(found) if found.as_ref().is_ok_and(|v| !v.is_empty()) => {
                gone(&session, inv, &id, found, &pairs)
            }
            _ => html::error_page(
                StatusCode::NOT_FOUND,
                Some(&session),
                &format!("no {inv} item with id `{id}` in the cache"),
            ),
        };
    };
    let now = Utc::now();
    let row = full_row(inv, &item);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p><a href=\"/ui/{inv}\">← {}</a> · <a href=\"/api/v1/{inv}/{}\">as JSON (API)</a></p>\
         <dl class=\"facts\" id=\"row\"><dt>ID</dt><dd id=\"item-id\">{}</dd>\
         <dt>First seen</dt><dd>{}</dd><dt>Last seen</dt><dd>{}</dd>",
        title(inv),
        Esc(&html::url(&id)),
        Esc(&id),
        html::time(Some(item.first_seen), now),
        html::time(Some(item.last_seen()), now),
    );
    for column in Row::columns(inv) {
        let _ = write!(body, "<dt>{}</dt><dd>", column.heading);
        match LINKS
            .iter()
            .find(|(from, c, _)| *from == inv && *c == column.name)
        {
            Some(&(_, _, to)) => {
                let list = entries(&item, column.name);
                let found = state
                    .cache
                    .get_many(to, list.iter().map(|e| e.id.as_deref().unwrap_or_default()));
                body.push_str("<ul>");
                for (entry, cached) in list.iter().zip(found) {
                    match (cached, entry.id.as_deref()) {
                        (Some(_), Some(key)) => {
                            let _ = write!(
                                body,
                                "<li><a href=\"/ui/{to}/{}\">{}</a></li>",
                                Esc(&html::url(key)),
                                Esc(&entry.to_string())
                            );
                        }
                        _ => {
                            let _ = write!(
                                body,
                                "<li>{} <span class=\"muted\">(not in the cache)</span></li>",
                                Esc(&entry.to_string())
                            );
                        }
                    }
                }
                body.push_str("</ul>");
            }
            None => {
                let text = row.get(column.name).map(cell_text).unwrap_or_default();
                body.push_str(&Esc(&text).to_string());
            }
        }
        body.push_str("</dd>");
    }
    body.push_str("</dl>");
    referrers(&mut body, &state, inv, item.key.as_str()).await;
    history::section(
        &mut body,
        inv,
        &id,
        versions.as_ref(),
        Some(item.raw()),
        &pairs,
        now,
    );
    let pretty = serde_json::to_string_pretty(&item.json()).unwrap_or_default();
    let _ = write!(
        body,
        "<details open id=\"upstream\"><summary>Upstream JSON, as received</summary>\
         <pre><code>{}</code></pre></details>",
        Esc(&pretty)
    );
    let name_text = item.cell_by_name("name").and_then(|c| c.to_text());
    let heading = match &name_text {
        Some(n) => format!("{n} ({})", title(inv)),
        None => format!("{id} ({})", title(inv)),
    };
    html::page(StatusCode::OK, &heading, nav(inv), Some(&session), &body)
}

fn nav(inv: Inventory) -> Nav {
    match inv {
        Inventory::Services => Nav::Services,
        Inventory::Carriers => Nav::Carriers,
        Inventory::Resources => Nav::Resources,
    }
}

/// The page of an item that is no longer in the cache but is in the change log: its history.
fn gone(
    session: &Session,
    inv: Inventory,
    id: &str,
    found: &Result<history::Versions, String>,
    pairs: &[(String, String)],
) -> Response {
    let now = Utc::now();
    let mut body = String::new();
    let last = found.as_ref().ok().and_then(|v| v.last()).map(|(c, _)| c);
    let _ = write!(
        body,
        "<p><a href=\"/ui/{inv}\">← {}</a></p>\
         <p class=\"notice\" id=\"not-cached\">Not in the inventory now{}.</p>\
         <dl class=\"facts\" id=\"row\"><dt>ID</dt><dd id=\"item-id\">{}</dd></dl>",
        title(inv),
        match last {
            Some(c) if c.kind == crate::store::changes::ChangeKind::Removed => format!(
                ": removed {} ({})",
                super::changes::at(c, now),
                Esc(c.reason.as_deref().unwrap_or_default())
            ),
            _ => String::new(),
        },
        Esc(id),
    );
    history::section(&mut body, inv, id, Some(found), None, pairs, now);
    let heading = format!("{id} ({})", title(inv));
    html::page(StatusCode::OK, &heading, nav(inv), Some(session), &body)
}

/// The items whose reference columns name `key`: a scan of the referring inventories' views, on
/// a blocking thread (it reads every item of them).
async fn referrers(body: &mut String, state: &AppState, inv: Inventory, key: &str) {
    let scans: Vec<(Inventory, &'static str, Arc<View>)> = LINKS
        .iter()
        .filter(|(_, _, to)| *to == inv)
        .map(|&(from, column, _)| (from, column, state.cache.view(from)))
        .collect();
    let key = key.to_string();
    let scanned = tokio::task::spawn_blocking(move || {
        scans
            .into_iter()
            .map(|(from, column, view)| {
                let found: Vec<(String, String)> = view
                    .items()
                    .iter()
                    .filter(|other| {
                        entries(other, column)
                            .iter()
                            .any(|e| e.id.as_deref() == Some(key.as_str()))
                    })
                    .map(|other| {
                        let label = other
                            .cell_by_name("name")
                            .and_then(|c| c.to_text())
                            .unwrap_or_else(|| other.key.to_string());
                        (other.key.to_string(), label)
                    })
                    .collect();
                (from, column, found)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (from, column, mut found) in scanned {
        if found.is_empty() {
            continue;
        }
        found.sort();
        let heading = Row::columns(from)
            .iter()
            .find(|c| c.name == column)
            .map_or(column, |c| c.heading);
        let _ = write!(
            body,
            "<section id=\"referrers-{from}\"><h2>{} that list it in {heading} ({})</h2><ul>",
            title(from),
            found.len()
        );
        for (k, label) in found.iter().take(MAX_REFERRERS) {
            let _ = write!(
                body,
                "<li><a href=\"/ui/{from}/{}\">{}</a> <span class=\"muted\">{}</span></li>",
                Esc(&html::url(k)),
                Esc(label),
                Esc(k)
            );
        }
        body.push_str("</ul></section>");
    }
}

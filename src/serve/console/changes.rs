//! `GET /ui/changes`: the store's change log, newest first, a page at a time.
//!
//! The page's query string is the API's (`GET /api/v1/changes`): the same parameters, parsed by
//! the API's own [`history::filter`] and read by the same [`changes::list`], so the page shows
//! exactly the entries the API answers for the same query, and pages by the same cursor
//! (`after=<seq>`). The filter form (GET) only writes such a query string; the empty fields a
//! form sends are dropped by a redirect, so the address bar always holds a query the API takes.
//! Without a store (`store.path` empty) the page says so.

use super::html::{self, Esc, Nav};
use super::overview::title;
use super::sessions::Session;
use crate::model::inventory::Inventory;
use crate::model::row::Row;
use crate::serve::api::history;
use crate::serve::state::AppState;
use crate::store::changes::{self, Change, ChangeKind};
use crate::time::format;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use std::fmt::Write;

/// What the page says when the daemon keeps no store.
pub(crate) const NO_STORE: &str =
    "The daemon runs without a store (store.path is empty): there is no change log.";

/// What a removal's reason means.
fn reason_text(reason: &str) -> &str {
    match reason {
        "gone" => "gone upstream",
        "not_kept" => "left the keep rules",
        other => other,
    }
}

/// What an entry says about its change, as HTML: an update's columns (`name: before → after`),
/// a removal's reason, a baseline's item count.
pub(crate) fn details(c: &Change) -> String {
    let mut out = String::new();
    match c.kind {
        ChangeKind::Updated => {
            let columns = c.columns.as_ref().and_then(|v| v.as_object());
            match columns.filter(|m| !m.is_empty()) {
                None => out.push_str("<span class=\"muted\">outside the columns</span>"),
                Some(map) => {
                    out.push_str("<ul class=\"columns-changed\">");
                    for (name, pair) in map {
                        let side = |i: usize| match pair.get(i) {
                            Some(serde_json::Value::String(s)) => Esc(s).to_string(),
                            Some(serde_json::Value::Null) | None => {
                                "<span class=\"muted\">(empty)</span>".to_string()
                            }
                            Some(other) => Esc(&other.to_string()).to_string(),
                        };
                        let _ = write!(
                            out,
                            "<li data-column=\"{n}\"><code>{n}</code>: <del>{}</del> → <ins>{}</ins></li>",
                            side(0),
                            side(1),
                            n = Esc(name),
                        );
                    }
                    out.push_str("</ul>");
                }
            }
        }
        ChangeKind::Removed => {
            let reason = c.reason.as_deref().unwrap_or_default();
            let _ = write!(
                out,
                "<span class=\"reason\" data-reason=\"{r}\">{}</span> <span class=\"muted\">({r})</span>",
                Esc(reason_text(reason)),
                r = Esc(reason),
            );
        }
        ChangeKind::Baseline => {
            let _ = write!(
                out,
                "first fill: {} items",
                html::count(c.items.unwrap_or(0).max(0) as u64)
            );
        }
        ChangeKind::Added => {}
    }
    out
}

/// The poll that made an entry, linked to that poll's changes.
pub(crate) fn poll_link(c: &Change) -> String {
    let pairs = [
        ("poll".to_string(), c.poll_started.clone()),
        ("inventory".to_string(), c.inventory.as_str().to_string()),
    ];
    let what = match c.poll_kind.as_str() {
        "full" => "full pass",
        other => other,
    };
    let reason = c
        .poll_reason
        .as_deref()
        .map(|r| format!(" ({})", Esc(r)))
        .unwrap_or_default();
    format!(
        "<a href=\"/ui/changes{}\" title=\"the changes of this poll\">{}{reason}</a>",
        Esc(&html::query(&pairs)),
        Esc(what),
    )
}

/// An entry's time (`at`, as the API writes it) for people.
pub(crate) fn at(c: &Change, now: chrono::DateTime<Utc>) -> String {
    match format::parse(&c.at) {
        Some(t) => html::time(Some(t), now),
        None => Esc(&c.at).to_string(),
    }
}

/// The value of the first `key` in `pairs`, or `""`.
fn value<'p>(pairs: &'p [(String, String)], key: &str) -> &'p str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// The filter form: inventory, kinds, column, since, until, id; `poll` and `limit` travel along.
fn form(body: &mut String, pairs: &[(String, String)]) {
    let inventory = value(pairs, "inventory");
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/ui/changes\" class=\"filters\" role=\"search\" \
         aria-label=\"Filter the change log\">\
         <div class=\"field\"><label for=\"f-inventory\">Inventory</label>\
         <select id=\"f-inventory\" name=\"inventory\"><option value=\"\">any</option>"
    );
    for inv in Inventory::ALL {
        let selected = if inventory == inv.as_str() {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{inv}\"{selected}>{}</option>",
            title(inv)
        );
    }
    body.push_str("</select></div><fieldset id=\"filter-kind\"><legend>Kind</legend>");
    let chosen: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "kind")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    for kind in ChangeKind::ALL {
        let k = kind.as_str();
        let checked = if chosen.contains(&k) { " checked" } else { "" };
        let _ = write!(
            body,
            "<label for=\"kind-{k}\"><input type=\"checkbox\" id=\"kind-{k}\" name=\"kind\" \
             value=\"{k}\"{checked}> {k}</label>"
        );
    }
    body.push_str("</fieldset>");
    // The columns of every inventory, offered (any text is taken, as by the API).
    let mut names: Vec<&str> = Inventory::ALL
        .iter()
        .flat_map(|inv| Row::columns(*inv).iter().map(|c| c.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    let _ = write!(
        body,
        "<div class=\"field\"><label for=\"f-column\">Column changed</label>\
         <input type=\"search\" id=\"f-column\" name=\"column\" value=\"{}\" list=\"column-names\" \
         placeholder=\"name, status, ...\"><datalist id=\"column-names\">",
        Esc(value(pairs, "column"))
    );
    for name in names {
        let _ = write!(body, "<option value=\"{name}\">");
    }
    let _ = write!(
        body,
        "</datalist></div>\
         <div class=\"field\"><label for=\"f-since\">Since</label>\
         <input type=\"search\" id=\"f-since\" name=\"since\" value=\"{}\" placeholder=\"24h, 7d or RFC 3339\"></div>\
         <div class=\"field\"><label for=\"f-until\">Until</label>\
         <input type=\"search\" id=\"f-until\" name=\"until\" value=\"{}\" placeholder=\"1h or RFC 3339\"></div>\
         <div class=\"field\"><label for=\"f-id\">ID (exact)</label>\
         <input type=\"search\" id=\"f-id\" name=\"id\" value=\"{}\"></div>",
        Esc(value(pairs, "since")),
        Esc(value(pairs, "until")),
        Esc(value(pairs, "id")),
    );
    // What the form does not show travels along; paging starts again.
    for (k, v) in pairs {
        if k == "poll" || k == "limit" {
            let _ = write!(
                body,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                Esc(k),
                Esc(v)
            );
        }
    }
    body.push_str(
        "<div class=\"field\"><button type=\"submit\" id=\"apply\">Apply</button></div>\
         <div class=\"field\"><a href=\"/ui/changes\">Reset</a></div></form>",
    );
}

/// `pairs` without `key`.
fn without(pairs: &[(String, String)], key: &str) -> Vec<(String, String)> {
    pairs.iter().filter(|(k, _)| k != key).cloned().collect()
}

fn bad_query(session: &Session, pairs: &[(String, String)], message: &str) -> Response {
    let mut body = String::new();
    form(&mut body, pairs);
    let _ = write!(
        body,
        "<p class=\"error\" role=\"alert\" id=\"query-error\">{}</p>\
         <p><a href=\"/ui/changes\">Show every change</a></p>",
        Esc(message)
    );
    html::page(
        StatusCode::BAD_REQUEST,
        "Changes",
        Nav::Changes,
        Some(session),
        &body,
    )
}

/// `GET /ui/changes`.
pub async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    uri: Uri,
) -> Response {
    let pairs = match Query::<Vec<(String, String)>>::try_from_uri(&uri) {
        Ok(q) => q.0,
        Err(e) => return bad_query(&session, &[], &format!("malformed query string: {e}")),
    };
    // A form sends its empty fields: the same query without them, in the address bar.
    if pairs.iter().any(|(_, v)| v.is_empty()) {
        let kept: Vec<(String, String)> =
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        return Redirect::to(&format!("/ui/changes{}", html::query(&kept))).into_response();
    }
    let now = Utc::now();
    let f = match history::filter(&pairs, now) {
        Ok(f) => f,
        Err(e) => return bad_query(&session, &pairs, &e),
    };
    let mut body = String::new();
    let Some(store) = state.store.clone() else {
        let _ = write!(body, "<p class=\"notice\" id=\"no-store\">{NO_STORE}</p>");
        return html::page(
            StatusCode::OK,
            "Changes",
            Nav::Changes,
            Some(&session),
            &body,
        );
    };
    form(&mut body, &pairs);
    if let Some(poll) = f.poll {
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"poll-filter\">The changes of the poll that started at {} \
             · <a href=\"{}\">every poll</a></p>",
            html::time(Some(poll), now),
            Esc(&format!(
                "/ui/changes{}",
                html::query(&without(&pairs, "poll"))
            )),
        );
    }
    let limit = f.limit;
    let entries = match history::read(store, move |conn| changes::list(conn, &f)).await {
        Ok(e) => e,
        Err(e) => {
            let _ = write!(body, "<p class=\"error\" role=\"alert\">{}</p>", Esc(&e));
            return html::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Changes",
                Nav::Changes,
                Some(&session),
                &body,
            );
        }
    };
    let more = entries.len() > limit;
    let entries = &entries[..entries.len().min(limit)];
    let after = pairs.iter().any(|(k, _)| k == "after");
    let _ = write!(
        body,
        "<p id=\"summary\" role=\"status\"><span id=\"shown\">{}</span> {}, newest first{} · \
         <a href=\"{}\" id=\"as-json\">the same as JSON (API)</a></p>",
        entries.len(),
        if entries.len() == 1 {
            "entry"
        } else {
            "entries"
        },
        if after {
            ", older than the last page"
        } else {
            ""
        },
        Esc(&format!("/api/v1/changes{}", html::query(&pairs))),
    );
    body.push_str(
        "<div class=\"table-wrap\"><table id=\"changes\"><caption class=\"muted\">The change log: \
         what each poll added, updated or removed</caption><thead><tr>\
         <th scope=\"col\">Time</th><th scope=\"col\">Inventory</th><th scope=\"col\">ID</th>\
         <th scope=\"col\">Kind</th><th scope=\"col\">What changed</th><th scope=\"col\">Poll</th>\
         </tr></thead><tbody>",
    );
    for c in entries {
        let inv = c.inventory;
        let id = if c.id.is_empty() {
            "<span class=\"muted\">—</span>".to_string()
        } else {
            format!(
                "<a href=\"/ui/{inv}/{}\">{}</a>",
                Esc(&html::url(&c.id)),
                Esc(&c.id)
            )
        };
        let _ = write!(
            body,
            "<tr data-seq=\"{seq}\" data-id=\"{}\" data-kind=\"{kind}\" id=\"change-{seq}\">\
             <td>{}</td><td>{inv}</td><td>{id}</td><td class=\"kind-{kind}\">{kind}</td>\
             <td>{}</td><td>{}</td></tr>",
            Esc(&c.id),
            at(c, now),
            details(c),
            poll_link(c),
            seq = c.seq,
            kind = c.kind.as_str(),
        );
    }
    if entries.is_empty() {
        body.push_str("<tr><td colspan=\"6\" class=\"muted\">No changes.</td></tr>");
    }
    body.push_str("</tbody></table></div><nav class=\"pager\" aria-label=\"Pages\">");
    if after {
        let _ = write!(
            body,
            "<a href=\"{}\" id=\"page-first\">« Newest</a>",
            Esc(&format!(
                "/ui/changes{}",
                html::query(&without(&pairs, "after"))
            ))
        );
    }
    if more && let Some(last) = entries.last() {
        let mut next = without(&pairs, "after");
        next.push(("after".into(), last.seq.to_string()));
        let _ = write!(
            body,
            "<a href=\"{}\" rel=\"next\" id=\"page-next\">Next (older) ›</a>",
            Esc(&format!("/ui/changes{}", html::query(&next)))
        );
    }
    body.push_str("</nav>");
    html::page(
        StatusCode::OK,
        "Changes",
        Nav::Changes,
        Some(&session),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(kind: ChangeKind) -> Change {
        Change {
            seq: 7,
            inventory: Inventory::Services,
            id: "S<1>".into(),
            kind,
            at: "2026-12-01T00:00:00.000Z".into(),
            poll_kind: "refresh".into(),
            poll_reason: None,
            poll_started: "2026-11-30T23:59:59.123Z".into(),
            columns: None,
            reason: None,
            items: None,
            has_before: false,
        }
    }

    #[test]
    fn details_say_what_changed_as_text() {
        let mut c = change(ChangeKind::Updated);
        c.columns = Some(json!({"name": ["<b>old</b>", "new & better"], "status": [null, "X"]}));
        let d = details(&c);
        assert!(
            d.contains(
                "<code>name</code>: <del>&lt;b&gt;old&lt;/b&gt;</del> → <ins>new &amp; better</ins>"
            ),
            "{d}"
        );
        assert!(d.contains("<del><span class=\"muted\">(empty)</span></del> → <ins>X</ins>"));
        c.columns = Some(json!({}));
        assert!(details(&c).contains("outside the columns"));
        let mut c = change(ChangeKind::Removed);
        c.reason = Some("not_kept".into());
        assert!(details(&c).contains("left the keep rules"));
        let mut c = change(ChangeKind::Baseline);
        c.items = Some(1234);
        assert!(details(&c).contains("1\u{202f}234 items"));
        let link = poll_link(&change(ChangeKind::Added));
        assert!(
            link.contains(
                "href=\"/ui/changes?poll=2026-11-30T23%3A59%3A59.123Z&amp;inventory=services\""
            ),
            "{link}"
        );
    }
}

//! `GET /ui/{inventory}`: the table, and `GET /ui/csv/{inventory}`: its rows as CSV.
//!
//! The page's state is its query string, and its query string is the API's: the same
//! parameters (`q`, column filters, `sort`, `offset`/`limit` or the cursor `after`, `fields`),
//! parsed and run by the API's own [`ListQuery`] over the same published view, so the page shows
//! exactly the rows `GET /api/v1/{inventory}` answers for the same query. Every control only writes such a query string: the search form (GET),
//! the filter checkboxes (a repeated column = "any of"), the sort links on the headings, the
//! column switches, the pager.

use super::html::{self, Esc, Nav};
use super::overview::title;
use super::sessions::Session;
use crate::cache::view::{POSTED, View};
use crate::model::inventory::Inventory;
use crate::model::row::{Entry, Row};
use crate::serve::api::query::{ListQuery, Next, columns};
use crate::serve::state::AppState;
use crate::store::export::write_csv_line;
use axum::Extension;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::fmt::Write;

/// The most rows a CSV download holds (`ses-inventory export` writes a whole inventory).
pub(crate) const CSV_MAX_ROWS: usize = 50_000;

/// A query string's pairs, in order.
type Pairs = Vec<(String, String)>;

/// The parameters that are not column filters.
const RESERVED: [&str; 6] = ["q", "sort", "offset", "limit", "fields", "after"];
/// The page sizes offered (the API's default, 100, among them).
const LIMITS: [usize; 6] = [20, 50, 100, 250, 500, 1000];

/// The inventory of a console path: its canonical plural name only.
pub fn inventory(name: &str) -> Option<Inventory> {
    name.parse::<Inventory>()
        .ok()
        .filter(|inv| inv.as_str() == name)
}

/// A column's heading for people (`id` is the cache key).
fn heading(inv: Inventory, name: &str) -> &'static str {
    if name == "id" {
        return "ID";
    }
    Row::columns(inv)
        .iter()
        .find(|c| c.name == name)
        .map_or("", |c| c.heading)
}

/// A cell of an API row as text: entries as the connector shows them (`name (role)`, ...),
/// lists joined with `; `, empty for null.
pub(crate) fn cell_text(value: &Value) -> String {
    fn entry(v: &Value) -> String {
        serde_json::from_value::<Entry>(v.clone())
            .map(|e| e.to_string())
            .unwrap_or_else(|_| v.to_string())
    }
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(list) => list
            .iter()
            .map(entry)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(_) => entry(value),
        other => other.to_string(),
    }
}

/// `pairs` without the keys of `set`, then `set`'s values that are given.
fn with(pairs: &[(String, String)], set: &[(&str, Option<String>)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
        .cloned()
        .collect();
    for (k, v) in set {
        if let Some(v) = v {
            out.push((k.to_string(), v.clone()));
        }
    }
    out
}

fn link(inv: Inventory, pairs: &[(String, String)]) -> String {
    format!("/ui/{inv}{}", html::query(pairs))
}

fn bad_query(session: &Session, inv: Inventory, message: &str) -> Response {
    let body = format!(
        "<p class=\"error\" role=\"alert\" id=\"query-error\">{}</p>\
         <p><a href=\"/ui/{inv}\">Show the whole table</a></p>",
        Esc(message)
    );
    let nav = nav(inv);
    html::page(
        StatusCode::BAD_REQUEST,
        title(inv),
        nav,
        Some(session),
        &body,
    )
}

fn nav(inv: Inventory) -> Nav {
    match inv {
        Inventory::Services => Nav::Services,
        Inventory::Carriers => Nav::Carriers,
        Inventory::Resources => Nav::Resources,
    }
}

/// The inventory and the query pairs of a request, or the error page.
fn request(
    session: &Session,
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
) -> Result<(Inventory, Pairs), Box<Response>> {
    let not_found = |name: &str| {
        html::error_page(
            StatusCode::NOT_FOUND,
            Some(session),
            &format!("no inventory `{name}`: services, carriers or resources"),
        )
    };
    let Ok(Path(name)) = path else {
        return Err(Box::new(not_found("?")));
    };
    let inv = inventory(&name).ok_or_else(|| Box::new(not_found(&name)))?;
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| {
            Box::new(bad_query(
                session,
                inv,
                &format!("malformed query string: {e}"),
            ))
        })?;
    Ok((inv, pairs))
}

/// `GET /ui/{inventory}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Response {
    let (inv, pairs) = match request(&session, path, &uri) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let query = match ListQuery::parse(inv, &pairs) {
        Ok(q) => q,
        Err(e) => return bad_query(&session, inv, &e.to_string()),
    };
    let view = state.cache.view(inv); // published after each poll; no lock is held
    // The filter choices: status and type values with their counts (the view's postings).
    let [statuses, types] = POSTED.map(|column| view.posting_counts(column).unwrap_or_default());
    let fields = query.field_names();
    let (offset, limit) = (query.offset, query.limit);
    let page = query.run(&view);
    let mut body = String::new();
    search_form(
        &mut body,
        inv,
        &pairs,
        limit,
        [("status", &statuses), ("type", &types)],
    );
    column_switches(&mut body, inv, &pairs, &fields);
    let shown = page.len();
    let rows = match &query.after {
        // A cursor (the API's `Link: rel="next"`): where it falls among the matches is not known.
        Some(after) => format!(
            "<span id=\"shown\">{shown}</span> rows after <code>{}</code>",
            Esc(after)
        ),
        None => format!(
            "Rows <span id=\"first\">{}</span>–<span id=\"last\">{}</span>",
            if shown == 0 { 0 } else { offset + 1 },
            offset + shown
        ),
    };
    let _ = write!(
        body,
        "<p id=\"summary\" role=\"status\">{rows} of <span id=\"total\">{}</span> · \
         <a id=\"csv\" href=\"{}\" download>Download CSV</a> (every matching row) · \
         <a href=\"{}\">this page as JSON (API)</a></p>",
        page.total,
        Esc(&format!(
            "/ui/csv/{inv}{}",
            html::query(&with(
                &pairs,
                &[("offset", None), ("limit", None), ("after", None)]
            ))
        )),
        Esc(&format!("/api/v1/{inv}{}", html::query(&pairs))),
    );
    table(&mut body, inv, &pairs, &fields, &page.rows());
    match &query.after {
        Some(_) => cursor_pager(&mut body, inv, &pairs, page.next.as_ref()),
        None => pager(&mut body, inv, &pairs, offset, limit, page.total),
    }
    html::page(StatusCode::OK, title(inv), nav(inv), Some(&session), &body)
}

fn search_form(
    body: &mut String,
    inv: Inventory,
    pairs: &[(String, String)],
    limit: usize,
    facets: [(&str, &Vec<(&str, usize)>); 2],
) {
    let q = pairs
        .iter()
        .find(|(k, _)| k == "q")
        .map_or("", |(_, v)| v.as_str());
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/ui/{inv}\" class=\"filters\" role=\"search\" \
         aria-label=\"Search and filter {inv}\">\
         <div class=\"field\"><label for=\"q\">Search</label>\
         <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\" \
         placeholder=\"id, external id, name, description\"></div>",
        Esc(q)
    );
    for (column, counts) in facets {
        let chosen: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == column)
            .map(|(_, v)| v.as_str())
            .collect();
        let mut values: Vec<(&str, usize)> = counts.clone();
        // A value in the query that no item has any more stays a choice (and stays chosen).
        for c in &chosen {
            if !counts.iter().any(|(k, _)| k == c) {
                values.push((c, 0));
            }
        }
        let legend = heading(inv, column);
        let _ = write!(
            body,
            "<fieldset id=\"filter-{column}\"><legend>{legend}</legend>"
        );
        for (i, (value, n)) in values.iter().enumerate() {
            let checked = if chosen.contains(value) {
                " checked"
            } else {
                ""
            };
            let label = if value.is_empty() { "(empty)" } else { value };
            let _ = write!(
                body,
                "<label for=\"{column}-{i}\"><input type=\"checkbox\" id=\"{column}-{i}\" \
                 name=\"{column}\" value=\"{}\"{checked}> {} <span class=\"muted\">({n})</span></label>",
                Esc(value),
                Esc(label),
            );
        }
        body.push_str("</fieldset>");
    }
    body.push_str("<div class=\"field\"><label for=\"limit\">Rows per page</label><select id=\"limit\" name=\"limit\">");
    let mut sizes = LIMITS.to_vec();
    if !sizes.contains(&limit) {
        sizes.push(limit);
        sizes.sort_unstable();
    }
    for n in sizes {
        let selected = if n == limit { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{n}\"{selected}>{n}</option>");
    }
    body.push_str("</select></div>");
    // What the form does not show travels along; paging starts again.
    for (k, v) in pairs {
        let kept = matches!(k.as_str(), "sort" | "fields")
            || !(RESERVED.contains(&k.as_str()) || k == "status" || k == "type");
        if kept {
            let _ = write!(
                body,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                Esc(k),
                Esc(v)
            );
        }
    }
    let _ = write!(
        body,
        "<div class=\"field\"><button type=\"submit\" id=\"apply\">Apply</button></div>\
         <div class=\"field\"><a href=\"/ui/{inv}\">Reset</a></div></form>"
    );
}

fn column_switches(body: &mut String, inv: Inventory, pairs: &[(String, String)], fields: &[&str]) {
    body.push_str(
        "<details class=\"columns\"><summary>Columns</summary>\
         <ul aria-label=\"Show or hide columns\">",
    );
    let all: Vec<&str> = columns(inv).into_iter().skip(1).collect();
    for name in &all {
        let shown = fields.contains(name);
        let next: Vec<&str> = all
            .iter()
            .copied()
            .filter(|c| {
                if c == name {
                    !shown
                } else {
                    fields.contains(c)
                }
            })
            .collect();
        // Every column is the default: no `fields` then, as the API would show it.
        let value = (next.len() != all.len()).then(|| {
            if next.is_empty() {
                "id".to_string()
            } else {
                next.join(",")
            }
        });
        let href = link(inv, &with(pairs, &[("fields", value)]));
        let _ = write!(
            body,
            "<li><a href=\"{}\" id=\"col-{name}\"><span aria-hidden=\"true\">{}</span>{}\
             <span class=\"sr-only\"> ({})</span></a></li>",
            Esc(&href),
            if shown { "✓ " } else { "+ " },
            heading(inv, name),
            if shown {
                "shown; hide it"
            } else {
                "hidden; show it"
            },
        );
    }
    body.push_str("</ul></details>");
}

fn table(
    body: &mut String,
    inv: Inventory,
    pairs: &[(String, String)],
    fields: &[&str],
    rows: &[Value],
) {
    // The first sort key decides what the headings show.
    let sort = pairs
        .iter()
        .find(|(k, _)| k == "sort")
        .and_then(|(_, v)| v.split(',').map(str::trim).find(|p| !p.is_empty()))
        .map(|p| match p.strip_prefix('-') {
            Some(name) => (name, true),
            None => (p.strip_prefix('+').unwrap_or(p), false),
        });
    let _ = write!(
        body,
        "<div class=\"table-wrap\"><table id=\"rows\"><caption class=\"muted\">{}: click a \
         heading to sort by it, again to reverse</caption><thead><tr>",
        title(inv)
    );
    for name in fields {
        let (aria, mark, next) = match sort {
            Some((s, false)) if s == *name => ("ascending", " ▲", format!("-{name}")),
            Some((s, true)) if s == *name => ("descending", " ▼", name.to_string()),
            _ => ("none", "", name.to_string()),
        };
        let href = link(
            inv,
            &with(
                pairs,
                &[("sort", Some(next)), ("offset", None), ("after", None)],
            ),
        );
        let _ = write!(
            body,
            "<th scope=\"col\" aria-sort=\"{aria}\"><a href=\"{}\" id=\"sort-{name}\">{}{mark}</a></th>",
            Esc(&href),
            heading(inv, name),
        );
    }
    body.push_str("</tr></thead><tbody>");
    for row in rows {
        let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
        let _ = write!(body, "<tr data-id=\"{}\">", Esc(id));
        for name in fields {
            if *name == "id" {
                let _ = write!(
                    body,
                    "<td><a href=\"/ui/{inv}/{}\">{}</a></td>",
                    Esc(&html::url(id)),
                    Esc(id)
                );
            } else {
                let text = row.get(*name).map(cell_text).unwrap_or_default();
                let _ = write!(body, "<td>{}</td>", Esc(&text));
            }
        }
        body.push_str("</tr>");
    }
    if rows.is_empty() {
        let _ = write!(
            body,
            "<tr><td colspan=\"{}\" class=\"muted\">No rows.</td></tr>",
            fields.len()
        );
    }
    body.push_str("</tbody></table></div>");
}

/// The pager of a page reached by cursor: back to the first page, on to the next.
fn cursor_pager(
    body: &mut String,
    inv: Inventory,
    pairs: &[(String, String)],
    next: Option<&Next>,
) {
    let first = link(inv, &with(pairs, &[("after", None), ("offset", None)]));
    let _ = write!(
        body,
        "<nav class=\"pager\" aria-label=\"Pages\"><a href=\"{}\" id=\"page-first\">« First</a>",
        Esc(&first)
    );
    if let Some(next) = next {
        let set = match next {
            Next::After(id) => [("after", Some(id.clone())), ("offset", None)],
            Next::Offset(o) => [("after", None), ("offset", Some(o.to_string()))],
        };
        let _ = write!(
            body,
            "<a href=\"{}\" rel=\"next\" id=\"page-next\">Next ›</a>",
            Esc(&link(inv, &with(pairs, &set)))
        );
    }
    body.push_str("</nav>");
}

fn pager(
    body: &mut String,
    inv: Inventory,
    pairs: &[(String, String)],
    offset: usize,
    limit: usize,
    total: usize,
) {
    if limit == 0 || total == 0 {
        return;
    }
    let at = |o: usize| {
        let value = (o > 0).then(|| o.to_string());
        Esc(&link(inv, &with(pairs, &[("offset", value)]))).to_string()
    };
    let last = (total - 1) / limit * limit;
    let pages = total.div_ceil(limit);
    let _ = write!(body, "<nav class=\"pager\" aria-label=\"Pages\">");
    if offset > 0 {
        let _ = write!(
            body,
            "<a href=\"{}\" id=\"page-first\">« First</a><a href=\"{}\" rel=\"prev\" id=\"page-prev\">‹ Previous</a>",
            at(0),
            at(offset.saturating_sub(limit))
        );
    }
    let _ = write!(
        body,
        "<span>Page {} of {pages}</span>",
        (offset / limit + 1).min(pages.max(1))
    );
    if offset.saturating_add(limit) < total {
        let _ = write!(
            body,
            "<a href=\"{}\" rel=\"next\" id=\"page-next\">Next ›</a><a href=\"{}\" id=\"page-last\">Last »</a>",
            at(offset + limit),
            at(last)
        );
    }
    body.push_str("</nav>");
}

/// A CSV cell that a spreadsheet would take for a formula gets a leading `'` (upstream text is
/// untrusted).
fn defused(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

/// `GET /ui/csv/{inventory}`: every row the page's query matches (its filters, search, sort
/// and columns; not its paging), up to [`CSV_MAX_ROWS`], headings first; `X-Total-Count` and
/// `X-Result-Count` say how many matched and how many were written.
pub async fn csv(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Response {
    let (inv, pairs) = match request(&session, path, &uri) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let pairs = with(
        &pairs,
        &[("offset", None), ("limit", None), ("after", None)],
    );
    let mut query = match ListQuery::parse(inv, &pairs) {
        Ok(q) => q,
        Err(e) => return bad_query(&session, inv, &e.to_string()),
    };
    query.limit = CSV_MAX_ROWS;
    let view = state.cache.view(inv);
    // Sorting and writing up to CSV_MAX_ROWS rows is work for a blocking thread, not a worker.
    let done = tokio::task::spawn_blocking(move || csv_text(inv, &query, &view)).await;
    let Ok((text, total, shown)) = done else {
        return html::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(&session),
            "the CSV could not be written",
        );
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{inv}.csv\""),
            ),
            (HeaderName::from_static("x-total-count"), total.to_string()),
            (HeaderName::from_static("x-result-count"), shown.to_string()),
        ],
        text,
    )
        .into_response()
}

/// The CSV of `query`'s rows in `view` (its limit caps them): headings, then one line per row;
/// with the total that matched and the rows written.
fn csv_text(inv: Inventory, query: &ListQuery, view: &View) -> (Vec<u8>, usize, usize) {
    let fields = query.field_names();
    let page = query.run(view);
    let mut out: Vec<u8> = Vec::new();
    let heads: Vec<&str> = fields.iter().map(|f| heading(inv, f)).collect();
    let _ = write_csv_line(&mut out, heads.iter().map(|h| Some(*h)));
    for row in &page.rows() {
        let cells: Vec<String> = fields
            .iter()
            .map(|f| defused(row.get(*f).map(cell_text).unwrap_or_default()))
            .collect();
        let _ = write_csv_line(&mut out, cells.iter().map(|c| Some(c.as_str())));
    }
    (out, page.total, page.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_read_like_the_connector_and_csv_cells_are_defused() {
        assert_eq!(cell_text(&json!(null)), "");
        assert_eq!(cell_text(&json!("Operational")), "Operational");
        assert_eq!(
            cell_text(&json!([{"id": "R1", "name": "Modem"}, {"id": "R2"}])),
            "Modem; R2"
        );
        assert_eq!(
            cell_text(&json!({"name": "ACME", "role": "customer"})),
            "ACME (customer)"
        );
        assert_eq!(defused("=1+1".into()), "'=1+1");
        assert_eq!(defused("-2".into()), "'-2");
        assert_eq!(defused("plain".into()), "plain");
    }

    #[test]
    fn the_csv_holds_the_query_s_rows_up_to_its_limit() {
        use crate::model::item::{Item, Key};
        use std::sync::Arc;
        let items = ["b", "a", "c"].map(|k| {
            let v = json!({"externalId": k, "name": format!("=name {k}"), "status": "Operational"});
            Arc::new(Item::new(
                Key::new(k),
                Inventory::Services,
                v.to_string().into(),
                chrono::Utc::now(),
                chrono::Utc::now(),
            ))
        });
        let view = View::build(1, items);
        let pairs = vec![
            ("fields".to_string(), "name".to_string()),
            ("sort".into(), "-name".into()),
        ];
        let mut query = ListQuery::parse(Inventory::Services, &pairs).unwrap();
        query.limit = 2;
        let (text, total, shown) = csv_text(Inventory::Services, &query, &view);
        assert_eq!((total, shown), (3, 2));
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "ID,Name\r\nc,'=name c\r\nb,'=name b\r\n"
        );
    }

    #[test]
    fn links_replace_their_parameter_and_keep_the_rest() {
        let pairs = vec![
            ("status".to_string(), "A".to_string()),
            ("offset".into(), "100".into()),
            ("status".into(), "B".into()),
        ];
        assert_eq!(
            html::query(&with(
                &pairs,
                &[("offset", None), ("sort", Some("-name".into()))]
            )),
            "?status=A&status=B&sort=-name"
        );
        assert_eq!(inventory("services"), Some(Inventory::Services));
        assert_eq!(inventory("service"), None);
    }
}

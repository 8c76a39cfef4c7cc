//! `GET /ui/status`: the sync details of each inventory — phase, the refresh window, the last
//! full pass and refresh in full, errors, recent polls — and the "refresh now" / "full pass now"
//! buttons, which `POST /ui/refresh` (session and CSRF token required) turns into the same
//! requests as `POST /api/v1/refresh`.

use super::chart::changes_link;
use super::html::{self, Esc, Nav};
use super::overview::poll_summary;
use super::overview::title;
use super::session;
use super::sessions::Session;
use super::table::inventory;
use crate::cache::PollPoint;
use crate::model::inventory::Inventory;
use crate::model::status::{PollKind, PollReport};
use crate::serve::state::AppState;
use crate::sync::daemon::RequestOutcome;
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// Polls listed in the recent-polls table of each inventory.
const RECENT: usize = 20;

fn outcome_text(o: RequestOutcome) -> &'static str {
    match o {
        RequestOutcome::Queued => "queued",
        RequestOutcome::Joined => "joined",
        RequestOutcome::Unavailable => "unavailable",
    }
}

/// The buttons of one inventory (`Some`) or all of them.
fn buttons(body: &mut String, session: &Session, inv: Option<Inventory>) {
    let (hidden, what, id) = match inv {
        Some(inv) => (
            format!("<input type=\"hidden\" name=\"inventory\" value=\"{inv}\">"),
            title(inv).to_string(),
            inv.as_str(),
        ),
        None => (String::new(), "all".to_string(), "all"),
    };
    let _ = write!(
        body,
        "<div class=\"actions\"><form method=\"post\" action=\"/ui/refresh\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{hidden}\
         <button type=\"submit\" id=\"refresh-{id}\">Refresh {what} now</button></form>\
         <form method=\"post\" action=\"/ui/refresh\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{hidden}\
         <input type=\"hidden\" name=\"full\" value=\"true\">\
         <button type=\"submit\" id=\"full-{id}\">Full pass of {what} now</button></form></div>",
        csrf = Esc(&session.csrf),
    );
}

/// Every field of a poll report.
/// Every field of a poll report; without one (a restart keeps no reports), the summary of the
/// newest poll of that kind in the history, if any.
fn report(
    body: &mut String,
    id: &str,
    r: Option<&PollReport>,
    earlier: Option<PollPoint>,
    now: DateTime<Utc>,
) {
    let Some(r) = r else {
        match earlier {
            Some(p) => {
                let _ = write!(
                    body,
                    "<p id=\"{id}\">{} <span class=\"muted\">(from the poll history: the \
                     details are not kept across a restart)</span></p>",
                    poll_summary(Some(p), now)
                );
            }
            None => {
                let _ = write!(body, "<p id=\"{id}\" class=\"muted\">None yet.</p>");
            }
        }
        return;
    };
    let _ = write!(body, "<dl class=\"facts\" id=\"{id}\">");
    let mut fact = |name: &str, value: String| {
        let _ = write!(body, "<dt>{name}</dt><dd>{value}</dd>");
    };
    fact(
        "Outcome",
        format!("<span class=\"outcome-{0}\">{0}</span>", r.outcome.as_str()),
    );
    if let Some(reason) = r.reason {
        fact("Why", reason.as_str().into());
    }
    if let Some(days) = r.days_ago {
        fact("updatedDaysAgo", days.to_string());
    }
    fact("Started", html::time(Some(r.started), now));
    fact("Finished", html::time(Some(r.finished), now));
    fact("Took", html::duration(r.finished - r.started));
    fact("Pages", r.pages.to_string());
    let skipped_pages = if r.skipped_pages.is_empty() {
        "none".into()
    } else {
        r.skipped_pages
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    fact("Skipped pages", skipped_pages);
    fact(
        "Skipped items",
        format!(
            "{} without a key, {} not objects, {} nested too deep, {} duplicates, {} not kept by \
             the rules",
            r.skipped.no_key,
            r.skipped.not_object,
            r.skipped.too_deep,
            r.skipped.duplicates,
            r.skipped.not_kept
        ),
    );
    fact("Received", html::count(r.received));
    fact(
        "Changes",
        format!(
            "+{} added, {} updated, −{} removed",
            html::count(r.added),
            html::count(r.updated),
            html::count(r.removed)
        ),
    );
    let c = &r.churn;
    fact(
        "Churn",
        format!(
            "shifted: {}; candidates {}; confirmations {}; recovered {}; \
             confirmed removed {}; awaiting a witness {}; short pages {:?}",
            if c.shifted { "yes" } else { "no" },
            c.candidates,
            c.confirmations,
            c.recovered,
            c.confirmed_removed,
            c.deferred,
            r.short_pages
        ),
    );
    if let Some(e) = &r.error {
        fact("Error", format!("<span class=\"error\">{}</span>", Esc(e)));
    }
    body.push_str("</dl>");
}

#[derive(serde::Deserialize)]
pub struct Requested {
    requested: Option<String>,
    services: Option<String>,
    carriers: Option<String>,
    resources: Option<String>,
}

/// `GET /ui/status`.
pub async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    requested: Result<Query<Requested>, QueryRejection>,
) -> Response {
    let now = Utc::now();
    let mut body = String::new();
    // After a button: what became of the request (known words only).
    if let Ok(Query(r)) = requested
        && let Some(kind @ ("refresh" | "full")) = r.requested.as_deref()
    {
        let mut parts = Vec::new();
        for (inv, outcome) in [
            (Inventory::Services, &r.services),
            (Inventory::Carriers, &r.carriers),
            (Inventory::Resources, &r.resources),
        ] {
            if let Some(o @ ("queued" | "joined" | "unavailable")) = outcome.as_deref() {
                parts.push(format!("{inv} {o}"));
            }
        }
        let what = if kind == "full" {
            "Full pass"
        } else {
            "Refresh"
        };
        let _ = write!(
            body,
            "<p class=\"notice\" role=\"status\" id=\"flash\">{what} requested: {}. \
             This page shows the poll once it has finished: reload it.</p>",
            parts.join(", ")
        );
    }
    let _ = write!(
        body,
        "<p>Version {} · up since {} · {}</p>",
        env!("CARGO_PKG_VERSION"),
        html::time(Some(state.started_at), now),
        if state.cache.all_ready() {
            "every inventory ready"
        } else {
            "<strong>not ready</strong>"
        }
    );
    buttons(&mut body, &session, None);
    body.push_str("<div class=\"cards wide\">");
    for inv in Inventory::ALL {
        let name = inv.as_str();
        let s = state.cache.status(inv);
        let phase = s.phase.as_str();
        let _ = write!(
            body,
            "<section class=\"card\" id=\"status-{name}\" aria-labelledby=\"s-{name}\">\
             <h2 id=\"s-{name}\">{}</h2><dl class=\"facts\">\
             <dt>Phase</dt><dd><span class=\"phase phase-{phase}\">{phase}</span></dd>\
             <dt>Ready</dt><dd>{}</dd><dt>Items</dt><dd>{}</dd>\
             <dt>Next poll</dt><dd>{}</dd><dt>Last success</dt><dd>{}</dd>\
             <dt>Refresh window</dt><dd>changes since {} are in the cache \
             (start of the last poll that got every page)</dd>\
             <dt>Last complete full pass</dt><dd>{}</dd>\
             <dt>Consecutive failures</dt><dd>{}</dd>\
             <dt>Awaiting a second witness</dt><dd>{}</dd>\
             <dt>Converged</dt><dd>{}</dd>\
             <dt>Last error</dt><dd>{}</dd></dl>",
            title(inv),
            if state.cache.is_ready(inv) {
                "yes"
            } else {
                "no"
            },
            html::count(state.cache.len(inv) as u64),
            html::time(s.next_poll, now),
            html::time(s.last_success, now),
            html::time(s.times.window_anchor, now),
            html::time(s.times.last_complete_full, now),
            s.consecutive_failures,
            match s.unconfirmed_since {
                Some(since) =>
                    format!("{} (since {})", s.unconfirmed, html::time(Some(since), now)),
                None => "0".into(),
            },
            if s.converged() { "yes" } else { "no" },
            match &s.last_error {
                Some(e) => format!(
                    "{}: <span class=\"error\">{}</span>",
                    html::time(Some(e.at), now),
                    Esc(&e.message)
                ),
                None => "<span class=\"muted\">none</span>".into(),
            },
        );
        buttons(&mut body, &session, Some(inv));
        let history = state.cache.history(inv);
        let newest = |kind| history.iter().rev().find(|p| p.kind == kind).copied();
        body.push_str("<h3>Last full pass</h3>");
        report(
            &mut body,
            &format!("{name}-last-full"),
            s.last_full.as_ref(),
            newest(PollKind::Full),
            now,
        );
        body.push_str("<h3>Last refresh</h3>");
        report(
            &mut body,
            &format!("{name}-last-refresh"),
            s.last_refresh.as_ref(),
            newest(PollKind::Refresh),
            now,
        );
        let _ = write!(
            body,
            "<h3>Recent polls</h3><div class=\"table-wrap\"><table id=\"history-{name}\">\
             <thead><tr><th scope=\"col\">Finished</th><th scope=\"col\">Kind</th>\
             <th scope=\"col\">Outcome</th><th scope=\"col\">Took</th><th scope=\"col\">Items</th>\
             <th scope=\"col\">Added / updated / removed</th><th scope=\"col\">Skipped pages / items</th>\
             {}</tr></thead><tbody>",
            if state.store.is_some() {
                "<th scope=\"col\">Changes</th>"
            } else {
                ""
            }
        );
        for p in history.iter().rev().take(RECENT) {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"outcome-{o}\">{o}</td><td>{}</td><td>{}</td>\
                 <td>{} / {} / {}</td><td>{} / {}</td>{}</tr>",
                html::time(Some(p.finished), now),
                p.kind.as_str(),
                html::duration(p.duration()),
                html::count(p.items),
                p.added,
                p.updated,
                p.removed,
                p.skipped_pages,
                p.skipped_items,
                if state.store.is_some() {
                    format!(
                        "<td><a href=\"{}\">its changes</a></td>",
                        Esc(&changes_link(inv, p))
                    )
                } else {
                    String::new()
                },
                o = p.outcome.as_str(),
            );
        }
        if history.is_empty() {
            body.push_str("<tr><td colspan=\"8\" class=\"muted\">No polls yet.</td></tr>");
        }
        body.push_str("</tbody></table></div></section>");
    }
    body.push_str("</div>");
    html::page(
        StatusCode::OK,
        "Sync status",
        Nav::Status,
        Some(&session),
        &body,
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct RefreshForm {
    csrf: Option<String>,
    inventory: Option<String>,
    full: Option<String>,
}

/// `POST /ui/refresh`: asks the pollers for a poll now, then back to the status page, which
/// says what became of the request.
pub async fn refresh(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<RefreshForm>,
) -> Response {
    if let Some(refused) = session::refuse_post(&headers, &session, form.csrf.as_deref()) {
        return refused;
    }
    let targets = match form.inventory.as_deref().filter(|s| !s.is_empty()) {
        None => Inventory::ALL.to_vec(),
        Some(name) => match inventory(name) {
            Some(inv) => vec![inv],
            None => {
                return html::error_page(
                    StatusCode::BAD_REQUEST,
                    Some(&session),
                    &format!("no inventory `{name}`: services, carriers or resources"),
                );
            }
        },
    };
    let full = form.full.as_deref() == Some("true");
    let mut to = format!(
        "/ui/status?requested={}",
        if full { "full" } else { "refresh" }
    );
    for inv in targets {
        let outcome = state.control().request_poll(inv, full);
        let _ = write!(to, "&{inv}={}", outcome_text(outcome));
    }
    Redirect::to(&to).into_response()
}

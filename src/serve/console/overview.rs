//! `GET /`: one card per inventory — items, phase, readiness, the last full pass and refresh,
//! the next poll, the last error — and a chart of its recent polls.

use super::chart;
use super::html::{self, Esc, Nav};
use super::sessions::Session;
use crate::cache::PollPoint;
use crate::model::inventory::Inventory;
use crate::model::status::{Outcome, PollKind, PollReport};
use crate::serve::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// An inventory's name as a heading.
pub fn title(inv: Inventory) -> &'static str {
    match inv {
        Inventory::Services => "Services",
        Inventory::Carriers => "Carriers",
        Inventory::Resources => "Resources",
    }
}

/// The last poll of `kind`: the live status's report, else (after a restart, which keeps no
/// reports) the newest of that kind in the history.
fn last(report: Option<&PollReport>, history: &[PollPoint], kind: PollKind) -> Option<PollPoint> {
    report
        .map(|r| PollPoint::new(r, 0))
        .or_else(|| history.iter().rev().find(|p| p.kind == kind).copied())
}

/// One poll in a line: when, how long, what it changed, what it skipped, its outcome.
pub(crate) fn poll_summary(point: Option<PollPoint>, now: DateTime<Utc>) -> String {
    let Some(r) = point else {
        return "<span class=\"muted\">none yet</span>".into();
    };
    let mut s = format!(
        "{}, took {}; +{} added, {} updated, −{} removed",
        html::time(Some(r.finished), now),
        html::duration(r.finished - r.started),
        html::count(r.added),
        html::count(r.updated),
        html::count(r.removed),
    );
    if r.skipped_pages > 0 || r.skipped_items > 0 {
        let _ = write!(
            s,
            "; skipped {} page(s), {} item(s)",
            r.skipped_pages,
            html::count(r.skipped_items)
        );
    }
    if r.outcome != Outcome::Complete {
        let _ = write!(
            s,
            " — <span class=\"outcome-{0}\">{0}</span>",
            r.outcome.as_str()
        );
    }
    s
}

/// `GET /`.
pub async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let now = Utc::now();
    let mut body = String::new();
    let ready = state.cache.all_ready();
    let _ = write!(
        body,
        "<p>{} · up since {}</p><div class=\"cards\">",
        if ready {
            "Every inventory is ready."
        } else {
            "<strong>Not ready:</strong> some inventory has no complete full pass yet."
        },
        html::time(Some(state.started_at), now),
    );
    for inv in Inventory::ALL {
        let name = inv.as_str();
        let status = state.cache.status(inv);
        let items = state.cache.len(inv);
        let phase = status.phase.as_str();
        let history = state.cache.history(inv);
        let _ = write!(
            body,
            "<section class=\"card\" id=\"card-{name}\" aria-labelledby=\"h-{name}\">\
             <h2 id=\"h-{name}\"><a href=\"/ui/{name}\">{}</a></h2>\
             <p class=\"count\"><span id=\"count-{name}\">{items}</span> \
             <span class=\"muted\">items</span></p><dl class=\"facts\">\
             <dt>Phase</dt><dd><span class=\"phase phase-{phase}\" id=\"phase-{name}\">{phase}</span></dd>\
             <dt>Ready</dt><dd id=\"ready-{name}\">{}</dd>\
             <dt>Last full pass</dt><dd id=\"{name}-last-full\">{}</dd>\
             <dt>Last refresh</dt><dd id=\"{name}-last-refresh\">{}</dd>\
             <dt>Next poll</dt><dd>{}</dd>",
            title(inv),
            if state.cache.is_ready(inv) {
                "yes"
            } else {
                "no"
            },
            poll_summary(
                last(status.last_full.as_ref(), &history, PollKind::Full),
                now
            ),
            poll_summary(
                last(status.last_refresh.as_ref(), &history, PollKind::Refresh),
                now
            ),
            html::time(status.next_poll, now),
        );
        if let Some(e) = &status.last_error {
            let _ = write!(
                body,
                "<dt>Last error</dt><dd class=\"error\">{}: {}</dd>",
                html::time(Some(e.at), now),
                Esc(&e.message)
            );
        }
        body.push_str("</dl>");
        body.push_str(&chart::polls(title(inv), inv, &history));
        if state.store.is_some() {
            let _ = write!(
                body,
                "<p><a href=\"/ui/changes?inventory={name}\" id=\"changes-{name}\">Recent changes</a></p>"
            );
        }
        body.push_str("</section>");
    }
    body.push_str(
        "</div><p class=\"muted\">Charts: items after each recent poll (line); each poll's \
         duration below (full passes and failures marked); click a poll for its changes. \
         <a href=\"/ui/status\">Sync details and “refresh now”</a>.</p>",
    );
    html::page(
        StatusCode::OK,
        "Overview",
        Nav::Overview,
        Some(&session),
        &body,
    )
}

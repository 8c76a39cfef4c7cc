//! The web console: the three tables, one item, the overview and the sync status, as
//! server-rendered HTML on the API's listener. Read-only but for two buttons (refresh now, full
//! pass now); no JavaScript; every asset in the binary.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | overview: per inventory, items, phase, readiness, last polls, next poll, charts |
//! | `GET /ui/{services,carriers,resources}` | the table: the API's list parameters ([`table`]) |
//! | `GET /ui/csv/{inventory}` | the table's rows as CSV (the same parameters, every page) |
//! | `GET /ui/changes` | the change log: the API's `GET /api/v1/changes` parameters ([`changes`]) |
//! | `GET /ui/{inventory}/{id}` | one item: row, related items, history (`?a=&b=`), upstream JSON |
//! | `GET /ui/status` | sync details; `POST /ui/refresh` asks for a poll now |
//! | `GET`, `POST /ui/signin`, `POST /ui/signout` | the session, when `api.token` is set |
//!
//! Security ([`session`]): with `api.token`, every page but the sign-in form needs a session
//! cookie (`HttpOnly`, `SameSite=Strict`) that only signing in with the token gives; without a
//! token each browser gets an anonymous session, so that POSTs are protected alike. Every POST
//! needs the session's CSRF token, and a same-origin request. Every page carries a strict
//! `Content-Security-Policy` ([`html::security_headers`]); every text from the cache goes
//! through [`html::Esc`].
//!
//! Files: `html` (escaping, URLs, the page layout, headers), `session` (sessions, sign-in, CSRF),
//! `assets` (the stylesheet), `chart` (inline SVG), `diff` (two texts side by side), `overview`,
//! `table`, `changes`, `item` and its `history`, `status`.

mod assets;
mod changes;
mod chart;
mod diff;
mod history;
mod html;
mod item;
mod overview;
mod session;
pub(crate) mod sessions;
mod status;
mod table;

pub use sessions::Sessions;

use crate::serve::state::AppState;
use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::get;

/// The console's routes, to merge into the API's router.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/", get(overview::page))
        .route("/ui", get(|| async { Redirect::to("/") }))
        .route("/ui/status", get(status::page))
        .route("/ui/changes", get(changes::page))
        .route("/ui/refresh", axum::routing::post(status::refresh))
        .route("/ui/signout", axum::routing::post(session::signout))
        .route("/ui/csv/{inventory}", get(table::csv))
        .route("/ui/{inventory}", get(table::page))
        .route("/ui/{inventory}/{id}", get(item::page))
        .route_layer(middleware::from_fn_with_state(state, session::guard));
    Router::new()
        .route(
            "/ui/signin",
            get(session::signin_form).post(session::signin),
        )
        .route("/ui/assets/console.css", get(assets::css))
        .merge(guarded)
        .route_layer(middleware::from_fn(html::security_headers))
}

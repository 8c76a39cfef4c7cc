//! Who may see the console, and which POSTs are the console's own.
//!
//! - A session is a random 256-bit id in a cookie (`HttpOnly`, `SameSite=Strict`, path `/`,
//!   12 h), held in memory (a restart signs everyone out), at most [`MAX_SESSIONS`] (the oldest
//!   goes first).
//! - With `api.token`, only signing in creates a session: the token is posted once, compared in
//!   constant time, never stored in the cookie, logged or echoed; a wrong one is refused after a
//!   short pause. Without a token (loopback only, as the API), every browser gets an anonymous
//!   session on its first page, so that POSTs are protected the same way.
//! - Every POST carries the session's CSRF token in a hidden field, and must not come from
//!   another site (`Sec-Fetch-Site`, `Origin`).

use super::html::{self, Esc, Nav};
use super::sessions::{LIFETIME, Session};
use crate::serve::api::auth::constant_time_eq;
use crate::serve::state::AppState;
use axum::Extension;
use axum::extract::{Form, Query, Request, State};
use axum::http::Method;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::time::Duration;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "ses_console";
/// How long a wrong token waits before its answer (slows guessing down).
const WRONG_TOKEN_PAUSE: Duration = Duration::from_millis(300);

/// The session id the browser sent, if any.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn set_cookie(id: &str) -> HeaderValue {
    let value = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    );
    // Hex ids only: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("ses_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn no_randomness() -> Response {
    html::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "the operating system gave no randomness for a session id; try again",
    )
}

/// Where a sign-in may send the browser back to: a path of this console, nothing else. Only
/// visible ASCII without `\\` (browsers drop tabs and newlines from URLs and read `\\` as `/`,
/// which could turn `/\t/host` into `//host`); the console's own links are percent-encoded.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => "/",
    }
}

/// Whether a POST comes from the console's own pages: not from another site by the browser's
/// own account (`Sec-Fetch-Site`), and with an `Origin`, if any, that is this host.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((bare, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Checks a POST: same origin and the session's CSRF token. `Some` refusal (a 403 page) when
/// it fails.
pub(crate) fn refuse_post(
    headers: &HeaderMap,
    session: &Session,
    csrf: Option<&str>,
) -> Option<Response> {
    let valid = csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), session.csrf.as_bytes()));
    if same_origin(headers) && valid {
        return None;
    }
    Some(html::error_page(
        StatusCode::FORBIDDEN,
        Some(session),
        "this form is stale or did not come from this console (CSRF check failed); \
         reload the page and try again",
    ))
}

/// The guard of every console page: finds the session (or makes an anonymous one when no
/// token is configured) and hands it to the handler; without one, a page redirects to the
/// sign-in form and a POST is refused.
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(session) = cookie(request.headers()).and_then(|id| state.sessions.get(id)) {
        request.extensions_mut().insert(session);
        return next.run(request).await;
    }
    if state.token.is_some() {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return html::error_page(
                StatusCode::FORBIDDEN,
                None,
                "sign in first: this console needs the API token",
            );
        }
        let here = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let to = format!("/ui/signin?next={}", html::url(&here));
        return Redirect::to(&to).into_response();
    }
    let Some((id, session)) = state.sessions.create(false) else {
        return no_randomness();
    };
    request.extensions_mut().insert(session);
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&id));
    response
}

fn signin_page(status: StatusCode, next: &str, wrong: bool) -> Response {
    let alert = if wrong {
        "<p class=\"error\" role=\"alert\" id=\"signin-error\">That token is not right.</p>"
    } else {
        ""
    };
    let body = format!(
        "{alert}<p>This console shows the inventory only after you sign in with the daemon's \
         API token (<code>api.token</code>).</p>\
         <form method=\"post\" action=\"/ui/signin\" class=\"signin\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"token\">API token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
         required autofocus>\
         <button type=\"submit\">Sign in</button></form>",
        Esc(next)
    );
    html::page(status, "Sign in", Nav::None, None, &body)
}

#[derive(serde::Deserialize)]
pub(crate) struct SigninQuery {
    next: Option<String>,
}

/// `GET /ui/signin`: the form (straight on to the console when no token is configured).
pub(crate) async fn signin_form(
    State(state): State<AppState>,
    Query(query): Query<SigninQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if state.token.is_none() {
        return Redirect::to(next).into_response();
    }
    signin_page(StatusCode::OK, next, false)
}

#[derive(serde::Deserialize)]
pub(crate) struct SigninForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /ui/signin`: a session for the right token; the form again, 401, for a wrong one.
pub async fn signin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    let Some(token) = &state.token else {
        return Redirect::to(&next).into_response();
    };
    if !same_origin(&headers) {
        return html::error_page(
            StatusCode::FORBIDDEN,
            None,
            "sign-in refused: the form did not come from this console",
        );
    }
    if !constant_time_eq(form.token.trim().as_bytes(), token.expose().as_bytes()) {
        tokio::time::sleep(WRONG_TOKEN_PAUSE).await;
        return signin_page(StatusCode::UNAUTHORIZED, &next, true);
    }
    let Some((id, _)) = state.sessions.create(true) else {
        return no_randomness();
    };
    let mut response = Redirect::to(&next).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&id));
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /ui/signout`: ends the session.
pub async fn signout(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = refuse_post(&headers, &session, form.csrf.as_deref()) {
        return refused;
    }
    if let Some(id) = cookie(&headers) {
        state.sessions.remove(id);
    }
    let to = if state.token.is_some() {
        "/ui/signin"
    } else {
        "/"
    };
    let mut response = Redirect::to(to).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; ses_console=abc; x=y"),
        );
        assert_eq!(cookie(&h), Some("abc"));
    }

    #[test]
    fn only_local_paths_are_followed_and_cross_site_posts_refused() {
        assert_eq!(safe_next(Some("/ui/services?q=a")), "/ui/services?q=a");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /x",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[("host", "127.0.0.1:9638")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:9638"),
            ("origin", "http://127.0.0.1:9638"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:9638"),
            ("origin", "http://evil.example"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:9638"),
            ("sec-fetch-site", "cross-site"),
        ])));
        let session = Session {
            csrf: "abc".into(),
            signed_in: false,
        };
        let ok = headers(&[("host", "h")]);
        assert!(refuse_post(&ok, &session, Some("abc")).is_none());
        assert!(refuse_post(&ok, &session, Some("abd")).is_some());
        assert!(refuse_post(&ok, &session, None).is_some());
    }
}

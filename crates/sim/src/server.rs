//! The HTTP side: one fallback handler that routes, authenticates, applies faults, serves pages
//! and records every request.

use super::data;
use super::fault::{self, FaultKind};
use super::{RequestRecord, Shared};
use crate::{Api, Inventory};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long in-flight requests may finish after a shutdown before the server stops anyway.
const GRACE: Duration = Duration::from_secs(2);

/// Serves until `stop` turns true (or its sender is gone), then for at most [`GRACE`].
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let app = Router::new().fallback(handle).with_state(shared);
    let mut graceful = stop.clone();
    let mut hard = stop;
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|s| *s).await;
    });
    tokio::select! {
        res = server => {
            if let Err(error) = res {
                tracing::warn!(message = "Simulator server failed.", %error);
            }
        }
        _ = async move {
            let _ = hard.wait_for(|s| *s).await;
            tokio::time::sleep(GRACE).await;
        } => {}
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let received = std::time::Instant::now();
    let api = api_of(&shared.config, uri.path());
    // In progress until the answer is ready (or the handler is dropped with its client).
    let in_progress = api.map(|api| shared.begin(api));
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri).map(|q| q.0);
    let mut rec = RequestRecord {
        inventory: None,
        path: uri.path().to_owned(),
        query: query.as_ref().cloned().unwrap_or_default(),
        page: None,
        updated_days_ago: None,
        status: 0,
        items: 0,
        concurrent: in_progress.as_ref().map_or(0, |p| p.concurrent),
        received,
        answered: received,
    };
    let resp = match api {
        Some(api) => answer(&shared, api, &method, query.ok(), &headers, &mut rec).await,
        None => text(StatusCode::NOT_FOUND, "not found"),
    };
    drop(in_progress);
    rec.status = resp.status().as_u16();
    rec.answered = std::time::Instant::now();
    shared.record(rec);
    resp
}

/// Which of the two APIs a path belongs to (each has its own credentials), if any.
fn api_of(cfg: &crate::SimConfig, path: &str) -> Option<Api> {
    let path = path.trim_end_matches('/');
    if path == format!("{}/service", cfg.base638.trim_end_matches('/')) {
        Some(Api::Tmf638)
    } else if path == format!("{}/resource", cfg.base639.trim_end_matches('/')) {
        Some(Api::Tmf639)
    } else {
        None
    }
}

/// Page parameters of one request, in the simulator's configured dialect.
struct Params {
    page: u32,
    size: usize,
    updated_days_ago: Option<u32>,
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn num<T: std::str::FromStr>(query: &[(String, String)], name: &str) -> Result<Option<T>, String> {
    param(query, name)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| format!("`{name}` must be a non-negative integer, got `{v}`"))
        })
        .transpose()
}

async fn answer(
    shared: &Shared,
    api: Api,
    method: &Method,
    query: Option<Vec<(String, String)>>,
    headers: &HeaderMap,
    rec: &mut RequestRecord,
) -> Response {
    let cfg = &shared.config;
    if method != Method::GET {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    let (user, password) = match api {
        Api::Tmf638 => (&cfg.tmf638_user, &cfg.tmf638_password),
        Api::Tmf639 => (&cfg.tmf639_user, &cfg.tmf639_password),
    };
    if !authorized(headers, user, password) {
        let mut r = json(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"unauthorized"}"#.into(),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sim\""),
        );
        return r;
    }
    let Some(query) = query else {
        return text(StatusCode::BAD_REQUEST, "unparseable query string");
    };
    let inventory = match api {
        Api::Tmf639 => Inventory::Resources,
        Api::Tmf638 if param(&query, "@type") == Some("element") => Inventory::Carriers,
        Api::Tmf638 => Inventory::Services,
    };
    rec.inventory = Some(inventory);
    let params = match (|| -> Result<Params, String> {
        Ok(Params {
            page: num(&query, &cfg.page_param)?.unwrap_or(cfg.first_page),
            size: num(&query, &cfg.size_param)?.unwrap_or(40),
            updated_days_ago: num(&query, "updatedDaysAgo")?,
        })
    })() {
        Ok(p) => p,
        Err(msg) => return text(StatusCode::BAD_REQUEST, &msg),
    };
    rec.page = Some(params.page);
    rec.updated_days_ago = params.updated_days_ago;

    let mut fault =
        shared
            .lock_faults()
            .take(inventory, params.page, params.updated_days_ago.is_some());
    while let Some(FaultKind::Held { hold, then }) = fault {
        // Held first, then answered with the fault it wraps (from the data current then).
        hold.wait().await;
        fault = Some(*then);
    }
    let mut delay = cfg.latency;
    let mut extra_element = false;
    let mut limit = usize::MAX;
    let early = match fault {
        None => None,
        Some(FaultKind::Status { code, retry_after }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = text(
                status,
                &format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
            );
            if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Some(r)
        }
        Some(FaultKind::Malformed) => Some(json(StatusCode::OK, fault::MALFORMED_BODY.into())),
        Some(FaultKind::NotArray) => Some(json(
            StatusCode::OK,
            r#"{"error":{"code":"SIM-500","message":"simulated: not an array"}}"#.into(),
        )),
        Some(FaultKind::Huge(size)) => {
            Some(json(StatusCode::OK, Body::from(fault::huge_body(size))))
        }
        Some(FaultKind::Delay(d)) => {
            delay += d;
            None
        }
        Some(FaultKind::ElementNotObject) => {
            extra_element = true;
            None
        }
        Some(FaultKind::Short(n)) => {
            limit = n;
            None
        }
        Some(FaultKind::Churn { deletes, inserts }) => {
            let now = chrono::Utc::now().timestamp_millis();
            let read = params
                .page
                .saturating_sub(cfg.first_page)
                .saturating_mul(params.size as u32) as usize;
            let change = data::Churn {
                since: since(params.updated_days_ago, now),
                read,
                deletes,
                inserts,
            };
            let (deleted, inserted) = shared.write(inventory).churn(cfg, change, now);
            tracing::debug!(
                message = "Simulator data changed under a listing.",
                inventory = %inventory,
                page = params.page,
                ?deleted,
                ?inserted
            );
            None
        }
        Some(FaultKind::Hold(hold)) => {
            // Before the page is rendered: it is served with the data current at the release.
            hold.wait().await;
            None
        }
        Some(FaultKind::Held { .. }) => unreachable!("unwrapped above"),
    };
    let resp = match early {
        Some(r) => r,
        None => {
            let since = since(
                params.updated_days_ago,
                chrono::Utc::now().timestamp_millis(),
            );
            let index = params.page.checked_sub(cfg.first_page).map(|i| i as usize);
            // The read lock is held only while the page's text is copied out.
            let (body, total, count) = {
                let ds = shared.read(inventory);
                ds.render_page(
                    since,
                    index.unwrap_or(usize::MAX),
                    params.size,
                    limit,
                    cfg.wrap.as_deref(),
                    extra_element,
                )
            };
            rec.items = count;
            let body = if cfg.pretty { indented(body) } else { body };
            let mut r = json(StatusCode::OK, body.into());
            r.headers_mut()
                .insert("x-total-count", HeaderValue::from(total));
            r.headers_mut()
                .insert("x-result-count", HeaderValue::from(count));
            r
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    resp
}

/// `body` re-written with indentation and newlines, as some servers send JSON.
fn indented(body: String) -> String {
    serde_json::from_str::<serde_json::Value>(&body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(body)
}

/// The start (epoch ms) of an `updatedDaysAgo=N` window asked at `now`: the last (N+1)×24 h.
fn since(updated_days_ago: Option<u32>, now: i64) -> Option<i64> {
    updated_days_ago.map(|n| now - (i64::from(n) + 1) * 86_400_000)
}

fn authorized(headers: &HeaderMap, user: &str, password: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, credentials)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    decoded.split_once(':') == Some((user, password))
}

fn json(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut r = Response::new(Body::from(body.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

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
    let route = route(&shared.config, uri.path());
    // In progress until the answer is ready (or the handler is dropped with its client).
    let in_progress = route.as_ref().map(|(api, _)| shared.begin(*api));
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri).map(|q| q.0);
    let mut rec = RequestRecord {
        inventory: None,
        path: uri.path().to_owned(),
        query: query.as_ref().cloned().unwrap_or_default(),
        page: None,
        item: None,
        updated_days_ago: None,
        status: 0,
        items: 0,
        concurrent: in_progress.as_ref().map_or(0, |p| p.concurrent),
        received,
        answered: received,
    };
    let resp = match route {
        Some((api, item)) => {
            let req = Request {
                api,
                item,
                method: &method,
                query: query.ok(),
                headers: &headers,
            };
            answer(&shared, req, &mut rec).await
        }
        None => text(StatusCode::NOT_FOUND, "not found"),
    };
    drop(in_progress);
    rec.status = resp.status().as_u16();
    rec.answered = std::time::Instant::now();
    shared.record(rec);
    resp
}

/// Which of the two APIs a path belongs to (each has its own credentials), if any, and for a
/// single-item path (`{collection}/{id}`) the id, percent-decoded.
fn route(cfg: &crate::SimConfig, path: &str) -> Option<(Api, Option<String>)> {
    let path = path.trim_end_matches('/');
    [
        (
            Api::Tmf638,
            format!("{}/service", cfg.base638.trim_end_matches('/')),
        ),
        (
            Api::Tmf639,
            format!("{}/resource", cfg.base639.trim_end_matches('/')),
        ),
    ]
    .into_iter()
    .find_map(|(api, collection)| {
        let rest = path.strip_prefix(&collection)?;
        if rest.is_empty() {
            return Some((api, None));
        }
        let id = rest.strip_prefix('/').filter(|id| !id.contains('/'))?;
        Some((api, Some(percent_decode(id))))
    })
}

/// Decodes `%XX` escapes (a `%` not followed by two hex digits stays as it is; bytes that are
/// not UTF-8 are replaced).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|h| b[i] == b'%' && h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// One request to a known path, as routed.
struct Request<'a> {
    api: Api,
    /// The id of a single-item GET; `None` for the collection.
    item: Option<String>,
    method: &'a Method,
    /// `None` when the query string could not be parsed.
    query: Option<Vec<(String, String)>>,
    headers: &'a HeaderMap,
}

/// Checks the method and the credentials, then answers a page or an item.
async fn answer(shared: &Shared, req: Request<'_>, rec: &mut RequestRecord) -> Response {
    let cfg = &shared.config;
    if req.method != Method::GET {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    let (user, password) = match req.api {
        Api::Tmf638 => (&cfg.tmf638_user, &cfg.tmf638_password),
        Api::Tmf639 => (&cfg.tmf639_user, &cfg.tmf639_password),
    };
    if !authorized(req.headers, user, password) {
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
    let Some(query) = req.query else {
        return text(StatusCode::BAD_REQUEST, "unparseable query string");
    };
    match req.item {
        Some(id) => item(shared, req.api, id, rec).await,
        None => page(shared, req.api, &query, rec).await,
    }
}

/// What a fault does to a request besides answering instead of it. An item GET uses only the
/// delay.
struct Effects {
    /// Extra delay on top of the configured latency.
    delay: Duration,
    /// Append a bare `42` to the page.
    extra_element: bool,
    /// Cut the page to this many items.
    limit: usize,
}

/// Applies `fault` to a request for `inventory`: the answer to send instead of the normal
/// one, or what to change in the normal one. Holds, churn and edits happen here, before the
/// normal answer is made. `params` is `None` for an item GET: the kinds that shape a page
/// (`ElementNotObject`, `Short`, `Churn`) then change nothing.
async fn apply(
    shared: &Shared,
    inventory: Inventory,
    mut fault: Option<FaultKind>,
    params: Option<&Params>,
) -> Result<Effects, Response> {
    let cfg = &shared.config;
    while let Some(FaultKind::Held { hold, then }) = fault {
        // Held first, then answered with the fault it wraps (from the data current then).
        hold.wait().await;
        fault = Some(*then);
    }
    let mut effects = Effects {
        delay: Duration::ZERO,
        extra_element: false,
        limit: usize::MAX,
    };
    match fault {
        None => {}
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
            return Err(r);
        }
        Some(FaultKind::Malformed) => {
            return Err(json(StatusCode::OK, fault::MALFORMED_BODY.into()));
        }
        Some(FaultKind::NotArray) => {
            return Err(json(
                StatusCode::OK,
                r#"{"error":{"code":"SIM-500","message":"simulated: not an array"}}"#.into(),
            ));
        }
        Some(FaultKind::Huge(size)) => {
            return Err(json(StatusCode::OK, Body::from(fault::huge_body(size))));
        }
        Some(FaultKind::Body(bytes)) => {
            return Err(json(StatusCode::OK, Body::from(bytes.to_vec())));
        }
        Some(FaultKind::Delay(d)) => effects.delay = d,
        Some(FaultKind::ElementNotObject) => effects.extra_element = true,
        Some(FaultKind::Short(n)) => effects.limit = n,
        Some(FaultKind::Churn { deletes, inserts }) => {
            if let Some(params) = params {
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
            }
        }
        Some(FaultKind::Hold(hold)) => {
            // Before the answer is made: it is made from the data current at the release.
            hold.wait().await;
        }
        Some(FaultKind::Edit(edit)) => {
            let now = chrono::Utc::now().timestamp_millis();
            let edited = shared
                .write(inventory)
                .edit(&edit, cfg.resort_on_update, now);
            if let Err(error) = edited {
                tracing::warn!(message = "Simulator edit fault not applied.", %error);
            }
        }
        Some(FaultKind::Held { .. }) => unreachable!("unwrapped above"),
    }
    Ok(effects)
}

/// Answers a page of the collection.
async fn page(
    shared: &Shared,
    api: Api,
    query: &[(String, String)],
    rec: &mut RequestRecord,
) -> Response {
    let cfg = &shared.config;
    let inventory = match api {
        Api::Tmf639 => Inventory::Resources,
        Api::Tmf638 if param(query, "@type") == Some("element") => Inventory::Carriers,
        Api::Tmf638 => Inventory::Services,
    };
    rec.inventory = Some(inventory);
    let params = match (|| -> Result<Params, String> {
        Ok(Params {
            page: num(query, &cfg.page_param)?.unwrap_or(cfg.first_page),
            size: num(query, &cfg.size_param)?.unwrap_or(40),
            updated_days_ago: num(query, "updatedDaysAgo")?,
        })
    })() {
        Ok(p) => p,
        Err(msg) => return text(StatusCode::BAD_REQUEST, &msg),
    };
    rec.page = Some(params.page);
    rec.updated_days_ago = params.updated_days_ago;

    let fault = shared.lock_faults().take(
        inventory,
        Some(params.page),
        params.updated_days_ago.is_some(),
    );
    let (resp, delay) = match apply(shared, inventory, fault, Some(&params)).await {
        Err(r) => (r, Duration::ZERO),
        Ok(effects) => {
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
                    effects.limit,
                    cfg.wrap.as_deref(),
                    effects.extra_element,
                )
            };
            rec.items = count;
            let body = if cfg.pretty { indented(body) } else { body };
            let mut r = json(StatusCode::OK, body.into());
            if cfg.total_header {
                r.headers_mut()
                    .insert("x-total-count", HeaderValue::from(total));
                r.headers_mut()
                    .insert("x-result-count", HeaderValue::from(count));
            }
            (r, effects.delay)
        }
    };
    sleep(cfg.latency + delay).await;
    resp
}

/// Answers a single-item GET: the first item whose `id` or key is `id`, in services then
/// carriers (TMF 638) or in resources (TMF 639); else a JSON 404.
async fn item(shared: &Shared, api: Api, id: String, rec: &mut RequestRecord) -> Response {
    let searched: &[Inventory] = match api {
        Api::Tmf638 => &[Inventory::Services, Inventory::Carriers],
        Api::Tmf639 => &[Inventory::Resources],
    };
    // The read locks are held only while an item's text is copied out.
    let lookup = || {
        searched.iter().find_map(|&inv| {
            let ds = shared.read(inv);
            ds.find(&id).map(|text| (inv, text.to_owned()))
        })
    };
    // Faults match by where the item is now (by the path when it is nowhere).
    let inventory = lookup().map_or(searched[0], |(inv, _)| inv);
    rec.inventory = Some(inventory);
    let fault = shared.lock_faults().take(inventory, None, false);
    let (resp, delay) = match apply(shared, inventory, fault, None).await {
        Err(r) => (r, Duration::ZERO),
        // Looked up again: a hold or an edit may have changed the data.
        Ok(effects) => match lookup() {
            Some((_, text)) => {
                rec.items = 1;
                (json(StatusCode::OK, text.into()), effects.delay)
            }
            None => (
                json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into()),
                effects.delay,
            ),
        },
    };
    rec.item = Some(id);
    sleep(shared.config.latency + delay).await;
    resp
}

async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
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

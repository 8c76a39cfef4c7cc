//! The upstream client: one HTTP request per page, with the retry policy around it.
//!
//! Knows the dialect (paths, query parameters, basic auth per API, where the array sits in the
//! body) and the failure classes; knows nothing of items or the cache. URLs in errors never carry
//! credentials: endpoints with userinfo are refused by configuration, and auth goes in a header.

use crate::config::{Config, InventoryConfig};
use crate::model::inventory::{Api, Inventory};
use crate::model::secret::Secret;
use crate::telemetry::events;
use crate::time::backoff::Backoff;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why one request for a page failed.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(
        "{api} rejected the credentials (HTTP {status}) at {url}; check {api}.username and {api}.password"
    )]
    Unauthorized { api: Api, status: u16, url: String },
    #[error("HTTP {status} from {url}")]
    Status {
        status: u16,
        url: String,
        retry_after: Option<Duration>,
    },
    #[error("timed out waiting for {url}")]
    Timeout { url: String },
    #[error("cannot reach {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("reading the body of {url} failed: {detail}")]
    Read { url: String, detail: String },
    #[error("body of {url} exceeds http.max_body_bytes ({limit} bytes)")]
    TooLarge { url: String, limit: u64 },
    #[error("body of {url} is not JSON: {detail}")]
    NotJson { url: String, detail: String },
    #[error("body of {url} has no item array at `{pointer}` (items_pointer)")]
    NotArray { url: String, pointer: String },
}

impl PageError {
    /// Whether another attempt may succeed: server trouble, throttling, network, bad bodies.
    pub fn is_retryable(&self) -> bool {
        match self {
            PageError::Status { status, .. } => *status >= 500 || *status == 429,
            // Every attempt would fail the same way: the body is over the bound we set.
            PageError::Unauthorized { .. } | PageError::TooLarge { .. } => false,
            _ => true,
        }
    }

    /// The gateway's "Gateway Timeout": the one failure after which a page is skipped.
    pub fn is_gateway_timeout(&self) -> bool {
        matches!(self, PageError::Status { status: 504, .. })
    }

    /// The `status` label of the request-duration metric: the HTTP status when one came back
    /// and was the problem, else what went wrong (`timeout`, `connect`, `body`).
    pub fn status_label(&self) -> String {
        match self {
            PageError::Unauthorized { status, .. } | PageError::Status { status, .. } => {
                status.to_string()
            }
            PageError::Timeout { .. } => "timeout".into(),
            PageError::Connect { .. } => "connect".into(),
            PageError::Read { .. }
            | PageError::TooLarge { .. }
            | PageError::NotJson { .. }
            | PageError::NotArray { .. } => "body".into(),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PageError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// One page as received.
#[derive(Debug)]
pub struct Page {
    pub elements: Vec<Value>,
    pub bytes: usize,
    /// The HTTP status it came with (a 2xx).
    pub status: u16,
    /// The collection's total as the upstream reported it with this page
    /// (`poll.total_count_header`), if it did.
    pub total: Option<u64>,
}

/// What one request asks for.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub inventory: Inventory,
    pub page: u32,
    pub days_ago: Option<u32>,
}

/// A page that failed every attempt.
#[derive(Debug)]
pub struct PageFailure {
    pub error: PageError,
    pub attempts: u32,
}

struct ApiTarget {
    endpoint: String,
    username: String,
    password: Secret,
}

/// The HTTP client with everything needed to ask for pages. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    cfg: Arc<Config>,
    targets: Arc<[ApiTarget; 2]>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("http.ca_file {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl Upstream {
    pub fn new(cfg: Arc<Config>) -> Result<Upstream, ClientError> {
        // reqwest is built without a default crypto provider so that only ring (no C toolchain
        // beyond cc, no cmake) is compiled in; install it once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let h = &cfg.http;
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let mut builder = reqwest::Client::builder()
            .user_agent(h.user_agent.clone())
            .pool_idle_timeout(secs(h.pool_idle_timeout));
        if let Some(t) = secs(h.timeout) {
            builder = builder.timeout(t);
        }
        if let Some(t) = secs(h.connect_timeout) {
            builder = builder.connect_timeout(t);
        }
        if h.bypass_proxy {
            builder = builder.no_proxy();
        }
        if !h.ca_file.is_empty() {
            let ca_err = |detail: String| ClientError::CaFile {
                path: h.ca_file.clone(),
                detail,
            };
            let pem = std::fs::read(&h.ca_file).map_err(|e| ca_err(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_err("no PEM certificate in the file".into()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        let target = |api: Api| {
            let a = cfg.api(api);
            ApiTarget {
                endpoint: a.endpoint.trim_end_matches('/').to_string(),
                username: a.username.clone(),
                password: a.password.clone(),
            }
        };
        let targets = Arc::new([target(Api::Tmf638), target(Api::Tmf639)]);
        Ok(Upstream {
            client,
            cfg,
            targets,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn target(&self, api: Api) -> &ApiTarget {
        &self.targets[api as usize]
    }

    /// The request URL with its query, as logged and shown in errors.
    pub fn url(&self, req: PageRequest) -> reqwest::Url {
        let inv_cfg = self.cfg.inventory(req.inventory);
        let base = format!(
            "{}{}",
            self.target(req.inventory.api()).endpoint,
            inv_cfg.path
        );
        let mut url = reqwest::Url::parse(&base).expect("endpoint validated by configuration");
        {
            let poll = &self.cfg.poll;
            let mut q = url.query_pairs_mut();
            for (k, v) in &inv_cfg.query {
                q.append_pair(k, v);
            }
            if let Some(n) = req.days_ago {
                q.append_pair(&poll.updated_days_ago_param, &n.to_string());
            }
            q.append_pair(&poll.page_size_param, &poll.records_per_page.to_string());
            q.append_pair(&poll.page_param, &req.page.to_string());
        }
        // `@` is legal in a query (RFC 3986) and is how the dialect spells `@type`; keep it literal
        // rather than form-encoded, so the request reads like the connector's.
        let query = url.query().map(|q| q.replace("%40", "@"));
        url.set_query(query.as_deref());
        url
    }

    /// One attempt at one page.
    pub async fn fetch_page(&self, req: PageRequest) -> Result<Page, PageError> {
        let inv_cfg = self.cfg.inventory(req.inventory);
        let api = req.inventory.api();
        let target = self.target(api);
        let url = self.url(req);
        let shown = url.to_string();
        let mut request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if !target.username.is_empty() || !target.password.is_empty() {
            request = request.basic_auth(&target.username, Some(target.password.expose()));
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(e, &shown))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(PageError::Unauthorized {
                api,
                status: status.as_u16(),
                url: shown,
            });
        }
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Err(PageError::Status {
                status: status.as_u16(),
                url: shown,
                retry_after,
            });
        }
        let header = &self.cfg.poll.total_count_header;
        let total = (!header.is_empty())
            .then(|| response.headers().get(header.as_str()))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = read_limited(response, self.cfg.http.max_body_bytes, &shown).await?;
        let elements = parse_items(&body, inv_cfg, &shown)?;
        Ok(Page {
            elements,
            bytes: body.len(),
            status: status.as_u16(),
            total,
        })
    }

    /// One page with the retry policy: retryable failures are tried again with exponential
    /// backoff and jitter (or the server's `Retry-After`, capped) up to `http.retry_attempts`.
    pub async fn fetch_page_with_retries(&self, req: PageRequest) -> Result<Page, PageFailure> {
        let h = &self.cfg.http;
        let mut backoff = Backoff::new(
            Duration::from_millis(h.retry_initial_delay_ms),
            Duration::from_millis(h.retry_max_delay_ms),
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self.fetch_page(req).await;
            events::UpstreamRequest {
                inventory: req.inventory,
                page: req.page,
                status: &match &result {
                    Ok(page) => page.status.to_string(),
                    Err(e) => e.status_label(),
                },
                duration: started.elapsed(),
            }
            .emit();
            match result {
                Ok(page) => {
                    events::PageFetched {
                        inventory: req.inventory,
                        page: req.page,
                        items: page.elements.len(),
                        bytes: page.bytes,
                        duration: started.elapsed(),
                    }
                    .emit();
                    return Ok(page);
                }
                Err(error) if error.is_retryable() && attempt < h.retry_attempts => {
                    let jittered = backoff.next_delay();
                    let delay = match error.retry_after() {
                        Some(server) => server.min(Duration::from_secs(h.retry_after_max)),
                        None => jittered,
                    };
                    events::PageRetry {
                        inventory: req.inventory,
                        page: req.page,
                        attempt,
                        delay,
                        error: &error,
                    }
                    .emit();
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    return Err(PageFailure {
                        error,
                        attempts: attempt,
                    });
                }
            }
        }
    }
}

fn transport_error(e: reqwest::Error, url: &str) -> PageError {
    let url = url.to_string();
    if e.is_timeout() {
        return PageError::Timeout { url };
    }
    let connect = e.is_connect();
    let detail = error_chain(&e.without_url());
    if connect {
        PageError::Connect { url, detail }
    } else {
        PageError::Read { url, detail }
    }
}

/// The error and its sources on one line ("a: b: c"), the way operators want to read it.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    url: &str,
) -> Result<Vec<u8>, PageError> {
    let too_large = || PageError::TooLarge {
        url: url.to_string(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(transport_error(e, url)),
        }
    }
}

/// The item array of a page body: the body itself, or the array at `items_pointer`.
pub fn parse_items(body: &[u8], cfg: &InventoryConfig, url: &str) -> Result<Vec<Value>, PageError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| PageError::NotJson {
        url: url.to_string(),
        detail: e.to_string(),
    })?;
    let target = if cfg.items_pointer.is_empty() {
        Some(&mut value)
    } else {
        value.pointer_mut(&cfg.items_pointer)
    };
    match target.map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(PageError::NotArray {
            url: url.to_string(),
            pointer: if cfg.items_pointer.is_empty() {
                "(body)".into()
            } else {
                cfg.items_pointer.clone()
            },
        }),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let d = parse_retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn items_at_a_pointer_or_the_body() {
        let mut cfg = Config::defaults().services;
        assert_eq!(parse_items(br#"[{"a":1},2]"#, &cfg, "u").unwrap().len(), 2);
        assert!(matches!(
            parse_items(br#"{"result":[]}"#, &cfg, "u"),
            Err(PageError::NotArray { .. })
        ));
        assert!(matches!(
            parse_items(b"<html>", &cfg, "u"),
            Err(PageError::NotJson { .. })
        ));
        cfg.items_pointer = "/result".into();
        assert_eq!(
            parse_items(br#"{"result":[{"a":1}]}"#, &cfg, "u")
                .unwrap()
                .len(),
            1
        );
        let err = parse_items(br#"{"other":[]}"#, &cfg, "u").unwrap_err();
        assert!(err.to_string().contains("/result"), "{err}");
    }

    #[test]
    fn an_extra_ca_file_must_hold_pem_certificates() {
        let dir = std::env::temp_dir().join(format!("sesinv-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("not-a-ca.pem");
        std::fs::write(&garbage, "this is not a certificate\n").unwrap();
        let mut cfg = Config::defaults();
        cfg.http.ca_file = garbage.display().to_string();
        let err = Upstream::new(Arc::new(cfg.clone())).err().expect("refused");
        let msg = err.to_string();
        assert!(
            msg.contains("http.ca_file") && msg.contains("not-a-ca.pem"),
            "{msg}"
        );

        cfg.http.ca_file = dir.join("missing.pem").display().to_string();
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(
            msg.contains("http.ca_file") && msg.contains("missing.pem"),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn request_url_carries_the_dialect() {
        let mut cfg = Config::defaults();
        cfg.tmf638.endpoint = "http://127.0.0.1:1/base/".into();
        let up = Upstream::new(Arc::new(cfg)).unwrap();
        let url = up.url(PageRequest {
            inventory: Inventory::Carriers,
            page: 3,
            days_ago: Some(2),
        });
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/base/service?@type=element&updatedDaysAgo=2&recordsPerPage=40&page=3"
        );
    }
}

//! What can go wrong with a page or the client, as errors that name the URL (never with
//! credentials) and say whether another attempt may help.

use crate::model::inventory::Api;
use std::time::Duration;

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
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            PageError::Status { status, .. } => *status >= 500 || *status == 429,
            // Every attempt would fail the same way: the body is over the bound we set.
            PageError::Unauthorized { .. } | PageError::TooLarge { .. } => false,
            _ => true,
        }
    }

    /// An answer that says the upstream is overloaded: 429, 503, 504, or no answer in time.
    /// It halves the limit of requests in flight to that API (see `limit`).
    pub(crate) fn is_throttling(&self) -> bool {
        matches!(
            self,
            PageError::Status {
                status: 429 | 503 | 504,
                ..
            } | PageError::Timeout { .. }
        )
    }

    /// The gateway's "Gateway Timeout": the one failure after which a page is skipped.
    pub(crate) fn is_gateway_timeout(&self) -> bool {
        matches!(self, PageError::Status { status: 504, .. })
    }

    /// The `status` label of the request-duration metric: the HTTP status when one came back
    /// and was the problem, else what went wrong (`timeout`, `connect`, `body`).
    pub(crate) fn status_label(&self) -> String {
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

/// A page that failed every attempt.
#[derive(Debug)]
pub struct PageFailure {
    pub error: PageError,
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("http.ca_file {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

pub(super) fn transport_error(e: reqwest::Error, url: &str) -> PageError {
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
pub fn error_chain(e: &dyn std::error::Error) -> String {
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

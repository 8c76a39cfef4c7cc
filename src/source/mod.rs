//! The upstream client: one HTTP request per page, with the retry policy around it.
//!
//! Knows the dialect (paths, query parameters, basic auth per API, where the array sits in the
//! body) and the failure classes; knows nothing of items or the cache. URLs in errors never carry
//! credentials: endpoints with userinfo are refused by configuration, and auth goes in a header.

use crate::config::Config;
use crate::model::inventory::{Api, Inventory};
use crate::model::secret::Secret;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

mod body;
mod dialect;
mod error;
mod item;
mod limit;
mod retry;

use body::read_limited;
pub use body::{Items, parse_items};
use error::transport_error;
pub use error::{ClientError, PageError, PageFailure, error_chain, parse_retry_after};
pub use item::ItemAnswer;
pub use limit::GROW_AFTER;
use limit::Limiter;

/// reqwest is built without a default crypto provider so that only ring (no C toolchain beyond
/// cc, no cmake) is compiled in; every HTTP client of the process calls this first. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One page as received.
#[derive(Debug)]
pub struct Page {
    /// The body and where its elements sit in it.
    pub items: Items,
    pub bytes: usize,
    /// The HTTP status it came with (a 2xx).
    pub status: u16,
    /// The collection's total as the upstream reported it with this page
    /// (`poll.total_count_header`), if it did.
    pub total: Option<u64>,
    /// How long the request that got it took (the last attempt), body included.
    pub duration: Duration,
}

/// What one request asks for.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub inventory: Inventory,
    pub page: u32,
    pub days_ago: Option<u32>,
}

struct ApiTarget {
    endpoint: String,
    username: String,
    password: Secret,
}

/// The HTTP client with everything needed to ask for pages. Cheap to clone; clones share the
/// connection pool and the limit of requests in flight per API, so every poller of a process
/// should use clones of one `Upstream`.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    cfg: Arc<Config>,
    targets: Arc<[ApiTarget; 2]>,
    /// Per API (indexed by `Api as usize`): how many requests may be in flight to it.
    limits: Arc<[Limiter; 2]>,
}

impl Upstream {
    pub fn new(cfg: Arc<Config>) -> Result<Upstream, ClientError> {
        install_crypto_provider();
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
            let a = cfg.upstream(api);
            ApiTarget {
                endpoint: a.endpoint.trim_end_matches('/').to_string(),
                username: a.username.clone(),
                password: a.password.clone(),
            }
        };
        let targets = Arc::new([target(Api::Tmf638), target(Api::Tmf639)]);
        let limit = |api: Api| Limiter::new(api, h.max_in_flight_per_api);
        let limits = Arc::new([limit(Api::Tmf638), limit(Api::Tmf639)]);
        Ok(Upstream {
            client,
            cfg,
            targets,
            limits,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn target(&self, api: Api) -> &ApiTarget {
        &self.targets[api as usize]
    }

    fn limiter(&self, api: Api) -> &Limiter {
        &self.limits[api as usize]
    }

    /// Page requests in flight to `api` now.
    pub fn in_flight(&self, api: Api) -> u32 {
        self.limiter(api).in_flight()
    }

    /// One attempt at one page.
    pub(crate) async fn fetch_page(&self, req: PageRequest) -> Result<Page, PageError> {
        let started = std::time::Instant::now();
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
        let bytes = body.len();
        let items = parse_items(body, inv_cfg, &shown)?;
        Ok(Page {
            items,
            bytes,
            status: status.as_u16(),
            total,
            duration: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InventoryConfig;
    use crate::model::inventory::Inventory;

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
        let elements = |body: &[u8], cfg: &InventoryConfig| -> Result<Vec<String>, PageError> {
            let items = parse_items(body.to_vec(), cfg, "u")?;
            Ok(items
                .elements
                .iter()
                .map(|r| items.text[r.clone()].to_owned())
                .collect())
        };
        assert_eq!(
            elements(br#"[ {"a": 1}, 2 ]"#, &cfg).unwrap(),
            [r#"{"a": 1}"#, "2"]
        );
        assert!(matches!(
            elements(br#"{"result":[]}"#, &cfg),
            Err(PageError::NotArray { .. })
        ));
        assert!(matches!(
            elements(b"<html>", &cfg),
            Err(PageError::NotJson { .. })
        ));
        assert!(matches!(
            elements(b"[1, 2", &cfg),
            Err(PageError::NotJson { .. })
        ));
        cfg.items_pointer = "/result".into();
        assert_eq!(
            elements(br#"{"result":[{"a":1}]}"#, &cfg).unwrap(),
            [r#"{"a":1}"#]
        );
        cfg.items_pointer = "/data/1/items".into();
        assert_eq!(
            elements(br#"{"data":[{},{"items":[3,4]}]}"#, &cfg).unwrap(),
            ["3", "4"]
        );
        cfg.items_pointer = "/result".into();
        let err = elements(br#"{"other":[]}"#, &cfg).unwrap_err();
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

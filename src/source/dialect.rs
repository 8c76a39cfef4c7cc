//! The upstream's dialect: which URL asks for a page, where the items sit in a body, what a
//! `Retry-After` means.

use super::*;
use crate::config::InventoryConfig;
use crate::model::inventory::Inventory;
use serde_json::Value;
use std::time::Duration;

/// What one request asks for.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub inventory: Inventory,
    pub page: u32,
    pub days_ago: Option<u32>,
}

impl Upstream {
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

//! The upstream's dialect: which URL asks for a page, where the items sit in a body, what a
//! `Retry-After` means.

use super::*;
use crate::config::InventoryConfig;
use crate::model::inventory::Inventory;
use serde_json::value::RawValue;
use std::collections::HashMap;
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

/// A page body as text and where each element of its item array sits in it. Elements are not
/// decoded here: the sync reads what it needs straight from the text.
#[derive(Debug)]
pub struct Items {
    pub text: Box<str>,
    pub elements: Vec<std::ops::Range<usize>>,
}

/// The item array of a page body: the body itself, or the array at `items_pointer` (a JSON
/// pointer). The body must be JSON; only the array's elements are located, none is decoded.
pub fn parse_items(body: Vec<u8>, cfg: &InventoryConfig, url: &str) -> Result<Items, PageError> {
    let not_json = |detail: String| PageError::NotJson {
        url: url.to_string(),
        detail,
    };
    let text = String::from_utf8(body)
        .map_err(|e| not_json(e.to_string()))?
        .into_boxed_str();
    let not_array = || PageError::NotArray {
        url: url.to_string(),
        pointer: if cfg.items_pointer.is_empty() {
            "(body)".into()
        } else {
            cfg.items_pointer.clone()
        },
    };
    let elements = {
        let items: Vec<&RawValue> = if cfg.items_pointer.is_empty() {
            // The usual case: one pass over the body.
            match serde_json::from_str(&text) {
                Ok(items) => items,
                Err(e) => {
                    return Err(match serde_json::from_str::<&RawValue>(&text) {
                        Ok(_) => not_array(),
                        Err(_) => not_json(e.to_string()),
                    });
                }
            }
        } else {
            let mut target: &RawValue =
                serde_json::from_str(&text).map_err(|e| not_json(e.to_string()))?;
            // Each token of the pointer: an object member, or an array index.
            for token in cfg.items_pointer.split('/').skip(1) {
                let token = token.replace("~1", "/").replace("~0", "~");
                let next = match serde_json::from_str::<HashMap<String, &RawValue>>(target.get()) {
                    Ok(mut members) => members.remove(&token),
                    Err(_) => serde_json::from_str::<Vec<&RawValue>>(target.get())
                        .ok()
                        .and_then(|items| items.get(token.parse::<usize>().ok()?).copied()),
                };
                target = next.ok_or_else(not_array)?;
            }
            serde_json::from_str(target.get()).map_err(|_| not_array())?
        };
        let base = text.as_ptr() as usize;
        items
            .iter()
            .map(|raw| {
                let start = raw.get().as_ptr() as usize - base;
                start..start + raw.get().len()
            })
            .collect()
    };
    Ok(Items { text, elements })
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

//! A page's body: read within `http.max_body_bytes`, and its item array found (at the body or
//! at `items_pointer`) without decoding any element.

use super::error::{PageError, transport_error};
use crate::config::InventoryConfig;
use serde_json::value::RawValue;
use std::collections::HashMap;

pub(super) async fn read_limited(
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
    // The header is a claim, not bytes: reserve at most 1 MiB for it, so a peer that announces a
    // large body and sends none costs nothing while the timeout runs.
    let claimed = response.content_length().unwrap_or(0).min(1 << 20);
    let mut body = Vec::with_capacity(claimed as usize);
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

//! Conditional requests: `ETag` / `If-None-Match` (304).
//!
//! Lists and items carry a weak tag of the inventory's view: the daemon's start (so a restart
//! never repeats a tag) and the view's generation, which moves with every applied poll. The
//! status carries a tag of its body, which changes by the second (`uptime_seconds`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::hash::{BuildHasher, Hasher};

use crate::model::inventory::Inventory;

/// The tag of `inventory`'s view `generation` in the daemon started at `boot` (nanoseconds).
pub(crate) fn of_view(boot: i64, inventory: Inventory, generation: u64) -> HeaderValue {
    let tag = format!("W/\"{boot:x}-{inventory}-{generation}\"");
    HeaderValue::from_str(&tag).expect("a tag of hex digits, a name and digits")
}

/// A strong tag of a body's bytes.
pub(crate) fn of_body(body: &[u8]) -> HeaderValue {
    // A fixed seed: the same body gets the same tag across requests.
    let mut hasher = foldhash::quality::FixedState::with_seed(0x5e5).build_hasher();
    hasher.write(body);
    let tag = format!("\"{:016x}-{}\"", hasher.finish(), body.len());
    HeaderValue::from_str(&tag).expect("a tag of hex digits")
}

/// `200` with the JSON `body` under a strong tag of its bytes, or `304` when the request's
/// `If-None-Match` names that tag (the status, the change log).
pub(crate) fn json_of_body(request: &HeaderMap, body: Vec<u8>) -> Response {
    let tag = of_body(&body);
    if matches(request, &tag) {
        return not_modified(tag);
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, tag),
        ],
        body,
    )
        .into_response()
}

/// Whether the request's `If-None-Match` names `tag` (weak comparison, `*` included).
pub fn matches(request: &HeaderMap, tag: &HeaderValue) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = opaque(tag.to_str().unwrap_or_default());
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

/// `304 Not Modified` with its tag and no body.
pub(crate) fn not_modified(tag: HeaderValue) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = of_view(7, Inventory::Services, 3);
        assert_eq!(tag, "W/\"7-services-3\"");
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            matches(&h, &tag)
        };
        assert!(with("W/\"7-services-3\""));
        assert!(with("\"7-services-3\""));
        assert!(with("\"x\", W/\"7-services-3\""));
        assert!(with("*"));
        assert!(!with("W/\"7-services-4\""));
        assert!(!matches(&HeaderMap::new(), &tag));
        assert_eq!(of_body(b"a"), of_body(b"a"));
        assert_ne!(of_body(b"a"), of_body(b"b"));
    }
}

//! Conditional requests and paging links: `ETag` / `If-None-Match` (304) and the `Link` of the
//! next page.
//!
//! Lists and items carry a weak tag of the inventory's view: the daemon's start (so a restart
//! never repeats a tag) and the view's generation, which moves with every applied poll. The
//! status carries a tag of its body, which changes by the second (`uptime_seconds`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::hash::{BuildHasher, Hasher};

use super::query::Next;
use crate::model::inventory::Inventory;

/// The tag of `inventory`'s view `generation` in the daemon started at `boot` (nanoseconds).
pub fn of_view(boot: i64, inventory: Inventory, generation: u64) -> HeaderValue {
    let tag = format!("W/\"{boot:x}-{inventory}-{generation}\"");
    HeaderValue::from_str(&tag).expect("a tag of hex digits, a name and digits")
}

/// A strong tag of a body's bytes.
pub fn of_body(body: &[u8]) -> HeaderValue {
    // A fixed seed: the same body gets the same tag across requests.
    let mut hasher = foldhash::quality::FixedState::with_seed(0x5e5).build_hasher();
    hasher.write(body);
    let tag = format!("\"{:016x}-{}\"", hasher.finish(), body.len());
    HeaderValue::from_str(&tag).expect("a tag of hex digits")
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
pub fn not_modified(tag: HeaderValue) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response()
}

/// The `Link` header of the next page: the request's path and parameters, with `after` (or
/// `offset`) set to where the next page starts.
pub fn next_link(path: &str, pairs: &[(String, String)], next: &Next) -> Option<HeaderValue> {
    let mut query: Vec<(&str, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "after" && k != "offset")
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    match next {
        Next::After(id) => query.push(("after", id.clone())),
        Next::Offset(n) => query.push(("offset", n.to_string())),
    }
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    HeaderValue::from_str(&format!("<{path}?{}>; rel=\"next\"", query.join("&"))).ok()
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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

    #[test]
    fn the_next_link_keeps_the_query_and_moves_the_cursor() {
        let pairs = vec![
            ("status".to_string(), "In Service".to_string()),
            ("offset".to_string(), "0".to_string()),
            ("after".to_string(), "old".to_string()),
        ];
        let link = next_link("/api/v1/services", &pairs, &Next::After("SES/1 &2".into()));
        assert_eq!(
            link.unwrap(),
            "</api/v1/services?status=In%20Service&after=SES%2F1%20%262>; rel=\"next\""
        );
        let link = next_link("/api/v1/services", &pairs, &Next::Offset(200));
        assert_eq!(
            link.unwrap(),
            "</api/v1/services?status=In%20Service&offset=200>; rel=\"next\""
        );
    }
}

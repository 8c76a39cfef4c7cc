//! URLs the API and the console write: percent-encoding, query strings, and the `Link` of a
//! list's next page.

use axum::http::HeaderValue;
use std::fmt::Write;

use super::query::Next;

/// Percent-encodes a path segment or a query key or value (everything but `A-Za-z0-9-._~`,
/// RFC 3986's unreserved characters).
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `?k=v&...` of `pairs` (empty when there are none), percent-encoded.
pub fn query(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&url(k));
        out.push('=');
        out.push_str(&url(v));
    }
    out
}

/// The `Link` header of the next page: the request's path and parameters, with `after` (or
/// `offset`) set to where the next page starts.
pub(crate) fn next_link(
    path: &str,
    pairs: &[(String, String)],
    next: &Next,
) -> Option<HeaderValue> {
    let mut pairs: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "after" && k != "offset")
        .cloned()
        .collect();
    pairs.push(match next {
        Next::After(id) => ("after".into(), id.clone()),
        Next::Offset(n) => ("offset".into(), n.to_string()),
    });
    HeaderValue::from_str(&format!("<{path}{}>; rel=\"next\"", query(&pairs))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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

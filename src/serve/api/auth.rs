//! Bearer-token check for `/api` and `/metrics`. The token is compared in constant time and never
//! logged; a rejected request learns only that it was rejected.

use crate::model::secret::Secret;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// Whether `headers` carry `Authorization: Bearer <token>` with the expected token.
pub fn authorized(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).map(|v| v.as_bytes()) else {
        return false;
    };
    let Some(scheme_end) = value.iter().position(|b| *b == b' ') else {
        return false;
    };
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return false;
    }
    constant_time_eq(rest.trim_ascii(), token.expose().as_bytes())
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right. (The length of the expected token may still show; it is not the secret.)
pub(crate) fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!e);
        diff |= usize::from(g ^ e);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = Secret::new("s3cret");
        let check = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            authorized(&h, &token)
        };
        assert!(check(Some("Bearer s3cret")));
        assert!(check(Some("bearer s3cret")));
        for bad in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cretx"),
            Some("Basic s3cret"),
            Some("s3cret"),
            Some("Bearer "),
        ] {
            assert!(!check(bad), "{bad:?}");
        }
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
    }
}

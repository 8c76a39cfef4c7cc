//! Reading a body within `http.max_body_bytes`.

use super::*;

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

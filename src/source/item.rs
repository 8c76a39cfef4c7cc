//! The upstream's single-item endpoint (TMF's `GET .../service/{id}`, `.../resource/{id}`):
//! asked, where configured, about items a full listing did not return.

use super::Upstream;
use super::body::read_limited;
use super::error::{PageError, transport_error};
use super::limit::Signal;
use crate::model::inventory::Inventory;
use reqwest::StatusCode;

/// What the single-item endpoint said of one item.
#[derive(Debug)]
pub enum ItemAnswer {
    /// The item, as the upstream sends it (a JSON object's text).
    Found(String),
    /// 404: the upstream has no such item.
    Gone,
}

impl Upstream {
    /// Whether `inventory` has a single-item endpoint configured (`<inventory>.item_path`).
    pub(crate) fn has_item_endpoint(&self, inventory: Inventory) -> bool {
        !self.cfg.inventory(inventory).item_path.is_empty()
    }

    /// Asks the single-item endpoint about the item whose TMF `id` is `id`: one attempt,
    /// within the API's limit of requests in flight (a failed check only leaves the item to
    /// the next listing).
    pub(crate) async fn fetch_item(
        &self,
        inventory: Inventory,
        id: &str,
    ) -> Result<ItemAnswer, PageError> {
        let api = inventory.api();
        let target = self.target(api);
        let path = self
            .cfg
            .inventory(inventory)
            .item_path
            .replace("{id}", &encode_segment(id));
        let url = format!("{}{path}", target.endpoint);
        let slot = self.limiter(api).acquire().await;
        let mut request = self
            .client
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json");
        if !target.username.is_empty() || !target.password.is_empty() {
            request = request.basic_auth(&target.username, Some(target.password.expose()));
        }
        let result = async {
            let response = request.send().await.map_err(|e| transport_error(e, &url))?;
            let status = response.status();
            match status {
                StatusCode::NOT_FOUND => Ok(ItemAnswer::Gone),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(PageError::Unauthorized {
                    api,
                    status: status.as_u16(),
                    url: url.clone(),
                }),
                s if !s.is_success() => Err(PageError::Status {
                    status: s.as_u16(),
                    url: url.clone(),
                    retry_after: None,
                }),
                _ => {
                    let body = read_limited(response, self.cfg.http.max_body_bytes, &url).await?;
                    String::from_utf8(body)
                        .map(ItemAnswer::Found)
                        .map_err(|e| PageError::NotJson {
                            url: url.clone(),
                            detail: e.to_string(),
                        })
                }
            }
        }
        .await;
        let signal = match &result {
            Ok(_) => Signal::Clean,
            Err(e) if e.is_throttling() => Signal::Throttled(e.status_label()),
            Err(_) => Signal::Other,
        };
        slot.finish(signal, None);
        result
    }
}

/// `id` as one path segment: every byte but RFC 3986's unreserved characters percent-encoded.
fn encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(encode_segment("SES-SVC-0000001"), "SES-SVC-0000001");
        assert_eq!(encode_segment("a/b c?d#é"), "a%2Fb%20c%3Fd%23%C3%A9");
    }
}

//! The API's error answers: `{"error": message}` with a status, and the inventory a path
//! names.

use crate::model::inventory::Inventory;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: `{"error": message}` with a status.
pub(crate) struct Failure(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

/// 400, naming what was wrong.
pub(crate) fn bad_request(message: impl ToString) -> Failure {
    Failure(StatusCode::BAD_REQUEST, message.to_string())
}

/// The inventory a path names: 404 unless it is one of the three plural names.
pub(crate) fn inventory(name: &str) -> Result<Inventory, Failure> {
    // Only the canonical plural names are routes; `Services` or `service` are not aliases here.
    name.parse::<Inventory>()
        .ok()
        .filter(|inv| inv.as_str() == name)
        .ok_or_else(|| {
            let unknown = crate::model::inventory::UnknownInventory(name.into());
            Failure(StatusCode::NOT_FOUND, unknown.to_string())
        })
}

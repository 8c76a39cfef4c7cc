//! The paths the router serves the API's handlers on; the OpenAPI document names the same.

use crate::model::inventory::Inventory;

pub const STATUS: &str = "/api/v1/status";
pub const REFRESH: &str = "/api/v1/refresh";
pub const OPENAPI: &str = "/api/v1/openapi.json";
pub const LIST: &str = "/api/v1/{inventory}";
pub const ITEM: &str = "/api/v1/{inventory}/{id}";
pub const CHANGES: &str = "/api/v1/changes";
pub const HISTORY: &str = "/api/v1/{inventory}/{id}/history";
pub const METRICS: &str = "/metrics";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";

/// [`LIST`] for one inventory.
pub fn list(inventory: Inventory) -> String {
    LIST.replace("{inventory}", inventory.as_str())
}

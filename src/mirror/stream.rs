//! The change stream: `SES_INVENTORY`, its subjects, the headers of its messages and the body
//! of a poll message.
//!
//! - `ses.inventory.<inventory>.upserted`: one per item added or changed; the body is the
//!   item's key-value entry (see [`super::kv`]).
//! - `ses.inventory.<inventory>.removed`: one per item removed; the body is `{"id": <key>}`.
//! - `ses.inventory.<inventory>.poll`: one per applied poll (failed ones included), after its
//!   items; the body is its report. A catch-up from the cache (after a NATS outage) ends with a
//!   poll message of kind `resync`.
//!
//! Headers: `Ses-Poll-Id` (`<inventory>:<poll start, Unix ms>`, or `<inventory>:resync:<ms>`),
//! `Ses-Kind` (upserted, removed, poll, resync), `Ses-Key` (the item's KV key, items only),
//! `Ses-Instance` (who wrote it), `Ses-Lease-Revision` (with `ha.enabled`: the writer's lease),
//! and `Nats-Msg-Id` = `<poll id>:<kind>:<KV key>` (or `<poll id>:poll`), so that JetStream
//! drops a message published twice within its duplicate window.

use crate::model::inventory::Inventory;
use crate::model::status::PollReport;
use crate::time::format;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The stream's name.
pub const STREAM: &str = "SES_INVENTORY";

/// Every subject of the stream.
pub const SUBJECTS: &str = "ses.inventory.>";

/// What a message says about an item, or that it is a poll's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Upserted,
    Removed,
    Poll,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Upserted => "upserted",
            Kind::Removed => "removed",
            Kind::Poll => "poll",
        }
    }
}

/// `ses.inventory.<inventory>.<kind>`.
pub fn subject(inv: Inventory, kind: Kind) -> String {
    format!("ses.inventory.{}.{}", inv.as_str(), kind.as_str())
}

/// The id of an applied poll: its inventory and start (Unix milliseconds).
pub(crate) fn poll_id(inv: Inventory, started: DateTime<Utc>) -> String {
    format!("{}:{}", inv.as_str(), started.timestamp_millis())
}

/// The id of a catch-up from the cache.
pub(crate) fn resync_id(inv: Inventory, at: DateTime<Utc>) -> String {
    format!("{}:resync:{}", inv.as_str(), at.timestamp_millis())
}

/// The body of a removed message.
pub(crate) fn removed_body(key: &str) -> Vec<u8> {
    json!({ "id": key }).to_string().into_bytes()
}

/// The body of a poll message: the report (its one JSON shape), the poll's id and inventory,
/// and the items cached after it.
pub(crate) fn poll_body(
    inv: Inventory,
    poll_id: &str,
    report: &PollReport,
    items: usize,
) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        poll_id: &'a str,
        inventory: &'a str,
        #[serde(flatten)]
        report: &'a PollReport,
        items: usize,
    }
    serde_json::to_vec(&Body {
        poll_id,
        inventory: inv.as_str(),
        report,
        items,
    })
    .unwrap_or_default()
}

/// The body of the poll message that ends a catch-up from the cache.
pub(crate) fn resync_body(
    inv: Inventory,
    poll_id: &str,
    at: DateTime<Utc>,
    upserted: u64,
    removed: u64,
    items: usize,
) -> Vec<u8> {
    let body: Value = json!({
        "poll_id": poll_id,
        "inventory": inv.as_str(),
        "kind": "resync",
        "finished": format::millis(at),
        "upserted": upserted,
        "removed": removed,
        "items": items,
    });
    body.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_ids() {
        assert_eq!(
            subject(Inventory::Carriers, Kind::Removed),
            "ses.inventory.carriers.removed"
        );
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(poll_id(Inventory::Services, at), "services:1700000000123");
        assert_eq!(
            resync_id(Inventory::Resources, at),
            "resources:resync:1700000000123"
        );
    }
}

//! What the pollers tell the durable store: each applied poll, on a channel.

use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::status::{PollReport, SyncTimes};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A poll as applied to the cache, for whoever keeps a durable copy of it. Sent for every poll,
/// failed ones included (their report carries the error), after the cache has been updated.
#[derive(Debug)]
pub struct Applied {
    pub inventory: Inventory,
    pub report: PollReport,
    /// The window timestamps after this poll.
    pub times: SyncTimes,
    /// Items added or changed by this poll.
    pub upserts: Vec<Arc<Item>>,
    /// Keys seen again unchanged (their `last_seen` moved to the poll's time).
    pub unchanged: Vec<Key>,
    /// Keys removed: not kept by the rules, or swept by a complete full pass.
    pub removed: Vec<Key>,
    /// A complete full pass replaced the inventory (every item left was seen by it). False for
    /// refreshes, incomplete passes and full passes whose removals could not be confirmed.
    pub swept: bool,
    /// Items in the inventory once this poll was applied (for the stored poll history).
    pub items: usize,
}

/// Where pollers send each [`Applied`] poll.
pub type Journal = mpsc::UnboundedSender<Applied>;

#[cfg(test)]
impl Applied {
    /// A complete refresh of `inventory` that added `upserts` (for tests of what consumes the
    /// journal).
    pub(crate) fn refresh_for_test(inventory: Inventory, upserts: Vec<Arc<Item>>) -> Applied {
        use crate::model::status::{Churn, Outcome, PollKind, SkipCounts};
        let now = chrono::Utc::now();
        Applied {
            inventory,
            report: PollReport {
                kind: PollKind::Refresh,
                reason: None,
                days_ago: Some(0),
                started: now,
                finished: now,
                pages: 1,
                skipped_pages: Vec::new(),
                skipped: SkipCounts::default(),
                received: upserts.len() as u64,
                added: upserts.len() as u64,
                updated: 0,
                removed: 0,
                churn: Churn::default(),
                outcome: Outcome::Complete,
                credentials_rejected: false,
                error: None,
            },
            times: SyncTimes::default(),
            items: upserts.len(),
            upserts,
            unchanged: Vec::new(),
            removed: Vec::new(),
            swept: false,
        }
    }
}

//! What the pollers tell the durable store: each applied poll, on a channel.

use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::status::{Mark, PollReport, SyncTimes};
use chrono::{DateTime, Utc};
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
    /// The first buildup has been settled (see `FullReason::Settling`).
    pub settled: bool,
    /// Items added or changed by this poll.
    pub upserts: Vec<Arc<Item>>,
    /// For each of `upserts`, the version it replaced (`None`: added), as the cache held it.
    pub previous: Vec<Option<Arc<Item>>>,
    /// Keys seen again unchanged (their `last_seen` moved to the poll's time).
    pub unchanged: Vec<Key>,
    /// Keys removed: not kept by the rules, or gone by two witnesses (a complete full pass).
    pub removed: Vec<Key>,
    /// Of `removed`, the keys gone upstream (by two witnesses); the others left the keep rules.
    pub gone: Vec<Key>,
    /// A complete full pass replaced the inventory and every item left was returned by it.
    /// False for refreshes, incomplete passes and full passes that kept items awaiting a
    /// second witness.
    pub swept: bool,
    /// A complete full pass: the keys it kept without having returned them (awaiting a second
    /// witness, or returned only by a confirming listing that failed). Every other item left
    /// was seen by the pass, which the store records once (`sync_state.full_seen_at`) instead
    /// of on each row. `None` for any other poll.
    pub unseen: Option<Vec<Key>>,
    /// Items in the inventory once this poll was applied (for the stored poll history).
    pub items: usize,
    /// Every item awaiting a second witness after this poll, by key, when that set changed
    /// (`None`: as after the poll before).
    pub awaiting: Option<Vec<(Key, Mark)>>,
    /// The keys in the order the full listing of this poll placed them (see `Item::place`), when
    /// it placed them: a warm start places the items again from it.
    pub(crate) placement: Option<Vec<Key>>,
}

/// Where pollers send each [`Applied`] poll.
pub type Journal = mpsc::UnboundedSender<Applied>;

impl Applied {
    /// A complete refresh of `inventory` that added or changed `upserts`, ended `now`: for
    /// tests and benchmarks of what consumes the journal.
    /// The same, each of `upserts` replacing the version in `previous` at its place.
    pub fn with_previous(mut self, previous: Vec<Option<Arc<Item>>>) -> Applied {
        assert_eq!(previous.len(), self.upserts.len());
        self.previous = previous;
        self
    }

    pub fn refresh(inventory: Inventory, upserts: Vec<Arc<Item>>, now: DateTime<Utc>) -> Applied {
        use crate::model::status::{Churn, Outcome, PollKind, SkipCounts};
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
                short_pages: Vec::new(),
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
            settled: true,
            items: upserts.len(),
            awaiting: None,
            placement: None,
            previous: vec![None; upserts.len()],
            upserts,
            unchanged: Vec::new(),
            removed: Vec::new(),
            gone: Vec::new(),
            swept: false,
            unseen: None,
        }
    }
}

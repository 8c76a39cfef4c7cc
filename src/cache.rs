//! The shared in-memory cache: per inventory, a map from key to item behind an `RwLock`, the
//! sync status, and a readiness signal.
//!
//! One writer per inventory (its poller), any number of readers. Readers clone `Arc<Item>`s under
//! the read lock and let go at once; nothing is serialized or sent while a lock is held. Writers
//! apply a whole poll at once — a complete full pass is a swap of a map built outside the lock —
//! so readers never see half of a pass, and a failed poll leaves the cache as it was.
//!
//! Lists read a [`View`] instead: an immutable, key-ordered copy of the inventory's item
//! references published after each applied poll ([`view`]), so a request neither takes the
//! map's lock nor copies it.
//!
//! Beside the items, each inventory keeps a bounded history of its recent polls
//! ([`PollPoint`], at most [`HISTORY_LEN`]), for the console's charts.

pub mod view;

use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::status::{Mark, Outcome, PollKind, PollReport, SyncStatus};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::watch;
pub use view::View;

/// Keys hash with foldhash: several times faster than SipHash on short keys, and seeded per
/// process, so keys chosen upstream cannot be aimed at one bucket.
pub(crate) type Hasher = foldhash::fast::RandomState;

pub(crate) type ItemMap = HashMap<Key, Arc<Item>, Hasher>;

/// Cached items awaiting a second witness before they are removed, by key.
pub type Awaiting = HashMap<Key, Mark, Hasher>;

/// Handle to the cache; cheap to clone, shared by pollers and readers.
#[derive(Clone)]
pub struct Cache {
    shards: Arc<[Shard; 3]>,
    polls: Arc<PollCounter>,
}

struct Shard {
    items: RwLock<ItemMap>,
    view: RwLock<Arc<View>>,
    status: Mutex<SyncStatus>,
    ready: watch::Sender<bool>,
    history: Mutex<VecDeque<PollPoint>>,
    awaiting: Mutex<Awaiting>,
}

/// Polls kept per inventory in the history.
pub(crate) const HISTORY_LEN: usize = 100;

/// One finished poll, summed up for the history (charts and the recent-polls table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollPoint {
    pub kind: PollKind,
    pub outcome: Outcome,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// Items in the inventory once the poll was applied.
    pub items: u64,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    pub skipped_pages: u64,
    /// Elements skipped for having no key or not being an object.
    pub skipped_items: u64,
}

impl PollPoint {
    /// The point of `report`, with `items` in the inventory after it.
    pub fn new(report: &PollReport, items: usize) -> PollPoint {
        PollPoint {
            kind: report.kind,
            outcome: report.outcome,
            started: report.started,
            finished: report.finished,
            items: items as u64,
            added: report.added,
            updated: report.updated,
            removed: report.removed,
            skipped_pages: report.skipped_pages.len() as u64,
            skipped_items: report.skipped.no_key
                + report.skipped.not_object
                + report.skipped.too_deep,
        }
    }

    /// How long the poll took.
    pub fn duration(&self) -> chrono::TimeDelta {
        self.finished - self.started
    }
}

/// Counts finished polls of every inventory, so watchers (sd-notify, tests) wake on each one.
type PollCounter = watch::Sender<u64>;

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

impl Cache {
    pub fn new() -> Cache {
        let shard = || Shard {
            items: RwLock::new(ItemMap::default()),
            view: RwLock::new(Arc::new(View::empty())),
            status: Mutex::new(SyncStatus::default()),
            ready: watch::Sender::new(false),
            history: Mutex::new(VecDeque::with_capacity(HISTORY_LEN)),
            awaiting: Mutex::new(Awaiting::default()),
        };
        Cache {
            shards: Arc::new([shard(), shard(), shard()]),
            polls: Arc::new(watch::Sender::new(0)),
        }
    }

    fn shard(&self, inv: Inventory) -> &Shard {
        &self.shards[inv.index()]
    }

    // A panic while a lock is held cannot leave a map half-written (every write is a single
    // insert, remove or swap), so a poisoned lock is still safe to use.
    fn read(&self, inv: Inventory) -> RwLockReadGuard<'_, ItemMap> {
        self.shard(inv)
            .items
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, inv: Inventory) -> RwLockWriteGuard<'_, ItemMap> {
        self.shard(inv)
            .items
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn status_lock(&self, inv: Inventory) -> MutexGuard<'_, SyncStatus> {
        self.shard(inv)
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, inv: Inventory, key: &str) -> Option<Arc<Item>> {
        self.read(inv).get(key).cloned()
    }

    /// Looks up several keys under one read lock.
    pub(crate) fn get_many<'k>(
        &self,
        inv: Inventory,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Vec<Option<Arc<Item>>> {
        let map = self.read(inv);
        keys.into_iter().map(|k| map.get(k).cloned()).collect()
    }

    /// Every item, as shared references taken under the lock; order unspecified.
    pub fn snapshot(&self, inv: Inventory) -> Vec<Arc<Item>> {
        self.read(inv).values().cloned().collect()
    }

    pub fn len(&self, inv: Inventory) -> usize {
        self.read(inv).len()
    }

    /// Runs `f` over the map under the read lock (for comparisons that must not copy it).
    pub(crate) fn with_items<R>(&self, inv: Inventory, f: impl FnOnce(&ItemMap) -> R) -> R {
        f(&self.read(inv))
    }

    /// The inventory as lists read it: published whole after every applied poll.
    pub fn view(&self, inv: Inventory) -> Arc<View> {
        self.shard(inv)
            .view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Publishes `view`; the one it replaces is dropped after the lock is released.
    fn publish(&self, inv: Inventory, view: View) {
        let view = Arc::new(view);
        let old = std::mem::replace(
            &mut *self
                .shard(inv)
                .view
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            view,
        );
        drop(old);
    }

    /// Replaces the whole inventory (a complete full pass). The old map is returned so that it is
    /// dropped after the lock is released.
    pub fn replace(&self, inv: Inventory, items: ItemMap) -> ItemMap {
        self.replace_sorted(inv, items, Vec::new())
    }

    /// As [`Cache::replace`] with the items already in key order ([`View::sorted`]; empty: not
    /// sorted): a warm start sorts each inventory on its own loader thread. Sorted items are
    /// taken as the view when there is nothing to carry from the current one.
    pub(crate) fn replace_sorted(
        &self,
        inv: Inventory,
        items: ItemMap,
        sorted: Vec<Arc<Item>>,
    ) -> ItemMap {
        let current = self.view(inv);
        let view = if current.is_empty() && !sorted.is_empty() && sorted.len() == items.len() {
            View::from_sorted(current.generation() + 1, sorted)
        } else {
            current.rebuilt(current.generation() + 1, &items)
        };
        drop(current);
        let old = std::mem::replace(&mut *self.write(inv), items);
        self.publish(inv, view);
        old
    }

    /// Upserts and removes in one step under the write lock (a refresh or an incomplete pass).
    pub fn apply(
        &self,
        inv: Inventory,
        upserts: impl IntoIterator<Item = Arc<Item>>,
        removals: &[Key],
    ) {
        let upserts: Vec<Arc<Item>> = upserts.into_iter().collect();
        let current = self.view(inv);
        let view = current.updated(current.generation() + 1, upserts.clone(), removals);
        drop(current);
        {
            let mut map = self.write(inv);
            for key in removals {
                map.remove(key);
            }
            for item in upserts {
                map.insert(item.key.clone(), item);
            }
        }
        self.publish(inv, view);
    }

    pub fn status(&self, inv: Inventory) -> SyncStatus {
        self.status_lock(inv).clone()
    }

    pub(crate) fn update_status<R>(
        &self,
        inv: Inventory,
        f: impl FnOnce(&mut SyncStatus) -> R,
    ) -> R {
        f(&mut self.status_lock(inv))
    }

    fn awaiting_lock(&self, inv: Inventory) -> MutexGuard<'_, Awaiting> {
        self.shard(inv)
            .awaiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The items of `inv` awaiting a second witness (a copy).
    pub fn awaiting(&self, inv: Inventory) -> Awaiting {
        self.awaiting_lock(inv).clone()
    }

    /// Replaces the items awaiting a second witness, and their summary in the status; returns
    /// whether they changed.
    pub(crate) fn set_awaiting(&self, inv: Inventory, awaiting: Awaiting) -> bool {
        let since = awaiting.values().map(|m| m.since).min();
        let count = awaiting.len() as u64;
        let changed = {
            let mut current = self.awaiting_lock(inv);
            let changed = *current != awaiting;
            *current = awaiting;
            changed
        };
        self.update_status(inv, |s| {
            s.unconfirmed = count;
            s.unconfirmed_since = since;
        });
        changed
    }

    fn history_lock(&self, inv: Inventory) -> MutexGuard<'_, VecDeque<PollPoint>> {
        self.shard(inv)
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a finished poll to the history, dropping the oldest beyond [`HISTORY_LEN`].
    pub(crate) fn push_history(&self, inv: Inventory, point: PollPoint) {
        let mut history = self.history_lock(inv);
        if history.len() == HISTORY_LEN {
            history.pop_front();
        }
        history.push_back(point);
    }

    /// The recent polls, oldest first.
    pub fn history(&self, inv: Inventory) -> Vec<PollPoint> {
        self.history_lock(inv).iter().copied().collect()
    }

    /// Replaces the history (a warm start), keeping the newest [`HISTORY_LEN`].
    pub(crate) fn restore_history(&self, inv: Inventory, points: Vec<PollPoint>) {
        let skip = points.len().saturating_sub(HISTORY_LEN);
        *self.history_lock(inv) = points.into_iter().skip(skip).collect();
    }

    pub fn is_ready(&self, inv: Inventory) -> bool {
        *self.shard(inv).ready.borrow()
    }

    pub fn all_ready(&self) -> bool {
        Inventory::ALL.iter().all(|&inv| self.is_ready(inv))
    }

    /// Marks the inventory as holding data from a complete pass. Never reverts.
    pub(crate) fn mark_ready(&self, inv: Inventory) {
        self.shard(inv)
            .ready
            .send_if_modified(|r| !std::mem::replace(r, true));
    }

    /// Resolves once `inv` is ready.
    pub async fn wait_ready(&self, inv: Inventory) {
        let mut rx = self.shard(inv).ready.subscribe();
        // The sender lives as long as the cache, which `self` keeps alive.
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Called by a poller once a poll is applied and its status recorded.
    pub(crate) fn poll_finished(&self) {
        self.polls.send_modify(|n| *n += 1);
    }

    /// A receiver that changes after every finished poll of any inventory.
    pub fn watch_polls(&self) -> watch::Receiver<u64> {
        self.polls.subscribe()
    }

    /// Resolves once every inventory is ready.
    pub async fn wait_all_ready(&self) {
        for inv in Inventory::ALL {
            self.wait_ready(inv).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn point(i: u64) -> PollPoint {
        let t = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(i as i64);
        PollPoint {
            kind: PollKind::Refresh,
            outcome: Outcome::Complete,
            started: t,
            finished: t + TimeDelta::milliseconds(250),
            items: i,
            added: 0,
            updated: 0,
            removed: 0,
            skipped_pages: 0,
            skipped_items: 0,
        }
    }

    #[test]
    fn the_history_keeps_the_newest_polls_oldest_first() {
        let cache = Cache::new();
        let n = HISTORY_LEN as u64 + 5;
        for i in 0..n {
            cache.push_history(Inventory::Carriers, point(i));
        }
        let items: Vec<u64> = cache
            .history(Inventory::Carriers)
            .iter()
            .map(|p| p.items)
            .collect();
        assert_eq!(items, (5..n).collect::<Vec<_>>());
        assert!(cache.history(Inventory::Services).is_empty());
        cache.restore_history(Inventory::Services, (0..n).map(point).collect());
        assert_eq!(cache.history(Inventory::Services).len(), HISTORY_LEN);
        assert_eq!(cache.history(Inventory::Services)[0].items, 5);
        assert_eq!(point(1).duration(), TimeDelta::milliseconds(250));
    }
}

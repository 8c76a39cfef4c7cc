//! Applying a poll: the cache in one step, the marks of items awaiting a witness, the places
//! of a reference listing, the inventory's status, the journal.

use super::Applied;
use super::context::Context;
use super::listing::Listing;
use crate::cache::{Awaiting, PollPoint};
use crate::model::item::{Item, Key, new_generation};
use crate::model::status::SyncTimes;
use crate::model::status::{ErrorNote, FullReason, Outcome, Phase, PollKind, PollReport};
use crate::telemetry::events;
use std::collections::HashSet;
use std::sync::Arc;

/// What a poll decided beyond its listings' items.
pub(super) struct Decided {
    /// Keys removed by absence: each has its two witnesses.
    pub(super) absent: Vec<Key>,
    /// Items awaiting a witness after this poll (pruned here to what the cache holds).
    pub(super) marks: Awaiting,
    /// The order of the listing that places the items from now on (a full pass that could
    /// witness absences).
    pub(super) reference: Option<Vec<Arc<Item>>>,
}

/// Applies the poll to the cache, records its status, and journals it; returns the report
/// with its removals counted.
///
/// A full pass that could witness absences builds the inventory's whole map outside the
/// lock (the items it returned, and the cached items it did not return that still await a
/// witness) and swaps it in; any other poll upserts and removes under one lock.
pub(super) fn apply(
    cx: &Context,
    mut report: PollReport,
    mut pass: Listing,
    decided: Decided,
) -> PollReport {
    let inv = cx.inventory;
    let Decided {
        absent,
        mut marks,
        reference,
    } = decided;
    let before = cx.cache.len(inv) as u64;
    let mut removed = Vec::new();
    // Of those, the ones gone upstream (two witnesses); the others left the keep rules.
    let mut gone = Vec::new();
    // Every item left in the inventory was returned by this poll.
    let mut swept = false;
    let mut unseen = None;
    if report.outcome == Outcome::Failed {
        pass.changed.clear();
        pass.unchanged.clear();
    }
    // The versions the changed items replace, for the store's change log.
    let previous = if cx.journal.is_some() && !pass.changed.is_empty() {
        cx.cache.with_items(inv, |old| {
            pass.changed
                .iter()
                .map(|i| old.get(&i.key).cloned())
                .collect()
        })
    } else {
        Vec::new()
    };
    if report.outcome == Outcome::Complete && report.kind == PollKind::Full {
        let absent_set: HashSet<&Key, crate::cache::Hasher> = absent.iter().collect();
        let mut map = std::mem::take(&mut pass.upserts);
        // One look at the old map: what this pass removes (for the journal) and what it keeps
        // without having returned it (awaiting a witness, or returned only by a confirming
        // listing that failed later).
        let mut awaiting: Vec<Arc<Item>> = Vec::new();
        cx.cache.with_items(inv, |old| {
            for (key, item) in old {
                if map.contains_key(key) {
                    continue;
                }
                if pass.seen.contains(key) || absent_set.contains(key) {
                    if cx.journal.is_some() {
                        removed.push(key.clone());
                        if !pass.seen.contains(key) {
                            gone.push(key.clone());
                        }
                    }
                } else {
                    awaiting.push(item.clone());
                }
            }
        });
        swept = awaiting.is_empty();
        if cx.journal.is_some() {
            unseen = Some(awaiting.iter().map(|item| item.key.clone()).collect());
        }
        for item in awaiting {
            map.insert(item.key.clone(), item);
        }
        let old = cx.cache.replace(inv, map);
        drop(old); // the previous map is freed here, after the write lock is released
    } else if report.outcome != Outcome::Failed {
        let upserts = std::mem::take(&mut pass.upserts);
        cx.cache.apply(inv, upserts.into_values(), &pass.removals);
        removed = std::mem::take(&mut pass.removals);
    }
    let placement = reference.map(|order| place(cx, &order));
    let items = cx.cache.len(inv);
    report.removed = (before + report.added).saturating_sub(items as u64);
    cx.cache
        .with_items(inv, |map| marks.retain(|k, _| map.contains_key(k)));
    report.churn.deferred = marks.len() as u64;
    let changed = cx.cache.set_awaiting(inv, marks);
    // Every mark, for the store, when they changed.
    let awaiting = (changed && cx.journal.is_some()).then(|| {
        let mut v: Vec<_> = cx.cache.awaiting(inv).into_iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    });
    let resync = cx.poll.full_resync_interval;
    if let Some(since) = cx.cache.status(inv).unconfirmed_since
        && report.kind == PollKind::Full
        && resync > 0
        && report.finished - since > chrono::Duration::seconds(2 * resync as i64)
    {
        events::DeletionsOverdue {
            inventory: inv,
            items: report.churn.deferred,
            since,
        }
        .emit();
    }
    // The history first: whoever sees the status (or readiness) change sees the poll there.
    cx.cache.push_history(inv, PollPoint::new(&report, items));
    let times = record(cx, &report);
    if let Some(journal) = &cx.journal {
        let _ = journal.send(Applied {
            inventory: inv,
            report: report.clone(),
            times,
            settled: cx.cache.status(inv).settled,
            upserts: pass.changed,
            previous,
            unchanged: pass.unchanged,
            removed,
            gone,
            swept,
            unseen,
            items,
            awaiting,
            placement,
        });
    }
    report
}

/// Makes `order` (a full listing's items, as it returned them) the reference that places
/// the inventory's items. Cached items it did not return (awaiting a witness, or on pages
/// it skipped) keep their place among the others: each goes just after the item that came
/// before it in the previous reference, so the next listing can still tell a miss inside a
/// page from one at a boundary. Returns every placed key in order (what the store keeps,
/// so that a warm start places the items again).
fn place(cx: &Context, order: &[Arc<Item>]) -> Vec<Key> {
    /// Positions between two returned items, for the ones carried over.
    const STEP: u64 = 256;
    let inv = cx.inventory;
    let previous = cx.cache.status(inv).placed_by;
    let generation = new_generation();
    let at = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    // (position in the previous reference, position in this one) of the returned items.
    let mut moved: Vec<(u32, u32)> = Vec::with_capacity(order.len());
    for (i, item) in order.iter().enumerate() {
        let new = at((i as u64 + 1) * STEP);
        let (g, old) = item.place();
        if g == previous && g != 0 {
            moved.push((old, new));
        }
        item.set_place(generation, new);
    }
    moved.sort_unstable();
    let mut carried: Vec<Arc<Item>> = Vec::new();
    if previous != 0 {
        carried = cx.cache.with_items(inv, |map| {
            map.values()
                .filter(|i| i.place().0 == previous)
                .cloned()
                .collect()
        });
        carried.sort_unstable_by_key(|i| i.place().1);
        let mut last_base = None;
        let mut rank = 0;
        for item in &carried {
            let old = item.place().1;
            let i = moved.partition_point(|m| m.0 < old);
            let base = i.checked_sub(1).map_or(0, |j| u64::from(moved[j].1));
            rank = if last_base == Some(base) { rank + 1 } else { 1 };
            last_base = Some(base);
            item.set_place(generation, at(base + rank.min(STEP - 1)));
        }
    }
    cx.cache.update_status(inv, |s| s.placed_by = generation);
    if cx.journal.is_none() {
        return Vec::new();
    }
    // Both runs are in position order: merge them.
    let mut keys = Vec::with_capacity(order.len() + carried.len());
    let (mut a, mut b) = (order.iter().peekable(), carried.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if y.place().1 < x.place().1 => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(item) => keys.push(item.key.clone()),
            None => break,
        }
    }
    keys
}

/// Updates the inventory's status (and readiness) after a poll; returns its window times.
pub(super) fn record(cx: &Context, report: &PollReport) -> SyncTimes {
    let inv = cx.inventory;
    let complete = report.outcome == Outcome::Complete;
    let times = cx.cache.update_status(inv, |s| {
        if complete {
            s.times.window_anchor = Some(report.started);
            if report.kind == PollKind::Full {
                s.times.last_complete_full = Some(report.started);
                // A first buildup is settled by the full pass after it.
                s.settled = report.reason != Some(FullReason::Initial);
            }
            s.last_success = Some(report.finished);
            s.consecutive_failures = 0;
            s.phase = Phase::Ready;
        } else {
            s.consecutive_failures += 1;
            s.phase = Phase::Failing;
        }
        if let Some(message) = &report.error {
            s.last_error = Some(ErrorNote {
                at: report.finished,
                message: message.clone(),
            });
        }
        match report.kind {
            PollKind::Full => s.last_full = Some(report.clone()),
            PollKind::Refresh => s.last_refresh = Some(report.clone()),
        }
        s.times
    });
    if complete && report.kind == PollKind::Full && !cx.cache.is_ready(inv) {
        cx.cache.mark_ready(inv);
        events::InventoryReady {
            inventory: inv,
            items: cx.cache.len(inv),
        }
        .emit();
    }
    times
}

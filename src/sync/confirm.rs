//! The confirming listing: run when a listing missed cached items or saw the collection move
//! under it, and what the poll then applies.

use super::listing::Listing;
use super::poller::Poller;
use crate::model::item::{Item, Key};
use crate::model::status::PollKind;
use crate::telemetry::events;
use std::sync::Arc;

/// What a confirming listing decided.
pub(super) struct Confirmation {
    /// The poll to apply.
    pub(super) pass: Listing,
    /// Whether cached items it did not see may be removed.
    pub(super) sweep: bool,
    pub(super) steady: bool,
    pub(super) recovered: u64,
    pub(super) deferred: u64,
}

impl Poller {
    /// Lists the collection a second time, because the first listing (`first`) shifted or
    /// missed cached items (`candidates`), and decides what the poll applies.
    ///
    /// - The confirming listing is *steady* when nothing moved under it either: its total
    ///   never changed (or, without totals, it saw every key the first listing saw) and no page
    ///   repeated the previous one. A steady full listing is the truth: it is applied and
    ///   swept like a quiet pass, so candidates it did not return are removed, and items the
    ///   first listing missed are recovered.
    /// - Otherwise (or if it failed or skipped pages) the two listings are merged, first
    ///   occurrence winning, nothing is removed by absence, and the candidates neither listing
    ///   returned are deferred to the next poll, a full pass.
    pub(super) async fn confirm(
        &self,
        mut first: Listing,
        candidates: &[Key],
        kind: PollKind,
        days_ago: Option<u32>,
    ) -> Confirmation {
        let mut second = Listing::new(first.started);
        let result = self.fetch_all(&mut second, days_ago).await;
        let complete = result.is_ok() && second.skipped_pages.is_empty();
        let steady = complete
            && !second.shift.shifted()
            && (second.shift.every_page_had_total
                || first.seen.iter().all(|k| second.seen.contains(k)));
        let recovered = second
            .upserts
            .keys()
            .filter(|k| !first.seen.contains(*k))
            .count() as u64;
        let deferred = if steady {
            0
        } else if complete {
            let unseen = |k: &&Key| !second.seen.contains(*k);
            (candidates.iter().filter(unseen).count() + first.upserts.keys().filter(unseen).count())
                as u64
        } else {
            candidates.len() as u64
        };
        events::ListingConfirmed {
            inventory: self.inventory,
            kind,
            steady,
            error: result.as_ref().err().map(|e| e as &dyn std::fmt::Display),
            skipped_pages: second.skipped_pages.len(),
            candidates: candidates.len(),
            recovered,
            deferred,
        }
        .emit();
        let pages = first.pages + second.pages;
        let received = first.received + second.received;
        let sweep = steady && kind == PollKind::Full;
        let mut pass = if sweep {
            second
        } else {
            if result.is_ok() {
                let cache = &self.cache;
                let inv = self.inventory;
                first.merge(second, |k| cache.get(inv, k.as_str()).is_some());
            }
            first
        };
        pass.pages = pages;
        pass.received = received;
        Confirmation {
            pass,
            sweep,
            steady,
            recovered: if result.is_ok() { recovered } else { 0 },
            deferred,
        }
    }
}

impl Listing {
    /// Adds what a confirming listing saw and this one did not (the first occurrence wins).
    /// `cached` tells whether a key was in the cache before the poll.
    fn merge(&mut self, other: Listing, cached: impl Fn(&Key) -> bool) {
        let Listing {
            seen,
            mut upserts,
            changed,
            unchanged,
            removals,
            ..
        } = other;
        let first_seen = |k: &Key| self.seen.contains(k);
        let changed: Vec<Arc<Item>> = changed
            .into_iter()
            .filter(|i| !first_seen(&i.key))
            .collect();
        let unchanged: Vec<Key> = unchanged.into_iter().filter(|k| !first_seen(k)).collect();
        let removals: Vec<Key> = removals.into_iter().filter(|k| !first_seen(k)).collect();
        // (`existing_kept` only counts a sweep's removals, and a merged poll is never swept.)
        for item in &changed {
            if cached(&item.key) {
                self.updated += 1;
            } else {
                self.added += 1;
            }
        }
        self.skipped.not_kept += removals.len() as u64;
        self.existing_removed += removals.iter().filter(|k| cached(k)).count() as u64;
        for key in changed.iter().map(|i| &i.key).chain(&unchanged) {
            if let Some(item) = upserts.remove(key) {
                self.upserts.insert(key.clone(), item);
            }
        }
        self.changed.extend(changed);
        self.unchanged.extend(unchanged);
        self.removals.extend(removals);
        self.seen.extend(seen);
    }
}

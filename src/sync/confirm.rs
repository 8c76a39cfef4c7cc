//! Removal by absence: what each complete listing missed, the confirming listing, and the
//! merge of two listings of one poll.
//!
//! A cached item that a complete listing does not return gets a miss in its [`Mark`]; it is
//! removed once the mark has two witnesses ([`Mark::removable`]). Any listing or refresh that
//! returns it clears the mark. Marks live in the cache beside the items (and are persisted by
//! the store and the mirror), so a restart or a takeover forgets none of them.

use super::context::Context;
use super::listing::Listing;
use crate::cache::Awaiting;
use crate::model::item::{Item, Key};
use crate::model::json;
use crate::model::status::{Churn, Mark, PollKind};
use crate::source::ItemAnswer;
use crate::sync::rules::Verdict;
use crate::telemetry::events;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What a confirming listing contributed to its poll.
pub(super) struct Confirmation {
    /// Why it cannot witness absences (its error, skipped or cut pages), if it cannot.
    pub(super) gaps: Option<String>,
    /// Items it returned that the first listing had missed.
    pub(super) recovered: u64,
    /// Pages it skipped or found cut short (for the poll's report).
    pub(super) skipped_pages: Vec<u32>,
    pub(super) short_pages: Vec<u32>,
    /// It could witness absences: its order becomes the reference.
    pub(super) witness: Option<Vec<Arc<Item>>>,
}

/// Runs the confirming listing of a poll whose first listing is `first` (complete), merges
/// what it returned into `first` (its versions win: they are the later ones), and, when it
/// is complete, records its misses in `marks`.
pub(super) async fn confirm(
    cx: &Context,
    first: &mut Listing,
    marks: &mut Awaiting,
    kind: PollKind,
    days_ago: Option<u32>,
) -> Confirmation {
    let mut second = Listing::new(first.started, first.ref_generation);
    let result = second.fetch(cx, days_ago).await;
    let gaps = match &result {
        Err(e) => Some(e.to_string()),
        Ok(()) => second
            .gaps()
            .or_else(|| too_few(cx, &second, kind).map(|(why, _)| why)),
    };
    // Whatever it returned is live, even from a listing that failed later.
    clear_seen(marks, &second);
    if gaps.is_none() && kind == PollKind::Full {
        let missed = missed(cx, &second, Some(first));
        add_misses(marks, &missed, &mut second, first.started);
    }
    let recovered = second
        .upserts
        .keys()
        .filter(|k| !first.seen.contains(*k))
        .count() as u64;
    // Its order places the items when it could witness (the merge needs neither it nor the
    // page lists).
    let confirmation = Confirmation {
        recovered: if result.is_ok() { recovered } else { 0 },
        skipped_pages: std::mem::take(&mut second.skipped_pages),
        short_pages: std::mem::take(&mut second.short_pages),
        witness: gaps.is_none().then(|| std::mem::take(&mut second.order)),
        gaps,
    };
    events::ListingConfirmed {
        inventory: cx.inventory,
        kind,
        error: confirmation.gaps.as_deref(),
        skipped_pages: confirmation.skipped_pages.len(),
        recovered: confirmation.recovered,
        awaiting: marks.len() as u64,
    }
    .emit();
    if result.is_ok() {
        first.merge(second, |k| cx.cache.get(cx.inventory, k.as_str()).is_some());
    } else {
        first.pages += second.pages;
        first.received += second.received;
    }
    confirmation
}

/// Asks the upstream's single-item endpoint (where configured) about the items the first
/// listing missed that a miss alone does not remove, at most `poll.max_item_checks`: a 404
/// is their second witness; an answer shows them live (kept, or updated to what it says,
/// or removed if the rules no longer keep it). A failed check changes nothing. The first
/// check asks for an item the listing did return: unless the endpoint finds it, it is
/// taken as misconfigured and none of its 404s counts.
pub(super) async fn check_items(
    cx: &Context,
    first: &mut Listing,
    marks: &mut Awaiting,
    missed: &[Arc<Item>],
    churn: &mut Churn,
) {
    let limit = cx.poll.max_item_checks as usize;
    if !cx.upstream.has_item_endpoint(cx.inventory) || limit == 0 {
        return;
    }
    let asked: Vec<Arc<Item>> = missed
        .iter()
        .filter(|i| marks.get(&i.key).is_some_and(|m| !m.removable()))
        .take(limit)
        .cloned()
        .collect();
    if asked.is_empty() || first.order.is_empty() {
        return;
    }
    // Up to three items the listing returned (its last, middle and first: one of them may
    // have been deleted since); one found is enough.
    let n = first.order.len();
    let mut controls: Vec<Arc<Item>> = [n - 1, n / 2, 0]
        .iter()
        .map(|&i| first.order[i].clone())
        .collect();
    controls.dedup_by(|a, b| a.key == b.key);
    let mut last = String::new();
    let mut usable = false;
    for control in &controls {
        match cx
            .upstream
            .fetch_item(cx.inventory, &item_id(control))
            .await
        {
            Ok(ItemAnswer::Found(_)) => {
                usable = true;
                break;
            }
            Ok(ItemAnswer::Gone) => last = format!("404 for {}", control.key),
            Err(e) => last = e.to_string(),
        }
    }
    if !usable {
        events::ItemEndpointUnusable {
            inventory: cx.inventory,
            answer: &last,
        }
        .emit();
        return;
    }
    let in_flight = cx.poll.pages_in_flight.max(1) as usize;
    let mut pending = asked.into_iter();
    let mut requests = tokio::task::JoinSet::new();
    let mut failed = 0u64;
    loop {
        while requests.len() < in_flight
            && let Some(item) = pending.next()
        {
            let upstream = cx.upstream.clone();
            let inventory = cx.inventory;
            requests.spawn(async move {
                let answer = upstream.fetch_item(inventory, &item_id(&item)).await;
                (item, answer)
            });
        }
        let Some(joined) = requests.join_next().await else {
            break;
        };
        let (item, answer) = match joined {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => continue,
        };
        match answer {
            Ok(ItemAnswer::Gone) => {
                if let Some(mark) = marks.get_mut(&item.key) {
                    mark.gone = true;
                }
                churn.checked_gone += 1;
            }
            Ok(ItemAnswer::Found(body)) if take_checked(cx, first, &item, &body) => {
                marks.remove(&item.key);
                churn.checked_live += 1;
            }
            _ => failed += 1,
        }
    }
    events::ItemsChecked {
        inventory: cx.inventory,
        gone: churn.checked_gone,
        live: churn.checked_live,
        failed,
    }
    .emit();
}

/// Takes what the single-item endpoint answered for cached `item` into the poll, as a
/// listing would have; false if the answer is not that item.
fn take_checked(cx: &Context, pass: &mut Listing, item: &Arc<Item>, body: &str) -> bool {
    match cx.rules.judge(body) {
        Verdict::Keep { key } if key == item.key.as_str() => {
            let compact = json::compact(body, &mut pass.scratch);
            let now = cx.clock.now();
            let taken = if compact == item.raw() {
                item.touch(now);
                pass.unchanged.push(item.key.clone());
                item.clone()
            } else {
                let fresh = Arc::new(Item::new(
                    item.key.clone(),
                    cx.inventory,
                    compact.into(),
                    item.first_seen,
                    now,
                ));
                pass.updated += 1;
                pass.changed.push(fresh.clone());
                fresh
            };
            pass.seen.insert(item.key.clone());
            pass.upserts.insert(item.key.clone(), taken);
            true
        }
        Verdict::NotKept { key, .. } if key == item.key.as_str() => {
            pass.skipped.not_kept += 1;
            pass.removals.push(item.key.clone());
            pass.seen.insert(item.key.clone());
            true
        }
        _ => false,
    }
}

/// Cached items `listing` did not return, with (for a confirming listing) the items the
/// first listing `also` added that this one did not return either.
pub(super) fn missed(cx: &Context, listing: &Listing, also: Option<&Listing>) -> Vec<Arc<Item>> {
    let mut missed: Vec<Arc<Item>> = cx.cache.with_items(cx.inventory, |old| {
        old.values()
            .filter(|i| !listing.seen.contains(&i.key))
            .cloned()
            .collect()
    });
    if let Some(first) = also {
        missed.extend(
            first
                .changed
                .iter()
                .filter(|i| !listing.seen.contains(&i.key))
                .filter(|i| cx.cache.get(cx.inventory, i.key.as_str()).is_none())
                .cloned(),
        );
    }
    missed
}

/// Why a full listing returned too few items to witness absences: fewer kept items than
/// `poll.min_listing_share` of those cached (a gateway that ended it early without a sign).
/// Also the numbers, for the report.
pub(super) fn too_few(cx: &Context, listing: &Listing, kind: PollKind) -> Option<(String, u64)> {
    if kind != PollKind::Full {
        return None;
    }
    let cached = cx.cache.len(cx.inventory) as u64;
    let share = cx.poll.min_listing_share;
    let kept = listing.kept();
    ((kept as f64) < cached as f64 * share).then(|| {
        (
            format!(
                "the listing returned {kept} items while {cached} are cached: fewer than poll.min_listing_share ({share}), so it cannot show what was deleted"
            ),
            kept,
        )
    })
}

/// The id the single-item endpoint knows an item by: its TMF `id`, else its key.
fn item_id(item: &Item) -> String {
    serde_json::from_str::<serde_json::Value>(item.raw())
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str().map(str::to_owned)))
        .unwrap_or_else(|| item.key.to_string())
}

/// Clears the marks of every key `listing` returned (kept or not): those items are live.
pub(super) fn clear_seen(marks: &mut Awaiting, listing: &Listing) {
    if !marks.is_empty() {
        marks.retain(|k, _| !listing.seen.contains(k));
    }
}

/// Gives each of `missed` a miss by `listing` (complete), certain where the listing returned
/// the items around it on one page (see [`Listing::inside`]).
pub(super) fn add_misses(
    marks: &mut Awaiting,
    missed: &[Arc<Item>],
    listing: &mut Listing,
    started: DateTime<Utc>,
) {
    listing.sorted_refs();
    for item in missed {
        let mark = marks
            .entry(item.key.clone())
            .or_insert_with(|| Mark::new(started));
        mark.misses = mark.misses.saturating_add(1);
        mark.certain |= listing.inside(item.place());
    }
}

impl Listing {
    /// Adds what a later listing of the same poll returned: its version of an item wins (it
    /// is the later one), and its verdict too (kept or not). `cached` tells whether a key was
    /// in the cache before the poll.
    pub(super) fn merge(&mut self, other: Listing, cached: impl Fn(&Key) -> bool) {
        let Listing {
            seen,
            upserts,
            changed,
            unchanged,
            removals,
            skipped,
            received,
            pages,
            ..
        } = other;
        {
            let not_kept: std::collections::HashSet<&Key, crate::cache::Hasher> =
                removals.iter().collect();
            let later = |k: &Key| upserts.contains_key(k) || not_kept.contains(k);
            // What the first listing said of keys the later one also returned gives way.
            self.changed.retain(|i| !later(&i.key));
            self.unchanged.retain(|k| !later(k));
            self.removals.retain(|k| !later(k));
        }
        for key in &removals {
            self.upserts.remove(key);
        }
        self.upserts.extend(upserts);
        self.changed.extend(changed);
        self.unchanged.extend(unchanged);
        self.removals.extend(removals);
        self.seen.extend(seen);
        // Counted again over the merged poll.
        self.added = self.changed.iter().filter(|i| !cached(&i.key)).count() as u64;
        self.updated = self.changed.len() as u64 - self.added;
        self.skipped.no_key += skipped.no_key;
        self.skipped.not_object += skipped.not_object;
        self.skipped.too_deep += skipped.too_deep;
        self.skipped.duplicates += skipped.duplicates;
        self.skipped.not_kept += skipped.not_kept;
        self.received += received;
        self.pages += pages;
    }
}

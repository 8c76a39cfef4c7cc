//! One listing: the pages of a collection in order until a short page, and what they add up to
//! (items kept, removed, skipped; churn seen under the cursor).

use super::context::Context;
use crate::cache::ItemMap;
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::json;
use crate::model::status::SkipCounts;
use crate::source::{Items, Page, PageError, PageFailure, PageRequest};
use crate::sync::rules::Verdict;
use crate::telemetry::events;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use tokio::task::JoinSet;

/// At most this many items are made room for up front, whatever total a page reports.
const MAX_RESERVED: u64 = 4_000_000;

/// Everything a listing accumulates before its poll is applied.
pub(super) struct Listing {
    pub(super) started: DateTime<Utc>,
    pub(super) seen: HashSet<Key, crate::cache::Hasher>,
    pub(super) upserts: ItemMap,
    /// Added or changed items (a subset of `upserts`).
    pub(super) changed: Vec<Arc<Item>>,
    pub(super) unchanged: Vec<Key>,
    pub(super) removals: Vec<Key>,
    pub(super) skipped: SkipCounts,
    pub(super) received: u64,
    pub(super) pages: u32,
    pub(super) skipped_pages: Vec<u32>,
    /// Pages served short although the listing went on after them.
    pub(super) short_pages: Vec<u32>,
    /// The listing ended (on an empty page) at `.0` elements while the total said `.1`.
    pub(super) short_of_total: Option<(u64, u64)>,
    pub(super) added: u64,
    pub(super) updated: u64,
    /// Kept items that were already cached.
    pub(super) existing_kept: u64,
    /// Not-kept items that were cached (the removals of a refresh).
    pub(super) existing_removed: u64,
    /// Signs that the collection changed while this listing ran.
    pub(super) shift: Shift,
    /// The kept items in the order the listing returned them (first occurrences): what the
    /// listing places when it becomes the reference (see [`Item::place`]).
    pub(super) order: Vec<Arc<Item>>,
    /// For each unchanged item placed by the reference listing (`ref_generation`): its
    /// position there and the page of this listing that returned it.
    pub(super) refs: Vec<(u32, u32)>,
    pub(super) ref_generation: u32,

    /// The previous page's text and where its first occurrences sit in it, to recognise a page
    /// that serves them again.
    pub(super) previous_page: (Box<str>, Vec<(Key, Range<usize>)>),
    /// How many pages in a row repeated the previous page's text whole.
    identical_run: u32,
    /// Reused for compact text.
    pub(super) scratch: String,
    /// Reused for each page's elements (empty between pages).
    pub(super) tape: json::Tape<'static>,
}

impl Listing {
    /// Why this listing cannot witness absences, if it cannot: it did not see every page.
    pub(super) fn gaps(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.skipped_pages.is_empty() {
            why.push(format!(
                "skipped pages {:?} after HTTP 504",
                self.skipped_pages
            ));
        }
        if !self.short_pages.is_empty() {
            why.push(format!(
                "pages {:?} were cut short while the listing went on",
                self.short_pages
            ));
        }
        if let Some((listed, total)) = self.short_of_total {
            why.push(format!(
                "the listing ended after {listed} items while the upstream's total said {total}"
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// Kept items returned, cached before or not.
    pub(super) fn kept(&self) -> u64 {
        self.upserts.len() as u64
    }

    /// Notes page text `text` (before it is absorbed); true if it is the previous page's text
    /// again, whole.
    fn repeats_previous(&mut self, text: &str) -> bool {
        let same = self.pages > 1 && *self.previous_page.0 == *text;
        self.identical_run = if same { self.identical_run + 1 } else { 0 };
        same
    }

    /// The reference positions, sorted: see [`Listing::inside`].
    pub(super) fn sorted_refs(&mut self) {
        self.refs.sort_unstable();
    }

    /// Whether this listing's miss of an item at `place` is certain (call
    /// [`Listing::sorted_refs`] first): the items on both sides of it in the reference listing
    /// came back on one page of this one. Offset paging skips a live item only at a page
    /// boundary (something in front of the cursor went away between two pages, often an item
    /// the listing had already read, which it cannot see); inside one page the upstream
    /// answered for every position between them at once, so the item was not there. (Before
    /// the first reference item: certain when that one came on this listing's first page;
    /// after the last one, never: a listing cut without a sign would look like that.) This
    /// holds for any upstream that lists unchanged items in a stable order, as offset paging
    /// needs; an item that changed and moved is returned elsewhere, or by the next refresh.
    pub(super) fn inside(&self, place: (u32, u32)) -> bool {
        let (generation, position) = place;
        if generation == 0 || generation != self.ref_generation {
            return false;
        }
        let i = self.refs.partition_point(|r| r.0 < position);
        match (i.checked_sub(1).map(|j| self.refs[j]), self.refs.get(i)) {
            (Some(before), Some(after)) => before.1 == after.1,
            (None, Some(after)) => after.1 == 0,
            _ => false,
        }
    }
}

/// What one listing noticed of changes under it. Deletions in front of the cursor make later
/// pages start further on, so items slide across a page boundary unseen; that shows only in a
/// total that moves. Inserts in front of the cursor show as the previous page's last items
/// served again.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Shift {
    /// The total reported with the first page.
    pub(super) first_total: Option<u64>,
    pub(super) total_moved: bool,
    /// Elements identical to one on the previous page under the same key.
    pub(super) repeated: u64,
}

impl Shift {
    pub(super) fn shifted(&self) -> bool {
        self.total_moved || self.repeated > 0
    }

    /// Notes the total a page came with.
    pub(super) fn saw_total(&mut self, total: Option<u64>, first: bool) {
        if first {
            self.first_total = total;
        }
        if let (Some(first), Some(now)) = (self.first_total, total) {
            self.total_moved |= first != now;
        }
    }
}

/// Which pages of one listing have been requested and which have arrived ahead of their turn.
struct PageWindow {
    /// The next page to request.
    next: u32,
    /// Pages requested so far (never more than `max_pages`).
    requested: u32,
    max_pages: u32,
    /// The lowest page known to end the listing (a short page the total agrees with).
    end: Option<u32>,
    /// A short page arrived that the total does not explain (or none was sent): request no
    /// page after the one following it until a later full page shows the listing goes on.
    probe: Option<u32>,
    /// Pages that arrived before the ones in front of them were taken, by page.
    arrived: BTreeMap<u32, Result<Page, PageFailure>>,
}

impl PageWindow {
    fn new(first_page: u32, max_pages: u32) -> PageWindow {
        PageWindow {
            next: first_page,
            requested: 0,
            max_pages,
            end: None,
            probe: None,
            arrived: BTreeMap::new(),
        }
    }

    /// The next page to request while `taking` is the page to take next and `ahead` pages
    /// (from `taking` on) may be requested; `None` when the window is full, the listing's end
    /// is known, or `max_pages` pages have been requested. The page being taken is always
    /// requested (so a listing that goes on past a probe never waits for nothing).
    fn next_to_request(&mut self, taking: u32, ahead: u32) -> Option<u32> {
        let page = self.next;
        let bound = |limit: Option<u32>| limit.is_none_or(|l| page <= l);
        let room = page <= taking
            || (page < taking.saturating_add(ahead)
                && bound(self.end)
                && bound(self.probe.map(|p| p.saturating_add(1))));
        let room = room && self.requested < self.max_pages;
        room.then(|| {
            self.next = self.next.saturating_add(1);
            self.requested += 1;
            page
        })
    }

    /// Page `page` arrived with `items` elements of `page_size`; `ends` if the total says the
    /// collection ends there.
    fn arrived_with(&mut self, page: u32, items: usize, page_size: usize, ends: bool) {
        if ends {
            self.end = Some(self.end.map_or(page, |end| end.min(page)));
        } else if items < page_size {
            self.probe = Some(page);
        } else if self.probe.is_some_and(|p| page > p) {
            self.probe = None;
        }
    }

    /// The listing ended at `page`: pages after it that already arrived are dropped unseen
    /// (the ones still in flight are abandoned with the request set).
    fn discard_after(&mut self, page: u32, inventory: Inventory) {
        let discarded: Vec<u32> = self.arrived.keys().copied().filter(|&p| p > page).collect();
        let requested_after = self.next.saturating_sub(page.saturating_add(1)) as usize;
        let in_flight = requested_after.saturating_sub(discarded.len());
        if !discarded.is_empty() || in_flight > 0 {
            events::PagesDiscarded {
                inventory,
                last_page: page,
                arrived: &discarded,
                in_flight,
            }
            .emit();
        }
        self.arrived.clear();
    }
}

impl Listing {
    /// Fetches every page of this listing. Pages that still answer 504 after their
    /// retries are skipped; any other persistent error ends the listing.
    ///
    /// Once the first page is in, up to `poll.pages_in_flight` pages are requested ahead (each
    /// with its own retries, each attempt within its API's limit of requests in flight), but
    /// pages are taken in page order, exactly as if they had been fetched one at a time: a page
    /// that arrives early waits for the ones before it. So the first occurrence of a key, the
    /// churn signals (the total, a page repeating the previous one) and the end of the listing
    /// mean what they meant. Pages past the end are discarded unseen, their requests
    /// abandoned; no page beyond `poll.max_pages` is ever requested. With
    /// `pages_in_flight = 1` the requests are exactly those of one page at a time.
    ///
    /// Where the listing ends: at a short page the upstream's total agrees with, else at an
    /// empty page that follows a short one. A short page followed by more items was *cut*
    /// (`short_pages`); an empty end where the total says more remain is `short_of_total`.
    /// Either way the listing goes on, and cannot witness absences (see [`Listing::gaps`]).
    /// Without a total, confirming the end costs one request: the empty page after the last.
    pub(super) async fn fetch(
        &mut self,
        cx: &Context,
        days_ago: Option<u32>,
    ) -> Result<(), PollError> {
        let poll = &cx.poll;
        let page_size = poll.records_per_page as usize;
        let pages_in_flight = poll.pages_in_flight.max(1);
        let first_page = poll.first_page;
        let mut window = PageWindow::new(first_page, poll.max_pages);
        // Whether the collection ends at `page` with `n` items, by the total sent with it.
        let total_ends = |page: u32, n: usize, total: Option<u64>| {
            let offset = u64::from(page.saturating_sub(first_page)) * page_size as u64;
            total.map(|t| (offset + n as u64 >= t, offset + n as u64, t))
        };
        // Dropping the set (at any return) aborts the requests still in flight.
        let mut requests: JoinSet<(u32, Result<Page, PageFailure>)> = JoinSet::new();
        let mut page = first_page;
        // The page taken before this one was short (or empty).
        let mut previous_short = false;
        loop {
            if self.pages + self.skipped_pages.len() as u32 >= poll.max_pages {
                return Err(PollError::TooManyPages(poll.max_pages));
            }
            // Keep `ahead` pages requested from the one to take next; the first page goes
            // alone: most refreshes and small collections fit in it, and a rejected password
            // or an upstream that is down then costs one request, not `ahead`.
            let ahead = if page == first_page {
                1
            } else {
                pages_in_flight
            };
            while let Some(ahead_page) = window.next_to_request(page, ahead) {
                let upstream = cx.upstream.clone();
                let req = PageRequest {
                    inventory: cx.inventory,
                    page: ahead_page,
                    days_ago,
                };
                requests.spawn(
                    async move { (ahead_page, upstream.fetch_page_with_retries(req).await) },
                );
            }
            let result = loop {
                if let Some(result) = window.arrived.remove(&page) {
                    break result;
                }
                match requests.join_next().await {
                    Some(Ok((p, result))) => {
                        if let Ok(got) = &result {
                            let n = got.items.elements.len();
                            let ends = total_ends(p, n, got.total).is_some_and(|(e, ..)| e);
                            window.arrived_with(p, n, page_size, ends);
                        }
                        window.arrived.insert(p, result);
                    }
                    Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Some(Err(_)) => {}
                    None => unreachable!("page {page} is requested and not yet taken"),
                }
            };
            match result {
                Ok(p) => {
                    events::PageFetched {
                        inventory: cx.inventory,
                        page,
                        items: p.items.elements.len(),
                        bytes: p.bytes,
                        duration: p.duration,
                    }
                    .emit();
                    self.pages += 1;
                    self.shift.saw_total(p.total, self.pages == 1);
                    if self.pages == 1 {
                        // The keys seen, sized once for the listing rather than page by page:
                        // for the total the upstream reports, else (a full pass) what is
                        // cached. (Not the items kept: that map becomes the cache's, and room
                        // for items the rules drop would stay allocated as long as it.)
                        let expected = p.total.map_or(
                            if days_ago.is_none() {
                                cx.cache.len(cx.inventory)
                            } else {
                                0
                            },
                            |t| usize::try_from(t.min(MAX_RESERVED)).unwrap_or(0),
                        );
                        self.seen.reserve(expected);
                    }
                    let n = p.items.elements.len();
                    if n > 0 && previous_short {
                        // The page before was short, yet the listing goes on: it was cut.
                        let cut = page - 1;
                        self.short_pages.push(cut);
                        events::PageCutShort {
                            inventory: cx.inventory,
                            page: cut,
                        }
                        .emit();
                    }
                    let repeated = self.repeats_previous(&p.items.text);
                    let ends = total_ends(page, n, p.total);
                    self.absorb(cx, p.items);
                    if repeated && self.identical_run >= 2 {
                        // Three identical pages in a row: not an insert in front of the
                        // cursor (that repeats a page once), an upstream that ignores `page`.
                        return Err(PollError::RepeatedPage(page));
                    }
                    if n < page_size {
                        let agreed = ends.is_some_and(|(e, ..)| e);
                        if agreed || (n == 0 && previous_short) {
                            if let Some((false, listed, total)) = ends {
                                self.short_of_total = Some((listed, total));
                            }
                            window.discard_after(page, cx.inventory);
                            return Ok(());
                        }
                    }
                    previous_short = n < page_size;
                }
                Err(f) if f.error.is_gateway_timeout() => {
                    events::PageSkipped {
                        inventory: cx.inventory,
                        page,
                        attempts: f.attempts,
                        error: &f.error,
                    }
                    .emit();
                    self.skipped_pages.push(page);
                    previous_short = false;
                }
                Err(f) => {
                    events::PageFailed {
                        inventory: cx.inventory,
                        page,
                        attempts: f.attempts,
                        error: &f.error,
                    }
                    .emit();
                    if let PageError::Unauthorized { api, status, .. } = &f.error {
                        events::CredentialsRejected {
                            inventory: cx.inventory,
                            api: *api,
                            status: *status,
                        }
                        .emit();
                    }
                    return Err(PollError::Page {
                        page,
                        attempts: f.attempts,
                        error: f.error,
                    });
                }
            }
            page = page.saturating_add(1);
        }
    }

    /// Judges a page's elements and adds them to the poll, reading them straight from the
    /// page's text: an element whose compact text equals the cached item's costs a key lookup
    /// and a comparison; only new and changed elements are decoded (into a borrowed tree) for
    /// their rows.
    ///
    /// Each element is read once onto a tape shared by the page (compact text without escapes,
    /// as the upstream sends it); the rules judge it there, and a new or changed element's row
    /// is extracted from it. Any other element is judged and compacted from its text, and its
    /// row is read from the compact text, as [`Item::new`] reads it.
    fn absorb(&mut self, cx: &Context, page: Items) {
        let text = &*page.text;
        self.received += page.elements.len() as u64;
        let mut tape = std::mem::take(&mut self.tape).recycle();
        let judged: Vec<(Verdict<'_>, &str, Option<usize>)> = page
            .elements
            .iter()
            .map(|r| {
                let element = &text[r.clone()];
                match tape.append_compact(element) {
                    Some(at) => (cx.rules.judge_tape(tape.value(at)), element, Some(at)),
                    None => (cx.rules.judge(element), element, None),
                }
            })
            .collect();
        let keys = judged.iter().filter_map(|(v, ..)| match v {
            Verdict::Keep { key, .. } | Verdict::NotKept { key, .. } => Some(key.as_ref()),
            _ => None,
        });
        let mut cached = cx.cache.get_many(cx.inventory, keys).into_iter();
        let now = cx.clock.now();
        // This page's number within the listing (for the reference positions).
        let page_no = self.pages.saturating_sub(1);
        let (previous_text, previous) = std::mem::take(&mut self.previous_page);
        let mut this_page = Vec::with_capacity(judged.len());
        for ((verdict, element, on_tape), range) in judged.into_iter().zip(&page.elements) {
            let key_text = match &verdict {
                Verdict::NotObject => {
                    self.skipped.not_object += 1;
                    continue;
                }
                Verdict::NoKey => {
                    self.skipped.no_key += 1;
                    continue;
                }
                Verdict::Keep { key, .. } | Verdict::NotKept { key, .. } => key,
            };
            let old = cached.next().flatten();
            // The cached item's key is shared, not copied.
            let key = old
                .as_ref()
                .map_or_else(|| Key::new(key_text), |o| o.key.clone());
            if !self.seen.insert(key.clone()) {
                self.skipped.duplicates += 1;
                let served_again = previous
                    .iter()
                    .any(|(k, r)| *k == key && previous_text[r.clone()] == *element);
                if served_again {
                    // The previous page's item served again: the collection grew in front of
                    // the cursor and the pages moved on by one.
                    self.shift.repeated += 1;
                }
                continue;
            }
            this_page.push((key.clone(), range.clone()));
            match verdict {
                Verdict::Keep { .. } => {
                    // An element read onto the tape is compact already.
                    let compact = match on_tape {
                        Some(_) => element,
                        None => json::compact(element, &mut self.scratch),
                    };
                    let unchanged = old.as_ref().is_some_and(|o| o.raw() == compact);
                    let item = match old {
                        Some(old) if unchanged => {
                            old.touch(now);
                            self.existing_kept += 1;
                            self.unchanged.push(key.clone());
                            let (generation, position) = old.place();
                            if generation == self.ref_generation && generation != 0 {
                                self.refs.push((position, page_no));
                            }
                            old
                        }
                        // A new version nested too deep for the readers downstream (the API, the
                        // console, the mirror read an item's JSON as a tree) is not taken: the
                        // item was seen, so a cached one stays as it was.
                        old if json::nests_deeper_than(compact, json::MAX_DEPTH) => {
                            self.skipped.too_deep += 1;
                            match old {
                                Some(old) => {
                                    old.touch(now);
                                    self.existing_kept += 1;
                                    self.unchanged.push(key.clone());
                                    old
                                }
                                None => continue,
                            }
                        }
                        old => {
                            let raw: Box<str> = compact.into();
                            let first_seen = match &old {
                                Some(old) => {
                                    self.existing_kept += 1;
                                    self.updated += 1;
                                    old.first_seen
                                }
                                None => {
                                    self.added += 1;
                                    now
                                }
                            };
                            let item = Arc::new(match on_tape {
                                Some(at) => Item::from_tape(
                                    key.clone(),
                                    cx.inventory,
                                    raw,
                                    (tape.value(at), element),
                                    first_seen,
                                    now,
                                ),
                                None => Item::new(key.clone(), cx.inventory, raw, first_seen, now),
                            });
                            self.changed.push(item.clone());
                            item
                        }
                    };
                    self.order.push(item.clone());
                    self.upserts.insert(key, item);
                }
                Verdict::NotKept { .. } => {
                    self.skipped.not_kept += 1;
                    if old.is_some() {
                        self.existing_removed += 1;
                    }
                    self.removals.push(key);
                }
                Verdict::NoKey | Verdict::NotObject => unreachable!("handled above"),
            }
        }
        self.tape = tape.recycle();
        self.previous_page = (page.text, this_page);
    }
}

impl Listing {
    /// An empty listing started at `started`, whose certain misses are judged against the
    /// positions of reference listing `ref_generation` (0: none).
    pub(super) fn new(started: DateTime<Utc>, ref_generation: u32) -> Listing {
        Listing {
            started,
            seen: HashSet::default(),
            upserts: ItemMap::default(),
            changed: Vec::new(),
            unchanged: Vec::new(),
            removals: Vec::new(),
            skipped: SkipCounts::default(),
            received: 0,
            pages: 0,
            skipped_pages: Vec::new(),
            short_pages: Vec::new(),
            short_of_total: None,
            added: 0,
            updated: 0,
            existing_kept: 0,
            existing_removed: 0,
            shift: Shift::default(),
            order: Vec::new(),
            refs: Vec::new(),
            ref_generation,
            previous_page: (Box::default(), Vec::new()),
            identical_run: 0,
            scratch: String::new(),
            tape: json::Tape::default(),
        }
    }
}

/// Why a poll ended early.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("page {page} failed after {attempts} attempt(s): {error}")]
    Page {
        page: u32,
        attempts: u32,
        error: PageError,
    },
    #[error(
        "page {0} is the same as the two pages before it: the upstream seems to ignore the page parameter (poll.page_param)"
    )]
    RepeatedPage(u32),
    #[error("more than poll.max_pages ({0}) pages without a short page")]
    TooManyPages(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing placed against generation 7 whose unchanged items came back at these
    /// (reference position, page) pairs.
    fn listing(refs: &[(u32, u32)]) -> Listing {
        let mut l = Listing::new(DateTime::<Utc>::UNIX_EPOCH, 7);
        l.refs = refs.to_vec();
        l.sorted_refs();
        l
    }

    #[test]
    fn a_miss_is_certain_only_inside_a_page() {
        // Reference positions 10..=50; the listing's pages hold 10-20 | 30-40 | 50.
        let l = listing(&[(40, 1), (10, 0), (20, 0), (30, 1), (50, 2)]);
        // Between two items of one page.
        assert!(l.inside((7, 15)));
        assert!(l.inside((7, 35)));
        // Between the last item of a page and the first of the next: maybe skipped.
        assert!(!l.inside((7, 25)));
        assert!(!l.inside((7, 45)));
        // Before the first item, which came on the first page: nowhere else to be.
        assert!(l.inside((7, 5)));
        // After the last item: a listing cut without a sign looks the same.
        assert!(!l.inside((7, 55)));
        // Placed by another listing, or by none: positions are not comparable.
        assert!(!l.inside((6, 15)));
        assert!(!l.inside((0, 15)));
        assert!(!listing(&[(10, 1), (20, 1)]).inside((7, 5)));
    }

    #[test]
    fn three_identical_pages_in_a_row_are_an_ignored_page_parameter() {
        let mut l = listing(&[]);
        for (page, text, run) in [
            (1, "a", 0),
            (2, "a", 1),
            (3, "b", 0),
            (4, "b", 1),
            (5, "b", 2),
        ] {
            l.pages = page;
            l.repeats_previous(text);
            assert_eq!(l.identical_run, run, "page {page}");
            l.previous_page = (text.into(), Vec::new());
        }
    }
}

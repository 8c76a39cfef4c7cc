//! One listing: the pages of a collection in order until a short page, and what they add up to
//! (items kept, removed, skipped; churn seen under the cursor).

use super::poller::Poller;
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

/// Everything a poll accumulates before it is applied.
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
    pub(super) added: u64,
    pub(super) updated: u64,
    /// Kept items that were already cached (to count removals of a full pass).
    pub(super) existing_kept: u64,
    /// Not-kept items that were cached (the removals of a refresh).
    pub(super) existing_removed: u64,
    /// Signs that the collection changed while this listing ran.
    pub(super) shift: Shift,
    /// The previous page's text and where its first occurrences sit in it, to recognise a page
    /// that serves them again.
    pub(super) previous_page: (Box<str>, Vec<(Key, Range<usize>)>),
    /// Reused for compact text.
    pub(super) scratch: String,
    /// Reused for each page's elements (empty between pages).
    pub(super) tape: json::Tape<'static>,
}

/// What one listing noticed of changes under it. Deletions in front of the cursor make later
/// pages start further on, so items slide across a page boundary unseen; that shows only in a
/// total that moves. Inserts in front of the cursor show as the previous page's last items
/// served again.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Shift {
    /// The total reported with the first page, and whether every page reported one.
    pub(super) first_total: Option<u64>,
    pub(super) every_page_had_total: bool,
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
            self.every_page_had_total = total.is_some();
        } else if total.is_none() {
            self.every_page_had_total = false;
        }
        if let (Some(first), Some(now)) = (self.first_total, total) {
            self.total_moved |= first != now;
        }
    }
}

/// Which pages of one listing have been requested and which have arrived ahead of their turn.
struct Window {
    /// The next page to request.
    next: u32,
    /// Pages requested so far (never more than `max_pages`).
    requested: u32,
    max_pages: u32,
    /// The lowest page known to be short: the listing ends there or earlier.
    end: Option<u32>,
    /// Pages that arrived before the ones in front of them were taken, by page.
    arrived: BTreeMap<u32, Result<Page, PageFailure>>,
}

impl Window {
    fn new(first_page: u32, max_pages: u32) -> Window {
        Window {
            next: first_page,
            requested: 0,
            max_pages,
            end: None,
            arrived: BTreeMap::new(),
        }
    }

    /// The next page to request while `taking` is the page to take next and `ahead` pages
    /// (from `taking` on) may be requested; `None` when the window is full, the listing's end
    /// is known, or `max_pages` pages have been requested.
    fn next_to_request(&mut self, taking: u32, ahead: u32) -> Option<u32> {
        let page = self.next;
        let room = page < taking.saturating_add(ahead)
            && self.requested < self.max_pages
            && self.end.is_none_or(|end| page <= end);
        room.then(|| {
            self.next = self.next.saturating_add(1);
            self.requested += 1;
            page
        })
    }

    /// Page `page` is short: no page after it is requested.
    fn ends_by(&mut self, page: u32) {
        self.end = Some(self.end.map_or(page, |end| end.min(page)));
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

/// What one page contributed, to spot an upstream that ignores the page parameter.
pub(super) struct PageTally {
    keyed: usize,
    fresh: usize,
}

impl Poller {
    /// Fetches every page of the poll into `pass`. Pages that still answer 504 after their
    /// retries are skipped; any other persistent error ends the poll.
    ///
    /// Once the first page is in, up to `poll.pages_in_flight` pages are requested ahead (each
    /// with its own retries, each attempt within its API's limit of requests in flight), but
    /// pages are taken in page order, exactly as if they had been fetched one at a time: a page
    /// that arrives early waits for the ones before it. So the first occurrence of a key, the
    /// churn signals (the total, a page repeating the previous one) and the end of the listing
    /// (the first short page) mean what they meant. Pages past the end are discarded unseen,
    /// their requests abandoned; no page beyond `poll.max_pages` is ever requested. With
    /// `pages_in_flight = 1` the requests are exactly those of one page at a time.
    pub(super) async fn fetch_all(
        &self,
        pass: &mut Listing,
        days_ago: Option<u32>,
    ) -> Result<(), PollError> {
        let poll = &self.cfg().poll;
        let page_size = poll.records_per_page as usize;
        let pages_in_flight = poll.pages_in_flight.max(1);
        let mut window = Window::new(poll.first_page, poll.max_pages);
        // Dropping the set (at any return) aborts the requests still in flight.
        let mut requests: JoinSet<(u32, Result<Page, PageFailure>)> = JoinSet::new();
        let mut page = poll.first_page;
        loop {
            if pass.pages + pass.skipped_pages.len() as u32 >= poll.max_pages {
                return Err(PollError::TooManyPages(poll.max_pages));
            }
            // Keep `ahead` pages requested from the one to take next; the first page goes
            // alone: most refreshes and small collections fit in it, and a rejected password
            // or an upstream that is down then costs one request, not `ahead`.
            let ahead = if page == poll.first_page {
                1
            } else {
                pages_in_flight
            };
            while let Some(ahead_page) = window.next_to_request(page, ahead) {
                let upstream = self.upstream.clone();
                let req = PageRequest {
                    inventory: self.inventory,
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
                        if let Ok(got) = &result
                            && got.items.elements.len() < page_size
                        {
                            // The listing ends at or before `p`: nothing after it is needed.
                            window.ends_by(p);
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
                        inventory: self.inventory,
                        page,
                        items: p.items.elements.len(),
                        bytes: p.bytes,
                        duration: p.duration,
                    }
                    .emit();
                    pass.pages += 1;
                    pass.shift.saw_total(p.total, pass.pages == 1);
                    if pass.pages == 1 {
                        // The keys seen, sized once for the listing rather than page by page:
                        // for the total the upstream reports, else (a full pass) what is
                        // cached. (Not the items kept: that map becomes the cache's, and room
                        // for items the rules drop would stay allocated as long as it.)
                        let expected = p.total.map_or(
                            if days_ago.is_none() {
                                self.cache.len(self.inventory)
                            } else {
                                0
                            },
                            |t| usize::try_from(t.min(MAX_RESERVED)).unwrap_or(0),
                        );
                        pass.seen.reserve(expected);
                    }
                    let n = p.items.elements.len();
                    let tally = self.absorb(pass, p.items);
                    if n < page_size {
                        window.discard_after(page, self.inventory);
                        return Ok(());
                    }
                    if tally.keyed == n && tally.fresh == 0 {
                        return Err(PollError::RepeatedPage(page));
                    }
                }
                Err(f) if f.error.is_gateway_timeout() => {
                    events::PageSkipped {
                        inventory: self.inventory,
                        page,
                        attempts: f.attempts,
                        error: &f.error,
                    }
                    .emit();
                    pass.skipped_pages.push(page);
                }
                Err(f) => {
                    events::PageFailed {
                        inventory: self.inventory,
                        page,
                        attempts: f.attempts,
                        error: &f.error,
                    }
                    .emit();
                    if let PageError::Unauthorized { api, status, .. } = &f.error {
                        events::CredentialsRejected {
                            inventory: self.inventory,
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

    /// Cached keys the pass did not see (kept or not): what a sweep would remove.
    pub(super) fn candidates(&self, pass: &Listing) -> Vec<Key> {
        self.cache.with_items(self.inventory, |old| {
            old.keys()
                .filter(|k| !pass.seen.contains(*k))
                .cloned()
                .collect()
        })
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
    pub(super) fn absorb(&self, pass: &mut Listing, page: Items) -> PageTally {
        let text = &*page.text;
        pass.received += page.elements.len() as u64;
        let mut tape = std::mem::take(&mut pass.tape).recycle();
        let judged: Vec<(Verdict<'_>, &str, Option<usize>)> = page
            .elements
            .iter()
            .map(|r| {
                let element = &text[r.clone()];
                match tape.append_compact(element) {
                    Some(at) => (self.rules.judge_tape(tape.value(at)), element, Some(at)),
                    None => (self.rules.judge(element), element, None),
                }
            })
            .collect();
        let keys = judged.iter().filter_map(|(v, ..)| match v {
            Verdict::Keep { key, .. } | Verdict::NotKept { key, .. } => Some(key.as_ref()),
            _ => None,
        });
        let mut cached = self.cache.get_many(self.inventory, keys).into_iter();
        let now = self.clock.now();
        let mut tally = PageTally { keyed: 0, fresh: 0 };
        let (previous_text, previous) = std::mem::take(&mut pass.previous_page);
        let mut this_page = Vec::with_capacity(judged.len());
        for ((verdict, element, on_tape), range) in judged.into_iter().zip(&page.elements) {
            let key_text = match &verdict {
                Verdict::NotObject => {
                    pass.skipped.not_object += 1;
                    continue;
                }
                Verdict::NoKey => {
                    pass.skipped.no_key += 1;
                    continue;
                }
                Verdict::Keep { key, .. } | Verdict::NotKept { key, .. } => key,
            };
            let old = cached.next().flatten();
            tally.keyed += 1;
            // The cached item's key is shared, not copied.
            let key = old
                .as_ref()
                .map_or_else(|| Key::new(key_text), |o| o.key.clone());
            if !pass.seen.insert(key.clone()) {
                pass.skipped.duplicates += 1;
                let served_again = previous
                    .iter()
                    .any(|(k, r)| *k == key && previous_text[r.clone()] == *element);
                if served_again {
                    // The previous page's item served again: the collection grew in front of
                    // the cursor and the pages moved on by one.
                    pass.shift.repeated += 1;
                }
                continue;
            }
            tally.fresh += 1;
            this_page.push((key.clone(), range.clone()));
            match verdict {
                Verdict::Keep { .. } => {
                    // An element read onto the tape is compact already.
                    let compact = match on_tape {
                        Some(_) => element,
                        None => json::compact(element, &mut pass.scratch),
                    };
                    let unchanged = old.as_ref().is_some_and(|o| o.raw() == compact);
                    let item = match old {
                        Some(old) if unchanged => {
                            old.touch(now);
                            pass.existing_kept += 1;
                            pass.unchanged.push(key.clone());
                            old
                        }
                        old => {
                            let raw: Box<str> = compact.into();
                            let first_seen = match &old {
                                Some(old) => {
                                    pass.existing_kept += 1;
                                    pass.updated += 1;
                                    old.first_seen
                                }
                                None => {
                                    pass.added += 1;
                                    now
                                }
                            };
                            let item = Arc::new(match on_tape {
                                Some(at) => Item::from_tape(
                                    key.clone(),
                                    self.inventory,
                                    raw,
                                    (tape.value(at), element),
                                    first_seen,
                                    now,
                                ),
                                None => {
                                    Item::new(key.clone(), self.inventory, raw, first_seen, now)
                                }
                            });
                            pass.changed.push(item.clone());
                            item
                        }
                    };
                    pass.upserts.insert(key, item);
                }
                Verdict::NotKept { .. } => {
                    pass.skipped.not_kept += 1;
                    if old.is_some() {
                        pass.existing_removed += 1;
                    }
                    pass.removals.push(key);
                }
                Verdict::NoKey | Verdict::NotObject => unreachable!("handled above"),
            }
        }
        pass.tape = tape.recycle();
        pass.previous_page = (page.text, this_page);
        tally
    }
}

impl Listing {
    pub(super) fn new(started: DateTime<Utc>) -> Listing {
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
            added: 0,
            updated: 0,
            existing_kept: 0,
            existing_removed: 0,
            shift: Shift::default(),
            previous_page: (Box::default(), Vec::new()),
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
        "page {0} holds only keys already seen in this poll: the upstream seems to ignore the page parameter (poll.page_param)"
    )]
    RepeatedPage(u32),
    #[error("more than poll.max_pages ({0}) pages without a short page")]
    TooManyPages(u32),
}

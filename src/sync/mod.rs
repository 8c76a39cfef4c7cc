//! The poller: one per inventory, a loop of polls (full passes and refreshes) that applies each
//! whole poll to the cache, and schedules the next one.
//!
//! States, as reported in [`Phase`]: `Building` (first full pass) → `Ready` ⇄ `Refreshing` /
//! `Resyncing`, and `Failing` after a poll that failed or skipped pages, until one succeeds.
//!
//! Rules kept here:
//! - A poll is applied whole at its end: a complete full pass whose removals are confirmed
//!   replaces the map; a refresh, an incomplete full pass or one whose candidates could not be
//!   confirmed upserts and removes only what the rules exclude; a failed poll applies nothing.
//!   Readers never see half a poll, and a failure never empties the cache.
//! - A sweep never removes an item it has not confirmed gone: cached items a full pass did not
//!   see are candidates, and only those missing from a steady confirming listing are removed
//!   (see [`Churn`]).
//! - Within one listing the first occurrence of a key wins.
//! - The refresh window is anchored at the start of the last poll that retrieved every page.

pub mod daemon;
pub mod rules;
pub mod window;

use crate::cache::{Cache, ItemMap};
use crate::config::Config;
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::row::Row;
use crate::model::status::SyncTimes;
use crate::model::status::{Churn, ErrorNote, Outcome, Phase, PollKind, PollReport, SkipCounts};
use crate::source::{PageError, PageRequest, Upstream};
use crate::sync::rules::{Rules, Verdict};
use crate::telemetry::events;
use crate::time::clock::Clock;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use window::{FullReason, PollPlan};

/// An on-demand poll (from the read API): `full` forces a full pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollRequest {
    pub full: bool,
}

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
}

/// Where pollers send each [`Applied`] poll.
pub type Journal = mpsc::UnboundedSender<Applied>;

pub struct Poller {
    inventory: Inventory,
    upstream: Upstream,
    cache: Cache,
    clock: Clock,
    rules: Rules,
    failure_backoff: crate::time::backoff::Backoff,
    requests: Option<mpsc::Receiver<PollRequest>>,
    journal: Option<Journal>,
}

/// Everything a poll accumulates before it is applied.
struct PassState {
    started: DateTime<Utc>,
    seen: HashSet<Key>,
    upserts: ItemMap,
    /// Added or changed items (a subset of `upserts`).
    changed: Vec<Arc<Item>>,
    unchanged: Vec<Key>,
    removals: Vec<Key>,
    skipped: SkipCounts,
    received: u64,
    pages: u32,
    skipped_pages: Vec<u32>,
    added: u64,
    updated: u64,
    /// Kept items that were already cached (to count removals of a full pass).
    existing_kept: u64,
    /// Not-kept items that were cached (the removals of a refresh).
    existing_removed: u64,
    /// Signs that the collection changed while this listing ran.
    shift: Shift,
    /// The previous page's keyed elements, to recognise a page that repeats them.
    previous_page: HashMap<Key, Value>,
}

/// What one listing noticed of changes under it. Deletions in front of the cursor make later
/// pages start further on, so items slide across a page boundary unseen; that shows only in a
/// total that moves. Inserts in front of the cursor show as the previous page's last items
/// served again.
#[derive(Clone, Copy, Debug, Default)]
struct Shift {
    /// The total reported with the first page, and whether every page reported one.
    first_total: Option<u64>,
    every_page_had_total: bool,
    total_moved: bool,
    /// Elements identical to one on the previous page under the same key.
    repeated: u64,
}

impl Shift {
    fn shifted(&self) -> bool {
        self.total_moved || self.repeated > 0
    }

    /// Notes the total a page came with.
    fn saw_total(&mut self, total: Option<u64>, first: bool) {
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

/// What a confirming listing decided.
struct Confirmation {
    /// The poll to apply.
    pass: PassState,
    /// Whether cached items it did not see may be removed.
    sweep: bool,
    steady: bool,
    recovered: u64,
    deferred: u64,
}

/// What one page contributed, to spot an upstream that ignores the page parameter.
struct PageTally {
    keyed: usize,
    fresh: usize,
}

impl Poller {
    pub fn new(inventory: Inventory, upstream: Upstream, cache: Cache, clock: Clock) -> Poller {
        let cfg = upstream.config();
        let rules = Rules::new(inventory, cfg.inventory(inventory));
        let failure_backoff = crate::time::backoff::Backoff::new(
            Duration::from_secs(cfg.poll.failure_backoff_initial),
            Duration::from_secs(cfg.poll.failure_backoff_max),
        );
        Poller {
            inventory,
            upstream,
            cache,
            clock,
            rules,
            failure_backoff,
            requests: None,
            journal: None,
        }
    }

    /// Sends every applied poll to `journal` (the durable store).
    pub fn with_journal(mut self, journal: Journal) -> Poller {
        self.journal = Some(journal);
        self
    }

    /// Lets `requests` wake the poller for an immediate poll.
    pub fn with_requests(mut self, requests: mpsc::Receiver<PollRequest>) -> Poller {
        self.requests = Some(requests);
        self
    }

    fn cfg(&self) -> &Config {
        self.upstream.config()
    }

    /// Polls forever: the next poll as the window rules decide, then waits for its time or a
    /// request. Cancel by dropping the task; the cache only ever holds whole polls.
    pub async fn run(mut self) {
        let mut requested: Option<PollRequest> = None;
        loop {
            let now = self.clock.now();
            let status = self.cache.status(self.inventory);
            let plan = match requested.take() {
                Some(PollRequest { full: true }) => PollPlan::Full(FullReason::Requested),
                // Candidates the last full pass could not confirm are checked again now.
                _ if status.recheck => PollPlan::Full(FullReason::Unconfirmed),
                _ => window::plan(&status.times, now, &self.cfg().poll),
            };
            let report = self.poll(plan).await;
            // Requests that arrived while the poll ran have joined it; only a request for a full
            // pass made during a refresh still needs its own poll.
            let full_pending =
                self.drain_requests().is_some_and(|r| r.full) && report.kind != PollKind::Full;
            let delay = if full_pending {
                Duration::ZERO
            } else {
                self.delay_after(&report)
            };
            let at = self.clock.now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            self.cache
                .update_status(self.inventory, |s| s.next_poll = Some(at));
            events::PollScheduled {
                inventory: self.inventory,
                delay,
                at,
            }
            .emit();
            requested = if full_pending {
                Some(PollRequest { full: true })
            } else {
                self.wait(delay).await
            };
        }
    }

    /// Takes every queued request, merged into one (full if any asked for it).
    fn drain_requests(&mut self) -> Option<PollRequest> {
        let rx = self.requests.as_mut()?;
        let mut merged: Option<PollRequest> = None;
        while let Ok(r) = rx.try_recv() {
            let full = merged.is_some_and(|m| m.full) || r.full;
            merged = Some(PollRequest { full });
        }
        merged
    }

    /// Sleeps for `delay`, or less if a poll is requested; then drains requests that piled up.
    async fn wait(&mut self, delay: Duration) -> Option<PollRequest> {
        let sleep = tokio::time::sleep(delay);
        let got = match self.requests.as_mut() {
            None => {
                sleep.await;
                None
            }
            Some(rx) => tokio::select! {
                _ = sleep => None,
                r = rx.recv() => r,
            },
        };
        // Requests that arrived meanwhile join this one (a full poll if any asked for it).
        match (got, self.drain_requests()) {
            (Some(a), Some(b)) => Some(PollRequest {
                full: a.full || b.full,
            }),
            (a, b) => a.or(b),
        }
    }

    fn delay_after(&mut self, report: &PollReport) -> Duration {
        let (frequency, backoff_max) = {
            let poll = &self.cfg().poll;
            (poll.cache_update_frequency, poll.failure_backoff_max)
        };
        match report.outcome {
            Outcome::Complete => {
                self.failure_backoff.reset();
                // The next poll is due one frequency after this one started, not after it ended.
                let due = report.started + chrono::Duration::seconds(frequency as i64);
                (due - self.clock.now()).to_std().unwrap_or(Duration::ZERO)
            }
            Outcome::Failed if report.credentials_rejected => Duration::from_secs(backoff_max),
            Outcome::Incomplete | Outcome::Failed => self.failure_backoff.next_delay(),
        }
    }

    /// Runs one poll to its end and applies it; returns what happened.
    pub async fn poll(&mut self, plan: PollPlan) -> PollReport {
        let inv = self.inventory;
        let (kind, reason, days_ago) = match plan {
            PollPlan::Full(r) => (PollKind::Full, Some(r.as_str()), None),
            PollPlan::Refresh { days_ago } => (PollKind::Refresh, None, Some(days_ago)),
        };
        let ready = self.cache.is_ready(inv);
        let phase = match (kind, ready) {
            (PollKind::Full, false) => Phase::Building,
            (PollKind::Full, true) => Phase::Resyncing,
            (PollKind::Refresh, _) => Phase::Refreshing,
        };
        self.cache.update_status(inv, |s| s.phase = phase);
        events::PollStarted {
            inventory: inv,
            kind: kind.as_str(),
            reason,
            days_ago,
        }
        .emit();

        let mut pass = PassState::new(self.clock.now());
        let error = self.fetch_all(&mut pass, days_ago).await.err();
        let mut churn = Churn {
            shifted: pass.shift.shifted(),
            ..Churn::default()
        };
        let mut sweep = false;
        if error.is_none() && pass.skipped_pages.is_empty() {
            let candidates = if kind == PollKind::Full {
                self.candidates(&pass)
            } else {
                Vec::new()
            };
            churn.candidates = candidates.len() as u64;
            if churn.shifted {
                events::ListingShifted {
                    inventory: inv,
                    kind: kind.as_str(),
                    total_moved: pass.shift.total_moved,
                    repeated: pass.shift.repeated,
                    candidates: churn.candidates,
                }
                .emit();
            }
            if churn.shifted || !candidates.is_empty() {
                churn.confirmations = 1;
                let confirming = self.confirm(pass, &candidates, kind, days_ago).await;
                pass = confirming.pass;
                sweep = confirming.sweep;
                churn.steady = Some(confirming.steady);
                churn.recovered = confirming.recovered;
                churn.deferred = confirming.deferred;
            } else {
                // A quiet listing: nothing cached went missing, nothing moved under it.
                sweep = kind == PollKind::Full;
            }
        }
        let outcome = match (&error, pass.skipped_pages.is_empty()) {
            (Some(_), _) => Outcome::Failed,
            (None, true) => Outcome::Complete,
            (None, false) => Outcome::Incomplete,
        };
        let sweep = sweep && outcome == Outcome::Complete;
        let removed = match outcome {
            Outcome::Failed => 0,
            _ if sweep => (self.cache.len(inv) as u64).saturating_sub(pass.existing_kept),
            _ => pass.existing_removed,
        };
        if sweep {
            // Removed by absence (the rest of `removed` are items the rules no longer keep).
            churn.confirmed_removed = removed.saturating_sub(pass.existing_removed);
        }
        let report = PollReport {
            kind,
            reason,
            days_ago,
            started: pass.started,
            finished: self.clock.now(),
            pages: pass.pages,
            skipped_pages: pass.skipped_pages.clone(),
            skipped: pass.skipped,
            received: pass.received,
            added: if outcome == Outcome::Failed {
                0
            } else {
                pass.added
            },
            updated: if outcome == Outcome::Failed {
                0
            } else {
                pass.updated
            },
            removed,
            churn,
            outcome,
            credentials_rejected: matches!(
                error,
                Some(PollError::Page {
                    error: PageError::Unauthorized { .. },
                    ..
                })
            ),
            error: error.as_ref().map(ToString::to_string).or_else(|| {
                (!pass.skipped_pages.is_empty())
                    .then(|| format!("skipped pages {:?} after HTTP 504", pass.skipped_pages))
            }),
        };
        self.apply(&report, pass, sweep);
        self.cache.poll_finished();
        events::PollFinished {
            inventory: inv,
            report: &report,
            items: self.cache.len(inv),
        }
        .emit();
        report
    }

    /// Fetches every page of the poll into `pass`. Pages that still answer 504 after their
    /// retries are skipped; any other persistent error ends the poll.
    async fn fetch_all(
        &self,
        pass: &mut PassState,
        days_ago: Option<u32>,
    ) -> Result<(), PollError> {
        let poll = &self.cfg().poll;
        let page_size = poll.records_per_page as usize;
        let mut page = poll.first_page;
        loop {
            if pass.pages + pass.skipped_pages.len() as u32 >= poll.max_pages {
                return Err(PollError::TooManyPages(poll.max_pages));
            }
            let req = PageRequest {
                inventory: self.inventory,
                page,
                days_ago,
            };
            match self.upstream.fetch_page_with_retries(req).await {
                Ok(p) => {
                    pass.pages += 1;
                    pass.shift.saw_total(p.total, pass.pages == 1);
                    let n = p.elements.len();
                    let tally = self.absorb(pass, p.elements);
                    if n < page_size {
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
    fn candidates(&self, pass: &PassState) -> Vec<Key> {
        self.cache.with_items(self.inventory, |old| {
            old.keys()
                .filter(|k| !pass.seen.contains(*k))
                .cloned()
                .collect()
        })
    }

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
    async fn confirm(
        &self,
        mut first: PassState,
        candidates: &[Key],
        kind: PollKind,
        days_ago: Option<u32>,
    ) -> Confirmation {
        let mut second = PassState::new(first.started);
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
            kind: kind.as_str(),
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

    /// Judges a page's elements and adds them to the poll.
    fn absorb(&self, pass: &mut PassState, elements: Vec<Value>) -> PageTally {
        pass.received += elements.len() as u64;
        let judged: Vec<(Verdict, Value)> = elements
            .into_iter()
            .map(|e| (self.rules.judge(&e), e))
            .collect();
        let keys = judged.iter().filter_map(|(v, _)| match v {
            Verdict::Keep { key, .. } | Verdict::NotKept { key, .. } => Some(key.as_str()),
            _ => None,
        });
        let mut cached = self.cache.get_many(self.inventory, keys).into_iter();
        let now = self.clock.now();
        let mut tally = PageTally { keyed: 0, fresh: 0 };
        let previous = std::mem::take(&mut pass.previous_page);
        for (verdict, element) in judged {
            let key = match &verdict {
                Verdict::NotObject => {
                    pass.skipped.not_object += 1;
                    continue;
                }
                Verdict::NoKey => {
                    pass.skipped.no_key += 1;
                    continue;
                }
                Verdict::Keep { key, .. } | Verdict::NotKept { key, .. } => key.clone(),
            };
            let old = cached.next().flatten();
            tally.keyed += 1;
            if !pass.seen.insert(key.clone()) {
                pass.skipped.duplicates += 1;
                if previous.get(&key) == Some(&element) {
                    // The previous page's item served again: the collection grew in front of
                    // the cursor and the pages moved on by one.
                    pass.shift.repeated += 1;
                }
                continue;
            }
            tally.fresh += 1;
            // Compact text; serde_json writes no whitespace.
            let raw = matches!(verdict, Verdict::Keep { .. }).then(|| {
                serde_json::to_string(&element)
                    .unwrap_or_default()
                    .into_boxed_str()
            });
            pass.previous_page.insert(key.clone(), element);
            let element = &pass.previous_page[&key];
            match verdict {
                Verdict::Keep { key } => {
                    let raw = raw.unwrap_or_default();
                    let item = match old {
                        Some(old) if old.raw == raw => {
                            old.touch(now);
                            pass.existing_kept += 1;
                            pass.unchanged.push(key.clone());
                            old
                        }
                        Some(old) => {
                            pass.existing_kept += 1;
                            pass.updated += 1;
                            let row = Row::extract(self.inventory, element);
                            let item =
                                Arc::new(Item::new(key.clone(), raw, row, old.first_seen, now));
                            pass.changed.push(item.clone());
                            item
                        }
                        None => {
                            pass.added += 1;
                            let row = Row::extract(self.inventory, element);
                            let item = Arc::new(Item::new(key.clone(), raw, row, now, now));
                            pass.changed.push(item.clone());
                            item
                        }
                    };
                    pass.upserts.insert(key, item);
                }
                Verdict::NotKept { key, .. } => {
                    pass.skipped.not_kept += 1;
                    if old.is_some() {
                        pass.existing_removed += 1;
                    }
                    pass.removals.push(key);
                }
                Verdict::NoKey | Verdict::NotObject => unreachable!("handled above"),
            }
        }
        tally
    }

    /// Applies the poll to the cache, records its status, and journals it. `sweep`: the poll
    /// is a complete full pass whose removals are confirmed, so it replaces the inventory.
    fn apply(&self, report: &PollReport, mut pass: PassState, sweep: bool) {
        let inv = self.inventory;
        if report.outcome == Outcome::Failed {
            pass.changed.clear();
            pass.unchanged.clear();
            pass.removals.clear();
        } else if sweep {
            if self.journal.is_some() {
                // The sweep: everything cached that this pass did not keep.
                pass.removals = self.cache.with_items(inv, |old| {
                    old.keys()
                        .filter(|k| !pass.upserts.contains_key(*k))
                        .cloned()
                        .collect()
                });
            }
            let upserts = std::mem::take(&mut pass.upserts);
            let old = self.cache.replace(inv, upserts);
            drop(old); // the previous map is freed here, after the write lock is released
        } else {
            let upserts = std::mem::take(&mut pass.upserts);
            self.cache.apply(inv, upserts.into_values(), &pass.removals);
        }
        let times = self.record(report);
        if let Some(journal) = &self.journal {
            let _ = journal.send(Applied {
                inventory: inv,
                report: report.clone(),
                times,
                upserts: pass.changed,
                unchanged: pass.unchanged,
                removed: pass.removals,
            });
        }
    }

    /// Updates the inventory's status (and readiness) after a poll; returns its window times.
    fn record(&self, report: &PollReport) -> SyncTimes {
        let inv = self.inventory;
        let complete = report.outcome == Outcome::Complete;
        let times = self.cache.update_status(inv, |s| {
            if complete {
                s.times.window_anchor = Some(report.started);
                if report.kind == PollKind::Full {
                    s.times.last_complete_full = Some(report.started);
                    s.unconfirmed = report.churn.deferred;
                    s.recheck = report.churn.steady == Some(false);
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
        if complete && report.kind == PollKind::Full && !self.cache.is_ready(inv) {
            self.cache.mark_ready(inv);
            events::InventoryReady {
                inventory: inv,
                items: self.cache.len(inv),
            }
            .emit();
        }
        times
    }
}

impl PassState {
    fn new(started: DateTime<Utc>) -> PassState {
        PassState {
            started,
            seen: HashSet::new(),
            upserts: ItemMap::new(),
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
            previous_page: HashMap::new(),
        }
    }

    /// Adds what a confirming listing saw and this one did not (the first occurrence wins).
    /// `cached` tells whether a key was in the cache before the poll.
    fn merge(&mut self, other: PassState, cached: impl Fn(&Key) -> bool) {
        let PassState {
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
        for item in &changed {
            if cached(&item.key) {
                self.updated += 1;
                self.existing_kept += 1;
            } else {
                self.added += 1;
            }
        }
        self.existing_kept += unchanged.len() as u64;
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

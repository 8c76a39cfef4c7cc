//! The poller: one per inventory, a loop of polls (full passes and refreshes) that applies each
//! whole poll to the cache, and schedules the next one.
//!
//! States, as reported in [`Phase`]: `Building` (first full pass) → `Ready` ⇄ `Refreshing` /
//! `Resyncing`, and `Failing` after a poll that failed or skipped pages, until one succeeds.
//!
//! Rules kept here:
//! - A poll is applied whole at its end: a complete full pass replaces the map (sweeping every
//!   key it did not see); a refresh or an incomplete full pass upserts and removes; a failed poll
//!   applies nothing. Readers never see half a poll, and a failure never empties the cache.
//! - Within one poll the first occurrence of a key wins.
//! - The refresh window is anchored at the start of the last poll that retrieved every page.

use crate::cache::{Cache, ItemMap};
use crate::clock::Clock;
use crate::config::Config;
use crate::events;
use crate::inventory::Inventory;
use crate::item::{Item, Key, Rules, Verdict};
use crate::row::Row;
use crate::status::{ErrorNote, Outcome, PassKind, PassReport, Phase, SkipCounts};
use crate::upstream::{PageError, PageRequest, Upstream};
use crate::window::{self, FullReason, PollPlan, SyncTimes};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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
    pub report: PassReport,
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
    failure_backoff: crate::backoff::Backoff,
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
        let failure_backoff = crate::backoff::Backoff::new(
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
            let plan = match requested.take() {
                Some(PollRequest { full: true }) => PollPlan::Full(FullReason::Requested),
                _ => window::plan(
                    &self.cache.status(self.inventory).times,
                    now,
                    &self.cfg().poll,
                ),
            };
            let report = self.poll(plan).await;
            // Requests that arrived while the poll ran have joined it; only a request for a full
            // pass made during a refresh still needs its own poll.
            let full_pending =
                self.drain_requests().is_some_and(|r| r.full) && report.kind != PassKind::Full;
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

    fn delay_after(&mut self, report: &PassReport) -> Duration {
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
    pub async fn poll(&mut self, plan: PollPlan) -> PassReport {
        let inv = self.inventory;
        let (kind, reason, days_ago) = match plan {
            PollPlan::Full(r) => (PassKind::Full, Some(r.as_str()), None),
            PollPlan::Refresh { days_ago } => (PassKind::Refresh, None, Some(days_ago)),
        };
        let ready = self.cache.is_ready(inv);
        let phase = match (kind, ready) {
            (PassKind::Full, false) => Phase::Building,
            (PassKind::Full, true) => Phase::Resyncing,
            (PassKind::Refresh, _) => Phase::Refreshing,
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
        let outcome = match (&error, pass.skipped_pages.is_empty()) {
            (Some(_), _) => Outcome::Failed,
            (None, true) => Outcome::Complete,
            (None, false) => Outcome::Incomplete,
        };
        let removed = match outcome {
            Outcome::Failed => 0,
            Outcome::Complete if kind == PassKind::Full => {
                (self.cache.len(inv) as u64).saturating_sub(pass.existing_kept)
            }
            _ => pass.existing_removed,
        };
        let report = PassReport {
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
        self.apply(&report, pass);
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
                continue;
            }
            tally.fresh += 1;
            match verdict {
                Verdict::Keep { key } => {
                    // Compact text; serde_json writes no whitespace.
                    let raw = serde_json::to_string(&element)
                        .unwrap_or_default()
                        .into_boxed_str();
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
                            let row = Row::extract(self.inventory, &element);
                            let item =
                                Arc::new(Item::new(key.clone(), raw, row, old.first_seen, now));
                            pass.changed.push(item.clone());
                            item
                        }
                        None => {
                            pass.added += 1;
                            let row = Row::extract(self.inventory, &element);
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

    /// Applies the poll to the cache, records its status, and journals it.
    fn apply(&self, report: &PassReport, mut pass: PassState) {
        let inv = self.inventory;
        match (report.kind, report.outcome) {
            (_, Outcome::Failed) => {
                pass.changed.clear();
                pass.unchanged.clear();
                pass.removals.clear();
            }
            (PassKind::Full, Outcome::Complete) => {
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
            }
            _ => {
                let upserts = std::mem::take(&mut pass.upserts);
                self.cache.apply(inv, upserts.into_values(), &pass.removals);
            }
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
    fn record(&self, report: &PassReport) -> SyncTimes {
        let inv = self.inventory;
        let complete = report.outcome == Outcome::Complete;
        let times = self.cache.update_status(inv, |s| {
            if complete {
                s.times.window_anchor = Some(report.started);
                if report.kind == PassKind::Full {
                    s.times.last_complete_full = Some(report.started);
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
                PassKind::Full => s.last_full = Some(report.clone()),
                PassKind::Refresh => s.last_refresh = Some(report.clone()),
            }
            s.times
        });
        if complete && report.kind == PassKind::Full && !self.cache.is_ready(inv) {
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

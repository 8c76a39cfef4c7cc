//! One poller: the loop of polls and its schedule, and one poll from start to end.

use super::apply::{self, Decided};
use super::confirm::{self, add_misses, clear_seen};
use super::context::Context;
use super::listing::Listing;
use super::window::{self, FullReason, PollPlan};
use super::{Journal, PollError, PollRequest};
use crate::cache::Cache;
use crate::config::Config;
use crate::model::inventory::Inventory;
use crate::model::item::Key;
use crate::model::status::{Churn, Outcome, Phase, PollKind, PollReport};
use crate::source::{PageError, Upstream};
use crate::telemetry::events;
use crate::time::clock::Clock;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct Poller {
    cx: Context,
    failure_backoff: crate::time::backoff::Backoff,
    requests: Option<mpsc::Receiver<PollRequest>>,
    /// The requests that joined the last poll: those queued before it was applied.
    joined: Option<PollRequest>,
}

impl Poller {
    /// The poller of `inventory`, with the poll settings and keep rules of `cfg`, asking
    /// `upstream` and applying to `cache`.
    pub fn new(
        inventory: Inventory,
        cfg: &Config,
        upstream: Upstream,
        cache: Cache,
        clock: Clock,
    ) -> Poller {
        let failure_backoff = crate::time::backoff::Backoff::new(
            Duration::from_secs(cfg.poll.failure_backoff_initial),
            Duration::from_secs(cfg.poll.failure_backoff_max),
        );
        Poller {
            cx: Context::new(inventory, cfg, upstream, cache, clock),
            failure_backoff,
            requests: None,
            joined: None,
        }
    }

    /// Sends every applied poll to `journal` (the durable store).
    pub fn with_journal(mut self, journal: Journal) -> Poller {
        self.cx.journal = Some(journal);
        self
    }

    /// Lets `requests` wake the poller for an immediate poll.
    pub(crate) fn with_requests(mut self, requests: mpsc::Receiver<PollRequest>) -> Poller {
        self.requests = Some(requests);
        self
    }

    /// Polls forever: the next poll as the window rules decide, then waits for its time or a
    /// request. Cancel by dropping the task; the cache only ever holds whole polls.
    pub async fn run(mut self) {
        let mut requested: Option<PollRequest> = None;
        loop {
            let now = self.cx.clock.now();
            let status = self.cx.cache.status(self.cx.inventory);
            let plan = match requested.take() {
                Some(PollRequest { full: true }) => PollPlan::Full(FullReason::Requested),
                // A first buildup is followed at once by a settling pass.
                _ if status.times.last_complete_full.is_some() && !status.settled => {
                    PollPlan::Full(FullReason::Settling)
                }
                _ => window::plan(&status.times, now, &self.cx.poll),
            };
            let report = self.poll(plan).await;
            // Requests that arrived while the poll ran (taken just before it was applied) have
            // joined it; only a request for a full pass made during a refresh still needs its
            // own poll. Requests made since then are still queued: `wait` takes them at once.
            let full_pending =
                self.joined.take().is_some_and(|r| r.full) && report.kind != PollKind::Full;
            let delay = if full_pending {
                Duration::ZERO
            } else {
                self.delay_after(&report)
            };
            let at = self.cx.clock.now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            self.cx
                .cache
                .update_status(self.cx.inventory, |s| s.next_poll = Some(at));
            events::PollScheduled {
                inventory: self.cx.inventory,
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
            merged = PollRequest::merge(merged, Some(r));
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
        PollRequest::merge(got, self.drain_requests())
    }

    fn delay_after(&mut self, report: &PollReport) -> Duration {
        let (frequency, backoff_max) = {
            let poll = &self.cx.poll;
            (poll.cache_update_frequency, poll.failure_backoff_max)
        };
        match report.outcome {
            Outcome::Complete if report.reason == Some(FullReason::Initial) => {
                // The settling pass follows the first buildup at once.
                self.failure_backoff.reset();
                Duration::ZERO
            }
            Outcome::Complete => {
                self.failure_backoff.reset();
                // The next poll is due one frequency after this one started, not after it ended.
                let due = report.started + chrono::Duration::seconds(frequency as i64);
                (due - self.cx.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            }
            Outcome::Failed if report.credentials_rejected => Duration::from_secs(backoff_max),
            Outcome::Incomplete | Outcome::Failed => self.failure_backoff.next_delay(),
        }
    }

    /// Runs one poll to its end and applies it; returns what happened.
    ///
    /// A full pass lists the collection; every cached item it did not return gets a miss (see
    /// [`confirm`](super::confirm)). If that left items with a first miss, or the listing saw
    /// the collection move, a confirming listing runs (never more than one per pass, none for
    /// the first buildup, which is followed by a settling pass instead). Items with two
    /// witnesses are removed; the others wait, and the next full pass settles them.
    pub async fn poll(&mut self, plan: PollPlan) -> PollReport {
        let inv = self.cx.inventory;
        let (kind, reason, days_ago) = match plan {
            PollPlan::Full(r) => (PollKind::Full, Some(r), None),
            PollPlan::Refresh { days_ago } => (PollKind::Refresh, None, Some(days_ago)),
        };
        let ready = self.cx.cache.is_ready(inv);
        let phase = match (kind, ready) {
            (PollKind::Full, false) => Phase::Building,
            (PollKind::Full, true) => Phase::Resyncing,
            (PollKind::Refresh, _) => Phase::Refreshing,
        };
        self.cx.cache.update_status(inv, |s| s.phase = phase);
        events::PollStarted {
            inventory: inv,
            kind,
            reason,
            days_ago,
        }
        .emit();

        let placed_by = self.cx.cache.status(inv).placed_by;
        let mut pass = Listing::new(self.cx.clock.now(), placed_by);
        let error = pass.fetch(&self.cx, days_ago).await.err();
        let mut churn = Churn {
            shifted: pass.shift.shifted(),
            ..Churn::default()
        };
        let mut marks = self.cx.cache.awaiting(inv);
        // Why the poll is incomplete; what went wrong in its confirming listing.
        let mut gaps = None;
        let mut confirm_gaps = None;
        let (mut skipped_pages, mut short_pages) =
            (pass.skipped_pages.clone(), pass.short_pages.clone());
        // The confirming listing's order, when it could witness absences.
        let mut witness = None;
        if error.is_none() {
            gaps = pass
                .gaps()
                .or_else(|| confirm::too_few(&self.cx, &pass, kind).map(|(why, _)| why));
            clear_seen(&mut marks, &pass);
        }
        if error.is_none() && gaps.is_none() {
            let mut confirming = churn.shifted;
            if kind == PollKind::Full {
                let missed = confirm::missed(&self.cx, &pass, None);
                churn.candidates = missed.len() as u64;
                let started = pass.started;
                add_misses(&mut marks, &missed, &mut pass, started);
                confirm::check_items(&self.cx, &mut pass, &mut marks, &missed, &mut churn).await;
                confirming |= missed
                    .iter()
                    .any(|i| marks.get(&i.key).is_some_and(|m| !m.removable()));
                // A first buildup is settled by a pass of its own.
                confirming &= !(reason == Some(FullReason::Initial) && missed.is_empty());
            }
            if churn.shifted {
                events::ListingShifted {
                    inventory: inv,
                    kind,
                    total_moved: pass.shift.total_moved,
                    repeated: pass.shift.repeated,
                    candidates: churn.candidates,
                }
                .emit();
            }
            if confirming {
                churn.confirmations = 1;
                let c = confirm::confirm(&self.cx, &mut pass, &mut marks, kind, days_ago).await;
                churn.recovered = c.recovered;
                skipped_pages.extend(&c.skipped_pages);
                short_pages.extend(&c.short_pages);
                confirm_gaps = c.gaps.map(|g| format!("confirming listing: {g}"));
                witness = c.witness;
                if kind == PollKind::Refresh {
                    // A refresh that moved and could not be confirmed may have skipped
                    // updates: its window is not closed.
                    gaps = confirm_gaps.take();
                }
            }
        }
        let outcome = match (&error, &gaps) {
            (Some(_), _) => Outcome::Failed,
            (None, None) => Outcome::Complete,
            (None, Some(_)) => Outcome::Incomplete,
        };
        // A full pass that could witness: items with two witnesses go.
        let witnessed = outcome == Outcome::Complete && kind == PollKind::Full;
        let absent: Vec<Key> = if witnessed {
            marks
                .iter()
                .filter(|(_, m)| m.removable())
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            Vec::new()
        };
        for key in &absent {
            marks.remove(key);
        }
        churn.confirmed_removed = absent.len() as u64;
        let report = PollReport {
            kind,
            reason,
            days_ago,
            started: pass.started,
            finished: self.cx.clock.now(),
            pages: pass.pages,
            skipped_pages,
            short_pages,
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
            removed: 0,
            churn,
            outcome,
            credentials_rejected: matches!(
                error,
                Some(PollError::Page {
                    error: PageError::Unauthorized { .. },
                    ..
                })
            ),
            error: error
                .as_ref()
                .map(ToString::to_string)
                .or(gaps)
                .or(confirm_gaps),
        };
        // The last full listing that ended without an error orders what it returned (pages it
        // skipped leave their items unplaced): it becomes the reference.
        let reference = (kind == PollKind::Full && outcome != Outcome::Failed)
            .then(|| witness.unwrap_or_else(|| std::mem::take(&mut pass.order)));
        // Requests made while this poll ran join it. They are taken before it is applied: once
        // applied, the inventory is no longer polling, and a request made from then on is
        // answered `queued` and must get a poll of its own.
        self.joined = self.drain_requests();
        // Applying a large poll (the view's merge, its carried orders) takes a while: on a
        // multi-threaded runtime the worker's other tasks (the API's requests) move elsewhere
        // meanwhile, instead of waiting behind it.
        let report = off_the_workers(|| {
            apply::apply(
                &self.cx,
                report,
                pass,
                Decided {
                    absent,
                    marks,
                    reference,
                },
            )
        });
        self.cx.cache.poll_finished();
        events::PollFinished {
            inventory: inv,
            report: &report,
            items: self.cx.cache.len(inv),
        }
        .emit();
        report
    }
}

/// Runs CPU-bound `f` here, having handed this worker's queued tasks to another thread first
/// when the runtime has more than one (`block_in_place`); on a single-threaded runtime there
/// is nowhere to hand them, and `f` simply runs.
fn off_the_workers<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

//! One poller: the loop of polls and its schedule, and one poll from start to end.

use super::listing::Listing;
use super::window::{self, FullReason, PollPlan};
use super::{Journal, PollError, PollRequest};
use crate::cache::Cache;
use crate::config::Config;
use crate::model::inventory::Inventory;
use crate::model::status::{Churn, Outcome, Phase, PollKind, PollReport};
use crate::source::{PageError, Upstream};
use crate::sync::rules::Rules;
use crate::telemetry::events;
use crate::time::clock::Clock;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct Poller {
    pub(super) inventory: Inventory,
    pub(super) upstream: Upstream,
    pub(super) cache: Cache,
    pub(super) clock: Clock,
    pub(super) rules: Rules,
    pub(super) failure_backoff: crate::time::backoff::Backoff,
    pub(super) requests: Option<mpsc::Receiver<PollRequest>>,
    pub(super) journal: Option<Journal>,
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

    pub(super) fn cfg(&self) -> &Config {
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
            PollPlan::Full(r) => (PollKind::Full, Some(r), None),
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
            kind,
            reason,
            days_ago,
        }
        .emit();

        let mut pass = Listing::new(self.clock.now());
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
                    kind,
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
        // Applying a large poll (the view's merge, its carried orders) takes a while: on a
        // multi-threaded runtime the worker's other tasks (the API's requests) move elsewhere
        // meanwhile, instead of waiting behind it.
        off_the_workers(|| self.apply(&report, pass, sweep));
        self.cache.poll_finished();
        events::PollFinished {
            inventory: inv,
            report: &report,
            items: self.cache.len(inv),
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

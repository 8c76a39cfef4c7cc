//! Applying a poll: the cache in one step, the inventory's status, the journal.

use super::Applied;
use super::listing::Listing;
use super::poller::Poller;
use crate::cache::PollPoint;
use crate::model::status::SyncTimes;
use crate::model::status::{ErrorNote, Outcome, Phase, PollKind, PollReport};
use crate::telemetry::events;

impl Poller {
    /// Applies the poll to the cache, records its status, and journals it. `sweep`: the poll
    /// is a complete full pass whose removals are confirmed, so it replaces the inventory.
    pub(super) fn apply(&self, report: &PollReport, mut pass: Listing, sweep: bool) {
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
        // The history first: whoever sees the status (or readiness) change sees the poll there.
        let items = self.cache.len(inv);
        self.cache.push_history(inv, PollPoint::new(report, items));
        let times = self.record(report);
        if let Some(journal) = &self.journal {
            let _ = journal.send(Applied {
                inventory: inv,
                report: report.clone(),
                times,
                upserts: pass.changed,
                unchanged: pass.unchanged,
                removed: pass.removals,
                swept: sweep && report.outcome != Outcome::Failed,
                items,
            });
        }
    }

    /// Updates the inventory's status (and readiness) after a poll; returns its window times.
    pub(super) fn record(&self, report: &PollReport) -> SyncTimes {
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

//! The periodic status summary in the log: one line per inventory every `poll.status_interval`.

use crate::cache::Cache;
use crate::model::inventory::Inventory;
use crate::telemetry::events::StatusSummary;
use std::time::Duration;

/// Logs one summary per inventory every `interval` until cancelled.
pub(crate) async fn log_periodically(cache: Cache, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; the first summary comes one interval in
    loop {
        ticker.tick().await;
        log_once(&cache);
    }
}

pub(crate) fn log_once(cache: &Cache) {
    for inv in Inventory::ALL {
        let s = cache.status(inv);
        StatusSummary {
            inventory: inv,
            phase: s.phase,
            ready: cache.is_ready(inv),
            items: cache.len(inv),
            last_success: s.last_success,
            last_error: s.last_error.as_ref().map(|e| e.message.as_str()),
            last_error_at: s.last_error.as_ref().map(|e| e.at),
            next_poll: s.next_poll,
        }
        .emit();
    }
}

//! The pollers: one per inventory, a loop of polls (full passes and refreshes), each applied
//! whole to the cache.
//!
//! States, as reported in [`Phase`](crate::model::status::Phase): `Building` (first full pass) →
//! `Ready` ⇄ `Refreshing` / `Resyncing`, and `Failing` after a poll that failed or skipped pages,
//! until one succeeds.
//!
//! Rules kept here:
//! - A poll is applied whole at its end: a complete full pass whose removals are confirmed
//!   replaces the map; a refresh, an incomplete full pass or one whose candidates could not be
//!   confirmed upserts and removes only what the rules exclude; a failed poll applies nothing.
//!   Readers never see half a poll, and a failure never empties the cache.
//! - A sweep never removes an item it has not confirmed gone: cached items a full pass did not
//!   see are candidates, and only those missing from a steady confirming listing are removed
//!   (see [`Churn`](crate::model::status::Churn)).
//! - Within one listing the first occurrence of a key wins.
//! - The refresh window is anchored at the start of the last poll that retrieved every page.
//!
//! Files: `poller` (the loop, scheduling, one poll start to end), `listing` (pages of one listing,
//! requested ahead and taken in page order, and what they add up to), `confirm` (the confirming listing), `apply` (the cache, the status,
//! the journal), `journal` (what the store receives), `rules`, `window`, `daemon`.

mod apply;
mod confirm;
pub mod daemon;
mod journal;
mod listing;
mod poller;
pub mod rules;
pub mod window;

pub use journal::{Applied, Journal};
pub use listing::PollError;
pub use poller::Poller;

/// An on-demand poll (from the read API): `full` forces a full pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollRequest {
    pub full: bool,
}

impl PollRequest {
    /// Two requests as one: a full pass if either asked for one.
    pub fn merge(a: Option<PollRequest>, b: Option<PollRequest>) -> Option<PollRequest> {
        match (a, b) {
            (Some(a), Some(b)) => Some(PollRequest {
                full: a.full || b.full,
            }),
            (a, b) => a.or(b),
        }
    }
}

//! The pollers: one per inventory, a loop of polls (full passes and refreshes), each applied
//! whole to the cache.
//!
//! States, as reported in [`Phase`](crate::model::status::Phase): `Building` (first full pass) →
//! `Ready` ⇄ `Refreshing` / `Resyncing`, and `Failing` after a poll that failed or skipped pages,
//! until one succeeds.
//!
//! Rules kept here (docs/ARCHITECTURE.md, "Exact under churn"):
//! - A poll is applied whole at its end: a complete full pass replaces the map (the items it
//!   returned, and the cached ones it did not that await a second witness); a refresh or an
//!   incomplete pass upserts and removes only what the rules exclude; a failed poll applies
//!   nothing. Readers never see half a poll, and a failure never empties the cache.
//! - Removal by absence needs two witnesses ([`Mark`](crate::model::status::Mark)): one
//!   listing's word is never enough, whatever its pages did.
//! - A listing ends at a short page only if the total agrees, else at an empty page after a
//!   short one; a page cut short makes it incomplete.
//! - Within one listing the first occurrence of a key wins; between the two listings of a poll,
//!   the later one.
//! - The refresh window is anchored at the start of the last poll that retrieved every page.
//!
//! Files: `poller` (the loop, scheduling, one poll start to end), `listing` (pages of one
//! listing, requested ahead and taken in page order, and what they add up to), `confirm`
//! (misses and witnesses, the single-item checks, the confirming listing), `apply` (the cache,
//! the marks, the places, the status, the journal), `journal` (what the store receives),
//! `rules`, `window`, `daemon`.

mod apply;
mod confirm;
mod context;
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
pub(crate) struct PollRequest {
    pub full: bool,
}

impl PollRequest {
    /// Two requests as one: a full pass if either asked for one.
    pub(crate) fn merge(a: Option<PollRequest>, b: Option<PollRequest>) -> Option<PollRequest> {
        match (a, b) {
            (Some(a), Some(b)) => Some(PollRequest {
                full: a.full || b.full,
            }),
            (a, b) => a.or(b),
        }
    }
}

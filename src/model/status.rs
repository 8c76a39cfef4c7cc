//! What each poller reports about itself: phases, poll reports, the live sync status.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where an inventory's poller is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Not started yet.
    #[default]
    Starting,
    /// Running the first full pass: not ready.
    Building,
    /// Idle, the last poll complete.
    Ready,
    /// Running a refresh poll.
    Refreshing,
    /// Running a full pass while already ready (periodic resync or too wide a window).
    Resyncing,
    /// Idle, the last poll failed or skipped pages; waiting to try again.
    Failing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Building => "building",
            Phase::Ready => "ready",
            Phase::Refreshing => "refreshing",
            Phase::Resyncing => "resyncing",
            Phase::Failing => "failing",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PollKind {
    Full,
    Refresh,
}

impl PollKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Full => "full",
            PollKind::Refresh => "refresh",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every page retrieved; applied (and, for a full pass, items with two witnesses removed).
    Complete,
    /// Some pages were skipped after 504 or cut short, or the listing fell short of its total
    /// or of the cache: what arrived is applied, nothing is removed by absence.
    Incomplete,
    /// Ended by an error; nothing applied.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Incomplete => "incomplete",
            Outcome::Failed => "failed",
        }
    }
}

/// Why a full pass ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FullReason {
    /// No complete pass yet: the initial buildup.
    Initial,
    /// `full_resync_interval` has passed since the last complete full pass.
    Resync,
    /// The refresh window would exceed `max_refresh_window_days`.
    WindowTooWide,
    /// Asked for explicitly.
    Requested,
    /// Right after the first buildup: a second listing that finds what the first one missed
    /// while the collection moved under it (an offset listing skips items then), once.
    Settling,
}

impl FullReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FullReason::Initial => "initial",
            FullReason::Resync => "resync",
            FullReason::WindowTooWide => "window_too_wide",
            FullReason::Requested => "requested",
            FullReason::Settling => "settling",
        }
    }
}

/// Page elements that were not cached, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SkipCounts {
    /// Missing or empty key.
    pub no_key: u64,
    /// Element not a JSON object.
    pub not_object: u64,
    /// Arrays and objects nested deeper than [`crate::model::json::MAX_DEPTH`]: a new version
    /// is not taken (a cached item keeps the version it had).
    pub too_deep: u64,
    /// A key already seen earlier in the same poll (the first occurrence wins).
    pub duplicates: u64,
    /// Excluded by the status or type rule (and removed if cached).
    pub not_kept: u64,
}

/// One poll, start to end, and its one JSON shape: the store keeps it (`sync_state.last_report`),
/// the mirror publishes it (the poll message), `sync-once` prints it. Times are RFC 3339 with
/// milliseconds; the churn fields sit beside the others. (The read API's status writes its own
/// type, `serve::api::body::Report`, as its public contract.)
#[derive(Clone, Debug, Serialize)]
pub struct PollReport {
    pub kind: PollKind,
    /// Why a full pass ran (initial, settling, resync, window_too_wide, requested).
    pub reason: Option<FullReason>,
    pub days_ago: Option<u32>,
    #[serde(serialize_with = "millis")]
    pub started: DateTime<Utc>,
    #[serde(serialize_with = "millis")]
    pub finished: DateTime<Utc>,
    pub pages: u32,
    /// Pages that answered 504 after their retries and were skipped (by either listing).
    pub skipped_pages: Vec<u32>,
    /// Pages served short although the listing went on after them (a gateway that cut a page),
    /// by either listing.
    pub short_pages: Vec<u32>,
    pub skipped: SkipCounts,
    /// Elements received, all causes included.
    pub received: u64,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    /// How the pass dealt with an upstream that changed while it listed (see [`Churn`]).
    #[serde(flatten)]
    pub churn: Churn,
    pub outcome: Outcome,
    /// The upstream answered 401/403: retried only after `poll.failure_backoff_max`.
    pub credentials_rejected: bool,
    pub error: Option<String>,
}

/// Churn seen by a full pass, and how its removals were witnessed.
///
/// A full pass never removes an item because one listing did not return it: offset paging
/// over a collection that changes skips items when earlier ones are deleted. A cached item a
/// complete listing did not return gets a *miss* (a [`Mark`]); it is removed once it has two
/// witnesses (see [`Mark::removable`]), and any listing or refresh that returns it clears its
/// mark. A second, confirming listing runs (at most one per pass) when the first left items
/// with a first miss or saw the collection move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Churn {
    /// The first listing saw the collection change under it: its total moved between pages, or
    /// a page repeated the previous page's items (an insert in front of the cursor).
    pub shifted: bool,
    /// Cached items that the first listing did not return.
    pub candidates: u64,
    /// Confirming listings run (0 or 1).
    pub confirmations: u32,
    /// Items the confirming listing returned that the first listing had missed.
    pub recovered: u64,
    /// Cached items removed by absence: each had its second witness in this pass.
    pub confirmed_removed: u64,
    /// Items left awaiting another witness after this pass (missed once, or missed at a page
    /// boundary only): the next full pass settles them.
    pub deferred: u64,
    /// Items the upstream's single-item endpoint answered 404 for (gone: a second witness).
    pub checked_gone: u64,
    /// Items the single-item endpoint answered for (live: kept, and their mark cleared).
    pub checked_live: u64,
}

/// A cached item that one or more complete listings did not return, awaiting a second witness
/// before it is removed. Persisted (store, mirror) so a restart or a takeover forgets nothing;
/// losing one is always safe: it only delays a removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// When the first of its misses was seen (the start of that poll).
    pub since: DateTime<Utc>,
    /// Complete listings that did not return it since it was last seen.
    pub misses: u8,
    /// One of those misses was certain: the listing returned the items on both sides of it
    /// (as the listing before placed them) on one page, so it was not skipped at a page
    /// boundary.
    pub certain: bool,
    /// The single-item endpoint answered 404 for it.
    pub gone: bool,
}

impl Mark {
    pub fn new(since: DateTime<Utc>) -> Mark {
        Mark {
            since,
            misses: 0,
            certain: false,
            gone: false,
        }
    }

    /// Two independent witnesses: a miss and a 404; or two misses, one of them certain; or
    /// three misses (a live item is skipped only at a page boundary, and only when the
    /// collection shrank in front of the cursor at that moment: three times is not chance).
    pub(crate) fn removable(&self) -> bool {
        (self.gone && self.misses >= 1) || (self.certain && self.misses >= 2) || self.misses >= 3
    }
}

fn millis<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::format::millis(*t))
}

#[derive(Clone, Debug)]
pub struct ErrorNote {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// The live status of one inventory, written by its poller, read by anyone.
#[derive(Clone, Debug, Default)]
pub struct SyncStatus {
    pub phase: Phase,
    pub last_full: Option<PollReport>,
    pub last_refresh: Option<PollReport>,
    pub times: SyncTimes,
    /// End of the last complete poll.
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<ErrorNote>,
    pub next_poll: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    /// Items awaiting a second witness before they are removed (see [`Mark`]).
    pub unconfirmed: u64,
    /// When the oldest of them was first missed.
    pub(crate) unconfirmed_since: Option<DateTime<Utc>>,
    /// The first buildup's settling listing has run (or the inventory was loaded warm).
    pub settled: bool,
    /// The generation of the listing that last placed the inventory's items (0: none since
    /// the process started; see `Item::place`).
    pub placed_by: u32,
}

impl SyncStatus {
    /// Whether the copy has caught up with every deletion it knows of: settled, and no item
    /// awaiting a second witness.
    pub fn converged(&self) -> bool {
        self.settled && self.unconfirmed == 0
    }
}

/// The timestamps the decision depends on; kept per inventory by the poller (and persisted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncTimes {
    /// Start of the last full pass that retrieved every page.
    pub last_complete_full: Option<DateTime<Utc>>,
    /// Start of the last poll (full or refresh) that retrieved every page: everything updated
    /// before this instant is in the cache.
    pub window_anchor: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_needs_two_witnesses() {
        let since = DateTime::<Utc>::UNIX_EPOCH;
        let mark = |misses, certain, gone| Mark {
            since,
            misses,
            certain,
            gone,
        };
        // One listing alone never removes, whatever kind of miss.
        assert!(!mark(1, false, false).removable());
        assert!(!mark(1, true, false).removable());
        // Two misses at page boundaries could be two skips.
        assert!(!mark(2, false, false).removable());
        assert!(mark(2, true, false).removable());
        assert!(mark(3, false, false).removable());
        // A 404 is the second witness of a miss.
        assert!(mark(1, false, true).removable());
        assert!(!mark(0, false, true).removable());
    }
}

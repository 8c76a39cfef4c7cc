//! What each poller reports about itself: phases, poll reports, the live sync status.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where an inventory's poller is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every page retrieved; applied (and, for a full pass, swept).
    Complete,
    /// Some pages answered 504 after their retries and were skipped; the rest applied, no sweep.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
    /// The last full pass could not confirm its removals (its confirming listing shifted too).
    Unconfirmed,
}

impl FullReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FullReason::Initial => "initial",
            FullReason::Resync => "resync",
            FullReason::WindowTooWide => "window_too_wide",
            FullReason::Requested => "requested",
            FullReason::Unconfirmed => "unconfirmed",
        }
    }
}

/// Page elements that were not cached, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// Missing or empty key.
    pub no_key: u64,
    /// Element not a JSON object.
    pub not_object: u64,
    /// A key already seen earlier in the same poll (the first occurrence wins).
    pub duplicates: u64,
    /// Excluded by the status or type rule (and removed if cached).
    pub not_kept: u64,
}

/// One poll, start to end. (Internal: the API, `sync-once` and the store each write their own
/// JSON shape of it.)
#[derive(Clone, Debug)]
pub struct PollReport {
    pub kind: PollKind,
    /// Why a full pass ran (initial, resync, window_too_wide, requested).
    pub reason: Option<FullReason>,
    pub days_ago: Option<u32>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub pages: u32,
    pub skipped_pages: Vec<u32>,
    pub skipped: SkipCounts,
    /// Elements received, all causes included.
    pub received: u64,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    /// How the pass dealt with an upstream that changed while it listed (see [`Churn`]).
    pub churn: Churn,
    pub outcome: Outcome,
    /// The upstream answered 401/403: retried only after `poll.failure_backoff_max`.
    pub credentials_rejected: bool,
    pub error: Option<String>,
}

/// Churn seen by a poll, and what the confirming listing made of it.
///
/// A full pass never removes an item just because its listing did not return it: offset paging
/// over a collection that changes skips items when earlier ones are deleted. Cached items the
/// listing did not see are `candidates`; a second, confirming listing runs (at most one per
/// poll) when there are candidates or the listing itself looked shifted, and only candidates
/// missing from a steady confirming listing are removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Churn {
    /// The first listing saw the collection change under it: its total moved between pages, or
    /// a page repeated the previous page's last items (an insert in front of the cursor).
    pub shifted: bool,
    /// Cached items that the first listing did not return.
    pub candidates: u64,
    /// Confirming listings run (0 or 1).
    pub confirmations: u32,
    /// Whether the confirming listing was steady (nothing moved under it either); `null` when
    /// none ran. A full pass whose confirmation was not steady is followed by another full pass.
    pub steady: Option<bool>,
    /// Items the confirming listing returned that the first listing had missed.
    pub recovered: u64,
    /// Cached items removed because a steady confirming listing did not return them either.
    pub confirmed_removed: u64,
    /// Items kept without confirmation because the confirming listing shifted too (or
    /// failed): candidates neither listing returned, and items the first listing returned but
    /// the confirming one did not. The next poll is a full pass that checks them again.
    pub deferred: u64,
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
    /// Items the last full pass kept without confirming them (its `deferred`).
    pub unconfirmed: u64,
    /// The last full pass's confirming listing was not steady: the next poll is a full pass.
    pub recheck: bool,
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

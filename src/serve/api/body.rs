//! The JSON the API answers `/api/v1/status` with: its own types, written from docs/api.md's
//! contract, so that a change to the engine's internal status structs cannot change the API by
//! accident (a new internal field appears here only when it is added here).

use crate::mirror::lease::HaStatus;
use crate::model::status::{FullReason, Outcome, Phase, PollKind, PollReport, SyncStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub version: &'static str,
    pub started: String,
    pub uptime_seconds: u64,
    pub ready: bool,
    pub inventories: Inventories,
    pub ha: Ha,
}

/// Leader and standby (`ha.enabled`): this instance's role, who leads, until when.
#[derive(Serialize, ToSchema)]
pub struct Ha {
    /// `leader`, `standby` or `off`.
    pub role: &'static str,
    pub leader: Option<String>,
    pub lease_expires: Option<DateTime<Utc>>,
}

impl Ha {
    pub fn new(s: &HaStatus) -> Ha {
        Ha {
            role: s.role.as_str(),
            leader: s.leader.clone(),
            lease_expires: s.lease_expires,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Inventories {
    pub services: InventoryStatus,
    pub carriers: InventoryStatus,
    pub resources: InventoryStatus,
}

#[derive(Serialize, ToSchema)]
pub struct InventoryStatus {
    pub ready: bool,
    pub items: usize,
    pub phase: Phase,
    pub last_full: Option<Report>,
    pub last_refresh: Option<Report>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<ErrorNote>,
    pub next_poll: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    /// Items a complete listing did not return, awaiting a second witness.
    pub unconfirmed: u64,
    /// When the oldest of them was first missed.
    pub(crate) unconfirmed_since: Option<DateTime<Utc>>,
    /// The first buildup's settling pass has run.
    pub settled: bool,
    /// Settled, and no item awaiting a second witness: every deletion seen has reached the copy.
    pub converged: bool,
}

impl InventoryStatus {
    pub fn new(status: SyncStatus, ready: bool, items: usize) -> InventoryStatus {
        let converged = status.converged();
        InventoryStatus {
            ready,
            items,
            phase: status.phase,
            last_full: status.last_full.as_ref().map(Report::from),
            last_refresh: status.last_refresh.as_ref().map(Report::from),
            last_success: status.last_success,
            last_error: status.last_error.map(|e| ErrorNote {
                at: e.at,
                message: e.message,
            }),
            next_poll: status.next_poll,
            consecutive_failures: status.consecutive_failures,
            unconfirmed: status.unconfirmed,
            unconfirmed_since: status.unconfirmed_since,
            settled: status.settled,
            converged,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ErrorNote {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// One poll, as docs/api.md ("Status") describes it.
#[derive(Serialize, ToSchema)]
pub struct Report {
    pub kind: PollKind,
    pub reason: Option<FullReason>,
    pub days_ago: Option<u32>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub pages: u32,
    pub skipped_pages: Vec<u32>,
    pub short_pages: Vec<u32>,
    pub skipped: Skipped,
    pub received: u64,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    pub shifted: bool,
    pub candidates: u64,
    pub confirmations: u32,
    pub recovered: u64,
    pub confirmed_removed: u64,
    pub deferred: u64,
    pub checked_gone: u64,
    pub checked_live: u64,
    pub outcome: Outcome,
    pub credentials_rejected: bool,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Skipped {
    pub no_key: u64,
    pub not_object: u64,
    pub too_deep: u64,
    pub duplicates: u64,
    pub not_kept: u64,
}

impl From<&PollReport> for Report {
    fn from(r: &PollReport) -> Report {
        Report {
            kind: r.kind,
            reason: r.reason,
            days_ago: r.days_ago,
            started: r.started,
            finished: r.finished,
            pages: r.pages,
            skipped_pages: r.skipped_pages.clone(),
            short_pages: r.short_pages.clone(),
            skipped: Skipped {
                no_key: r.skipped.no_key,
                not_object: r.skipped.not_object,
                too_deep: r.skipped.too_deep,
                duplicates: r.skipped.duplicates,
                not_kept: r.skipped.not_kept,
            },
            received: r.received,
            added: r.added,
            updated: r.updated,
            removed: r.removed,
            shifted: r.churn.shifted,
            candidates: r.churn.candidates,
            confirmations: r.churn.confirmations,
            recovered: r.churn.recovered,
            confirmed_removed: r.churn.confirmed_removed,
            deferred: r.churn.deferred,
            checked_gone: r.churn.checked_gone,
            checked_live: r.churn.checked_live,
            outcome: r.outcome,
            credentials_rejected: r.credentials_rejected,
            error: r.error.clone(),
        }
    }
}

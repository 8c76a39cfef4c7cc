//! Every event an operator may care about, as one named type that emits the log line (and, where
//! there is one, the metric) so that the two never drift apart.
//!
//! Field names are stable: `inventory`, `page`, `items`, `bytes`, `duration_ms`, `attempt`,
//! `delay_ms`, `error`, `kind`, `reason`, `days_ago`, `phase`, ... Errors are logged with their
//! Display form, which never contains a credential.

use crate::model::inventory::{Api, Inventory};
use crate::model::status::{FullReason, Outcome, Phase, PollKind, PollReport};
use crate::telemetry::metrics::{self, PageOutcome};
use crate::time;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::{debug, error, info, trace, warn};

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time::format::seconds).unwrap_or_default()
}

/// A page taken into its listing, in page order (pages requested past the end of a listing and
/// discarded are not; `UpstreamRequest` counts every attempt).
pub(crate) struct PageFetched {
    pub inventory: Inventory,
    pub page: u32,
    pub items: usize,
    pub bytes: usize,
    /// The request that got it (its last attempt).
    pub duration: Duration,
}

impl PageFetched {
    pub(crate) fn emit(&self) {
        metrics::global().page(self.inventory, PageOutcome::Fetched);
        debug!(
            message = "Page fetched.",
            inventory = %self.inventory,
            page = self.page,
            items = self.items,
            bytes = self.bytes,
            duration_ms = ms(self.duration),
        );
    }
}

pub(crate) struct PageRetry<'a> {
    pub inventory: Inventory,
    pub page: u32,
    pub attempt: u32,
    pub delay: Duration,
    pub error: &'a dyn std::fmt::Display,
}

impl PageRetry<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().retry(self.inventory);
        warn!(
            message = "Page failed; retrying.",
            inventory = %self.inventory,
            page = self.page,
            attempt = self.attempt,
            delay_ms = ms(self.delay),
            error = %self.error,
        );
    }
}

pub(crate) struct PageSkipped<'a> {
    pub inventory: Inventory,
    pub page: u32,
    pub attempts: u32,
    pub error: &'a dyn std::fmt::Display,
}

impl PageSkipped<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().page(self.inventory, PageOutcome::Skipped);
        warn!(
            message = "Page skipped after its retries; the pass goes on but will be incomplete.",
            inventory = %self.inventory,
            page = self.page,
            attempts = self.attempts,
            error = %self.error,
        );
    }
}

/// One attempt at one page, whatever its result (the request-duration histogram).
pub(crate) struct UpstreamRequest<'a> {
    pub inventory: Inventory,
    pub page: u32,
    /// The HTTP status, or `timeout`, `connect`, `body` when there is none or it was unusable.
    pub status: &'a str,
    pub duration: Duration,
}

impl UpstreamRequest<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().upstream_request(self.inventory, self.status, self.duration);
        trace!(
            message = "Upstream request.",
            inventory = %self.inventory,
            page = self.page,
            status = self.status,
            duration_ms = ms(self.duration),
        );
    }
}

/// One request answered by the daemon's HTTP server: the access log (debug level) and the
/// request metrics.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a str,
    /// The route as the router knows it (`/api/v1/{inventory}`), or `unmatched`.
    pub route: &'a str,
    /// The path and query as asked.
    pub target: &'a str,
    pub status: u16,
    pub duration: Duration,
}

impl ApiRequest<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().api_request(self.route, self.method, self.status, self.duration);
        debug!(
            message = "API request.",
            method = self.method,
            route = self.route,
            target = self.target,
            status = self.status,
            duration_ms = ms(self.duration),
        );
    }
}

/// A listing ended at a short page while later pages had been requested ahead: they are not
/// part of the listing (not counted, not absorbed); those still in flight are abandoned.
pub(crate) struct PagesDiscarded<'a> {
    pub inventory: Inventory,
    /// The short page that ended the listing.
    pub(crate) last_page: u32,
    /// Pages after it that had already arrived.
    pub arrived: &'a [u32],
    /// Pages after it still in flight, abandoned.
    pub in_flight: usize,
}

impl PagesDiscarded<'_> {
    pub(crate) fn emit(&self) {
        debug!(
            message = "Pages requested past the end of the listing discarded.",
            inventory = %self.inventory,
            last_page = self.last_page,
            arrived = ?self.arrived,
            in_flight = self.in_flight,
        );
    }
}

/// A page request to `api` started or ended: how many are in flight to it now.
pub(crate) struct UpstreamInFlight {
    pub api: Api,
    pub in_flight: u32,
}

impl UpstreamInFlight {
    pub(crate) fn emit(&self) {
        metrics::global().in_flight(self.api, self.in_flight);
        trace!(
            message = "Upstream requests in flight.",
            api = %self.api,
            in_flight = self.in_flight,
        );
    }
}

/// Why the limit of requests in flight to an API is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitCause {
    /// The client started: `http.max_in_flight_per_api`.
    Start,
    /// The upstream throttled or timed out (429, 503, 504, a timeout): halved.
    Throttled,
    /// A run of clean pages: one more.
    Recovered,
}

/// The adaptive limit of page requests in flight to one API changed.
pub(crate) struct UpstreamLimit<'a> {
    pub api: Api,
    pub limit: u32,
    pub previous: u32,
    pub(crate) cause: LimitCause,
    /// The answer that made it shrink (`429`, `503`, `504`, `timeout`); empty otherwise.
    pub status: &'a str,
}

impl UpstreamLimit<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().in_flight_limit(self.api, self.limit);
        match self.cause {
            LimitCause::Start => {}
            LimitCause::Throttled => info!(
                message = "Upstream throttling; fewer requests in flight to this API.",
                api = %self.api,
                limit = self.limit,
                previous = self.previous,
                status = self.status,
            ),
            LimitCause::Recovered => debug!(
                message = "Upstream keeping up; one more request in flight to this API.",
                api = %self.api,
                limit = self.limit,
                previous = self.previous,
            ),
        }
    }
}

/// The upstream answered with a `Retry-After`: no new request goes to `api` for `delay`.
pub(crate) struct UpstreamPaused {
    pub api: Api,
    pub delay: Duration,
}

impl UpstreamPaused {
    pub(crate) fn emit(&self) {
        info!(
            message = "Upstream asked to wait; new requests to this API paused.",
            api = %self.api,
            delay_ms = ms(self.delay),
        );
    }
}

/// A page that failed its retries with an error that ends the poll (logged with the poll's end).
pub(crate) struct PageFailed<'a> {
    pub inventory: Inventory,
    pub page: u32,
    pub attempts: u32,
    pub error: &'a dyn std::fmt::Display,
}

impl PageFailed<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().page(self.inventory, PageOutcome::Failed);
        debug!(
            message = "Page failed; the poll ends.",
            inventory = %self.inventory,
            page = self.page,
            attempts = self.attempts,
            error = %self.error,
        );
    }
}

/// The read API is listening.
pub(crate) struct ApiListening {
    pub addr: std::net::SocketAddr,
    pub(crate) authenticated: bool,
}

impl ApiListening {
    pub(crate) fn emit(&self) {
        info!(
            message = "API listening.",
            addr = %self.addr,
            authenticated = self.authenticated,
        );
    }
}

pub(crate) struct CredentialsRejected {
    pub inventory: Inventory,
    pub api: Api,
    pub status: u16,
}

impl CredentialsRejected {
    pub(crate) fn emit(&self) {
        error!(
            message = "Upstream rejected the credentials; check them.",
            inventory = %self.inventory,
            api = %self.api,
            status = self.status,
            hint = %format!(
                "check {api}.username and {api}.password (or {api}.password_file)",
                api = self.api
            ),
        );
    }
}

pub(crate) struct PollStarted {
    pub inventory: Inventory,
    pub kind: PollKind,
    pub reason: Option<FullReason>,
    pub days_ago: Option<u32>,
}

impl PollStarted {
    pub(crate) fn emit(&self) {
        info!(
            message = "Poll started.",
            inventory = %self.inventory,
            kind = self.kind.as_str(),
            reason = self.reason.map(FullReason::as_str).unwrap_or(""),
            days_ago = self.days_ago,
        );
    }
}

pub(crate) struct PollFinished<'a> {
    pub inventory: Inventory,
    pub report: &'a PollReport,
    pub items: usize,
}

impl PollFinished<'_> {
    pub(crate) fn emit(&self) {
        let r = self.report;
        metrics::global().poll(self.inventory, r);
        let duration_ms = (r.finished - r.started).num_milliseconds().max(0);
        macro_rules! finished {
            ($level:ident, $message:literal) => {
                $level!(
                    message = $message,
                    inventory = %self.inventory,
                    kind = r.kind.as_str(),
                    outcome = r.outcome.as_str(),
                    items = self.items,
                    pages = r.pages,
                    skipped_pages = ?r.skipped_pages,
                    added = r.added,
                    updated = r.updated,
                    removed = r.removed,
                    candidates = r.churn.candidates,
                    recovered = r.churn.recovered,
                    confirmed_removed = r.churn.confirmed_removed,
                    deferred = r.churn.deferred,
                    skipped_items = r.skipped.no_key + r.skipped.not_object + r.skipped.too_deep,
                    duplicates = r.skipped.duplicates,
                    not_kept = r.skipped.not_kept,
                    duration_ms,
                    error = r.error.as_deref().unwrap_or(""),
                )
            };
        }
        match r.outcome {
            Outcome::Complete => finished!(info, "Poll complete."),
            Outcome::Incomplete => finished!(
                warn,
                "Poll incomplete: pages were skipped or cut short; nothing was removed by absence."
            ),
            Outcome::Failed => finished!(error, "Poll failed; the cache keeps what it had."),
        }
    }
}

pub(crate) struct PollScheduled {
    pub inventory: Inventory,
    pub delay: Duration,
    pub at: DateTime<Utc>,
}

impl PollScheduled {
    pub(crate) fn emit(&self) {
        debug!(
            message = "Next poll scheduled.",
            inventory = %self.inventory,
            delay_ms = ms(self.delay),
            at = %opt_time(Some(self.at)),
        );
    }
}

/// A listing saw the collection change under it (its total moved, or a page repeated the
/// previous page's items): it may have missed items, so a confirming listing follows.
pub(crate) struct ListingShifted {
    pub inventory: Inventory,
    pub kind: PollKind,
    pub(crate) total_moved: bool,
    pub(crate) repeated: u64,
    pub candidates: u64,
}

impl ListingShifted {
    pub(crate) fn emit(&self) {
        warn!(
            message = "Listing shifted during the pass.",
            inventory = %self.inventory,
            kind = self.kind.as_str(),
            total_moved = self.total_moved,
            repeated = self.repeated,
            candidates = self.candidates,
        );
    }
}

/// The confirming listing of a poll ended: what it recovered, and how many items still await
/// a second witness.
pub(crate) struct ListingConfirmed<'a> {
    pub inventory: Inventory,
    pub kind: PollKind,
    /// Why it could not witness absences (its error, skipped or cut pages), if it could not.
    pub error: Option<&'a str>,
    pub skipped_pages: usize,
    pub recovered: u64,
    /// Items awaiting a second witness once it was counted.
    pub awaiting: u64,
}

impl ListingConfirmed<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().confirmation(self.inventory, self.error.is_none());
        macro_rules! confirmed {
            ($level:ident, $message:literal) => {
                $level!(
                    message = $message,
                    inventory = %self.inventory,
                    kind = self.kind.as_str(),
                    recovered = self.recovered,
                    awaiting = self.awaiting,
                    skipped_pages = self.skipped_pages,
                    error = self.error.unwrap_or_default(),
                )
            };
        }
        if self.error.is_none() {
            confirmed!(info, "Confirming listing complete.");
        } else {
            confirmed!(
                warn,
                "Confirming listing incomplete; what it missed counts for nothing, the next full pass settles it."
            );
        }
    }
}

/// A page came back short although the listing went on after it: the gateway cut it. The
/// listing cannot witness absences.
pub(crate) struct PageCutShort {
    pub inventory: Inventory,
    pub page: u32,
}

impl PageCutShort {
    pub(crate) fn emit(&self) {
        metrics::global().page(self.inventory, PageOutcome::Cut);
        warn!(
            message = "Page cut short while the listing went on; nothing is removed by absence in this listing.",
            inventory = %self.inventory,
            page = self.page,
        );
    }
}

/// The single-item endpoint found none of the items the listing had just returned: it is taken
/// as misconfigured (`<inventory>.item_path`) and none of its answers counts in this pass.
pub(crate) struct ItemEndpointUnusable<'a> {
    pub inventory: Inventory,
    /// Its last answer.
    pub answer: &'a str,
}

impl ItemEndpointUnusable<'_> {
    pub(crate) fn emit(&self) {
        warn!(
            message = "The single-item endpoint did not find listed items; not used in this pass (check item_path).",
            inventory = %self.inventory,
            answer = self.answer,
        );
    }
}

/// The single-item endpoint answered for the items a full pass's first listing missed.
pub(crate) struct ItemsChecked {
    pub inventory: Inventory,
    /// 404: gone (their second witness).
    pub gone: u64,
    /// Found: live, kept.
    pub live: u64,
    /// No usable answer: they wait for a listing.
    pub failed: u64,
}

impl ItemsChecked {
    pub(crate) fn emit(&self) {
        info!(
            message = "Items the listing missed checked one by one.",
            inventory = %self.inventory,
            gone = self.gone,
            live = self.live,
            failed = self.failed,
        );
    }
}

/// Items have awaited a second witness for longer than two full passes: deletions upstream
/// are not reaching the copy (listings keep failing their checks, or keep missing them at a
/// page boundary only).
pub(crate) struct DeletionsOverdue {
    pub inventory: Inventory,
    pub items: u64,
    pub since: DateTime<Utc>,
}

impl DeletionsOverdue {
    pub(crate) fn emit(&self) {
        warn!(
            message = "Items have awaited a second witness for more than two full passes.",
            inventory = %self.inventory,
            items = self.items,
            since = %time::format::seconds(self.since),
        );
    }
}

pub(crate) struct InventoryReady {
    pub inventory: Inventory,
    pub items: usize,
}

impl InventoryReady {
    pub(crate) fn emit(&self) {
        info!(message = "Inventory ready.", inventory = %self.inventory, items = self.items);
    }
}

pub(crate) struct StatusSummary<'a> {
    pub inventory: Inventory,
    pub phase: Phase,
    pub ready: bool,
    pub items: usize,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<&'a str>,
    pub(crate) last_error_at: Option<DateTime<Utc>>,
    pub next_poll: Option<DateTime<Utc>>,
}

impl StatusSummary<'_> {
    pub(crate) fn emit(&self) {
        info!(
            message = "Status.",
            inventory = %self.inventory,
            phase = self.phase.as_str(),
            ready = self.ready,
            items = self.items,
            last_success = %opt_time(self.last_success),
            last_error = self.last_error.unwrap_or(""),
            last_error_at = %opt_time(self.last_error_at),
            next_poll = %opt_time(self.next_poll),
        );
    }
}

// Store

pub(crate) struct StoreLoaded<'a> {
    pub path: &'a std::path::Path,
    /// Items loaded, per inventory.
    pub items: [usize; 3],
    /// Inventories ready from the file alone.
    pub ready: [bool; 3],
    /// Of the items, those whose row was extracted from the upstream JSON (their stored cells
    /// missing or of another build's extraction).
    pub extracted: usize,
    /// Inventories read from the stop snapshot.
    pub from_snapshot: [bool; 3],
    pub duration: Duration,
}

impl StoreLoaded<'_> {
    pub(crate) fn emit(&self) {
        let [services, carriers, resources] = self.items;
        let ready: Vec<&str> = Inventory::ALL
            .iter()
            .filter(|inv| self.ready[inv.index()])
            .map(|inv| inv.as_str())
            .collect();
        let snapshot: Vec<&str> = Inventory::ALL
            .iter()
            .filter(|inv| self.from_snapshot[inv.index()])
            .map(|inv| inv.as_str())
            .collect();
        info!(
            message = "Store loaded.",
            path = %self.path.display(),
            services,
            carriers,
            resources,
            ready = %ready.join(","),
            extracted = self.extracted,
            from_snapshot = %snapshot.join(","),
            duration_ms = ms(self.duration),
        );
    }
}

/// A stop snapshot that did not match its store (or was damaged): the inventory was read from
/// its rows instead.
pub(crate) struct StoreSnapshotRefused<'a> {
    pub inventory: Inventory,
    pub reason: &'a str,
}

impl StoreSnapshotRefused<'_> {
    pub(crate) fn emit(&self) {
        warn!(
            message = "Stop snapshot not used; reading the rows.",
            inventory = %self.inventory,
            reason = self.reason,
        );
    }
}

/// On a clean stop, the writer left a snapshot of every inventory for the next start.
pub(crate) struct StoreSnapshotWritten {
    pub items: [usize; 3],
    pub bytes: u64,
    pub duration: Duration,
}

impl StoreSnapshotWritten {
    pub(crate) fn emit(&self) {
        let [services, carriers, resources] = self.items;
        info!(
            message = "Stop snapshot written.",
            services,
            carriers,
            resources,
            bytes = self.bytes,
            duration_ms = ms(self.duration),
        );
    }
}

/// On a clean stop, no snapshot was left (the next start reads the rows).
pub(crate) struct StoreSnapshotSkipped<'a> {
    pub reason: &'a str,
}

impl StoreSnapshotSkipped<'_> {
    pub(crate) fn emit(&self) {
        warn!(message = "Stop snapshot not written.", reason = self.reason);
    }
}

/// The writer stored the cells of every row of an inventory that lacked them (after an upgrade
/// or a change of the row extraction), so the next warm start reads them.
pub(crate) struct StoreCellsFilled {
    pub inventory: Inventory,
    pub rows: usize,
    pub duration: Duration,
}

impl StoreCellsFilled {
    pub(crate) fn emit(&self) {
        info!(
            message = "Store rows filled in for fast warm starts.",
            inventory = %self.inventory,
            rows = self.rows,
            duration_ms = ms(self.duration),
        );
    }
}

pub(crate) struct StoreWritten {
    pub inventory: Inventory,
    pub kind: PollKind,
    pub outcome: Outcome,
    pub upserted: usize,
    pub removed: usize,
    pub touched: usize,
    /// Change-log entries written, and pruned.
    pub changes: usize,
    pub pruned: usize,
    pub duration: Duration,
}

impl StoreWritten {
    pub(crate) fn emit(&self) {
        metrics::global().store_write(self.inventory, true);
        info!(
            message = "Store updated.",
            inventory = %self.inventory,
            kind = self.kind.as_str(),
            outcome = self.outcome.as_str(),
            upserted = self.upserted,
            removed = self.removed,
            touched = self.touched,
            changes = self.changes,
            pruned = self.pruned,
            duration_ms = ms(self.duration),
        );
    }
}

/// glibc's free memory was given back to the kernel after polls (`cmd::memory`).
pub(crate) struct MemoryTrimmed {
    pub resident_before: u64,
    pub resident_after: u64,
    pub duration: Duration,
}

impl MemoryTrimmed {
    pub(crate) fn emit(&self) {
        debug!(
            message = "Free memory given back.",
            resident_before_bytes = self.resident_before,
            resident_after_bytes = self.resident_after,
            duration_ms = ms(self.duration),
        );
    }
}

/// A compression dictionary was trained for an inventory (once per file and inventory).
pub(crate) struct StoreDictionaryTrained {
    pub inventory: Inventory,
    pub samples: usize,
    pub bytes: usize,
    pub duration: Duration,
}

impl StoreDictionaryTrained {
    pub(crate) fn emit(&self) {
        info!(
            message = "Store compression dictionary trained.",
            inventory = %self.inventory,
            samples = self.samples,
            bytes = self.bytes,
            duration_ms = ms(self.duration),
        );
    }
}

pub(crate) struct StoreWriteFailed<'a> {
    pub inventory: Inventory,
    pub error: &'a dyn std::fmt::Display,
}

impl StoreWriteFailed<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().store_write(self.inventory, false);
        error!(
            message = "Store write failed; polling goes on, the next complete full pass rewrites the table.",
            inventory = %self.inventory,
            error = %self.error,
        );
    }
}

pub(crate) struct StoreMovedAside<'a> {
    pub path: &'a std::path::Path,
    pub(crate) moved_to: &'a std::path::Path,
    pub reason: &'a str,
}

impl StoreMovedAside<'_> {
    pub(crate) fn emit(&self) {
        error!(
            message = "Store corrupt or unreadable; moved aside, starting empty.",
            path = %self.path.display(),
            moved_to = %self.moved_to.display(),
            error = self.reason,
        );
    }
}

// NATS: the mirror, the change stream, the lease

pub(crate) struct NatsConnection {
    pub(crate) connected: bool,
}

impl NatsConnection {
    pub(crate) fn emit(&self) {
        metrics::global().nats_connected(self.connected);
        if self.connected {
            info!(message = "Connected to NATS.");
        } else {
            warn!(message = "NATS connection lost; polling goes on, the client reconnects.");
        }
    }
}

pub(crate) struct NatsProblem<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl NatsProblem<'_> {
    pub(crate) fn emit(&self) {
        warn!(message = "NATS reported a problem.", error = %self.error);
    }
}

pub(crate) struct MirrorWritten<'a> {
    pub inventory: Inventory,
    pub(crate) poll_id: &'a str,
    pub(crate) puts: u64,
    pub deletes: u64,
    /// Stream messages published: upserted, removed, poll.
    pub messages: [u64; 3],
    pub duration: Duration,
}

impl MirrorWritten<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().mirror_written(self.inventory, self.puts, self.deletes, self.messages);
        debug!(
            message = "Mirror updated.",
            inventory = %self.inventory,
            poll_id = self.poll_id,
            puts = self.puts,
            deletes = self.deletes,
            messages = self.messages.iter().sum::<u64>(),
            duration_ms = ms(self.duration),
        );
    }
}

pub(crate) struct MirrorResynced<'a> {
    pub inventory: Inventory,
    /// Why: `start`, `catch-up` (after a failure), `lagged` (notifications were dropped).
    pub reason: &'a str,
    pub items: usize,
    pub(crate) puts: u64,
    pub deletes: u64,
    pub duration: Duration,
}

impl MirrorResynced<'_> {
    pub(crate) fn emit(&self) {
        let m = metrics::global();
        m.mirror_resynced(self.inventory);
        m.mirror_written(
            self.inventory,
            self.puts,
            self.deletes,
            [self.puts, self.deletes, 1],
        );
        info!(
            message = "Mirror level with the cache.",
            inventory = %self.inventory,
            reason = self.reason,
            items = self.items,
            puts = self.puts,
            deletes = self.deletes,
            duration_ms = ms(self.duration),
        );
    }
}

/// The mirror is behind the cache (`behind`), or level again.
pub(crate) struct MirrorBehind<'a> {
    pub behind: bool,
    pub error: Option<&'a dyn std::fmt::Display>,
    /// When it tries again (behind only).
    pub(crate) retry_in: Duration,
}

impl MirrorBehind<'_> {
    pub(crate) fn emit(&self) {
        let m = metrics::global();
        m.mirror_behind(self.behind);
        match (self.behind, self.error) {
            (true, Some(error)) => {
                m.mirror_failed();
                warn!(
                    message = "NATS mirror behind the cache; polling goes on, the mirror catches up from the cache when NATS answers.",
                    error = %error,
                    retry_ms = ms(self.retry_in),
                );
            }
            (true, None) => warn!(
                message = "NATS mirror fell behind the polls (notifications dropped); catching up from the cache.",
            ),
            (false, _) => info!(message = "NATS mirror caught up with the cache."),
        }
    }
}

/// This instance's part changed (`ha.enabled`).
pub(crate) struct LeaseChanged<'a> {
    pub instance: &'a str,
    /// `leader` or `standby`.
    pub role: &'a str,
    /// Who leads now (empty when unknown).
    pub leader: &'a str,
    pub revision: u64,
    /// Why: `acquired`, or why the term ended.
    pub reason: &'a str,
}

impl LeaseChanged<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().ha_role(self.role);
        if self.role == "leader" {
            info!(
                message = "Leader lease acquired; polling the gateway.",
                instance = self.instance,
                revision = self.revision,
            );
        } else {
            warn!(
                message = "Leader lease lost; polling stopped, serving the mirror as a standby.",
                instance = self.instance,
                revision = self.revision,
                reason = self.reason,
                leader = self.leader,
            );
        }
    }
}

/// Started as a standby (`ha.enabled`).
pub(crate) struct StandbyStarted<'a> {
    pub instance: &'a str,
}

impl StandbyStarted<'_> {
    pub(crate) fn emit(&self) {
        metrics::global().ha_role("standby");
        info!(
            message = "Standing by: serving the mirror until this instance holds the lease.",
            instance = self.instance
        );
    }
}

/// A standby loaded the mirror of an inventory into its cache.
pub(crate) struct MirrorLoaded {
    pub inventory: Inventory,
    pub items: usize,
    pub ready: bool,
    pub duration: Duration,
}

impl MirrorLoaded {
    pub(crate) fn emit(&self) {
        info!(
            message = "Mirror loaded.",
            inventory = %self.inventory,
            items = self.items,
            ready = self.ready,
            duration_ms = ms(self.duration),
        );
    }
}

/// A stopping leader gave its lease up.
pub(crate) struct LeaseReleased {
    pub revision: u64,
}

impl LeaseReleased {
    pub(crate) fn emit(&self) {
        metrics::global().ha_role("standby");
        info!(message = "Leader lease released.", revision = self.revision);
    }
}

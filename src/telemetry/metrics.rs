//! Prometheus metrics. Which families exist, their labels and what they mean are ours; the
//! registry and the text exposition (format 0.0.4) are `prometheus-client`'s.
//!
//! Two kinds of families:
//! - **recorded**: the counters, the request-duration histogram, the last full pass's
//!   duration and the requests in flight per API (and their limit) live in the process-global
//!   [`Metrics`] ([`global`]) and are written only by the `emit()` methods in
//!   [`crate::telemetry::events`], the same calls that write the log lines, so logs and metrics
//!   never disagree. Events fire deep inside the sync code, hence one
//!   registry per process.
//! - **read at scrape time** by [`render`]: items, readiness, unconfirmed items and the last
//!   success from the cache (its record of them, which a warm start restores), the build
//!   version, and the standard `process_*` families ([`process`], Linux only).
//!
//! Counters are atomics; every label set of a counter family is created up front, so a series
//! reads 0 before its first event. The histogram takes one read lock of its family per upstream
//! request: nothing next to the cost of the request. [`render`] writes into a `String`; no lock
//! is held while the text goes out to a client.

mod process;

use crate::cache::Cache;
use crate::model::inventory::{Api, Inventory};
use crate::model::status::{Outcome, PollKind, PollReport};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the upstream request duration buckets.
pub(crate) const REQUEST_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How a page ended: fetched, skipped after its retries (504), or failed (ending the poll).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageOutcome {
    Fetched,
    Skipped,
    Failed,
    /// Served short although the listing went on after it.
    Cut,
}

impl PageOutcome {
    const ALL: [PageOutcome; 4] = [Self::Fetched, Self::Skipped, Self::Failed, Self::Cut];
    fn as_str(self) -> &'static str {
        match self {
            Self::Fetched => "fetched",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Cut => "cut",
        }
    }
}

/// Why page elements were not cached (the `reason` label of `skipped_items_total`).
const SKIP_REASONS: [&str; 5] = ["no_key", "not_object", "too_deep", "duplicate", "not_kept"];
const CHANGES: [&str; 3] = ["added", "updated", "removed"];
/// What confirmation did with items (the `kind` label of `churn_items_total`).
const CHURN: [&str; 6] = [
    "candidates",
    "recovered",
    "confirmed_removed",
    "deferred",
    "checked_gone",
    "checked_live",
];
/// What the mirror does to an entry (the `op` label of `mirror_writes_total`).
const MIRROR_OPS: [&str; 2] = ["put", "delete"];
/// How a store write ended (the `outcome` label of `store_writes_total`).
const STORE_OUTCOMES: [&str; 2] = ["committed", "failed"];
/// Change-stream messages (the `kind` label of `stream_messages_total`).
const STREAM_KINDS: [&str; 3] = ["upserted", "removed", "poll"];
const HA_ROLES: [&str; 3] = ["off", "standby", "leader"];
const KINDS: [PollKind; 2] = [PollKind::Full, PollKind::Refresh];
const OUTCOMES: [Outcome; 3] = [Outcome::Complete, Outcome::Incomplete, Outcome::Failed];

/// A label set of `N` fixed names and values, in the order they are written.
type Labels<const N: usize> = [(&'static str, &'static str); N];

/// Upper bounds (seconds) of the read API's request duration buckets.
pub(crate) const API_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The API histogram's labels: the route as the router knows it (`/api/v1/{inventory}`, or
/// `unmatched`), the method and the status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    route: String,
    method: String,
    status: String,
}

/// The request histogram's labels: the status is not a fixed set (any HTTP status).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    inventory: &'static str,
    status: String,
}

fn inventory(inv: Inventory) -> Labels<1> {
    [("inventory", inv.as_str())]
}

fn api(api: Api) -> Labels<1> {
    [("api", api.as_str())]
}

fn with(inv: Inventory, name: &'static str, value: &'static str) -> Labels<2> {
    [("inventory", inv.as_str()), (name, value)]
}

fn poll_labels(inv: Inventory, kind: PollKind, outcome: Outcome) -> Labels<3> {
    [
        ("inventory", inv.as_str()),
        ("kind", kind.as_str()),
        ("outcome", outcome.as_str()),
    ]
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn api_histogram() -> Histogram {
    Histogram::new(API_BUCKETS)
}

/// Everything recorded from events, registered once in `registry`.
pub struct Metrics {
    registry: Registry,
    polls: Family<Labels<3>, Counter>,
    pages: Family<Labels<2>, Counter>,
    retries: Family<Labels<1>, Counter>,
    skipped_items: Family<Labels<2>, Counter>,
    changes: Family<Labels<2>, Counter>,
    churn: Family<Labels<2>, Counter>,
    /// Confirming listings, by `steady`.
    confirmations: Family<Labels<2>, Counter>,
    /// Set by a complete full pass; absent before the first.
    full_pass_seconds: Family<Labels<1>, Gauge<f64, AtomicU64>>,
    /// Settling passes run (once after each first buildup).
    settling: Family<Labels<1>, Counter>,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// Applied polls written to the store, by `outcome` (committed, failed).
    store_writes: Family<Labels<2>, Counter>,
    /// Page requests in flight per API, and the adaptive limit on them.
    in_flight: Family<Labels<1>, Gauge>,
    in_flight_limit: Family<Labels<1>, Gauge>,
    /// The NATS mirror: entries written, by `op` (put, delete).
    mirror_writes: Family<Labels<2>, Counter>,
    /// Change-stream messages published, by `kind` (upserted, removed, poll).
    stream_messages: Family<Labels<2>, Counter>,
    mirror_resyncs: Family<Labels<1>, Counter>,
    mirror_failures: Counter,
    /// 1 while the mirror lacks applied polls (NATS unreachable, or catching up).
    mirror_behind: Gauge,
    nats_connected: Gauge,
    /// 1 for this instance's role (off, standby, leader), 0 for the others.
    ha_role: Family<Labels<1>, Gauge>,
    /// Requests the daemon's own HTTP server answered.
    api_requests: Family<ApiLabels, Histogram, fn() -> Histogram>,
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide registry the events record into.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            polls: Family::default(),
            pages: Family::default(),
            retries: Family::default(),
            skipped_items: Family::default(),
            changes: Family::default(),
            churn: Family::default(),
            confirmations: Family::default(),
            full_pass_seconds: Family::default(),
            settling: Family::default(),
            requests: Family::new_with_constructor(request_histogram as fn() -> Histogram),
            store_writes: Family::default(),
            in_flight: Family::default(),
            in_flight_limit: Family::default(),
            mirror_writes: Family::default(),
            stream_messages: Family::default(),
            mirror_resyncs: Family::default(),
            mirror_failures: Counter::default(),
            mirror_behind: Gauge::default(),
            nats_connected: Gauge::default(),
            ha_role: Family::default(),
            api_requests: Family::new_with_constructor(api_histogram as fn() -> Histogram),
        };
        for role in HA_ROLES {
            let _ = m
                .ha_role
                .get_or_create(&[("role", role)])
                .set(i64::from(role == "off"));
        }
        for a in [Api::Tmf638, Api::Tmf639] {
            let _ = m.in_flight.get_or_create(&api(a));
        }
        // Every counter series exists from the start, at 0.
        for inv in Inventory::ALL {
            for kind in KINDS {
                for outcome in OUTCOMES {
                    let _ = m.polls.get_or_create(&poll_labels(inv, kind, outcome));
                }
            }
            for outcome in PageOutcome::ALL {
                let _ = m
                    .pages
                    .get_or_create(&with(inv, "outcome", outcome.as_str()));
            }
            let _ = m.retries.get_or_create(&inventory(inv));
            for reason in SKIP_REASONS {
                let _ = m.skipped_items.get_or_create(&with(inv, "reason", reason));
            }
            for change in CHANGES {
                let _ = m.changes.get_or_create(&with(inv, "change", change));
            }
            for kind in CHURN {
                let _ = m.churn.get_or_create(&with(inv, "kind", kind));
            }
            for result in ["complete", "incomplete"] {
                let _ = m.confirmations.get_or_create(&with(inv, "result", result));
            }
            for op in MIRROR_OPS {
                let _ = m.mirror_writes.get_or_create(&with(inv, "op", op));
            }
            for kind in STREAM_KINDS {
                let _ = m.stream_messages.get_or_create(&with(inv, "kind", kind));
            }
            let _ = m.mirror_resyncs.get_or_create(&inventory(inv));
            for outcome in STORE_OUTCOMES {
                let _ = m.store_writes.get_or_create(&with(inv, "outcome", outcome));
            }
            let _ = m.settling.get_or_create(&inventory(inv));
        }
        m.register()
    }

    /// Registers the families (counters without their `_total`, which the encoder adds; help
    /// without its final period, which the registry adds).
    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "ses_inventory_polls",
            "Finished polls, by kind (full, refresh) and outcome (complete, incomplete, failed)",
            self.polls.clone(),
        );
        r.register(
            "ses_inventory_pages",
            "Pages by outcome: fetched, skipped (still 504 after its retries), failed (ended the poll)",
            self.pages.clone(),
        );
        r.register(
            "ses_inventory_page_retries",
            "Page requests retried after a retryable failure",
            self.retries.clone(),
        );
        r.register(
            "ses_inventory_skipped_items",
            "Page elements not cached, by reason (no_key, not_object, too_deep, duplicate, not_kept)",
            self.skipped_items.clone(),
        );
        r.register(
            "ses_inventory_item_changes",
            "Items added, updated and removed by applied polls",
            self.changes.clone(),
        );
        r.register(
            "ses_inventory_churn_items",
            "Items of full passes by what removal by absence made of them: candidates (cached, \
             not returned by the first listing), recovered (found by the confirming listing), \
             confirmed_removed (two witnesses), deferred (left awaiting a second witness), \
             checked_gone and checked_live (the single-item endpoint's answers)",
            self.churn.clone(),
        );
        r.register(
            "ses_inventory_confirmations",
            "Confirming listings run, by result: complete (it witnessed absences) or incomplete \
             (an error, skipped or cut pages)",
            self.confirmations.clone(),
        );
        r.register(
            "ses_inventory_full_pass_duration_seconds",
            "Duration of the last complete full pass (absent before the first)",
            self.full_pass_seconds.clone(),
        );
        r.register(
            "ses_inventory_settling_passes",
            "Settling passes run: the full pass right after a first buildup, which finds what an \
             offset listing of a changing collection skipped",
            self.settling.clone(),
        );
        r.register(
            "ses_inventory_upstream_in_flight",
            "Page requests in flight to the upstream now, per API (tmf638, tmf639)",
            self.in_flight.clone(),
        );
        r.register(
            "ses_inventory_upstream_in_flight_limit",
            "The adaptive limit of page requests in flight per API: halves when the upstream \
             throttles (429, 503, 504, a timeout), grows by one after 8 clean pages, at most \
             http.max_in_flight_per_api (absent before the client starts)",
            self.in_flight_limit.clone(),
        );
        r.register(
            "ses_inventory_upstream_request_duration_seconds",
            "Upstream page requests (each attempt), by inventory and HTTP status \
             (or timeout, connect, body when there is none or it was unusable)",
            self.requests.clone(),
        );
        r.register(
            "ses_inventory_store_writes",
            "Applied polls written to the store, by outcome: committed, failed (the next write \
             rewrites the inventory's table from the cache); 0 without store.path",
            self.store_writes.clone(),
        );
        r.register(
            "ses_inventory_mirror_writes",
            "Entries written to the NATS key-value mirror, by op (put, delete)",
            self.mirror_writes.clone(),
        );
        r.register(
            "ses_inventory_stream_messages",
            "Messages published on the change stream SES_INVENTORY, by kind (upserted, removed, poll)",
            self.stream_messages.clone(),
        );
        r.register(
            "ses_inventory_mirror_resyncs",
            "Times the mirror was compared with the cache and brought level (at start, after a \
             NATS outage, after falling behind)",
            self.mirror_resyncs.clone(),
        );
        r.register(
            "ses_inventory_mirror_failures",
            "Mirror writes or re-syncs that failed (NATS unreachable or refusing); polling goes on",
            self.mirror_failures.clone(),
        );
        r.register(
            "ses_inventory_mirror_behind",
            "1 while the NATS mirror lacks polls applied to the cache (NATS unreachable, or \
             catching up), else 0",
            self.mirror_behind.clone(),
        );
        r.register(
            "ses_inventory_nats_connected",
            "1 while connected to a NATS server, else 0 (always 0 without nats.url)",
            self.nats_connected.clone(),
        );
        r.register(
            "ses_inventory_ha_role",
            "1 for this instance's role: leader (holds the lease and polls), standby (serves the \
             mirror), off (ha.enabled = false); 0 for the others",
            self.ha_role.clone(),
        );
        r.register(
            "ses_inventory_api_request_duration_seconds",
            "Requests answered by the daemon's HTTP server (API, health, metrics), by route, \
             method and status",
            self.api_requests.clone(),
        );
        self
    }

    /// One request answered by the daemon's HTTP server.
    pub(crate) fn api_request(&self, route: &str, method: &str, status: u16, duration: Duration) {
        let labels = ApiLabels {
            route: route.to_owned(),
            method: method.to_owned(),
            status: status.to_string(),
        };
        self.api_requests
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// One mirror write of `inv`: entries put and deleted, stream messages by kind.
    pub(crate) fn mirror_written(
        &self,
        inv: Inventory,
        puts: u64,
        deletes: u64,
        messages: [u64; 3],
    ) {
        for (op, n) in MIRROR_OPS.into_iter().zip([puts, deletes]) {
            self.mirror_writes
                .get_or_create(&with(inv, "op", op))
                .inc_by(n);
        }
        for (kind, n) in STREAM_KINDS.into_iter().zip(messages) {
            self.stream_messages
                .get_or_create(&with(inv, "kind", kind))
                .inc_by(n);
        }
    }

    /// One applied poll of `inv` written to the store, or not.
    pub(crate) fn store_write(&self, inv: Inventory, committed: bool) {
        let outcome = STORE_OUTCOMES[usize::from(!committed)];
        self.store_writes
            .get_or_create(&with(inv, "outcome", outcome))
            .inc();
    }

    pub(crate) fn mirror_resynced(&self, inv: Inventory) {
        self.mirror_resyncs.get_or_create(&inventory(inv)).inc();
    }

    pub(crate) fn mirror_failed(&self) {
        self.mirror_failures.inc();
    }

    pub(crate) fn mirror_behind(&self, behind: bool) {
        self.mirror_behind.set(i64::from(behind));
    }

    pub(crate) fn nats_connected(&self, connected: bool) {
        self.nats_connected.set(i64::from(connected));
    }

    pub(crate) fn ha_role(&self, role: &str) {
        for r in HA_ROLES {
            self.ha_role
                .get_or_create(&[("role", r)])
                .set(i64::from(r == role));
        }
    }

    /// One attempt at one page: `status` is the HTTP status, or a word for a failure without one.
    pub(crate) fn upstream_request(&self, inv: Inventory, status: &str, duration: Duration) {
        let labels = RequestLabels {
            inventory: inv.as_str(),
            status: status.to_owned(),
        };
        self.requests
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// Page requests in flight to `api` now.
    pub fn in_flight(&self, a: Api, n: u32) {
        self.in_flight.get_or_create(&api(a)).set(i64::from(n));
    }

    /// The adaptive limit of page requests in flight to `api`.
    pub(crate) fn in_flight_limit(&self, a: Api, limit: u32) {
        self.in_flight_limit
            .get_or_create(&api(a))
            .set(i64::from(limit));
    }

    pub fn page(&self, inv: Inventory, outcome: PageOutcome) {
        self.pages
            .get_or_create(&with(inv, "outcome", outcome.as_str()))
            .inc();
    }

    pub fn retry(&self, inv: Inventory) {
        self.retries.get_or_create(&inventory(inv)).inc();
    }

    /// A finished poll: its outcome, what it skipped and changed; a complete full pass sets its
    /// duration. (The last success time is read from the cache at scrape time.)
    pub fn poll(&self, inv: Inventory, report: &PollReport) {
        self.polls
            .get_or_create(&poll_labels(inv, report.kind, report.outcome))
            .inc();
        if report.reason == Some(crate::model::status::FullReason::Settling) {
            self.settling.get_or_create(&inventory(inv)).inc();
        }
        let s = &report.skipped;
        for (reason, n) in SKIP_REASONS.into_iter().zip([
            s.no_key,
            s.not_object,
            s.too_deep,
            s.duplicates,
            s.not_kept,
        ]) {
            self.skipped_items
                .get_or_create(&with(inv, "reason", reason))
                .inc_by(n);
        }
        for (change, n) in CHANGES
            .into_iter()
            .zip([report.added, report.updated, report.removed])
        {
            self.changes
                .get_or_create(&with(inv, "change", change))
                .inc_by(n);
        }
        let c = &report.churn;
        for (kind, n) in CHURN.into_iter().zip([
            c.candidates,
            c.recovered,
            c.confirmed_removed,
            c.deferred,
            c.checked_gone,
            c.checked_live,
        ]) {
            self.churn.get_or_create(&with(inv, "kind", kind)).inc_by(n);
        }
        if report.outcome == Outcome::Complete && report.kind == PollKind::Full {
            let secs = (report.finished - report.started)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64();
            self.full_pass_seconds
                .get_or_create(&inventory(inv))
                .set(secs);
        }
    }

    /// A confirming listing ended; `complete`: it could witness absences.
    pub fn confirmation(&self, inv: Inventory, complete: bool) {
        let result = if complete { "complete" } else { "incomplete" };
        self.confirmations
            .get_or_create(&with(inv, "result", result))
            .inc();
    }

    /// The text exposition: what is read at scrape time (from `cache`, the build, the process),
    /// then this registry's series.
    pub fn render(&self, cache: &Cache) -> String {
        let mut at_scrape = Registry::default();
        at_scrape.register_collector(Box::new(AtScrape(cache.clone())));
        let mut text = String::new();
        for registry in [&at_scrape, &self.registry] {
            // Writing into a String cannot fail.
            let _ = prometheus_text::encode(&mut text, registry);
        }
        text
    }
}

/// Renders the global registry (see [`Metrics::render`]).
pub fn render(cache: &Cache) -> String {
    global().render(cache)
}

/// The families read when a scrape comes in.
struct AtScrape(Cache);

impl std::fmt::Debug for AtScrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtScrape")
    }
}

impl Collector for AtScrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let cache = &self.0;
        {
            let mut family = encoder.encode_descriptor(
                "ses_inventory_build_info",
                "Always 1; the version label says which build runs.",
                None,
                MetricType::Gauge,
            )?;
            let version = [("version", env!("CARGO_PKG_VERSION"))];
            ConstGauge::new(1_i64).encode(family.encode_family(&version)?)?;
        }
        per_inventory(
            &mut encoder,
            "ses_inventory_items",
            "Items in the cache, per inventory.",
            Inventory::ALL.map(|inv| Some(cache.len(inv) as u64)),
        )?;
        per_inventory(
            &mut encoder,
            "ses_inventory_ready",
            "1 once the inventory holds data from a complete full pass.",
            Inventory::ALL.map(|inv| Some(i64::from(cache.is_ready(inv)))),
        )?;
        // The cache's status is the one record of these (a warm start restores it).
        let status = Inventory::ALL.map(|inv| cache.status(inv));
        per_inventory(
            &mut encoder,
            "ses_inventory_unconfirmed_items",
            "Cached items a complete listing did not return, awaiting a second witness before \
             they are removed.",
            status.each_ref().map(|s| Some(s.unconfirmed)),
        )?;
        per_inventory(
            &mut encoder,
            "ses_inventory_unconfirmed_oldest_timestamp_seconds",
            "When the oldest item awaiting a second witness was first missed, since the Unix \
             epoch (absent when none awaits).",
            status.each_ref().map(|s| {
                s.unconfirmed_since
                    .map(|at| at.timestamp_millis() as f64 / 1000.0)
            }),
        )?;
        per_inventory(
            &mut encoder,
            "ses_inventory_converged",
            "1 when the copy holds every deletion it knows of: the first buildup settled and no \
             item awaiting a second witness.",
            status.each_ref().map(|s| Some(i64::from(s.converged()))),
        )?;
        per_inventory(
            &mut encoder,
            "ses_inventory_consecutive_failures",
            "Polls in a row that were not complete (failed, or incomplete: pages skipped or cut \
             short) since the last complete one; 0 after a complete poll.",
            status
                .each_ref()
                .map(|s| Some(u64::from(s.consecutive_failures))),
        )?;
        per_inventory(
            &mut encoder,
            "ses_inventory_last_success_timestamp_seconds",
            "End of the last complete poll since the Unix epoch (absent before the first; \
             restored from the store after a restart).",
            status.each_ref().map(|s| {
                s.last_success
                    .map(|at| at.timestamp_millis() as f64 / 1000.0)
            }),
        )?;
        process::encode(&process::read(), &mut encoder)
    }
}

/// A gauge family with one series per inventory that has a value; no family at all when none
/// has ("absent before the first").
fn per_inventory<N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: [Option<N>; 3],
) -> std::fmt::Result {
    if values.iter().all(Option::is_none) {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (inv, value) in Inventory::ALL.into_iter().zip(values) {
        if let Some(value) = value {
            ConstGauge::new(value).encode(family.encode_family(&inventory(inv))?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::status::SkipCounts;
    use chrono::{TimeZone, Utc};

    fn report(kind: PollKind, outcome: Outcome, secs: i64) -> PollReport {
        let started = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        PollReport {
            kind,
            reason: None,
            days_ago: None,
            started,
            finished: started + chrono::Duration::seconds(secs),
            pages: 3,
            skipped_pages: vec![],
            short_pages: vec![],
            skipped: SkipCounts {
                no_key: 2,
                not_object: 1,
                too_deep: 0,
                duplicates: 0,
                not_kept: 4,
            },
            received: 10,
            added: 3,
            updated: 0,
            removed: 1,
            churn: Default::default(),
            outcome,
            credentials_rejected: false,
            error: None,
        }
    }

    #[test]
    fn records_and_renders_every_family() {
        let m = Metrics::new();
        m.upstream_request(Inventory::Services, "200", Duration::from_millis(30));
        m.upstream_request(Inventory::Services, "200", Duration::from_secs(100));
        m.upstream_request(Inventory::Services, "504", Duration::from_millis(5));
        m.page(Inventory::Services, PageOutcome::Fetched);
        m.page(Inventory::Services, PageOutcome::Skipped);
        m.retry(Inventory::Carriers);
        m.confirmation(Inventory::Carriers, true);
        m.in_flight(Api::Tmf638, 3);
        m.in_flight_limit(Api::Tmf638, 4);
        m.store_write(Inventory::Services, true);
        m.store_write(Inventory::Carriers, false);
        let full = report(PollKind::Full, Outcome::Complete, 90);
        m.poll(Inventory::Resources, &full);
        // The last success is the poller's record in the cache, read at scrape time.
        let cache = Cache::new();
        cache.update_status(Inventory::Resources, |s| {
            s.last_success = Some(full.finished)
        });
        cache.update_status(Inventory::Carriers, |s| s.consecutive_failures = 2);
        let text = m.render(&cache);
        for line in [
            "# TYPE ses_inventory_polls_total counter",
            "# HELP ses_inventory_item_changes_total Items added, updated and removed by applied polls.",
            "# TYPE ses_inventory_upstream_request_duration_seconds histogram",
            &format!(
                "ses_inventory_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
            "ses_inventory_items{inventory=\"services\"} 0",
            "ses_inventory_ready{inventory=\"carriers\"} 0",
            "ses_inventory_unconfirmed_items{inventory=\"resources\"} 0",
            "ses_inventory_pages_total{inventory=\"services\",outcome=\"skipped\"} 1",
            "ses_inventory_pages_total{inventory=\"resources\",outcome=\"failed\"} 0",
            "ses_inventory_page_retries_total{inventory=\"carriers\"} 1",
            "ses_inventory_polls_total{inventory=\"resources\",kind=\"full\",outcome=\"complete\"} 1",
            "ses_inventory_polls_total{inventory=\"services\",kind=\"refresh\",outcome=\"failed\"} 0",
            "ses_inventory_skipped_items_total{inventory=\"resources\",reason=\"not_kept\"} 4",
            "ses_inventory_item_changes_total{inventory=\"resources\",change=\"removed\"} 1",
            "ses_inventory_churn_items_total{inventory=\"services\",kind=\"deferred\"} 0",
            "ses_inventory_confirmations_total{inventory=\"carriers\",result=\"complete\"} 1",
            "ses_inventory_confirmations_total{inventory=\"carriers\",result=\"incomplete\"} 0",
            "ses_inventory_store_writes_total{inventory=\"services\",outcome=\"committed\"} 1",
            "ses_inventory_store_writes_total{inventory=\"carriers\",outcome=\"failed\"} 1",
            "ses_inventory_store_writes_total{inventory=\"resources\",outcome=\"failed\"} 0",
            "ses_inventory_consecutive_failures{inventory=\"carriers\"} 2",
            "ses_inventory_consecutive_failures{inventory=\"services\"} 0",
            "# TYPE ses_inventory_upstream_in_flight gauge",
            "ses_inventory_upstream_in_flight{api=\"tmf638\"} 3",
            "ses_inventory_upstream_in_flight{api=\"tmf639\"} 0",
            "# TYPE ses_inventory_upstream_in_flight_limit gauge",
            "ses_inventory_upstream_in_flight_limit{api=\"tmf638\"} 4",
            "ses_inventory_full_pass_duration_seconds{inventory=\"resources\"} 90.0",
            "ses_inventory_last_success_timestamp_seconds{inventory=\"resources\"} 1767225690.0",
            "ses_inventory_upstream_request_duration_seconds_bucket{inventory=\"services\",status=\"200\",le=\"0.05\"} 1",
            "ses_inventory_upstream_request_duration_seconds_bucket{inventory=\"services\",status=\"200\",le=\"60\"} 1",
            "ses_inventory_upstream_request_duration_seconds_bucket{inventory=\"services\",status=\"200\",le=\"+Inf\"} 2",
            "ses_inventory_upstream_request_duration_seconds_count{inventory=\"services\",status=\"504\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        for absent in [
            "last_success_timestamp_seconds{inventory=\"services\"}",
            "full_pass_duration_seconds{inventory=\"carriers\"}",
        ] {
            assert!(!text.contains(absent), "{absent} before the first\n{text}");
        }
        if cfg!(target_os = "linux") {
            for family in [
                "process_cpu_seconds_total",
                "process_resident_memory_bytes",
                "process_virtual_memory_bytes",
                "process_open_fds",
                "process_max_fds",
                "process_start_time_seconds",
            ] {
                assert!(
                    text.contains(&format!("\n# TYPE {family} ")),
                    "no {family}\n{text}"
                );
            }
        }
    }

    #[test]
    fn families_never_seen_are_left_out_whole() {
        let text = Metrics::new().render(&Cache::new());
        for family in [
            "ses_inventory_last_success_timestamp_seconds",
            "ses_inventory_full_pass_duration_seconds",
            "ses_inventory_upstream_request_duration_seconds",
            "ses_inventory_upstream_in_flight_limit",
        ] {
            assert!(!text.contains(family), "{family}\n{text}");
        }
    }
}

//! Prometheus metrics: a small, hand-rolled registry and its text exposition (format 0.0.4).
//!
//! Metrics are recorded by the `emit()` methods in [`crate::telemetry::events`], the same calls that write
//! the log lines, so logs and metrics never disagree. Events fire deep inside the sync code, so
//! the registry is process-global ([`global`]); everything that can be read from the cache
//! instead (items, readiness) is read at scrape time by [`render`].
//!
//! The recording side is a handful of atomics indexed by inventory and outcome, plus one mutex
//! around the request-duration histograms (one lock per upstream request: nothing next to the
//! cost of the request). No lock is held while the text is written out to a client.

use crate::cache::Cache;
use crate::model::inventory::Inventory;
use crate::model::status::{Outcome, PollKind};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the upstream request duration buckets.
pub const REQUEST_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How a page ended: fetched, skipped after its retries (504), or failed (ending the poll).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageOutcome {
    Fetched,
    Skipped,
    Failed,
}

impl PageOutcome {
    const ALL: [PageOutcome; 3] = [Self::Fetched, Self::Skipped, Self::Failed];
    fn as_str(self) -> &'static str {
        match self {
            Self::Fetched => "fetched",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// Why page elements were not cached (the `reason` label of `skipped_items_total`).
const SKIP_REASONS: [&str; 4] = ["no_key", "not_object", "duplicate", "not_kept"];
const CHANGES: [&str; 3] = ["added", "updated", "removed"];
/// What confirmation did with items (the `kind` label of `churn_items_total`).
const CHURN: [&str; 4] = ["candidates", "recovered", "confirmed_removed", "deferred"];
const KINDS: [PollKind; 2] = [PollKind::Full, PollKind::Refresh];
const OUTCOMES: [Outcome; 3] = [Outcome::Complete, Outcome::Incomplete, Outcome::Failed];

type PerInventory<T> = [T; 3];

/// Counters of one inventory's polls, indexed `[kind][outcome]`.
type PollCounts = [[AtomicU64; 3]; 2];

/// Everything recorded from events. Values are plain atomics; the full-pass duration is stored as
/// its `f64` bit pattern (`u64::MAX` = never); the last success as Unix milliseconds (0 = never).
pub struct Metrics {
    polls: PerInventory<PollCounts>,
    pages: PerInventory<[AtomicU64; 3]>,
    retries: PerInventory<AtomicU64>,
    skipped_items: PerInventory<[AtomicU64; 4]>,
    changes: PerInventory<[AtomicU64; 3]>,
    churn: PerInventory<[AtomicU64; 4]>,
    /// Confirming listings, `[not steady, steady]`.
    confirmations: PerInventory<[AtomicU64; 2]>,
    full_pass_seconds: PerInventory<AtomicU64>,
    requests: Mutex<BTreeMap<(Inventory, String), Histogram>>,
}

const NEVER: u64 = u64::MAX;

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    buckets: [u64; REQUEST_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let slot = REQUEST_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(REQUEST_BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

static GLOBAL: Metrics = Metrics::new();

/// The process-wide registry the events record into.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

#[allow(clippy::declare_interior_mutable_const)] // used only as array initialisers below
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const UNSET: AtomicU64 = AtomicU64::new(NEVER);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO3: [AtomicU64; 3] = [ZERO; 3];
#[allow(clippy::declare_interior_mutable_const)]
const ZERO4: [AtomicU64; 4] = [ZERO; 4];
#[allow(clippy::declare_interior_mutable_const)]
const ZERO2: [AtomicU64; 2] = [ZERO; 2];
#[allow(clippy::declare_interior_mutable_const)]
const POLLS: PollCounts = [ZERO3; 2];

fn kind_index(kind: PollKind) -> usize {
    KINDS.iter().position(|&k| k == kind).unwrap_or(0)
}

fn outcome_index(outcome: Outcome) -> usize {
    OUTCOMES.iter().position(|&o| o == outcome).unwrap_or(0)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub const fn new() -> Metrics {
        Metrics {
            polls: [POLLS; 3],
            pages: [ZERO3; 3],
            retries: ZERO3,
            skipped_items: [ZERO4; 3],
            changes: [ZERO3; 3],
            churn: [ZERO4; 3],
            confirmations: [ZERO2; 3],
            full_pass_seconds: [UNSET; 3],
            requests: Mutex::new(BTreeMap::new()),
        }
    }

    /// One attempt at one page: `status` is the HTTP status, or a word for a failure without one.
    pub fn upstream_request(&self, inv: Inventory, status: &str, duration: Duration) {
        let mut map = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (inv, status.to_string());
        map.entry(key).or_default().observe(duration.as_secs_f64());
    }

    pub fn page(&self, inv: Inventory, outcome: PageOutcome) {
        let i = PageOutcome::ALL
            .iter()
            .position(|&o| o == outcome)
            .unwrap_or(0);
        self.pages[inv.index()][i].fetch_add(1, Relaxed);
    }

    pub fn retry(&self, inv: Inventory) {
        self.retries[inv.index()].fetch_add(1, Relaxed);
    }

    /// A finished poll: its outcome, what it skipped and changed; a complete full pass sets its
    /// duration. (The last success time is read from the cache at scrape time.)
    pub fn poll(&self, inv: Inventory, report: &crate::model::status::PollReport) {
        let i = inv.index();
        self.polls[i][kind_index(report.kind)][outcome_index(report.outcome)].fetch_add(1, Relaxed);
        let s = &report.skipped;
        for (slot, n) in [s.no_key, s.not_object, s.duplicates, s.not_kept]
            .into_iter()
            .enumerate()
        {
            self.skipped_items[i][slot].fetch_add(n, Relaxed);
        }
        for (slot, n) in [report.added, report.updated, report.removed]
            .into_iter()
            .enumerate()
        {
            self.changes[i][slot].fetch_add(n, Relaxed);
        }
        let c = &report.churn;
        for (slot, n) in [c.candidates, c.recovered, c.confirmed_removed, c.deferred]
            .into_iter()
            .enumerate()
        {
            self.churn[i][slot].fetch_add(n, Relaxed);
        }
        if report.outcome == Outcome::Complete && report.kind == PollKind::Full {
            let secs = (report.finished - report.started)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64();
            self.full_pass_seconds[i].store(secs.to_bits(), Relaxed);
        }
    }

    /// A confirming listing ended; `steady`: nothing moved under it.
    pub fn confirmation(&self, inv: Inventory, steady: bool) {
        self.confirmations[inv.index()][usize::from(steady)].fetch_add(1, Relaxed);
    }

    /// The text exposition: this registry's series plus gauges read from `cache`, the process
    /// start time and the build version.
    pub fn render(&self, cache: &Cache, started_unix: f64) -> String {
        let mut out = Exposition::default();
        out.family(
            "ses_inventory_build_info",
            "gauge",
            "Always 1; the version label says which build runs.",
        );
        out.sample(
            "ses_inventory_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        out.family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process (when the API began serving), Unix seconds.",
        );
        out.sample("process_start_time_seconds", &[], started_unix);

        out.family(
            "ses_inventory_items",
            "gauge",
            "Items in the cache, per inventory.",
        );
        for inv in Inventory::ALL {
            out.sample(
                "ses_inventory_items",
                &[("inventory", inv.as_str())],
                cache.len(inv) as f64,
            );
        }
        out.family(
            "ses_inventory_ready",
            "gauge",
            "1 once the inventory holds data from a complete full pass.",
        );
        for inv in Inventory::ALL {
            let ready = if cache.is_ready(inv) { 1.0 } else { 0.0 };
            out.sample("ses_inventory_ready", &[("inventory", inv.as_str())], ready);
        }

        out.family(
            "ses_inventory_polls_total",
            "counter",
            "Finished polls, by kind (full, refresh) and outcome (complete, incomplete, failed).",
        );
        for inv in Inventory::ALL {
            for kind in KINDS {
                for outcome in OUTCOMES {
                    let n = self.polls[inv.index()][kind_index(kind)][outcome_index(outcome)]
                        .load(Relaxed);
                    out.sample(
                        "ses_inventory_polls_total",
                        &[
                            ("inventory", inv.as_str()),
                            ("kind", kind.as_str()),
                            ("outcome", outcome.as_str()),
                        ],
                        n as f64,
                    );
                }
            }
        }
        out.family(
            "ses_inventory_pages_total",
            "counter",
            "Pages by outcome: fetched, skipped (still 504 after its retries), failed (ended the poll).",
        );
        for inv in Inventory::ALL {
            for (slot, outcome) in PageOutcome::ALL.into_iter().enumerate() {
                out.sample(
                    "ses_inventory_pages_total",
                    &[("inventory", inv.as_str()), ("outcome", outcome.as_str())],
                    self.pages[inv.index()][slot].load(Relaxed) as f64,
                );
            }
        }
        out.family(
            "ses_inventory_page_retries_total",
            "counter",
            "Page requests retried after a retryable failure.",
        );
        for inv in Inventory::ALL {
            out.sample(
                "ses_inventory_page_retries_total",
                &[("inventory", inv.as_str())],
                self.retries[inv.index()].load(Relaxed) as f64,
            );
        }
        out.family(
            "ses_inventory_skipped_items_total",
            "counter",
            "Page elements not cached, by reason (no_key, not_object, duplicate, not_kept).",
        );
        for inv in Inventory::ALL {
            for (slot, reason) in SKIP_REASONS.into_iter().enumerate() {
                out.sample(
                    "ses_inventory_skipped_items_total",
                    &[("inventory", inv.as_str()), ("reason", reason)],
                    self.skipped_items[inv.index()][slot].load(Relaxed) as f64,
                );
            }
        }
        out.family(
            "ses_inventory_item_changes_total",
            "counter",
            "Items added, updated and removed by applied polls.",
        );
        for inv in Inventory::ALL {
            for (slot, change) in CHANGES.into_iter().enumerate() {
                out.sample(
                    "ses_inventory_item_changes_total",
                    &[("inventory", inv.as_str()), ("change", change)],
                    self.changes[inv.index()][slot].load(Relaxed) as f64,
                );
            }
        }
        out.family(
            "ses_inventory_churn_items_total",
            "counter",
            "Items of full passes whose listing changed under them: candidates (cached, not \
             listed), recovered (found by the confirming listing), confirmed_removed, deferred \
             (kept, unconfirmed).",
        );
        for inv in Inventory::ALL {
            for (slot, kind) in CHURN.into_iter().enumerate() {
                out.sample(
                    "ses_inventory_churn_items_total",
                    &[("inventory", inv.as_str()), ("kind", kind)],
                    self.churn[inv.index()][slot].load(Relaxed) as f64,
                );
            }
        }
        out.family(
            "ses_inventory_confirmations_total",
            "counter",
            "Confirming listings run, by whether they were steady (nothing moved under them).",
        );
        for inv in Inventory::ALL {
            for (slot, steady) in ["false", "true"].into_iter().enumerate() {
                out.sample(
                    "ses_inventory_confirmations_total",
                    &[("inventory", inv.as_str()), ("steady", steady)],
                    self.confirmations[inv.index()][slot].load(Relaxed) as f64,
                );
            }
        }
        out.family(
            "ses_inventory_unconfirmed_items",
            "gauge",
            "Cached items the last full pass could not confirm gone (the next poll is a full pass).",
        );
        for inv in Inventory::ALL {
            out.sample(
                "ses_inventory_unconfirmed_items",
                &[("inventory", inv.as_str())],
                cache.status(inv).unconfirmed as f64,
            );
        }
        out.family(
            "ses_inventory_last_success_timestamp_seconds",
            "gauge",
            "End of the last complete poll since the Unix epoch (absent before the first; \
             restored from the store after a restart).",
        );
        // Read from the cache's status, the one record of it (a warm start restores it).
        for inv in Inventory::ALL {
            if let Some(at) = cache.status(inv).last_success {
                out.sample(
                    "ses_inventory_last_success_timestamp_seconds",
                    &[("inventory", inv.as_str())],
                    at.timestamp_millis() as f64 / 1000.0,
                );
            }
        }
        out.family(
            "ses_inventory_full_pass_duration_seconds",
            "gauge",
            "Duration of the last complete full pass (absent before the first).",
        );
        for inv in Inventory::ALL {
            let bits = self.full_pass_seconds[inv.index()].load(Relaxed);
            if bits != NEVER {
                out.sample(
                    "ses_inventory_full_pass_duration_seconds",
                    &[("inventory", inv.as_str())],
                    f64::from_bits(bits),
                );
            }
        }

        // Copy the histograms out, then format them without the lock.
        let histograms: Vec<((Inventory, String), Histogram)> = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        let name = "ses_inventory_upstream_request_duration_seconds";
        out.family(
            name,
            "histogram",
            "Upstream page requests (each attempt), by inventory and HTTP status \
             (or timeout, connect, body when there is none or it was unusable).",
        );
        for ((inv, status), h) in &histograms {
            let labels = [("inventory", inv.as_str()), ("status", status.as_str())];
            let mut cumulative = 0;
            for (slot, le) in REQUEST_BUCKETS.iter().enumerate() {
                cumulative += h.buckets[slot];
                let le = format_value(*le);
                out.sample(
                    &format!("{name}_bucket"),
                    &[labels[0], labels[1], ("le", &le)],
                    cumulative as f64,
                );
            }
            out.sample(
                &format!("{name}_bucket"),
                &[labels[0], labels[1], ("le", "+Inf")],
                h.count as f64,
            );
            out.sample(&format!("{name}_sum"), &labels, h.sum);
            out.sample(&format!("{name}_count"), &labels, h.count as f64);
        }
        out.text
    }
}

/// Renders the global registry (see [`Metrics::render`]).
pub fn render(cache: &Cache, started_unix: f64) -> String {
    global().render(cache, started_unix)
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_value(value));
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        // Rust prints integral floats without a fraction ("3") and others in full precision.
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::status::{PollReport, SkipCounts};
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
            skipped: SkipCounts {
                no_key: 2,
                not_object: 1,
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
        let full = report(PollKind::Full, Outcome::Complete, 90);
        m.poll(Inventory::Resources, &full);
        // The last success is the poller's record in the cache, read at scrape time.
        let cache = Cache::new();
        cache.update_status(Inventory::Resources, |s| {
            s.last_success = Some(full.finished)
        });
        let text = m.render(&cache, 12.5);
        for line in [
            "ses_inventory_items{inventory=\"services\"} 0",
            "ses_inventory_pages_total{inventory=\"services\",outcome=\"skipped\"} 1",
            "ses_inventory_page_retries_total{inventory=\"carriers\"} 1",
            "ses_inventory_polls_total{inventory=\"resources\",kind=\"full\",outcome=\"complete\"} 1",
            "ses_inventory_skipped_items_total{inventory=\"resources\",reason=\"not_kept\"} 4",
            "ses_inventory_item_changes_total{inventory=\"resources\",change=\"removed\"} 1",
            "ses_inventory_full_pass_duration_seconds{inventory=\"resources\"} 90",
            "ses_inventory_last_success_timestamp_seconds{inventory=\"resources\"} 1767225690",
            "ses_inventory_upstream_request_duration_seconds_bucket{inventory=\"services\",status=\"200\",le=\"0.05\"} 1",
            "ses_inventory_upstream_request_duration_seconds_bucket{inventory=\"services\",status=\"200\",le=\"60\"} 1",
            "ses_inventory_upstream_request_duration_seconds_bucket{inventory=\"services\",status=\"200\",le=\"+Inf\"} 2",
            "ses_inventory_upstream_request_duration_seconds_count{inventory=\"services\",status=\"504\"} 1",
            "process_start_time_seconds 12.5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(
            !text.contains("last_success_timestamp_seconds{inventory=\"services\"}"),
            "no success yet for services"
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(0.25), "0.25");
    }
}

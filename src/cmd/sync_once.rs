//! `sync-once`: one full pass of every inventory, then a summary.

use crate::cache::Cache;
use crate::cmd::logging;
use crate::cmd::root::open_store;
use crate::config::Config;
use crate::model::inventory::Inventory;
use crate::model::status::{Outcome, PollReport};
use crate::source::{ClientError, Upstream};
use crate::sync::window::{FullReason, PollPlan};
use crate::sync::{Journal, Poller};
use crate::time::clock::Clock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One inventory's result, as printed: the poll's report (its one JSON shape, see
/// [`PollReport`]), the items kept after it, and the counts the summary always had.
#[derive(Debug, Serialize)]
pub struct InventorySummary {
    #[serde(flatten)]
    pub report: PollReport,
    /// Items in the cache after the pass.
    pub kept: usize,
    /// Elements without a key or not an object.
    pub skipped_items: u64,
    pub duplicates: u64,
    /// Elements excluded by the status or type rule.
    pub not_kept: u64,
    pub(crate) duration_ms: i64,
}

impl InventorySummary {
    fn new(report: PollReport, kept: usize) -> Self {
        InventorySummary {
            kept,
            skipped_items: report.skipped.no_key
                + report.skipped.not_object
                + report.skipped.too_deep,
            duplicates: report.skipped.duplicates,
            not_kept: report.skipped.not_kept,
            duration_ms: (report.finished - report.started).num_milliseconds(),
            report,
        }
    }
}

/// Runs the three full passes concurrently over `cache`, journalling each applied pass to
/// `journal` (the store) when given. The map is keyed by inventory name.
pub async fn sync_once(
    cfg: Arc<Config>,
    cache: Cache,
    journal: Option<Journal>,
) -> Result<BTreeMap<Inventory, InventorySummary>, ClientError> {
    let upstream = Upstream::new(cfg.clone())?;
    let mut tasks = tokio::task::JoinSet::new();
    for inv in Inventory::ALL {
        let mut poller = Poller::new(inv, &cfg, upstream.clone(), cache.clone(), Clock::System);
        if let Some(journal) = &journal {
            poller = poller.with_journal(journal.clone());
        }
        let cache = cache.clone();
        tasks.spawn(async move {
            let report = poller.poll(PollPlan::Full(FullReason::Requested)).await;
            (inv, InventorySummary::new(report, cache.len(inv)))
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (inv, summary) = joined.expect("a poll task does not panic");
        out.insert(inv, summary);
    }
    Ok(out)
}

/// True when every inventory's pass retrieved every page.
pub(crate) fn all_complete(summary: &BTreeMap<Inventory, InventorySummary>) -> bool {
    summary
        .values()
        .all(|s| s.report.outcome == Outcome::Complete)
}

/// The command: loads the store (if any), runs the passes, writes the store, prints the summary
/// as JSON on stdout. Exit 1 if any inventory failed or skipped pages.
pub async fn command(cfg: Arc<Config>) -> std::process::ExitCode {
    use std::process::ExitCode;
    logging::init(&cfg.log);
    let cache = Cache::new();
    let (journal, writer) = match open_store(&cfg, &cache) {
        Ok(opened) => opened.unzip(),
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = sync_once(cfg, cache, journal).await;
    if let Some(writer) = writer {
        writer.finish().await;
    }
    match result {
        Ok(summary) => {
            let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
            if let Err(e) = super::print_stdout(&(text + "\n")) {
                eprintln!("error: writing the summary to stdout: {e}");
                return ExitCode::FAILURE;
            }
            if all_complete(&summary) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Fidelity under churn: the upstream pages by offset with no snapshot, so items deleted in
//! front of a listing's cursor make later pages start further on and items slide past unseen.
//! A full pass must still never remove an item that was live upstream for the whole pass.
//!
//! The simulator changes its data while a listing runs (`FaultKind::Churn`: deletions and
//! inserts among the items already listed, just before a given page is served), and every
//! scenario checks the cache key by key against the simulator's own data.
//!
//! The scenarios that assert exact counts (candidates, recovered, pages, requests) list one
//! page at a time (`poll.pages_in_flight = 1`): with pages requested ahead, which of the pages
//! before the churned one the simulator had already served when the data changed depends on
//! timing, and so do the counts. The invariants (no live item dropped, nothing invented,
//! convergence) are checked with pages in flight too.

mod common;

use common::*;
use serde_json::Value;
use ses_inventory::Inventory::{self, Services};
use ses_inventory::cache::Cache;
use ses_inventory::model::status::{Churn, Outcome, PollKind};
use ses_inventory::source::Upstream;
use ses_inventory::sync::Poller;
use ses_inventory::sync::window::{FullReason, PollPlan};
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Fault, FaultKind, SimConfig, Simulator};
use std::collections::BTreeSet;
use std::sync::Arc;

const RESYNC: PollPlan = PollPlan::Full(FullReason::Resync);

/// Before page `page` of the next matching listing(s) is served, `deletes` of the items already
/// listed are deleted and `inserts` new ones inserted among them.
fn churn(page: u32, deletes: usize, inserts: usize, times: u32) -> Fault {
    Fault {
        inventory: Some(Services.into()),
        page: Some(page),
        refresh_only: false,
        kind: FaultKind::Churn { deletes, inserts },
        times: Some(times),
    }
}

/// The simulator's services, by key (every crafted service is Operational, so all are kept).
fn upstream_keys(sim: &Simulator) -> BTreeSet<String> {
    sim.items(Services)
        .iter()
        .map(|v| v["externalId"].as_str().expect("crafted key").to_owned())
        .collect()
}

fn cached(cache: &Cache) -> BTreeSet<String> {
    keys(cache, Services).into_iter().collect()
}

fn requests_for(sim: &Simulator, inv: Inventory) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.inventory == Some(inv.into()))
        .count()
}

/// A simulator holding `n` Operational services and a cache warmed by one quiet full pass, with
/// listings of `pages_in_flight`.
async fn warm(n: usize, pages_in_flight: u32) -> (Simulator, ses_inventory::config::Config, Cache) {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.poll.pages_in_flight = pages_in_flight;
    sim.set_items(Services, services(n));
    let cache = Cache::new();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!((r.outcome, cache.len(Services)), (Outcome::Complete, n));
    (sim, cfg, cache)
}

#[tokio::test]
async fn a_first_buildup_that_saw_deletions_is_confirmed_before_it_is_ready() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.poll.pages_in_flight = 1; // exact counts: see the top of this file
    sim.set_items(Services, services(400));
    sim.inject(churn(6, 20, 0, 1));
    let cache = Cache::new();
    let r = poll(&cfg, Services, &cache, FULL).await;

    // The first listing read 200 items, then 20 of them were deleted: the next 20 slid onto
    // page 5 unseen. The total moved (400 -> 380), so a confirming listing ran and found them.
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(
        r.churn,
        Churn {
            shifted: true,
            candidates: 0,
            confirmations: 1,
            steady: Some(true),
            recovered: 20,
            confirmed_removed: 0,
            deferred: 0,
        }
    );
    assert_eq!(upstream_keys(&sim).len(), 380);
    assert_eq!(cached(&cache), upstream_keys(&sim));
    assert!(cache.is_ready(Services));
    assert_eq!((r.added, r.removed), (380, 0));
    // Two listings of 10 pages (the tenth short: 20 items), 380 elements each.
    assert_eq!((r.pages, r.received), (20, 760));
}

/// The scenario from the field: ~2,850 services, deletions and inserts while the pass is on
/// page 30 of 72, one page at a time. Returns the pass's churn report.
async fn full_pass_with_churn_at_page_30(deletes: usize, inserts: usize) -> Churn {
    full_pass_with_churn_at_page_30_in_flight(deletes, inserts, 1).await
}

async fn full_pass_with_churn_at_page_30_in_flight(
    deletes: usize,
    inserts: usize,
    pages_in_flight: u32,
) -> Churn {
    let (sim, cfg, cache) = warm(2850, pages_in_flight).await;
    let before = upstream_keys(&sim);
    sim.inject(churn(30, deletes, inserts, 1));
    let r = poll(&cfg, Services, &cache, RESYNC).await;
    let after = upstream_keys(&sim);
    assert_eq!(after.len(), 2850 - deletes + inserts);

    let live_throughout: BTreeSet<String> = before.intersection(&after).cloned().collect();
    let now = cached(&cache);
    let missing: Vec<&String> = live_throughout.difference(&now).collect();
    assert!(missing.is_empty(), "live items dropped: {missing:?}");
    // The confirming listing was steady, so the cache is exactly the upstream now.
    assert_eq!(cached(&cache), after);
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(r.removed, deletes as u64);
    r.churn
}

#[tokio::test]
async fn twenty_deletions_and_ten_inserts_in_front_of_the_cursor_lose_no_live_item() {
    // Net, the items after the cursor moved back by 10: the first listing missed 10 cached
    // items (the candidates), the confirming listing returned them and the 10 new ones, and
    // the 20 deleted ones (seen by the first listing, absent from the steady second) went.
    let churn = full_pass_with_churn_at_page_30(20, 10).await;
    assert_eq!(
        churn,
        Churn {
            shifted: true,
            candidates: 10,
            confirmations: 1,
            steady: Some(true),
            recovered: 20,
            confirmed_removed: 20,
            deferred: 0,
        }
    );
}

#[tokio::test]
async fn with_pages_in_flight_deletions_and_inserts_lose_no_live_item() {
    // Eight pages requested ahead: when page 30 is served, some of pages 23 to 29 may not have
    // been yet, so items move under pages already requested, not only in front of the cursor.
    // Whatever the counts, the total moved (20 out, 10 in), so the pass is confirmed by a quiet
    // listing: no live item is dropped and the cache ends exactly as the upstream is.
    let churn = full_pass_with_churn_at_page_30_in_flight(20, 10, 8).await;
    assert!(churn.shifted, "{churn:?}");
    assert_eq!(
        (churn.confirmations, churn.steady, churn.deferred),
        (1, Some(true), 0)
    );
    assert_eq!(churn.confirmed_removed, 20);
}

#[tokio::test]
async fn sixty_deletions_in_front_of_the_cursor_lose_no_live_item() {
    let churn = full_pass_with_churn_at_page_30(60, 0).await;
    assert_eq!(
        (churn.candidates, churn.recovered, churn.confirmed_removed),
        (60, 60, 60)
    );
}

#[tokio::test]
async fn inserts_in_front_of_the_cursor_are_noticed_and_the_new_items_found() {
    let churn = full_pass_with_churn_at_page_30(0, 10).await;
    // The 10 items before the boundary were served twice (repeats), the new ones unseen.
    assert_eq!(
        (churn.shifted, churn.candidates, churn.recovered),
        (true, 0, 10)
    );
}

#[tokio::test]
async fn a_confirming_listing_that_shifts_too_removes_nothing_and_defers() {
    let (sim, cfg, cache) = warm(400, 1).await;
    let before = upstream_keys(&sim);
    // The same change hits both listings.
    sim.inject(churn(6, 20, 0, 2));
    let r = poll(&cfg, Services, &cache, RESYNC).await;
    let after = upstream_keys(&sim);
    assert_eq!(after.len(), 360);

    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(
        r.removed, 0,
        "nothing is removed on an unsteady confirmation"
    );
    // Everything cached before is still there: 20 + 20 deleted items wait for confirmation.
    assert_eq!(cached(&cache), before);
    assert_eq!(
        r.churn,
        Churn {
            shifted: true,
            candidates: 20,
            confirmations: 1,
            steady: Some(false),
            recovered: 20,
            confirmed_removed: 0,
            deferred: 40,
        }
    );
    let status = cache.status(Services);
    assert!(status.recheck);
    assert_eq!(status.unconfirmed, 40);

    // The next full pass (the poller plans one: see the paused-clock test below) settles them.
    let r = poll(
        &cfg,
        Services,
        &cache,
        PollPlan::Full(FullReason::Unconfirmed),
    )
    .await;
    assert_eq!(cached(&cache), after);
    assert_eq!((r.removed, r.churn.confirmed_removed), (40, 40));
    assert!(!cache.status(Services).recheck);
}

#[tokio::test(start_paused = true)]
async fn after_an_unsteady_confirmation_the_next_poll_is_a_full_pass() {
    let sim = Simulator::start_on_thread(SimConfig::empty()).expect("sim starts");
    let cfg = config(&sim, &SimConfig::empty());
    sim.set_items(Services, services(400));
    // The first buildup and its confirming listing both shift.
    sim.inject(churn(6, 20, 0, 2));
    let cache = Cache::new();
    let mut polls = cache.watch_polls();
    let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
    let poller = Poller::new(
        Services,
        upstream,
        cache.clone(),
        Clock::tokio_at(chrono::Utc::now()),
    );
    let task = tokio::spawn(poller.run());
    // The buildup, then the poll one cache_update_frequency later (the clock jumps to it).
    for _ in 0..2 {
        polls.changed().await.expect("poller alive");
    }
    task.abort();
    let last = cache.status(Services).last_full.expect("a full pass ran");
    assert_eq!(last.reason, Some(FullReason::Unconfirmed));
    assert_eq!(last.kind, PollKind::Full);
    assert!(cache.status(Services).last_refresh.is_none());
    assert_eq!(cached(&cache), upstream_keys(&sim));
    assert!(!cache.status(Services).recheck);
}

#[tokio::test]
async fn quiet_full_passes_cost_no_extra_request() {
    // Exact request counts: one page at a time, nothing requested past the end (with pages in
    // flight, up to pages_in_flight - 1 more: tests/inflight.rs).
    let (sim, cfg, cache) = warm(400, 1).await;
    let before = requests_for(&sim, Services);
    let r = poll(&cfg, Services, &cache, RESYNC).await;
    // 10 full pages and the empty one that ends the listing; nothing else.
    assert_eq!(requests_for(&sim, Services) - before, 11);
    assert_eq!(r.churn, Churn::default());

    // Deletions between two passes are candidates: one confirming listing removes them.
    let mut items = sim.items(Services);
    let gone: Vec<Value> = items.drain(100..105).collect();
    sim.set_items(Services, items);
    let before = requests_for(&sim, Services);
    let r = poll(&cfg, Services, &cache, RESYNC).await;
    assert_eq!(requests_for(&sim, Services) - before, 20);
    assert_eq!(
        (r.churn.candidates, r.churn.confirmed_removed, r.removed),
        (5, 5, 5)
    );
    assert_eq!(cache.len(Services), 395);
    for item in gone {
        assert!(
            cache
                .get(Services, item["externalId"].as_str().unwrap())
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_refresh_during_churn_takes_every_update_and_never_sweeps() {
    let (sim, cfg, cache) = warm(400, 1).await;
    // Every service is renamed upstream (lastUpdate = now, so the refresh returns them all).
    let renamed: Vec<Value> = sim
        .items(Services)
        .into_iter()
        .map(|mut v| {
            v["name"] = format!("{} v2", v["name"].as_str().unwrap()).into();
            v
        })
        .collect();
    sim.set_items(Services, renamed);
    sim.inject(Fault {
        refresh_only: true,
        ..churn(6, 20, 0, 1)
    });
    let r = poll(&cfg, Services, &cache, PollPlan::Refresh { days_ago: 0 }).await;
    assert_eq!(r.kind, PollKind::Refresh);
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(
        (r.churn.shifted, r.churn.confirmations, r.churn.recovered),
        (true, 1, 20)
    );
    // Every live item was changed: 380 by the first listing, the 20 it missed by the second.
    assert_eq!((r.added, r.updated), (0, 400));
    // A refresh cannot see deletions and removes nothing: the 20 deleted stay until a full pass.
    assert_eq!(r.removed, 0);
    assert_eq!(cache.len(Services), 400);
    // Every live item carries its update, the 20 that slid past the first listing included.
    for key in upstream_keys(&sim) {
        let item = cache.get(Services, &key).unwrap();
        let name = item.cell_by_name("name").and_then(|c| c.to_text());
        let name = name.unwrap_or_default();
        assert_eq!(name, format!("Service {key} v2"));
    }
}

/// A small deterministic generator (SplitMix64), so a failing case can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Random interleavings of deletions, inserts and page fetches: whatever happens during a full
/// pass, an item live upstream for the whole pass is never removed from a warm cache, nothing
/// is invented, and once the upstream is quiet again the cache converges to it exactly.
#[tokio::test]
async fn random_churn_never_removes_an_item_that_was_live_throughout() {
    random_churn("X-Total-Count", 1).await;
}

/// The same against an upstream that sends no total: churn is then judged from keys alone.
#[tokio::test]
async fn random_churn_without_a_total_header_never_removes_a_live_item() {
    random_churn("", 1).await;
}

/// Both again with pages requested ahead, whose answers the simulator serves in any order.
#[tokio::test]
async fn random_churn_with_pages_in_flight_never_removes_a_live_item() {
    random_churn("X-Total-Count", 4).await;
}

#[tokio::test]
async fn random_churn_with_pages_in_flight_and_no_total_never_removes_a_live_item() {
    random_churn("", 4).await;
}

async fn random_churn(total_count_header: &str, pages_in_flight: u32) {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.poll.records_per_page = 10;
    cfg.poll.total_count_header = total_count_header.into();
    cfg.poll.pages_in_flight = pages_in_flight;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed);
        let n = 30 + rng.below(120) as usize;
        sim.clear_faults();
        sim.set_items(Services, services(n));
        let cache = Cache::new();
        let warm = rng.below(4) != 0; // a quarter of the cases are first buildups
        if warm {
            poll(&cfg, Services, &cache, FULL).await;
        }
        let pages = (n / 10 + 1) as u64;
        for _ in 0..1 + rng.below(3) {
            sim.inject(Fault {
                inventory: Some(Services.into()),
                page: Some(2 + rng.below(pages) as u32),
                refresh_only: false,
                kind: FaultKind::Churn {
                    deletes: rng.below(12) as usize,
                    inserts: rng.below(8) as usize,
                },
                times: Some(1 + rng.below(2) as u32),
            });
        }
        let before = upstream_keys(&sim);
        let r = poll(&cfg, Services, &cache, RESYNC).await;
        let after = upstream_keys(&sim);
        let now = cached(&cache);
        assert_eq!(r.outcome, Outcome::Complete, "seed {seed}");
        // Items the simulator created during the pass are named CHURN-<n>; some of them may
        // have been deleted again before it ended.
        let invented: Vec<&String> = now
            .iter()
            .filter(|k| !before.contains(*k) && !after.contains(*k) && !k.starts_with("CHURN-"))
            .collect();
        assert!(
            invented.is_empty(),
            "seed {seed}: invented items {invented:?}"
        );
        if warm {
            let dropped: Vec<&String> = before
                .intersection(&after)
                .filter(|k| !now.contains(*k))
                .collect();
            assert!(
                dropped.is_empty(),
                "seed {seed}: live items dropped {dropped:?}"
            );
        }
        // Quiet again: at most two more full passes (a recheck, then a steady one) converge.
        sim.clear_faults();
        for _ in 0..2 {
            poll(&cfg, Services, &cache, RESYNC).await;
        }
        assert_eq!(cached(&cache), after, "seed {seed}: did not converge");
    }
}

#[tokio::test]
async fn a_confirming_listing_that_fails_removes_nothing_and_rechecks() {
    let (sim, cfg, cache) = warm(400, 1).await;
    // Ten services go between two passes: candidates for the next one.
    let items: Vec<Value> = sim
        .items(Services)
        .into_iter()
        .filter(|v| !v["externalId"].as_str().unwrap().starts_with("SVC-030"))
        .collect();
    assert_eq!(items.len(), 390);
    sim.set_items(Services, items);
    // The first listing's page 3 passes (the no-op fault is used up); the confirming listing's
    // page 3 fails every attempt.
    sim.inject(Fault {
        times: Some(1),
        ..churn(3, 0, 0, 1)
    });
    sim.inject(Fault {
        inventory: Some(Services.into()),
        page: Some(3),
        refresh_only: false,
        kind: FaultKind::Status {
            code: 500,
            retry_after: None,
        },
        times: Some(cfg.http.retry_attempts),
    });
    let r = poll(&cfg, Services, &cache, RESYNC).await;
    assert_eq!(r.outcome, Outcome::Complete, "the first listing was whole");
    assert_eq!(r.removed, 0);
    assert_eq!(cache.len(Services), 400);
    assert_eq!(
        (r.churn.candidates, r.churn.steady, r.churn.deferred),
        (10, Some(false), 10)
    );
    assert!(cache.status(Services).recheck);
}

#[tokio::test]
async fn a_merged_poll_takes_what_only_the_confirming_listing_saw() {
    let (sim, cfg, cache) = warm(400, 1).await;
    // Two changes land where the first listing's cursor will skip (positions 200..219, once
    // twenty earlier items are deleted under it): a new service, and one no longer Operational.
    let mut items = sim.items(Services);
    items[209]["status"] = "Terminated".into();
    items.insert(205, service("SVC-NEW", "Operational"));
    sim.set_items(Services, items);
    // Both listings shift, so the poll merges them.
    sim.inject(churn(6, 20, 0, 2));
    let r = poll(&cfg, Services, &cache, RESYNC).await;
    assert_eq!(r.churn.steady, Some(false));
    assert_eq!((r.added, r.removed, r.skipped.not_kept), (1, 1, 1));
    assert!(cache.get(Services, "SVC-NEW").is_some());
    assert!(cache.get(Services, "SVC-0210").is_none());
}

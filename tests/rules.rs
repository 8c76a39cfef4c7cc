//! The sync rules operators rely on, each pinned by a test that fails when the rule breaks:
//! what a refresh, an incomplete poll and a failed poll may change, where the refresh window is
//! anchored, how long a failing poller waits, and which copy of a key wins.
//!
//! Expected values are written from the contract (literal keys, counts, delays), never computed
//! by the code under test. Timing tests run the poller on tokio's paused clock against a
//! simulator on its own thread; a [`Hold`] stops a poll at a known page instead of a delay.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use serde_json::{Value, json};
use ses_inventory::Inventory::{self, Resources, Services};
use ses_inventory::cache::Cache;
use ses_inventory::config::Config;
use ses_inventory::model::status::{FullReason, Outcome, PollKind, PollReport};
use ses_inventory::source::Upstream;
use ses_inventory::sync::Poller;
use ses_inventory::sync::daemon::{Daemon, RequestOutcome};
use ses_inventory::sync::window::PollPlan;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Fault, FaultKind, Hold, SimConfig, Simulator};
use std::sync::Arc;
use std::time::Duration;

const REFRESH: PollPlan = PollPlan::Refresh { days_ago: 0 };

/// An Operational service last updated `days` days ago: outside a refresh's window.
fn aged(id: &str, days: i64) -> Value {
    let mut s = service(id, "Operational");
    s["lastUpdate"] = json!((Utc::now() - chrono::Duration::days(days)).to_rfc3339());
    s
}

fn name_of(cache: &Cache, key: &str) -> Option<String> {
    cache
        .get(Services, key)?
        .row()
        .cell_by_name("name")?
        .to_text()
}

/// `SVC-0001`..: the keys `services(n)` creates, written out.
fn svc_keys(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("SVC-{i:04}")).collect()
}

/// Pages of `inv` the simulator was asked for, in order, with `updatedDaysAgo` if any.
fn pages(sim: &Simulator, inv: Inventory) -> Vec<(u32, Option<u32>)> {
    sim.requests()
        .iter()
        .filter(|r| r.inventory == Some(inv.into()))
        .map(|r| (r.page.unwrap(), r.updated_days_ago))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What a poll may change
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refresh_never_sweeps_what_it_did_not_return() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(
        Services,
        vec![
            aged("OLD-1", 10),
            service("NEW-1", "Operational"),
            aged("OLD-2", 40),
            aged("OLD-3", 3),
            service("NEW-2", "Operational"),
        ],
    );
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!((r.outcome, cache.len(Services)), (Outcome::Complete, 5));

    // The refresh returns only the two recent items (the simulator filters by lastUpdate).
    let r = poll(&cfg, Services, &cache, REFRESH).await;
    assert_eq!((r.kind, r.outcome), (PollKind::Refresh, Outcome::Complete));
    assert_eq!(r.received, 2, "the refresh saw a subset");
    assert_eq!(sim.requests().last().unwrap().items, 2);
    assert_eq!(r.removed, 0);
    assert_eq!(
        keys(&cache, Services),
        ["NEW-1", "NEW-2", "OLD-1", "OLD-2", "OLD-3"],
        "items outside the refresh window stay cached"
    );
}

#[tokio::test]
async fn an_incomplete_poll_neither_advances_the_anchor_nor_sweeps() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    let mut p = poller(&cfg, Services, &cache);
    sim.set_items(Services, services(100)); // pages of 40: 1-40, 41-80, 81-100
    let first = p.poll(FULL).await;
    assert_eq!(first.outcome, Outcome::Complete);
    let anchored = cache.status(Services).times;
    assert_eq!(anchored.window_anchor, Some(first.started));
    assert_eq!(anchored.last_complete_full, Some(first.started));

    // SVC-0001 disappears upstream and page 2 keeps answering 504.
    sim.set_items(Services, services(100).split_off(1));
    sim.inject(Fault::on(Services, Some(2), FaultKind::status(504), None));
    let r = p.poll(FULL).await;
    assert_eq!(
        (r.outcome, r.skipped_pages.clone()),
        (Outcome::Incomplete, vec![2])
    );
    assert_eq!(r.removed, 0);
    assert_eq!(cache.len(Services), 100);
    assert!(cache.get(Services, "SVC-0001").is_some(), "not swept");
    assert_eq!(
        cache.status(Services).times,
        anchored,
        "an incomplete full pass moves neither the anchor nor the last complete full pass"
    );

    // The same for an incomplete refresh.
    let r = p.poll(REFRESH).await;
    assert_eq!(
        (r.kind, r.outcome),
        (PollKind::Refresh, Outcome::Incomplete)
    );
    assert_eq!(
        cache.status(Services).times,
        anchored,
        "refresh: anchor kept"
    );
    assert!(cache.get(Services, "SVC-0001").is_some());

    // Once every page answers, the anchor moves to that poll's start.
    sim.clear_faults();
    let r = p.poll(REFRESH).await;
    assert_eq!(r.outcome, Outcome::Complete);
    let times = cache.status(Services).times;
    assert_eq!(times.window_anchor, Some(r.started));
    assert_eq!(times.last_complete_full, Some(first.started));
}

/// Upstream changes on pages 1 and 2 of 5; then page 3 fails for good.
fn changed_on_early_pages() -> Vec<Value> {
    let mut items = services(200);
    items[0]["name"] = json!("renamed on page 1");
    items[44]["name"] = json!("renamed on page 2");
    items[1]["status"] = json!("Terminated");
    items.insert(3, service("SVC-NEW", "Operational"));
    items.pop(); // SVC-0200 is gone
    items
}

#[tokio::test]
async fn a_failed_poll_applies_nothing_not_even_the_pages_that_arrived() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(Services, services(200));
    assert_eq!(
        poll(&cfg, Services, &cache, FULL).await.outcome,
        Outcome::Complete
    );
    let before = sim.requests().len();

    sim.set_items(Services, changed_on_early_pages());
    sim.inject(Fault::on(Services, Some(3), FaultKind::status(502), None));
    for plan in [FULL, REFRESH] {
        let r = poll(&cfg, Services, &cache, plan).await;
        assert_eq!(r.outcome, Outcome::Failed, "{plan:?}");
        assert!(r.error.as_deref().unwrap().contains("page 3"), "{r:?}");
        assert_eq!((r.added, r.updated, r.removed), (0, 0, 0), "{plan:?}");
        // Pages 1 and 2 did arrive, with the changes on them.
        let answered: Vec<(u32, u16, usize)> = sim.requests()[before..]
            .iter()
            .map(|r| (r.page.unwrap(), r.status, r.items))
            .collect();
        assert!(answered.contains(&(1, 200, 40)) && answered.contains(&(2, 200, 40)));
        // ... and none of them is in the cache.
        assert_eq!(
            name_of(&cache, "SVC-0001").as_deref(),
            Some("Service SVC-0001")
        );
        assert_eq!(
            name_of(&cache, "SVC-0045").as_deref(),
            Some("Service SVC-0045")
        );
        assert!(cache.get(Services, "SVC-0002").is_some(), "not removed");
        assert!(cache.get(Services, "SVC-NEW").is_none(), "not added");
        assert!(cache.get(Services, "SVC-0200").is_some(), "not swept");
        assert_eq!(keys(&cache, Services), svc_keys(1..=200));
    }
}

#[tokio::test]
async fn a_not_kept_first_occurrence_still_claims_its_key() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(
        Services,
        vec![
            service("SVC-1", "Operational"),
            service("SVC-2", "Operational"),
        ],
    );
    poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(keys(&cache, Services), ["SVC-1", "SVC-2"]);

    // SVC-1 is now listed Terminated first and Operational later: the first occurrence wins,
    // so SVC-1 is not kept (and is removed), even by a refresh.
    let mut late = service("SVC-1", "Operational");
    late["name"] = json!("the later, kept copy");
    sim.set_items(
        Services,
        vec![
            service("SVC-1", "Terminated"),
            service("SVC-2", "Operational"),
            late,
        ],
    );
    for plan in [REFRESH, FULL] {
        let r = poll(&cfg, Services, &cache, plan).await;
        assert_eq!(r.outcome, Outcome::Complete);
        assert_eq!(
            (r.skipped.not_kept, r.skipped.duplicates),
            (1, 1),
            "{plan:?}"
        );
        assert_eq!(keys(&cache, Services), ["SVC-2"], "{plan:?}");
    }
}

#[tokio::test]
async fn status_and_type_rules_ignore_case_and_surrounding_blanks() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(
        Services,
        vec![
            service("S-UPPER", "OPERATIONAL"),
            service("S-LOWER", "operational"),
            service("S-BLANKS", "  Operational\t"),
            service("S-TERMINATED", " terminated "),
            service("S-NEAR", "Operational-ish"),
        ],
    );
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(keys(&cache, Services), ["S-BLANKS", "S-LOWER", "S-UPPER"]);
    assert_eq!(r.skipped.not_kept, 2);

    sim.set_items(
        Resources,
        vec![
            resource("R-CARD", "CARD"),
            resource("R-PORT", " port "),
            resource("R-SEGMENT", "bandwidthsegment"),
            resource("R-CIRCUIT", "Circuit\n"),
            resource("R-ANTENNA", "antenna"),
            resource("R-PORTAL", "Portal"),
        ],
    );
    let r = poll(&cfg, Resources, &cache, FULL).await;
    assert_eq!(keys(&cache, Resources), ["R-ANTENNA", "R-PORTAL"]);
    assert_eq!(r.skipped.not_kept, 4);
}

#[tokio::test]
async fn max_pages_bounds_a_pass_and_applies_nothing_beyond_it() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(Services, services(100)); // three pages: 40, 40, 20
    cfg.poll.max_pages = 2;
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("more than poll.max_pages (2) pages without a short page")
    );
    assert_eq!(pages(&sim, Services), [(1, None), (2, None)]);
    assert!((cache.len(Services) == 0) && !cache.is_ready(Services));

    cfg.poll.max_pages = 3;
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!((r.outcome, r.pages), (Outcome::Complete, 3));
    assert_eq!(cache.len(Services), 100);
}

// ---------------------------------------------------------------------------------------------
// Readers never see half a poll (a Hold stops the poll between two pages)
// ---------------------------------------------------------------------------------------------

/// Runs `plan` while page `held_page` is held, checks the cache is exactly `before` while the
/// poll is stuck there (its earlier pages received), releases it and returns the report.
async fn poll_held_at(
    sim: &Simulator,
    cfg: &Config,
    cache: &Cache,
    plan: PollPlan,
    held_page: u32,
    before: &[String],
) -> PollReport {
    let hold = Hold::new();
    sim.inject(Fault::on(
        Services,
        Some(held_page),
        FaultKind::Hold(hold.clone()),
        Some(1),
    ));
    let mut p = poller(cfg, Services, cache);
    let task = tokio::spawn(async move { p.poll(plan).await });
    tokio::time::timeout(Duration::from_secs(30), hold.arrived(1))
        .await
        .expect("the poll reaches the held page");
    assert_eq!(keys(cache, Services), before, "a reader saw part of a poll");
    for k in before {
        assert!(
            name_of(cache, k).unwrap().starts_with("Service "),
            "{k} changed before the poll ended"
        );
    }
    hold.release();
    task.await.unwrap()
}

#[tokio::test]
async fn readers_never_see_half_a_refresh_or_half_an_incomplete_pass() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(Services, services(100));
    poll(&cfg, Services, &cache, FULL).await;
    let all = svc_keys(1..=100);

    // A refresh of three pages: renames on page 1, a new item on page 2, a removal on page 3.
    let mut items = services(100);
    items[0]["name"] = json!("renamed");
    items.insert(50, service("SVC-NEW", "Operational"));
    items[95]["status"] = json!("Terminated"); // SVC-0095
    sim.set_items(Services, items.clone());
    let r = poll_held_at(&sim, &cfg, &cache, REFRESH, 3, &all).await;
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(name_of(&cache, "SVC-0001").as_deref(), Some("renamed"));
    assert!(cache.get(Services, "SVC-NEW").is_some());
    assert!(cache.get(Services, "SVC-0095").is_none());
    let after_refresh = keys(&cache, Services);
    assert_eq!(after_refresh.len(), 100);

    // An incomplete full pass: page 2 answers 504 for good, page 3 is held; then all of it at
    // once (page 1 and 3's changes applied, nothing swept).
    let mut items = services(100);
    items[1]["name"] = json!("renamed too"); // SVC-0002, page 1
    items[99]["name"] = json!("renamed on page 3"); // SVC-0100
    sim.set_items(Services, items);
    sim.inject(Fault::on(Services, Some(2), FaultKind::status(504), None));
    let before = after_refresh;
    let hold = Hold::new();
    sim.inject(Fault::on(
        Services,
        Some(3),
        FaultKind::Hold(hold.clone()),
        Some(1),
    ));
    let mut p = poller(&cfg, Services, &cache);
    let task = tokio::spawn(async move { p.poll(FULL).await });
    tokio::time::timeout(Duration::from_secs(30), hold.arrived(1))
        .await
        .expect("the pass reaches page 3");
    assert_eq!(keys(&cache, Services), before);
    assert_eq!(
        name_of(&cache, "SVC-0002").as_deref(),
        Some("Service SVC-0002")
    );
    hold.release();
    let r = task.await.unwrap();
    assert_eq!(
        (r.outcome, r.skipped_pages.clone()),
        (Outcome::Incomplete, vec![2])
    );
    assert_eq!(name_of(&cache, "SVC-0002").as_deref(), Some("renamed too"));
    assert_eq!(
        name_of(&cache, "SVC-0100").as_deref(),
        Some("renamed on page 3")
    );
    // SVC-0001 was renamed back upstream (page 1) and SVC-NEW is no longer listed; SVC-0095
    // is back: applied as upserts, nothing swept.
    assert_eq!(
        name_of(&cache, "SVC-0001").as_deref(),
        Some("Service SVC-0001")
    );
    assert!(cache.get(Services, "SVC-NEW").is_some(), "no sweep");
    assert!(cache.get(Services, "SVC-0095").is_some());
}

// ---------------------------------------------------------------------------------------------
// Requests made while a poll runs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refresh_request_joins_a_running_refresh_and_a_full_request_runs_right_after() {
    let (sim, sc) = empty_sim().await;
    sim.set_items(Services, services(3));
    let daemon = Daemon::start(Arc::new(config(&sim, &sc)), Clock::System).unwrap();
    let control = daemon.control();
    let cache = daemon.cache().clone();
    tokio::time::timeout(Duration::from_secs(30), cache.wait_ready(Services))
        .await
        .unwrap();
    // The buildup is followed at once by its settling pass; then the poller is idle.
    settled(&cache, Services, 30).await;
    let before = pages(&sim, Services).len();
    let mut polls = cache.watch_polls();
    polls.mark_unchanged();

    let hold = Hold::new();
    sim.inject(Fault {
        refresh_only: true,
        ..Fault::on(Services, Some(1), FaultKind::Hold(hold.clone()), Some(1))
    });
    assert_eq!(
        control.request_poll(Services, false),
        RequestOutcome::Queued
    );
    tokio::time::timeout(Duration::from_secs(30), hold.arrived(1))
        .await
        .expect("the requested refresh starts");
    // During the refresh: another refresh joins it; a full pass cannot, and is queued.
    assert_eq!(
        control.request_poll(Services, false),
        RequestOutcome::Joined
    );
    assert_eq!(control.request_poll(Services, true), RequestOutcome::Queued);
    hold.release();

    // The full pass follows the refresh at once (not a cache_update_frequency later).
    tokio::time::timeout(Duration::from_secs(30), async {
        while cache.status(Services).last_full.as_ref().unwrap().reason
            != Some(ses_inventory::model::status::FullReason::Requested)
        {
            polls.changed().await.unwrap();
        }
    })
    .await
    .expect("the full pass ran right after the refresh");
    assert_eq!(
        pages(&sim, Services)[before..],
        [(1, Some(0)), (1, None)],
        "one refresh (the joined request ran none of its own), then the full pass"
    );
    daemon.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Timeouts (real clock: a reqwest timeout cannot run on a paused clock)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_timed_out_page_is_retried_and_a_page_that_always_times_out_fails_the_poll() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.http.timeout = 1;
    cfg.http.retry_attempts = 2;
    let cache = Cache::new();
    sim.set_items(Services, services(50));

    // Only the first attempt at page 1 is slower than the timeout: the retry gets it.
    sim.inject(Fault::on(
        Services,
        Some(1),
        FaultKind::Delay(Duration::from_secs(3)),
        Some(1),
    ));
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Complete, "{:?}", r.error);
    assert_eq!(cache.len(Services), 50);
    let answered: Vec<(u32, usize)> = sim
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| (r.page.unwrap(), r.items))
        .collect();
    assert!(answered.contains(&(1, 40)) && answered.contains(&(2, 10)));

    // Every attempt times out: the poll fails after the configured attempts, naming why.
    sim.inject(Fault::on(
        Services,
        Some(1),
        FaultKind::Delay(Duration::from_secs(3)),
        None,
    ));
    let r = poll(&cfg, Services, &Cache::new(), FULL).await;
    assert_eq!(r.outcome, Outcome::Failed);
    let err = r.error.unwrap();
    assert!(
        err.starts_with("page 1 failed after 2 attempt(s): timed out waiting for"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Timing, on tokio's paused clock
// ---------------------------------------------------------------------------------------------

fn paused_sim(sc: SimConfig) -> Simulator {
    let sim = Simulator::start_on_thread(sc).expect("sim starts");
    sim.set_items(Services, services(3));
    sim
}

/// The services poller running on a clock that follows tokio's (paused) one, from `at`.
fn spawn_run(cfg: Config, cache: &Cache, at: DateTime<Utc>) -> tokio::task::JoinHandle<()> {
    let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
    let poller = Poller::new(Services, &cfg, upstream, cache.clone(), Clock::tokio_at(at));
    tokio::spawn(poller.run())
}

/// Waits for the next finished poll of services and returns its report and the delay it
/// scheduled (next poll minus the poll's end, both read from the paused clock).
async fn next_schedule(
    cache: &Cache,
    polls: &mut tokio::sync::watch::Receiver<u64>,
) -> (PollReport, chrono::Duration) {
    // No timeout here: on a paused clock a pending timer fires while the poller waits for the
    // simulator's (real-time) answer.
    polls.changed().await.unwrap();
    // The poller sets the next poll right after it reports the poll finished.
    for _ in 0..10_000 {
        let s = cache.status(Services);
        let last = [s.last_full.clone(), s.last_refresh.clone()]
            .into_iter()
            .flatten()
            .max_by_key(|r| r.finished)
            .expect("a poll report");
        if let Some(next) = s.next_poll.filter(|n| *n > last.finished) {
            return (last.clone(), next - last.finished);
        }
        tokio::task::yield_now().await;
    }
    panic!("no next poll scheduled");
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_wait_failure_backoff_max_at_once() {
    for code in [401u16, 403] {
        let mut sc = SimConfig::empty();
        let sim = paused_sim(sc.clone());
        if code == 401 {
            sc.tmf638_password = "wrong".into(); // the daemon sends this; the sim wants another
        } else {
            sim.inject(Fault::on(Services, None, FaultKind::status(403), None));
        }
        let mut cfg = config(&sim, &sc);
        cfg.poll.failure_backoff_initial = 30;
        cfg.poll.failure_backoff_max = 900;
        let cache = Cache::new();
        let mut polls = cache.watch_polls();
        let mut requests = sim.subscribe();
        let start = tokio::time::Instant::now();
        let task = spawn_run(cfg, &cache, Utc::now());
        let mut at = Vec::new();
        for n in 0..3 {
            let (r, delay) = next_schedule(&cache, &mut polls).await;
            // The poll took no tokio time (no retries): its request was sent now.
            while let Ok(req) = requests.try_recv() {
                assert_eq!(req.status, code);
                at.push(start.elapsed().as_secs());
            }
            assert!(r.credentials_rejected, "{code}: {r:?}");
            let err = r.error.unwrap();
            assert!(
                err.contains(&format!("tmf638 rejected the credentials (HTTP {code})")),
                "{err}"
            );
            assert_eq!(delay, secs(900), "{code}, poll {n}: the maximum, at once");
        }
        // What the upstream sees: one request every 15 minutes, no retries in between.
        assert_eq!(at, [0, 900, 1800], "{code}");
        task.abort();
        sim.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn failed_polls_back_off_from_30_seconds_doubling_to_15_minutes() {
    let sc = SimConfig::empty();
    let sim = paused_sim(sc.clone());
    let mut cfg = config(&sim, &sc);
    cfg.poll.failure_backoff_initial = 30;
    cfg.poll.failure_backoff_max = 900;
    sim.inject(Fault::on(Services, None, FaultKind::status(500), None));
    let cache = Cache::new();
    let mut polls = cache.watch_polls();
    let task = spawn_run(cfg, &cache, Utc::now());

    // Each delay is its ceiling scaled by a jitter factor in [0.5, 1].
    let in_jitter = |delay: chrono::Duration, ceiling: i64| {
        delay >= secs(ceiling) / 2 && delay <= secs(ceiling)
    };
    for ceiling in [30, 60, 120, 240, 480, 900, 900, 900] {
        let (r, delay) = next_schedule(&cache, &mut polls).await;
        assert_eq!(r.outcome, Outcome::Failed);
        assert!(
            in_jitter(delay, ceiling),
            "{delay:?} for a {ceiling} s ceiling"
        );
    }

    // A success resets the backoff: the next failure waits 15..30 s again. The first complete
    // pass is the buildup, followed at once by its settling pass; the refresh is due an hour
    // after that one started.
    sim.clear_faults();
    while !cache.status(Services).settled {
        polls.changed().await.unwrap();
    }
    let s = cache.status(Services);
    let r = s.last_full.clone().unwrap();
    assert_eq!(
        (r.reason, r.outcome),
        (Some(FullReason::Settling), Outcome::Complete)
    );
    assert_eq!(s.next_poll, Some(r.started + secs(3600)));
    sim.inject(Fault::on(Services, None, FaultKind::status(500), None));
    let (r, delay) = next_schedule(&cache, &mut polls).await;
    assert_eq!((r.kind, r.outcome), (PollKind::Refresh, Outcome::Failed));
    assert!(in_jitter(delay, 30), "{delay:?} after a reset");
    task.abort();
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_anchor_and_the_next_poll_follow_the_polls_start_not_its_end() {
    let sc = SimConfig::empty();
    let sim = paused_sim(sc.clone());
    let cfg = config(&sim, &sc);
    // The buildup takes no time; the settling pass that follows it at once gets a 429 with
    // Retry-After on its first page: it takes two minutes (tokio time).
    sim.inject(Fault {
        skip: 1,
        ..Fault::on(
            Services,
            Some(1),
            FaultKind::Status {
                code: 429,
                retry_after: Some("120".into()),
            },
            Some(1),
        )
    });
    let cache = Cache::new();
    let mut polls = cache.watch_polls();
    let mut requests = sim.subscribe();
    let t0 = Utc::now();
    let start = tokio::time::Instant::now();
    let task = spawn_run(cfg, &cache, t0);

    while !cache.status(Services).settled {
        polls.changed().await.unwrap();
    }
    let s = cache.status(Services);
    let r = s.last_full.clone().unwrap();
    assert_eq!(
        (r.kind, r.reason, r.outcome),
        (
            PollKind::Full,
            Some(FullReason::Settling),
            Outcome::Complete
        )
    );
    assert_eq!(
        r.started, t0,
        "the buildup and the settling pass started at once"
    );
    assert!(r.finished - r.started >= secs(120), "{r:?}");
    assert_eq!(s.times.window_anchor, Some(t0), "anchored at the start");
    assert_eq!(s.times.last_complete_full, Some(t0));
    assert_eq!(
        s.next_poll,
        Some(t0 + secs(3600)),
        "due an hour after the start"
    );

    // And the refresh is sent then: an hour after the start, two minutes before "an hour after
    // the end".
    let refresh_at = loop {
        let req = requests.recv().await.unwrap();
        if req.updated_days_ago.is_some() {
            break start.elapsed();
        }
    };
    assert!(
        refresh_at >= Duration::from_secs(3600) && refresh_at < Duration::from_secs(3601),
        "{refresh_at:?}"
    );
    task.abort();
    sim.shutdown().await;
}

//! Pages in flight (issue 10, "Fast sync"): a listing keeps `poll.pages_in_flight` pages
//! requested ahead and takes them in page order; each API has an adaptive limit of requests in
//! flight (`http.max_in_flight_per_api`) shared by its pollers, which halves when the upstream
//! throttles and pauses for a `Retry-After`.
//!
//! Against the simulator over loopback HTTP. What is in flight when is decided by holds (the
//! simulator keeps a request until the test releases it), never by a delay that is hoped to be
//! long enough; the simulator counts the requests in progress per API.

mod common;

use common::*;
use serde_json::json;
use ses_inventory::Inventory::{self, Carriers, Resources, Services};
use ses_inventory::cache::Cache;
use ses_inventory::model::status::Outcome;
use ses_inventory::source::Upstream;
use ses_inventory::sync::Poller;
use ses_inventory::sync::window::PollPlan;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Api, Fault, FaultKind, Hold, RequestRecord, SimConfig, Simulator};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// A fault on one page of `inv`, `times` times.
fn at_page(inv: Inventory, page: u32, kind: FaultKind, times: u32) -> Fault {
    Fault {
        inventory: Some(inv.into()),
        page: Some(page),
        refresh_only: false,
        items: false,
        skip: 0,
        kind,
        times: Some(times),
    }
}

fn status(code: u16, retry_after: Option<&str>) -> FaultKind {
    FaultKind::Status {
        code,
        retry_after: retry_after.map(Into::into),
    }
}

/// The simulator's requests for `inv`, in the order they were answered.
fn requests(sim: &Simulator, inv: Inventory) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.inventory == Some(inv.into()))
        .collect()
}

/// The distinct pages of `inv` the simulator was asked for.
fn pages_asked(sim: &Simulator, inv: Inventory) -> BTreeSet<u32> {
    requests(sim, inv).iter().filter_map(|r| r.page).collect()
}

/// Waits (at most 30 s, a guard against a hang) until the simulator has answered a request
/// for each `(page, status)` of `inv`, counting repeats.
async fn answered(
    events: &mut broadcast::Receiver<RequestRecord>,
    inv: Inventory,
    want: &[(u32, u16)],
) {
    let mut missing = want.to_vec();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !missing.is_empty() {
            let r = events.recv().await.expect("simulator alive");
            if r.inventory != Some(inv.into()) {
                continue;
            }
            if let Some(i) = missing
                .iter()
                .position(|&(p, s)| r.page == Some(p) && r.status == s)
            {
                missing.remove(i);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{inv}: still waiting for {missing:?}"));
}

/// Bounded wait for a hold to have `n` arrivals.
async fn arrived(hold: &Hold, n: usize) {
    tokio::time::timeout(Duration::from_secs(30), hold.arrived(n))
        .await
        .unwrap_or_else(|_| panic!("{} of {n} requests reached the hold", hold.count()));
}

/// A full pass of `inv` on its own task.
fn spawn_poll(
    cfg: &ses_inventory::config::Config,
    inv: Inventory,
    cache: &Cache,
) -> tokio::task::JoinHandle<ses_inventory::model::status::PollReport> {
    let mut poller = poller(cfg, inv, cache);
    tokio::spawn(async move { poller.poll(FULL).await })
}

fn name_of(cache: &Cache, key: &str) -> Option<String> {
    cache
        .get(Services, key)?
        .row()
        .cell_by_name("name")?
        .to_text()
}

fn svc_keys(range: impl Iterator<Item = usize>) -> Vec<String> {
    range.map(|i| format!("SVC-{i:04}")).collect()
}

#[tokio::test]
async fn pages_that_arrive_early_wait_their_turn_and_the_first_occurrence_wins() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc); // pages_in_flight = 4, the default
    assert_eq!(cfg.poll.pages_in_flight, 4);
    // 170 services: pages of 40, 40, 40, 40 and 10. SVC-DUP is on page 2 and again on page 4.
    let mut items = services(170);
    items[45] = json!({"externalId": "SVC-DUP", "name": "from page 2", "status": "Operational"});
    items[130] = json!({"externalId": "SVC-DUP", "name": "from page 4", "status": "Operational"});
    sim.set_items(Services, items);
    // Page 2 is held until pages 3, 4 and 5 (requested with it) have been answered.
    let hold = Hold::new();
    sim.inject(at_page(Services, 2, FaultKind::Hold(hold.clone()), 1));
    let mut events = sim.subscribe();
    let cache = Cache::new();
    let task = spawn_poll(&cfg, Services, &cache);
    answered(&mut events, Services, &[(3, 200), (4, 200), (5, 200)]).await;
    arrived(&hold, 1).await;
    assert!(!task.is_finished(), "the pass waits for page 2");
    assert!(
        (cache.len(Services) == 0),
        "nothing applied before the pass ends"
    );
    hold.release();
    let r = task.await.unwrap();

    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!((r.pages, r.received, r.skipped.duplicates), (5, 170, 1));
    assert_eq!(cache.len(Services), 169);
    // Page 4's copy arrived first, but page 2 comes first in the listing: its copy wins.
    assert_eq!(name_of(&cache, "SVC-DUP").as_deref(), Some("from page 2"));
    let order: Vec<u32> = requests(&sim, Services)
        .iter()
        .filter_map(|r| r.page)
        .collect();
    let at = |p| order.iter().position(|&x| x == p).unwrap();
    assert!(at(2) > at(3) && at(2) > at(4) && at(2) > at(5), "{order:?}");
}

#[tokio::test]
async fn a_short_page_amid_the_pages_in_flight_ends_the_listing_and_discards_the_rest() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    // 200 services, five full pages. Pages 4 and 5 are answered in full while pages 2 and 3
    // are held; then SVC-0091 to SVC-0200 are deleted just before page 3 is answered: page 3
    // comes with 10 items and a total of 90, which agree that the listing ends there. Pages 4
    // and 5, requested with it, hold 40 items each, and must not count.
    sim.set_items(Services, services(200));
    let (hold_2, hold_3) = (Hold::new(), Hold::new());
    sim.inject(at_page(Services, 2, FaultKind::Hold(hold_2.clone()), 1));
    let deleted = ses_inventory_sim::Edit {
        delete: svc_keys(91..=200),
        ..Default::default()
    };
    sim.inject(at_page(
        Services,
        3,
        FaultKind::Held {
            hold: hold_3.clone(),
            then: Box::new(FaultKind::Edit(deleted)),
        },
        1,
    ));
    let mut events = sim.subscribe();
    let cache = Cache::new();
    let task = spawn_poll(&cfg, Services, &cache);
    answered(&mut events, Services, &[(4, 200), (5, 200)]).await;
    arrived(&hold_3, 1).await;
    hold_3.release();
    answered(&mut events, Services, &[(3, 200)]).await;
    arrived(&hold_2, 1).await;
    hold_2.release();
    let r = task.await.unwrap();

    assert_eq!(r.outcome, Outcome::Complete, "{:?}", r.error);
    assert_eq!(
        (r.pages, r.received),
        (3, 90),
        "pages 1 to 3, the third short"
    );
    assert!(r.short_pages.is_empty(), "{:?}", r.short_pages);
    assert_eq!(keys(&cache, Services), svc_keys(1..=90));
    // Pages 4 and 5 were answered in full, and discarded; nothing past them was asked for.
    let full_past_the_end: Vec<u32> = requests(&sim, Services)
        .iter()
        .filter(|r| r.items == 40 && r.page.is_some_and(|p| p > 3))
        .filter_map(|r| r.page)
        .collect();
    assert_eq!(full_past_the_end, [4, 5]);
    assert!(cache.get(Services, "SVC-0121").is_none());
    assert_eq!(pages_asked(&sim, Services), BTreeSet::from([1, 2, 3, 4, 5]));
}

#[tokio::test]
async fn a_page_still_504_is_skipped_while_the_pages_after_it_are_in_flight() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc); // three attempts per page
    sim.set_items(Services, services(200));
    // Page 3 answers 504 to every attempt; page 4 stays in flight (held) the whole time.
    sim.inject(at_page(Services, 3, status(504, None), 100));
    let hold = Hold::new();
    sim.inject(at_page(Services, 4, FaultKind::Hold(hold.clone()), 1));
    let mut events = sim.subscribe();
    let cache = Cache::new();
    let task = spawn_poll(&cfg, Services, &cache);
    answered(&mut events, Services, &[(3, 504), (3, 504), (3, 504)]).await;
    arrived(&hold, 1).await;
    assert!(!task.is_finished());
    hold.release();
    let r = task.await.unwrap();

    assert_eq!(r.outcome, Outcome::Incomplete);
    assert_eq!(r.skipped_pages, [3]);
    assert_eq!(
        (r.pages, r.received),
        (5, 160),
        "pages 1, 2, 4, 5 and the empty 6"
    );
    assert_eq!(
        keys(&cache, Services),
        svc_keys((1..=80).chain(121..=200)),
        "every page but the skipped one applied"
    );
    let page_3: Vec<u16> = requests(&sim, Services)
        .iter()
        .filter(|r| r.page == Some(3))
        .map(|r| r.status)
        .collect();
    assert_eq!(page_3, [504, 504, 504]);
}

/// Real time: a `Retry-After: 1` is waited out for real (a second), and the simulator's own
/// timestamps show it.
#[tokio::test]
async fn a_burst_of_429s_halves_the_window_and_retry_after_pauses_new_requests() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.poll.pages_in_flight = 8;
    cfg.http.max_in_flight_per_api = 8;
    // Twelve full pages and an empty one.
    sim.set_items(Services, services(480));
    // Pages 2 to 9, the first window after page 1, are held until all eight are in flight,
    // then all answer 429 with Retry-After: 1.
    let storm = Hold::new();
    for page in 2..=9 {
        sim.inject(at_page(
            Services,
            page,
            FaultKind::Held {
                hold: storm.clone(),
                then: Box::new(status(429, Some("1"))),
            },
            1,
        ));
    }
    let cache = Cache::new();
    let task = spawn_poll(&cfg, Services, &cache);
    arrived(&storm, 8).await;
    assert_eq!(
        sim.in_progress(Api::Tmf638),
        8,
        "the whole window in flight"
    );
    storm.release();
    let r = task.await.unwrap();
    assert_eq!((r.outcome, r.pages), (Outcome::Complete, 13));
    assert_eq!(cache.len(Services), 480);

    let log = requests(&sim, Services);
    let storm_answers: Vec<&RequestRecord> = log.iter().filter(|r| r.status == 429).collect();
    assert_eq!(storm_answers.len(), 8);
    let first_429 = storm_answers.iter().map(|r| r.answered).min().unwrap();
    // Everything after the storm: the eight retries, then pages 10 on, in arrival order.
    let mut after: Vec<&RequestRecord> = log
        .iter()
        .filter(|r| r.status != 429 && r.page != Some(1))
        .collect();
    after.sort_by_key(|r| r.received);
    assert!(after.len() >= 12, "{}", after.len());
    // Retry-After: 1 means no new request to TMF 638 for a second.
    for r in &after {
        assert!(
            r.received >= first_429 + Duration::from_secs(1),
            "page {:?} asked {:?} after the first 429",
            r.page,
            r.received - first_429
        );
    }
    // The eight 429s answered requests sent together: the limit halved once, to 4, and it
    // grows back only after 8 clean pages. Until then at most 4 are in flight.
    let concurrency: Vec<usize> = after.iter().take(8).map(|r| r.concurrent).collect();
    assert!(concurrency.iter().all(|&c| c <= 4), "{concurrency:?}");
    assert_eq!(sim.max_concurrent(Api::Tmf638), 8);
}

#[tokio::test]
async fn a_listing_never_has_more_than_pages_in_flight_requested() {
    // A little latency, so that pages do overlap.
    let sc = SimConfig {
        latency: Duration::from_millis(5),
        ..SimConfig::empty()
    };
    let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let mut cfg = config(&sim, &sc);
    cfg.poll.pages_in_flight = 3;
    sim.set_items(Services, services(400));
    let hold = Hold::new();
    sim.inject(at_page(Services, 2, FaultKind::Hold(hold.clone()), 1));
    let mut events = sim.subscribe();
    let cache = Cache::new();
    let task = spawn_poll(&cfg, Services, &cache);
    answered(&mut events, Services, &[(3, 200), (4, 200)]).await;
    arrived(&hold, 1).await;
    // Page 2 held: the window is pages 2 to 4, and nothing beyond it is asked for (pages 1, 3
    // and 4 answered, page 2 the one request in progress).
    assert_eq!(pages_asked(&sim, Services), BTreeSet::from([1, 3, 4]));
    assert_eq!(sim.in_progress(Api::Tmf638), 1);
    hold.release();
    let r = task.await.unwrap();
    assert_eq!((r.outcome, r.pages), (Outcome::Complete, 11));
    assert_eq!(cache.len(Services), 400);
    assert!(
        sim.max_concurrent(Api::Tmf638) <= 3,
        "{}",
        sim.max_concurrent(Api::Tmf638)
    );
}

#[tokio::test]
async fn the_pollers_of_one_api_share_its_limit_and_each_api_has_its_own() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.poll.pages_in_flight = 8;
    cfg.http.max_in_flight_per_api = 4;
    sim.set_items(Services, services(400));
    sim.set_items(
        Carriers,
        (1..=400).map(|i| carrier(&format!("C-{i:04}"))).collect(),
    );
    sim.set_items(
        Resources,
        (1..=400)
            .map(|i| resource(&format!("R-{i:04}"), "Antenna"))
            .collect(),
    );
    // After page 1, each listing wants pages 2 to 9 in flight; all of them are held.
    let hold = Hold::new();
    for inv in [Services, Carriers, Resources] {
        for page in 2..=9 {
            sim.inject(at_page(inv, page, FaultKind::Hold(hold.clone()), 1));
        }
    }
    // One client for the three pollers, as the daemon has.
    let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
    let cache = Cache::new();
    let tasks: Vec<_> = [Services, Carriers, Resources]
        .into_iter()
        .map(|inv| {
            let mut p = Poller::new(inv, &cfg, upstream.clone(), cache.clone(), Clock::System);
            tokio::spawn(async move { p.poll(FULL).await })
        })
        .collect();
    // Four requests to TMF 638 (services and carriers together) and four to TMF 639.
    arrived(&hold, 8).await;
    assert_eq!(sim.in_progress(Api::Tmf638), 4);
    assert_eq!(sim.in_progress(Api::Tmf639), 4);
    assert_eq!(
        upstream.in_flight(ses_inventory::model::inventory::Api::Tmf638),
        4
    );
    hold.release();
    for (task, inv) in tasks.into_iter().zip([Services, Carriers, Resources]) {
        let r = task.await.unwrap();
        assert_eq!((r.outcome, r.pages), (Outcome::Complete, 11), "{inv}");
        assert_eq!(cache.len(inv), 400, "{inv}");
    }
    assert_eq!(sim.max_concurrent(Api::Tmf638), 4);
    assert_eq!(sim.max_concurrent(Api::Tmf639), 4);
}

#[tokio::test]
async fn one_page_in_flight_asks_exactly_what_it_always_asked() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.poll.pages_in_flight = 1;
    // 130 services: pages of 40, 40, 40 and 10; page 2 answers 503 once.
    let mut items = services(130);
    sim.set_items(Services, items.clone());
    sim.inject(at_page(Services, 2, status(503, None), 1));
    let cache = Cache::new();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Complete);

    // SVC-0005 goes upstream (the others unchanged): the next full pass misses a cached item
    // and confirms with a second listing. Then a refresh.
    items.remove(4);
    sim.set_items(Services, items);
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!((r.churn.confirmations, r.removed), (1, 1));
    let r = poll(&cfg, Services, &cache, PollPlan::Refresh { days_ago: 0 }).await;
    assert_eq!(r.outcome, Outcome::Complete);

    let asked: Vec<(u32, u16, Option<u32>)> = requests(&sim, Services)
        .iter()
        .map(|r| (r.page.unwrap(), r.status, r.updated_days_ago))
        .collect();
    #[rustfmt::skip]
    let expected = [
        // The first pass: page 2 retried once.
        (1, 200, None), (2, 503, None), (2, 200, None), (3, 200, None), (4, 200, None),
        // The second pass and its confirming listing.
        (1, 200, None), (2, 200, None), (3, 200, None), (4, 200, None),
        (1, 200, None), (2, 200, None), (3, 200, None), (4, 200, None),
        // The refresh (every crafted service was updated just now).
        (1, 200, Some(0)), (2, 200, Some(0)), (3, 200, Some(0)), (4, 200, Some(0)),
    ];
    assert_eq!(asked, expected);
    assert_eq!(sim.max_concurrent(Api::Tmf638), 1);
}

#[tokio::test]
async fn no_more_than_max_pages_are_requested_with_pages_in_flight() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.poll.pages_in_flight = 8;
    cfg.poll.max_pages = 3;
    sim.set_items(Services, services(400));
    let cache = Cache::new();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("more than poll.max_pages (3) pages without a short page")
    );
    assert_eq!(pages_asked(&sim, Services), BTreeSet::from([1, 2, 3]));
    assert_eq!(requests(&sim, Services).len(), 3);
    assert!((cache.len(Services) == 0));
}

#[tokio::test]
async fn over_asking_is_bounded_and_a_refresh_that_fits_in_a_page_costs_one_request() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    // Ten full pages and an empty one: at most pages_in_flight - 1 pages asked past the end.
    sim.set_items(Services, services(400));
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!((r.outcome, r.pages), (Outcome::Complete, 11));
    let asked = requests(&sim, Services).len();
    assert!((11..=11 + 3).contains(&asked), "{asked} requests");

    // The first page of a listing goes alone: a refresh that fits in it asks for nothing else.
    sim.set_items(Services, services(30));
    let r = poll(&cfg, Services, &cache, PollPlan::Refresh { days_ago: 0 }).await;
    assert_eq!((r.outcome, r.pages), (Outcome::Complete, 1));
    let refreshes = requests(&sim, Services)
        .iter()
        .filter(|r| r.updated_days_ago.is_some())
        .count();
    assert_eq!(refreshes, 1);
}

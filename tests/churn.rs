//! Exact under churn: the upstream pages by offset with no snapshot, so while a listing runs,
//! items deleted in front of its cursor make later pages start further on (an item slides past
//! unseen), inserts make them start earlier (an item is served twice), an upstream that orders
//! by `lastUpdate` moves every updated item to the end, and a gateway under load cuts pages.
//! Whatever the pages do:
//!
//! 1. an item live upstream throughout a full pass is in the cache when the pass is applied, or
//!    at the latest when the next poll is;
//! 2. no live item is removed because one listing did not return it;
//! 3. an item deleted upstream leaves the cache within two full passes;
//! 4. a full pass costs at most two listings, and refreshes keep their schedule.
//!
//! Every scenario runs with and without a total header (`X-Total-Count` is not documented for
//! the SES gateway) and, where timing does not decide the counts, with pages in flight; each
//! ends by checking the cache item for item (keys and JSON) against the simulator's data.

mod common;

use common::*;
use serde_json::{Value, json};
use ses_inventory::Inventory::Services;
use ses_inventory::cache::Cache;
use ses_inventory::config::Config;
use ses_inventory::model::status::{Outcome, PollKind, PollReport};
use ses_inventory::source::Upstream;
use ses_inventory::store::Store;
use ses_inventory::sync::Poller;
use ses_inventory::sync::window::{FullReason, PollPlan};
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Edit, Fault, FaultKind, SimConfig, Simulator};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const RESYNC: PollPlan = PollPlan::Full(FullReason::Resync);
const SETTLE: PollPlan = PollPlan::Full(FullReason::Settling);
const REFRESH: PollPlan = PollPlan::Refresh { days_ago: 0 };

/// The upstream's two shapes of paging: with a total header, and without one.
const TOTALS: [bool; 2] = [true, false];

/// A service last updated long ago: refreshes (`updatedDaysAgo`) do not return it until it
/// changes, so they cannot heal what a full pass got wrong.
fn old_service(id: &str) -> Value {
    let mut v = service(id, "Operational");
    v["lastUpdate"] = json!("2020-01-01T00:00:00Z");
    v
}

fn old_services(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|i| old_service(&format!("SVC-{i:04}")))
        .collect()
}

/// One inventory (services) behind a simulator, and one poller over one cache, as the daemon
/// runs it.
struct Rig {
    sim: Simulator,
    cfg: Config,
    cache: Cache,
    poller: Poller,
}

impl Rig {
    async fn new(n: usize, total: bool, pages_in_flight: u32) -> Rig {
        let sc = SimConfig {
            total_header: total,
            ..SimConfig::empty()
        };
        let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
            .await
            .expect("sim starts");
        sim.set_items(Services, old_services(n));
        let mut cfg = config(&sim, &sc);
        cfg.poll.pages_in_flight = pages_in_flight;
        let cache = Cache::new();
        let poller = Rig::poller_for(&cfg, &cache);
        Rig {
            sim,
            cfg,
            cache,
            poller,
        }
    }

    fn poller_for(cfg: &Config, cache: &Cache) -> Poller {
        poller(cfg, Services, cache)
    }

    /// A first buildup and its settling pass, on a quiet upstream: the cache is exact.
    async fn warm(n: usize, total: bool, pages_in_flight: u32) -> Rig {
        let mut rig = Rig::new(n, total, pages_in_flight).await;
        assert_eq!(rig.poll(FULL).await.outcome, Outcome::Complete);
        assert_eq!(rig.poll(SETTLE).await.outcome, Outcome::Complete);
        rig.assert_exact("warm");
        assert!(rig.cache.status(Services).converged());
        rig
    }

    async fn poll(&mut self, plan: PollPlan) -> PollReport {
        self.poller.poll(plan).await
    }

    fn inject(&self, fault: Fault) {
        self.sim.inject(fault);
    }

    /// The simulator's services: key → compact JSON (crafted services are all kept).
    fn truth(&self) -> BTreeMap<String, String> {
        self.sim
            .items(Services)
            .into_iter()
            .map(|v| (v["externalId"].as_str().unwrap().to_owned(), v.to_string()))
            .collect()
    }

    fn upstream_keys(&self) -> BTreeSet<String> {
        self.truth().into_keys().collect()
    }

    /// The cache: key → compact JSON.
    fn copy(&self) -> BTreeMap<String, String> {
        self.cache
            .snapshot(Services)
            .iter()
            .map(|i| {
                let v: Value = serde_json::from_str(i.raw()).unwrap();
                (i.key.to_string(), v.to_string())
            })
            .collect()
    }

    fn cached_keys(&self) -> BTreeSet<String> {
        self.copy().into_keys().collect()
    }

    /// The cache holds exactly the upstream's items, each as the upstream has it now.
    fn assert_exact(&self, what: &str) {
        let (truth, copy) = (self.truth(), self.copy());
        let missing: Vec<&String> = truth.keys().filter(|k| !copy.contains_key(*k)).collect();
        let extra: Vec<&String> = copy.keys().filter(|k| !truth.contains_key(*k)).collect();
        let stale: Vec<&String> = truth
            .iter()
            .filter(|(k, v)| copy.get(*k).is_some_and(|c| c != *v))
            .map(|(k, _)| k)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty() && stale.is_empty(),
            "{what}: missing {missing:?}, not upstream {extra:?}, stale {stale:?}"
        );
    }

    /// No key of `live` is missing from the cache.
    fn assert_holds(&self, live: &BTreeSet<String>, what: &str) {
        let cached = self.cached_keys();
        let lost: Vec<&String> = live.iter().filter(|k| !cached.contains(*k)).collect();
        assert!(lost.is_empty(), "{what}: live items missing {lost:?}");
    }

    fn services_requests(&self) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.inventory == Some(Services.into()))
            .count()
    }
}

/// `kind` on the services' page `page` of the listing after `skip` matching ones, `times` times.
fn at_page(page: u32, skip: u32, times: u32, kind: FaultKind) -> Fault {
    Fault {
        inventory: Some(Services.into()),
        page: Some(page),
        skip,
        times: Some(times),
        ..Fault::new(kind)
    }
}

/// Before the page is served, `deletes` of the items already listed go and `inserts` new ones
/// come among them (the simulator's own churn, in front of the cursor).
fn churn(deletes: usize, inserts: usize) -> FaultKind {
    FaultKind::Churn { deletes, inserts }
}

fn keys_of(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("SVC-{i:04}")).collect()
}

/// Deletes `keys` upstream between two polls.
fn delete(sim: &Simulator, keys: &[String]) {
    sim.edit(
        Services,
        Edit {
            delete: keys.to_vec(),
            ..Edit::default()
        },
    );
}

#[tokio::test]
async fn a_first_buildup_settles_what_deletions_in_front_of_the_cursor_hid() {
    for total in TOTALS {
        for pages_in_flight in [1, 4] {
            let what = format!("total {total}, {pages_in_flight} in flight");
            let mut rig = Rig::new(400, total, pages_in_flight).await;
            let before = rig.upstream_keys();
            // While the buildup reads page 6, twenty of the 200 items it has read are deleted:
            // the next twenty slide back onto page 5, unseen.
            rig.inject(at_page(6, 0, 1, churn(20, 0)));
            let r = rig.poll(FULL).await;
            assert_eq!(r.outcome, Outcome::Complete, "{what}");
            assert!(
                rig.cache.is_ready(Services),
                "{what}: ready after the buildup"
            );
            let status = rig.cache.status(Services);
            assert!(!status.settled && !status.converged(), "{what}");
            if pages_in_flight == 1 {
                // Exactly: 20 live items missing, the 20 deleted ones present.
                let cached = rig.cached_keys();
                let upstream = rig.upstream_keys();
                assert_eq!(upstream.difference(&cached).count(), 20, "{what}");
                assert_eq!(cached.difference(&upstream).count(), 20, "{what}");
            }
            // The settling pass, the poll right after (see the run loop's test below), makes
            // the copy exact: the missed items are found, the deleted ones removed.
            let s = rig.poll(SETTLE).await;
            assert_eq!(s.reason, Some(FullReason::Settling));
            assert_eq!(s.outcome, Outcome::Complete, "{what}");
            rig.assert_exact(&what);
            let live: BTreeSet<String> =
                before.intersection(&rig.upstream_keys()).cloned().collect();
            rig.assert_holds(&live, &what);
            let status = rig.cache.status(Services);
            assert!(status.settled && status.converged(), "{what}: {status:?}");
        }
    }
}

#[tokio::test]
async fn a_cut_page_in_the_confirming_listing_removes_no_live_item() {
    for total in TOTALS {
        let what = format!("total {total}");
        let mut rig = Rig::warm(400, total, 1).await;
        // Five services go between two passes: the next pass's first listing misses them and a
        // confirming listing runs, whose page 3 the gateway cuts to 10 items.
        let gone = keys_of(100..=104);
        delete(&rig.sim, &gone);
        rig.inject(at_page(3, 1, 1, FaultKind::Short(10)));
        let r = rig.poll(RESYNC).await;
        // The first listing was whole: the pass is complete. The confirming one cannot witness
        // anything: the 370 items after the cut are not removed, nor are the five yet.
        assert_eq!(r.outcome, Outcome::Complete, "{what}");
        assert_eq!((r.removed, r.churn.candidates), (0, 5), "{what}");
        assert_eq!(r.short_pages, [3], "{what}");
        let error = r.error.unwrap_or_default();
        assert!(
            error.contains("confirming listing") && error.contains("cut short"),
            "{what}: {error}"
        );
        assert_eq!(rig.cache.len(Services), 400, "{what}");
        assert_eq!(rig.cache.status(Services).unconfirmed, 5, "{what}");
        assert!(!rig.cache.status(Services).converged(), "{what}");
        // The next full pass has its second witnesses.
        let r = rig.poll(RESYNC).await;
        assert_eq!((r.outcome, r.removed), (Outcome::Complete, 5), "{what}");
        rig.assert_exact(&what);
        assert!(rig.cache.status(Services).converged(), "{what}");
    }
}

#[tokio::test]
async fn a_cut_page_makes_a_first_buildup_incomplete_not_ready() {
    for total in TOTALS {
        let what = format!("total {total}");
        let mut rig = Rig::new(400, total, 1).await;
        rig.inject(at_page(4, 0, 1, FaultKind::Short(10)));
        let r = rig.poll(FULL).await;
        assert_eq!(r.outcome, Outcome::Incomplete, "{what}");
        assert_eq!(r.short_pages, [4], "{what}");
        assert!(
            r.error.as_deref().unwrap_or_default().contains("cut short"),
            "{what}: {:?}",
            r.error
        );
        // What arrived is served, but the inventory is not ready on a fraction of it.
        assert_eq!(rig.cache.len(Services), 370, "{what}");
        assert!(!rig.cache.is_ready(Services), "{what}");
        let r = rig.poll(FULL).await;
        assert_eq!(r.outcome, Outcome::Complete, "{what}");
        assert!(rig.cache.is_ready(Services), "{what}");
        rig.assert_exact(&what);
    }
}

#[tokio::test]
async fn an_empty_page_in_the_middle_of_a_pass_removes_nothing() {
    for total in TOTALS {
        let what = format!("total {total}");
        let mut rig = Rig::warm(400, total, 1).await;
        let before = rig.services_requests();
        // Page 4 comes back empty once: not the end, since page 5 has items.
        rig.inject(at_page(4, 0, 1, FaultKind::Short(0)));
        let r = rig.poll(RESYNC).await;
        assert_eq!(r.outcome, Outcome::Incomplete, "{what}");
        assert_eq!(
            (r.short_pages.as_slice(), r.removed),
            (&[4][..], 0),
            "{what}"
        );
        assert_eq!(rig.cache.len(Services), 400, "{what}");
        // All ten pages, then the empty page 11 ends the listing: with a total at once,
        // without one after a second empty page.
        assert_eq!(
            rig.services_requests() - before,
            11 + usize::from(!total),
            "{what}"
        );

        // Two empty pages in a row look like the end. Without a total, only the count gives
        // the listing away: 120 of 400 is too few to show what was deleted.
        rig.inject(at_page(4, 0, 1, FaultKind::Short(0)));
        rig.inject(at_page(5, 0, 1, FaultKind::Short(0)));
        let r = rig.poll(RESYNC).await;
        assert_eq!((r.outcome, r.removed), (Outcome::Incomplete, 0), "{what}");
        let error = r.error.unwrap_or_default();
        let why = if total { "total" } else { "min_listing_share" };
        assert!(error.contains(why), "{what}: {error}");
        assert_eq!(rig.cache.len(Services), 400, "{what}");
        rig.assert_exact(&what);
    }
}

#[tokio::test]
async fn one_balanced_change_under_the_confirming_listing_removes_no_live_item() {
    for pages_in_flight in [1, 4] {
        let what = format!("{pages_in_flight} in flight");
        let mut rig = Rig::warm(400, true, pages_in_flight).await;
        let before = rig.upstream_keys();
        // One service goes between the passes (so a confirming listing runs). While the
        // confirming listing reads page 6, one item it has read is deleted and one inserted at
        // the end: the total does not move, yet an item slides past its cursor.
        delete(&rig.sim, &keys_of(50..=50));
        let newcomer = old_service("SVC-9001").to_string();
        rig.inject(at_page(
            6,
            1,
            1,
            FaultKind::Edit(Edit {
                delete: keys_of(60..=60),
                insert: vec![(usize::MAX, newcomer)],
                ..Edit::default()
            }),
        ));
        let r = rig.poll(RESYNC).await;
        assert_eq!(r.outcome, Outcome::Complete, "{what}");
        let live: BTreeSet<String> = before.intersection(&rig.upstream_keys()).cloned().collect();
        rig.assert_holds(&live, &what);
        assert!(
            rig.cache.get(Services, "SVC-0050").is_none(),
            "{what}: two witnesses"
        );
        // SVC-0060 was returned by the first listing: one witness so far.
        assert!(rig.cache.get(Services, "SVC-0060").is_some(), "{what}");
        let r = rig.poll(RESYNC).await;
        assert_eq!(r.outcome, Outcome::Complete, "{what}");
        rig.assert_exact(&what);
    }
}

#[tokio::test]
async fn a_live_item_both_listings_skipped_at_a_page_boundary_is_not_removed() {
    for total in TOTALS {
        let what = format!("total {total}");
        let mut rig = Rig::warm(400, total, 1).await;
        let before = rig.upstream_keys();
        // The first listing: 20 items it read are deleted before page 6, so SVC-0201..0220
        // slide back onto page 5, unseen. The confirming listing: 40 items it read are
        // deleted before page 5, so the same twenty slide back past its cursor too.
        rig.inject(at_page(6, 0, 1, churn(20, 0)));
        rig.inject(at_page(5, 1, 1, churn(40, 0)));
        let r = rig.poll(RESYNC).await;
        assert_eq!(r.outcome, Outcome::Complete, "{what}");
        let skipped = keys_of(201..=220);
        let awaiting = rig.cache.awaiting(Services);
        for key in &skipped {
            // Two misses, both at a page boundary: not enough.
            let mark = awaiting.get(key.as_str()).expect("missed twice");
            assert_eq!((mark.misses, mark.certain), (2, false), "{what}: {key}");
        }
        let live: BTreeSet<String> = before.intersection(&rig.upstream_keys()).cloned().collect();
        rig.assert_holds(&live, &what);
        // The next passes see them again, and the deletions go.
        rig.poll(RESYNC).await;
        rig.poll(RESYNC).await;
        rig.assert_exact(&what);
    }
}

#[tokio::test]
async fn an_upstream_that_moves_updated_items_to_the_end_loses_nothing() {
    for total in TOTALS {
        let what = format!("total {total}");
        let sc = SimConfig {
            total_header: total,
            resort_on_update: true,
            ..SimConfig::empty()
        };
        let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        sim.set_items(Services, old_services(400));
        let mut cfg = config(&sim, &sc);
        cfg.poll.pages_in_flight = 1;
        let cache = Cache::new();
        let mut rig = Rig {
            poller: Rig::poller_for(&cfg, &cache),
            sim,
            cfg,
            cache,
        };
        rig.poll(FULL).await;
        rig.poll(SETTLE).await;
        rig.assert_exact(&what);
        let before = rig.upstream_keys();
        // While the pass reads pages 3, 5 and 7, an item it has already read is updated: it
        // moves to the end, and everything after it one place forward.
        for (page, key) in [(3, 10), (5, 70), (7, 150)] {
            rig.inject(at_page(
                page,
                0,
                1,
                FaultKind::Edit(Edit {
                    update: keys_of(key..=key),
                    ..Edit::default()
                }),
            ));
        }
        let r = rig.poll(RESYNC).await;
        assert_eq!((r.outcome, r.removed), (Outcome::Complete, 0), "{what}");
        rig.assert_holds(&before, &what);
        // The confirming listing took the moved items' new versions.
        rig.assert_exact(&what);
    }
}

#[tokio::test]
async fn an_insert_of_a_page_or_more_in_front_of_the_cursor_never_fails_a_poll() {
    for total in TOTALS {
        for inserts in [40, 100] {
            let what = format!("total {total}, {inserts} inserted");
            let mut rig = Rig::warm(400, total, 1).await;
            rig.inject(at_page(5, 0, 1, churn(0, inserts)));
            let r = rig.poll(RESYNC).await;
            assert_eq!(r.outcome, Outcome::Complete, "{what}: {:?}", r.error);
            assert!(r.churn.shifted, "{what}");
            assert_eq!((r.removed, r.churn.confirmations), (0, 1), "{what}");
            rig.assert_exact(&what);
        }
    }
}

#[tokio::test]
async fn deletions_during_a_pass_leave_by_the_next_one_and_their_marks_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("ses-churn-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let mut rig = Rig::new(400, true, 1).await;
    let (store, _) = Store::open(&path).unwrap();
    let (journal, writer) = store.spawn_writer(rig.cache.clone());
    rig.poller = Rig::poller_for(&rig.cfg, &rig.cache).with_journal(journal);
    rig.poll(FULL).await;
    rig.poll(SETTLE).await;
    rig.assert_exact("warm");
    // The first listing reads 200 items, then 20 of them are deleted upstream: the confirming
    // listing is their first witness. They stay until the next full pass confirms them.
    rig.inject(at_page(6, 0, 1, churn(20, 0)));
    let r = rig.poll(RESYNC).await;
    assert_eq!((r.outcome, r.removed), (Outcome::Complete, 0));
    assert_eq!(r.churn.deferred, 20);
    let awaiting = rig.cache.awaiting(Services);
    assert_eq!(awaiting.len(), 20);
    assert!(awaiting.values().all(|m| m.misses == 1));
    // A restart: the journal's last commit, then a new cache from the file.
    rig.poller = Rig::poller_for(&rig.cfg, &rig.cache);
    writer.finish().await;
    let cache = Cache::new();
    let (mut store, _) = Store::open(&path).unwrap();
    store.load(&cache).unwrap();
    assert_eq!(cache.awaiting(Services), awaiting, "the marks survive");
    let status = cache.status(Services);
    assert!(status.settled);
    assert_eq!(status.unconfirmed, 20);
    // The file also keeps the order of the last full listing, so the loaded items are placed
    // and this pass's misses can be certain again: one pass removes the twenty, and a service
    // deleted since the restart.
    assert_ne!(status.placed_by, 0, "placed from the file");
    rig.cache = cache;
    rig.poller = Rig::poller_for(&rig.cfg, &rig.cache);
    delete(&rig.sim, &keys_of(305..=305));
    let r = rig.poll(RESYNC).await;
    assert_eq!((r.outcome, r.removed), (Outcome::Complete, 21));
    rig.assert_exact("after the restart");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_single_item_endpoint_is_the_second_witness_and_finds_skipped_items_live() {
    for total in TOTALS {
        let what = format!("total {total}");
        let mut rig = Rig::warm(400, total, 1).await;
        rig.cfg.services.item_path = "/service/{id}".into();
        rig.poller = Rig::poller_for(&rig.cfg, &rig.cache);
        // Five go between two passes: one listing and five 404s remove them, no second
        // listing needed.
        delete(&rig.sim, &keys_of(100..=104));
        let before = rig.services_requests();
        let r = rig.poll(RESYNC).await;
        assert_eq!((r.outcome, r.removed), (Outcome::Complete, 5), "{what}");
        assert_eq!(
            (
                r.churn.checked_gone,
                r.churn.checked_live,
                r.churn.confirmations
            ),
            (5, 0, 0),
            "{what}"
        );
        let item_gets: Vec<_> = rig
            .sim
            .requests()
            .into_iter()
            .skip(before)
            .filter_map(|r| r.item)
            .collect();
        // The control (the last item listed), then the five.
        assert_eq!(item_gets.len(), 6, "{what}: {item_gets:?}");
        assert_eq!(item_gets[0], "sys-SVC-0400", "{what}");
        rig.assert_exact(&what);

        // Twenty items the listing read are deleted under it: the next twenty slide past,
        // unseen. Asked one by one, they answer: live, kept.
        let live = rig.upstream_keys();
        rig.inject(at_page(6, 0, 1, churn(20, 0)));
        let r = rig.poll(RESYNC).await;
        assert_eq!(r.outcome, Outcome::Complete, "{what}");
        assert_eq!((r.churn.checked_live, r.removed), (20, 0), "{what}");
        rig.assert_holds(
            &live.intersection(&rig.upstream_keys()).cloned().collect(),
            &what,
        );
        rig.poll(RESYNC).await;
        rig.assert_exact(&what);
    }
}

#[tokio::test]
async fn a_single_item_endpoint_that_finds_nothing_is_not_believed() {
    let mut rig = Rig::warm(400, true, 1).await;
    rig.cfg.services.item_path = "/nothing/{id}".into();
    rig.poller = Rig::poller_for(&rig.cfg, &rig.cache);
    let live = rig.upstream_keys();
    // Its 404 for a listed item shows it is wrong: the twenty skipped items are not removed,
    // and the five deleted ones go by two listings instead.
    delete(&rig.sim, &keys_of(100..=104));
    rig.inject(at_page(6, 0, 1, churn(20, 0)));
    let r = rig.poll(RESYNC).await;
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!((r.churn.checked_gone, r.churn.confirmations), (0, 1));
    rig.assert_holds(
        &live.intersection(&rig.upstream_keys()).cloned().collect(),
        "checks off",
    );
    assert!(rig.cache.get(Services, "SVC-0100").is_none());
    rig.poll(RESYNC).await;
    rig.assert_exact("checks off");
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

/// Random changes anywhere in the collection (not only in front of the cursor), interleaved
/// with the pages of every listing: deletions, inserts and updates, a few per listing. After
/// each full pass no item that was live throughout it and cached before it is gone (2); after
/// the refresh that follows, every item live throughout the pass is there (1); after the next
/// full pass, nothing deleted before the last one started is left (3); and once the upstream
/// is quiet, the copy is exact.
async fn random_interleavings(total: bool, pages_in_flight: u32, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let what = format!("seed {seed}, total {total}, {pages_in_flight} in flight");
        let mut rng = Rng(seed);
        let n = 60 + rng.below(100) as usize;
        let mut rig = Rig::new(n, total, pages_in_flight).await;
        rig.cfg.poll.records_per_page = 10;
        rig.poller = Rig::poller_for(&rig.cfg, &rig.cache);
        rig.poll(FULL).await;
        rig.poll(SETTLE).await;
        rig.assert_exact(&format!("{what}: warm"));
        let mut ever: BTreeSet<String> = rig.upstream_keys();
        let mut next_new = 0;
        // Keys deleted before the previous full pass started.
        let mut gone_before_previous: BTreeSet<String> = BTreeSet::new();
        for round in 0..3 {
            let what = format!("{what}, round {round}");
            let at_start = rig.upstream_keys();
            ever.extend(at_start.iter().cloned());
            let gone_at_start: BTreeSet<String> = ever.difference(&at_start).cloned().collect();
            let cached_before = rig.cached_keys();
            let pages = (at_start.len() / 10 + 2) as u64;
            // About one change for every other page of the two listings.
            let mut live: Vec<String> = at_start.iter().cloned().collect();
            for _ in 0..pages {
                let edit = match rng.below(3) {
                    0 if !live.is_empty() => {
                        let k = live.swap_remove(rng.below(live.len() as u64) as usize);
                        Edit {
                            delete: vec![k],
                            ..Edit::default()
                        }
                    }
                    1 => {
                        next_new += 1;
                        let item = service(&format!("NEW-{seed}-{next_new:03}"), "Operational");
                        let at = rng.below(n as u64 + 20) as usize;
                        Edit {
                            insert: vec![(at, item.to_string())],
                            ..Edit::default()
                        }
                    }
                    _ if !live.is_empty() => {
                        let k = live[rng.below(live.len() as u64) as usize].clone();
                        Edit {
                            update: vec![k],
                            ..Edit::default()
                        }
                    }
                    _ => Edit::default(),
                };
                rig.inject(Fault {
                    inventory: Some(Services.into()),
                    times: Some(1),
                    ..Fault::new(FaultKind::Edit(edit))
                });
            }
            let r = rig.poll(RESYNC).await;
            rig.sim.clear_faults();
            assert_eq!(r.outcome, Outcome::Complete, "{what}: {:?}", r.error);
            assert!(r.churn.confirmations <= 1, "{what}");
            let at_end = rig.upstream_keys();
            ever.extend(at_end.iter().cloned());
            let throughout: BTreeSet<String> = at_start.intersection(&at_end).cloned().collect();
            let cached_throughout: BTreeSet<String> =
                throughout.intersection(&cached_before).cloned().collect();
            rig.assert_holds(&cached_throughout, &format!("{what}: after the pass"));
            let left: Vec<&String> = gone_before_previous
                .iter()
                .filter(|k| rig.cache.get(Services, k.as_str()).is_some())
                .collect();
            assert!(left.is_empty(), "{what}: deletions not converged {left:?}");
            gone_before_previous = gone_at_start;
            let r = rig.poll(REFRESH).await;
            assert_eq!(r.outcome, Outcome::Complete, "{what}");
            rig.assert_holds(&throughout, &format!("{what}: after the refresh"));
        }
        // Quiet: two full passes at most, and the copy is exact.
        rig.poll(RESYNC).await;
        rig.poll(RESYNC).await;
        rig.assert_exact(&format!("{what}: quiet"));
        assert!(rig.cache.status(Services).converged(), "{what}");
    }
}

#[tokio::test]
async fn random_interleavings_keep_the_invariants() {
    random_interleavings(true, 1, 1..31).await;
}

#[tokio::test]
async fn random_interleavings_without_a_total_keep_the_invariants() {
    random_interleavings(false, 1, 101..131).await;
}

#[tokio::test]
async fn random_interleavings_with_pages_in_flight_keep_the_invariants() {
    random_interleavings(true, 4, 201..221).await;
}

#[tokio::test]
async fn random_interleavings_with_pages_in_flight_and_no_total_keep_the_invariants() {
    random_interleavings(false, 4, 301..321).await;
}

/// An upstream that changes during every listing (an insert and a deletion among the items
/// already read, at every third page): full passes keep to two listings, refreshes keep their
/// schedule, deletions still arrive within two full passes, and no live item is lost.
#[tokio::test(start_paused = true)]
async fn constant_churn_keeps_refreshes_on_schedule_and_deletions_converging() {
    let sc = SimConfig {
        total_header: false,
        ..SimConfig::empty()
    };
    let sim = Simulator::start_on_thread(sc.clone()).expect("sim starts");
    sim.set_items(Services, old_services(200));
    let mut cfg = config(&sim, &sc);
    cfg.poll.records_per_page = 10;
    cfg.poll.pages_in_flight = 1;
    cfg.poll.full_resync_interval = 3 * 3600;
    for page in (2..40).step_by(3) {
        sim.inject(Fault {
            inventory: Some(Services.into()),
            page: Some(page),
            ..Fault::new(churn(1, 1))
        });
    }
    let cache = Cache::new();
    let mut polls = cache.watch_polls();
    let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
    let poller = Poller::new(
        Services,
        &cfg,
        upstream,
        cache.clone(),
        Clock::tokio_at(chrono::Utc::now()),
    );
    let task = tokio::spawn(poller.run());
    let mut at_start = sim
        .items(Services)
        .iter()
        .map(|v| v["externalId"].as_str().unwrap().to_owned())
        .collect::<BTreeSet<String>>();
    let mut ever = at_start.clone();
    let mut requests = 0;
    let mut gone_before_previous_full: BTreeSet<String> = BTreeSet::new();
    let mut gone_before_this_full: BTreeSet<String> = BTreeSet::new();
    let mut kinds = Vec::new();
    for _ in 0..14 {
        polls.changed().await.expect("poller alive");
        let status = cache.status(Services);
        let last = status
            .last_full
            .iter()
            .chain(status.last_refresh.iter())
            .max_by_key(|r| r.finished)
            .cloned()
            .unwrap();
        let now: BTreeSet<String> = sim
            .items(Services)
            .iter()
            .map(|v| v["externalId"].as_str().unwrap().to_owned())
            .collect();
        ever.extend(now.iter().cloned());
        let sent = sim.requests().len() - requests;
        requests += sent;
        kinds.push((last.kind, last.reason, last.started));
        assert_eq!(last.outcome, Outcome::Complete, "{last:?}");
        let cached: BTreeSet<String> = keys(&cache, Services).into_iter().collect();
        if last.kind == PollKind::Full {
            // Two listings at most: 20 pages each, and the empty ones that end them.
            assert!(sent <= 2 * 22, "{sent} requests for one full pass");
            // Live throughout the pass (and old, so no refresh would bring it): present.
            let lost: Vec<&String> = at_start
                .intersection(&now)
                .filter(|k| k.starts_with("SVC-") && !cached.contains(*k))
                .collect();
            assert!(lost.is_empty(), "live items lost: {lost:?}");
            if last.reason != Some(FullReason::Initial) {
                let left: Vec<&String> = gone_before_previous_full
                    .iter()
                    .filter(|k| cached.contains(*k))
                    .collect();
                assert!(
                    left.is_empty(),
                    "deleted two passes ago, still cached: {left:?}"
                );
                gone_before_previous_full = std::mem::take(&mut gone_before_this_full);
            }
        }
        at_start = now;
        gone_before_this_full = ever.difference(&at_start).cloned().collect();
    }
    task.abort();
    // The buildup, its settling pass at once, then a refresh every hour and a full pass every
    // three: never two full passes back to back, and no poll off its schedule.
    let full: Vec<Option<FullReason>> = kinds
        .iter()
        .filter(|k| k.0 == PollKind::Full)
        .map(|k| k.1)
        .collect();
    assert_eq!(
        full[..2],
        [Some(FullReason::Initial), Some(FullReason::Settling)]
    );
    assert!(
        full[2..].iter().all(|r| *r == Some(FullReason::Resync)),
        "{full:?}"
    );
    for pair in kinds[1..].windows(2) {
        let gap = pair[1].2 - pair[0].2;
        assert_eq!(gap.num_seconds(), 3600, "{kinds:?}");
        assert!(
            pair[0].0 == PollKind::Refresh || pair[1].0 == PollKind::Refresh,
            "two full passes back to back: {kinds:?}"
        );
    }
    assert!(kinds.iter().filter(|k| k.0 == PollKind::Refresh).count() >= 8);
}

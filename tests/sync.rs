//! The sync rules, proved against the simulator over loopback HTTP.

mod common;

use common::*;
use serde_json::json;
use ses_inventory::Inventory::{Carriers, Resources, Services};
use ses_inventory::cache::Cache;
use ses_inventory::model::status::{Outcome, PollKind};
use ses_inventory::sync::window::PollPlan;
use ses_inventory_sim::{Fault, FaultKind};

fn pages_requested(sim: &ses_inventory_sim::Simulator, inv: ses_inventory::Inventory) -> Vec<u32> {
    sim.requests()
        .iter()
        .filter(|r| r.inventory == Some(inv.into()))
        .filter_map(|r| r.page)
        .collect()
}

#[tokio::test]
async fn pagination_reads_every_page_including_an_exact_multiple() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    // The exact request sequence holds one page at a time (with pages in flight, pages past the
    // end are requested too, and answers come in any order: tests/inflight.rs).
    cfg.poll.pages_in_flight = 1;
    let cache = Cache::new();

    // 85 items: pages of 40, 40, 5; the short page ends the pass.
    sim.set_items(Services, services(85));
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(cache.len(Services), 85);
    assert_eq!(pages_requested(&sim, Services), [1, 2, 3]);

    // 80 items: two full pages, then an empty one tells us it is over.
    sim.set_items(
        Carriers,
        (1..=80).map(|i| carrier(&format!("C{i}"))).collect(),
    );
    let r = poll(&cfg, Carriers, &cache, FULL).await;
    assert_eq!((r.outcome, r.pages), (Outcome::Complete, 3));
    assert_eq!(cache.len(Carriers), 80);
    assert_eq!(pages_requested(&sim, Carriers), [1, 2, 3]);
    assert!(cache.is_ready(Carriers));
}

#[tokio::test]
async fn an_empty_collection_is_complete_and_ready() {
    let (sim, sc) = empty_sim().await;
    let cache = Cache::new();
    let r = poll(&config(&sim, &sc), Resources, &cache, FULL).await;
    assert_eq!((r.outcome, r.pages), (Outcome::Complete, 1));
    assert!(cache.is_ready(Resources));
    assert!((cache.len(Resources) == 0));
}

#[tokio::test]
async fn page_size_and_query_follow_the_configuration() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.poll.records_per_page = 50;
    // The exact request sequence holds one page at a time.
    cfg.poll.pages_in_flight = 1;
    cfg.services.query.insert("customer".into(), "ACME".into());
    sim.set_items(Services, services(120));
    let cache = Cache::new();
    poll(&cfg, Services, &cache, FULL).await;
    let reqs = sim.requests();
    let q = &reqs[0].query;
    let has = |k: &str, v: &str| q.iter().any(|(a, b)| a == k && b == v);
    assert!(
        has("recordsPerPage", "50")
            && has("status", "1")
            && has("customer", "ACME")
            && has("page", "1"),
        "{q:?}"
    );
    assert_eq!(pages_requested(&sim, Services), [1, 2, 3]);
    assert_eq!(cache.len(Services), 120);
}

#[tokio::test]
async fn keys_duplicates_and_empty_keys() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let mut first = service("SVC-1", "Operational");
    first["name"] = json!("first copy");
    let mut dup = service("SVC-1", "Operational");
    dup["name"] = json!("second copy");
    let mut v5 = service("ignored", "Operational");
    v5.as_object_mut().unwrap().remove("externalId");
    v5["externalIdentifier"] = json!([{"id": "SVC-V5", "owner": "SES"}]);
    let mut empty = service("", "Operational");
    empty["externalId"] = json!("");
    let mut missing = service("x", "Operational");
    missing.as_object_mut().unwrap().remove("externalId");
    sim.set_items(
        Services,
        vec![
            first,
            empty,
            dup,
            v5,
            missing,
            service("SVC-2", "Operational"),
        ],
    );

    let cache = Cache::new();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(keys(&cache, Services), ["SVC-1", "SVC-2", "SVC-V5"]);
    assert_eq!(
        cache
            .get(Services, "SVC-1")
            .unwrap()
            .row()
            .cell_by_name("name")
            .unwrap()
            .to_text()
            .as_deref(),
        Some("first copy")
    );
    assert_eq!((r.skipped.no_key, r.skipped.duplicates), (2, 1));

    // Resources are keyed by `id`.
    sim.set_items(
        Resources,
        vec![
            resource("R1", "Antenna"),
            json!({"name": "no id"}),
            resource("R1", "Modem"),
        ],
    );
    let r = poll(&cfg, Resources, &cache, FULL).await;
    assert_eq!(keys(&cache, Resources), ["R1"]);
    assert_eq!(
        cache.get(Resources, "R1").unwrap().row().item_type(),
        Some("Antenna")
    );
    assert_eq!((r.skipped.no_key, r.skipped.duplicates), (1, 1));
}

#[tokio::test]
async fn status_and_type_rules_decide_what_is_kept() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(
        Services,
        vec![
            service("A", "Operational"),
            service("B", "Terminated"),
            service("C", "operational"),
        ],
    );
    poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(keys(&cache, Services), ["A", "C"]);

    // A refresh that returns A with another status removes it at once.
    sim.set_items(
        Services,
        vec![service("A", "Pending"), service("C", "Operational")],
    );
    let r = poll(&cfg, Services, &cache, PollPlan::Refresh { days_ago: 0 }).await;
    assert_eq!(r.kind, PollKind::Refresh);
    assert_eq!(keys(&cache, Services), ["C"]);
    assert_eq!(r.removed, 1);

    let excluded = [
        "Card",
        "BandwidthSegment",
        "LogicalPort",
        "Multicast",
        "Slot",
        "Port",
        "Circuit",
    ];
    let mut items: Vec<_> = excluded
        .iter()
        .enumerate()
        .map(|(i, t)| resource(&format!("X{i}"), t))
        .collect();
    items.push(resource("KEEP-1", "Antenna"));
    items.push(resource("KEEP-2", "Satellite"));
    sim.set_items(Resources, items);
    let r = poll(&cfg, Resources, &cache, FULL).await;
    assert_eq!(keys(&cache, Resources), ["KEEP-1", "KEEP-2"]);
    assert_eq!(r.skipped.not_kept, 7);

    // Carriers keep every status; the configuration decides.
    sim.set_items(Carriers, vec![carrier("K1")]);
    poll(&cfg, Carriers, &cache, FULL).await;
    assert_eq!(keys(&cache, Carriers), ["K1"]);
}

#[tokio::test]
async fn a_complete_pass_sweeps_and_an_incomplete_one_does_not() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(Services, services(100));
    poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(cache.len(Services), 100);

    // SVC-0001 disappears upstream. Page 2 keeps answering 504: the pass goes on to page 3 but
    // is incomplete, so nothing is swept.
    sim.set_items(Services, services(100).split_off(1));
    sim.inject(Fault::on(Services, Some(2), FaultKind::status(504), None));
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Incomplete);
    assert_eq!(r.skipped_pages, [2]);
    assert!(r.error.as_deref().unwrap().contains("[2]"), "{:?}", r.error);
    assert_eq!(
        pages_requested(&sim, Services)
            .iter()
            .filter(|&&p| p == 3)
            .count(),
        2,
        "page 3 was still read"
    );
    assert!(
        cache.get(Services, "SVC-0001").is_some(),
        "no sweep after an incomplete pass"
    );

    // The next complete pass removes it.
    sim.clear_faults();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!((r.outcome, r.removed), (Outcome::Complete, 1));
    assert!(cache.get(Services, "SVC-0001").is_none());
    assert_eq!(cache.len(Services), 99);
}

#[tokio::test]
async fn an_incomplete_first_pass_serves_what_it_got_but_is_not_ready() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    sim.set_items(Services, services(100));
    sim.inject(Fault::on(Services, Some(1), FaultKind::status(504), None));
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Incomplete);
    assert_eq!(cache.len(Services), 60, "pages 2 and 3 applied");
    assert!(!cache.is_ready(Services));
}

#[tokio::test]
async fn transient_errors_are_retried_and_other_persistent_errors_end_the_pass() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    // The exact request sequence (the retries of page 2 before page 3) holds one page at a
    // time.
    cfg.poll.pages_in_flight = 1;
    let cache = Cache::new();
    sim.set_items(Services, services(90));
    // Two 503s, then success: retried within the attempts.
    sim.inject(Fault::on(
        Services,
        Some(2),
        FaultKind::status(503),
        Some(2),
    ));
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(pages_requested(&sim, Services), [1, 2, 2, 2, 3]);

    // A 502 that persists ends the pass; nothing of it is applied and the cache is untouched.
    sim.set_items(Services, services(10));
    sim.inject(Fault::on(Services, Some(1), FaultKind::status(502), None));
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Failed);
    let err = r.error.unwrap();
    assert!(err.contains("502") && err.contains("page 1"), "{err}");
    assert_eq!(cache.len(Services), 90, "a failure never empties the cache");
    assert!(cache.is_ready(Services));
}

#[tokio::test]
async fn bad_bodies_are_page_errors_and_bad_elements_are_skipped() {
    let (sim, sc) = empty_sim().await;
    let mut cfg = config(&sim, &sc);
    cfg.http.max_body_bytes = 64 * 1024;
    let cache = Cache::new();
    sim.set_items(Services, services(30));
    // Bad bodies are retried (cfg.http.retry_attempts = 3); a body over the size bound is not:
    // every attempt would fail the same way.
    for (kind, expect, attempts) in [
        (FaultKind::Malformed, "not JSON", 3),
        (FaultKind::NotArray, "no item array", 3),
        (FaultKind::Huge(1 << 20), "max_body_bytes", 1),
    ] {
        let before = pages_requested(&sim, Services).len();
        sim.inject(Fault::on(Services, Some(1), kind, None));
        let r = poll(&cfg, Services, &cache, FULL).await;
        assert_eq!(r.outcome, Outcome::Failed);
        let error = r.error.as_deref().unwrap();
        assert!(error.contains(expect), "{error}");
        assert!(
            error.contains(&format!("after {attempts} attempt(s)")),
            "{error}"
        );
        assert_eq!(pages_requested(&sim, Services).len() - before, attempts);
        sim.clear_faults();
    }
    // Retried like any page error: one bad body, then a good one.
    sim.inject(Fault::on(Services, Some(1), FaultKind::Malformed, Some(1)));
    sim.inject(Fault::on(
        Services,
        Some(1),
        FaultKind::ElementNotObject,
        Some(1),
    ));
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(r.skipped.not_object, 1);
    assert_eq!(cache.len(Services), 30);
}

#[tokio::test]
async fn wrong_credentials_name_the_api_and_are_not_retried() {
    let (sim, mut sc) = empty_sim().await;
    sim.set_items(Resources, vec![resource("R1", "Antenna")]);
    sc.tmf639_password = "wrong-password".into();
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    let r = poll(&cfg, Resources, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.credentials_rejected);
    let err = r.error.unwrap();
    assert!(
        err.contains("tmf639 rejected the credentials") && err.contains("tmf639.password"),
        "{err}"
    );
    assert!(!err.contains("wrong-password"));
    assert_eq!(sim.requests().len(), 1, "no fast retries on 401");
    // The other API's credentials are separate and still work.
    sim.set_items(Services, services(1));
    assert_eq!(
        poll(&cfg, Services, &cache, FULL).await.outcome,
        Outcome::Complete
    );
}

#[tokio::test]
async fn a_wrapped_list_and_other_page_parameters_need_only_configuration() {
    let mut sc = ses_inventory_sim::SimConfig::empty();
    sc.wrap = Some("result".into());
    sc.page_param = "pageNumber".into();
    sc.first_page = 0;
    sc.size_param = "limit".into();
    let sim = ses_inventory_sim::Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    sim.set_items(Services, services(45));
    let mut cfg = config(&sim, &sc);
    let cache = Cache::new();
    // Unconfigured, the body is not an array: a clear page error.
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert!(
        r.error.as_deref().unwrap().contains("no item array"),
        "{:?}",
        r.error
    );

    cfg.services.items_pointer = "/result".into();
    cfg.poll.page_param = "pageNumber".into();
    cfg.poll.first_page = 0;
    cfg.poll.page_size_param = "limit".into();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(cache.len(Services), 45);
}

#[tokio::test]
async fn an_upstream_that_ignores_the_page_parameter_does_not_loop_forever() {
    let mut sc = ses_inventory_sim::SimConfig::empty();
    sc.page_param = "p".into();
    let sim = ses_inventory_sim::Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    sim.set_items(Services, services(100));
    let mut cfg = config(&sim, &sc); // sends `page`, which this simulator ignores
    // Exactly three requests one page at a time: a page that repeats the one before may be an
    // insert in front of the cursor, so only a third identical page in a row ends the poll
    // (with pages in flight, the ones requested ahead of page 3 are abandoned then).
    cfg.poll.pages_in_flight = 1;
    let cache = Cache::new();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(
        r.error.as_deref().unwrap().contains("poll.page_param"),
        "{:?}",
        r.error
    );
    assert_eq!(pages_requested(&sim, Services).len(), 3);
}

#[tokio::test]
async fn refreshes_upsert_changes_and_keep_first_seen() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    let original = services(3);
    sim.set_items(Services, original.clone());
    poll(&cfg, Services, &cache, FULL).await;
    let before = cache.get(Services, "SVC-0002").unwrap();
    let unchanged = cache.get(Services, "SVC-0001").unwrap();

    let mut items = original;
    items[1]["name"] = json!("renamed");
    items.push(service("SVC-NEW", "Operational"));
    sim.set_items(Services, items);
    let r = poll(&cfg, Services, &cache, PollPlan::Refresh { days_ago: 0 }).await;
    assert_eq!((r.added, r.updated, r.removed), (1, 1, 0));
    let after = cache.get(Services, "SVC-0002").unwrap();
    assert_eq!(
        after.cell_by_name("name").unwrap().to_text().as_deref(),
        Some("renamed")
    );
    assert_eq!(after.first_seen, before.first_seen);
    assert!(after.last_seen() >= before.last_seen());
    assert!(
        std::sync::Arc::ptr_eq(&unchanged, &cache.get(Services, "SVC-0001").unwrap()),
        "unchanged items are shared, not copied"
    );
    let raw: serde_json::Value = serde_json::from_str(after.raw()).unwrap();
    assert_eq!(raw["name"], "renamed", "the upstream JSON is kept whole");
    assert!(sim.requests().last().unwrap().updated_days_ago == Some(0));
}

#[tokio::test]
async fn readers_never_see_half_a_pass() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    let mut all = services(320);
    sim.set_items(Services, all[..200].to_vec());
    poll(&cfg, Services, &cache, FULL).await;

    // The next pass returns a different set, slowly: the first 150 items deleted (in front of
    // the first item it returns, on its first page: certain misses, so the pass removes them)
    // and 120 new ones after the 50 left unchanged. A reader sees the old set or the new one.
    let next = all.split_off(150);
    sim.set_items(Services, next);
    sim.inject(Fault::on(
        Services,
        None,
        FaultKind::Delay(std::time::Duration::from_millis(30)),
        None,
    ));
    let mut pass = poller(&cfg, Services, &cache);
    let task = tokio::spawn(async move { pass.poll(FULL).await });
    let mut seen = std::collections::BTreeSet::new();
    while !task.is_finished() {
        seen.insert(cache.len(Services));
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(task.await.unwrap().outcome, Outcome::Complete);
    seen.insert(cache.len(Services));
    assert!(
        seen.iter().all(|&n| n == 200 || n == 170),
        "a reader saw a partial pass: {seen:?}"
    );
    assert!(seen.contains(&200) && seen.contains(&170), "{seen:?}");
    assert_eq!(
        keys(&cache, Services).first().map(String::as_str),
        Some("SVC-0151")
    );
    assert_eq!(cache.status(Services).unconfirmed, 0);
}

#[tokio::test]
async fn generated_data_ends_up_exactly_as_the_simulator_says() {
    let sc = ses_inventory_sim::SimConfig::default();
    let sim = ses_inventory_sim::Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let cfg = config(&sim, &sc);
    let cache = Cache::new();
    for inv in ses_inventory::Inventory::ALL {
        let r = poll(&cfg, inv, &cache, FULL).await;
        let facts = sim.facts(inv);
        assert_eq!(r.outcome, Outcome::Complete, "{inv}");
        let want: Vec<String> = facts.kept.iter().cloned().collect();
        assert_eq!(keys(&cache, inv), want, "{inv}");
        assert_eq!(r.skipped.duplicates, facts.duplicates as u64, "{inv}");
        assert_eq!(r.skipped.no_key, facts.empty_keys as u64, "{inv}");
        assert_eq!(r.skipped.not_kept, facts.not_kept as u64, "{inv}");
    }
}

/// An upstream that indents its JSON: keys, rules and rows read the same, the cache holds the
/// compact text, and a second pass recognises every item as unchanged (nothing rewritten).
#[tokio::test]
async fn an_upstream_that_indents_its_json_is_read_like_a_compact_one() {
    let start = |pretty: bool| async move {
        let sc = ses_inventory_sim::SimConfig {
            pretty,
            ..ses_inventory_sim::SimConfig::default()
        };
        let sim = ses_inventory_sim::Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        (sim, sc)
    };
    let (compact_sim, compact_sc) = start(false).await;
    let (pretty_sim, pretty_sc) = start(true).await;
    let compact_cache = Cache::new();
    let pretty_cache = Cache::new();
    for inv in ses_inventory::Inventory::ALL {
        poll(
            &config(&compact_sim, &compact_sc),
            inv,
            &compact_cache,
            FULL,
        )
        .await;
        let cfg = config(&pretty_sim, &pretty_sc);
        let first = poll(&cfg, inv, &pretty_cache, FULL).await;
        let want: Vec<String> = pretty_sim.facts(inv).kept.iter().cloned().collect();
        assert_eq!(keys(&pretty_cache, inv), want, "{inv}");
        assert_eq!(first.added as usize, want.len(), "{inv}");
        for key in &want {
            let pretty = pretty_cache.get(inv, key).unwrap();
            let compact = compact_cache.get(inv, key).unwrap();
            assert!(!pretty.raw().contains('\n'), "{inv} {key}: stored compact");
            // Same seed, same data; only dates differ (each simulator dates its data from
            // its own start).
            for (i, column) in ses_inventory::model::row::Row::columns(inv)
                .iter()
                .enumerate()
            {
                if column.kind != ses_inventory::model::row::ColumnKind::Time {
                    let cell = |row: &ses_inventory::model::row::Row| row.cell(i).to_text();
                    assert_eq!(
                        cell(&pretty.row()),
                        cell(&compact.row()),
                        "{inv} {key} {}",
                        column.name
                    );
                }
            }
        }
        let again = poll(&cfg, inv, &pretty_cache, FULL).await;
        assert_eq!(
            (again.outcome, again.added, again.updated, again.removed),
            (Outcome::Complete, 0, 0, 0),
            "{inv}"
        );
    }
}

#[tokio::test]
async fn a_requested_poll_joins_a_running_one_or_starts_now() {
    use ses_inventory::model::status::Phase;
    use ses_inventory::sync::daemon::{Daemon, RequestOutcome};
    let (sim, sc) = empty_sim().await;
    sim.set_items(Services, services(100));
    sim.inject(Fault::on(
        Services,
        None,
        FaultKind::Delay(std::time::Duration::from_millis(250)),
        None,
    ));
    let daemon = Daemon::start(
        std::sync::Arc::new(config(&sim, &sc)),
        ses_inventory::time::clock::Clock::System,
    )
    .unwrap();
    let control = daemon.control();
    let cache = daemon.cache().clone();
    eventually(10, "the buildup to start", || {
        cache.status(Services).phase == Phase::Building
    })
    .await;
    assert_eq!(
        control.request_poll(Services, false),
        RequestOutcome::Joined
    );
    assert_eq!(control.request_poll(Services, true), RequestOutcome::Joined);
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        cache.wait_ready(Services),
    )
    .await
    .unwrap();
    // The buildup is followed at once by its settling pass; then the poller is idle until the
    // next refresh is due, an hour on.
    settled(&cache, Services, 20).await;
    let first_pages = |sim: &ses_inventory_sim::Simulator| {
        sim.requests()
            .iter()
            .filter(|r| r.inventory == Some(Services.into()) && r.page == Some(1))
            .count()
    };
    assert_eq!(
        first_pages(&sim),
        2,
        "the requests joined the buildup instead of starting passes (the second is the settling pass)"
    );
    assert_eq!(
        cache.status(Services).last_full.unwrap().reason,
        Some(ses_inventory::sync::window::FullReason::Settling)
    );

    // Idle: a refresh request starts one now instead of an hour from now.
    let mut polls = cache.watch_polls();
    polls.borrow_and_update();
    assert_eq!(
        control.request_poll(Services, false),
        RequestOutcome::Queued
    );
    tokio::time::timeout(std::time::Duration::from_secs(20), polls.changed())
        .await
        .unwrap()
        .unwrap();
    let last = sim
        .requests()
        .into_iter()
        .rfind(|r| r.inventory == Some(Services.into()))
        .unwrap();
    assert_eq!(last.updated_days_ago, Some(0));
    daemon.shutdown().await;
}

#[tokio::test]
async fn consecutive_failures_count_until_a_poll_succeeds() {
    let (sim, sc) = empty_sim().await;
    let cfg = config(&sim, &sc);
    sim.set_items(Services, services(10));
    let cache = Cache::new();
    let mut poller = poller(&cfg, Services, &cache);
    sim.inject(Fault::on(Services, Some(1), FaultKind::status(502), None));
    for n in 1..=2 {
        let r = poller.poll(FULL).await;
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(cache.status(Services).consecutive_failures, n);
    }
    sim.clear_faults();
    let r = poller.poll(FULL).await;
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(cache.status(Services).consecutive_failures, 0);
}

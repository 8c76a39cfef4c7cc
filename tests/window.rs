//! Timing rules on tokio's paused clock: refresh windows after 1 h, 30 h and 5-day gaps, and
//! Retry-After. The simulator runs on its own thread in real time; the daemon's runtime is paused
//! and jumps from timer to timer, so days pass in milliseconds.

mod common;

use chrono::Utc;
use common::*;
use ses_inventory::Inventory::Services;
use ses_inventory::cache::Cache;
use ses_inventory::config::Config;
use ses_inventory::model::status::Outcome;
use ses_inventory::source::Upstream;
use ses_inventory::sync::Poller;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Fault, FaultKind, SimConfig, Simulator};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const HOUR: u64 = 3600;

fn sim_with_services() -> (Simulator, SimConfig) {
    let sc = SimConfig::empty();
    let sim = Simulator::start_on_thread(sc.clone()).expect("sim starts");
    sim.set_items(Services, services(50));
    (sim, sc)
}

fn spawn_poller(cfg: Config, cache: &Cache) -> tokio::task::JoinHandle<()> {
    let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
    let poller = Poller::new(
        Services,
        &cfg,
        upstream,
        cache.clone(),
        Clock::tokio_at(Utc::now()),
    );
    tokio::spawn(poller.run())
}

/// Runs the poller with `frequency` and returns the first refresh's `updatedDaysAgo` and how
/// long after the start (tokio time) it was sent.
async fn first_refresh(frequency: u64) -> (u32, Duration) {
    let (sim, sc) = sim_with_services();
    let mut cfg = config(&sim, &sc);
    cfg.poll.cache_update_frequency = frequency;
    let mut requests = sim.subscribe();
    let cache = Cache::new();
    let start = Instant::now();
    let task = spawn_poller(cfg, &cache);
    for _ in 0..20 {
        let r = requests.recv().await.expect("simulator alive");
        if let Some(n) = r.updated_days_ago {
            task.abort();
            return (n, start.elapsed());
        }
    }
    panic!("no refresh within 20 requests");
}

#[tokio::test(start_paused = true)]
async fn hourly_refreshes_ask_for_today_like_the_connector() {
    let (n, at) = first_refresh(HOUR).await;
    assert_eq!(n, 0);
    assert!(
        at >= Duration::from_secs(HOUR) && at < Duration::from_secs(HOUR + 60),
        "{at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_thirty_hour_frequency_asks_for_one_day_back() {
    let (n, at) = first_refresh(30 * HOUR).await;
    assert_eq!(n, 1);
    assert!(at >= Duration::from_secs(30 * HOUR), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn a_five_day_frequency_asks_for_five_days_back() {
    let (n, at) = first_refresh(120 * HOUR).await;
    assert_eq!(n, 5);
    assert!(at >= Duration::from_secs(120 * HOUR), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn a_thirty_hour_outage_widens_the_next_window() {
    let (sim, sc) = sim_with_services();
    let mut cfg = config(&sim, &sc);
    cfg.poll.failure_backoff_initial = 60;
    cfg.poll.failure_backoff_max = HOUR;
    let mut requests = sim.subscribe();
    let cache = Cache::new();
    let start = Instant::now();
    let task = spawn_poller(cfg, &cache);
    cache.wait_ready(Services).await;

    // From now on every refresh fails, for 30 hours.
    sim.inject(Fault {
        inventory: None,
        page: None,
        refresh_only: true,
        items: false,
        skip: 0,
        kind: FaultKind::Status {
            code: 500,
            retry_after: None,
        },
        times: None,
    });
    let mut healed = false;
    for _ in 0..2000 {
        let r = requests.recv().await.expect("simulator alive");
        if !healed && start.elapsed() >= Duration::from_secs(30 * HOUR) {
            sim.clear_faults();
            healed = true;
        }
        if let (true, 200, Some(n)) = (healed, r.status, r.updated_days_ago) {
            let gap = start.elapsed();
            // (N+1) days must cover the whole outage since the last good poll started.
            assert!(
                Duration::from_secs((u64::from(n) + 1) * 24 * HOUR) >= gap,
                "N={n} for {gap:?}"
            );
            assert!(n >= 1, "the window widened past today: N={n}");
            assert!(
                cache.status(Services).consecutive_failures > 10,
                "it did fail meanwhile"
            );
            assert_eq!(cache.len(Services), 50, "failures never emptied the cache");
            task.abort();
            return;
        }
    }
    panic!("the poller never recovered");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_capped() {
    let (sim, sc) = sim_with_services();
    let mut cfg = config(&sim, &sc);
    cfg.http.retry_after_max = 300;
    let cache = Cache::new();
    let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
    let mut poller = Poller::new(
        Services,
        &cfg,
        upstream,
        cache.clone(),
        Clock::tokio_at(Utc::now()),
    );

    for (retry_after, want) in [("7", 7), ("100000", 300)] {
        sim.inject(Fault {
            inventory: Some(Services.into()),
            page: Some(1),
            refresh_only: false,
            items: false,
            skip: 0,
            kind: FaultKind::Status {
                code: 429,
                retry_after: Some(retry_after.into()),
            },
            times: Some(1),
        });
        let start = Instant::now();
        let r = poller.poll(FULL).await;
        assert_eq!(r.outcome, Outcome::Complete);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(want) && took < Duration::from_secs(want + 1),
            "Retry-After {retry_after}: {took:?}"
        );
    }
}

/// `updatedDaysAgo` for known gaps, written out by hand from the contract: `rolling` covers the
/// last (N+1)×24 h, `calendar` since midnight UTC N days ago; the window reaches back to the
/// anchor minus `window_margin` (1 h by default).
#[test]
fn updated_days_ago_for_known_gaps() {
    use ses_inventory::config::DaysAgoSemantics::{Calendar, Rolling};
    use ses_inventory::model::status::SyncTimes;
    use ses_inventory::sync::window::{FullReason, PollPlan, days_ago, plan};
    let at = |s: &str| s.parse::<chrono::DateTime<Utc>>().unwrap();
    let since = at("2026-03-10T12:00:00Z");
    for (now, rolling, calendar) in [
        ("2026-03-10T11:00:00Z", 0, 0), // the anchor is in the future: nothing to widen
        ("2026-03-10T13:00:00Z", 0, 0),
        ("2026-03-11T12:00:00Z", 0, 1), // exactly 24 h: today's window still covers it
        ("2026-03-11T12:00:01Z", 1, 1),
        ("2026-03-12T12:00:00Z", 1, 2),
        ("2026-03-12T12:00:01Z", 2, 2),
        ("2026-03-15T23:59:59Z", 5, 5),
    ] {
        assert_eq!(
            days_ago(since, at(now), Rolling),
            rolling,
            "rolling at {now}"
        );
        assert_eq!(
            days_ago(since, at(now), Calendar),
            calendar,
            "calendar at {now}"
        );
    }

    let mut cfg = Config::defaults().poll;
    cfg.full_resync_interval = 0;
    let anchored = |anchor: &str| SyncTimes {
        last_complete_full: Some(at(anchor)),
        window_anchor: Some(at(anchor)),
    };
    let times = anchored("2026-03-10T12:30:00Z");
    // 23 h + the 1 h margin = 24 h: today. One second more: yesterday too.
    assert_eq!(
        plan(&times, at("2026-03-11T11:30:00Z"), &cfg),
        PollPlan::Refresh { days_ago: 0 }
    );
    assert_eq!(
        plan(&times, at("2026-03-11T11:30:01Z"), &cfg),
        PollPlan::Refresh { days_ago: 1 }
    );
    // 30 days + the margin is past max_refresh_window_days (30): a full pass instead.
    assert_eq!(
        plan(&times, at("2026-04-08T12:30:00Z"), &cfg),
        PollPlan::Refresh { days_ago: 29 }
    );
    assert_eq!(
        plan(&times, at("2026-04-09T12:30:00Z"), &cfg),
        PollPlan::Full(FullReason::WindowTooWide)
    );
    assert_eq!(
        plan(&SyncTimes::default(), at("2026-03-10T12:30:00Z"), &cfg),
        PollPlan::Full(FullReason::Initial)
    );
}

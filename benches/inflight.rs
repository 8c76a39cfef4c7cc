//! Benchmark: how long a full pass takes when the upstream answers each page after a fixed
//! latency, one page at a time and with pages in flight (issue 10, "Fast sync").
//!
//! `cargo bench --bench inflight` (services: `BENCH_ITEMS`, default 4000, i.e. 100 full pages
//! and the empty one that ends the listing; latency: `BENCH_LATENCY_MS`, default 50; pages in
//! flight: `BENCH_PAGES_IN_FLIGHT`, default "1,4,8").
//!
//! For each setting it prints the wall time of a cold full pass and its ratio to the ideal,
//! pages × latency ÷ pages_in_flight (a ratio of 1.0 would be perfect overlap). The first page
//! of a listing goes alone and the pages are taken in order, so the ideal is approached, not
//! reached. Figures are written down in docs/performance.md; this prints them, it asserts nothing.

use ses_inventory::Inventory;
use ses_inventory::cache::Cache;
use ses_inventory::source::Upstream;
use ses_inventory::sync::Poller;
use ses_inventory::sync::window::{FullReason, PollPlan};
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Api, SimConfig, Simulator};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n: usize = env("BENCH_ITEMS", 4000);
    let latency = Duration::from_millis(env("BENCH_LATENCY_MS", 50));
    let settings: Vec<u32> = std::env::var("BENCH_PAGES_IN_FLIGHT")
        .unwrap_or_else(|_| "1,4,8".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sc = SimConfig {
            services: n,
            carriers: 0,
            resources: 0,
            latency,
            ..SimConfig::empty()
        };
        let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        println!(
            "{n} services, {} ms per page, 40 items a page",
            latency.as_millis()
        );
        let mut baseline = None;
        for pages_in_flight in settings {
            let mut cfg = ses_inventory::cmd::demo::config_for(&sim, &sc);
            cfg.poll.records_per_page = 40;
            cfg.poll.pages_in_flight = pages_in_flight;
            cfg.poll.status_interval = 0;
            cfg.validate_timing().expect("a valid setting");
            let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
            let cache = Cache::new();
            let mut poller = Poller::new(
                Inventory::Services,
                &cfg,
                upstream,
                cache.clone(),
                Clock::System,
            );
            sim.reset_max_concurrent();
            let t = Instant::now();
            let r = poller.poll(PollPlan::Full(FullReason::Initial)).await;
            let took = t.elapsed();
            let ideal = latency * r.pages / pages_in_flight;
            let base = *baseline.get_or_insert(took);
            println!(
                "pages_in_flight {pages_in_flight}: {} pages, {} kept in {took:.2?}; \
                 ideal (pages × latency ÷ pages_in_flight) {ideal:.2?}, ratio {:.2}; \
                 {:.1}× faster than the first setting; at most {} requests at once",
                r.pages,
                cache.len(Inventory::Services),
                took.as_secs_f64() / ideal.as_secs_f64(),
                base.as_secs_f64() / took.as_secs_f64(),
                sim.max_concurrent(Api::Tmf638),
            );
        }
        sim.shutdown().await;
    });
}

//! Benchmark: a full pass of a large inventory from the simulator over loopback HTTP, then a
//! second full pass over an unchanged upstream, and the memory the cache takes per item.
//!
//! `cargo bench --bench sync` (items per inventory: `BENCH_ITEMS`, default 100000).
//! Figures are written down in docs/performance.md; this prints them, it asserts nothing.

use ses_inventory::Inventory;
use ses_inventory::cache::Cache;
use ses_inventory::source::Upstream;
use ses_inventory::sync::Poller;
use ses_inventory::sync::window::{FullReason, PollPlan};
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{SimConfig, Simulator};
use std::sync::Arc;
use std::time::Instant;

/// Counts live heap bytes, so that memory per item is measured exactly rather than guessed
/// from RSS (which also holds freed-but-kept and fragmented memory).
struct Counting;

static LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size() as i64, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> i64 {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::var("BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sc = SimConfig {
            services: n,
            carriers: 0,
            resources: n,
            ..SimConfig::empty()
        };
        let t = Instant::now();
        let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        println!(
            "simulator: {n} services + {n} resources generated in {:.1?}",
            t.elapsed()
        );

        let mut cfg = ses_inventory::cmd::demo::config_for(&sim, &sc);
        cfg.poll.records_per_page = 40;
        cfg.poll.status_interval = 0;
        let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
        let cache = Cache::new();
        for inv in [Inventory::Services, Inventory::Resources] {
            let mut poller = Poller::new(inv, &cfg, upstream.clone(), cache.clone(), Clock::System);
            let before = rss();
            let live_before = live();
            let t = Instant::now();
            let r = poller.poll(PollPlan::Full(FullReason::Initial)).await;
            let first = t.elapsed();
            let grown = rss().saturating_sub(before);
            let held = (live() - live_before).max(0) as u64;
            let kept = cache.len(inv);
            let raw: usize = cache.snapshot(inv).iter().map(|i| i.raw().len()).sum();
            let t = Instant::now();
            let again = poller.poll(PollPlan::Full(FullReason::Resync)).await;
            let second = t.elapsed();
            println!(
                "{inv}: first full pass {} pages, {kept} kept in {first:.2?} ({:.0} items/s); \
                 unchanged second pass in {second:.2?} ({:.0} items/s, {} updated); \
                 heap held {} bytes/item (compact JSON {} bytes/item); RSS +{} MiB",
                r.pages,
                r.received as f64 / first.as_secs_f64(),
                again.received as f64 / second.as_secs_f64(),
                again.updated,
                held / kept.max(1) as u64,
                raw / kept.max(1),
                grown >> 20,
            );
        }
        sim.shutdown().await;
    });
}

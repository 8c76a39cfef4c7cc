//! Benchmark (not a test) of the durable store: writing full passes and a warm start, for
//! 100,000 items per inventory fetched from the simulator over loopback HTTP.
//!
//! Run: `cargo bench --bench store` (optionally `-- 20000` for another size). Prints figures;
//! docs/performance.md ("Store") records them. `STORE_BENCH_KEEP=1` keeps the file;
//! `cargo bench --bench store -- warm FILE` times only warm starts of a kept file, each in a
//! process of its own: three from the rows (the file in the page cache after the first), then
//! three that each stop cleanly, leaving a stop snapshot, which the next start reads.

use ses_inventory::Inventory;
use ses_inventory::cache::Cache;
use ses_inventory::source::Upstream;
use ses_inventory::store::Store;
use ses_inventory::sync::window::{FullReason, PollPlan};
use ses_inventory::sync::{Applied, Poller};
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{SimConfig, Simulator};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "warm-once") {
        // The daemon's allocator settings (`main`), before any thread starts.
        ses_inventory::cmd::memory::limit_arenas();
        let path = std::path::Path::new(args.get(i + 1).expect("warm-once FILE"));
        warm_start(path, args.get(i + 2).is_some_and(|a| a == "stop"));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "warm") {
        // Each start in a process of its own, as a restarted daemon is: a fresh heap.
        let file = args.get(i + 1).expect("warm FILE");
        let once = |then: &str| {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--bench", "warm-once", file, then])
                .status()
                .unwrap();
            assert!(status.success(), "{status}");
        };
        for _ in 0..3 {
            once("exit");
        }
        for _ in 0..3 {
            once("stop");
        }
        once("exit");
        return;
    }
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(n));
}

/// One full pass of `inv` over `cache`; returns what the store would be sent.
async fn full_pass(upstream: &Upstream, cache: &Cache, inv: Inventory) -> Applied {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut poller = Poller::new(
        inv,
        upstream.config(),
        upstream.clone(),
        cache.clone(),
        Clock::System,
    )
    .with_journal(tx);
    let report = poller.poll(PollPlan::Full(FullReason::Initial)).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    rx.recv().await.expect("the poll is journalled")
}

/// Bytes this process has passed to `write` (`wchar` in /proc/self/io): the WAL's frames, and
/// the database pages a checkpoint copies back.
fn written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("wchar: ")?.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes the passes, then checkpoints the WAL into the file (on a connection of its own), and
/// prints what that wrote against the file's size.
fn write_all(store: &mut Store, cache: &Cache, passes: &[Applied], what: &str) {
    let before = written();
    write_passes(store, cache, passes, what);
    let during = written() - before;
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let total = written() - before;
    let file = std::fs::metadata(store.path()).map_or(0, |m| m.len());
    println!(
        "  written: {:.1} MB by the writes (WAL frames and automatic checkpoints), {:.1} MB with a \
         final checkpoint: {:.1} % of the {:.0} MB file",
        during as f64 / 1e6,
        total as f64 / 1e6,
        100.0 * total as f64 / file.max(1) as f64,
        file as f64 / 1e6
    );
}

fn write_passes(store: &mut Store, cache: &Cache, passes: &[Applied], what: &str) {
    let started = Instant::now();
    for applied in passes {
        let t = Instant::now();
        let stats = store.write(applied, cache).unwrap();
        println!(
            "  {what:<28} {:<9} {:>7} upserted {:>6} removed {:>7} touched  {:>7.2} s",
            applied.inventory.as_str(),
            stats.upserted,
            stats.removed,
            stats.touched,
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "{what}: {:.2} s for the three inventories",
        started.elapsed().as_secs_f64()
    );
}

async fn run(n: usize) {
    let sc = SimConfig {
        services: n,
        carriers: n,
        resources: n,
        ..SimConfig::default()
    };
    let t = Instant::now();
    let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    println!(
        "simulator: {n} items per inventory generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut cfg = ses_inventory::cmd::demo::config_for(&sim, &sc);
    cfg.poll.records_per_page = 500;
    let upstream = Upstream::new(Arc::new(cfg.clone())).unwrap();
    let dir = std::env::temp_dir().join(format!("sesinv-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("inventory.db");
    let (mut store, _) = Store::open(&path).unwrap();
    let cache = Cache::new();

    let mut passes = Vec::new();
    for inv in Inventory::ALL {
        passes.push(full_pass(&upstream, &cache, inv).await);
    }
    write_all(&mut store, &cache, &passes, "first full pass (inserts)");

    let mut passes = Vec::new();
    for inv in Inventory::ALL {
        passes.push(full_pass(&upstream, &cache, inv).await);
    }
    write_all(&mut store, &cache, &passes, "full pass, nothing changed");

    sim.mutate(1);
    let mut passes = Vec::new();
    for inv in Inventory::ALL {
        passes.push(full_pass(&upstream, &cache, inv).await);
    }
    write_all(&mut store, &cache, &passes, "full pass, 2-3% changed");
    let kept: usize = Inventory::ALL.iter().map(|&i| cache.len(i)).sum();
    drop(store);
    drop(passes);
    drop(cache);

    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mb = |b: u64| b as f64 / 1e6;
    let mut ndjson = 0u64;
    for inv in Inventory::ALL {
        let mut out = Counter(0);
        ses_inventory::store::export::export(
            &path,
            inv,
            ses_inventory::store::export::Format::Ndjson,
            &mut out,
        )
        .unwrap();
        ndjson += out.0;
    }
    println!(
        "file: {:.0} MB (+ {:.0} MB WAL) for {kept} items: {:.0} bytes an item, {:.2} x the NDJSON export ({:.0} MB)",
        mb(size(&path)),
        mb(size(&dir.join("inventory.db-wal"))),
        size(&path) as f64 / kept as f64,
        size(&path) as f64 / ndjson as f64,
        mb(ndjson),
    );

    warm_start(&path, true);
    warm_start(&path, false);
    if std::env::var_os("STORE_BENCH_KEEP").is_some() {
        println!("kept {}", path.display());
    } else {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Opens the store at `path` and loads it into a new cache: what a restarted daemon does before
/// it is ready.
/// When rows had to be extracted (a file of an earlier schema), waits for the writer to store
/// their cells, as a daemon's does in the background, and says how long that took. With
/// `stop_snapshot`, then stops as a daemon does on SIGTERM, leaving a stop snapshot for the
/// next warm start, and says how long the stop took.
fn warm_start(path: &std::path::Path, stop_snapshot: bool) {
    // A start removes the snapshot it read on a thread of its own, while the daemon polls; here
    // the next start would overlap it: wait (bounded) until it is gone.
    for _ in 0..600 {
        let used = Inventory::ALL.iter().any(|inv| {
            std::path::Path::new(&format!("{}-snapshot-{inv}.used", path.display())).exists()
        });
        if !used {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let t = Instant::now();
    let cache = Cache::new();
    let (store, _) = Store::open(path).unwrap();
    let mut store = store.with_snapshot_on_stop(stop_snapshot);
    let loaded = store.load(&cache).unwrap();
    let extracted: usize = loaded.extracted.iter().sum();
    let from = if loaded.from_snapshot.contains(&true) {
        "the stop snapshot"
    } else {
        "the rows"
    };
    println!(
        "warm start from {from} (open + load {} items into the cache, {extracted} rows extracted): {:.2} s",
        loaded.items.iter().sum::<usize>(),
        t.elapsed().as_secs_f64()
    );
    if stop_snapshot && extracted == 0 {
        let t = Instant::now();
        let (journal, writer) = store.spawn_writer(cache.clone());
        drop(journal);
        finish(writer);
        let bytes: u64 = Inventory::ALL
            .iter()
            .filter_map(|inv| std::fs::metadata(format!("{}-snapshot-{inv}", path.display())).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "  clean stop, leaving a stop snapshot of {:.0} MB: {:.2} s",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        return;
    }
    if extracted > 0 {
        let t = Instant::now();
        let (journal, writer) = store.spawn_writer(cache.clone());
        let conn = rusqlite::Connection::open(path).unwrap();
        let lacking = || -> i64 {
            Inventory::ALL
                .iter()
                .map(|inv| {
                    let sql = format!("SELECT count(*) FROM \"{inv}\" WHERE cells IS NULL");
                    conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).unwrap()
                })
                .sum()
        };
        // Bounded: an hour.
        for _ in 0..3600 {
            if lacking() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        drop(journal);
        finish(writer);
        println!(
            "  the writer stored the cells of {extracted} rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
}

/// Waits for `writer`'s last commit (and stop snapshot), from inside a runtime or not.
fn finish(writer: ses_inventory::store::Writer) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(writer.finish())
    })
    .join()
    .unwrap();
}

/// Counts the bytes written to it.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

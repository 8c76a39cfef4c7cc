//! Benchmark: the read API under load on a large inventory, idle and while a full pass is
//! being fetched and applied.
//!
//! `cargo bench --bench reads` (`READS_ITEMS` simulator services, default 1 000 000;
//! `READS_CLIENTS`, default 20; `READS_SECONDS` per phase, default 10).
//!
//! The daemon (pollers, cache, API; pages of 40, the default) runs in this process against the
//! simulator in a process of its own on loopback;
//! `READS_CLIENTS` tasks with keep-alive connections each send one request after the other
//! (or, paced, 1,000 requests a second among them, latency counted from when each was due),
//! cycling through three kinds: a page of 100 by id at a random offset, a page sorted by
//! `-last_update`, two equality filters (status and type); `q` (a substring search) is timed
//! alone, one request at a time. Prints per kind the count,
//! median and p99 latency, the requests per second, and the memory of the view's indexes next
//! to the items'. Asserts nothing (results are written down in docs/performance.md).

use ses_inventory::Inventory;
use ses_inventory::config::Config;
use ses_inventory::model::secret::Secret;
use ses_inventory::serve::server::Bound;
use ses_inventory::sync::daemon::Daemon;
use ses_inventory::time::clock::Clock;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const KINDS: [&str; 4] = ["page by id", "sorted", "two filters", "q"];

fn path(kind: usize, n: usize, salt: u64) -> String {
    let offset = (salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20) as usize % n.max(1);
    match kind {
        0 => format!("/api/v1/services?limit=100&offset={offset}"),
        1 => format!(
            "/api/v1/services?sort=-last_update&limit=100&offset={}",
            offset % 10_000
        ),
        2 => "/api/v1/services?status=Operational&type=CFS&limit=100".to_string(),
        _ => {
            let words = [
                "astra",
                "ku-band",
                "betzdorf",
                "government",
                "ses-svc-00012",
            ];
            format!(
                "/api/v1/services?q={}&limit=100",
                words[salt as usize % words.len()]
            )
        }
    }
}

/// One request of `kind` (the `i`th of a load), read to its end.
async fn fetch(http: &reqwest::Client, base: &str, kind: usize, n: usize, i: u64) {
    let r = http
        .get(format!("{base}{}", path(kind, n, i)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let _ = r.bytes().await.unwrap();
}

/// `clients` tasks for `seconds`: latencies per kind, and the requests answered.
async fn load(base: &str, n: usize, clients: usize, seconds: u64) -> (Vec<Vec<Duration>>, usize) {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            let mut seen: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
            let mut i = client as u64;
            while Instant::now() < until {
                // The load mixes the three indexed kinds; `q` is timed on its own.
                let kind = i as usize % (KINDS.len() - 1);
                let t = Instant::now();
                fetch(&http, &base, kind, n, i).await;
                seen[kind].push(t.elapsed());
                i += clients as u64;
            }
            seen
        }));
    }
    gather(tasks).await
}

/// `clients` tasks sending `rate` requests a second in all, evenly paced, for `seconds`. A
/// latency counts from when the request was due, not from when it was sent, so a slow answer
/// that delays the next request is not hidden (no coordinated omission).
async fn paced(
    base: &str,
    n: usize,
    clients: usize,
    rate: u64,
    seconds: u64,
) -> (Vec<Vec<Duration>>, usize) {
    let start = Instant::now() + Duration::from_millis(50);
    let every = Duration::from_secs_f64(clients as f64 / rate as f64);
    let count = (rate * seconds) as usize / clients;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            let mut seen: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
            // Clients spread evenly over one interval.
            let first = start + every.mul_f64(client as f64 / clients as f64);
            for k in 0..count {
                let due = first + every * k as u32;
                tokio::time::sleep_until(due.into()).await;
                let i = (k * clients + client) as u64;
                let kind = i as usize % (KINDS.len() - 1);
                fetch(&http, &base, kind, n, i).await;
                seen[kind].push(due.elapsed());
            }
            seen
        }));
    }
    gather(tasks).await
}

/// The clients' latencies per kind, together, and how many requests they made.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<Vec<Vec<Duration>>>>,
) -> (Vec<Vec<Duration>>, usize) {
    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
    for task in tasks {
        for (kind, seen) in task.await.unwrap().into_iter().enumerate() {
            all[kind].extend(seen);
        }
    }
    let total = all.iter().map(Vec::len).sum();
    (all, total)
}

fn report(phase: &str, (mut all, total): (Vec<Vec<Duration>>, usize), seconds: u64) {
    println!(
        "{phase}: {total} requests in {seconds} s = {:.0} requests/s",
        total as f64 / seconds as f64
    );
    for (kind, seen) in all.iter_mut().enumerate() {
        seen.sort();
        let at =
            |q: f64| seen.get(((seen.len() as f64 * q) as usize).min(seen.len().saturating_sub(1)));
        println!(
            "  {:<12} {:>6} requests, median {:>8.2?}, p99 {:>8.2?}",
            KINDS[kind],
            seen.len(),
            at(0.5).copied().unwrap_or_default(),
            at(0.99).copied().unwrap_or_default()
        );
    }
}

/// How long until the published services view has every index (at most two minutes).
async fn warm(cache: &ses_inventory::cache::Cache) -> Duration {
    let t = Instant::now();
    while !cache.view(Inventory::Services).is_warm() && t.elapsed().as_secs() < 120 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.elapsed()
}

fn main() {
    let n = env_usize("READS_ITEMS", 1_000_000);
    let clients = env_usize("READS_CLIENTS", 20);
    let seconds = env_usize("READS_SECONDS", 10) as u64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The simulator in a process of its own, as the gateway would be: its page building
        // competes for the cores, not for the daemon's async workers.
        let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_ses-inventory"))
            .args([
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--services",
                &n.to_string(),
            ])
            .args(["--carriers", "0", "--resources", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sim.stdout.take().unwrap()),
            &mut first,
        )
        .unwrap();
        // "simulator: tmf638 URL tmf639 URL"
        let urls: Vec<&str> = first.split_whitespace().collect();
        let mut cfg = Config::defaults();
        cfg.tmf638.endpoint = urls[2].to_string();
        cfg.tmf638.username = "svc-user".into();
        cfg.tmf638.password = Secret::new(String::from("svc-pass"));
        cfg.tmf639.endpoint = urls[4].to_string();
        cfg.tmf639.username = "res-user".into();
        cfg.tmf639.password = Secret::new(String::from("res-pass"));
        cfg.http.bypass_proxy = true;
        cfg.poll.status_interval = 0;
        cfg.poll.max_pages = 100_000;
        // Idle means idle: no refresh during the measurement (the busy phase asks for a pass).
        cfg.poll.cache_update_frequency = 3600;
        cfg.store.path = String::new();
        cfg.api.listen = "127.0.0.1:0".into();
        let bound = Bound::bind(&cfg.api).await.unwrap();
        let t = Instant::now();
        let daemon = Daemon::start(Arc::new(cfg), Clock::System).unwrap();
        daemon.cache().wait_all_ready().await;
        let cache = daemon.cache().clone();
        let kept = cache.len(Inventory::Services);
        println!(
            "{kept} services kept after the first full pass ({:.1?})",
            t.elapsed()
        );
        let server = bound.serve(cache.clone(), daemon.control());
        let base = format!("http://{}", server.addr().unwrap());
        println!(
            "postings and search text built in the background {:.2?} after the API started",
            warm(&cache).await
        );

        // The first request of each kind (a sort builds its order); then the load.
        for (kind, name) in KINDS.iter().enumerate() {
            let t = Instant::now();
            let r = reqwest::Client::new()
                .get(format!("{base}{}", path(kind, kept, 1)))
                .send()
                .await
                .unwrap();
            let _ = r.bytes().await;
            println!("first {name:<12} {:.2?}", t.elapsed());
        }
        report(
            "idle, one client",
            load(&base, kept, 1, seconds).await,
            seconds,
        );
        report("idle", load(&base, kept, clients, seconds).await, seconds);
        report(
            "idle, 1,000 requests/s paced over the clients",
            paced(&base, kept, clients, 1000, seconds).await,
            seconds,
        );
        let http = reqwest::Client::new();
        let mut searches = Vec::new();
        for salt in 0..20 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{}", path(3, kept, salt)))
                .send()
                .await
                .unwrap();
            let _ = r.bytes().await;
            searches.push(t.elapsed());
        }
        searches.sort();
        println!(
            "q alone, one at a time: median {:.2?}, slowest of 20 {:.2?}",
            searches[10], searches[19]
        );

        // Each phase reads while a full pass (of its own) is fetched and applied; a pass takes
        // longer than a phase at a million items.
        for phase in 0..3 {
            let mut polls = cache.watch_polls();
            polls.mark_unchanged();
            daemon.control().request_poll(Inventory::Services, true);
            let t = Instant::now();
            let (name, busy) = match phase {
                0 => (
                    "during a full pass, 1,000 requests/s paced over the clients",
                    paced(&base, kept, clients, 1000, seconds).await,
                ),
                1 => (
                    "during a full pass, one client",
                    load(&base, kept, 1, seconds).await,
                ),
                _ => (
                    "during a full pass",
                    load(&base, kept, clients, seconds).await,
                ),
            };
            report(name, busy, seconds);
            let _ = tokio::time::timeout(Duration::from_secs(300), polls.changed()).await;
            println!(
                "  (the pass was applied {:.1?} after it was asked for)",
                t.elapsed()
            );
        }
        println!(
            "the pass's view warm {:.2?} after it was applied",
            warm(&cache).await
        );

        let view = cache.view(Inventory::Services);
        let items: usize = view
            .items()
            .iter()
            .map(|i| i.heap_bytes() + std::mem::size_of::<ses_inventory::model::item::Item>() + 32)
            .sum();
        println!(
            "indexes {} bytes/item, items {} bytes/item: {:.1} %",
            view.index_bytes() / view.len().max(1),
            items / view.len().max(1),
            100.0 * view.index_bytes() as f64 / items.max(1) as f64
        );
        server.shutdown().await;
        daemon.shutdown().await;
        let _ = sim.kill();
        let _ = sim.wait();
    });
}

//! Benchmark: the daemon's full buildup against a minimal client of its own, in one sitting,
//! against the same simulator data, each in its own process so that CPU time and peak memory
//! are the work's alone.
//!
//! `cargo bench --bench buildup` (sizes: `BUILDUP_SERVICES`, `BUILDUP_CARRIERS`,
//! `BUILDUP_RESOURCES`, default 20 000 / 5 000 / 40 000; `BUILDUP_ROUNDS`, default 3;
//! `BUILDUP_MIX`, the simulator's data mix as its flags take it, e.g.
//! `BUILDUP_MIX="--not-kept-permille 400 --v5-permille 900 --pad-bytes 1500"`; default: the
//! simulator's default mix).
//!
//! The minimal client does what any client must: reqwest with keep-alive, pages of 40 one after
//! the other, each page parsed into borrowed raw elements, each element's key read (`externalId`,
//! else v5's `externalIdentifier[0].id`; `id` for resources) and its bytes kept in a map. The daemon does everything it does in production but the store: keep rules,
//! rows, churn signals, the cache. Both run in a child process started from this binary; the
//! simulator runs in a third (`ses-inventory sim`). Prints medians and the ratio; asserts
//! nothing (results are written down in docs/performance.md).

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

const ROLE: &str = "BUILDUP_ROLE";
const BASE: &str = "BUILDUP_BASE";

/// CPU seconds (user + system) this process has used, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat (utime, stime), counted from after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process, in KiB (VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (path, extra query, key field, basic-auth user and password) of each collection.
const COLLECTIONS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "/gstm/dataminer/tmf/api/v1/tmf638/service",
        "status=1",
        "externalId",
        "svc-user",
        "svc-pass",
    ),
    (
        "/gstm/dataminer/tmf/api/v1/tmf638/service",
        "@type=element",
        "externalId",
        "svc-user",
        "svc-pass",
    ),
    (
        "/gstm/dataminer/tmf/api/v1/tmf639/resource",
        "status=1",
        "id",
        "res-user",
        "res-pass",
    ),
];

/// The minimal client: every page of every collection, key and bytes of each element kept.
async fn minimal_client(base: &str) -> usize {
    #[derive(Deserialize)]
    struct Keys<'a> {
        #[serde(borrow, rename = "externalId")]
        external_id: Option<Cow<'a, str>>,
        /// v5 services and carriers: `externalIdentifier[0].id`.
        #[serde(borrow, rename = "externalIdentifier")]
        external_identifier: Option<Vec<Ident<'a>>>,
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Ident<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
    }
    ses_inventory::source::install_crypto_provider();
    let client = reqwest::Client::new();
    let mut kept = 0;
    for (path, query, key_field, user, password) in COLLECTIONS {
        let mut items: HashMap<String, Box<str>> = HashMap::new();
        for page in 1.. {
            let url = format!("{base}{path}?{query}&recordsPerPage=40&page={page}");
            let body = client
                .get(url)
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let elements: Vec<&RawValue> = serde_json::from_slice(&body).unwrap();
            for element in &elements {
                let Ok(keys) = serde_json::from_str::<Keys<'_>>(element.get()) else {
                    continue;
                };
                let key = if key_field == "id" {
                    keys.id
                } else {
                    keys.external_id.or_else(|| {
                        keys.external_identifier?
                            .into_iter()
                            .next()
                            .and_then(|i| i.id)
                    })
                };
                if let Some(key) = key.filter(|k| !k.is_empty()) {
                    items
                        .entry(key.into_owned())
                        .or_insert_with(|| element.get().into());
                }
            }
            if elements.len() < 40 {
                break;
            }
        }
        kept += items.len();
        std::hint::black_box(&items);
        // Kept alive to the end, like the daemon's cache.
        std::mem::forget(items);
    }
    kept
}

/// The daemon's full buildup of the three inventories, one after the other.
async fn daemon(base: &str) -> usize {
    use ses_inventory::cache::Cache;
    use ses_inventory::config::Config;
    use ses_inventory::model::secret::Secret;
    use ses_inventory::source::Upstream;
    use ses_inventory::sync::Poller;
    use ses_inventory::sync::window::{FullReason, PollPlan};
    use ses_inventory::time::clock::Clock;
    let mut cfg = Config::defaults();
    cfg.tmf638.endpoint = format!("{base}/gstm/dataminer/tmf/api/v1/tmf638");
    cfg.tmf638.username = "svc-user".into();
    cfg.tmf638.password = Secret::new(String::from("svc-pass"));
    cfg.tmf639.endpoint = format!("{base}/gstm/dataminer/tmf/api/v1/tmf639");
    cfg.tmf639.username = "res-user".into();
    cfg.tmf639.password = Secret::new(String::from("res-pass"));
    cfg.http.bypass_proxy = true;
    cfg.store.path = String::new();
    let upstream = Upstream::new(std::sync::Arc::new(cfg.clone())).unwrap();
    let cache = Cache::new();
    let mut kept = 0;
    for inv in ses_inventory::Inventory::ALL {
        let mut poller = Poller::new(inv, &cfg, upstream.clone(), cache.clone(), Clock::System);
        let report = poller.poll(PollPlan::Full(FullReason::Initial)).await;
        assert_eq!(
            report.outcome,
            ses_inventory::model::status::Outcome::Complete
        );
        kept += cache.len(inv);
    }
    std::mem::forget(cache);
    kept
}

/// One child run: prints `cpu_seconds peak_kib items wall_seconds`.
fn child(role: &str, base: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpu = cpu_seconds();
    let t = Instant::now();
    let kept = runtime.block_on(async {
        match role {
            "client" => minimal_client(base).await,
            _ => daemon(base).await,
        }
    });
    println!(
        "{} {} {} {}",
        cpu_seconds() - cpu,
        peak_rss_kib(),
        kept,
        t.elapsed().as_secs_f64()
    );
}

fn run_child(role: &str, base: &str) -> (f64, u64, usize, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env(BASE, base)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{role} printed {text:?}");
    (
        f[0].parse().unwrap(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let (Ok(role), Ok(base)) = (std::env::var(ROLE), std::env::var(BASE)) {
        return child(&role, &base);
    }
    let (services, carriers, resources) = (
        env_usize("BUILDUP_SERVICES", 20_000),
        env_usize("BUILDUP_CARRIERS", 5_000),
        env_usize("BUILDUP_RESOURCES", 40_000),
    );
    let rounds = env_usize("BUILDUP_ROUNDS", 3).max(1);
    let mix = std::env::var("BUILDUP_MIX").unwrap_or_default();
    let mut sim = Command::new(env!("CARGO_BIN_EXE_ses-inventory"))
        .args(["sim", "--listen", "127.0.0.1:0"])
        .args(["--services", &services.to_string()])
        .args(["--carriers", &carriers.to_string()])
        .args(["--resources", &resources.to_string()])
        .args(mix.split_whitespace())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // "simulator: tmf638 http://127.0.0.1:PORT/... tmf639 ..."
    let url = first.split_whitespace().nth(2).unwrap_or_default();
    let base = url.split("/gstm").next().unwrap_or_default().to_string();
    println!(
        "simulator at {base}: {services} services, {carriers} carriers, {resources} resources, \
         mix: {}",
        if mix.is_empty() { "default" } else { &mix }
    );

    let mut results: HashMap<&str, Vec<(f64, u64, usize, f64)>> = HashMap::new();
    for _ in 0..rounds {
        for role in ["client", "daemon"] {
            results
                .entry(role)
                .or_default()
                .push(run_child(role, &base));
        }
    }
    let _ = sim.kill();
    let _ = sim.wait();
    let summary = |role: &str| {
        let r = &results[role];
        let cpu = median(r.iter().map(|x| x.0).collect());
        let peak = median(r.iter().map(|x| x.1 as f64).collect()) / 1024.0;
        let wall = median(r.iter().map(|x| x.3).collect());
        println!(
            "{role:>7}: {} items kept, CPU {cpu:.2} s, wall {wall:.2} s, peak RSS {peak:.0} MiB (median of {rounds})",
            r[0].2
        );
        (cpu, peak, r[0].2 as f64)
    };
    let client = summary("client");
    let daemon = summary("daemon");
    println!(
        "daemon / minimal client: CPU {:.2}, CPU per item kept {:.2}, peak RSS {:.2}",
        daemon.0 / client.0,
        (daemon.0 / daemon.2) / (client.0 / client.2),
        daemon.1 / client.1
    );
}

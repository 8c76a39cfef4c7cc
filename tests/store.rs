//! The durable store with real SQLite files: warm restarts, `kill -9` of the real binary during
//! a full pass, a corrupt file, a newer schema, an unwritable location, and `export`.

mod common;

use common::{output, text};

use ses_inventory::Inventory::{self, Carriers, Resources, Services};
use ses_inventory::cache::Cache;
use ses_inventory::config::Config;
use ses_inventory::model::row::Row;
use ses_inventory::store::{SCHEMA_VERSION, Store};
use ses_inventory::sync::daemon::Daemon;
use ses_inventory::sync::window::FullReason;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Fault, FaultKind, Hold, SimConfig, Simulator};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// A fresh, empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sesinv-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sim_with(sc: SimConfig) -> Simulator {
    Simulator::start(sc, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

/// The binary configured from the environment only, pointed at `sim`, storing in `store`.
fn command(sim: &Simulator, store: &Path) -> Command {
    let mut c = common::binary(sim, sim.config());
    c.env("SES_INVENTORY__STORE__PATH", store);
    c
}

/// A running binary whose stderr lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn spawn(mut c: Command) -> Running {
    c.arg("run").stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Running { child, lines }
}

impl Running {
    /// Waits (bounded) until a log line for each of `invs` (or just one line, when `invs` is
    /// empty) contains `message` and `extra`.
    fn wait_for(&self, message: &str, extra: &str, invs: &[Inventory]) {
        let mut left: BTreeSet<Inventory> = invs.iter().copied().collect();
        let mut any = invs.is_empty();
        while any || !left.is_empty() {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no `{message}` for {left:?} within 60 s"));
            if line.contains(message) && line.contains(extra) {
                any = false;
                left.retain(|inv| !line.contains(&format!("\"inventory\":\"{inv}\"")));
            }
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits (bounded) for the process to end; returns its exit code (None: killed).
    fn wait_exit(mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(std::time::Instant::now() < deadline, "still running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An upstream item's key as the contract defines it: `id` for resources; `externalId`, else
/// the v5 `externalIdentifier[0].id`, for services and carriers. Blank is no key.
fn contract_key(inv: Inventory, v: &serde_json::Value) -> Option<String> {
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_str)
            .filter(|k| !k.trim().is_empty())
            .map(String::from)
    };
    match inv {
        Resources => text(v.get("id")),
        _ => text(v.get("externalId")).or_else(|| text(v.pointer("/externalIdentifier/0/id"))),
    }
}

/// Keys stored for `inv`, read with plain SQL as an operator would.
fn stored_keys(path: &Path, inv: Inventory) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare(&format!("SELECT key FROM {inv}")).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Starts the daemon in-process over `path`: open, warm load, writer, pollers.
fn start(cfg: &Config, path: &Path) -> (Daemon, ses_inventory::store::Writer) {
    let cache = Cache::new();
    let (mut store, _) = Store::open(path).unwrap();
    store.load(&cache).unwrap();
    let (journal, writer) = store.spawn_writer(cache.clone());
    let daemon =
        Daemon::start_with(Arc::new(cfg.clone()), Clock::System, cache, Some(journal)).unwrap();
    (daemon, writer)
}

async fn ready(cache: &Cache) {
    tokio::time::timeout(Duration::from_secs(60), cache.wait_all_ready())
        .await
        .expect("every inventory ready within 60 s");
}

/// Ready, and settled: the settling pass after each buildup has run and the pollers are idle.
async fn settled(cache: &Cache) {
    ready(cache).await;
    for inv in Inventory::ALL {
        common::settled(cache, inv, 60).await;
    }
}

type Snapshot = BTreeMap<String, (String, String, String, String)>;

/// key → (raw, row, first_seen, last_seen) of every cached item.
fn snapshot(cache: &Cache, inv: Inventory) -> Snapshot {
    cache
        .snapshot(inv)
        .iter()
        .map(|i| {
            (
                i.key.to_string(),
                (
                    i.raw().to_string(),
                    format!("{:?}", i.row()),
                    i.first_seen.to_rfc3339(),
                    i.last_seen().to_rfc3339(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_every_item_and_the_sync_state_and_is_ready_before_any_request() {
    let sim = sim_with(SimConfig::default()).await;
    let mut cfg = common::config(&sim, sim.config());
    // "No request after the restart" is read from the simulator's log: one page at a time, no
    // request abandoned past the end of a listing can reach it late.
    cfg.poll.pages_in_flight = 1;
    let dir = temp_dir("restart");
    let path = dir.join("inventory.db");

    let (daemon, writer) = start(&cfg, &path);
    // The buildups and their settling passes: the last polls before the restart.
    settled(daemon.cache()).await;
    let before: Vec<Snapshot> = Inventory::ALL
        .iter()
        .map(|&inv| snapshot(daemon.cache(), inv))
        .collect();
    let statuses: Vec<_> = Inventory::ALL
        .iter()
        .map(|&inv| daemon.cache().status(inv))
        .collect();
    daemon.shutdown().await;
    writer.finish().await;
    let requests_before = sim.requests().len();

    // The restart: the store alone makes every inventory ready, with the same items and times.
    let cache = Cache::new();
    let (mut store, opened) = Store::open(&path).unwrap();
    assert!(!opened.created && opened.moved_aside.is_none());
    let loaded = store.load(&cache).unwrap();
    assert_eq!(loaded.ready, [true; 3]);
    assert_eq!(
        loaded.extracted, [0; 3],
        "every row read from its stored cells"
    );
    assert!(cache.all_ready(), "ready at once");
    // Monitoring sees the stored last success at once, not a gap until the next poll.
    let scrape = ses_inventory::telemetry::metrics::render(&cache);
    for (i, inv) in Inventory::ALL.into_iter().enumerate() {
        let prefix =
            format!("ses_inventory_last_success_timestamp_seconds{{inventory=\"{inv}\"}} ");
        let line = scrape
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{prefix} in {scrape}"));
        let value: f64 = line[prefix.len()..].parse().unwrap();
        let stored = statuses[i].last_success.unwrap().timestamp_millis() as f64 / 1000.0;
        assert!((value - stored).abs() < 0.001, "{inv}: {value} vs {stored}");
    }
    assert_eq!(sim.requests().len(), requests_before, "before any request");
    for (i, inv) in Inventory::ALL.into_iter().enumerate() {
        // Every item, its row as the pass extracted it, and when it was seen. The last pass
        // before the restart, the settling pass, saw every item unchanged: the cache noted the
        // moment each page came in; the file holds that moment when the buildup's rows were
        // written after it (they carry the item's last_seen then), else the settling pass's
        // end (one statement for all the rows a swept full pass saw). A restart brings back
        // what the file holds: every item as it was, seen by the settling pass.
        let settling = statuses[i].last_full.as_ref().unwrap();
        assert_eq!(settling.reason, Some(FullReason::Settling), "{inv}");
        assert_eq!((settling.added, settling.updated), (0, 0), "{inv}");
        let at_end = chrono::DateTime::from_timestamp_millis(settling.finished.timestamp_millis())
            .unwrap()
            .to_rfc3339();
        let loaded = snapshot(&cache, inv);
        let expected: Snapshot = before[i]
            .iter()
            .map(|(key, (raw, row, first_seen, last_seen))| {
                let seen = chrono::DateTime::parse_from_rfc3339(last_seen).unwrap();
                assert!(
                    seen >= settling.started && seen <= settling.finished,
                    "{inv} {key}: seen at {seen}, not by the settling pass"
                );
                let stored = match loaded.get(key) {
                    Some((.., l)) if *l == at_end => at_end.clone(),
                    _ => last_seen.clone(),
                };
                let item = (raw.clone(), row.clone(), first_seen.clone(), stored);
                (key.clone(), item)
            })
            .collect();
        assert_eq!(snapshot(&cache, inv), expected, "{inv}: every item kept");
        let keys: BTreeSet<String> = before[i].keys().cloned().collect();
        assert_eq!(keys, sim.facts(inv).kept, "{inv}");
        let s = cache.status(inv);
        assert_eq!(s.times, statuses[i].times, "{inv}: window timestamps kept");
        assert_eq!(s.last_success, statuses[i].last_success, "{inv}");
        assert!(s.settled, "{inv}: settled before the restart, and after it");
    }

    // The next poll is a refresh over the time since the stored anchor, not a new full pass.
    let (journal, writer) = store.spawn_writer(cache.clone());
    let daemon = Daemon::start_with(Arc::new(cfg), Clock::System, cache, Some(journal)).unwrap();
    common::eventually(30, "the first polls after the restart", || {
        sim.requests().len() >= requests_before + 3
    })
    .await;
    for r in &sim.requests()[requests_before..] {
        assert_eq!(r.updated_days_ago, Some(0), "{r:?}");
    }
    daemon.shutdown().await;
    writer.finish().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The stop snapshot files beside the store at `path` that exist.
fn snapshot_files(path: &Path) -> Vec<PathBuf> {
    Inventory::ALL
        .iter()
        .map(|inv| PathBuf::from(format!("{}-snapshot-{inv}", path.display())))
        .filter(|p| p.exists())
        .collect()
}

/// The keys of `inv` that the last full listing placed, in the order it placed them.
fn placed_order(cache: &Cache, inv: Inventory) -> Vec<String> {
    let generation = cache.status(inv).placed_by;
    assert_ne!(generation, 0, "{inv}: placed by a full listing");
    let mut placed: Vec<(u32, String)> = cache
        .snapshot(inv)
        .iter()
        .filter(|i| i.place().0 == generation)
        .map(|i| (i.place().1, i.key.to_string()))
        .collect();
    placed.sort();
    placed.into_iter().map(|(_, k)| k).collect()
}

/// Runs a daemon over `path` that leaves a stop snapshot, until settled; stops it cleanly and
/// returns every item as its cache held them at the stop, and the order the last full listing
/// placed them in.
async fn run_and_stop(cfg: &Config, path: &Path) -> (Vec<Snapshot>, Vec<Vec<String>>) {
    let cache = Cache::new();
    let (store, _) = Store::open(path).unwrap();
    let mut store = store.with_snapshot_on_stop(true);
    store.load(&cache).unwrap();
    let (journal, writer) = store.spawn_writer(cache.clone());
    let daemon =
        Daemon::start_with(Arc::new(cfg.clone()), Clock::System, cache, Some(journal)).unwrap();
    settled(daemon.cache()).await;
    let cache = daemon.cache().clone();
    daemon.shutdown().await;
    writer.finish().await;
    let items = Inventory::ALL
        .iter()
        .map(|&inv| snapshot(&cache, inv))
        .collect();
    let placed = Inventory::ALL
        .iter()
        .map(|&inv| placed_order(&cache, inv))
        .collect();
    (items, placed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_stop_leaves_a_snapshot_the_next_start_reads_once_and_only_while_current() {
    let sim = sim_with(SimConfig::default()).await;
    let cfg = common::config(&sim, sim.config());
    let dir = temp_dir("stop-snapshot");
    let path = dir.join("inventory.db");
    let load = |path: &Path| {
        let cache = Cache::new();
        let (mut store, _) = Store::open(path).unwrap();
        let loaded = store.load(&cache).unwrap();
        let items: Vec<Snapshot> = Inventory::ALL
            .iter()
            .map(|&inv| snapshot(&cache, inv))
            .collect();
        (loaded, items, cache)
    };
    // key → (raw, row, first_seen): what the rows and the snapshot must agree on (the rows may
    // hold a pass's end as last_seen where the cache noted the moment the page came in).
    let without_last_seen =
        |items: &[Snapshot]| -> Vec<BTreeMap<String, (String, String, String)>> {
            items
                .iter()
                .map(|m| {
                    m.iter()
                        .map(|(k, (raw, row, first, _))| {
                            (k.clone(), (raw.clone(), row.clone(), first.clone()))
                        })
                        .collect()
                })
                .collect()
        };

    // A clean stop leaves one file per inventory; the next start reads them and gives back
    // exactly the cache at the stop, last_seen too, ready at once; then they are gone.
    let (before, placed) = run_and_stop(&cfg, &path).await;
    assert_eq!(snapshot_files(&path).len(), 3, "one snapshot per inventory");
    let (loaded, items, cache) = load(&path);
    assert_eq!(loaded.from_snapshot, [true; 3]);
    assert_eq!(loaded.extracted, [0; 3]);
    assert_eq!(loaded.ready, [true; 3]);
    assert!(cache.all_ready());
    for (i, inv) in Inventory::ALL.into_iter().enumerate() {
        assert!(!before[i].is_empty(), "{inv}");
        assert_eq!(
            items[i], before[i],
            "{inv}: the cache at the stop, item for item"
        );
        assert_eq!(
            placed_order(&cache, inv),
            placed[i],
            "{inv}: placed as before the stop"
        );
        assert_eq!(
            before[i].keys().cloned().collect::<BTreeSet<_>>(),
            sim.facts(inv).kept,
            "{inv}"
        );
    }
    assert!(snapshot_files(&path).is_empty(), "used once, then removed");

    // Used once: the next start reads the rows, and they agree.
    let (loaded, rows, cache) = load(&path);
    assert_eq!(loaded.from_snapshot, [false; 3]);
    assert_eq!(loaded.extracted, [0; 3]);
    assert_eq!(without_last_seen(&rows), without_last_seen(&before));
    for (i, inv) in Inventory::ALL.into_iter().enumerate() {
        assert_eq!(
            placed_order(&cache, inv),
            placed[i],
            "{inv}: the rows place alike"
        );
    }

    // Any read-write open between the stop and the start (another run, `sync-once`) takes the
    // snapshot's token out of the file: it is no longer current, and is removed unread.
    let (before, _) = run_and_stop(&cfg, &path).await;
    assert_eq!(snapshot_files(&path).len(), 3);
    drop(Store::open(&path).unwrap());
    let (loaded, rows, _) = load(&path);
    assert_eq!(loaded.from_snapshot, [false; 3]);
    assert_eq!(without_last_seen(&rows), without_last_seen(&before));
    assert!(
        snapshot_files(&path).is_empty(),
        "a stale snapshot is removed"
    );

    // A damaged snapshot (cut short) costs its inventory a read of the rows, nothing else.
    let (before, _) = run_and_stop(&cfg, &path).await;
    let carriers = PathBuf::from(format!("{}-snapshot-carriers", path.display()));
    let len = std::fs::metadata(&carriers).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&carriers)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (loaded, items, _) = load(&path);
    assert_eq!(loaded.from_snapshot, [true, false, true]);
    assert_eq!(items[0], before[0]);
    assert_eq!(items[2], before[2]);
    assert_eq!(without_last_seen(&items), without_last_seen(&before));
    assert!(snapshot_files(&path).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_leaves_a_snapshot_on_sigterm_and_starts_from_it_but_not_after_kill_9() {
    let sim = sim_with(SimConfig::default()).await;
    let dir = temp_dir("sigterm-snapshot");
    let path = dir.join("inventory.db");
    let all = [Services, Carriers, Resources];

    // SIGTERM: the last poll committed, then the snapshot written.
    let first = spawn(command(&sim, &path));
    first.wait_for("Inventory ready.", "", &all);
    first.signal("-TERM");
    first.wait_for("Stop snapshot written.", "", &[]);
    assert_eq!(first.wait_exit(), Some(0));
    assert_eq!(snapshot_files(&path).len(), 3);

    // The next start reads all three from it; killed with -9, it leaves none behind.
    let second = spawn(command(&sim, &path));
    second.wait_for(
        "Store loaded.",
        "\"ready\":\"services,carriers,resources\",\"extracted\":0,\"from_snapshot\":\"services,carriers,resources\"",
        &[],
    );
    second.wait_for("Store updated.", "", &all);
    assert!(snapshot_files(&path).is_empty(), "read once, then removed");
    second.signal("-KILL");
    assert_eq!(second.wait_exit(), None);
    assert!(
        snapshot_files(&path).is_empty(),
        "no snapshot without a clean stop"
    );

    // So the start after a kill reads the rows, and is just as ready.
    let third = spawn(command(&sim, &path));
    third.wait_for(
        "Store loaded.",
        "\"ready\":\"services,carriers,resources\",\"extracted\":0,\"from_snapshot\":\"\"",
        &[],
    );
    third.wait_for("Store updated.", "", &all);
    third.signal("-TERM");
    assert_eq!(third.wait_exit(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_full_pass_loses_nothing_committed() {
    let sim = sim_with(SimConfig::default()).await;
    let dir = temp_dir("kill9");
    let path = dir.join("inventory.db");
    // Page 2 of resources is held: their first full pass cannot finish, whatever the timing,
    // until the test releases it, after the kill.
    let hold = Hold::new();
    sim.inject(Fault {
        inventory: Some(Resources.into()),
        page: Some(2),
        refresh_only: false,
        items: false,
        skip: 0,
        kind: FaultKind::Hold(hold.clone()),
        times: None,
    });
    let first = spawn(command(&sim, &path));
    tokio::task::block_in_place(|| {
        first.wait_for("Store updated.", "\"kind\":\"full\"", &[Services, Carriers]);
    });
    // The resources pass has page 1 and is waiting for page 2: the kill lands inside it.
    tokio::time::timeout(Duration::from_secs(60), hold.arrived(1))
        .await
        .expect("the resources pass reaches page 2");
    first.signal("-KILL");
    assert_eq!(tokio::task::block_in_place(|| first.wait_exit()), None);

    // Nothing committed is lost; the pass in flight left nothing half-written.
    for inv in [Services, Carriers] {
        assert_eq!(stored_keys(&path, inv), sim.facts(inv).kept, "{inv}");
    }
    assert!(stored_keys(&path, Resources).is_empty(), "no half pass");

    // Upstream changes meanwhile; the restart runs a full pass of each and matches it exactly.
    sim.clear_faults();
    hold.release();
    sim.mutate(1);
    // A second start more than `full_resync_interval` (1 s) after the stored full passes runs a
    // new full pass of each inventory, which finds the deletions too.
    let last_full: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT max(last_complete_full) FROM sync_state", [], |r| {
            r.get(0)
        })
        .unwrap();
    let last_full: chrono::DateTime<chrono::Utc> = last_full.parse().unwrap();
    let due = last_full + chrono::Duration::milliseconds(1100) - chrono::Utc::now();
    if let Ok(wait) = due.to_std() {
        tokio::time::sleep(wait).await;
    }
    let mut c = command(&sim, &path);
    c.env("SES_INVENTORY__POLL__FULL_RESYNC_INTERVAL", "1");
    let second = spawn(c);
    tokio::task::block_in_place(|| {
        second.wait_for("Store loaded.", "\"services\":", &[]);
        second.wait_for(
            "Store updated.",
            "\"kind\":\"full\",\"outcome\":\"complete\"",
            &Inventory::ALL,
        );
        second.signal("-TERM");
        assert_eq!(second.wait_exit(), Some(0));
    });
    for inv in Inventory::ALL {
        assert_eq!(stored_keys(&path, inv), sim.facts(inv).kept, "{inv}");
    }
    // And the cache a third start loads from it is the upstream, item for item.
    let cache = Cache::new();
    Store::open(&path).unwrap().0.load(&cache).unwrap();
    for inv in Inventory::ALL {
        // The first occurrence of each key, keyed as the contract says (not by the daemon's rules).
        let mut upstream: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for v in sim.items(inv) {
            if let Some(key) = contract_key(inv, &v) {
                upstream.entry(key).or_insert(v);
            }
        }
        assert_eq!(cache.len(inv), sim.facts(inv).kept.len(), "{inv}");
        for item in cache.snapshot(inv) {
            assert_eq!(
                Some(&item.json()),
                upstream.get(item.key.as_str()),
                "{inv} {}",
                item.key
            );
        }
        assert!(cache.is_ready(inv));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_store_is_moved_aside_and_the_daemon_starts_empty() {
    let dir = temp_dir("corrupt");
    let path = dir.join("inventory.db");
    let garbage = b"this is not an SQLite database\n".repeat(200);
    std::fs::write(&path, &garbage).unwrap();

    let (mut store, opened) = Store::open(&path).unwrap();
    let aside = opened.moved_aside.expect("moved aside");
    assert!(aside.starts_with(&dir), "{aside:?}");
    assert!(
        aside.to_string_lossy().contains("inventory.db.corrupt-"),
        "{aside:?}"
    );
    assert_eq!(std::fs::read(&aside).unwrap(), garbage, "never deleted");
    let cache = Cache::new();
    let loaded = store.load(&cache).unwrap();
    assert_eq!(loaded.items, [0; 3]);
    assert!(!cache.is_ready(Services), "starts empty, not ready");
    drop(store);

    // The binary logs it, naming both files, and carries on.
    let sim = sim_with(SimConfig::default()).await;
    std::fs::write(&path, &garbage).unwrap();
    let running = spawn(command(&sim, &path));
    tokio::task::block_in_place(|| {
        running.wait_for("moved aside", &path.display().to_string(), &[]);
        running.wait_for("Inventory ready.", "", &Inventory::ALL);
        running.signal("-TERM");
        assert_eq!(running.wait_exit(), Some(0));
    });
    let asides = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".corrupt-")
        })
        .count();
    assert!(asides >= 1);
    assert_eq!(stored_keys(&path, Services), sim.facts(Services).kept);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_schema_or_an_unwritable_location_stops_the_daemon_at_startup() {
    let sim = sim_with(SimConfig::default()).await;
    let dir = temp_dir("refuse");
    let path = dir.join("inventory.db");
    drop(Store::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 41)
            .unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();

    let err = Store::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("newer") && err.contains(&path.display().to_string()),
        "{err}"
    );
    let out = output({
        let mut c = command(&sim, &path);
        c.arg("run");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("newer") && stderr.contains(&path.display().to_string()),
        "{stderr}"
    );
    let export = output({
        let mut c = command(&sim, &path);
        c.args(["export", "services"]);
        c
    })
    .await;
    assert_eq!(export.status.code(), Some(1), "{}", text(&export.stderr));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "left byte-identical");

    // A location that cannot be written: a regular file where the directory should be.
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let unwritable = blocker.join("inventory.db");
    let out = output({
        let mut c = command(&sim, &unwritable);
        c.arg("run");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&unwritable.display().to_string()),
        "{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one clear message: {stderr}");
    assert!(
        errors[0].contains("cannot create its directory"),
        "{stderr}"
    );
    assert!(
        sim.requests().is_empty(),
        "no request with an unusable store"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A minimal RFC 4180 reader for the test: records of optional-quoted fields.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn every_export_format_round_trips_every_row() {
    let sim = sim_with(SimConfig::default()).await;
    let dir = temp_dir("export");
    let path = dir.join("inventory.db");
    let out = output({
        let mut c = command(&sim, &path);
        c.arg("sync-once");
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cache = Cache::new();
    Store::open(&path).unwrap().0.load(&cache).unwrap();

    for inv in Inventory::ALL {
        let cols = Row::columns(inv);
        let items: BTreeMap<String, _> = cache
            .snapshot(inv)
            .into_iter()
            .map(|i| (i.key.to_string(), i))
            .collect();
        assert_eq!(
            items.keys().cloned().collect::<BTreeSet<_>>(),
            sim.facts(inv).kept
        );
        let export = |format: &str| {
            let file = dir.join(format!("{inv}.{format}"));
            let mut c = command(&sim, &path);
            c.args(["export", inv.as_str(), "--format", format, "--output"])
                .arg(&file);
            (c, file)
        };

        let (c, file) = export("csv");
        let out = output(c).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let records = parse_csv(&std::fs::read_to_string(&file).unwrap());
        let mut heading = vec!["ID".to_string()];
        heading.extend(cols.iter().map(|c| c.heading.to_string()));
        heading.extend(["First Seen".into(), "Last Seen".into()]);
        assert_eq!(records[0], heading, "{inv}: the connector's headings");
        assert_eq!(records.len() - 1, items.len(), "{inv}: one line per item");
        for record in &records[1..] {
            let item = &items[&record[0]];
            for (i, _) in cols.iter().enumerate() {
                assert_eq!(
                    record[i + 1],
                    item.cell(i).to_text().unwrap_or_default(),
                    "{inv} {} column {i}",
                    item.key
                );
            }
        }

        for format in ["json", "ndjson"] {
            let (c, file) = export(format);
            let out = output(c).await;
            assert!(out.status.success(), "{}", text(&out.stderr));
            let body = std::fs::read_to_string(&file).unwrap();
            let objects: Vec<serde_json::Value> = if format == "json" {
                serde_json::from_str(&body).unwrap()
            } else {
                body.lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect()
            };
            assert_eq!(objects.len(), items.len(), "{inv} {format}");
            for o in &objects {
                let item = &items[o["id"].as_str().unwrap()];
                for (i, c) in cols.iter().enumerate() {
                    assert_eq!(
                        o[c.name],
                        item.cell(i).to_json(),
                        "{inv} {format} {}",
                        c.name
                    );
                }
                assert!(o["first_seen"].is_string() && o["last_seen"].is_string());
            }
        }

        // The upstream's own JSON, byte for byte as cached, in key order; stored compressed
        // when the inventory had enough items to train a dictionary on (services and
        // resources here), as text otherwise (80 carriers).
        let (c, file) = export("upstream");
        let out = output(c).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let lines: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        let raws: Vec<String> = items.values().map(|i| i.raw().to_string()).collect();
        assert_eq!(lines, raws, "{inv} upstream");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (blobs, stored): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT count(*) FILTER (WHERE typeof(raw) = 'blob'), sum(length(raw)) FROM {inv}"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let json_bytes: usize = raws.iter().map(String::len).sum();
        if items.len() >= 100 {
            assert_eq!(blobs as usize, items.len(), "{inv}: every row compressed");
            assert!(
                (stored as usize) * 3 < json_bytes,
                "{inv}: {stored} bytes stored for {json_bytes} of JSON"
            );
        } else {
            assert_eq!(blobs, 0, "{inv}: too few items to train on, kept as text");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn export_reads_whole_polls_while_the_daemon_writes() {
    let sim = sim_with(SimConfig {
        services: 0,
        carriers: 0,
        resources: 6000,
        ..SimConfig::default()
    })
    .await;
    let kept = sim.facts(Resources).kept.len();
    let cfg = common::config(&sim, sim.config());
    let dir = temp_dir("export-live");
    let path = dir.join("inventory.db");
    // The file exists (empty) before the daemon's first commit.
    drop(Store::open(&path).unwrap());
    let (daemon, writer) = start(&cfg, &path);
    let mut exports = 0;
    let mut counts = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let out = output({
            let mut c = command(&sim, &path);
            c.args(["export", "resources", "--format", "ndjson"]);
            c
        })
        .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let n = text(&out.stdout).lines().count();
        exports += 1;
        counts.insert(n);
        assert!(
            n == 0 || n == kept,
            "a whole pass or nothing, got {n} of {kept}"
        );
        if n == kept {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never saw the pass");
    }
    assert!(exports >= 1);
    daemon.shutdown().await;
    writer.finish().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One poll of services with a journal, as the daemon runs it; returns what it journalled.
async fn journalled(
    cfg: &Config,
    cache: &Cache,
    plan: ses_inventory::sync::window::PollPlan,
) -> ses_inventory::sync::Applied {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let upstream = ses_inventory::source::Upstream::new(Arc::new(cfg.clone())).unwrap();
    let mut poller =
        ses_inventory::sync::Poller::new(Services, cfg, upstream, cache.clone(), Clock::System)
            .with_journal(tx);
    poller.poll(plan).await;
    rx.try_recv().expect("every poll is journalled")
}

/// key → name of every stored service, read with plain SQL.
fn stored_names(path: &Path) -> BTreeMap<String, String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT key, name FROM services").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The stored window anchor of services.
fn stored_anchor(path: &Path) -> chrono::DateTime<chrono::Utc> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let text: String = conn
        .query_row(
            "SELECT window_anchor FROM sync_state WHERE inventory = 'services'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    text.parse().unwrap()
}

/// (key, misses, certain) of every stored service awaiting a witness, by key.
fn stored_awaiting(path: &Path) -> Vec<(String, i64, bool)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT key, misses, certain FROM awaiting WHERE inventory = 'services' ORDER BY key",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn names(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn items_and_the_window_anchor_are_committed_together_and_a_failed_write_heals() {
    use ses_inventory::sync::window::{FullReason, PollPlan};
    let (sim, sc) = common::empty_sim().await;
    let cfg = common::config(&sim, &sc);
    let dir = temp_dir("together");
    let path = dir.join("inventory.db");
    let (mut store, _) = Store::open(&path).unwrap();
    let cache = Cache::new();
    let full = PollPlan::Full(FullReason::Initial);
    let refresh = PollPlan::Refresh { days_ago: 0 };

    let [a, b, c, d] =
        ["SVC-A", "SVC-B", "SVC-C", "SVC-D"].map(|k| common::service(k, "Operational"));
    sim.set_items(Services, vec![a.clone(), b.clone(), c]);
    let first = journalled(&cfg, &cache, full).await;
    store.write(&first, &cache).unwrap();
    assert_eq!(
        stored_names(&path),
        names(&[
            ("SVC-A", "Service SVC-A"),
            ("SVC-B", "Service SVC-B"),
            ("SVC-C", "Service SVC-C"),
        ])
    );
    assert_eq!(stored_anchor(&path), first.report.started);

    // From now on the sync state cannot be written (as on an I/O error): a write fails after
    // the poll's items were written, before its state.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER no_state BEFORE UPDATE ON sync_state
             BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
        )
        .unwrap();
    let mut renamed = b;
    renamed["name"] = serde_json::json!("Renamed B");
    sim.set_items(Services, vec![a, renamed, d]);
    let failed = journalled(&cfg, &cache, refresh).await;
    assert_eq!((failed.report.added, failed.report.updated), (1, 1));
    let err = store.write(&failed, &cache).unwrap_err().to_string();
    assert!(err.contains("simulated write failure"), "{err}");
    // Nothing of that poll is in the file: neither its items nor its anchor.
    assert_eq!(
        stored_names(&path),
        names(&[
            ("SVC-A", "Service SVC-A"),
            ("SVC-B", "Service SVC-B"),
            ("SVC-C", "Service SVC-C"),
        ]),
        "items committed without their sync state"
    );
    assert_eq!(stored_anchor(&path), first.report.started);

    // The fault clears. The next write, a refresh that found nothing new, brings the file back
    // to the cache (SVC-C stays: a refresh cannot see deletions) before the anchor moves on: an
    // anchor past the lost poll must not vouch for items the file does not hold.
    other.execute_batch("DROP TRIGGER no_state").unwrap();
    let quiet = journalled(&cfg, &cache, refresh).await;
    assert_eq!((quiet.report.added, quiet.report.updated), (0, 0));
    store.write(&quiet, &cache).unwrap();
    assert_eq!(
        stored_names(&path),
        names(&[
            ("SVC-A", "Service SVC-A"),
            ("SVC-B", "Renamed B"),
            ("SVC-C", "Service SVC-C"),
            ("SVC-D", "Service SVC-D"),
        ])
    );
    assert_eq!(stored_anchor(&path), quiet.report.started);

    // A complete full pass misses SVC-C. After it, the listing returned no item the last full
    // listing had placed (SVC-D is new; SVC-B, before it, was renamed since), so neither that
    // miss nor the confirming listing's is certain: SVC-C awaits a third witness, in the file
    // too, committed with the anchor of this pass.
    let missed = journalled(&cfg, &cache, full).await;
    let churn = missed.report.churn;
    assert_eq!(
        (churn.candidates, churn.confirmations, churn.deferred),
        (1, 1, 1)
    );
    store.write(&missed, &cache).unwrap();
    assert_eq!(
        stored_names(&path),
        names(&[
            ("SVC-A", "Service SVC-A"),
            ("SVC-B", "Renamed B"),
            ("SVC-C", "Service SVC-C"),
            ("SVC-D", "Service SVC-D"),
        ])
    );
    assert_eq!(stored_awaiting(&path), [("SVC-C".to_string(), 2, false)]);
    assert_eq!(stored_anchor(&path), missed.report.started);

    // The next complete full pass is its third witness: it sweeps SVC-C from the file too; a
    // warm start loads exactly that.
    let swept = journalled(&cfg, &cache, full).await;
    assert_eq!(swept.report.removed, 1);
    store.write(&swept, &cache).unwrap();
    assert!(stored_awaiting(&path).is_empty());
    assert_eq!(
        stored_names(&path),
        names(&[
            ("SVC-A", "Service SVC-A"),
            ("SVC-B", "Renamed B"),
            ("SVC-D", "Service SVC-D"),
        ])
    );
    assert_eq!(stored_anchor(&path), swept.report.started);
    drop(store);
    let warm = Cache::new();
    Store::open(&path).unwrap().0.load(&warm).unwrap();
    assert_eq!(
        warm.snapshot(Services)
            .iter()
            .map(|i| i.key.to_string())
            .collect::<BTreeSet<_>>(),
        ["SVC-A", "SVC-B", "SVC-D"].map(String::from).into()
    );
    assert_eq!(
        warm.status(Services).times.window_anchor,
        Some(swept.report.started)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn export_writes_the_columns_the_contract_describes() {
    let sim = sim_with(SimConfig::empty()).await;
    sim.set_items(
        Services,
        vec![
            serde_json::json!({
                "id": "sys-1",
                "externalId": "SVC-1",
                "name": "Alpha, \"A\"",
                "description": "two\nlines",
                "status": "Operational",
                "@type": "CFS",
                "startDate": "2025-06-30T10:00:00+02:00",
                "place": [{"id": "SITE-1", "name": "Betzdorf", "role": "installationSite"}],
                "serviceSpecification": {"id": "SPEC-1", "name": "Managed Connectivity"},
            }),
            serde_json::json!({
                "externalId": "SVC-2",
                "name": "  Beta  ",
                "status": " operational ",
            }),
            serde_json::json!({"externalId": "SVC-3", "status": "Terminated"}),
        ],
    );
    let dir = temp_dir("export-literal");
    let path = dir.join("inventory.db");
    let out = output({
        let mut c = command(&sim, &path);
        c.arg("sync-once");
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export = |format: &str| {
        let mut c = command(&sim, &path);
        c.args(["export", "services", "--format", format]);
        c
    };

    let csv = text(&output(export("csv")).await.stdout);
    let records = parse_csv(&csv);
    assert_eq!(
        records[0],
        [
            "ID",
            "External ID",
            "Name",
            "Description",
            "Status",
            "Type",
            "Start Date",
            "End Date",
            "Last Update",
            "Related Party",
            "Location",
            "Service Specification",
            "Supporting Resources",
            "First Seen",
            "Last Seen",
        ]
    );
    assert_eq!(records.len(), 3, "a heading and two kept services: {csv}");
    assert_eq!(
        records[1][..13],
        [
            "SVC-1",
            "SVC-1",
            "Alpha, \"A\"",
            "two\nlines",
            "Operational",
            "CFS",
            "2025-06-30T08:00:00Z",
            "",
            "",
            "",
            "Betzdorf (installationSite)",
            "Managed Connectivity",
            "",
        ]
    );
    assert_eq!(
        records[2][..13],
        [
            "SVC-2",
            "SVC-2",
            "Beta",
            "",
            "operational",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            ""
        ]
    );
    // The fields that need it are quoted, as RFC 4180 says.
    assert!(
        csv.contains("SVC-1,SVC-1,\"Alpha, \"\"A\"\"\",\"two\nlines\",Operational,CFS,"),
        "{csv}"
    );
    for record in &records[1..] {
        for t in &record[13..] {
            t.parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        }
    }

    let ndjson = text(&output(export("ndjson")).await.stdout);
    let objects: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2);
    let mut first = objects[0].clone();
    let seen = first.as_object_mut().unwrap();
    assert!(seen.remove("first_seen").unwrap().is_string());
    assert!(seen.remove("last_seen").unwrap().is_string());
    assert_eq!(
        first,
        serde_json::json!({
            "id": "SVC-1",
            "external_id": "SVC-1",
            "name": "Alpha, \"A\"",
            "description": "two\nlines",
            "status": "Operational",
            "type": "CFS",
            "start_date": "2025-06-30T08:00:00Z",
            "end_date": null,
            "last_update": null,
            "related_party": null,
            "location": [{"id": "SITE-1", "name": "Betzdorf", "role": "installationSite"}],
            "service_specification": {"id": "SPEC-1", "name": "Managed Connectivity"},
            "supporting_resources": [],
        })
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The stored `last_seen` of one service, as the file's layout defines it (docs/storage.md):
/// the row's own, or the last complete full pass's when that is later and the pass did not list
/// the key as unseen.
fn stored_last_seen(path: &Path, key: &str) -> chrono::DateTime<chrono::Utc> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let (row, full, unseen): (String, Option<String>, bool) = conn
        .query_row(
            "SELECT t.last_seen,
                    (SELECT full_seen_at FROM sync_state WHERE inventory = 'services'),
                    EXISTS (SELECT 1 FROM unseen WHERE inventory = 'services' AND key = ?1)
             FROM services t WHERE t.key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let row: chrono::DateTime<chrono::Utc> = row.parse().unwrap();
    match full.map(|f| f.parse::<chrono::DateTime<chrono::Utc>>().unwrap()) {
        Some(full) if !unseen && full > row => full,
        _ => row,
    }
}

/// The `last_seen` column of one service's row: what its own last write put there.
fn row_last_seen(path: &Path, key: &str) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT last_seen FROM services WHERE key = ?1",
        [key],
        |r| r.get(0),
    )
    .unwrap()
}

/// `last_seen` in the file moves only for items a poll saw: a swept full pass moves every row
/// left (without rewriting any: it records once that it saw them), a refresh only the items it returned, and a full pass that left items awaiting a
/// witness (neither listing returned them, and their misses were not certain) leaves them
/// alone.
#[tokio::test]
async fn last_seen_moves_only_for_what_a_poll_saw() {
    use ses_inventory::sync::window::{FullReason, PollPlan};
    use ses_inventory_sim::{Fault, FaultKind};
    let (sim, sc) = common::empty_sim().await;
    let cfg = common::config(&sim, &sc);
    let mut cfg = cfg;
    // One page at a time, so that which items slide past the cursor is exact.
    cfg.poll.pages_in_flight = 1;
    let dir = temp_dir("last-seen");
    let path = dir.join("inventory.db");
    let (mut store, _) = Store::open(&path).unwrap();
    let cache = Cache::new();
    let full = PollPlan::Full(FullReason::Resync);

    sim.set_items(Services, common::services(400));
    let first = journalled(&cfg, &cache, PollPlan::Full(FullReason::Initial)).await;
    store.write(&first, &cache).unwrap();
    let at_first = stored_last_seen(&path, "SVC-0001");
    assert!(at_first >= first.report.started, "{at_first}");
    // An empty reference column is NULL in the file (SQL readers test it with IS NULL), and
    // the sync state carries the last poll's report for people reading the file.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (spec_is_null, report): (bool, String) = conn
        .query_row(
            "SELECT s.service_specification IS NULL, t.last_report FROM services s, sync_state t
             WHERE s.key = 'SVC-0001' AND t.inventory = 'services'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(spec_is_null);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        (
            &report["kind"],
            &report["reason"],
            &report["added"],
            &report["outcome"]
        ),
        (
            &serde_json::json!("full"),
            &serde_json::json!("initial"),
            &serde_json::json!(400),
            &serde_json::json!("complete")
        )
    );

    // A quiet full pass: swept, every row was seen, and no row is rewritten for it.
    let quiet = journalled(&cfg, &cache, full).await;
    assert!(quiet.swept);
    let some = ["SVC-0001", "SVC-0200", "SVC-0400"];
    let rows_before: Vec<String> = some.iter().map(|k| row_last_seen(&path, k)).collect();
    let stats = store.write(&quiet, &cache).unwrap();
    assert_eq!((stats.upserted, stats.removed, stats.touched), (0, 0, 400));
    let rows_after: Vec<String> = some.iter().map(|k| row_last_seen(&path, k)).collect();
    assert_eq!(
        rows_before, rows_after,
        "no row rewritten by a quiet full pass"
    );
    for key in ["SVC-0001", "SVC-0200", "SVC-0400"] {
        assert!(
            stored_last_seen(&path, key) >= quiet.report.started,
            "{key}"
        );
    }

    // A refresh that returns only SVC-0001 (the others updated long ago).
    let mut items = sim.items(Services);
    for item in items.iter_mut().skip(1) {
        item["lastUpdate"] = serde_json::json!("2020-01-01T00:00:00Z");
    }
    sim.set_items(Services, items);
    let refresh = journalled(&cfg, &cache, PollPlan::Refresh { days_ago: 0 }).await;
    assert!(!refresh.swept);
    let stats = store.write(&refresh, &cache).unwrap();
    assert_eq!((stats.upserted, stats.removed, stats.touched), (0, 0, 1));
    assert!(stored_last_seen(&path, "SVC-0001") >= refresh.report.started);
    assert!(stored_last_seen(&path, "SVC-0400") < refresh.report.started);
    // A full pass takes in the old dates the refresh could not see.
    let synced = journalled(&cfg, &cache, full).await;
    assert_eq!(synced.report.updated, 399);
    store.write(&synced, &cache).unwrap();

    // The last five services are deleted between two passes (candidates of the next full
    // pass); during that pass twenty more are deleted in front of the cursor of both its
    // listings. A miss after the last item a listing returned is never certain (a listing cut
    // short without a sign looks the same), so the five await a third witness: nothing is
    // removed, and the five, which neither listing returned, keep their last_seen.
    let gone = ["SVC-0396", "SVC-0397", "SVC-0398", "SVC-0399", "SVC-0400"];
    let items: Vec<serde_json::Value> = sim
        .items(Services)
        .into_iter()
        .filter(|v| !gone.contains(&v["externalId"].as_str().unwrap()))
        .collect();
    sim.set_items(Services, items);
    sim.inject(Fault {
        inventory: Some(Services.into()),
        page: Some(6),
        refresh_only: false,
        items: false,
        skip: 0,
        kind: FaultKind::Churn {
            deletes: 20,
            inserts: 0,
        },
        times: Some(2),
    });
    let unsteady = journalled(&cfg, &cache, full).await;
    let churn = unsteady.report.churn;
    assert_eq!((churn.confirmations, churn.candidates), (1, 25));
    // Awaiting: the five (two misses), the twenty deleted during the first listing (missed by
    // the confirming one, inside its pages: certain) and the twenty live ones that slid past
    // the confirming listing's cursor (seen by the first: kept, and cleared by the next pass).
    assert_eq!((churn.confirmed_removed, churn.deferred), (0, 45));
    assert_eq!(unsteady.report.removed, 0);
    assert!(!unsteady.swept);
    store.write(&unsteady, &cache).unwrap();
    assert_eq!(stored_keys(&path, Services).len(), 400, "nothing removed");
    let conn = rusqlite::Connection::open(&path).unwrap();
    for key in gone {
        assert!(
            stored_last_seen(&path, key) < unsteady.report.started,
            "{key}: not seen by this pass, yet its last_seen moved"
        );
        let mark: (i64, bool) = conn
            .query_row(
                "SELECT misses, certain FROM awaiting WHERE inventory = 'services' AND key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(mark, (2, false), "{key}");
    }
    drop(conn);
    // The twenty that slid past the first listing's cursor were seen by the confirming one.
    for n in 201..=220 {
        let key = format!("SVC-{n:04}");
        assert!(
            stored_last_seen(&path, &key) >= unsteady.report.started,
            "{key}: recovered by the confirming listing, yet its last_seen did not move"
        );
    }
    // A warm start and an export read the file the same way.
    let loaded = Cache::new();
    Store::open(&path).unwrap().0.load(&loaded).unwrap();
    let mut exported = Vec::new();
    ses_inventory::store::export::export(
        &path,
        Services,
        ses_inventory::store::export::Format::Ndjson,
        &mut exported,
    )
    .unwrap();
    let exported: BTreeMap<String, String> = String::from_utf8(exported)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["last_seen"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for key in gone
        .iter()
        .copied()
        .chain(["SVC-0201", "SVC-0220", "SVC-0001"])
    {
        let stored = stored_last_seen(&path, key);
        let warm = loaded.get(Services, key).unwrap().last_seen();
        // (The cache keeps milliseconds.)
        assert_eq!(
            warm.timestamp_millis(),
            stored.timestamp_millis(),
            "{key}: a warm start reads what the file says"
        );
        let text: chrono::DateTime<chrono::Utc> = exported[key].parse().unwrap();
        assert_eq!(text, stored, "{key}: the export reads what the file says");
    }
    // The next full pass, quiet, removes the 5 (a third miss) and the 40 deleted during the
    // last (a second miss, certain).
    let settled = journalled(&cfg, &cache, full).await;
    assert!(settled.swept);
    assert_eq!(settled.report.churn.deferred, 0);
    let stats = store.write(&settled, &cache).unwrap();
    assert_eq!(stats.removed, 45);
    assert_eq!(stored_keys(&path, Services).len(), 355);
    assert!(stored_last_seen(&path, "SVC-0395") >= settled.report.started);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let awaiting: i64 = conn
        .query_row("SELECT count(*) FROM awaiting", [], |r| r.get(0))
        .unwrap();
    assert_eq!(awaiting, 0);
    drop(conn);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_gives_back_the_space_of_removed_items() {
    let sim = sim_with(SimConfig {
        services: 3000,
        carriers: 0,
        resources: 0,
        ..SimConfig::empty()
    })
    .await;
    let mut cfg = common::config(&sim, sim.config());
    cfg.poll.min_listing_share = 0.0;
    let dir = temp_dir("vacuum");
    let path = dir.join("inventory.db");
    let (daemon, writer) = start(&cfg, &path);
    settled(daemon.cache()).await;
    let mut polls = daemon.cache().watch_polls();
    let pages = |path: &Path| -> (i64, i64, String) {
        let conn = rusqlite::Connection::open(path).unwrap();
        let count = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let free = conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        let mode = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0))
            .unwrap();
        (count, free, format!("auto_vacuum={mode}"))
    };
    // The buildup is committed by the writer thread: wait for it.
    let cached = daemon.cache().len(Services);
    common::eventually(30, "the buildup is in the file", || {
        stored_keys(&path, Services).len() == cached
    })
    .await;
    let (before, _, _) = pages(&path);
    // Most services go upstream: all but the last 100 (in front of the first item the next
    // listing returns, on its first page: certain misses). A full pass removes them from the
    // cache and the file. (A listing that returns so few of the cached items cannot witness
    // absences by default: poll.min_listing_share, lifted here.)
    let mut kept: Vec<serde_json::Value> = sim.items(Services);
    let kept = kept.split_off(kept.len() - 100);
    sim.set_items(Services, kept);
    polls.mark_unchanged();
    daemon.control().request_poll(Services, true);
    tokio::time::timeout(Duration::from_secs(30), async {
        while daemon.cache().len(Services) > 100 {
            polls.changed().await.unwrap();
        }
    })
    .await
    .expect("the full pass is applied");
    daemon.shutdown().await;
    writer.finish().await;
    assert!(stored_keys(&path, Services).len() <= 100);
    let (after, free, settings) = pages(&path);
    assert_eq!(
        settings, "auto_vacuum=2",
        "a new file vacuums incrementally"
    );
    assert_eq!(free, 0, "no free pages are kept");
    assert!(
        after * 3 < before,
        "the file shrank with its content: {before} pages, then {after}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// key → (raw, row, first_seen, last_seen in ms) of every item of `inv` in `cache`.
fn items_of(cache: &Cache, inv: Inventory) -> BTreeMap<String, (String, String, i64, i64)> {
    cache
        .snapshot(inv)
        .iter()
        .map(|i| {
            let times = (
                i.first_seen.timestamp_millis(),
                i.last_seen().timestamp_millis(),
            );
            let item = (
                i.raw().to_string(),
                format!("{:?}", i.row()),
                times.0,
                times.1,
            );
            (i.key.to_string(), item)
        })
        .collect()
}

/// Every version of every item the change log holds, through the API's reader.
fn change_log(path: &Path) -> Vec<String> {
    let conn = ses_inventory::store::open_read_only(path).unwrap();
    let filter = ses_inventory::store::changes::ChangeFilter {
        limit: 10_000,
        ..Default::default()
    };
    let mut all = Vec::new();
    for change in ses_inventory::store::changes::list(&conn, &filter).unwrap() {
        let versions =
            ses_inventory::store::changes::versions(&conn, change.inventory, &change.id).unwrap();
        all.push(format!("{change:?} {versions:?}"));
    }
    all
}

/// A file written by an earlier release (made by `sync-once` of that release against the
/// simulator; `tests/fixtures/store-v4.db` by two runs a few seconds apart, so its change log
/// has additions, updates and removals) is upgraded in place on first start: every item comes
/// back with the row, first and last seen it had, every inventory ready, the change log as it
/// was, and the file says this build's schema. Its rows have no stored cells: the first start
/// extracts them, the writer stores them in the background, and the next start reads them
/// (extracting none) to the same items. Before the upgrade, `export` reads it as it is.
fn upgrade_in_place(fixture: &str, version_before: i64, counts: [usize; 3], history: bool) {
    let dir = temp_dir(fixture);
    let path = dir.join("inventory.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(fixture),
        &path,
    )
    .unwrap();
    let version = |path: &Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&path), version_before);
    // What the old file holds, read with SQL: key → (first_seen, last_seen).
    let rows = |inv: Inventory| -> BTreeMap<String, (String, String)> {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT key, first_seen, {} FROM \"{}\" t",
                ses_inventory_last_seen(version_before),
                inv.as_str()
            ))
            .unwrap();
        stmt.query_map([inv.as_str()], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let before: Vec<_> = Inventory::ALL.iter().map(|&inv| rows(inv)).collect();
    assert_eq!(before.iter().map(BTreeMap::len).collect::<Vec<_>>(), counts);
    let log_before = if history {
        change_log(&path)
    } else {
        Vec::new()
    };
    assert_eq!(log_before.is_empty(), !history);
    let mut exported = Vec::new();
    ses_inventory::store::export::export(
        &path,
        Services,
        ses_inventory::store::export::Format::Ndjson,
        &mut exported,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(exported).unwrap().lines().count(),
        counts[0]
    );

    let (mut store, _) = Store::open(&path).unwrap();
    assert_eq!(version(&path), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 6);
    let cache = Cache::new();
    let loaded = store.load(&cache).unwrap();
    assert_eq!(loaded.items, counts);
    assert_eq!(loaded.extracted, counts, "no row of the old file has cells");
    assert_eq!(loaded.ready, [true, true, true]);
    for (i, inv) in Inventory::ALL.into_iter().enumerate() {
        for (key, (first, last)) in &before[i] {
            let item = cache.get(inv, key).unwrap_or_else(|| panic!("{inv} {key}"));
            let first: chrono::DateTime<chrono::Utc> = first.parse().unwrap();
            let last: chrono::DateTime<chrono::Utc> = last.parse().unwrap();
            assert_eq!(
                (
                    item.first_seen.timestamp_millis(),
                    item.last_seen().timestamp_millis()
                ),
                (first.timestamp_millis(), last.timestamp_millis()),
                "{inv} {key}"
            );
        }
    }
    if history {
        assert_eq!(change_log(&path), log_before, "the change log as it was");
    }
    let first_start: Vec<_> = Inventory::ALL
        .iter()
        .map(|&i| items_of(&cache, i))
        .collect();
    // The writer fills in the cells while no poll waits.
    let (journal, writer) = store.spawn_writer(cache.clone());
    let lacking = || -> i64 {
        let conn = rusqlite::Connection::open(&path).unwrap();
        Inventory::ALL
            .iter()
            .map(|inv| {
                let sql = format!("SELECT count(*) FROM \"{inv}\" WHERE cells IS NULL");
                conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).unwrap()
            })
            .sum()
    };
    for _ in 0..300 {
        if lacking() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        lacking(),
        0,
        "the writer stored every row's cells within 30 s"
    );
    drop(journal);
    futures_executor_block_on(writer.finish());

    let (mut store, _) = Store::open(&path).unwrap();
    let cache = Cache::new();
    let loaded = store.load(&cache).unwrap();
    assert_eq!(loaded.items, counts);
    assert_eq!(loaded.extracted, [0; 3], "every row's cells stored");
    let second_start: Vec<_> = Inventory::ALL
        .iter()
        .map(|&i| items_of(&cache, i))
        .collect();
    assert_eq!(
        second_start, first_start,
        "the same items from stored cells"
    );
    if history {
        assert_eq!(change_log(&path), log_before, "the change log as it was");
    }
    drop(store);
    std::fs::remove_dir_all(&dir).ok();
}

/// An item's `last_seen` as a file of schema `version` holds it (`?1`: the inventory).
fn ses_inventory_last_seen(version: i64) -> &'static str {
    if version >= 4 {
        "CASE WHEN EXISTS (SELECT 1 FROM unseen u WHERE u.inventory = ?1 AND u.key = t.key)
              THEN t.last_seen
              ELSE max(t.last_seen, coalesce(
                  (SELECT s.full_seen_at FROM sync_state s WHERE s.inventory = ?1), ''))
         END"
    } else {
        "t.last_seen || substr(?1, 1, 0)"
    }
}

/// Runs `future` to its end on a runtime of its own (the tests here are not async).
fn futures_executor_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn a_file_from_schema_3_is_upgraded_in_place() {
    upgrade_in_place("store-v3.db", 3, [51, 9, 45], false);
}

#[test]
fn a_file_from_the_previous_release_is_upgraded_in_place() {
    upgrade_in_place("store-v4.db", 4, [48, 9, 45], true);
}

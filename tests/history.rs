//! What changed, and when: the change log the real daemon writes into its store, read back over
//! the API (`/api/v1/changes`, an item's `/history`, `?at=`) and by `ses-inventory changes`,
//! against the sequence of changes made on the simulator, poll for poll.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use ses_inventory::Inventory::{Carriers, Resources, Services};
use ses_inventory_sim::Simulator;
use std::io::{BufRead, BufReader};
use std::time::Duration;

struct Daemon {
    child: Child,
    base: String,
    http: reqwest::Client,
    store: std::path::PathBuf,
}

impl Daemon {
    async fn start(sim: &Simulator, dir: &std::path::Path) -> Daemon {
        let store = dir.join("inventory.db");
        let mut c = binary(sim, sim.config());
        c.env("SES_INVENTORY__STORE__PATH", &store);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let addr = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stderr).lines();
            let addr = loop {
                let line = lines
                    .next()
                    .expect("the daemon logs where the API listens")
                    .unwrap();
                if line.contains("API listening.") {
                    let log: Value = serde_json::from_str(&line).unwrap();
                    break log["addr"].as_str().unwrap().to_owned();
                }
            };
            // Keep draining stderr so the daemon never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            addr
        })
        .await
        .unwrap();
        Daemon {
            child: Child(Some(child)),
            base: format!("http://{addr}"),
            http: {
                // In other tests the daemon's own client installs it; this one has none.
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder().no_proxy().build().unwrap()
            },
            store,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The change log's entries (newest first) matching `query`, every page.
    async fn changes(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = format!("/api/v1/changes?limit=2&{query}");
        for _ in 0..1000 {
            let (status, body) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            out.extend(body["changes"].as_array().unwrap().iter().cloned());
            match body["next"].as_str() {
                Some(next) => path = next.to_owned(),
                None => return out,
            }
        }
        panic!("the change log's pages never end");
    }

    /// Asks for a poll of services and waits until the change log has `more` new entries.
    async fn poll_until(&self, full: bool, more: usize, what: &str) {
        let before = self.changes("inventory=services").await.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let r = self
                .http
                .post(format!(
                    "{}/api/v1/refresh?inventory=services&full={full}",
                    self.base
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.changes("inventory=services").await.len() >= before + more {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
        }
    }

    /// SIGTERM, then the exit status: 0.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let mut child = self.child.take();
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            child.wait().unwrap()
        })
        .await
        .unwrap();
        assert_eq!(status.code(), Some(0));
    }
}

/// The daemon's process; killed if the test ends before stopping it (a failed assertion).
struct Child(Option<std::process::Child>);

impl Child {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }

    fn take(&mut self) -> std::process::Child {
        self.0.take().expect("the daemon is running")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn renamed(id: &str, name: &str) -> Value {
    let mut s = service(id, "Operational");
    s["name"] = json!(name);
    s
}

/// The fields of an entry a test compares: kind, id, and what it says about the change.
fn summary(c: &Value) -> Value {
    json!([c["kind"], c["id"], c["reason"], c["items"]])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_log_follows_the_upstream_poll_for_poll() {
    let (sim, _sc) = empty_sim().await;
    sim.set_items(Services, services(5));
    sim.set_items(Carriers, vec![carrier("CAR-1"), carrier("CAR-2")]);
    sim.set_items(Resources, vec![resource("RES-1", "Antenna")]);
    let dir = tempdir();
    let d = Daemon::start(&sim, dir.path()).await;
    for inv in [Services, Carriers, Resources] {
        settled_over_api(&d.http, &d.base, inv, 30).await;
    }

    // The first fill is a baseline per inventory, not an addition per item.
    let all = d.changes("").await;
    let mut baselines: Vec<Value> = all
        .iter()
        .map(|c| json!([c["inventory"], c["kind"], c["items"]]))
        .collect();
    baselines.sort_by_key(|v| v.to_string());
    assert_eq!(
        baselines,
        [
            json!(["carriers", "baseline", 2]),
            json!(["resources", "baseline", 1]),
            json!(["services", "baseline", 5]),
        ]
    );
    let before_rename = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // 1. A rename.
    // (The others as they were: a new lastUpdate would be a change too.)
    let mut items = sim.items(Services);
    items[1] = renamed("SVC-0002", "Renamed two");
    sim.set_items(Services, items.clone());
    d.poll_until(false, 1, "the rename").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after_rename = chrono::Utc::now();

    // 2. A status that leaves the keep rules, 3. and comes back.
    items[2] = service("SVC-0003", "Terminated");
    sim.set_items(Services, items.clone());
    d.poll_until(false, 1, "the status move out").await;
    items[2] = service("SVC-0003", "Operational");
    sim.set_items(Services, items.clone());
    d.poll_until(false, 1, "the status move back").await;

    // 4. A deletion (full passes witness it), 5. and a re-creation under the same id.
    let deleted = items.remove(3);
    sim.set_items(Services, items.clone());
    d.poll_until(true, 1, "the deletion").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let while_deleted = chrono::Utc::now();
    items.insert(3, service("SVC-0004", "Operational"));
    sim.set_items(Services, items.clone());
    d.poll_until(false, 1, "the re-creation").await;
    assert_eq!(deleted["externalId"], "SVC-0004");

    let log = d.changes("inventory=services").await;
    assert_eq!(
        log.iter().map(summary).collect::<Vec<_>>(),
        [
            json!(["added", "SVC-0004", null, null]),
            json!(["removed", "SVC-0004", "gone", null]),
            json!(["added", "SVC-0003", null, null]),
            json!(["removed", "SVC-0003", "not_kept", null]),
            json!(["updated", "SVC-0002", null, null]),
            json!(["baseline", "", null, 5]),
        ],
        "newest first: {log:#?}"
    );
    let update = &log[4];
    assert_eq!(
        update["columns"]["name"],
        json!(["Service SVC-0002", "Renamed two"])
    );
    // The cursor pages (two a page above) and the filters agree with the whole log.
    let seqs: Vec<i64> = log.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let removed = d.changes("inventory=services&kind=removed").await;
    assert_eq!(removed, [log[1].clone(), log[3].clone()]);
    assert_eq!(d.changes("column=name").await, std::slice::from_ref(update));
    assert_eq!(
        d.changes("inventory=services&id=SVC-0003").await,
        [log[2].clone(), log[3].clone()]
    );

    // An item as it was.
    let (status, was) = d
        .get(&format!(
            "/api/v1/services/SVC-0002?at={}",
            before_rename.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{was}");
    assert_eq!(was["upstream"]["name"], "Service SVC-0002");
    let (_, now) = d
        .get(&format!(
            "/api/v1/services/SVC-0002?at={}",
            after_rename.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ))
        .await;
    assert_eq!(now["upstream"]["name"], "Renamed two");
    let (status, body) = d
        .get(&format!(
            "/api/v1/services/SVC-0004?at={}",
            while_deleted.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleted then: {body}");
    let (status, body) = d.get("/api/v1/services/SVC-0002?at=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("at: `yesterday`"));

    // An item's history: its changes, each with the version it replaced.
    let (status, history) = d.get("/api/v1/services/SVC-0003/history").await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let changes = history["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{history}");
    assert_eq!(changes[0]["change"]["kind"], "removed");
    assert_eq!(changes[0]["before"]["status"], "Operational");
    assert_eq!(changes[1]["change"]["kind"], "added");
    assert_eq!(history["current"]["status"], "Operational");

    // The log's pages carry a tag of their body: asked again with it, 304 and no body; the
    // next page's `Link` comes with the 200.
    let url = format!("{}/api/v1/changes?inventory=services&limit=2", d.base);
    let first = d.http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let tag = first.headers()["etag"].clone();
    assert!(first.headers()["link"].to_str().unwrap().contains("after="));
    let again = d
        .http
        .get(&url)
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    // A wrong parameter is named.
    let (status, body) = d.get("/api/v1/changes?kind=moved").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("kind: `moved`"));

    // The CLI reads the same log from the store, while the daemon runs.
    let mut cli = binary(&sim, sim.config());
    cli.env("SES_INVENTORY__STORE__PATH", &d.store).args([
        "changes",
        "--inventory",
        "services",
        "--format",
        "ndjson",
    ]);
    let out = output(cli).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, log);
    d.stop().await;
    sim.shutdown().await;
}

fn tempdir() -> TempDir {
    TempDir::new()
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ses-history-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! The read API over real HTTP: a daemon polling the simulator on loopback, the API bound to an
//! ephemeral loopback port, and reqwest as the client.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use ses_inventory::Inventory::{Carriers, Resources, Services};
use ses_inventory::config::{ApiServerConfig, Config};
use ses_inventory::model::secret::Secret;
use ses_inventory::serve::server::{Bound, Server};
use ses_inventory::sync::daemon::Daemon;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Fault, FaultKind, SimConfig, Simulator};
use std::sync::Arc;
use std::time::Duration;

struct Running {
    sim: Simulator,
    _sc: SimConfig,
    daemon: Daemon,
    server: Server,
    base: String,
    http: reqwest::Client,
}

impl Running {
    async fn start(
        prepare: impl FnOnce(&Simulator),
        configure: impl FnOnce(&mut Config),
    ) -> Running {
        let (sim, sc) = empty_sim().await;
        prepare(&sim);
        let mut cfg = config(&sim, &sc);
        cfg.api.listen = "127.0.0.1:0".into();
        configure(&mut cfg);
        let bound = Bound::bind(&cfg.api).await.expect("API binds");
        let daemon = Daemon::start(Arc::new(cfg), Clock::System).expect("daemon starts");
        let server = bound.serve(daemon.cache().clone(), daemon.control());
        let base = format!("http://{}", server.addr().expect("API on"));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Running {
            sim,
            _sc: sc,
            daemon,
            server,
            base,
            http,
        }
    }

    async fn ready(&self) {
        tokio::time::timeout(
            Duration::from_secs(30),
            self.daemon.cache().wait_all_ready(),
        )
        .await
        .expect("every inventory ready within 30 s");
    }

    /// Waits until every inventory is ready and settled (the settling pass after its buildup
    /// has run) and its poller idle: nothing changes the cache until a poll is requested, or
    /// an hour on.
    async fn idle(&self) {
        self.ready().await;
        for inv in ses_inventory::Inventory::ALL {
            settled(self.daemon.cache(), inv, 30).await;
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn post(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
    }

    async fn stop(self) {
        self.server.shutdown().await;
        self.daemon.shutdown().await;
        self.sim.shutdown().await;
    }
}

fn ids(body: &Value) -> Vec<&str> {
    body.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

fn total(headers: &reqwest::header::HeaderMap) -> usize {
    headers["x-total-count"].to_str().unwrap().parse().unwrap()
}

fn named(id: &str, name: &str, ty: &str) -> Value {
    let mut s = service(id, "Operational");
    s["name"] = json!(name);
    s["@type"] = json!(ty);
    s["description"] = json!(format!("{name} link"));
    s
}

fn crafted(sim: &Simulator) {
    sim.set_items(
        Services,
        vec![
            named("SVC-3", "Gamma", "CFS"),
            named("SVC-1", "alpha", "RFS"),
            named("SVC-2", "Beta", "CFS"),
            named("SVC-5", "Epsilon", "CFS"),
            named("SVC-4", "delta", "CFS"),
        ],
    );
    sim.set_items(Carriers, vec![carrier("C-1")]);
    sim.set_items(Resources, vec![resource("R-1", "Antenna")]);
}

#[tokio::test]
async fn lists_filter_sort_page_and_count() {
    let run = Running::start(crafted, |_| {}).await;
    run.ready().await;

    let (status, headers, body) = run.get("/api/v1/services").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total(&headers), 5);
    assert_eq!(ids(&body), ["SVC-1", "SVC-2", "SVC-3", "SVC-4", "SVC-5"]);
    assert_eq!(body[0]["name"], "alpha");
    assert_eq!(body[0]["external_id"], "SVC-1");
    // Every column is there, empty ones too (the crafted services have no place or dates).
    assert_eq!(body[0]["location"], json!([]));
    assert_eq!(body[0]["start_date"], Value::Null);
    assert_eq!(body[0]["type"], "RFS");
    assert_eq!(
        body[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "id",
            "external_id",
            "name",
            "description",
            "status",
            "type",
            "start_date",
            "end_date",
            "last_update",
            "related_party",
            "location",
            "service_specification",
            "supporting_resources",
        ]
    );

    let (_, headers, body) = run.get("/api/v1/services?type=CFS&sort=-name").await;
    assert_eq!(total(&headers), 4);
    assert_eq!(
        ids(&body),
        ["SVC-3", "SVC-5", "SVC-4", "SVC-2"],
        "case-insensitive, descending"
    );

    let (_, headers, body) = run.get("/api/v1/services?sort=name&offset=1&limit=2").await;
    assert_eq!((total(&headers), ids(&body)), (5, vec!["SVC-2", "SVC-4"]));
    assert_eq!(headers["x-result-count"], "2");

    let (_, _, body) = run.get("/api/v1/services?q=EPSILON").await;
    assert_eq!(ids(&body), ["SVC-5"]);
    let (_, _, body) = run.get("/api/v1/services?q=svc-4").await;
    assert_eq!(ids(&body), ["SVC-4"]);
    let (_, _, body) = run.get("/api/v1/services?q=delta%20link").await;
    assert_eq!(ids(&body), ["SVC-4"], "description is searched");

    let (_, _, body) = run.get("/api/v1/services?fields=name,status&limit=1").await;
    assert_eq!(
        body,
        json!([{"id": "SVC-1", "name": "alpha", "status": "Operational"}])
    );

    let (_, headers, body) = run.get("/api/v1/services?offset=10").await;
    assert_eq!((total(&headers), body), (5, json!([])));

    let (status, _, body) = run.get("/api/v1/resources?id=R-1").await;
    assert_eq!((status, ids(&body)), (StatusCode::OK, vec!["R-1"]));

    run.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_400_and_missing_things_404() {
    let began = std::time::Instant::now();
    let run = Running::start(crafted, |_| {}).await;
    run.idle().await;

    for (path, needle) in [
        ("/api/v1/services?colour=red", "colour"),
        ("/api/v1/services?sort=-colour", "colour"),
        ("/api/v1/services?fields=name,colour", "colour"),
        ("/api/v1/services?limit=5000", "limit"),
        ("/api/v1/services?limit=ten", "ten"),
        ("/api/v1/services?offset=-3", "offset"),
        ("/api/v1/carriers?limit=1&limit=2", "limit"),
    ] {
        let (status, _, body) = run.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error = body["error"].as_str().expect("a JSON error");
        assert!(error.contains(needle), "{path}: {error}");
    }

    let (status, _, body) = run.get("/api/v1/services/SVC-404").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().unwrap().contains("SVC-404"),
        "{body}"
    );
    let (status, _, body) = run.get("/api/v1/widgets").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().unwrap().contains("widgets"),
        "{body}"
    );
    let (status, _, body) = run.get("/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    let (status, _) = run.post("/api/v1/services").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // One item: its row, the upstream JSON as received, and when it was seen.
    let (status, _, body) = run.get("/api/v1/services/SVC-2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "SVC-2");
    assert_eq!(body["row"]["name"], "Beta");
    assert_eq!(body["upstream"]["externalId"], "SVC-2");
    assert_eq!(body["upstream"]["id"], "sys-SVC-2");
    // First seen by the buildup, last seen by the settling pass that followed it (the last
    // full pass): first seen before that pass started, last seen during it.
    let seen = |t: &str| -> chrono::DateTime<chrono::Utc> {
        let text = body[t].as_str().unwrap();
        text.parse().unwrap_or_else(|e| panic!("{t}={text}: {e}"))
    };
    let pass = run.daemon.cache().status(Services).last_full.unwrap();
    assert_eq!(
        pass.reason,
        Some(ses_inventory::sync::window::FullReason::Settling)
    );
    let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis();
    assert!(
        ms(seen("first_seen")) <= ms(pass.started)
            && ms(pass.started) <= ms(seen("last_seen"))
            && ms(seen("last_seen")) <= ms(pass.finished),
        "{body}"
    );

    let (status, _, body) = run.get("/api/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["ready"], true);
    assert!(
        body["uptime_seconds"].as_u64().unwrap() <= began.elapsed().as_secs(),
        "{body}"
    );
    let services = &body["inventories"]["services"];
    assert_eq!(
        (services["ready"].clone(), services["items"].clone()),
        (json!(true), json!(5))
    );
    assert_eq!(services["phase"], "ready");
    // The last full pass is the settling pass: it found the five the buildup had added.
    assert_eq!(services["last_full"]["reason"], "settling");
    assert_eq!(services["last_full"]["outcome"], "complete");
    assert_eq!(services["last_full"]["added"], 0);
    assert_eq!(services["last_full"]["pages"], 1);
    assert_eq!(services["last_full"]["received"], 5);
    assert_eq!(services["consecutive_failures"], 0);
    assert_eq!(
        (
            &services["settled"],
            &services["converged"],
            &services["unconfirmed"]
        ),
        (&json!(true), &json!(true), &json!(0))
    );
    // The next poll is a refresh, one cache_update_frequency (3600 s) after the pass started.
    let time = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    let after_start = time(&services["next_poll"]) - time(&services["last_full"]["started"]);
    assert!(
        after_start >= chrono::Duration::seconds(3600)
            && after_start < chrono::Duration::seconds(3601),
        "{after_start:?}"
    );
    assert_eq!(body["inventories"]["resources"]["items"], 1);

    run.stop().await;
}

#[tokio::test]
async fn the_token_guards_api_and_metrics_but_not_health() {
    let run = Running::start(crafted, |cfg| cfg.api.token = Secret::new("s3cr3t-t0ken")).await;
    for path in [
        "/api/v1/services",
        "/api/v1/status",
        "/metrics",
        "/api/v1/services/SVC-1",
    ] {
        for auth in [None, Some("Bearer wrong"), Some("s3cr3t-t0ken")] {
            let mut req = run.http.get(format!("{}{path}", run.base));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} with {auth:?}");
            assert!(r.headers().contains_key("www-authenticate"));
            let body = r.text().await.unwrap();
            assert!(!body.contains("s3cr3t"), "{body}");
        }
    }
    let r = run
        .http
        .post(format!("{}/api/v1/refresh", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "refresh needs the token too"
    );

    let r = run
        .http
        .get(format!("{}/metrics", run.base))
        .bearer_auth("s3cr3t-t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    run.ready().await;
    let r = run
        .http
        .get(format!("{}/api/v1/services", run.base))
        .bearer_auth("s3cr3t-t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for path in ["/healthz", "/readyz", "/api/v1/openapi.json"] {
        let (status, _, _) = run.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path} stays open");
    }
    run.stop().await;

    // Reachable from other hosts without a token: refused, naming the key, before binding.
    let open = ApiServerConfig {
        listen: "0.0.0.0:0".into(),
        token: Secret::default(),
        token_file: String::new(),
        allow_unauthenticated: false,
    };
    let err = match Bound::bind(&open).await {
        Ok(_) => panic!("0.0.0.0 without a token must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("api.listen") && err.contains("api.token"),
        "{err}"
    );
}

/// The OpenAPI document: served as the code generates it, equal to the committed
/// `docs/openapi.json`, and every operation it names is answered by the daemon with a status
/// it documents (a route missing from the router would be the fallback's 404).
#[tokio::test]
async fn the_openapi_document_is_served_committed_and_true_to_the_routes() {
    let run = Running::start(crafted, |_| {}).await;
    run.idle().await;
    let (status, headers, served) = run.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let generated = ses_inventory::serve::api::openapi::text();
    assert_eq!(served, serde_json::from_str::<Value>(&generated).unwrap());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    assert!(
        committed == generated,
        "docs/openapi.json differs from what the code generates: \
         run `cargo run -q -- openapi > docs/openapi.json` and commit it"
    );
    assert_eq!(served["openapi"], "3.1.0");
    // The command prints the same document, for offline client generation.
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_ses-inventory"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert!(
        printed.stdout == generated.as_bytes(),
        "`openapi` prints the document"
    );
    // An item that is not there is 404, even under `If-None-Match: *`.
    let r = run
        .http
        .get(format!("{}/api/v1/services/NO-SUCH-ID", run.base))
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let paths = served["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 3 * 3 + 7, "{:?}", paths.keys());
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let url = format!("{}{}", run.base, path.replace("{id}", "SVC-1"));
            let request = match method.as_str() {
                "get" => run.http.get(url),
                "post" => run.http.post(url),
                other => panic!("{path}: unexpected method {other}"),
            };
            let answer = request.send().await.unwrap();
            let code = answer.status().as_u16().to_string();
            assert!(
                operation["responses"].get(&code).is_some(),
                "{method} {path} answered {code}, which the document does not list"
            );
        }
    }
    run.stop().await;
}

#[tokio::test]
async fn readiness_is_503_until_every_inventory_has_a_complete_pass() {
    // Resources keep failing: services and carriers get ready, the daemon does not.
    let run = Running::start(
        |sim| {
            crafted(sim);
            sim.inject(Fault {
                inventory: Some(Resources.into()),
                page: None,
                refresh_only: false,
                items: false,
                skip: 0,
                kind: FaultKind::Status {
                    code: 500,
                    retry_after: None,
                },
                times: None,
            });
        },
        |_| {},
    )
    .await;
    let (status, _, body) = run.get("/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let cache = run.daemon.cache().clone();
    tokio::time::timeout(Duration::from_secs(30), async {
        cache.wait_ready(Services).await;
        cache.wait_ready(Carriers).await;
    })
    .await
    .expect("services and carriers ready");
    let mut polls = cache.watch_polls();
    tokio::time::timeout(Duration::from_secs(30), async {
        while cache.status(Resources).last_error.is_none() {
            polls.changed().await.unwrap();
        }
    })
    .await
    .expect("the resources poll fails");

    let (status, _, body) = run.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(
        body["inventories"],
        json!({"services": true, "carriers": true, "resources": false})
    );
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("resources") && reason.contains("HTTP 500"),
        "{reason}"
    );
    assert!(!reason.contains("services"), "{reason}");

    // The upstream recovers; asking for a pass now (instead of after the backoff) makes it ready.
    run.sim.clear_faults();
    let (status, body) = run
        .post("/api/v1/refresh?inventory=resources&full=true")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["inventories"]["resources"], "queued");
    run.ready().await;
    let (status, _, body) = run.get("/readyz").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ready": true})));
    run.stop().await;
}

#[tokio::test]
async fn a_refresh_request_reaches_the_simulator_and_changes_what_is_served() {
    let run = Running::start(crafted, |_| {}).await;
    // Idle: a request made during the settling pass would join it.
    run.idle().await;
    let cache = run.daemon.cache().clone();
    let (_, headers, _) = run.get("/api/v1/services").await;
    assert_eq!(total(&headers), 5);

    // Upstream: SVC-6 appears, SVC-1 is renamed.
    let mut items = run.sim.items(Services);
    items.push(named("SVC-6", "Zeta", "CFS"));
    items[1] = named("SVC-1", "Alpha prime", "RFS");
    run.sim.set_items(Services, items);
    let before = run.sim.requests().len();

    let mut polls = cache.watch_polls();
    polls.mark_unchanged();
    let (status, body) = run.post("/api/v1/refresh?inventory=services").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        json!({"kind": "refresh", "inventories": {"services": "queued"}})
    );
    tokio::time::timeout(Duration::from_secs(30), async {
        while cache.get(Services, "SVC-6").is_none() {
            polls.changed().await.unwrap();
        }
    })
    .await
    .expect("the refresh is applied");
    let asked: Vec<_> = run.sim.requests()[before..].to_vec();
    assert!(
        asked
            .iter()
            .any(|r| r.inventory == Some(Services.into()) && r.updated_days_ago.is_some()),
        "a refresh (updatedDaysAgo) reached the simulator: {asked:?}"
    );
    let (_, headers, body) = run.get("/api/v1/services?fields=name").await;
    assert_eq!(total(&headers), 6);
    assert_eq!(body[0], json!({"id": "SVC-1", "name": "Alpha prime"}));
    assert_eq!(body[5], json!({"id": "SVC-6", "name": "Zeta"}));

    // A full pass finds deletions: SVC-3 is gone upstream, and from the API after the pass.
    let items: Vec<Value> = run
        .sim
        .items(Services)
        .into_iter()
        .filter(|v| v["externalId"] != "SVC-3")
        .collect();
    run.sim.set_items(Services, items);
    let (status, body) = run
        .post("/api/v1/refresh?inventory=services&full=true")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    tokio::time::timeout(Duration::from_secs(30), async {
        while cache.get(Services, "SVC-3").is_some() {
            polls.changed().await.unwrap();
        }
    })
    .await
    .expect("the full pass is applied");
    let (status, _, _) = run.get("/api/v1/services/SVC-3").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = run.post("/api/v1/refresh").await;
    let all = body["inventories"].as_object().unwrap();
    assert_eq!(all.len(), 3, "no inventory = all three: {body}");

    for (path, needle) in [
        ("/api/v1/refresh?inventory=widgets", "widgets"),
        ("/api/v1/refresh?full=maybe", "maybe"),
        ("/api/v1/refresh?when=now", "when"),
    ] {
        let (status, body) = run.post(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(body["error"].as_str().unwrap().contains(needle), "{body}");
    }
    run.stop().await;
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text() {
    let run = Running::start(crafted, |_| {}).await;
    run.idle().await;
    let r = run
        .http
        .get(format!("{}/metrics", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let items = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "ses_inventory_items" && s.labels.get("inventory") == Some("services")
        })
        .expect("items gauge");
    // Items are read from this daemon's cache at scrape time.
    assert!(
        matches!(items.value, prometheus_parse::Value::Gauge(v) if v == 5.0),
        "{:?}",
        items.value
    );
    // Gauges read from this daemon's cache at scrape time: exact values.
    let gauge = |metric: &str, inv: &str| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && s.labels.get("inventory") == Some(inv))
            .unwrap_or_else(|| panic!("{metric} {inv} in\n{text}"));
        match sample.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{metric}: {other:?}"),
        }
    };
    let cache = run.daemon.cache();
    for (inv, items) in [(Services, 5.0), (Carriers, 1.0), (Resources, 1.0)] {
        assert_eq!(gauge("ses_inventory_items", inv.as_str()), items, "{inv}");
        assert_eq!(gauge("ses_inventory_ready", inv.as_str()), 1.0, "{inv}");
        let success = cache.status(inv).last_success.unwrap().timestamp_millis() as f64 / 1000.0;
        let scraped = gauge("ses_inventory_last_success_timestamp_seconds", inv.as_str());
        assert!(
            (scraped - success).abs() < 0.001,
            "{inv}: {scraped} vs {success}"
        );
    }
    // Counters are process-wide (other tests of this binary poll too): present, and at least
    // what this daemon did. tests/metrics.rs checks exact counts in a binary of its own.
    for family in [
        "ses_inventory_polls_total",
        "ses_inventory_pages_total",
        "ses_inventory_page_retries_total",
        "ses_inventory_skipped_items_total",
        "ses_inventory_last_success_timestamp_seconds",
        "ses_inventory_full_pass_duration_seconds",
        "ses_inventory_upstream_request_duration_seconds",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == family),
            "{family} missing:\n{text}"
        );
    }
    run.stop().await;
}

/// The real binary, configured by environment only, pointed at `sim`, its API on `listen`.
fn api_binary(sim: &Simulator, listen: &str) -> std::process::Command {
    let mut c = binary(sim, sim.config());
    c.env("SES_INVENTORY__API__LISTEN", listen)
        .env("SES_INVENTORY__API__TOKEN", "bin-t0ken")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_the_api_and_a_busy_port_stops_its_start() {
    use std::io::{BufRead, BufReader};
    let (sim, _sc) = empty_sim().await;
    crafted(&sim);

    // A port already in use: exit 1 before any upstream request, naming the key.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = tokio::task::spawn_blocking({
        let mut c = api_binary(&sim, &busy.local_addr().unwrap().to_string());
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("api.listen"), "{stderr}");
    assert!(
        sim.requests().is_empty(),
        "no request when the API cannot listen"
    );

    let mut child = api_binary(&sim, "127.0.0.1:0").spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Forwards every line until stderr closes (the process exited), then ends.
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let listening = tokio::task::spawn_blocking(move || {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the daemon logs where the API listens");
            if line.contains("API listening.") {
                assert!(!line.contains("bin-t0ken"), "{line}");
                return (line, rx);
            }
        }
    })
    .await
    .unwrap();
    let log: Value = serde_json::from_str(&listening.0).unwrap();
    let addr = log["addr"].as_str().unwrap_or_else(|| panic!("{log}"));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .get(format!("http://{addr}/api/v1/status"))
        .bearer_auth("bin-t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    let pid = child.id().to_string();
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
    // Every line up to the last one: the reader has forwarded all of them once it ended.
    tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    let rest: Vec<String> = listening.1.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("Shutting down.")),
        "the log is read to its end: {rest:?}"
    );
    assert!(
        rest.iter().all(|l| !l.contains("bin-t0ken")),
        "the token is never logged"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_stall_polling() {
    use tokio::io::AsyncWriteExt;
    let run = Running::start(
        |sim| {
            crafted(sim);
            sim.set_items(Services, services(1000));
        },
        |_| {},
    )
    .await;
    run.idle().await;
    let addr = run.server.addr().unwrap();
    // Ask for the largest pages on several connections and never read the answers.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /api/v1/services?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        stalled.push(s);
    }
    // Meanwhile upstream gains ten services, and a full pass is applied and served to another
    // client.
    let mut more = run.sim.items(Services);
    more.extend((1..=10).map(|i| service(&format!("NEW-{i:02}"), "Operational")));
    run.sim.set_items(Services, more);
    let cache = run.daemon.cache().clone();
    let mut polls = cache.watch_polls();
    polls.mark_unchanged();
    let (status, _) = run
        .post("/api/v1/refresh?inventory=services&full=true")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::timeout(Duration::from_secs(30), async {
        while cache.len(Services) != 1010 {
            polls.changed().await.unwrap();
        }
    })
    .await
    .expect("the poll is applied while clients sit on their answers");
    let (_, headers, _) = run.get("/api/v1/services").await;
    assert_eq!(total(&headers), 1010);
    drop(stalled);
    run.stop().await;
}

#[tokio::test]
async fn a_refresh_request_is_503_once_the_pollers_are_gone() {
    let run = Running::start(crafted, |_| {}).await;
    run.ready().await;
    let Running {
        sim,
        daemon,
        server,
        base,
        http,
        ..
    } = run;
    // Shutting down: the pollers stop first; the API still answers until it is stopped.
    daemon.shutdown().await;
    let r = http
        .post(format!("{base}/api/v1/refresh?full=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"kind": "full", "inventories": {
            "services": "unavailable", "carriers": "unavailable", "resources": "unavailable"
        }})
    );
    server.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_list_without_limit_returns_100_rows() {
    let run = Running::start(
        |sim| {
            crafted(sim);
            sim.set_items(Services, services(150));
        },
        |_| {},
    )
    .await;
    run.ready().await;
    let (_, headers, body) = run.get("/api/v1/services").await;
    let want: Vec<String> = (1..=100).map(|i| format!("SVC-{i:04}")).collect();
    assert_eq!(ids(&body), want);
    assert_eq!(
        (total(&headers), &headers["x-result-count"]),
        (150, &"100".parse().unwrap())
    );
    let (_, headers, body) = run.get("/api/v1/services?offset=100").await;
    let want: Vec<String> = (101..=150).map(|i| format!("SVC-{i:04}")).collect();
    assert_eq!(ids(&body), want);
    assert_eq!(headers["x-result-count"], "50");
    run.stop().await;
}

/// A service with a type, a name and (maybe) a start date.
fn dated(id: &str, ty: &str, name: &str, start: Option<&str>) -> Value {
    let mut s = named(id, name, ty);
    if let Some(start) = start {
        s["startDate"] = json!(start);
    }
    s
}

#[tokio::test]
async fn lists_sort_by_several_columns_and_by_time() {
    let run = Running::start(
        |sim| {
            crafted(sim);
            sim.set_items(
                Services,
                vec![
                    dated("SVC-1", "CFS", "b", Some("2024-03-01T00:00:00Z")),
                    dated("SVC-2", "RFS", "a", Some("2023-01-15T12:00:00Z")),
                    // 08:00 UTC: earlier than SVC-5 although its text sorts after it.
                    dated("SVC-3", "CFS", "a", Some("2025-06-30T10:00:00+02:00")),
                    dated("SVC-4", "CFS", "c", None),
                    dated("SVC-5", "RFS", "B", Some("2025-06-30T09:00:00Z")),
                ],
            );
        },
        |_| {},
    )
    .await;
    run.ready().await;
    for (sort, want) in [
        ("type,-name", ["SVC-4", "SVC-1", "SVC-3", "SVC-5", "SVC-2"]),
        ("-type,name", ["SVC-2", "SVC-5", "SVC-3", "SVC-1", "SVC-4"]),
        ("name,-id", ["SVC-3", "SVC-2", "SVC-5", "SVC-1", "SVC-4"]),
        // By instant, not by text; no date sorts last in either direction.
        ("start_date", ["SVC-2", "SVC-1", "SVC-3", "SVC-5", "SVC-4"]),
        ("-start_date", ["SVC-5", "SVC-3", "SVC-1", "SVC-2", "SVC-4"]),
    ] {
        let (status, _, body) = run.get(&format!("/api/v1/services?sort={sort}")).await;
        assert_eq!(status, StatusCode::OK, "{sort}: {body}");
        assert_eq!(ids(&body), want, "sort={sort}");
    }
    run.stop().await;
}

#[tokio::test]
async fn lists_carry_etags_answer_304_and_link_their_next_page() {
    let run = Running::start(crafted, |_| {}).await;
    run.idle().await;
    let cache = run.daemon.cache().clone();
    let (status, headers, body) = run.get("/api/v1/services?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let tag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(ids(&body), ["SVC-1", "SVC-2"]);

    // Following `Link: rel="next"` walks every item once, in id order.
    let mut walked: Vec<String> = ids(&body).iter().map(|s| s.to_string()).collect();
    let mut link = headers.get("link").map(|l| l.to_str().unwrap().to_string());
    while let Some(next) = link {
        let path = next
            .strip_prefix('<')
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(path, _)| path.to_string())
            .unwrap_or_else(|| panic!("a next link: {next}"));
        assert!(path.contains("after="), "{path}");
        let (status, headers, body) = run.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(total(&headers), 5, "the total is the whole list's");
        walked.extend(ids(&body).iter().map(|s| s.to_string()));
        link = headers.get("link").map(|l| l.to_str().unwrap().to_string());
        assert!(walked.len() <= 5, "the walk ends: {walked:?}");
    }
    assert_eq!(walked, ["SVC-1", "SVC-2", "SVC-3", "SVC-4", "SVC-5"]);

    // The same tag: 304 and no body, for the list and for an item.
    let conditional = |path: &str, tag: &str| {
        run.http
            .get(format!("{}{path}", run.base))
            .header("if-none-match", tag)
            .send()
    };
    let r = conditional("/api/v1/services?limit=2", &tag).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"], tag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = conditional("/api/v1/services/SVC-1", &tag).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = conditional("/api/v1/services", "W/\"something-else\"")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The status's tag is its body's: 304 while the body is the same, 200 once it changed
    // (its uptime moves by the second).
    let (_, status_headers, first) = run.get("/api/v1/status").await;
    let status_tag = status_headers["etag"].to_str().unwrap().to_string();
    let r = conditional("/api/v1/status", &status_tag).await.unwrap();
    if r.status() == StatusCode::OK {
        let now: Value = r.json().await.unwrap();
        assert_ne!(now, first, "a new body, hence the 200");
    } else {
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    }

    // After a poll the old tag no longer matches: the client gets the new list.
    let mut polls = cache.watch_polls();
    polls.mark_unchanged();
    let (status, _) = run.post("/api/v1/refresh?inventory=services").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::timeout(Duration::from_secs(30), polls.changed())
        .await
        .expect("a poll within 30 s")
        .unwrap();
    let r = conditional("/api/v1/services?limit=2", &tag).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(r.headers()["etag"], tag.as_str());
    run.stop().await;
}

/// Sends `request` as raw bytes and reads the whole answer (the server closes after it).
async fn raw(base: &str, request: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading all of a huge request.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text[9..12].parse().unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn requests_the_parser_refuses_get_json_errors_too() {
    let run = Running::start(crafted, |_| {}).await;
    let long_uri = format!(
        "GET /api/v1/services?q={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(100_000)
    );
    let (status, body) = raw(&run.base, long_uri.as_bytes()).await;
    assert_eq!(status, 414, "{body}");
    assert!(body["error"].as_str().unwrap().contains("URI"), "{body}");

    let huge_headers = format!(
        "GET /api/v1/status HTTP/1.1\r\nhost: x\r\nx-filler: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    let (status, body) = raw(&run.base, huge_headers.as_bytes()).await;
    assert_eq!(status, 431, "{body}");
    assert!(body["error"].as_str().unwrap().contains("header"), "{body}");

    let (status, body) = raw(&run.base, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");

    // A request that parses is still the router's.
    let (status, body) = raw(
        &run.base,
        b"GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string(), "{body}");
    run.stop().await;
}

#[tokio::test]
async fn answers_are_compressed_with_gzip_or_brotli_when_asked_and_every_request_is_counted() {
    use std::io::Read;
    let run = Running::start(crafted, |_| {}).await;
    run.ready().await;
    let plain = run
        .http
        .get(format!("{}/api/v1/services", run.base))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain: Value = plain.json().await.unwrap();
    let zipped = run
        .http
        .get(format!("{}/api/v1/services", run.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("a gzip body");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), plain);
    // Brotli when the client prefers it.
    let brotli = run
        .http
        .get(format!("{}/api/v1/services", run.base))
        .header("accept-encoding", "br;q=1.0, gzip;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(brotli.headers()["content-encoding"], "br");
    let bytes = brotli.bytes().await.unwrap();
    let mut text = String::new();
    brotli_decompressor::Decompressor::new(&bytes[..], 4096)
        .read_to_string(&mut text)
        .expect("a brotli body");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), plain);

    let _ = run.get("/api/v1/nowhere/at/all").await;
    let (_, _, _) = run.get("/metrics").await;
    let text = get_text(&run.http, format!("{}/metrics", run.base)).await;
    let count = |route: &str, status: &str| -> f64 {
        text.lines()
            .find(|l| {
                l.starts_with("ses_inventory_api_request_duration_seconds_count{")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(count("/api/v1/{inventory}", "200") >= 2.0, "{text}");
    assert!(count("unmatched", "404") >= 1.0, "{text}");
    assert!(count("/metrics", "200") >= 1.0, "{text}");
    run.stop().await;
}

//! The NATS JetStream mirror and change stream against a real `nats-server` (Debian's
//! `nats-server` package; `.ci/run` installs it): the buckets equal the cache item for item
//! through buildup, refreshes and full passes with removals; a NATS outage fails no poll and
//! the mirror converges once NATS is back; a consumer of the change stream rebuilds the
//! inventory exactly. Without nats-server the tests are skipped with a note, except in CI
//! (`CI` set), where they fail.

mod common;

use async_nats::jetstream;
use common::nats::{
    Daemon, NatsServer, bucket, eventually, ha_command, header, holds_seen, http,
    mirror_equals_api, same_data, stream_messages,
};
use serde_json::Value;
use ses_inventory::Inventory;
use ses_inventory::cache::Cache;
use ses_inventory::cmd::root::{App, Notify};
use ses_inventory::mirror::{kv, stream};
use ses_inventory::serve::server::Bound;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{SimConfig, Simulator};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What the note says is skipped without nats-server.
const TESTS: &str = "NATS";

/// What a read-API list row says, as a map: `id` and the columns.
fn row_of(cache: &Cache, inv: Inventory, key: &str) -> Value {
    let item = cache.get(inv, key).expect("cached");
    let mut row = serde_json::Map::new();
    row.insert("id".into(), Value::String(key.to_owned()));
    for (i, column) in ses_inventory::model::row::Row::columns(inv)
        .iter()
        .enumerate()
    {
        row.insert(column.name.into(), item.cell(i).to_json());
    }
    row.insert("upstream".into(), item.json());
    Value::Object(row)
}

/// The buckets equal `cache` item for item.
async fn mirror_equals_cache(js: &jetstream::Context, cache: &Cache) -> Result<(), String> {
    for inv in Inventory::ALL {
        let entries = bucket(js, inv).await?;
        let keys = common::keys(cache, inv);
        let mirrored: Vec<&String> = entries.keys().collect();
        if mirrored
            .iter()
            .map(|k| k.as_str())
            .ne(keys.iter().map(String::as_str))
        {
            return Err(format!(
                "{inv}: {} mirrored, {} cached",
                mirrored.len(),
                keys.len()
            ));
        }
        for key in &keys {
            if !holds_seen(&entries[key], &row_of(cache, inv, key)) {
                return Err(format!("{inv} {key}: entry differs from the cache"));
            }
        }
    }
    Ok(())
}

/// An in-process daemon (store off) with the API on loopback, mirroring to `nats`.
async fn start_app(
    sim: &ses_inventory_sim::Simulator,
    sc: &ses_inventory_sim::SimConfig,
    nats: &NatsServer,
) -> (App, String) {
    let mut cfg = common::config(sim, sc);
    cfg.api.listen = "127.0.0.1:0".into();
    cfg.nats.url = nats.url();
    cfg.ha.instance = "in-process".into();
    let bound = Bound::bind(&cfg.api).await.expect("API binds");
    let base = format!("http://{}", bound.addr().unwrap());
    let app = App::start(Arc::new(cfg), Clock::System, Some(bound), Notify::Off).expect("starts");
    (app, base)
}

/// Asks for a poll of every inventory and waits until each has finished one after the request.
async fn poll_all(http: &reqwest::Client, base: &str, cache: &Cache, full: bool) {
    let before: Vec<_> = Inventory::ALL
        .iter()
        .map(|&inv| last_finished(cache, inv, full))
        .collect();
    let r = http
        .post(format!("{base}/api/v1/refresh?full={full}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (i, inv) in Inventory::ALL.into_iter().enumerate() {
        while last_finished(cache, inv, full) == before[i] {
            assert!(tokio::time::Instant::now() < deadline, "{inv}: no poll");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn last_finished(
    cache: &Cache,
    inv: Inventory,
    full: bool,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = cache.status(inv);
    let report = if full { s.last_full } else { s.last_refresh };
    report.map(|r| r.finished)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_buckets_equal_the_cache_after_buildup_refresh_and_full_pass_with_removals() {
    let Some(nats) = NatsServer::start(TESTS) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (sim, sc) = common::sim_with_passwords("p638", "p639").await;
    // Keys that are not valid KV keys as they stand: dots, slashes, spaces, `=`, non-ASCII.
    sim.set_items(
        Inventory::Carriers,
        ["CAR.1", "CAR/2", "CAR 3", "CAR=4", "CÄR-5", "CAR-6"]
            .iter()
            .map(|k| common::carrier(k))
            .collect(),
    );
    let (app, base) = start_app(&sim, &sc, &nats).await;
    let js = nats.client().await;
    let cache = app.cache().clone();
    tokio::time::timeout(Duration::from_secs(30), cache.wait_all_ready())
        .await
        .expect("ready");
    // And settled: the requests below do not join the settling passes.
    for inv in Inventory::ALL {
        common::settled(&cache, inv, 30).await;
    }
    eventually(20, "the mirror of the buildup", || {
        mirror_equals_cache(&js, &cache)
    })
    .await;
    assert_eq!(
        bucket(&js, Inventory::Carriers).await.unwrap().len(),
        6,
        "every odd key mirrored"
    );

    // A refresh: ~2% of items changed and ~1% added upstream.
    let http = http();
    sim.mutate(1);
    poll_all(&http, &base, &cache, false).await;
    eventually(20, "the mirror of the refresh", || {
        mirror_equals_cache(&js, &cache)
    })
    .await;

    // A full pass: ~1% deleted upstream (and more changes); a carrier with an odd key goes.
    sim.mutate(2);
    sim.set_items(
        Inventory::Carriers,
        ["CAR.1", "CAR 3", "CAR=4", "CÄR-5", "CAR-6"]
            .iter()
            .map(|k| common::carrier(k))
            .collect(),
    );
    let services_before = bucket(&js, Inventory::Services).await.unwrap().len();
    poll_all(&http, &base, &cache, true).await;
    let removed = cache.status(Inventory::Services).last_full.unwrap().removed;
    assert!(removed > 0, "the full pass removed services");
    eventually(20, "the mirror of the full pass", || {
        mirror_equals_cache(&js, &cache)
    })
    .await;
    let carriers = bucket(&js, Inventory::Carriers).await.unwrap();
    assert!(!carriers.contains_key("CAR/2"), "removed from the bucket");
    assert!(bucket(&js, Inventory::Services).await.unwrap().len() < services_before + 10);
    app.stop().await;
}

impl Daemon {
    /// Asks for a poll of every inventory and returns each one's report once it is finished
    /// (at most 30 s in all).
    async fn poll_all(&self, full: bool) -> Vec<Value> {
        let which = if full { "last_full" } else { "last_refresh" };
        let finished = |status: &Value, inv: Inventory| {
            status["inventories"][inv.as_str()][which]["finished"].clone()
        };
        let before = self.get("/api/v1/status").await;
        assert_eq!(self.request_poll(&format!("full={full}")).await, 202);
        let mut reports = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for inv in Inventory::ALL {
            loop {
                let now = self.get("/api/v1/status").await;
                if finished(&now, inv) != finished(&before, inv) {
                    reports.push(now["inventories"][inv.as_str()][which].clone());
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no {which} poll of {inv}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        reports
    }
}

/// What a consumer of the change stream knows: per inventory, key → last upserted body.
fn rebuild(messages: &[jetstream::Message]) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for m in messages {
        let parts: Vec<&str> = m.subject.as_str().split('.').collect();
        let (inv, kind) = (parts[2], parts[3]);
        let body: Value = serde_json::from_slice(&m.payload).unwrap();
        let items = out.entry(inv.to_owned()).or_default();
        match kind {
            "upserted" => {
                items.insert(body["id"].as_str().unwrap().to_owned(), body);
            }
            "removed" => {
                items.remove(body["id"].as_str().unwrap());
            }
            "poll" => {}
            other => panic!("unexpected subject kind {other}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nats_outage_fails_no_poll_and_the_mirror_and_the_stream_converge() {
    const TOKEN: &str = "nats-T0ken-never-logged";
    let Some(mut nats) = NatsServer::start_with(TESTS, Some(TOKEN), false) else {
        return;
    };
    let (sim, sc) = common::sim_with_passwords("p638", "p639").await;
    let token_file = nats.dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    // A stream left by an earlier configuration: the daemon's retention settings replace its.
    nats.client()
        .await
        .create_stream(jetstream::stream::Config {
            name: stream::STREAM.to_owned(),
            subjects: vec![stream::SUBJECTS.to_owned()],
            max_age: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut c = common::binary(&sim, &sc);
    c.arg("run")
        .env("SES_INVENTORY__NATS__URL", nats.url())
        .env("SES_INVENTORY__NATS__TOKEN_FILE", &token_file)
        .env("SES_INVENTORY__NATS__STREAM_MAX_AGE", "7200")
        .env("SES_INVENTORY__NATS__STREAM_MAX_BYTES", "50000000")
        .env("SES_INVENTORY__HA__INSTANCE", "outage-test");
    let daemon = Daemon::spawn("the daemon", c);
    daemon.ready().await;
    daemon.settled().await;
    let js = nats.client().await;
    eventually(20, "the mirror of the buildup", || {
        mirror_equals_api(&js, &daemon)
    })
    .await;
    assert_eq!(
        daemon.metric("ses_inventory_nats_connected").await.unwrap(),
        1.0
    );
    // Without ha.enabled: no lease, the only instance.
    let ha = daemon.ha().await;
    assert_eq!(
        ha,
        serde_json::json!({"role": "off", "leader": null, "lease_expires": null})
    );
    assert_eq!(
        daemon.metric("ses_inventory_ha_role{role=\"off\"}").await,
        Some(1.0)
    );
    // The stream's retention is bounded as configured (the earlier stream's updated).
    let config = js
        .get_stream(stream::STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(config.max_age, Duration::from_secs(7200));
    assert_eq!(config.max_bytes, 50_000_000);
    assert_eq!(config.subjects, ["ses.inventory.>"]);
    // Every buildup's report is on the stream (the mirror has written what it had queued).
    eventually(20, "the buildup's poll messages", || async {
        let messages = stream_messages(&js).await;
        let reported = Inventory::ALL.iter().all(|&inv| {
            messages.iter().any(|m| {
                let body: Value = serde_json::from_slice(&m.payload).unwrap_or_default();
                m.subject.as_str() == stream::subject(inv, stream::Kind::Poll)
                    && body["kind"] == "full"
                    && body["outcome"] == "complete"
            })
        });
        reported.then_some(()).ok_or_else(|| "not yet".to_owned())
    })
    .await;

    // NATS goes away. Upstream changes; a full pass and a refresh run and complete as always.
    nats.stop();
    sim.mutate(1);
    let started = std::time::Instant::now();
    for report in daemon.poll_all(true).await {
        assert_eq!(report["outcome"], "complete", "{report}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "polls took {:?} without NATS",
        started.elapsed()
    );
    sim.mutate(2);
    for report in daemon.poll_all(false).await {
        assert_eq!(report["outcome"], "complete", "{report}");
    }
    // ... and the mirror says it is behind.
    eventually(20, "ses_inventory_mirror_behind 1", || async {
        let behind = daemon.metric("ses_inventory_mirror_behind").await;
        (behind == Some(1.0))
            .then_some(())
            .ok_or(format!("{behind:?}"))
    })
    .await;
    assert!(daemon.logs().contains("NATS mirror behind the cache"));

    // NATS is back (its store kept): the mirror catches up from the cache, and says so.
    nats.spawn();
    eventually(60, "the mirror after the outage", || {
        mirror_equals_api(&js, &daemon)
    })
    .await;
    eventually(20, "ses_inventory_mirror_behind 0", || async {
        let behind = daemon.metric("ses_inventory_mirror_behind").await;
        (behind == Some(0.0))
            .then_some(())
            .ok_or(format!("{behind:?}"))
    })
    .await;
    assert!(
        daemon
            .logs()
            .contains("NATS mirror caught up with the cache.")
    );
    assert!(
        daemon
            .metric("ses_inventory_mirror_resyncs_total{inventory=\"services\"}")
            .await
            .unwrap()
            >= 2.0,
        "a start and a catch-up"
    );

    // A consumer that followed the change stream from its start holds exactly the inventory.
    let messages = stream_messages(&js).await;
    let rebuilt = rebuild(&messages);
    for inv in Inventory::ALL {
        let rows = daemon.rows(inv).await;
        let items = &rebuilt[inv.as_str()];
        assert!(items.keys().eq(rows.keys()), "{inv}: keys differ");
        for (key, row) in &rows {
            assert!(holds_seen(&items[key], row), "{inv} {key}: differs");
        }
    }
    for m in &messages {
        let kind = header(m, "Ses-Kind").expect("Ses-Kind");
        let msg_id = m
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned());
        assert!(
            msg_id.is_some_and(|id| id.starts_with(header(m, "Ses-Poll-Id").unwrap())),
            "Nats-Msg-Id"
        );
        assert!(header(m, "Ses-Poll-Id").is_some(), "Ses-Poll-Id");
        assert_eq!(header(m, "Ses-Instance"), Some("outage-test"));
        if kind == "upserted" || kind == "removed" {
            let body: Value = serde_json::from_slice(&m.payload).unwrap();
            assert_eq!(
                header(m, "Ses-Key"),
                Some(kv::encode_key(body["id"].as_str().unwrap()).as_str())
            );
        }
    }
    // One poll message per applied poll (those of the outage aside): the buildup's full passes
    // are there with their reports.
    for inv in Inventory::ALL {
        let polls: Vec<Value> = messages
            .iter()
            .filter(|m| m.subject.as_str() == stream::subject(inv, stream::Kind::Poll))
            .map(|m| serde_json::from_slice(&m.payload).unwrap())
            .collect();
        assert!(
            polls.iter().any(|p| p["kind"] == "full"
                && p["outcome"] == "complete"
                && p["items"].as_u64() > Some(0)),
            "{inv}: {polls:?}"
        );
    }
    // A message published again under the same id is dropped by JetStream.
    let first = messages
        .iter()
        .find(|m| header(m, "Ses-Kind") == Some("upserted"))
        .unwrap();
    let ack = js
        .publish_with_headers(
            first.subject.clone(),
            first.headers.clone().unwrap(),
            first.payload.clone(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate, "Nats-Msg-Id de-duplicates");

    let logs = daemon.logs();
    assert!(!logs.contains(TOKEN), "the NATS token is in the log");
}

/// `check-config` (or `run`) with `envs` on top of a working configuration: exit code and stderr.
async fn refused(command: &str, envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let (sim, sc) = common::empty_sim().await;
    let mut c = common::binary(&sim, &sc);
    c.arg(command);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = common::output(c).await;
    (out.status.code(), common::text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_nats_settings_stop_the_start_naming_the_key_and_never_the_secret() {
    let (code, err) = refused(
        "check-config",
        &[(
            "SES_INVENTORY__NATS__URL",
            "nats://user:Pw-s3cret@127.0.0.1:4222",
        )],
    )
    .await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nats.url"), "{err}");
    assert!(!err.contains("Pw-s3cret"), "{err}");

    let (code, err) = refused("check-config", &[("SES_INVENTORY__HA__ENABLED", "true")]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("ha.enabled") && err.contains("nats.url"),
        "{err}"
    );

    let (code, err) = refused(
        "check-config",
        &[
            ("SES_INVENTORY__NATS__URL", "nats://127.0.0.1:4222"),
            ("SES_INVENTORY__NATS__TOKEN_FILE", "/nonexistent/nats-token"),
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nats.token_file"), "{err}");

    // A credentials file that is not one: the start stops, naming it, without quoting it.
    let dir = std::env::temp_dir().join(format!("ses-nats-creds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let creds = dir.join("bad.creds");
    std::fs::write(&creds, "SUAM-not-a-seed-Qx9\n").unwrap();
    let (code, err) = refused(
        "run",
        &[
            ("SES_INVENTORY__NATS__URL", "nats://127.0.0.1:4222"),
            (
                "SES_INVENTORY__NATS__CREDENTIALS_FILE",
                creds.to_str().unwrap(),
            ),
        ],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("nats.credentials_file"), "{err}");
    assert!(!err.contains("SUAM-not-a-seed-Qx9"), "{err}");
}

/// A simulator of its own (the default data: every instance sees the same upstream), so that
/// each instance's upstream requests are counted apart.
async fn own_sim() -> (Simulator, SimConfig) {
    common::sim_with_passwords("p638", "p639").await
}

/// An instance with `ha.enabled` and a 3 s lease.
fn ha_instance(sim: &Simulator, sc: &SimConfig, nats: &NatsServer, name: &str) -> Daemon {
    Daemon::spawn(name, ha_command(sim, sc, &nats.url(), name))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_of_two_instances_polls_both_serve_the_same_data_and_the_standby_takes_over() {
    let Some(nats) = NatsServer::start(TESTS) else {
        return;
    };
    let (sim_a, sc_a) = own_sim().await;
    let (sim_b, sc_b) = own_sim().await;
    let mut a = ha_instance(&sim_a, &sc_a, &nats, "host-a");
    a.wait_role("leader", 20).await;
    a.ready().await;
    // Settled before it dies: its successor carries on with refreshes.
    a.settled().await;
    let b = ha_instance(&sim_b, &sc_b, &nats, "host-b");
    b.wait_role("standby", 20).await;
    // The standby is ready from the mirror alone, and serves what the leader serves.
    b.ready().await;
    eventually(20, "the same rows on both", || same_data(&a, &b)).await;
    let ha = b.ha().await;
    assert_eq!(ha["leader"], "host-a", "{ha}");
    assert!(ha["lease_expires"].is_string(), "{ha}");
    // Over several lease renewals only the leader polls: the standby never asked its upstream.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(a.ha().await["role"], "leader");
    assert!(!sim_a.requests().is_empty());
    assert_eq!(sim_b.requests().len(), 0, "the standby polled");
    // A standby has no pollers to ask.
    let r = http()
        .post(format!("{}/api/v1/refresh", b.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        b.metric("ses_inventory_ha_role{role=\"standby\"}").await,
        Some(1.0)
    );
    assert_eq!(
        a.metric("ses_inventory_ha_role{role=\"leader\"}").await,
        Some(1.0)
    );

    // The leader dies: the standby leads within the lease (3 s) and a few seconds.
    let _ = a.child.kill();
    let _ = a.child.wait();
    let died = std::time::Instant::now();
    b.wait_role("leader", 3 + 5).await;
    assert!(died.elapsed() < Duration::from_secs(8));
    // It carries on from the shared sync state: its first polls are refreshes, not a buildup.
    eventually(20, "the new leader's first polls", || async {
        let asked: Vec<_> = sim_b.requests();
        let inventories: std::collections::BTreeSet<_> =
            asked.iter().filter_map(|r| r.inventory).collect();
        (inventories.len() == 3)
            .then_some(())
            .ok_or(format!("{} requests", asked.len()))
    })
    .await;
    for r in sim_b.requests() {
        assert!(
            r.updated_days_ago.is_some(),
            "a full-pass request after the takeover: {r:?}"
        );
    }
    let status = b.get("/api/v1/status").await;
    assert_eq!(status["ready"], true);
    for inv in Inventory::ALL {
        assert_eq!(
            status["inventories"][inv.as_str()]["last_refresh"]["outcome"],
            "complete",
            "{status}"
        );
        assert!(status["inventories"][inv.as_str()]["items"].as_u64() > Some(0));
    }
    assert!(b.logs().contains("Leader lease acquired"));
    // Its writes (each expecting the entry's last revision) are taken: the mirror follows it,
    // and nothing was refused on the way.
    let js = nats.client().await;
    eventually(20, "the new leader's mirror", || mirror_equals_api(&js, &b)).await;
    assert!(!b.logs().contains("NATS mirror behind"), "{}", b.logs());

    // A leader that is stopped gives its lease up: no standby has to wait for it to run out.
    let (status, logs) = b.terminate().await;
    assert!(status.success(), "{status}");
    let (lease, _) = kv::read_all(&js, ses_inventory::mirror::lease::LEASE_BUCKET, false)
        .await
        .unwrap();
    assert!(lease.is_empty(), "the lease is still held");
    assert!(logs.contains("Leader lease released."));
}

/// Items awaiting a second witness (deleted upstream while a full pass ran) are in the mirror's
/// state: a standby knows them, and a leader that takes over starts with them, so no pass is
/// lost to the takeover.
#[tokio::test(flavor = "multi_thread")]
async fn items_awaiting_a_second_witness_pass_to_the_standby_and_survive_a_takeover() {
    let Some(nats) = NatsServer::start(TESTS) else {
        return;
    };
    let (sim_a, sc_a) = own_sim().await;
    let (sim_b, sc_b) = own_sim().await;
    let mut a = ha_instance(&sim_a, &sc_a, &nats, "host-a");
    a.wait_role("leader", 20).await;
    a.settled().await;
    // While the next full pass reads page 3, five elements it has read are deleted upstream:
    // its confirming listing misses them, their first witness.
    sim_a.inject(ses_inventory_sim::Fault::on(
        Inventory::Services,
        Some(3),
        ses_inventory_sim::FaultKind::Churn {
            deletes: 5,
            inserts: 0,
        },
        Some(1),
    ));
    let r = http()
        .post(format!(
            "{}/api/v1/refresh?inventory=services&full=true",
            a.api
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // (Of the five elements deleted, those the rules keep were cached: they await.)
    let awaiting = |status: &Value| status["inventories"]["services"]["unconfirmed"].as_u64();
    eventually(30, "items awaiting a witness on the leader", || async {
        let status = a.get("/api/v1/status").await;
        let done = status["inventories"]["services"]["last_full"]["reason"] == "requested";
        (done && awaiting(&status) > Some(0))
            .then_some(())
            .ok_or(format!("{status}"))
    })
    .await;
    let leader = a.get("/api/v1/status").await;
    let n = awaiting(&leader);
    // To the millisecond: the mirror's state carries milliseconds.
    let millis = |status: &Value| {
        status["inventories"]["services"]["unconfirmed_since"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
    };
    let since = millis(&leader);
    assert!(since.is_some(), "{leader}");
    assert_eq!(leader["inventories"]["services"]["converged"], false);

    let b = ha_instance(&sim_b, &sc_b, &nats, "host-b");
    b.wait_role("standby", 20).await;
    b.ready().await;
    eventually(20, "the standby knows them", || async {
        let status = b.get("/api/v1/status").await;
        (awaiting(&status) == n && millis(&status) == since)
            .then_some(())
            .ok_or(format!("{status}"))
    })
    .await;
    // The leader dies; the new one starts from the same marks (its first polls are refreshes,
    // which remove nothing by absence and leave them be).
    let _ = a.child.kill();
    let _ = a.child.wait();
    b.wait_role("leader", 3 + 5).await;
    let status = b.get("/api/v1/status").await;
    assert_eq!(awaiting(&status), n, "{status}");
    assert_eq!(
        b.metric("ses_inventory_unconfirmed_items{inventory=\"services\"}")
            .await,
        n.map(|n| n as f64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_leader_that_wakes_up_writes_nothing_after_losing_the_lease() {
    let Some(nats) = NatsServer::start(TESTS) else {
        return;
    };
    let (sim_a, sc_a) = own_sim().await;
    let (sim_b, sc_b) = own_sim().await;
    let a = ha_instance(&sim_a, &sc_a, &nats, "old-leader");
    a.wait_role("leader", 20).await;
    a.ready().await;
    a.settled().await;
    let b = ha_instance(&sim_b, &sc_b, &nats, "new-leader");
    b.wait_role("standby", 20).await;
    b.ready().await;

    // The old leader is in the middle of a full pass (slow pages) when it is paused.
    sim_a.set_items(Inventory::Services, common::services(12));
    sim_a.inject(ses_inventory_sim::Fault {
        inventory: Some(Inventory::Services.into()),
        page: None,
        refresh_only: false,
        items: false,
        skip: 0,
        kind: ses_inventory_sim::FaultKind::Delay(Duration::from_millis(1500)),
        times: None,
    });
    let r = http()
        .post(format!(
            "{}/api/v1/refresh?inventory=services&full=true",
            a.api
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.signal("-STOP");
    b.wait_role("leader", 3 + 5).await;
    let js = nats.client().await;
    let mut stream = js.get_stream(stream::STREAM).await.unwrap();
    let takeover = stream.info().await.unwrap().state.last_sequence;

    // It wakes up: its term is over, it stops polling and writes nothing.
    a.signal("-CONT");
    a.wait_role("standby", 10).await;
    let asked = sim_a.requests().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sim_a.requests().len(), asked, "the old leader still polls");
    let after: Vec<_> = stream_messages(&js)
        .await
        .into_iter()
        .filter(|m| m.info().unwrap().stream_sequence > takeover)
        .collect();
    for m in &after {
        assert_eq!(
            header(m, "Ses-Instance"),
            Some("new-leader"),
            "written after the takeover by {:?}",
            header(m, "Ses-Instance")
        );
        assert!(header(m, "Ses-Lease-Revision").is_some_and(|r| r.parse::<u64>().is_ok()));
    }
    let services = bucket(&js, Inventory::Services).await.unwrap();
    assert!(
        services.len() > 12,
        "the old leader's pass of 12 services reached the mirror"
    );
    assert_eq!(a.ha().await["leader"], "new-leader");
    assert!(a.logs().contains("Leader lease lost"), "{}", a.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_leader_with_a_warm_store_keeps_it_and_fills_an_empty_mirror() {
    let Some(nats) = NatsServer::start(TESTS) else {
        return;
    };
    let (sim, sc) = own_sim().await;
    let db = nats.dir.join("inventory.db");
    // A first run without NATS leaves a store behind.
    let mut c = common::binary(&sim, &sc);
    c.arg("run").env("SES_INVENTORY__STORE__PATH", &db);
    let first = Daemon::spawn("the daemon", c);
    first.ready().await;
    // Settled (stored with the sync state): a warm start has no settling pass left to run.
    first.settled().await;
    let (status, _) = first.terminate().await;
    assert!(status.success(), "{status}");
    let before = sim.requests().len();

    // With HA and an empty mirror: it leads, serves the store's items at once, polls a refresh
    // (not a buildup), and the mirror gets the whole inventory.
    let mut c = ha_command(&sim, &sc, &nats.url(), "warm");
    c.env("SES_INVENTORY__STORE__PATH", &db);
    let leader = Daemon::spawn("warm", c);
    leader.wait_role("leader", 20).await;
    leader.ready().await;
    let js = nats.client().await;
    eventually(20, "the mirror of the warm cache", || {
        mirror_equals_api(&js, &leader)
    })
    .await;
    eventually(20, "the leader's first polls", || async {
        let n = sim.requests()[before..]
            .iter()
            .filter_map(|r| r.inventory)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        (n == 3)
            .then_some(())
            .ok_or(format!("{n} inventories polled"))
    })
    .await;
    for r in &sim.requests()[before..] {
        assert!(
            r.updated_days_ago.is_some(),
            "a buildup after a warm start: {r:?}"
        );
    }
    for inv in Inventory::ALL {
        assert_eq!(
            leader.rows(inv).await.len(),
            sim.facts(inv).kept.len(),
            "{inv}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mirror_reaches_a_tls_server_through_the_configured_ca() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(nats) = NatsServer::start_with(TESTS, None, true) else {
        return;
    };
    let (sim, sc) = own_sim().await;
    let mut c = common::binary(&sim, &sc);
    c.arg("run")
        .env("SES_INVENTORY__NATS__URL", nats.url())
        .env("SES_INVENTORY__NATS__CA_FILE", nats.ca.as_ref().unwrap());
    let daemon = Daemon::spawn("the daemon", c);
    daemon.ready().await;
    let js = nats.client().await;
    eventually(30, "the mirror over TLS", || {
        mirror_equals_api(&js, &daemon)
    })
    .await;
    assert_eq!(
        daemon.metric("ses_inventory_nats_connected").await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_write_over_an_entry_changed_since_it_read_it_is_refused_by_the_server() {
    let Some(nats) = NatsServer::start(TESTS) else {
        return;
    };
    let (sim, sc) = own_sim().await;
    sim.set_items(Inventory::Services, common::services(5));
    let leader = ha_instance(&sim, &sc, &nats, "cas");
    leader.wait_role("leader", 20).await;
    leader.ready().await;
    leader.settled().await;
    let js = nats.client().await;
    eventually(20, "the mirror", || mirror_equals_api(&js, &leader)).await;

    // Someone else writes an entry (as a successor would) ...
    let bucket_store = js
        .get_key_value(kv::bucket(Inventory::Services))
        .await
        .unwrap();
    bucket_store
        .put(
            "SVC-0001",
            r#"{"id":"SVC-0001","name":"written by another"}"#.into(),
        )
        .await
        .unwrap();
    // ... and the leader then has a change of that item to write: the server refuses it (the
    // entry is not at the revision the leader last saw); the leader catches up from its cache.
    let mut changed = common::services(5);
    changed[0]["name"] = "Renamed upstream".into();
    sim.set_items(Inventory::Services, changed);
    let r = http()
        .post(format!("{}/api/v1/refresh?inventory=services", leader.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually(20, "the refused write", || async {
        let logs = leader.logs();
        (logs.contains("NATS mirror behind") && logs.contains("wrong last sequence"))
            .then_some(())
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;
    eventually(20, "the catch-up", || mirror_equals_api(&js, &leader)).await;
    let services = bucket(&js, Inventory::Services).await.unwrap();
    assert_eq!(services["SVC-0001"]["name"], "Renamed upstream");
}

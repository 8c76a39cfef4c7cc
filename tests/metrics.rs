//! Exact metric values after known polls, and `promtool check metrics` on the same scrape. The
//! registry is process-global, so this binary holds one test and one daemon: every value below
//! comes from it alone.

mod common;

use common::*;
use prometheus_parse::{Sample, Scrape, Value};
use ses_inventory::Inventory::{Carriers, Resources, Services};
use ses_inventory::serve::server::Bound;
use ses_inventory::sync::daemon::Daemon;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Fault, FaultKind};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {metric} with {labels:?}"))
}

fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, metric, labels).value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{metric}: unexpected {other:?}"),
    }
}

/// Pipes a scrape through Prometheus' own linter: it must exit 0 and report no problem
/// (`promtool` comes with Debian's `prometheus` package; `.ci/run` installs it).
/// Without promtool the lint is skipped with a note, except in CI (`CI` set), where it must run:
/// a newcomer's `cargo test` needs no Prometheus installed.
fn promtool_check_metrics(text: &str) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut promtool = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "note: promtool not run ({e}); `apt-get install prometheus` to lint the scrape"
            );
            return;
        }
        Err(e) => panic!("cannot run promtool ({e}): install it with `apt-get install prometheus`"),
    };
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics ({}):\n{report}\nscrape:\n{text}",
        out.status
    );
}

#[tokio::test]
async fn metrics_count_what_the_polls_did() {
    let (sim, sc) = empty_sim().await;
    // Services: 45 items = pages of 40 and 5; page 2 answers 503 once (one retry).
    sim.set_items(Services, services(45));
    sim.inject(Fault {
        inventory: Some(Services.into()),
        page: Some(2),
        refresh_only: false,
        items: false,
        skip: 0,
        kind: FaultKind::status(503),
        times: Some(1),
    });
    // Carriers: page 1 keeps answering 504: skipped after 3 attempts, the pass is incomplete.
    sim.set_items(Carriers, vec![carrier("C-1")]);
    sim.inject(Fault {
        inventory: Some(Carriers.into()),
        page: Some(1),
        refresh_only: false,
        items: false,
        skip: 0,
        kind: FaultKind::status(504),
        times: None,
    });
    // Resources: one kept, one of an excluded type, one without a key.
    sim.set_items(
        Resources,
        vec![
            resource("R-1", "Antenna"),
            resource("R-2", "Card"),
            serde_json::json!({"name": "no id"}),
        ],
    );
    let mut cfg = config(&sim, &sc);
    cfg.api.listen = "127.0.0.1:0".into();
    // Exact counts of requests: one page at a time (with pages in flight, pages requested past
    // the end of a listing are counted as requests too, as many as were answered before they
    // were abandoned).
    cfg.poll.pages_in_flight = 1;
    let bound = Bound::bind(&cfg.api).await.unwrap();
    let daemon = Daemon::start(Arc::new(cfg), Clock::System).unwrap();
    let server = bound.serve(daemon.cache().clone(), daemon.control());
    let cache = daemon.cache().clone();
    let mut polls = cache.watch_polls();
    // Services and resources: the buildup and, at once, its settling pass (then nothing for an
    // hour); carriers: the incomplete buildup (then nothing for at least 15 s of backoff).
    tokio::time::timeout(Duration::from_secs(30), async {
        while *polls.borrow_and_update() < 5 {
            polls.changed().await.unwrap();
        }
    })
    .await
    .expect("five polls finish");
    assert!(cache.status(Services).settled && cache.status(Resources).settled);
    assert!(!cache.status(Carriers).settled);

    let url = format!("http://{}/metrics", server.addr().unwrap());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let text = http.get(url).send().await.unwrap().text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();

    let inv = |name| ("inventory", name);
    assert_eq!(
        value(&scrape, "ses_inventory_items", &[inv("services")]),
        45.0
    );
    assert_eq!(
        value(&scrape, "ses_inventory_items", &[inv("resources")]),
        1.0
    );
    assert_eq!(
        value(&scrape, "ses_inventory_ready", &[inv("services")]),
        1.0
    );
    assert_eq!(
        value(&scrape, "ses_inventory_ready", &[inv("carriers")]),
        0.0
    );

    let polls = |i, outcome| {
        value(
            &scrape,
            "ses_inventory_polls_total",
            &[inv(i), ("kind", "full"), ("outcome", outcome)],
        )
    };
    // The buildup and its settling pass.
    assert_eq!(polls("services", "complete"), 2.0);
    assert_eq!(polls("carriers", "incomplete"), 1.0);
    assert_eq!(polls("carriers", "complete"), 0.0);
    assert_eq!(polls("resources", "complete"), 2.0);
    // Converged: settled, nothing awaiting a second witness. Carriers never had a complete pass.
    assert_eq!(
        value(&scrape, "ses_inventory_converged", &[inv("services")]),
        1.0
    );
    assert_eq!(
        value(&scrape, "ses_inventory_converged", &[inv("carriers")]),
        0.0
    );
    assert_eq!(
        value(
            &scrape,
            "ses_inventory_unconfirmed_items",
            &[inv("services")]
        ),
        0.0
    );
    // One settling pass each for services and resources; none yet for carriers.
    let settling = |i| value(&scrape, "ses_inventory_settling_passes_total", &[inv(i)]);
    assert_eq!(settling("services"), 1.0);
    assert_eq!(settling("carriers"), 0.0);

    let pages = |i, outcome| {
        value(
            &scrape,
            "ses_inventory_pages_total",
            &[inv(i), ("outcome", outcome)],
        )
    };
    // Two pages per pass.
    assert_eq!(pages("services", "fetched"), 4.0);
    assert_eq!(pages("services", "cut"), 0.0);
    assert_eq!(pages("carriers", "skipped"), 1.0);
    assert_eq!(
        pages("carriers", "fetched"),
        1.0,
        "page 2, empty, ends the pass"
    );
    assert_eq!(pages("resources", "failed"), 0.0);
    // One retry for services' 503, two for carriers' 504 (three attempts).
    assert_eq!(
        value(
            &scrape,
            "ses_inventory_page_retries_total",
            &[inv("services")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "ses_inventory_page_retries_total",
            &[inv("carriers")]
        ),
        2.0
    );
    let skipped = |reason| {
        value(
            &scrape,
            "ses_inventory_skipped_items_total",
            &[inv("resources"), ("reason", reason)],
        )
    };
    // Once per pass.
    assert_eq!((skipped("not_kept"), skipped("no_key")), (2.0, 2.0));
    assert_eq!(
        value(
            &scrape,
            "ses_inventory_item_changes_total",
            &[inv("services"), ("change", "added")]
        ),
        45.0
    );

    // One observation per attempt, by status.
    let count = |i, code| {
        value(
            &scrape,
            "ses_inventory_upstream_request_duration_seconds_count",
            &[inv(i), ("status", code)],
        )
    };
    assert_eq!(count("services", "200"), 4.0);
    assert_eq!(count("services", "503"), 1.0);
    assert_eq!(count("carriers", "504"), 3.0);
    let hist = find(
        &scrape,
        "ses_inventory_upstream_request_duration_seconds",
        &[inv("carriers"), ("status", "504")],
    );
    match &hist.value {
        Value::Histogram(buckets) => {
            let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
            assert_eq!(inf.count, 3.0);
            assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
        }
        other => panic!("not a histogram: {other:?}"),
    }

    // Requests in flight per API, and the adaptive limit: the 504s and the 503 to TMF 638
    // halved it (at least once; clean pages since then are too few to win much back), TMF 639
    // only ever had clean pages.
    let api = |a| ("api", a);
    assert_eq!(
        value(
            &scrape,
            "ses_inventory_upstream_in_flight",
            &[api("tmf638")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &scrape,
            "ses_inventory_upstream_in_flight",
            &[api("tmf639")]
        ),
        0.0
    );
    let limit = value(
        &scrape,
        "ses_inventory_upstream_in_flight_limit",
        &[api("tmf638")],
    );
    assert!((1.0..=4.0).contains(&limit), "{limit}");
    assert_eq!(
        value(
            &scrape,
            "ses_inventory_upstream_in_flight_limit",
            &[api("tmf639")]
        ),
        8.0
    );

    // Last success and full-pass duration: only for inventories with a complete pass.
    let now = chrono::Utc::now().timestamp() as f64;
    let last = value(
        &scrape,
        "ses_inventory_last_success_timestamp_seconds",
        &[inv("services")],
    );
    assert!(last > now - 60.0 && last <= now + 1.0, "{last} vs {now}");
    assert!(
        !scrape.samples.iter().any(
            |s| s.metric == "ses_inventory_last_success_timestamp_seconds"
                && s.labels.get("inventory") == Some("carriers")
        ),
        "carriers never succeeded"
    );
    let full = value(
        &scrape,
        "ses_inventory_full_pass_duration_seconds",
        &[inv("resources")],
    );
    assert!((0.0..30.0).contains(&full), "{full}");
    assert_eq!(
        value(
            &scrape,
            "ses_inventory_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Every family, histograms and timestamps included, as Prometheus' linter sees it.
    promtool_check_metrics(&text);

    server.shutdown().await;
    daemon.shutdown().await;
    sim.shutdown().await;
}

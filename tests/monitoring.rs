//! The monitoring contracts: the alert rules (`deploy/prometheus/alerts.yml`, with their unit
//! tests `alerts.test.yml`) and the Grafana dashboard (`deploy/grafana/ses-inventory.json`).
//!
//! - `promtool check rules` and `promtool test rules` must pass; every alert has a unit test and a
//!   runbook section in docs/operations.md whose anchor its `runbook_url` names.
//! - A real Prometheus (Debian's `prometheus`, on a free loopback port, scraping every second)
//!   scrapes a real daemon (in-process, against the simulator, with a store file) and loads the
//!   rule file; then every dashboard expression and every alert expression is evaluated through
//!   its HTTP API and must return data (see [`check_live`] for what exactly is required).
//!
//! Without `promtool` or `prometheus` the tests are skipped with a note, except in CI (`CI`
//! set), where they must run. The metrics registry is process-global, so this binary starts one
//! daemon, in one test.

mod common;

use common::*;
use serde_json::Value;
use ses_inventory::Inventory::{Carriers, Resources, Services};
use ses_inventory::cache::Cache;
use ses_inventory::serve::server::Bound;
use ses_inventory::store::Store;
use ses_inventory::sync::daemon::Daemon;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{Fault, FaultKind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ALERTS: &str = "deploy/prometheus/alerts.yml";
const ALERT_TESTS: &str = "deploy/prometheus/alerts.test.yml";
const DASHBOARD: &str = "deploy/grafana/ses-inventory.json";
const RUNBOOK: &str = "docs/operations.md";
/// The Prometheus job the generated configuration scrapes the daemon as.
const JOB: &str = "ses-inventory";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Whether `tool` (from Debian's `prometheus` package) can be run. Missing: a note and `false`,
/// or a failure when `CI` is set (`.ci/run` installs the package).
fn have(tool: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "note: {tool} not run ({e}); `apt-get install prometheus` to check the alerts \
                 and the dashboard"
            );
            false
        }
        Err(e) => panic!("cannot run {tool} ({e}): install it with `apt-get install prometheus`"),
    }
}

/// Runs `promtool args`, prints what it said, and requires exit 0.
fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("$ promtool {}\n{said}", args.join(" "));
    assert!(
        out.status.success(),
        "promtool {} ({}):\n{said}",
        args.join(" "),
        out.status
    );
}

/// One rule of alerts.yml, as far as these tests read it.
#[derive(Debug)]
struct Alert {
    name: String,
    expr: String,
    /// Label names its annotations use (`$labels.<name>`).
    labels: Vec<String>,
    runbook_url: String,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The alerts of alerts.yml by a line scan: `- alert:`, `expr:` (on its line, or a `>-` block of
/// the lines indented below it), `runbook_url:` and every `$labels.` of the rule's lines. The
/// file is ours and kept to this shape; the scan fails loudly on anything else (a quoted
/// expression, a rule without an expression).
fn alerts(text: &str) -> Vec<Alert> {
    let lines: Vec<&str> = text.lines().collect();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        i += 1;
        if let Some(name) = t.strip_prefix("- alert:") {
            alerts.push(Alert {
                name: name.trim().to_owned(),
                expr: String::new(),
                labels: Vec::new(),
                runbook_url: String::new(),
            });
            continue;
        }
        let Some(alert) = alerts.last_mut() else {
            continue;
        };
        if let Some(rest) = t.strip_prefix("expr:") {
            let rest = rest.trim();
            if rest.starts_with('>') || rest.starts_with('|') {
                let mut parts = Vec::new();
                while i < lines.len()
                    && (lines[i].trim().is_empty() || indent(lines[i]) > indent(line))
                {
                    parts.push(lines[i].trim());
                    i += 1;
                }
                alert.expr = parts.join(" ").trim().to_owned();
            } else {
                assert!(
                    !rest.starts_with(['"', '\'']),
                    "{}: quoted expr; write it bare or as a >- block",
                    alert.name
                );
                alert.expr = rest.to_owned();
            }
        } else if let Some(rest) = t.strip_prefix("runbook_url:") {
            alert.runbook_url = rest.trim().trim_matches('"').to_owned();
        }
        for (at, _) in t.match_indices("$labels.") {
            let name: String = t[at + "$labels.".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !alert.labels.contains(&name) {
                alert.labels.push(name);
            }
        }
    }
    for a in &alerts {
        assert!(!a.expr.is_empty(), "{}: no expr found", a.name);
    }
    alerts
}

/// GitHub's anchor of a Markdown heading: lower case, spaces to `-`, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    if !have("promtool") {
        return;
    }
    promtool(&["check", "rules", ALERTS]);
    promtool(&["test", "rules", ALERT_TESTS]);
}

#[test]
fn every_alert_has_a_unit_test_and_a_runbook_section() {
    let alerts = alerts(&read(ALERTS));
    assert!(alerts.len() >= 8, "{alerts:#?}");
    let tests = read(ALERT_TESTS);
    let runbook = read(RUNBOOK);
    let anchors: Vec<String> = runbook
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    for a in &alerts {
        // promtool runs only the tests that exist: each alert must have one that expects it.
        assert!(
            tests.contains(&format!("alertname: {}\n", a.name)),
            "{}: no test in {ALERT_TESTS}",
            a.name
        );
        let (path, fragment) = a
            .runbook_url
            .split_once('#')
            .unwrap_or_else(|| panic!("{}: runbook_url without an anchor", a.name));
        assert_eq!(path, RUNBOOK, "{}", a.name);
        assert_eq!(fragment, a.name.to_lowercase(), "{}", a.name);
        assert!(
            anchors.iter().any(|x| x == fragment),
            "{}: no section #{fragment} in {RUNBOOK}",
            a.name
        );
    }
}

/// The expression with every comparison outside label matchers made a `bool` comparison: it
/// then returns every series it compares (0 or 1) instead of only those past the threshold.
fn with_bool(expr: &str) -> String {
    assert!(!expr.contains(" bool "), "{expr}: already uses bool");
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::new();
    let (mut braces, mut quote) = (0, None);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => braces += 1,
            '}' => braces -= 1,
            _ => {}
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = if braces > 0 {
            None
        } else if ["==", "!=", ">=", "<="].contains(&two.as_str()) {
            Some(two)
        } else if c == '>' || c == '<' {
            Some(c.to_string())
        } else {
            None
        };
        if let Some(op) = op {
            i += op.len();
            out.push_str(&op);
            out.push_str(" bool");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every vector selector of the daemon's families in `expr` (`ses_inventory_…` and `process_…`),
/// with its label matchers and without a range.
fn selectors(expr: &str) -> Vec<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = ["ses_inventory_", "process_"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        let before = rest[..at].chars().next_back();
        let name_len = rest[at..].find(|c| !ident(c)).unwrap_or(rest.len() - at);
        let mut end = at + name_len;
        if rest[end..].starts_with('{') {
            end += rest[end..].find('}').expect("a closing brace") + 1;
        }
        if !before.is_some_and(ident) {
            found.push(rest[at..end].to_owned());
        }
        rest = &rest[end..];
    }
    found
}

/// Label names a legend names (`{{inventory}} {{outcome}}`).
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}"))
        .map(|(name, _)| name.trim().to_owned())
        .collect()
}

/// A kill-on-drop child process (a panicking test leaves no Prometheus behind).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("ses-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts Prometheus on a free loopback port, scraping `target` every second and evaluating the
/// alert rules; returns it with its base URL once `/-/ready` answers. A port taken between
/// choosing and binding it is tried again with another (three times at most).
async fn prometheus(http: &reqwest::Client, dir: &Path, target: &str) -> (Killed, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {alerts}\n\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [\"{target}\"]\n",
            alerts = repo(ALERTS).display(),
        ),
    )
    .unwrap();
    let log_path = dir.join("prometheus.log");
    for attempt in 1..=3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join(format!("data-{attempt}")).display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let mut child = Killed(child);
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.0.try_wait() {
                eprintln!(
                    "prometheus exited ({status}) on port {port}:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
                break;
            }
            let ready = http.get(format!("{base}/-/ready")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return (child, base);
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("prometheus did not start in three attempts");
}

/// `/api/v1/query` of `q` now: the result vector (a failed query panics with Prometheus' error).
async fn query(http: &reqwest::Client, base: &str, q: &str) -> Vec<Value> {
    let body: Value = http
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{q}: {body}");
    assert_eq!(body["data"]["resultType"], "vector", "{q}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits (at most `secs` seconds) until `q` returns data.
async fn until_data(http: &reqwest::Client, base: &str, q: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while query(http, base, q).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no data for `{q}` within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One expression checked against the live Prometheus. What is required:
/// - every selector of the daemon's families in it returns data on its own: a misspelt metric,
///   label name or label value in a matcher finds nothing;
/// - the expression returns data, and every series carries (non-empty) each label its
///   legend or annotations name: a misspelt label in `by (…)` drops it.
///
/// Not caught: a misspelt label in `on (…)`/`ignoring (…)` of a set operation between two
/// results (both sides lack it alike). Failures are collected in `failures`; the lines printed
/// say what each expression returned.
async fn check_live(
    http: &reqwest::Client,
    base: &str,
    what: &str,
    expr: &str,
    labels: &[String],
    failures: &mut Vec<String>,
) {
    for selector in selectors(expr) {
        if query(http, base, &selector).await.is_empty() {
            failures.push(format!(
                "{what}: `{selector}` returns nothing (in `{expr}`)"
            ));
        }
    }
    let result = query(http, base, expr).await;
    let first = result
        .first()
        .map(|s| format!("{} = {}", s["metric"], s["value"][1]))
        .unwrap_or_default();
    println!("{what}: {} series; {first}\n    {expr}", result.len());
    if result.is_empty() {
        failures.push(format!("{what}: no data for `{expr}`"));
    }
    for series in &result {
        for label in labels {
            if series["metric"][label].as_str().unwrap_or("").is_empty() {
                failures.push(format!(
                    "{what}: a series without `{label}`: {} (from `{expr}`)",
                    series["metric"]
                ));
            }
        }
    }
}

/// The dashboard's expressions, each with what it is and the labels its legend names: every
/// panel target, and the selector of every `label_values(…)` variable (with its label).
/// Grafana's variables are replaced as Grafana would for one instance and one inventory:
/// `$instance` by the scraped target, `$inventory` by `services` (a real value, so that a
/// misspelt `inventory` matcher finds nothing, as `.*` would not), `$__rate_interval` by 30s.
fn dashboard_queries(dashboard: &Value, instance: &str) -> Vec<(String, String, Vec<String>)> {
    let fill = |expr: &str| {
        let filled = expr
            .replace("${instance}", instance)
            .replace("$instance", instance)
            .replace("${inventory}", "services")
            .replace("$inventory", "services")
            .replace("$__rate_interval", "30s")
            .replace("$__interval", "5s")
            .replace("$__range", "1m");
        assert!(!filled.contains('$'), "a variable left in `{filled}`");
        filled
    };
    let mut out = Vec::new();
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(definition) = var["definition"].as_str() else {
            continue;
        };
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: {definition}", var["name"]));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        out.push((
            format!("variable {}", var["name"]),
            fill(selector.trim()),
            vec![label.trim().to_owned()],
        ));
    }
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                format!(
                    "panel \"{}\" {}",
                    panel["title"].as_str().unwrap(),
                    target["refId"]
                ),
                fill(target["expr"].as_str().unwrap()),
                legend_labels(target["legendFormat"].as_str().unwrap_or("")),
            ));
        }
    }
    out
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_on_a_prometheus_variable() {
    let d: Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36, "schemaVersion");
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name);
    let ds = var("datasource").expect("a datasource variable");
    assert_eq!(
        (&ds["type"], &ds["query"]),
        (&"datasource".into(), &"prometheus".into())
    );
    assert!(var("inventory").is_some() && var("instance").is_some());
    let mut ids = Vec::new();
    for panel in d["panels"].as_array().unwrap() {
        ids.push(panel["id"].as_u64().unwrap());
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for t in targets {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "{}",
                panel["title"]
            );
        }
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "panel ids are unique");
}

#[test]
fn the_scans_read_what_they_should() {
    assert_eq!(
        with_bool(r#"a{role!="off"} > 3 and on (job) b{x=~"a>b"} == 0"#),
        r#"a{role!="off"} > bool 3 and on (job) b{x=~"a>b"} == bool 0"#
    );
    assert_eq!(with_bool("time() - x >= 7200"), "time() - x >= bool 7200");
    assert_eq!(
        selectors(
            r#"sum by (le) (rate(ses_inventory_a_bucket{i=~"s"}[5m])) / process_b + my_ses_inventory_c"#
        ),
        [r#"ses_inventory_a_bucket{i=~"s"}"#, "process_b"]
    );
    assert_eq!(
        legend_labels("{{inventory}} p99 {{ status }}"),
        ["inventory", "status"]
    );
    assert_eq!(anchor(" SesInventoryStale"), "sesinventorystale");
    assert_eq!(
        anchor(" What CI proves, and what it cannot"),
        "what-ci-proves-and-what-it-cannot"
    );
    let parsed = alerts(
        "  - alert: A\n    expr: >-\n      x > 1\n      and y\n    annotations:\n      summary: \"{{ $labels.inventory }} {{ $labels.job }}\"\n      runbook_url: \"docs/operations.md#a\"\n  - alert: B\n    expr: z == 0\n",
    );
    assert_eq!(parsed.len(), 2);
    assert_eq!(
        (parsed[0].expr.as_str(), parsed[1].expr.as_str()),
        ("x > 1 and y", "z == 0")
    );
    assert_eq!(parsed[0].labels, ["inventory", "job"]);
    assert_eq!(parsed[0].runbook_url, "docs/operations.md#a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_expression_returns_data_from_a_live_daemon() {
    let started = Instant::now();
    if !have("prometheus") {
        return;
    }
    let dir = TempDir::new("monitoring");
    let (sim, sc) = empty_sim().await;
    // Services: three pages of 40, 40 and 20; a few carriers and resources.
    sim.set_items(Services, services(100));
    sim.set_items(Carriers, vec![carrier("C-1"), carrier("C-2")]);
    sim.set_items(
        Resources,
        vec![resource("R-1", "Antenna"), resource("R-2", "Dish")],
    );
    let mut cfg = config(&sim, &sc);
    cfg.api.listen = "127.0.0.1:0".into();
    // A store file, so that store writes are counted.
    let db = dir.0.join("inventory.db");
    cfg.store.path = db.display().to_string();
    let cache = Cache::new();
    let (mut store, _) = Store::open(&db).unwrap();
    store.load(&cache).unwrap();
    let (journal, writer) = store.spawn_writer(cache.clone());
    let bound = Bound::bind(&cfg.api).await.unwrap();
    let daemon = Daemon::start_with(Arc::new(cfg), Clock::System, cache, Some(journal)).unwrap();
    let server = bound.serve(daemon.cache().clone(), daemon.control());
    let target = server.addr().unwrap().to_string();
    let cache = daemon.cache().clone();
    for inv in [Services, Carriers, Resources] {
        settled(&cache, inv, 60).await;
    }

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (_prometheus, prom) = prometheus(&http, &dir.0, &target).await;
    let up = format!("up{{job=\"{JOB}\"}} == 1");
    until_data(&http, &prom, &up, 60).await;
    until_data(
        &http,
        &prom,
        &format!("count_over_time(up{{job=\"{JOB}\"}}[1m]) >= 3"),
        60,
    )
    .await;

    // Items awaiting a second witness (ses_inventory_unconfirmed_oldest_timestamp_seconds
    // exists only then): five services go upstream, and the confirming listing of the next full
    // pass is cut short at its page 2, so it witnesses nothing. The pass also puts upstream
    // requests, pages and a store write into the last 30 s of the rates.
    let gone: Vec<_> = sim
        .items(Services)
        .into_iter()
        .filter(|s| {
            !["SVC-0001", "SVC-0002", "SVC-0003", "SVC-0004", "SVC-0005"]
                .contains(&s["externalId"].as_str().unwrap())
        })
        .collect();
    sim.set_items(Services, gone);
    sim.inject(Fault {
        inventory: Some(Services.into()),
        page: Some(2),
        refresh_only: false,
        items: false,
        skip: 1,
        kind: FaultKind::Short(10),
        times: Some(1),
    });
    let api = format!("http://{target}");
    let asked = http
        .post(format!("{api}/api/v1/refresh?inventory=services&full=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 202, "{}", asked.text().await.unwrap());
    eventually(60, "five services awaiting a second witness", || {
        cache.status(Services).unconfirmed == 5
    })
    .await;
    // Three scrapes of them.
    until_data(
        &http,
        &prom,
        "count_over_time(ses_inventory_unconfirmed_oldest_timestamp_seconds{inventory=\"services\"}[1m]) >= 3",
        60,
    )
    .await;

    let mut failures = Vec::new();
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let queries = dashboard_queries(&dashboard, &target);
    for (what, expr, labels) in &queries {
        check_live(&http, &prom, what, expr, labels, &mut failures).await;
    }
    // Alert expressions return nothing while they do not fire: each is evaluated with its
    // comparisons made `bool` (every compared series, 0 or 1), which must return data carrying
    // the labels the annotations use; each selector must return data on its own.
    let alerts = alerts(&read(ALERTS));
    for a in &alerts {
        let what = format!("alert {}", a.name);
        check_live(
            &http,
            &prom,
            &what,
            &with_bool(&a.expr),
            &a.labels,
            &mut failures,
        )
        .await;
    }

    // Prometheus loaded the file and evaluates every rule without an error...
    let rules: Value = http
        .get(format!("{prom}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["name"] == "ses-inventory")
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), alerts.len(), "{rules}");
    for rule in loaded {
        if rule["health"] != "ok" {
            failures.push(format!("rule {}: {}", rule["name"], rule));
        }
    }
    // ...and none fires or is pending against a healthy daemon without HA (items awaiting a
    // witness for seconds, not two days).
    let alerting = query(&http, &prom, "ALERTS").await;
    if !alerting.is_empty() {
        failures.push(format!("alerts against a healthy daemon: {alerting:?}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} expressions failed:\n{}",
        failures.len(),
        queries.len() + alerts.len(),
        failures.join("\n")
    );
    println!(
        "{} dashboard and {} alert expressions return data ({:.1} s)",
        queries.len(),
        alerts.len(),
        started.elapsed().as_secs_f64()
    );

    server.shutdown().await;
    daemon.shutdown().await;
    writer.finish().await;
    sim.shutdown().await;
}

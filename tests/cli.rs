//! The binary as operators use it: configuration from the environment, `sync-once`,
//! `check-config`, logs without credentials, and a clean stop on SIGTERM.

mod common;

use common::{output, sim_with_passwords, text};

use base64::Engine;
use ses_inventory::Inventory::{Carriers, Resources, Services};
use ses_inventory_sim::{Fault, FaultKind, SimConfig, Simulator};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PASSWORD_638: &str = "pw-638-Zq8!";
const PASSWORD_639: &str = "pw-639-Xk3?";

/// The binary with only environment configuration pointed at `sim` (no file anywhere).
fn command(sim: &Simulator, sc: &SimConfig) -> Command {
    common::binary(sim, sc)
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_once_prints_a_summary_per_inventory() {
    let (sim, sc) = sim_with_passwords(PASSWORD_638, PASSWORD_639).await;
    let out = output({
        let mut c = command(&sim, &sc);
        c.arg("sync-once");
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The default simulator holds 200 services, 80 carriers and 400 resources; pages hold 40,
    // so each listing ends with an empty page: 5 + 1, 2 + 1 and 10 + 1 pages.
    for (inv, received, pages) in [(Services, 200, 6), (Carriers, 80, 3), (Resources, 400, 11)] {
        let s = &summary[inv.as_str()];
        let facts = sim.facts(inv);
        assert_eq!(s["kept"], facts.kept.len(), "{inv}: {s}");
        assert_eq!(s["duplicates"], facts.duplicates, "{inv}");
        assert_eq!(s["skipped_items"], facts.empty_keys, "{inv}");
        assert_eq!(s["not_kept"], facts.not_kept, "{inv}");
        assert_eq!(s["received"], received, "{inv}");
        assert_eq!(s["outcome"], "complete");
        assert_eq!(s["pages"], pages, "{inv}");
        assert_eq!(s["skipped_pages"], serde_json::json!([]));
        assert_eq!(s["error"], serde_json::Value::Null, "{inv}");
    }
    assert_eq!(
        sim.facts(Carriers).not_kept,
        0,
        "carriers keep every status"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_once_fails_when_an_inventory_does_and_logs_no_credentials() {
    let (sim, mut sc) = sim_with_passwords(PASSWORD_638, PASSWORD_639).await;
    sim.inject(Fault {
        inventory: Some(Carriers.into()),
        page: Some(2),
        refresh_only: false,
        items: false,
        skip: 0,
        kind: FaultKind::Status {
            code: 504,
            retry_after: None,
        },
        times: None,
    });
    // Resources: wrong password on purpose; it must not show up anywhere either.
    sc.tmf639_password = "not-the-right-one-77".into();
    let out = output({
        let mut c = command(&sim, &sc);
        c.arg("sync-once").env("RUST_LOG", "debug");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["services"]["outcome"], "complete");
    assert_eq!(summary["services"]["error"], serde_json::Value::Null);
    let carriers = &summary["carriers"];
    assert_eq!(carriers["outcome"], "incomplete");
    assert_eq!(carriers["skipped_pages"], serde_json::json!([2]));
    // Pages 1 (40 items) and 3 (empty: the end) arrived; page 2 was skipped.
    assert_eq!(
        (&carriers["pages"], &carriers["received"]),
        (&2.into(), &40.into())
    );
    assert_eq!(carriers["error"], "skipped pages [2] after HTTP 504");
    let resources = &summary["resources"];
    assert_eq!(resources["outcome"], "failed");
    assert_eq!(
        (
            &resources["pages"],
            &resources["received"],
            &resources["kept"]
        ),
        (&0.into(), &0.into(), &0.into())
    );
    let error = resources["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "page 1 failed after 1 attempt(s): tmf639 rejected the credentials (HTTP 401)"
        ),
        "{error}"
    );

    let logs = text(&out.stderr);
    assert!(
        logs.contains("rejected the credentials") && logs.contains("tmf639.password"),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("\"page\":2") && l.contains("skipped")),
        "the log names the skipped page"
    );
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(
            v.get("level").is_some() && v.get("message").is_some(),
            "{line}"
        );
    }
    let b64 =
        |u: &str, p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
    for secret in [
        PASSWORD_638.to_string(),
        "not-the-right-one-77".to_string(),
        b64(&sc.tmf638_user, PASSWORD_638),
        b64(&sc.tmf639_user, "not-the-right-one-77"),
    ] {
        assert!(!logs.contains(&secret), "credential in logs");
        assert!(!text(&out.stdout).contains(&secret), "credential in output");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_reads_the_environment_and_redacts() {
    let (sim, sc) = sim_with_passwords(PASSWORD_638, PASSWORD_639).await;
    let out = output({
        let mut c = command(&sim, &sc);
        c.arg("check-config")
            .env("SES_INVENTORY__POLL__CACHE_UPDATE_FREQUENCY", "7200");
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("cache_update_frequency = 7200"), "{shown}");
    assert!(shown.contains(&sim.tmf638_url()));
    assert!(!shown.contains(PASSWORD_638) && !shown.contains(PASSWORD_639));
    assert!(shown.contains("password = \"***\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_setting_stops_before_any_request() {
    let (sim, sc) = sim_with_passwords(PASSWORD_638, PASSWORD_639).await;
    for (key, value, named) in [
        (
            "SES_INVENTORY__POLL__CACHE_UPDATE_FREQUENCY",
            "60",
            "poll.cache_update_frequency",
        ),
        (
            "SES_INVENTORY__TMF638__ENDPOINT",
            "not-a-url",
            "tmf638.endpoint",
        ),
        ("SES_INVENTORY__POLL__NO_SUCH_KEY", "1", "no_such_key"),
    ] {
        let out = output({
            let mut c = command(&sim, &sc);
            c.arg("run").env(key, value);
            c
        })
        .await;
        assert_eq!(out.status.code(), Some(2), "{key}");
        let err = text(&out.stderr);
        assert!(err.contains(named), "{key}: {err}");
        assert_eq!(err.lines().count(), 1, "one clear message: {err}");
    }
    let missing = output({
        let mut c = command(&sim, &sc);
        c.args(["--config", "/nonexistent/ses.toml", "run"]);
        c
    })
    .await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/ses.toml"));

    // A TOML syntax error: one line naming the file, the line and the column.
    let dir = std::env::temp_dir().join(format!("sesinv-cli-toml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(
        &file,
        "[poll]\ncache_update_frequency = 7200\nstatus_interval = = 5\n",
    )
    .unwrap();
    let broken = output({
        let mut c = command(&sim, &sc);
        c.arg("--config").arg(&file).arg("run");
        c
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(broken.status.code(), Some(2));
    let err = text(&broken.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("{}: line 3, column 19: ", file.display())),
        "{err}"
    );
    assert!(
        sim.requests().is_empty(),
        "no request before the configuration is valid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_stops_cleanly_on_sigterm() {
    let (sim, sc) = sim_with_passwords(PASSWORD_638, PASSWORD_639).await;
    let mut c = command(&sim, &sc);
    c.arg("run").stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    // Forwards every line until stderr closes (the process exited), then ends.
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let pid = child.id().to_string();
    tokio::task::spawn_blocking(move || {
        let mut ready = 0;
        while ready < 3 {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("daemon logs until ready");
            if line.contains("Inventory ready.") {
                ready += 1;
            }
        }
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Every line up to the last: the reader has forwarded all of them once it ended.
        reader.join().unwrap();
        let rest: Vec<String> = rx.try_iter().collect();
        assert!(
            rest.iter()
                .any(|l| l.contains("Shutting down.") && l.contains("SIGTERM")),
            "{rest:?}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_once_into_a_reader_that_went_away_is_not_a_panic() {
    // `ses-inventory sync-once | head -0`: the pipe's reader is gone before the summary is
    // written. The passes are done; the exit status says how they went, and nothing panics.
    let (sim, sc) = sim_with_passwords(PASSWORD_638, PASSWORD_639).await;
    let mut c = command(&sim, &sc);
    c.arg("sync-once")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

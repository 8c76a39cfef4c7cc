//! The binary run the way the systemd unit runs it: configuration from the environment,
//! passwords from `$CREDENTIALS_DIRECTORY`, a notify socket and a watchdog; and the
//! `healthcheck` subcommand's exit codes.

mod common;

use ses_inventory::Inventory;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::net::UnixDatagram;
use tokio::time::{Instant, timeout_at};

const BIN: &str = env!("CARGO_BIN_EXE_ses-inventory");
const PASSWORD_638: &str = "cred-638-Vb7#";
const PASSWORD_639: &str = "cred-639-Lm2%";

/// A directory under the system temp dir, removed on drop.
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

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary with a clean environment: no configuration file, no variable but `PATH`.
fn bare_command() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SES_INVENTORY_CONFIG", "")
        .stdin(Stdio::null());
    c
}

/// Messages received on the notify socket until `done` holds for everything received so far,
/// or the deadline passes (then the test fails, showing what arrived).
async fn receive_until(
    socket: &UnixDatagram,
    got: &mut Vec<String>,
    secs: u64,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = vec![0u8; 4096];
    while !done(got) {
        match timeout_at(deadline, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Ok(Err(e)) => panic!("notify socket: {e}"),
            Err(_) => panic!("timed out waiting for {what}; received: {got:#?}"),
        }
    }
}

fn lines(got: &[String]) -> impl Iterator<Item = &str> {
    got.iter().flat_map(|m| m.lines())
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_as_the_systemd_unit_would_ready_watchdog_and_clean_stop() {
    let (sim, sc) = common::sim_with_passwords(PASSWORD_638, PASSWORD_639).await;
    // A slow first pass of resources (10 pages, 300 ms each): the start must be extended.
    sim.inject(ses_inventory_sim::Fault {
        inventory: Some(Inventory::Resources.into()),
        page: None,
        refresh_only: false,
        items: false,
        skip: 0,
        kind: ses_inventory_sim::FaultKind::Delay(Duration::from_millis(300)),
        times: None,
    });
    let dir = TempDir::new("ops");
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    // As systemd's LoadCredential= leaves them: one file per credential, a trailing newline.
    std::fs::write(
        credentials.join("tmf638-password"),
        format!("{PASSWORD_638}\n"),
    )
    .unwrap();
    std::fs::write(
        credentials.join("tmf639-password"),
        format!("{PASSWORD_639}\n"),
    )
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();

    let mut c = bare_command();
    c.arg("run")
        .env("SES_INVENTORY__TMF638__ENDPOINT", sim.tmf638_url())
        .env("SES_INVENTORY__TMF638__USERNAME", &sc.tmf638_user)
        .env("SES_INVENTORY__TMF639__ENDPOINT", sim.tmf639_url())
        .env("SES_INVENTORY__TMF639__USERNAME", &sc.tmf639_user)
        .env("SES_INVENTORY__HTTP__BYPASS_PROXY", "true")
        // An ephemeral port, read back from the log, so that the real /healthz can be asked.
        .env("SES_INVENTORY__API__LISTEN", "127.0.0.1:0")
        .env("SES_INVENTORY__STORE__PATH", "")
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Forwards each log line as it comes and returns the whole log once stderr closes.
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = line_tx.send(line.clone());
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let api = tokio::task::spawn_blocking(move || {
        loop {
            let line = line_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the daemon logs where the API listens");
            if line.contains("API listening.") {
                let log: serde_json::Value = serde_json::from_str(&line).unwrap();
                return log["addr"].as_str().unwrap().to_string();
            }
        }
    })
    .await
    .unwrap();

    let mut got = Vec::new();
    receive_until(&socket, &mut got, 60, "READY=1", |got| {
        lines(got).any(|l| l == "READY=1")
    })
    .await;
    // While the first pass ran, systemd's start timeout was pushed out, before READY=1.
    let ready_at = got
        .iter()
        .position(|m| m.lines().any(|l| l == "READY=1"))
        .unwrap();
    assert!(
        got[..ready_at]
            .iter()
            .any(|m| m.starts_with("EXTEND_TIMEOUT_USEC=90000000\n")),
        "no EXTEND_TIMEOUT_USEC before READY=1: {got:#?}"
    );
    // READY=1 comes with a summary of what is cached: every inventory, all of its items.
    let ready = got
        .iter()
        .find(|m| m.lines().any(|l| l == "READY=1"))
        .unwrap();
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_else(|| panic!("no STATUS= with READY=1: {ready:?}"));
    for inv in Inventory::ALL {
        let expected = format!("{inv}: ready, {} items", sim.facts(inv).kept.len());
        assert!(status.contains(&expected), "{expected:?} in {status:?}");
    }
    // Keep-alives at half of WATCHDOG_USEC: several arrive while the daemon idles.
    let pings_before = lines(&got).filter(|l| *l == "WATCHDOG=1").count();
    receive_until(&socket, &mut got, 10, "two more WATCHDOG=1", |got| {
        lines(got).filter(|l| *l == "WATCHDOG=1").count() >= pings_before + 2
    })
    .await;

    // reqwest is built without a default TLS provider; the daemon installs ring, so do we.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // Each buildup is followed at once by its settling pass; then every poller idles.
    for inv in Inventory::ALL {
        common::settled_over_api(&http, &format!("http://{api}"), inv, 60).await;
    }

    // A STATUS= after each poll: a service in the middle of the first page goes upstream; a
    // full pass of services is asked for, and once it is applied the status says so.
    let kept = sim.facts(Inventory::Services).kept.len();
    sim.edit(
        Inventory::Services,
        ses_inventory_sim::Edit {
            delete: vec![inside_page_1(&sim)],
            ..Default::default()
        },
    );
    assert_eq!(sim.facts(Inventory::Services).kept.len(), kept - 1);
    let expected = format!(
        "STATUS=services: ready, {} items; carriers: ready, {} items; resources: ready, {} items",
        kept - 1,
        sim.facts(Inventory::Carriers).kept.len(),
        sim.facts(Inventory::Resources).kept.len()
    );
    let r = http
        .post(format!(
            "http://{api}/api/v1/refresh?inventory=services&full=true"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    receive_until(&socket, &mut got, 30, &expected, |got| {
        lines(got).any(|l| l == expected)
    })
    .await;

    // The container health check against the daemon's real /healthz.
    let health = healthcheck(&api).await;
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    assert!(String::from_utf8_lossy(&health.stdout).contains("200"));

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    receive_until(&socket, &mut got, 10, "STOPPING=1", |got| {
        lines(got).any(|l| l == "STOPPING=1")
    })
    .await;
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");

    // The passwords came from the credentials directory: the simulator accepted them (every
    // inventory is ready above), and they show up nowhere.
    let logs = logs.join().unwrap();
    assert!(logs.contains("Shutting down."), "{logs}");
    for secret in [PASSWORD_638, PASSWORD_639] {
        assert!(!logs.contains(secret), "credential in logs");
        assert!(
            !got.iter().any(|m| m.contains(secret)),
            "credential in STATUS"
        );
    }
}

/// The key of a kept service in the middle of the simulator's first page, with kept services
/// before and after it there: deleted, one full pass sees for certain that it is gone.
fn inside_page_1(sim: &ses_inventory_sim::Simulator) -> String {
    let kept = sim.facts(Inventory::Services).kept;
    let page_1: Vec<String> = sim.items(Inventory::Services)[..40]
        .iter()
        .filter_map(|s| {
            s["externalId"]
                .as_str()
                .or_else(|| s.pointer("/externalIdentifier/0/id")?.as_str())
        })
        .filter(|k| kept.contains(*k))
        .map(String::from)
        .collect();
    assert!(page_1.len() >= 3, "{page_1:?}");
    page_1[page_1.len() / 2].clone()
}

/// A one-shot HTTP server on loopback that answers `status` to the first request, and the
/// request line it received.
fn answer_once(status: u16) -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let mut stream = reader.into_inner();
        write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        )
        .unwrap();
        request_line.trim_end().to_string()
    });
    (addr, handle)
}

async fn healthcheck(listen: &str) -> std::process::Output {
    let mut c = bare_command();
    c.arg("healthcheck")
        .env("SES_INVENTORY__API__LISTEN", listen)
        // A proxy in the environment must not be used for a loopback health check.
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9");
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_exit_code_follows_healthz() {
    let (addr, server) = answer_once(200);
    let out = healthcheck(&addr).await;
    assert_eq!(server.join().unwrap(), "GET /healthz HTTP/1.1");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (addr, server) = answer_once(503);
    let out = healthcheck(&addr).await;
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("503") && err.contains(&addr), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_fails_with_a_reason_when_nothing_answers_or_the_api_is_off() {
    // A port held for this test but not listening: connections are refused.
    let (_held, addr) = common::closed_port();
    let addr = addr.to_string();
    let out = healthcheck(&addr).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("no answer"), "{err}");

    let out = healthcheck("").await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api.listen is empty"), "{err}");

    // A configuration the daemon would refuse is unhealthy (1), not Docker's reserved 2.
    let mut c = bare_command();
    c.arg("healthcheck")
        .env("SES_INVENTORY__POLL__CACHE_UPDATE_FREQUENCY", "1");
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

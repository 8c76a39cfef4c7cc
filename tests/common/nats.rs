//! What tests/nats.rs and tests/chaos.rs share: a `nats-server -js` of their own (Debian's
//! `nats-server` package; `.ci/run` installs it), the daemon binary as a child process (an HA
//! instance, or a single one), bounded waits, and the mirror's buckets and change stream read
//! back and compared with what a daemon serves.

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::Value;
use ses_inventory::Inventory;
use ses_inventory::mirror::{kv, stream};
use ses_inventory_sim::{SimConfig, Simulator};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `ha.lease_seconds` of the instances [`ha_command`] configures.
pub const LEASE: u64 = 3;

// ----------------------------------------------------------------------------------------------
// nats-server

/// A `nats-server -js` on a loopback port with its own store directory; killed and its
/// directory removed on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    /// The server's store directory, removed on drop: a test may keep files of its own there.
    pub dir: PathBuf,
    token: Option<String>,
    /// With TLS: the CA's PEM file (the server's certificate and key are in `dir`).
    pub ca: Option<PathBuf>,
}

impl NatsServer {
    /// A running server, or `None` (after a note that `tests` tests are skipped) when
    /// nats-server is not installed and `CI` is unset.
    pub fn start(tests: &str) -> Option<NatsServer> {
        Self::start_with(tests, None, false)
    }

    /// As [`NatsServer::start`]; with `token`, clients must present it; with `tls`, the server
    /// speaks TLS only, with a certificate for 127.0.0.1 from a CA of its own. Its directory
    /// is named after `tests` (in lower case).
    pub fn start_with(tests: &str, token: Option<&str>, tls: bool) -> Option<NatsServer> {
        if let Err(e) = Command::new("nats-server").arg("--version").output() {
            if std::env::var_os("CI").is_none() {
                eprintln!(
                    "note: {tests} tests skipped ({e}); `apt-get install nats-server` to run them"
                );
                return None;
            }
            panic!("cannot run nats-server ({e}): install it with `apt-get install nats-server`");
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "ses-{}-{}-{nanos}",
            tests.to_lowercase(),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = tls.then(|| {
            let (ca, cert, key) = super::internal_ca("SES test NATS CA");
            std::fs::write(dir.join("ca.pem"), ca).unwrap();
            std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
            std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
            dir.join("ca.pem")
        });
        let mut server = NatsServer {
            child: None,
            port: 0,
            dir,
            token: token.map(str::to_owned),
            ca,
        };
        // A free port can be taken by someone else before the server binds it: try a few.
        for _ in 0..5 {
            server.port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("nats-server did not start on any of 5 ports");
    }

    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Starts the server on its port and directory; true once it accepts connections.
    pub fn spawn(&mut self) -> bool {
        let mut c = Command::new("nats-server");
        c.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-sd",
        ])
        .arg(&self.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(token) = &self.token {
            c.args(["--auth", token]);
        }
        if self.ca.is_some() {
            c.arg("--tls")
                .arg("--tlscert")
                .arg(self.dir.join("server.pem"))
                .arg("--tlskey")
                .arg(self.dir.join("server.key"));
        }
        let mut child = c.spawn().expect("nats-server starts");
        for _ in 0..200 {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // exited: the port was taken
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Kills the server (SIGKILL): an outage, not a goodbye.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store directory (the port may be busy for a
    /// moment: a bounded number of tries).
    pub fn restart(&mut self) {
        for _ in 0..20 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("nats-server did not start again on port {}", self.port);
    }

    /// A JetStream client of the server (with its token, trusting its CA).
    pub async fn client(&self) -> jetstream::Context {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        let client = options
            .connect(self.url())
            .await
            .expect("test client connects");
        jetstream::new(client)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ----------------------------------------------------------------------------------------------
// The daemon binary

/// A client of a daemon's API (no proxy), no time limit on a request.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// As [`http`], every request given up after 10 s: a frozen daemon does not hang the test.
pub fn http_bounded() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The `run` command of an instance named `name` with `ha.enabled` and a lease of [`LEASE`]
/// seconds, polling `sim` and writing to NATS at `nats_url`.
pub fn ha_command(sim: &Simulator, sc: &SimConfig, nats_url: &str, name: &str) -> Command {
    let mut c = super::binary(sim, sc);
    c.arg("run")
        .env("SES_INVENTORY__NATS__URL", nats_url)
        .env("SES_INVENTORY__HA__ENABLED", "true")
        .env("SES_INVENTORY__HA__LEASE_SECONDS", LEASE.to_string())
        .env("SES_INVENTORY__HA__INSTANCE", name);
    c
}

/// The daemon binary as a child process, its JSON log collected; killed on drop, and its log
/// printed then when the test panics or `SHOW_LOGS` is set.
pub struct Daemon {
    /// What the test's messages call it.
    pub name: String,
    pub child: Child,
    /// Its API's base URL, `http://host:port`.
    pub api: String,
    logs: Arc<Mutex<String>>,
    /// Makes the client of each request to it ([`http`] unless told otherwise).
    http: fn() -> reqwest::Client,
}

impl Daemon {
    /// Spawns `c` and waits (at most 30 s) until it logs where its API listens.
    pub fn spawn(name: &str, mut c: Command) -> Daemon {
        c.stderr(Stdio::piped()).stdout(Stdio::null());
        let mut child = c.spawn().expect("the daemon starts");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let api = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the daemon logs where the API listens");
            if line.contains("API listening.") {
                let log: Value = serde_json::from_str(&line).unwrap();
                break log["addr"].as_str().unwrap().to_string();
            }
        };
        Daemon {
            name: name.to_owned(),
            child,
            api: format!("http://{api}"),
            logs,
            http,
        }
    }

    /// Makes the client of each request to it with `http` from now on.
    pub fn with_http(mut self, http: fn() -> reqwest::Client) -> Daemon {
        self.http = http;
        self
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub async fn get(&self, path: &str) -> Value {
        (self.http)()
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Asks for a poll without waiting for it (`query`: of `/api/v1/refresh`); the status code.
    pub async fn request_poll(&self, query: &str) -> u16 {
        (self.http)()
            .post(format!("{}/api/v1/refresh?{query}", self.api))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Every cached row of `inv` by id, as the read API lists them.
    pub async fn rows(&self, inv: Inventory) -> BTreeMap<String, Value> {
        let rows = self.get(&format!("/api/v1/{inv}?limit=1000")).await;
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
            .collect()
    }

    /// The value of the metric series `series` (name and labels as exposed), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = super::get_text(&(self.http)(), format!("{}/metrics", self.api)).await;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Waits until every inventory is settled (the settling pass after its buildup has run)
    /// and its poller idle: a poll requested now runs on its own, not joined to that pass.
    /// (A leader or a single instance: a standby runs no pollers.)
    pub async fn settled(&self) {
        for inv in Inventory::ALL {
            super::settled_over_api(&(self.http)(), &self.api, inv, 60).await;
        }
    }

    /// Waits (at most 60 s) until its status says it is ready.
    pub async fn ready(&self) {
        eventually(60, &format!("{} ready", self.name), || async {
            let status = self.get("/api/v1/status").await;
            (status["ready"] == true)
                .then_some(())
                .ok_or_else(|| "not ready".to_owned())
        })
        .await;
    }

    /// The `ha` member of its status.
    pub async fn ha(&self) -> Value {
        self.get("/api/v1/status").await["ha"].clone()
    }

    /// Waits (at most `secs` seconds) until its status says it has the HA role `role`.
    pub async fn wait_role(&self, role: &str, secs: u64) {
        eventually(secs, &format!("{} to be {role}", self.name), || async {
            let ha = self.ha().await;
            (ha["role"] == role).then_some(()).ok_or(format!("{ha}"))
        })
        .await;
    }

    /// Sends it `signal` (as `kill` takes it: `-STOP`, `-CONT`, `-TERM`).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal}");
    }

    /// SIGTERM, then waits (at most 20 s) for the exit; returns the exit status and the log.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        self.signal("-TERM");
        let exit = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            (status, self.logs())
        });
        tokio::time::timeout(Duration::from_secs(20), exit)
            .await
            .expect("the daemon stops")
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A frozen process is killed all the same (SIGKILL needs no SIGCONT).
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() || std::env::var_os("SHOW_LOGS").is_some() {
            eprintln!("----- {} -----\n{}", self.name, self.logs());
        }
    }
}

/// Both instances list the same rows (and some).
pub async fn same_data(a: &Daemon, b: &Daemon) -> Result<(), String> {
    for inv in Inventory::ALL {
        let (ra, rb) = (a.rows(inv).await, b.rows(inv).await);
        if ra.is_empty() || ra != rb {
            return Err(format!(
                "{inv}: {} rows on {} and {} on {}",
                ra.len(),
                a.name,
                rb.len(),
                b.name
            ));
        }
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// Waits and what the copies hold

/// Bounded async wait for `cond`, every 100 ms, at most `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match cond().await {
            Ok(()) => return,
            Err(why) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out waiting for {what}: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A bucket's entries by upstream key.
pub async fn bucket(
    js: &jetstream::Context,
    inv: Inventory,
) -> Result<BTreeMap<String, Value>, String> {
    let (contents, _follow) = kv::read_all(js, &kv::bucket(inv), false).await?;
    contents
        .into_iter()
        .map(|(k, v)| {
            let key = kv::decode_key(&k).ok_or(format!("foreign key {k}"))?;
            let value: Value = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
            Ok((key, value))
        })
        .collect()
}

/// Whether an entry (of a bucket, or an upserted message) holds `row`: every member of it,
/// equal.
pub fn holds(entry: &Value, row: &Value) -> bool {
    let (Some(entry), Some(row)) = (entry.as_object(), row.as_object()) else {
        return false;
    };
    row.iter().all(|(k, v)| entry.get(k) == Some(v))
}

/// As [`holds`], and the entry carries the seen times (`first_seen`, `last_seen`), as the
/// mirror writes them.
pub fn holds_seen(entry: &Value, row: &Value) -> bool {
    holds(entry, row) && seen(entry)
}

/// Whether `entry` carries the seen times.
fn seen(entry: &Value) -> bool {
    entry.get("first_seen").is_some() && entry.get("last_seen").is_some()
}

/// `entries` hold exactly `rows`: the same keys, each entry holding its row.
pub fn same_items(
    what: &str,
    entries: &BTreeMap<String, Value>,
    rows: &BTreeMap<String, Value>,
) -> Result<(), String> {
    if entries.keys().ne(rows.keys()) {
        let missing: Vec<_> = rows.keys().filter(|k| !entries.contains_key(*k)).collect();
        let extra: Vec<_> = entries.keys().filter(|k| !rows.contains_key(*k)).collect();
        return Err(format!(
            "{what}: {} against {} rows; missing {missing:?}, extra {extra:?}",
            entries.len(),
            rows.len()
        ));
    }
    match rows.keys().find(|k| !holds(&entries[*k], &rows[*k])) {
        Some(key) => Err(format!("{what} {key}: differs from the row")),
        None => Ok(()),
    }
}

/// The buckets hold exactly the rows `daemon` lists: no item of its cache lost, none extra,
/// each entry with its seen times.
pub async fn mirror_equals_api(js: &jetstream::Context, daemon: &Daemon) -> Result<(), String> {
    for inv in Inventory::ALL {
        let entries = bucket(js, inv).await?;
        same_items(&format!("{inv} bucket"), &entries, &daemon.rows(inv).await)?;
        if let Some(key) = entries.keys().find(|k| !seen(&entries[*k])) {
            return Err(format!("{inv} bucket {key}: no seen times"));
        }
    }
    Ok(())
}

/// Every message of the change stream, from the first (each within 10 s).
pub async fn stream_messages(js: &jetstream::Context) -> Vec<jetstream::Message> {
    let mut stream = js
        .get_stream(stream::STREAM)
        .await
        .expect("the stream exists");
    let total = stream.info().await.unwrap().state.messages;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream delivers")
            .unwrap()
            .unwrap();
        out.push(m);
    }
    out
}

/// The header `name` of a message of the change stream.
pub fn header<'a>(m: &'a jetstream::Message, name: &str) -> Option<&'a str> {
    m.headers.as_ref()?.get(name).map(|v| v.as_str())
}

//! Shared test helpers: a simulator on loopback and a daemon configuration pointed at it.
#![allow(dead_code)]

use serde_json::{Value, json};
use ses_inventory::Inventory;
use ses_inventory::cache::Cache;
use ses_inventory::config::Config;
use ses_inventory::model::secret::Secret;
use ses_inventory::model::status::PollReport;
use ses_inventory::source::Upstream;
use ses_inventory::sync::Poller;
use ses_inventory::sync::window::{FullReason, PollPlan};
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{SimConfig, Simulator};
use std::sync::Arc;
use std::time::Duration;

/// nats-server, the daemon binary as an HA instance, and the mirror read back: tests/nats.rs
/// and tests/chaos.rs.
pub mod nats;

pub const FULL: PollPlan = PollPlan::Full(FullReason::Initial);

/// A daemon configuration for `sim`, with retries fast enough for tests and no timers that
/// would disturb a paused clock (no request timeouts, no idle-connection timer).
pub fn config(sim: &Simulator, sc: &SimConfig) -> Config {
    // The built-in defaults (config/default.toml), pointed at the simulator: the tests' own base,
    // not the demo's.
    let mut cfg = Config::defaults();
    cfg.tmf638.endpoint = sim.tmf638_url();
    cfg.tmf638.username = sc.tmf638_user.clone();
    cfg.tmf638.password = Secret::new(sc.tmf638_password.clone());
    cfg.tmf639.endpoint = sim.tmf639_url();
    cfg.tmf639.username = sc.tmf639_user.clone();
    cfg.tmf639.password = Secret::new(sc.tmf639_password.clone());
    cfg.http.bypass_proxy = true;
    cfg.store.path = String::new();
    cfg.http.retry_attempts = 3;
    cfg.http.retry_initial_delay_ms = 5;
    cfg.http.retry_max_delay_ms = 20;
    cfg.http.timeout = 0;
    cfg.http.connect_timeout = 0;
    cfg.http.pool_idle_timeout = 0;
    cfg.poll.cache_update_frequency = 3600;
    cfg.poll.full_resync_interval = 0;
    cfg.poll.status_interval = 0;
    cfg.poll.failure_backoff_initial = 30;
    cfg.poll.failure_backoff_max = 60;
    cfg
}

/// The real binary with a clean environment, configured by variables alone (no file) for `sim`
/// with the credentials in `sc`: fast retries, no proxy, an API on an ephemeral port, no store,
/// no status summaries. Tests add what they exercise on top.
pub fn binary(sim: &Simulator, sc: &SimConfig) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ses-inventory"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SES_INVENTORY_CONFIG", "")
        .env("SES_INVENTORY__TMF638__ENDPOINT", sim.tmf638_url())
        .env("SES_INVENTORY__TMF638__USERNAME", &sc.tmf638_user)
        .env("SES_INVENTORY__TMF638__PASSWORD", &sc.tmf638_password)
        .env("SES_INVENTORY__TMF639__ENDPOINT", sim.tmf639_url())
        .env("SES_INVENTORY__TMF639__USERNAME", &sc.tmf639_user)
        .env("SES_INVENTORY__TMF639__PASSWORD", &sc.tmf639_password)
        .env("SES_INVENTORY__HTTP__RETRY_INITIAL_DELAY_MS", "5")
        .env("SES_INVENTORY__HTTP__RETRY_MAX_DELAY_MS", "20")
        .env("SES_INVENTORY__HTTP__BYPASS_PROXY", "true")
        .env("SES_INVENTORY__POLL__STATUS_INTERVAL", "0")
        .env("SES_INVENTORY__API__LISTEN", "127.0.0.1:0")
        // Tests never write to /var/lib; the store's tests set a temporary file.
        .env("SES_INVENTORY__STORE__PATH", "")
        .stdin(std::process::Stdio::null());
    c
}

/// Runs `c` to its end off the async runtime and returns what it printed.
pub async fn output(mut c: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// Command output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A simulator with the default data and these passwords, on the current runtime.
pub async fn sim_with_passwords(tmf638: &str, tmf639: &str) -> (Simulator, SimConfig) {
    let sc = SimConfig {
        tmf638_password: tmf638.into(),
        tmf639_password: tmf639.into(),
        ..SimConfig::default()
    };
    let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .expect("sim starts");
    (sim, sc)
}

/// A simulator with no data, on the current runtime.
pub async fn empty_sim() -> (Simulator, SimConfig) {
    let sc = SimConfig::empty();
    let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .expect("sim starts");
    (sim, sc)
}

/// A poller for one inventory over `cache`, on the system clock.
pub fn poller(cfg: &Config, inv: Inventory, cache: &Cache) -> Poller {
    let upstream = Upstream::new(Arc::new(cfg.clone())).expect("client builds");
    Poller::new(inv, cfg, upstream, cache.clone(), Clock::System)
}

/// One poll of `inv` with `plan`.
pub async fn poll(cfg: &Config, inv: Inventory, cache: &Cache, plan: PollPlan) -> PollReport {
    poller(cfg, inv, cache).poll(plan).await
}

/// The cached keys of `inv`, sorted.
pub fn keys(cache: &Cache, inv: Inventory) -> Vec<String> {
    let mut k: Vec<String> = cache
        .snapshot(inv)
        .iter()
        .map(|i| i.key.to_string())
        .collect();
    k.sort();
    k
}

/// A service in the v4 SES shape, updated just now.
pub fn service(id: &str, status: &str) -> Value {
    json!({
        "id": format!("sys-{id}"),
        "externalId": id,
        "name": format!("Service {id}"),
        "status": status,
        "@type": "CFS",
        // Recent, so that refreshes (`updatedDaysAgo`) return it.
        "lastUpdate": chrono::Utc::now().to_rfc3339(),
    })
}

/// A carrier element.
pub fn carrier(id: &str) -> Value {
    json!({"id": format!("sys-{id}"), "externalId": id, "name": format!("Carrier {id}"), "@type": "element"})
}

/// A resource of type `ty`.
pub fn resource(id: &str, ty: &str) -> Value {
    json!({"id": id, "name": format!("Resource {id}"), "@type": ty})
}

/// `n` Operational services SVC-0001...
pub fn services(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|i| service(&format!("SVC-{i:04}"), "Operational"))
        .collect()
}

/// Bounded wait for `cond`, checking every 10 ms for at most `secs` seconds of tokio time.
pub async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (at most `secs` seconds) until `inv` is settled (its buildup and the full pass that
/// follows it at once have run, or it was loaded settled) and its poller has scheduled the
/// poll after its last one: it is idle then, until that poll is due or is requested.
pub async fn settled(cache: &Cache, inv: Inventory, secs: u64) {
    eventually(secs, &format!("{inv} to settle"), || {
        let s = cache.status(inv);
        let last = [&s.last_full, &s.last_refresh]
            .into_iter()
            .flatten()
            .map(|r| r.finished)
            .max();
        s.settled
            && last
                .zip(s.next_poll)
                .is_some_and(|(last, next)| next > last)
    })
    .await;
}

/// As [`settled`], for a daemon in another process, from its `/api/v1/status` at `base`
/// (`http://host:port`, no token).
pub async fn settled_over_api(http: &reqwest::Client, base: &str, inv: Inventory, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let time = |v: &Value| v.as_str()?.parse::<chrono::DateTime<chrono::Utc>>().ok();
    loop {
        let body = get_text(http, format!("{base}/api/v1/status")).await;
        let status: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let s = &status["inventories"][inv.to_string()];
        let last = [&s["last_full"]["finished"], &s["last_refresh"]["finished"]]
            .into_iter()
            .filter_map(time)
            .max();
        let idle = time(&s["next_poll"])
            .zip(last)
            .is_some_and(|(next, last)| next > last);
        if s["settled"] == true && idle {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {inv} to settle: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port that nothing listens on and nobody else can take while the returned socket
/// lives: bound, never listening, so connections to it are refused. (A port found by binding
/// and releasing a listener may be taken by another test in between.)
pub fn closed_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind an ephemeral loopback port");
    let addr = socket.local_addr().expect("bound address");
    (socket, addr)
}

/// A test CA (its certificate as PEM) and a server certificate for 127.0.0.1 it signed, with
/// the server's key: what SES's internal CA would issue a gateway or a NATS server.
pub fn internal_ca(name: &str) -> (String, rcgen::Certificate, rcgen::KeyPair) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name.push(rcgen::DnType::CommonName, name);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    server.use_authority_key_identifier_extension = true;
    server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    (ca_cert.pem(), server_cert, server_key)
}

/// The body of a GET of `url` as text.
pub async fn get_text(http: &reqwest::Client, url: String) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

//! A simulator of SES's TMF 638 / TMF 639 inventory gateway, served over real loopback HTTP.
//!
//! Nobody on the team can reach the real API, so tests, the demo and benchmarks run against this.
//! It serves the dialect described in the repository's docs/upstream.md (what the gateway
//! documents, what is assumed); everything it assumes about the upstream is configurable in
//! [`SimConfig`] where the documentation is silent:
//!
//! - `GET {base638}/service` lists services; with `@type=element` it lists carriers instead (a
//!   separate dataset; any other `@type` value lists services). `GET {base639}/resource` lists
//!   resources. A trailing `/` is tolerated; any other path is 404, any other method 405.
//! - Basic auth, separate credentials per API; a wrong or missing `Authorization` is a 401 with
//!   `WWW-Authenticate: Basic realm="sim"`. Auth is checked before anything else on the two
//!   known paths.
//! - Paging: page number param (default `page`, first page 1) and page size param (default
//!   `recordsPerPage`, default 40). A page is a slice of the (filtered) dataset in a stable
//!   order; a page before the first or past the end is `[]`, so an exact multiple of the page
//!   size ends with an empty page. `X-Total-Count` (matching items) and `X-Result-Count` (items
//!   on this page) are sent, unless `total_header` is false (the real gateway documents
//!   neither; `--no-total`). With `wrap: Some("result")` a page is `{"result": [...]}`.
//!   A non-numeric page, size or `updatedDaysAgo` is a 400.
//! - Single items (TMF's `GET .../service/{id}`, `.../resource/{id}`):
//!   `GET {base638}/service/{x}` answers 200 with the compact JSON object of the first service,
//!   else the first carrier, whose top-level `id` string is x or whose key is x (x
//!   percent-decoded); `{base639}/resource/{x}` the same over resources. Otherwise 404 `{"error":"not found"}` (`application/json`). Same
//!   credentials as the collection (401 first); the request log records them with `page: None`
//!   and `item: Some(x)`. A key is the generator's for generated items, else the top-level
//!   `externalId` (services, carriers) or `id` (resources) of items from `set_items` or edits.
//! - `status=1` is accepted and ignored (the datasets include inactive items on purpose: the
//!   daemon must filter them itself).
//! - `updatedDaysAgo=N` keeps items whose `lastUpdate` (else `lastUpdateDate`) is within the
//!   last (N+1)×24 hours of `chrono::Utc::now()`; items without a parseable date are left out.
//! - Items are SES-like JSON in a mix of TMF v4 and v5 shapes with deliberate anomalies (empty
//!   keys, duplicates, inactive services, excluded resource types); see [`Facts`].
//! - Updated items stay where they are, unless `resort_on_update` (`--resort-on-update`) moves
//!   each to the end of its dataset when [`Simulator::mutate`] or an [`Edit`] updates it, like a
//!   gateway that lists in `lastUpdate` order. Inserted items go where they are inserted.
//! - Faults ([`Fault`]) target pages by inventory, page number and refresh; the first `skip`
//!   matching requests pass (e.g. page 3 of the second listing: `page: Some(3), skip: 1`), then
//!   it applies `times` times. Item GETs are hit only by faults with `items: true` and no
//!   `page`, matched by the inventory where the item is (by the path when it is nowhere).
//!   [`FaultKind::Short`] cuts a page (`Short(0)`: an empty page mid-listing, total unchanged).
//! - Data can change at an exact point: [`FaultKind::Edit`] deletes, inserts and updates items
//!   just before a page (or item) is answered, and [`Simulator::edit`] does the same between
//!   two polls. Inserting items of the test's own makes the dataset's [`Facts`] unknown.
//!
//! Data is deterministic for a seed and sizes; dates are relative to the moment the data was
//! generated (so "updated in the last day" stays meaningful) and are the only thing that
//! differs between two simulators with the same configuration.
//!
//! Locking: each dataset sits behind a std `RwLock`, faults, the request log and the
//! concurrency counts behind std `Mutex`es. They are never held across an `.await`: a page's
//! text is copied out under the read lock, then the lock is released before any latency sleep.
//!
//! Concurrency: requests are served concurrently (each connection on its own task). Faults are
//! taken one request at a time under their lock, so `times` counts exactly however many
//! requests arrive together; the request log and [`Simulator::subscribe`] see every request
//! once, in the order they were answered. Per API, the simulator counts the requests in
//! progress: each [`RequestRecord`] carries how many there were when it arrived, and
//! [`Simulator::max_concurrent`] the most seen at once.

mod data;
mod fault;
mod hold;
mod inventory;
mod server;

pub use data::{EXCLUDED_TYPES, Edit, Facts};
pub use fault::{Fault, FaultKind};
pub use hold::Hold;
pub use inventory::{Api, Inventory};

use data::Dataset;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot, watch};

/// How the simulator behaves: its data, credentials and dialect. Its Debug print hides the
/// passwords, like every other credential in the project.
#[derive(Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Seed of the data generator: same seed and sizes, same data.
    pub seed: u64,
    /// Number of items in each dataset (anomalies included).
    pub services: usize,
    pub carriers: usize,
    pub resources: usize,
    /// Basic-auth credentials for TMF 638 (services, carriers).
    pub tmf638_user: String,
    pub tmf638_password: String,
    /// Basic-auth credentials for TMF 639 (resources).
    pub tmf639_user: String,
    pub tmf639_password: String,
    /// Path prefix of TMF 638; services are at `{base638}/service`.
    pub base638: String,
    /// Path prefix of TMF 639; resources are at `{base639}/resource`.
    pub base639: String,
    /// Name of the page-number query parameter.
    pub page_param: String,
    /// Number of the first page.
    pub first_page: u32,
    /// Name of the page-size query parameter (missing: 40).
    pub size_param: String,
    /// `Some(key)`: a page is `{key: [...]}` instead of a bare array.
    pub wrap: Option<String>,
    /// Added to every page and item response (faulted ones included), after the lock is
    /// released.
    pub latency: Duration,
    /// Serve pages indented, with newlines (as some servers do), instead of compact.
    pub pretty: bool,
    /// Send `X-Total-Count` and `X-Result-Count` with pages. The real gateway documents
    /// neither, so a client must cope without them (`false`).
    pub total_header: bool,
    /// Move an item to the end of its dataset when it is updated (by [`Simulator::mutate`] or
    /// an [`Edit`]), like a gateway that lists in `lastUpdate` order.
    pub resort_on_update: bool,
    /// The shape of the generated data: how many items the daemon's rules drop, how often each
    /// field takes its TMF v5 shape, how large items are. The default is the mix every test
    /// and benchmark was written against.
    pub mix: Mix,
}

/// What the generated datasets are made of (see [`SimConfig::mix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Per mille of services and resources generated as ones the daemon does not keep (a
    /// status other than Operational, an excluded resource type), anomalies aside. Default 50.
    pub not_kept_permille: usize,
    /// Per mille of fields (key, status, parties, places, characteristics, relationships) written
    /// in their TMF v5 shape rather than v4. Default 500.
    pub v5_permille: usize,
    /// Extra bytes of description text per service and resource (words, not one run), to
    /// make items larger. Default 0.
    pub pad_bytes: usize,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            not_kept_permille: 50,
            v5_permille: 500,
            pad_bytes: 0,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            services: 200,
            carriers: 80,
            resources: 400,
            tmf638_user: "svc-user".into(),
            tmf638_password: "svc-pass".into(),
            tmf639_user: "res-user".into(),
            tmf639_password: "res-pass".into(),
            base638: "/gstm/dataminer/tmf/api/v1/tmf638".into(),
            base639: "/gstm/dataminer/tmf/api/v1/tmf639".into(),
            page_param: "page".into(),
            first_page: 1,
            size_param: "recordsPerPage".into(),
            wrap: None,
            latency: Duration::ZERO,
            pretty: false,
            total_header: true,
            resort_on_update: false,
            mix: Mix::default(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("services", &self.services)
            .field("carriers", &self.carriers)
            .field("resources", &self.resources)
            .field("tmf638_user", &self.tmf638_user)
            .field("tmf638_password", &"***")
            .field("tmf639_user", &self.tmf639_user)
            .field("tmf639_password", &"***")
            .field("base638", &self.base638)
            .field("base639", &self.base639)
            .field("page_param", &self.page_param)
            .field("first_page", &self.first_page)
            .field("size_param", &self.size_param)
            .field("wrap", &self.wrap)
            .field("latency", &self.latency)
            .field("pretty", &self.pretty)
            .field("total_header", &self.total_header)
            .field("resort_on_update", &self.resort_on_update)
            .finish()
    }
}

impl SimConfig {
    /// The defaults with no items at all (tests then craft data with [`Simulator::set_items`]).
    pub fn empty() -> Self {
        SimConfig {
            services: 0,
            carriers: 0,
            resources: 0,
            ..SimConfig::default()
        }
    }

    /// The configured size of an inventory's dataset.
    pub fn count(&self, inventory: impl Into<Inventory>) -> usize {
        match inventory.into() {
            Inventory::Services => self.services,
            Inventory::Carriers => self.carriers,
            Inventory::Resources => self.resources,
        }
    }
}

/// One request as the simulator answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The inventory addressed, once the path and credentials were accepted; `None` for 404,
    /// 405 and 401 answers.
    pub inventory: Option<Inventory>,
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// The page served: the page param's value, or the first page when it is missing. `None`
    /// when the request never got that far, and for single-item GETs.
    pub page: Option<u32>,
    /// For a single-item GET (`.../service/{id}`, `.../resource/{id}`) past the credentials:
    /// the id asked for, percent-decoded.
    pub item: Option<String>,
    pub updated_days_ago: Option<u32>,
    /// HTTP status answered.
    pub status: u16,
    /// Items in the body (0 for errors and faults; a `42` from `ElementNotObject` not counted;
    /// 1 for an item found by a single-item GET).
    pub items: usize,
    /// Requests to the same API in progress when this one arrived, itself included (0 for a
    /// path that is neither API's).
    pub concurrent: usize,
    /// When the request arrived and when its answer was ready (after any latency or hold).
    pub received: std::time::Instant,
    pub answered: std::time::Instant,
}

/// State shared by the handlers and the [`Simulator`] handle.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    datasets: [RwLock<Dataset>; 3],
    faults: Mutex<fault::FaultList>,
    log: Mutex<Vec<RequestRecord>>,
    events: broadcast::Sender<RequestRecord>,
    /// Per API: requests in progress now, and the most at once so far.
    concurrency: Mutex<[Concurrency; 2]>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Concurrency {
    now: usize,
    max: usize,
}

/// A request to `api` in progress; dropping it (the answer is ready, or the client went away
/// and the handler was dropped) ends it.
pub(crate) struct InProgress<'a> {
    shared: &'a Shared,
    api: Api,
    /// Requests to `api` in progress when this one arrived, itself included.
    pub(crate) concurrent: usize,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        lock(&self.shared.concurrency)[self.api.index()].now -= 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Generates the three datasets (in parallel: a million items take a few seconds).
    fn build(config: SimConfig) -> Shared {
        let anchor = chrono::Utc::now().timestamp_millis();
        let datasets = std::thread::scope(|scope| {
            let cfg = &config;
            Inventory::ALL
                .map(|inv| scope.spawn(move || Dataset::generate(inv, cfg, anchor)))
                .map(|h| RwLock::new(h.join().expect("data generator panicked")))
        });
        Shared {
            config,
            datasets,
            faults: Mutex::default(),
            log: Mutex::default(),
            events: broadcast::channel(4096).0,
            concurrency: Mutex::default(),
        }
    }

    /// Counts a request to `api` as in progress until the returned guard is dropped.
    pub(crate) fn begin(&self, api: Api) -> InProgress<'_> {
        let mut all = lock(&self.concurrency);
        let c = &mut all[api.index()];
        c.now += 1;
        c.max = c.max.max(c.now);
        InProgress {
            shared: self,
            api,
            concurrent: c.now,
        }
    }

    pub(crate) fn read(&self, inv: Inventory) -> RwLockReadGuard<'_, Dataset> {
        self.datasets[inv.index()]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self, inv: Inventory) -> RwLockWriteGuard<'_, Dataset> {
        self.datasets[inv.index()]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lock_faults(&self) -> MutexGuard<'_, fault::FaultList> {
        lock(&self.faults)
    }

    pub(crate) fn record(&self, rec: RequestRecord) {
        let mut log = lock(&self.log);
        // Sent under the log lock so subscribers see the same order as `requests()`.
        let _ = self.events.send(rec.clone());
        log.push(rec);
    }

    fn mutate(&self, step: u64) {
        let now = chrono::Utc::now().timestamp_millis();
        for inv in Inventory::ALL {
            self.write(inv).mutate(&self.config, step, now);
        }
    }
}

/// A running simulator. Dropping it stops serving (without waiting); [`Simulator::shutdown`]
/// also waits until the server is gone.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    thread_done: Option<oneshot::Receiver<()>>,
}

impl Simulator {
    /// Binds `addr` (use "127.0.0.1:0" in tests) and serves on the current tokio runtime.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = tokio::task::spawn_blocking(move || Arc::new(Shared::build(config)))
            .await
            .map_err(std::io::Error::other)?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, shared.clone(), stop_rx));
        Ok(Simulator {
            shared,
            addr,
            stop,
            task: Some(task),
            thread_done: None,
        })
    }

    /// Starts on a dedicated OS thread with its own multi-thread tokio runtime (real time), for
    /// tests whose own runtime has a paused clock. Binds 127.0.0.1 on a free port. Blocks until
    /// bound (and the data generated).
    pub fn start_on_thread(config: SimConfig) -> std::io::Result<Simulator> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("ses-sim".into())
            .spawn(move || {
                let started = (|| {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("ses-sim-rt")
                        .enable_all()
                        .build()?;
                    let listener =
                        rt.block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?;
                    let addr = listener.local_addr()?;
                    std::io::Result::Ok((rt, listener, addr))
                })();
                let (rt, listener, addr) = match started {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let shared = Arc::new(Shared::build(config));
                let _ = ready_tx.send(Ok((shared.clone(), addr)));
                rt.block_on(server::serve(listener, shared, stop_rx));
                rt.shutdown_timeout(Duration::from_secs(1));
                let _ = done_tx.send(());
            })?;
        let (shared, addr) = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("simulator thread exited before binding"))??;
        Ok(Simulator {
            shared,
            addr,
            stop,
            task: None,
            thread_done: Some(done_rx),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{base638}`.
    pub fn tmf638_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.config.base638)
    }

    /// `http://127.0.0.1:PORT{base639}`.
    pub fn tmf639_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.config.base639)
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Ground truth for the current dataset, as recorded by the generator (and kept up to date
    /// by [`Simulator::mutate`] and by edits that delete or update).
    ///
    /// # Panics
    /// If the dataset was replaced with [`Simulator::set_items`] or had items inserted by an
    /// [`Edit`]: the simulator does not judge
    /// crafted data (that would mean re-implementing the daemon's rules); the test that crafted
    /// it knows what to expect. Use [`Simulator::try_facts`] to check.
    pub fn facts(&self, inventory: impl Into<Inventory>) -> Facts {
        let inventory = inventory.into();
        self.try_facts(inventory).unwrap_or_else(|| {
            panic!("facts({inventory}) is unavailable: the dataset was replaced with set_items")
        })
    }

    /// [`Simulator::facts`], or `None` for a dataset replaced with [`Simulator::set_items`] or
    /// with edit-inserted items.
    pub fn try_facts(&self, inventory: impl Into<Inventory>) -> Option<Facts> {
        self.shared.read(inventory.into()).facts()
    }

    /// Replaces a dataset with exactly these items, served in this order. Afterwards
    /// [`Simulator::facts`] panics for that inventory and [`Simulator::mutate`] leaves it alone.
    /// Edits and item GETs key these items by their top-level `externalId` (services,
    /// carriers) or `id` (resources).
    pub fn set_items(&self, inventory: impl Into<Inventory>, items: Vec<serde_json::Value>) {
        let inventory = inventory.into();
        let ds = Dataset::from_values(inventory, items);
        *self.shared.write(inventory) = ds;
    }

    /// Changes a dataset now, as the [`FaultKind::Edit`] fault does between two pages: deletes,
    /// inserts, then updates (see [`Edit`]). Keys are the generator's for generated items, else
    /// the top-level `externalId` (services, carriers) or `id` (resources). Inserting makes the
    /// dataset's facts unknown, as [`Simulator::set_items`] does; deleting and updating keep
    /// them right.
    ///
    /// # Panics
    /// If an insert is not a JSON object (nothing is changed then): a test's mistake.
    pub fn edit(&self, inventory: impl Into<Inventory>, edit: Edit) {
        let inventory = inventory.into();
        let now = chrono::Utc::now().timestamp_millis();
        let resort = self.shared.config.resort_on_update;
        if let Err(e) = self.shared.write(inventory).edit(&edit, resort, now) {
            panic!("{e}");
        }
    }

    /// Updates the items with these keys now: [`Simulator::edit`] with only `update`.
    pub fn update_items(&self, inventory: impl Into<Inventory>, keys: &[&str]) {
        let update = keys.iter().map(|k| (*k).to_owned()).collect();
        self.edit(
            inventory,
            Edit {
                update,
                ..Edit::default()
            },
        );
    }

    /// The current dataset, in serving order.
    pub fn items(&self, inventory: impl Into<Inventory>) -> Vec<serde_json::Value> {
        self.shared.read(inventory.into()).values()
    }

    /// Adds a fault after the ones already injected (earlier ones win when several match).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock_faults().push(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock_faults().clear();
    }

    /// Every request so far, in the order they were answered.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// Each request as it is answered, from now on (capacity 4096).
    pub fn subscribe(&self) -> broadcast::Receiver<RequestRecord> {
        self.shared.events.subscribe()
    }

    /// The most requests to `api` that were in progress at once since the start (or the last
    /// [`Simulator::reset_max_concurrent`]). A request is in progress from its arrival until
    /// its answer is ready, latency, delays and holds included.
    pub fn max_concurrent(&self, api: Api) -> usize {
        lock(&self.shared.concurrency)[api.index()].max
    }

    /// Requests to `api` in progress right now.
    pub fn in_progress(&self, api: Api) -> usize {
        lock(&self.shared.concurrency)[api.index()].now
    }

    /// Starts counting [`Simulator::max_concurrent`] afresh from the requests in progress now.
    pub fn reset_max_concurrent(&self) {
        for c in lock(&self.shared.concurrency).iter_mut() {
            c.max = c.now;
        }
    }

    /// A deterministic change step so refreshes have work: per generated inventory, updates
    /// ~2% of items (new name or status, `lastUpdate` = now; moved to the end with
    /// `resort_on_update`), deletes ~1% and appends ~1% new ones (`lastUpdate` = now). Facts
    /// stay correct. Datasets from `set_items` (or with edit-inserted items) are untouched.
    /// Runs synchronously under the datasets' write locks.
    pub fn mutate(&self, step: u64) {
        self.shared.mutate(step);
    }

    /// Stops serving and waits until the server is gone (in-flight requests get a short grace).
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(done) = self.thread_done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // Signals only: the server task (or thread) winds down on its own.
        self.stop.send_replace(true);
    }
}

/// Serves `config` on `listen` with `faults` until `shutdown` completes, changing the data every
/// `change_every` (zero: never); prints one line with the two base URLs to stdout. This is
/// `ses-inventory sim`.
pub async fn run(
    config: SimConfig,
    listen: SocketAddr,
    faults: Vec<Fault>,
    change_every: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let sizes = (config.services, config.carriers, config.resources);
    let sim = Simulator::start(config, listen).await?;
    for f in faults {
        sim.inject(f);
    }
    println!(
        "simulator: tmf638 {} tmf639 {}",
        sim.tmf638_url(),
        sim.tmf639_url()
    );
    tracing::info!(
        message = "Simulator started.",
        addr = %sim.addr(),
        services = sizes.0,
        carriers = sizes.1,
        resources = sizes.2
    );
    let shared = sim.shared.clone();
    let changes = async move {
        if change_every.is_zero() {
            return std::future::pending::<()>().await;
        }
        let mut tick = tokio::time::interval(change_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        for step in 1.. {
            tick.tick().await;
            let shared = shared.clone();
            let _ = tokio::task::spawn_blocking(move || shared.mutate(step)).await;
            tracing::info!(message = "Simulator data changed.", step);
        }
    };
    tokio::select! {
        _ = shutdown => {}
        _ = changes => {}
    }
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Reply {
        status: u16,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).expect("JSON body")
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(String::as_str)
        }
    }

    /// A hand-written HTTP/1.1 GET (the crate has no HTTP client).
    async fn get(addr: SocketAddr, target: &str, auth: Option<(&str, &str)>) -> Reply {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some((u, p)) = auth {
            let cred = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req.push_str(&format!("Authorization: Basic {cred}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header end");
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    const SVC: Option<(&str, &str)> = Some(("svc-user", "svc-pass"));
    const RES: Option<(&str, &str)> = Some(("res-user", "res-pass"));

    fn small() -> SimConfig {
        SimConfig {
            services: 80,
            carriers: 50,
            resources: 45,
            ..SimConfig::default()
        }
    }

    async fn start(config: SimConfig) -> Simulator {
        Simulator::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    fn path(sim: &Simulator, inv: Inventory, query: &str) -> String {
        let base = match inv {
            Inventory::Resources => format!("{}/resource", sim.config().base639),
            _ => format!("{}/service", sim.config().base638),
        };
        let q = match inv {
            Inventory::Carriers => format!("@type=element&{query}"),
            Inventory::Services | Inventory::Resources => format!("status=1&{query}"),
        };
        format!("{base}?{q}")
    }

    #[tokio::test]
    async fn pages_slice_the_dataset_and_end_with_a_short_or_empty_page() {
        let sim = start(small()).await;
        for (inv, auth) in [
            (Inventory::Services, SVC),
            (Inventory::Carriers, SVC),
            (Inventory::Resources, RES),
        ] {
            let items = sim.items(inv);
            let mut got = Vec::new();
            for page in 1.. {
                let r = get(
                    sim.addr(),
                    &path(&sim, inv, &format!("recordsPerPage=40&page={page}")),
                    auth,
                )
                .await;
                assert_eq!(r.status, 200);
                assert_eq!(
                    r.header("x-total-count"),
                    Some(items.len().to_string().as_str())
                );
                let page_items = r.json().as_array().unwrap().clone();
                let n = page_items.len();
                got.extend(page_items);
                if n < 40 {
                    break;
                }
            }
            assert_eq!(got, items, "{inv}");
        }
        // 80 services: exactly two full pages, then an empty one.
        let r = get(
            sim.addr(),
            &path(&sim, Inventory::Services, "recordsPerPage=40&page=3"),
            SVC,
        )
        .await;
        assert_eq!(r.json(), json!([]));
        // Carriers: second page is the short one (50 = 40 + 10), far past the end is empty.
        let r = get(
            sim.addr(),
            &path(&sim, Inventory::Carriers, "recordsPerPage=40&page=2"),
            SVC,
        )
        .await;
        assert_eq!(r.json().as_array().unwrap().len(), 10);
        let r = get(
            sim.addr(),
            &path(&sim, Inventory::Carriers, "page=99999"),
            SVC,
        )
        .await;
        assert_eq!(r.json(), json!([]));
        // Defaults: no page, no size => first page of 40.
        let r = get(sim.addr(), &path(&sim, Inventory::Services, ""), SVC).await;
        assert_eq!(
            r.json().as_array().unwrap()[..],
            sim.items(Inventory::Services)[..40]
        );
        assert!(
            r.json()
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i.get("@type") != Some(&json!("element")))
        );
        let r = get(
            sim.addr(),
            &path(&sim, Inventory::Services, "recordsPerPage=x"),
            SVC,
        )
        .await;
        assert_eq!(r.status, 400);

        let log = sim.requests();
        assert_eq!(log[0].inventory, Some(Inventory::Services));
        assert_eq!(log[0].page, Some(1));
        assert_eq!(log[0].items, 40);
        assert!(log[0].query.contains(&("status".into(), "1".into())));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn credentials_are_per_api_and_unknown_paths_are_404() {
        let sim = start(SimConfig::empty()).await;
        let svc = path(&sim, Inventory::Services, "page=1");
        let res = path(&sim, Inventory::Resources, "page=1");
        for (target, auth) in [
            (&svc, None),
            (&svc, RES),
            (&res, SVC),
            (&res, Some(("res-user", "nope"))),
        ] {
            let r = get(sim.addr(), target, auth).await;
            assert_eq!(r.status, 401, "{target} {auth:?}");
            assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"sim\""));
        }
        assert_eq!(get(sim.addr(), &svc, SVC).await.status, 200);
        assert_eq!(get(sim.addr(), &res, RES).await.status, 200);
        assert_eq!(get(sim.addr(), "/nope?page=1", SVC).await.status, 404);
        let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [401, 401, 401, 401, 200, 200, 404]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn updated_days_ago_keeps_recent_items_with_parseable_dates() {
        let sim = start(SimConfig::empty()).await;
        let now = chrono::Utc::now().timestamp_millis();
        let h = 3_600_000;
        sim.set_items(
            Inventory::Carriers,
            vec![
                json!({"externalId": "a", "lastUpdate": data::fmt_ts(now - h, 0)}),
                json!({"externalId": "b", "lastUpdateDate": data::fmt_ts(now - 30 * h, 3)}),
                json!({"externalId": "c", "lastUpdate": data::fmt_ts(now - 240 * h, 1)}),
                json!({"externalId": "d"}),
                json!({"externalId": "e", "lastUpdate": "yesterday"}),
            ],
        );
        let keys = |r: Reply| -> Vec<String> {
            r.json()
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["externalId"].as_str().unwrap().to_owned())
                .collect()
        };
        let r = get(
            sim.addr(),
            &path(&sim, Inventory::Carriers, "updatedDaysAgo=0"),
            SVC,
        )
        .await;
        assert_eq!(r.header("x-total-count"), Some("1"));
        assert_eq!(keys(r), ["a"]);
        let r = get(
            sim.addr(),
            &path(&sim, Inventory::Carriers, "updatedDaysAgo=1"),
            SVC,
        )
        .await;
        assert_eq!(keys(r), ["a", "b"]);
        let r = get(sim.addr(), &path(&sim, Inventory::Carriers, "page=1"), SVC).await;
        assert_eq!(keys(r).len(), 5);
        assert_eq!(sim.requests()[0].updated_days_ago, Some(0));
        assert!(sim.try_facts(Inventory::Carriers).is_none());
        assert!(sim.try_facts(Inventory::Services).is_some());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn generated_data_has_recent_items_for_refreshes() {
        let sim = start(SimConfig::default()).await;
        let r = get(
            sim.addr(),
            &path(
                &sim,
                Inventory::Resources,
                "updatedDaysAgo=0&recordsPerPage=1000",
            ),
            RES,
        )
        .await;
        let n = r.json().as_array().unwrap().len();
        assert!(n > 0 && n < 400 / 5, "{n}");
        let facts = sim.facts(Inventory::Services);
        assert!(facts.empty_keys > 0 && facts.duplicates > 0 && facts.not_kept > 0);
        assert!(sim.facts(Inventory::Resources).not_kept > 0);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn faults_hit_matching_requests_the_given_number_of_times() {
        let sim = start(small()).await;
        let mut events = sim.subscribe();
        sim.inject(Fault {
            inventory: Some(Inventory::Services),
            page: Some(2),
            times: Some(2),
            ..Fault::new(FaultKind::Status {
                code: 504,
                retry_after: Some("3".into()),
            })
        });
        sim.inject(Fault {
            inventory: Some(Inventory::Services),
            times: Some(1),
            ..Fault::new(FaultKind::NotArray)
        });
        let p2 = path(&sim, Inventory::Services, "page=2");
        let r = get(sim.addr(), &p2, SVC).await;
        assert_eq!((r.status, r.header("retry-after")), (504, Some("3")));
        assert_eq!(get(sim.addr(), &p2, SVC).await.status, 504);
        // The 504 is spent; the catch-all NotArray applies once, then the page is normal.
        let r = get(sim.addr(), &p2, SVC).await;
        assert_eq!(
            r.json(),
            json!({"error": {"code": "SIM-500", "message": "simulated: not an array"}})
        );
        assert_eq!(
            get(sim.addr(), &p2, SVC)
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            40
        );
        // Carriers were never affected.
        let r = get(sim.addr(), &path(&sim, Inventory::Carriers, "page=2"), SVC).await;
        assert_eq!(r.status, 200);

        sim.inject(Fault {
            refresh_only: true,
            ..Fault::new(FaultKind::ElementNotObject)
        });
        let r = get(sim.addr(), &path(&sim, Inventory::Resources, "page=1"), RES).await;
        assert_eq!(r.json().as_array().unwrap().len(), 40);
        let r = get(
            sim.addr(),
            &path(&sim, Inventory::Resources, "updatedDaysAgo=400"),
            RES,
        )
        .await;
        let arr = r.json().as_array().unwrap().clone();
        assert_eq!(arr.last(), Some(&json!(42)));
        sim.clear_faults();

        sim.inject(Fault::new(FaultKind::Malformed));
        let r = get(sim.addr(), &p2, SVC).await;
        assert_eq!(r.status, 200);
        assert!(serde_json::from_slice::<Value>(&r.body).is_err());
        sim.clear_faults();
        sim.inject(Fault {
            times: Some(1),
            ..Fault::new(FaultKind::Huge(200_000))
        });
        let r = get(sim.addr(), &p2, SVC).await;
        assert!(
            (200_000..201_000).contains(&r.body.len()),
            "{}",
            r.body.len()
        );
        // Unauthorized requests are answered 401 and do not consume faults.
        sim.inject(Fault {
            times: Some(1),
            ..Fault::new(FaultKind::Delay(Duration::from_millis(1)))
        });
        assert_eq!(get(sim.addr(), &p2, None).await.status, 401);
        assert_eq!(get(sim.addr(), &p2, SVC).await.status, 200);

        let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [504, 504, 200, 200, 200, 200, 200, 200, 200, 401, 200]
        );
        assert_eq!(events.recv().await.unwrap().status, 504);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn concurrent_requests_are_counted_and_faults_taken_exactly() {
        let sim = start(small()).await;
        let mut events = sim.subscribe();
        // Five requests held at once, then a burst of 429s that all arrived before the first
        // was answered.
        let hold = Hold::new();
        sim.inject(Fault {
            inventory: Some(Inventory::Services),
            times: Some(5),
            ..Fault::new(FaultKind::Held {
                hold: hold.clone(),
                then: Box::new(FaultKind::Status {
                    code: 429,
                    retry_after: Some("1".into()),
                }),
            })
        });
        let addr = sim.addr();
        let requests: Vec<_> = (1..=5)
            .map(|page| {
                let target = path(&sim, Inventory::Services, &format!("page={page}"));
                tokio::spawn(async move { get(addr, &target, SVC).await })
            })
            .collect();
        hold.arrived(5).await;
        assert_eq!(sim.in_progress(Api::Tmf638), 5);
        assert_eq!(sim.in_progress(Api::Tmf639), 0);
        // Another API's request is counted apart.
        let r = get(sim.addr(), &path(&sim, Inventory::Resources, "page=1"), RES).await;
        assert_eq!(r.status, 200);
        assert_eq!(sim.requests()[0].concurrent, 1);
        hold.release();
        for r in requests {
            let r = r.await.unwrap();
            assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
        }
        assert_eq!(sim.max_concurrent(Api::Tmf638), 5);
        assert_eq!(sim.max_concurrent(Api::Tmf639), 1);
        assert_eq!(sim.in_progress(Api::Tmf638), 0);
        let mut concurrent: Vec<usize> = sim
            .requests()
            .iter()
            .filter(|r| r.inventory == Some(Inventory::Services))
            .map(|r| r.concurrent)
            .collect();
        concurrent.sort_unstable();
        assert_eq!(concurrent, [1, 2, 3, 4, 5]);
        for r in sim.requests() {
            assert!(r.answered >= r.received);
        }

        // Three 503s among eight requests that arrive together: exactly three are faulted, and
        // the log and the subscription each see every request once.
        sim.reset_max_concurrent();
        assert_eq!(sim.max_concurrent(Api::Tmf638), 0);
        sim.inject(Fault {
            inventory: Some(Inventory::Carriers),
            times: Some(3),
            ..Fault::new(FaultKind::Status {
                code: 503,
                retry_after: None,
            })
        });
        let requests: Vec<_> = (1..=8)
            .map(|_| {
                let target = path(&sim, Inventory::Carriers, "page=1");
                tokio::spawn(async move { get(addr, &target, SVC).await.status })
            })
            .collect();
        let mut statuses = Vec::new();
        for r in requests {
            statuses.push(r.await.unwrap());
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 200, 200, 200, 200, 503, 503, 503]);
        let log = sim.requests();
        assert_eq!(log.len(), 5 + 1 + 8);
        let mut seen = Vec::new();
        while let Ok(r) = events.try_recv() {
            seen.push(r);
        }
        assert_eq!(seen, log);
        assert!((1..=8).contains(&sim.max_concurrent(Api::Tmf638)));
        sim.shutdown().await;
    }

    fn item_path(sim: &Simulator, api: Api, id: &str) -> String {
        match api {
            Api::Tmf638 => format!("{}/service/{id}", sim.config().base638),
            Api::Tmf639 => format!("{}/resource/{id}", sim.config().base639),
        }
    }

    /// The key of each item, as the documented rules read it (`None`: no key).
    fn keys(inv: Inventory, items: &[Value]) -> Vec<Option<String>> {
        items
            .iter()
            .map(|i| data::tests::reference_key(inv, i).map(str::to_owned))
            .collect()
    }

    #[tokio::test]
    async fn total_headers_can_be_left_out() {
        let sim = start(SimConfig {
            total_header: false,
            ..small()
        })
        .await;
        let r = get(sim.addr(), &path(&sim, Inventory::Services, "page=1"), SVC).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json().as_array().unwrap().len(), 40);
        assert_eq!(r.header("x-total-count"), None);
        assert_eq!(r.header("x-result-count"), None);
        assert!(!format!("{:?}", sim.config()).contains("svc-pass"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_short_page_of_zero_is_an_empty_page_mid_listing() {
        let sim = start(small()).await;
        sim.inject(Fault {
            inventory: Some(Inventory::Services),
            page: Some(2),
            times: Some(1),
            ..Fault::new(FaultKind::Short(0))
        });
        let p2 = path(&sim, Inventory::Services, "page=2");
        let r = get(sim.addr(), &p2, SVC).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!([]));
        assert_eq!(r.header("x-total-count"), Some("80"));
        assert_eq!(r.header("x-result-count"), Some("0"));
        let r = get(sim.addr(), &p2, SVC).await;
        assert_eq!(
            r.json().as_array().unwrap()[..],
            sim.items(Inventory::Services)[40..80]
        );
        let items: Vec<usize> = sim.requests().iter().map(|r| r.items).collect();
        assert_eq!(items, [0, 40]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn single_items_are_found_by_id_or_key() {
        let sim = start(small()).await;
        let services = sim.items(Inventory::Services);
        let carriers = sim.items(Inventory::Carriers);
        let resources = sim.items(Inventory::Resources);
        let svc_keys = keys(Inventory::Services, &services);
        // A v5 service: its key is only in `externalIdentifier`.
        let v5 = (0..services.len())
            .find(|&i| svc_keys[i].is_some() && services[i].get("externalId").is_none())
            .unwrap();
        let v5_key = svc_keys[v5].clone().unwrap();
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf638, &v5_key), SVC).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), services[v5]);
        assert_eq!(r.header("content-type"), Some("application/json"));
        // By the top-level `id`, and compact.
        let id = services[3]["id"].as_str().unwrap();
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf638, id), SVC).await;
        assert_eq!((r.status, r.json()), (200, services[3].clone()));
        assert!(!r.body.contains(&b'\n'));
        // A carrier through the same path; a resource by its key.
        let car_key = keys(Inventory::Carriers, &carriers)
            .into_iter()
            .flatten()
            .next()
            .unwrap();
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf638, &car_key), SVC).await;
        let first_carrier = carriers
            .iter()
            .find(|c| data::tests::reference_key(Inventory::Carriers, c) == Some(&car_key))
            .unwrap();
        assert_eq!(&r.json(), first_carrier);
        let res_key = keys(Inventory::Resources, &resources)[1].clone().unwrap();
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf639, &res_key), RES).await;
        assert_eq!(r.json(), resources[1]);
        // Unknown: a JSON 404. Credentials are checked first, per API.
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf639, "nope"), RES).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.json(), json!({"error": "not found"}));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf639, &res_key), SVC).await;
        assert_eq!(r.status, 401);
        // A resource is not a service.
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf638, &res_key), SVC).await;
        assert_eq!(r.status, 404);
        assert_eq!(
            get(
                sim.addr(),
                &format!("{}/a/b", item_path(&sim, Api::Tmf638, "x")),
                SVC
            )
            .await
            .status,
            404
        );

        let log: Vec<_> = sim.requests();
        let summary: Vec<_> = log
            .iter()
            .map(|r| (r.inventory, r.page, r.item.as_deref(), r.status, r.items))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    Some(Inventory::Services),
                    None,
                    Some(v5_key.as_str()),
                    200,
                    1
                ),
                (Some(Inventory::Services), None, Some(id), 200, 1),
                (
                    Some(Inventory::Carriers),
                    None,
                    Some(car_key.as_str()),
                    200,
                    1
                ),
                (
                    Some(Inventory::Resources),
                    None,
                    Some(res_key.as_str()),
                    200,
                    1
                ),
                (Some(Inventory::Resources), None, Some("nope"), 404, 0),
                (None, None, None, 401, 0),
                (
                    Some(Inventory::Services),
                    None,
                    Some(res_key.as_str()),
                    404,
                    0
                ),
                (None, None, None, 404, 0),
            ]
        );
        assert_eq!(log[0].concurrent, 1);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn crafted_items_are_found_by_their_key_percent_decoded_first_one_first() {
        let sim = start(SimConfig::empty()).await;
        sim.set_items(
            Inventory::Services,
            vec![
                json!({"externalId": "a/b c", "name": "first"}),
                json!({"externalId": "a/b c", "name": "second"}),
                json!({"id": "42", "name": "by id"}),
                json!(7),
            ],
        );
        sim.set_items(
            Inventory::Resources,
            vec![json!({"id": "r-1", "externalId": "x"})],
        );
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf638, "a%2Fb%20c"), SVC).await;
        assert_eq!(r.json()["name"], "first");
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf638, "42/"), SVC).await;
        assert_eq!(r.json()["name"], "by id");
        // Resources are keyed by `id` only.
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf639, "x"), RES).await;
        assert_eq!(r.status, 404);
        let r = get(sim.addr(), &item_path(&sim, Api::Tmf639, "r-1"), RES).await;
        assert_eq!(r.status, 200);
        assert_eq!(sim.requests()[0].item.as_deref(), Some("a/b c"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn only_faults_for_items_hit_item_gets() {
        let sim = start(SimConfig::empty()).await;
        sim.set_items(Inventory::Services, vec![json!({"externalId": "s"})]);
        sim.set_items(Inventory::Carriers, vec![json!({"externalId": "c"})]);
        sim.inject(Fault::new(FaultKind::Status {
            code: 503,
            retry_after: None,
        }));
        let s = item_path(&sim, Api::Tmf638, "s");
        let c = item_path(&sim, Api::Tmf638, "c");
        let nope = item_path(&sim, Api::Tmf639, "nope");
        assert_eq!(get(sim.addr(), &s, SVC).await.status, 200);
        sim.clear_faults();
        // Carriers only, after one passes; a missing resource is matched by its path.
        sim.inject(Fault {
            inventory: Some(Inventory::Carriers),
            items: true,
            skip: 1,
            times: Some(1),
            ..Fault::new(FaultKind::Malformed)
        });
        sim.inject(Fault {
            inventory: Some(Inventory::Resources),
            items: true,
            times: Some(1),
            ..Fault::new(FaultKind::Status {
                code: 500,
                retry_after: None,
            })
        });
        assert_eq!(get(sim.addr(), &s, SVC).await.status, 200);
        assert_eq!(
            get(sim.addr(), &c, SVC).await.json(),
            json!({"externalId": "c"})
        );
        let r = get(sim.addr(), &c, SVC).await;
        assert!(serde_json::from_slice::<Value>(&r.body).is_err());
        assert_eq!(get(sim.addr(), &c, SVC).await.status, 200);
        assert_eq!(get(sim.addr(), &nope, RES).await.status, 500);
        assert_eq!(get(sim.addr(), &nope, RES).await.status, 404);
        // An edit fault on an item GET: the item is gone by the time it is looked up.
        sim.inject(Fault {
            items: true,
            times: Some(1),
            ..Fault::new(FaultKind::Edit(Edit {
                delete: vec!["s".into()],
                ..Edit::default()
            }))
        });
        assert_eq!(get(sim.addr(), &s, SVC).await.status, 404);
        assert!(sim.items(Inventory::Services).is_empty());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_edit_fault_changes_the_data_just_before_its_page() {
        let sim = start(small()).await;
        let before = sim.items(Inventory::Services);
        let svc_keys = keys(Inventory::Services, &before);
        // The first keyed item of page 1 is deleted and one inserted in front, just before page
        // 2 of the second listing: that page starts one item later than it would have.
        let first = svc_keys.iter().flatten().next().unwrap().clone();
        let gone = svc_keys
            .iter()
            .filter(|k| k.as_ref() == Some(&first))
            .count();
        sim.inject(Fault {
            inventory: Some(Inventory::Services),
            page: Some(2),
            skip: 1,
            times: Some(1),
            ..Fault::new(FaultKind::Edit(Edit {
                delete: vec![first.clone()],
                insert: vec![(0, r#"{"externalId":"NEW-1","status":"Operational"}"#.into())],
                update: vec![],
            }))
        });
        let p2 = path(&sim, Inventory::Services, "page=2");
        let r = get(sim.addr(), &p2, SVC).await;
        assert_eq!(r.json().as_array().unwrap()[..], before[40..80]);
        let r = get(sim.addr(), &p2, SVC).await;
        let after = sim.items(Inventory::Services);
        assert_eq!(after.len(), before.len() + 1 - gone);
        assert_eq!(after[0]["externalId"], "NEW-1");
        assert_eq!(r.json().as_array().unwrap()[..], after[40..80]);
        assert_eq!(
            r.header("x-total-count"),
            Some(after.len().to_string().as_str())
        );
        assert!(sim.try_facts(Inventory::Services).is_none());
        let r = get(sim.addr(), &p2, SVC).await;
        assert_eq!(r.json().as_array().unwrap()[..], after[40..80]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn edits_between_polls_keep_generated_facts_and_can_resort() {
        let sim = start(SimConfig {
            resort_on_update: true,
            ..small()
        })
        .await;
        for inv in Inventory::ALL {
            let before = sim.items(inv);
            let k = keys(inv, &before);
            let (a, b) = (k[1].clone().unwrap(), k[2].clone().unwrap());
            sim.edit(
                inv,
                Edit {
                    delete: vec![a.clone(), "no-such-key".into()],
                    update: vec![b.clone()],
                    ..Edit::default()
                },
            );
            let after = sim.items(inv);
            let after_keys = keys(inv, &after);
            assert!(!after_keys.contains(&Some(a)), "{inv}");
            // Updated: renamed, stamped now and moved to the end.
            let last = after.last().unwrap();
            assert_eq!(after_keys.last().unwrap().as_deref(), Some(b.as_str()));
            assert!(last["name"].as_str().unwrap().ends_with(" #rev1"), "{last}");
            assert_eq!(
                sim.facts(inv),
                data::tests::reference_facts(inv, &after),
                "{inv}"
            );
        }
        // The shorthand, on a crafted dataset keyed by `externalId`.
        sim.set_items(
            Inventory::Carriers,
            vec![
                json!({"externalId": "x", "name": "X", "lastUpdateDate": "2020-01-01T00:00:00Z"}),
                json!({"externalId": "y", "name": "Y"}),
            ],
        );
        sim.update_items(Inventory::Carriers, &["x"]);
        let items = sim.items(Inventory::Carriers);
        assert_eq!(items[0]["externalId"], "y");
        assert_eq!(items[1]["name"], "X #rev1");
        let stamped = data::parse_ts(items[1]["lastUpdateDate"].as_str().unwrap()).unwrap();
        assert!(chrono::Utc::now().timestamp_millis() - stamped < 60_000);
        assert!(items[1].get("lastUpdate").is_none());
        sim.shutdown().await;
    }

    #[tokio::test]
    #[should_panic(expected = "not a JSON object")]
    async fn an_edit_inserting_something_else_than_an_object_panics() {
        let sim = start(SimConfig::empty()).await;
        sim.edit(
            Inventory::Resources,
            Edit {
                insert: vec![(0, "[1]".into())],
                ..Edit::default()
            },
        );
    }

    #[tokio::test]
    async fn dialect_is_configurable_and_pages_can_be_wrapped() {
        let sim = start(SimConfig {
            page_param: "pageNumber".into(),
            first_page: 0,
            size_param: "limit".into(),
            wrap: Some("result".into()),
            base639: "/api/now/tmf639".into(),
            ..small()
        })
        .await;
        let r = get(
            sim.addr(),
            "/api/now/tmf639/resource?pageNumber=1&limit=10",
            RES,
        )
        .await;
        let v = r.json();
        assert_eq!(
            v["result"].as_array().unwrap()[..],
            sim.items(Inventory::Resources)[10..20]
        );
        let r = get(
            sim.addr(),
            "/api/now/tmf639/resource?pageNumber=9&limit=10",
            RES,
        )
        .await;
        assert_eq!(r.json(), json!({"result": []}));
        assert_eq!(
            sim.tmf639_url(),
            format!("http://{}/api/now/tmf639", sim.addr())
        );
        sim.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn thread_sim_serves_a_paused_runtime_and_latency_applies() {
        let sim = Simulator::start_on_thread(SimConfig {
            latency: Duration::from_millis(20),
            ..small()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let r = get(sim.addr(), &path(&sim, Inventory::Services, "page=1"), SVC).await;
        assert_eq!(r.status, 200);
        assert!(started.elapsed() >= Duration::from_millis(20));
        sim.mutate(1);
        assert_eq!(
            sim.facts(Inventory::Services),
            data::tests::reference_facts(Inventory::Services, &sim.items(Inventory::Services))
        );
        sim.shutdown().await;
        // A dropped simulator does not hang either.
        drop(Simulator::start_on_thread(SimConfig::empty()).unwrap());
        drop(start(SimConfig::empty()).await);
    }

    #[tokio::test]
    async fn run_serves_until_the_shutdown_signal_and_a_busy_address_is_an_error() {
        let (tx, rx) = oneshot::channel::<()>();
        let config = SimConfig {
            services: 3,
            ..SimConfig::empty()
        };
        let fault = Fault::parse_cli("services:3:504:1000").unwrap();
        let running = tokio::spawn(run(
            config.clone(),
            "127.0.0.1:0".parse().unwrap(),
            vec![fault],
            Duration::from_secs(1),
            async move {
                let _ = rx.await;
            },
        ));
        tx.send(()).unwrap();
        running.await.unwrap().unwrap();
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = busy.local_addr().unwrap();
        assert!(
            run(config, taken, vec![], Duration::ZERO, async {})
                .await
                .is_err()
        );
    }
}

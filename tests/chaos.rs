//! The leader/standby pair under chaos, against a real `nats-server` (Debian's package, as in
//! tests/nats.rs; skipped with a note when it is missing, unless `CI` is set): the server
//! killed and restarted while a leader is in the middle of a full pass; the network between
//! the leader and NATS cut (connections reset, or bytes held as in a partition) past its
//! lease, then healed; the leader frozen (SIGSTOP) past its lease while the standby takes over,
//! then thawed. The upstream (one simulator both instances poll) changes throughout.
//!
//! After each: one leader; the buckets equal the leader's cache item for item (nothing lost);
//! the standby serves the same rows; the leader's rows equal a fresh full pass of the
//! simulator. Throughout: the instances' `/api/v1/status` is sampled, and at no sample do two
//! instances both claim a live lease (a stale belief after the term ran out is what the
//! design permits: the fence closes by the clock); what reached the change stream shows who
//! wrote when (`Ses-Instance`, `Ses-Lease-Revision`).

mod common;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use common::nats::{
    Daemon, LEASE, NatsServer, eventually, ha_command, header, http_bounded, mirror_equals_api,
    same_data, same_items, stream_messages,
};
use serde_json::Value;
use ses_inventory::Inventory;
use ses_inventory::cache::Cache;
use ses_inventory::model::status::Outcome;
use ses_inventory_sim::{Fault, FaultKind, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

// ----------------------------------------------------------------------------------------------
// A TCP proxy on loopback whose link the test cuts and heals

/// What the proxy does with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// Forwards both ways.
    Open,
    /// Resets every connection (RST) and every new one at once: the peer knows at once.
    Reset,
    /// Reads nothing either way and forwards nothing, connections kept: the bytes wait in the
    /// sockets' buffers, as in a partition that TCP rides out, and arrive when it heals.
    Hold,
}

struct Proxy {
    addr: SocketAddr,
    link: watch::Sender<Link>,
    /// Bytes forwarded from the clients to the target.
    sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (link, rx) = watch::channel(Link::Open);
        let sent = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(Proxy::accept(listener, target, rx, sent.clone()));
        Proxy {
            addr,
            link,
            sent,
            task,
        }
    }

    fn set(&self, link: Link) {
        self.link.send_replace(link);
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    async fn accept(
        listener: TcpListener,
        target: SocketAddr,
        link: watch::Receiver<Link>,
        sent: Arc<AtomicU64>,
    ) {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let mut link = link.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                let _ = client.set_zero_linger();
                // A new connection while held waits; while reset, it is reset.
                let Ok(now) = link.wait_for(|l| *l != Link::Hold).await.map(|l| *l) else {
                    return;
                };
                if now == Link::Reset {
                    return;
                }
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = server.set_zero_linger();
                tokio::select! {
                    () = pump(&client, &server, link.clone(), Some(&*sent)) => {}
                    () = pump(&server, &client, link, None) => {}
                }
                // Both dropped here with a zero linger: reset.
            });
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.link.send_replace(Link::Reset);
    }
}

/// Forwards `from` to `to` while the link is open; returns when either end closes or the
/// link is reset.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    mut link: watch::Receiver<Link>,
    count: Option<&AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(now) = link.wait_for(|l| *l != Link::Hold).await.map(|l| *l) else {
            return;
        };
        if now == Link::Reset {
            return;
        }
        tokio::select! {
            ready = from.readable() => {
                if ready.is_err() {
                    return;
                }
                let n = match from.try_read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return,
                };
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    if to.writable().await.is_err() {
                        return;
                    }
                    match to.try_write(rest) {
                        Ok(w) => rest = &rest[w..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return,
                    }
                }
                if let Some(count) = count {
                    count.fetch_add(n as u64, Ordering::SeqCst);
                }
            }
            _ = link.changed() => {}
        }
    }
}

// ----------------------------------------------------------------------------------------------
// The daemons (the binary, as tests/nats.rs runs the pair: a frozen process must be its own)

impl Daemon {
    /// An instance with `ha.enabled` and a short lease, polling `sim` (through `upstream` when
    /// given: a proxy in front of the simulator) and writing to NATS at `nats_url`; each
    /// request to it is given up after 10 s.
    fn start(
        sim: &Simulator,
        sc: &SimConfig,
        nats_url: &str,
        name: &str,
        upstream: Option<SocketAddr>,
    ) -> Daemon {
        let mut c = ha_command(sim, sc, nats_url, name);
        if let Some(addr) = upstream {
            c.env(
                "SES_INVENTORY__TMF638__ENDPOINT",
                format!("http://{addr}{}", sc.base638),
            )
            .env(
                "SES_INVENTORY__TMF639__ENDPOINT",
                format!("http://{addr}{}", sc.base639),
            );
        }
        Daemon::spawn(name, c).with_http(http_bounded)
    }

    /// Asks for a poll of every inventory (`full`: a full pass) and waits (at most 60 s) until
    /// each has finished one after the request.
    async fn poll_all(&self, full: bool) {
        let which = if full { "last_full" } else { "last_refresh" };
        let finished = |status: &Value, inv: Inventory| {
            status["inventories"][inv.as_str()][which]["finished"].clone()
        };
        let before = self.get("/api/v1/status").await;
        // A leader that has just taken over answers 503 until its pollers run.
        eventually(20, &format!("{} to take a refresh", self.name), || async {
            match self.request_poll(&format!("full={full}")).await {
                202 => Ok(()),
                code => Err(format!("{code}")),
            }
        })
        .await;
        for inv in Inventory::ALL {
            eventually(60, &format!("a {which} poll of {inv}"), || async {
                let now = self.get("/api/v1/status").await;
                (finished(&now, inv) != finished(&before, inv))
                    .then_some(())
                    .ok_or_else(|| "not yet".to_owned())
            })
            .await;
        }
    }
}

// ----------------------------------------------------------------------------------------------
// What the copies hold

/// What a fresh full pass of the simulator caches, as read-API rows: the upstream's data as
/// the daemon's own code reads it.
async fn reference(sim: &Simulator, sc: &SimConfig) -> Vec<BTreeMap<String, Value>> {
    let cfg = common::config(sim, sc);
    let cache = Cache::new();
    let mut out = Vec::new();
    for inv in Inventory::ALL {
        let report = common::poll(&cfg, inv, &cache, common::FULL).await;
        assert_eq!(report.outcome, Outcome::Complete, "{inv}: {report:?}");
        let rows = cache
            .snapshot(inv)
            .iter()
            .map(|item| {
                let mut row = serde_json::Map::new();
                row.insert("id".into(), Value::String(item.key.to_string()));
                for (i, column) in ses_inventory::model::row::Row::columns(inv)
                    .iter()
                    .enumerate()
                {
                    row.insert(column.name.into(), item.cell(i).to_json());
                }
                (item.key.to_string(), Value::Object(row))
            })
            .collect();
        out.push(rows);
    }
    out
}

/// After the chaos (the upstream no longer changing): the leader's rows equal a fresh full
/// pass of the simulator (full passes are asked for until they do: a deletion needs two
/// witnesses), the buckets hold exactly the leader's rows, and the standby lists the same.
async fn settle(
    sim: &Simulator,
    sc: &SimConfig,
    js: &jetstream::Context,
    leader: &Daemon,
    standby: &Daemon,
) {
    sim.clear_faults();
    let started = std::time::Instant::now();
    let truth = reference(sim, sc).await;
    let mut why = String::new();
    let mut passes = 0;
    for _ in 0..6 {
        why.clear();
        for (inv, rows) in Inventory::ALL.into_iter().zip(&truth) {
            if let Err(e) = same_items(
                &format!("{inv}: the simulator against {}", leader.name),
                rows,
                &leader.rows(inv).await,
            ) {
                why = e;
                break;
            }
        }
        if why.is_empty() {
            break;
        }
        leader.poll_all(true).await;
        passes += 1;
    }
    assert!(why.is_empty(), "the leader's copy: {why}");
    let equal = started.elapsed();
    eventually(30, "the mirror level with the leader's cache", || {
        mirror_equals_api(js, leader)
    })
    .await;
    let mirrored = started.elapsed();
    eventually(30, "the standby's copy equal to the leader's", || {
        same_data(leader, standby)
    })
    .await;
    eprintln!(
        "settled: {} equal to the simulator after {passes} full passes ({equal:?}), the mirror \
         after {mirrored:?}, {} after {:?}",
        leader.name,
        standby.name,
        started.elapsed()
    );
}

/// The upstream changes: of each inventory about 2% updated, 1% deleted, 1% added.
fn change(sim: &Simulator, step: u64) {
    sim.mutate(step);
}

/// Every page answered `delay` late (a slow gateway), until cleared.
fn slow_pages(sim: &Simulator, delay: Duration) {
    sim.inject(Fault::new(FaultKind::Delay(delay)));
}

/// Waits until the simulator has answered a page of a full pass past the `since`-th request:
/// the pass is under way.
async fn full_pass_under_way(sim: &Simulator, since: usize) {
    eventually(30, "a full pass under way", || async {
        let under_way = sim.requests()[since..]
            .iter()
            .any(|r| r.inventory.is_some() && r.updated_days_ago.is_none());
        under_way.then_some(()).ok_or_else(|| "not yet".to_owned())
    })
    .await;
}

// ----------------------------------------------------------------------------------------------
// Who claimed to lead, and who wrote

/// Both instances' `ha` as their status answered it, at one moment.
struct Sample {
    at: DateTime<Utc>,
    ha: [Option<Value>; 2],
}

/// Samples both instances' `/api/v1/status` every 100 ms (both at once; an instance that does
/// not answer within a second, frozen, counts as no answer) until the sender is set.
fn sample_roles(apis: [String; 2]) -> (watch::Sender<bool>, tokio::task::JoinHandle<Vec<Sample>>) {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let ha = |api: &str| {
            let request = client.get(format!("{api}/api/v1/status")).send();
            async move {
                let body: Value = request.await.ok()?.json().await.ok()?;
                Some(body["ha"].clone())
            }
        };
        let mut samples = Vec::new();
        while !*stopped.borrow_and_update() {
            let (a, b) = tokio::join!(ha(&apis[0]), ha(&apis[1]));
            samples.push(Sample {
                at: Utc::now(),
                ha: [a, b],
            });
            tokio::select! {
                _ = stopped.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        samples
    });
    (stop, task)
}

fn lease_expires(ha: &Value) -> Option<DateTime<Utc>> {
    ha["lease_expires"].as_str()?.parse().ok()
}

/// What the role samples showed: samples both instances answered, samples where a leader
/// whose term had run out still said `leader`, answers of a standby naming itself the holder.
struct RoleCounts {
    answered: usize,
    stale_leaders: usize,
    orphaned_leases: usize,
}

impl std::fmt::Display for RoleCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} role samples, {} with a stale leader, {} with an orphaned lease",
            self.answered, self.stale_leaders, self.orphaned_leases
        )
    }
}

/// What the role samples show. At no sample do both instances claim the lead with lease
/// terms that overlap: when both say `leader`, the one whose lease ends first must have
/// ended it (by its own account, `lease_expires`, give or take `SLACK`) before the other's
/// term began (its `lease_expires` less a lease, at the latest): a stale belief of a leader
/// whose term ran out, which the design permits (its writes are fenced by the clock, not by
/// the role it reports). With `deposed`: once that instance has stood down, it never claims
/// the lead again.
fn check_roles(samples: &[Sample], names: [&str; 2], deposed: Option<usize>) -> RoleCounts {
    const SLACK: chrono::Duration = chrono::Duration::milliseconds(500);
    let lease = chrono::Duration::seconds(LEASE as i64);
    let mut stale = 0;
    let mut stood_down = false;
    let mut answered = 0;
    let mut orphaned = 0;
    for s in samples {
        let leads = |i: usize| s.ha[i].as_ref().is_some_and(|h| h["role"] == "leader");
        if s.ha.iter().all(Option::is_some) {
            answered += 1;
        }
        // A lease entry naming an instance that does not know it holds it (a create or
        // renewal sent late): nobody leads until it runs out.
        for (i, name) in names.iter().enumerate() {
            if s.ha[i]
                .as_ref()
                .is_some_and(|h| h["role"] == "standby" && h["leader"] == *name)
            {
                orphaned += 1;
            }
        }
        if leads(0) && leads(1) {
            let (a, b) = (s.ha[0].as_ref().unwrap(), s.ha[1].as_ref().unwrap());
            let (ea, eb) = (lease_expires(a), lease_expires(b));
            let (Some(ea), Some(eb)) = (ea, eb) else {
                panic!("at {}: two leaders, a lease without its end: {a} {b}", s.at);
            };
            let (first, second) = if ea <= eb { (ea, eb) } else { (eb, ea) };
            assert!(
                first <= second - lease + SLACK,
                "at {}: {} and {} both lead with overlapping terms: {a} {b}",
                s.at,
                names[0],
                names[1]
            );
            stale += 1;
        }
        if let Some(d) = deposed {
            match s.ha[d]
                .as_ref()
                .map(|h| h["role"].as_str().unwrap_or("").to_owned())
            {
                Some(role) if role == "standby" => stood_down = true,
                Some(role) if role == "leader" => assert!(
                    !stood_down,
                    "at {}: {} leads again after standing down",
                    s.at, names[d]
                ),
                _ => {}
            }
        }
    }
    assert!(answered > 10, "{answered} samples answered by both");
    RoleCounts {
        answered,
        stale_leaders: stale,
        orphaned_leases: orphaned,
    }
}

/// One message of the change stream: who wrote it, under which lease.
struct Written {
    sequence: u64,
    instance: String,
    revision: u64,
    subject: String,
    payload: Value,
}

/// Every message of the change stream, from the first.
async fn written(js: &jetstream::Context) -> Vec<Written> {
    stream_messages(js)
        .await
        .into_iter()
        .map(|m| {
            let instance = header(&m, "Ses-Instance").expect("Ses-Instance").to_owned();
            let revision = header(&m, "Ses-Lease-Revision")
                .and_then(|r| r.parse().ok())
                .unwrap_or_else(|| panic!("a message of {instance} without its lease revision"));
            Written {
                sequence: m.info().unwrap().stream_sequence,
                instance,
                revision,
                subject: m.subject.to_string(),
                payload: serde_json::from_slice(&m.payload).unwrap_or(Value::Null),
            }
        })
        .collect()
}

/// The messages of instances other than `leader` after `leader`'s first message.
fn after_first_of<'a>(messages: &'a [Written], leader: &str) -> Vec<&'a Written> {
    let first = messages
        .iter()
        .position(|m| m.instance == leader)
        .unwrap_or_else(|| panic!("nothing written by {leader}"));
    messages[first..]
        .iter()
        .filter(|m| m.instance != leader)
        .collect()
}

/// Lease revisions never go down in stream order: no message of an earlier term lands after
/// one of a later term.
fn in_lease_order(messages: &[Written]) -> Result<(), String> {
    for pair in messages.windows(2) {
        if pair[1].revision < pair[0].revision {
            return Err(format!(
                "message {} of {} (lease revision {}) after message {} of {} (lease revision \
                 {}): {}",
                pair[1].sequence,
                pair[1].instance,
                pair[1].revision,
                pair[0].sequence,
                pair[0].instance,
                pair[0].revision,
                pair[1].subject
            ));
        }
    }
    Ok(())
}

/// What a consumer of the change stream holds that drops every message whose lease revision
/// is below one it has already seen (as docs/scale-out.md suggests): per inventory, key →
/// last upserted body.
fn rebuild_by_lease(messages: &[Written]) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut highest = 0;
    for m in messages {
        if m.revision < highest {
            continue;
        }
        highest = m.revision;
        let parts: Vec<&str> = m.subject.split('.').collect();
        let items = out.entry(parts[2].to_owned()).or_default();
        let id = m.payload["id"].as_str().map(str::to_owned);
        match (parts[3], id) {
            ("upserted", Some(id)) => {
                items.insert(id, m.payload.clone());
            }
            ("removed", Some(id)) => {
                items.remove(&id);
            }
            _ => {}
        }
    }
    out
}

/// The consumer of [`rebuild_by_lease`] holds exactly the rows `leader` lists.
async fn stream_consumer_equals_api(
    js: &jetstream::Context,
    leader: &Daemon,
) -> Result<(), String> {
    let rebuilt = rebuild_by_lease(&written(js).await);
    for inv in Inventory::ALL {
        let empty = BTreeMap::new();
        let items = rebuilt.get(inv.as_str()).unwrap_or(&empty);
        same_items(
            &format!("{inv} from the stream"),
            items,
            &leader.rows(inv).await,
        )?;
    }
    Ok(())
}

/// Bytes the instance behind `upstream` sends the simulator stay at what they are for
/// `secs` seconds: it polls no more. Bounded: samples every 200 ms.
async fn polls_no_more(upstream: &Proxy, who: &str, secs: u64) {
    // A request in flight when the pollers were stopped is dropped with them: let it go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = upstream.sent();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(upstream.sent(), before, "{who} still polls the upstream");
    }
}

/// When the JSON log `logs` first says `message`.
fn log_time(logs: &str, message: &str) -> Option<DateTime<Utc>> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })?["timestamp"]
        .as_str()?
        .parse()
        .ok()
}

/// The simulator (the one upstream both instances poll) and a NATS server; `None` without
/// nats-server outside CI.
async fn setup() -> Option<(NatsServer, Simulator, SimConfig)> {
    let nats = NatsServer::start("chaos")?;
    let (sim, sc) = common::sim_with_passwords("p638", "p639").await;
    Some((nats, sim, sc))
}

/// Starts `a` (which becomes the leader, settled) and then `b` (the standby, ready, with the
/// same rows).
async fn pair(
    start_a: impl FnOnce() -> Daemon,
    start_b: impl FnOnce() -> Daemon,
) -> (Daemon, Daemon) {
    let a = start_a();
    a.wait_role("leader", 20).await;
    a.ready().await;
    a.settled().await;
    let b = start_b();
    b.wait_role("standby", 20).await;
    b.ready().await;
    eventually(30, "the same rows on both", || same_data(&a, &b)).await;
    (a, b)
}

// ----------------------------------------------------------------------------------------------
// The tests

/// NATS is killed while the leader is in the middle of a full pass (slow pages), the upstream
/// changes while it is away, and it comes back on the same port with the same store: once
/// shortly (within the lease), once past the lease (the pair elects anew).
#[tokio::test(flavor = "multi_thread")]
async fn nats_restarted_in_the_middle_of_a_full_pass_loses_nothing() {
    let Some((mut nats, sim, sc)) = setup().await else {
        return;
    };
    let url = nats.url();
    let (a, b) = pair(
        || Daemon::start(&sim, &sc, &url, "host-a", None),
        || Daemon::start(&sim, &sc, &url, "host-b", None),
    )
    .await;
    let (stop, sampler) = sample_roles([a.api.clone(), b.api.clone()]);
    let started = std::time::Instant::now();

    let mut step = 0;
    for outage in [Duration::from_millis(800), Duration::from_secs(LEASE + 2)] {
        let leader = if a.ha().await["role"] == "leader" {
            &a
        } else {
            &b
        };
        // A full pass of slow pages (each inventory lists 3 to 11 pages, 4 in flight).
        slow_pages(&sim, Duration::from_millis(600));
        step += 1;
        change(&sim, step);
        let since = sim.requests().len();
        assert_eq!(leader.request_poll("full=true").await, 202);
        full_pass_under_way(&sim, since).await;
        nats.stop();
        step += 1;
        change(&sim, step);
        tokio::time::sleep(outage).await;
        nats.restart();
        step += 1;
        change(&sim, step);

        // The dust settles: one leader, the other standing by behind it.
        let restarted = std::time::Instant::now();
        eventually(40, "one leader and one standby", || async {
            let (ha, hb) = (a.ha().await, b.ha().await);
            let roles = [ha["role"].as_str(), hb["role"].as_str()];
            let leader = match roles {
                [Some("leader"), Some("standby")] => "host-a",
                [Some("standby"), Some("leader")] => "host-b",
                _ => return Err(format!("{ha} {hb}")),
            };
            let standby = if leader == "host-a" { &hb } else { &ha };
            (standby["leader"] == leader)
                .then_some(())
                .ok_or(format!("{ha} {hb}"))
        })
        .await;
        let (leader, standby) = if a.ha().await["role"] == "leader" {
            (&a, &b)
        } else {
            (&b, &a)
        };
        eprintln!(
            "outage of {outage:?}: one leader {:?} after the restart",
            restarted.elapsed()
        );
        let js = nats.client().await;
        standby.ready().await;
        settle(&sim, &sc, &js, leader, standby).await;
        eprintln!(
            "outage of {outage:?}: {} leads ({:?} into the test)",
            leader.name,
            started.elapsed()
        );
    }

    stop.send_replace(true);
    let samples = sampler.await.unwrap();
    let roles = check_roles(&samples, ["host-a", "host-b"], None);
    eprintln!("{roles}");
    let js = nats.client().await;
    let messages = written(&js).await;
    in_lease_order(&messages).unwrap();
    let leader = if a.ha().await["role"] == "leader" {
        &a
    } else {
        &b
    };
    eventually(30, "a consumer of the stream", || {
        stream_consumer_equals_api(&js, leader)
    })
    .await;
}

/// The link between the leader and NATS is cut (`link`) past its lease, just as it applies a
/// refresh with changes for its mirror: the standby takes over and writes; the link heals.
/// The old leader stands down by its own clock, stops polling, never leads again, and then
/// follows the new leader's mirror; the mirror equals the new leader's cache.
///
/// Reset connections: nothing of the old term reaches the server after the takeover (the
/// client would send what it held while disconnected once it reconnects: the mirror refuses
/// to hand it anything then). Held bytes (a partition TCP rides out): what the old leader sent
/// within its term arrives after the takeover, as it would; it carries its older lease
/// revision, the server refuses its key-value writes over entries the new leader wrote since,
/// and a stream consumer that drops earlier leases holds exactly the new leader's rows.
async fn the_leader_cut_off_from_nats(link: Link) {
    let Some((nats, sim, sc)) = setup().await else {
        return;
    };
    let to_nats = Proxy::start(nats.addr()).await;
    let upstream_a = Proxy::start(sim.addr()).await;
    let url_a = format!("nats://{}", to_nats.addr);
    let url_b = nats.url();
    let (a, b) = pair(
        || Daemon::start(&sim, &sc, &url_a, "old-leader", Some(upstream_a.addr)),
        || Daemon::start(&sim, &sc, &url_b, "new-leader", None),
    )
    .await;
    let js = nats.client().await;
    let (stop, sampler) = sample_roles([a.api.clone(), b.api.clone()]);

    // The link goes while the leader has work: the upstream changed, a refresh asked for; it
    // still leads for up to a lease, and polls (a poll never waits for NATS).
    change(&sim, 1);
    let before = a.get("/api/v1/status").await;
    to_nats.set(link);
    assert_eq!(a.request_poll("full=false").await, 202);
    change(&sim, 2);
    // It applies that refresh, with changes for its mirror, before its term is over.
    let refreshes = |status: &Value| {
        Inventory::ALL.map(|inv| status["inventories"][inv.as_str()]["last_refresh"].clone())
    };
    let earlier = refreshes(&before);
    eventually(20, "the old leader's refresh", || async {
        let now = refreshes(&a.get("/api/v1/status").await);
        now.iter()
            .zip(&earlier)
            .all(|(now, earlier)| now["finished"] != earlier["finished"])
            .then_some(())
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;
    let applied = refreshes(&a.get("/api/v1/status").await);
    b.wait_role("leader", LEASE * 2 + 5).await;
    a.wait_role("standby", LEASE * 2 + 5).await;
    let lost = log_time(&a.logs(), "Leader lease lost").expect("the old leader's term ended");
    let changes: u64 = applied
        .iter()
        .map(|r| {
            ["added", "updated", "removed"]
                .map(|k| r[k].as_u64().unwrap())
                .iter()
                .sum::<u64>()
        })
        .sum();
    assert!(changes > 0, "{applied:?}");
    for report in &applied {
        let finished: DateTime<Utc> = report["finished"].as_str().unwrap().parse().unwrap();
        assert!(finished < lost, "applied after its term ({lost}): {report}");
    }
    polls_no_more(&upstream_a, "the old leader", 2).await;

    // The new leader carries on while the old one is still cut off: the upstream changes, it
    // polls, and what it writes is in the stream.
    change(&sim, 3);
    b.poll_all(false).await;
    eventually(20, "the new leader's writes in the stream", || async {
        let messages = written(&js).await;
        messages
            .iter()
            .any(|m| m.instance == "new-leader" && m.subject.ends_with(".poll"))
            .then_some(())
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;

    // The link heals: the old leader follows the new one.
    to_nats.set(Link::Open);
    change(&sim, 4);
    eventually(
        30,
        "the old leader standing by behind the new one",
        || async {
            let ha = a.ha().await;
            (ha["role"] == "standby" && ha["leader"] == "new-leader")
                .then_some(())
                .ok_or(format!("{ha}"))
        },
    )
    .await;
    settle(&sim, &sc, &js, &b, &a).await;
    polls_no_more(&upstream_a, "the old leader", 1).await;

    stop.send_replace(true);
    let samples = sampler.await.unwrap();
    let roles = check_roles(&samples, ["old-leader", "new-leader"], Some(0));
    let messages = written(&js).await;
    let late = after_first_of(&messages, "new-leader");
    eprintln!(
        "{link:?}: {roles}; {} messages of the old leader landed after the new leader's first",
        late.len()
    );
    let first_new = messages
        .iter()
        .find(|m| m.instance == "new-leader")
        .unwrap()
        .revision;
    for m in &late {
        // Whatever arrives late was sent in the old term: its revision says so.
        assert!(
            m.instance == "old-leader" && m.revision < first_new,
            "message {} of {} (lease revision {}) after the takeover (revision {first_new})",
            m.sequence,
            m.instance,
            m.revision
        );
    }
    if link == Link::Reset {
        // Nothing of the old term reaches the server once the connection is gone: the
        // client sends nothing it held while disconnected.
        assert!(
            late.is_empty(),
            "the old leader's writes landed after the takeover: {:?}",
            late.iter()
                .map(|m| (m.sequence, &m.subject))
                .collect::<Vec<_>>()
        );
        in_lease_order(&messages).unwrap();
    }
    // A consumer that drops messages of an earlier lease holds exactly the new leader's rows.
    eventually(30, "a consumer of the stream", || {
        stream_consumer_equals_api(&js, &b)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_whose_nats_connections_are_reset_stands_down_and_writes_nothing_late() {
    the_leader_cut_off_from_nats(Link::Reset).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_partitioned_from_nats_stands_down_and_what_it_sent_arrives_under_its_old_lease() {
    the_leader_cut_off_from_nats(Link::Hold).await;
}

/// Beyond tests/nats.rs's paused leader (its writes after the takeover refused, it stands
/// down): the upstream changes while it is frozen and after, the new leader writes, and
/// afterwards the thawed one's copy equals the new leader's, the mirror lost nothing, the
/// old leader never leads again and polls no more, and a stream consumer that drops earlier
/// leases holds the inventory.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_leader_thawed_after_a_takeover_ends_up_with_the_same_copy() {
    let Some((nats, sim, sc)) = setup().await else {
        return;
    };
    let upstream_a = Proxy::start(sim.addr()).await;
    let url = nats.url();
    let (a, b) = pair(
        || Daemon::start(&sim, &sc, &url, "old-leader", Some(upstream_a.addr)),
        || Daemon::start(&sim, &sc, &url, "new-leader", None),
    )
    .await;
    let js = nats.client().await;
    let (stop, sampler) = sample_roles([a.api.clone(), b.api.clone()]);

    // Frozen in the middle of a full pass of slow pages, the upstream changing meanwhile.
    slow_pages(&sim, Duration::from_millis(800));
    change(&sim, 1);
    let since = sim.requests().len();
    assert_eq!(a.request_poll("full=true").await, 202);
    full_pass_under_way(&sim, since).await;
    a.signal("-STOP");
    change(&sim, 2);
    b.wait_role("leader", LEASE * 2 + 5).await;
    sim.clear_faults();
    change(&sim, 3);
    b.poll_all(false).await;
    change(&sim, 4);
    b.poll_all(false).await;

    // Thawed: it stands down, polls no more, and follows the new leader.
    a.signal("-CONT");
    a.wait_role("standby", 10).await;
    polls_no_more(&upstream_a, "the old leader", 2).await;
    change(&sim, 5);
    eventually(
        30,
        "the old leader standing by behind the new one",
        || async {
            let ha = a.ha().await;
            (ha["leader"] == "new-leader")
                .then_some(())
                .ok_or(format!("{ha}"))
        },
    )
    .await;
    settle(&sim, &sc, &js, &b, &a).await;

    stop.send_replace(true);
    let samples = sampler.await.unwrap();
    let roles = check_roles(&samples, ["old-leader", "new-leader"], Some(0));
    let messages = written(&js).await;
    eprintln!("{roles}");
    // A paused process sends nothing once it wakes: nothing of its term after the new one's.
    let late = after_first_of(&messages, "new-leader");
    assert!(
        late.is_empty(),
        "the old leader wrote after the takeover: {:?}",
        late.iter()
            .map(|m| (m.sequence, &m.instance, &m.subject))
            .collect::<Vec<_>>()
    );
    in_lease_order(&messages).unwrap();
    eventually(30, "a consumer of the stream", || {
        stream_consumer_equals_api(&js, &b)
    })
    .await;
}

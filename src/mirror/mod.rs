//! Beyond one machine: the inventory mirrored to NATS JetStream (`[nats]`).
//!
//! After each applied poll the changed and removed items are written to the key-value buckets
//! `ses_inventory_<inventory>` ([`kv`]) and published on the change stream `SES_INVENTORY`
//! ([`stream`]), pipelined ([`pipeline`]). The pollers never wait for NATS: they hand their
//! applied polls to the journal as always; a forwarding task passes each one on to the store
//! and offers a copy to the mirror on a short queue. A full queue, a failed write or an
//! unreachable server puts the mirror *behind*: it drops what is queued and, once NATS answers,
//! compares each bucket with the cache and writes the difference (a *re-sync*), so it never
//! needs the polls it missed.
//!
//! With `ha.enabled`, the writer writes only while this instance holds the leader lease
//! ([`lease`]), and the supervisor ([`ha`]) runs standby terms (the cache follows the buckets,
//! [`follow`]) and leader terms (the pollers run).
//!
//! Files: `conn` (connecting, buckets, stream), `kv` (keys, values, reading and following a
//! bucket), `stream` (subjects, headers, bodies), `pipeline` (publishes in flight, fenced),
//! `lease` (the elector, the fence), `follow` (a standby's cache, the shared sync state), `ha`
//! (the supervisor, the tee), `mod` (the writer task).

mod change;
pub mod conn;
pub mod follow;
pub mod ha;
pub mod kv;
pub mod lease;
pub mod pipeline;
pub mod stream;

use crate::cache::Cache;
use crate::config::Config;
use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::status::Outcome;
use crate::sync::Journal;
use crate::sync::daemon::Pollers;
use crate::telemetry::events;
use crate::time::backoff::Backoff;
use async_nats::HeaderMap;
use async_nats::jetstream;
use change::Change;
use chrono::Utc;
use lease::HaStatus;
use pipeline::{Pipeline, WriteError};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Applied polls queued for the mirror before it counts as behind.
const QUEUE: usize = 64;

/// How long [`Mirror::finish`] waits for queued writes at shutdown.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The running mirror.
pub(crate) struct Mirror {
    tx: mpsc::Sender<Change>,
    lagged: Arc<AtomicBool>,
    task: JoinHandle<()>,
    ha: watch::Receiver<HaStatus>,
    stop: watch::Sender<bool>,
    /// Resolves (with an error) once the leader/standby supervisor has stopped.
    supervisor: Option<oneshot::Receiver<()>>,
}

/// What a mirror with `ha.enabled` needs to run the pollers itself during its leader terms.
pub(crate) struct HaParts {
    /// The pollers, started for each leader term and stopped at its end.
    pub pollers: Pollers,
    /// The store's journal, when there is a store.
    pub store: Option<Journal>,
}

impl Mirror {
    /// Starts the mirror of `cache` when `nats.url` is set; with `ha` (`ha.enabled`) also the
    /// elector and the leader/standby supervisor, which then start and stop the pollers. Fails
    /// only on a configuration the client cannot use (an unreadable credentials file); NATS
    /// being down is not an error.
    pub fn start(
        cfg: Arc<Config>,
        cache: Cache,
        ha_parts: Option<HaParts>,
    ) -> Result<Option<Mirror>, conn::SetupError> {
        if !cfg.nats.enabled() {
            return Ok(None);
        }
        let instance = cfg.ha.instance_name();
        let connector = conn::Connector::new(&cfg.nats, &instance)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let lagged = Arc::new(AtomicBool::new(false));
        let (stop, stop_rx) = watch::channel(false);
        let (ha_tx, ha) = watch::channel(if ha_parts.is_some() {
            HaStatus::standby_unknown()
        } else {
            HaStatus::off()
        });
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let (term_tx, term_rx) = watch::channel(0u64);
        let terms = ha_parts.map(|parts| ha::Terms {
            cfg: cfg.clone(),
            cache: cache.clone(),
            store: parts.store,
            pollers: parts.pollers,
            mirror: tx.clone(),
            lagged: lagged.clone(),
            term: term_tx,
        });
        let supervisor = terms.is_some().then_some(done_rx);
        let mut writer = Writer {
            cfg: cfg.clone(),
            cache,
            instance: instance.clone(),
            rx,
            lagged: lagged.clone(),
            ready: false,
            fence: None,
            term: term_rx,
            my_term: 0,
            revisions: None,
        };
        let task = tokio::spawn(async move {
            let js = match connector.connect().await {
                Ok(js) => js,
                Err(e) => {
                    // Only a client that cannot even start ends here; polling goes on.
                    events::MirrorBehind {
                        behind: true,
                        error: Some(&e),
                        retry_in: Duration::ZERO,
                    }
                    .emit();
                    return;
                }
            };
            if let Some(terms) = terms {
                let lease = Duration::from_secs(cfg.ha.lease_seconds);
                let elector =
                    lease::Elector::start(js.clone(), instance, lease, cfg.nats.replicas, ha_tx);
                writer.fence = Some(elector.fence());
                writer.revisions = Some(Default::default());
                let status = elector.watch();
                let supervised = js.clone();
                tokio::spawn(async move {
                    ha::supervise(supervised, terms, status, stop_rx).await;
                    drop(done_tx);
                });
                writer.run(js).await;
                // Stopping: the pollers are gone and their last polls written.
                elector.release().await;
            } else {
                drop(done_tx);
                writer.run(js).await;
            }
        });
        Ok(Some(Mirror {
            tx,
            lagged,
            task,
            ha,
            stop,
            supervisor,
        }))
    }

    /// This instance's role, as the elector sees it (`off` without `ha.enabled`).
    pub fn ha(&self) -> watch::Receiver<HaStatus> {
        self.ha.clone()
    }

    /// A journal for the pollers that passes every applied poll on to `next` (the store's) and
    /// offers a copy to the mirror without ever waiting for it.
    pub(crate) fn tee(&self, next: Option<Journal>) -> Journal {
        change::tee(self.tx.clone(), self.lagged.clone(), next)
    }

    /// Stops the pollers of a leader term (with `ha.enabled`), lets the mirror write what is
    /// queued (for a few seconds at most), then stops it. Without `ha.enabled`, call after the
    /// pollers have stopped.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(done) = self.supervisor.take() {
            let _ = tokio::time::timeout(FINISH_TIMEOUT * 2, done).await;
        }
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(FINISH_TIMEOUT, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

struct Writer {
    cfg: Arc<Config>,
    cache: Cache,
    instance: String,
    rx: mpsc::Receiver<Change>,
    lagged: Arc<AtomicBool>,
    /// The buckets and the stream exist (created once NATS first answered).
    ready: bool,
    /// With `ha.enabled`: writes only while this instance holds the lease...
    fence: Option<lease::Fence>,
    /// ... and once the supervisor has begun the term (counts terms; 0 = none yet).
    term: watch::Receiver<u64>,
    /// The term the mirror was last brought level for.
    my_term: u64,
    /// With `ha.enabled`: the revision of each key's last write, per inventory. Every write
    /// expects it (`Nats-Expected-Last-Subject-Sequence`), so the server refuses a write over an
    /// entry someone else wrote since: a leader that slept through its term cannot overwrite
    /// its successor's entries.
    revisions: Option<[kv::Revisions; 3]>,
}

/// Why the mirror is re-synced.
#[derive(Clone, Copy)]
enum Why {
    Start,
    CatchUp,
    Lagged,
    /// A leader term began.
    Term,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::Start => "start",
            Why::CatchUp => "catch-up",
            Why::Lagged => "lagged",
            Why::Term => "leader term",
        }
    }
}

impl Writer {
    async fn run(mut self, js: jetstream::Context) {
        // The client connects in the background: give it a moment before the first request,
        // rather than count a start as a failure (and drop the polls queued meanwhile).
        let client = js.client();
        for _ in 0..100 {
            if client.connection_state() == async_nats::connection::State::Connected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let mut behind = Some(Why::Start);
        // A change received when a term began, written after the term's re-sync.
        let mut held: Option<Change> = None;
        loop {
            if let Some(fence) = self.fence.clone() {
                // A standby writes nothing: it waits for a term whose cache the supervisor has
                // loaded from the mirror, then brings the mirror level with that cache.
                if fence.revision().is_none() && !self.wait_for_term(fence).await {
                    return;
                }
                if self.new_term() {
                    behind = Some(Why::Term);
                }
            }
            if let Some(why) = behind {
                if matches!(why, Why::CatchUp | Why::Lagged) {
                    // Changes were lost: replaying the ones queued after them could put back
                    // values older than the cache's. The re-sync covers them all.
                    self.drain();
                    held = None;
                }
                // At the start and at a term's start nothing was lost: the queued changes are
                // written after the re-sync, in order (their poll messages included).
                match self.resync_all(&js, why).await {
                    Ok(()) => {
                        if !matches!(why, Why::Start | Why::Term) {
                            events::MirrorBehind {
                                behind: false,
                                error: None,
                                retry_in: Duration::ZERO,
                            }
                            .emit();
                        }
                        behind = None;
                        backoff.reset();
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        events::MirrorBehind {
                            behind: true,
                            error: Some(&e),
                            retry_in: delay,
                        }
                        .emit();
                        behind = Some(Why::CatchUp);
                        if !self.sleep(delay).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let change = match held.take() {
                Some(change) => change,
                None => match self.rx.recv().await {
                    Some(change) => change,
                    None => return,
                },
            };
            if self.fence.is_some() && self.new_term() {
                // The first poll of a new term: the mirror is brought level first.
                held = Some(change);
                behind = Some(Why::Term);
                continue;
            }
            if self.lagged.swap(false, Ordering::AcqRel) {
                events::MirrorBehind {
                    behind: true,
                    error: None,
                    retry_in: Duration::ZERO,
                }
                .emit();
                behind = Some(Why::Lagged);
                continue;
            }
            if let Err(e) = self.write(&js, &change).await {
                events::MirrorBehind {
                    behind: true,
                    error: Some(&e),
                    retry_in: Duration::ZERO,
                }
                .emit();
                behind = Some(Why::CatchUp);
            }
        }
    }

    /// Waits until this instance leads, dropping changes meanwhile; false once the pollers
    /// and the elector are gone.
    async fn wait_for_term(&mut self, mut fence: lease::Fence) -> bool {
        while fence.revision().is_none() || *self.term.borrow() == 0 {
            tokio::select! {
                alive = fence.changed() => if !alive { return false },
                got = self.rx.recv() => if got.is_none() { return false },
                // The term also ends by the clock alone; and a new one may have begun.
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        true
    }

    /// Whether the supervisor began a term since the last call.
    fn new_term(&mut self) -> bool {
        let current = *self.term.borrow();
        current != std::mem::replace(&mut self.my_term, current)
    }

    /// Drops every queued change (a re-sync follows, which covers them).
    fn drain(&mut self) {
        while self.rx.try_recv().is_ok() {}
        self.lagged.store(false, Ordering::Release);
    }

    /// Waits `delay`, dropping changes that arrive meanwhile; false once the pollers are gone.
    async fn sleep(&mut self, delay: Duration) -> bool {
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                got = self.rx.recv() => if got.is_none() { return false },
            }
        }
    }

    /// Creates the buckets and the stream when missing (once).
    async fn setup(&mut self, js: &jetstream::Context) -> Result<(), WriteError> {
        if !self.ready {
            let nats = &self.cfg.nats;
            conn::item_buckets(js, nats.replicas)
                .await
                .map_err(|e| WriteError::new("setup", e))?;
            conn::change_stream(js, nats)
                .await
                .map_err(|e| WriteError::new("setup", e))?;
            conn::bucket(js, conn::STATE_BUCKET, nats.replicas, None)
                .await
                .map_err(|e| WriteError::new("setup", e))?;
            self.ready = true;
        }
        Ok(())
    }

    fn headers(&self, poll_id: &str, kind: &str, key: Option<&str>, msg_id: String) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", msg_id.as_str());
        h.insert("Ses-Poll-Id", poll_id);
        h.insert("Ses-Kind", kind);
        if let Some(key) = key {
            h.insert("Ses-Key", key);
        }
        h.insert("Ses-Instance", self.instance.as_str());
        if let Some(revision) = self.fence.as_ref().and_then(lease::Fence::revision) {
            h.insert("Ses-Lease-Revision", revision.to_string().as_str());
        }
        h
    }

    fn pipeline(&self, js: &jetstream::Context) -> Pipeline {
        Pipeline::new(
            js.clone(),
            self.cfg.nats.max_pending_writes as usize,
            self.fence.clone(),
        )
    }

    /// Writes the shared sync state of `inv` (after its items: it vouches for them).
    async fn put_state(&self, p: &mut Pipeline, inv: Inventory) -> Result<(), WriteError> {
        let value = follow::state_value(&self.cache, inv);
        let subject = format!("$KV.{}.{}", conn::STATE_BUCKET, inv.as_str());
        p.publish(subject, HeaderMap::new(), value).await
    }

    /// With `ha.enabled`, `headers` plus the revision the entry `key` must still have, and the
    /// tag under which its new revision is recorded.
    fn expect(
        &self,
        inv: Inventory,
        key: &str,
        mut headers: HeaderMap,
    ) -> (HeaderMap, Option<pipeline::Tag>) {
        let Some(revisions) = &self.revisions else {
            return (headers, None);
        };
        let expected = revisions[inv.index()].get(key).copied().unwrap_or(0);
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            expected.to_string().as_str(),
        );
        (headers, Some((inv.index(), key.to_owned())))
    }

    /// Ends a poll's (or a re-sync's) writes: its poll message, once the item writes are
    /// acknowledged, then the sync state, each flushed and its revisions recorded.
    async fn close_poll(
        &mut self,
        p: &mut Pipeline,
        inv: Inventory,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(), WriteError> {
        p.publish(stream::subject(inv, stream::Kind::Poll), headers, body)
            .await?;
        let flushed = p.flush().await;
        self.record(p);
        flushed?;
        self.put_state(p, inv).await?;
        let flushed = p.flush().await;
        self.record(p);
        flushed.map(drop)
    }

    /// Records the revisions of the entries `p` wrote.
    fn record(&mut self, p: &mut Pipeline) {
        let written = p.take_revisions();
        if let Some(revisions) = &mut self.revisions {
            for ((index, key), revision) in written {
                revisions[index].insert(key, revision);
            }
        }
    }

    /// Puts `item` in its bucket and publishes it as upserted.
    async fn put(
        &self,
        p: &mut Pipeline,
        inv: Inventory,
        poll_id: &str,
        item: &Item,
    ) -> Result<(), WriteError> {
        let key = kv::encode_key(item.key.as_str());
        let value = kv::encode_value(inv, item, item.last_seen());
        let subject = format!("$KV.{}.{key}", kv::bucket(inv));
        let (headers, tag) = self.expect(inv, &key, HeaderMap::new());
        p.publish_tagged(subject, headers, value.clone(), tag)
            .await?;
        let kind = stream::Kind::Upserted.as_str();
        let headers = self.headers(poll_id, kind, Some(&key), format!("{poll_id}:{kind}:{key}"));
        p.publish(stream::subject(inv, stream::Kind::Upserted), headers, value)
            .await
    }

    /// Deletes `key` from its bucket and publishes it as removed.
    async fn delete(
        &self,
        p: &mut Pipeline,
        inv: Inventory,
        poll_id: &str,
        key: &str,
    ) -> Result<(), WriteError> {
        let encoded = kv::encode_key(key);
        let mut marker = HeaderMap::new();
        marker.insert("KV-Operation", "DEL");
        let subject = format!("$KV.{}.{encoded}", kv::bucket(inv));
        let (marker, tag) = self.expect(inv, &encoded, marker);
        p.publish_tagged(subject, marker, Vec::new(), tag).await?;
        let kind = stream::Kind::Removed.as_str();
        let headers = self.headers(
            poll_id,
            kind,
            Some(&encoded),
            format!("{poll_id}:{kind}:{encoded}"),
        );
        p.publish(
            stream::subject(inv, stream::Kind::Removed),
            headers,
            stream::removed_body(key),
        )
        .await
    }

    /// Writes one applied poll: its items, its removals, on a sweep the bucket's keys the
    /// cache no longer has, then its poll message.
    async fn write(&mut self, js: &jetstream::Context, change: &Change) -> Result<(), WriteError> {
        let started = Instant::now();
        let inv = change.inventory;
        self.setup(js).await?;
        let report = &change.report;
        let poll_id = stream::poll_id(inv, report.started);
        let mut p = self.pipeline(js);
        let mut deletes = 0u64;
        if report.outcome != Outcome::Failed {
            for item in &change.upserts {
                self.put(&mut p, inv, &poll_id, item).await?;
            }
            for key in &change.removed {
                self.delete(&mut p, inv, &poll_id, key.as_str()).await?;
            }
            deletes = change.removed.len() as u64;
            if change.swept {
                // Whatever the bucket still holds that the cache does not (a removal written
                // while NATS was away, an entry of an earlier leader): gone.
                let name = kv::bucket(inv);
                let (keys, _) = kv::read_all(js, &name, true)
                    .await
                    .map_err(|e| WriteError::new("reconcile", e))?;
                let removed: HashSet<&str> = change.removed.iter().map(Key::as_str).collect();
                let stale: Vec<String> = keys
                    .keys()
                    .filter_map(|k| kv::decode_key(k))
                    .filter(|k| !removed.contains(k.as_str()) && self.cache.get(inv, k).is_none())
                    .collect();
                for key in &stale {
                    self.delete(&mut p, inv, &poll_id, key).await?;
                }
                deletes += stale.len() as u64;
            }
        }
        let headers = self.headers(&poll_id, "poll", None, format!("{poll_id}:poll"));
        let body = stream::poll_body(inv, &poll_id, report, self.cache.len(inv));
        self.close_poll(&mut p, inv, headers, body).await?;
        events::MirrorWritten {
            inventory: inv,
            poll_id: &poll_id,
            puts: change.upserts.len() as u64,
            deletes,
            messages: [change.upserts.len() as u64, deletes, 1],
            duration: started.elapsed(),
        }
        .emit();
        Ok(())
    }

    async fn resync_all(&mut self, js: &jetstream::Context, why: Why) -> Result<(), WriteError> {
        for inv in Inventory::ALL {
            self.resync(js, inv, why).await?;
        }
        Ok(())
    }

    /// Brings `inv`'s bucket level with the cache: puts what differs or is missing; deletes
    /// what the cache lacks, only once the inventory is ready (a cache still building up must
    /// not empty a mirror that an earlier run filled).
    async fn resync(
        &mut self,
        js: &jetstream::Context,
        inv: Inventory,
        why: Why,
    ) -> Result<(), WriteError> {
        let started = Instant::now();
        let at = Utc::now();
        self.setup(js).await?;
        let (stored, revisions, _follow) = kv::read_with_revisions(js, &kv::bucket(inv), false)
            .await
            .map_err(|e| WriteError::new("re-sync", e))?;
        if let Some(all) = &mut self.revisions {
            all[inv.index()] = revisions;
        }
        let ready = self.cache.is_ready(inv);
        let items = self.cache.snapshot(inv);
        let poll_id = stream::resync_id(inv, at);
        let mut p = self.pipeline(js);
        let mut puts = 0u64;
        let mut cached: HashSet<String> = HashSet::with_capacity(items.len());
        for item in &items {
            let key = kv::encode_key(item.key.as_str());
            let same = stored
                .get(&key)
                .is_some_and(|v| kv::same_value(inv, item, v));
            cached.insert(key);
            if !same {
                self.put(&mut p, inv, &poll_id, item).await?;
                puts += 1;
            }
        }
        let mut deletes = 0u64;
        if ready {
            for encoded in stored.keys().filter(|k| !cached.contains(*k)) {
                // A key not written by us is left alone.
                if let Some(key) = kv::decode_key(encoded) {
                    self.delete(&mut p, inv, &poll_id, &key).await?;
                    deletes += 1;
                }
            }
        }
        let headers = self.headers(&poll_id, "resync", None, format!("{poll_id}:poll"));
        let body = stream::resync_body(inv, &poll_id, at, puts, deletes, items.len());
        self.close_poll(&mut p, inv, headers, body).await?;
        events::MirrorResynced {
            inventory: inv,
            reason: why.as_str(),
            items: items.len(),
            puts,
            deletes,
            duration: started.elapsed(),
        }
        .emit();
        Ok(())
    }
}

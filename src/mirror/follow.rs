//! A standby's cache: the mirror loaded into it, then followed change by change; and the shared
//! sync state (`ses_inventory_state`) that lets a standby that takes over carry on with a
//! refresh instead of a new buildup.

use super::{conn, kv};
use crate::cache::{Cache, ItemMap};
use crate::model::inventory::Inventory;
use crate::model::item::Key;
use crate::model::status::{Phase, SyncTimes};
use crate::telemetry::events;
use async_nats::jetstream;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state entry of `inv` (its key in [`conn::STATE_BUCKET`] is the inventory's name).
pub fn state_value(times: SyncTimes, ready: bool, last_success: Option<DateTime<Utc>>) -> Vec<u8> {
    let t = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    json!({
        "window_anchor": t(times.window_anchor),
        "last_complete_full": t(times.last_complete_full),
        "last_success": t(last_success),
        "ready": ready,
    })
    .to_string()
    .into_bytes()
}

/// Takes a state entry into the cache's status of `inv`: window times, last success, readiness.
fn apply_state(cache: &Cache, inv: Inventory, value: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(value) else {
        return;
    };
    let t = |name: &str| {
        v[name]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let ready = v["ready"] == true;
    cache.update_status(inv, |s| {
        s.times = SyncTimes {
            window_anchor: t("window_anchor"),
            last_complete_full: t("last_complete_full"),
        };
        s.last_success = t("last_success").or(s.last_success);
        if ready {
            s.phase = Phase::Ready;
        }
    });
    if ready {
        cache.mark_ready(inv);
    }
}

/// Makes the buckets the standby reads (they may not exist before a first leader wrote them).
async fn buckets(js: &jetstream::Context, replicas: u32) -> Result<(), String> {
    conn::item_buckets(js, replicas).await?;
    conn::bucket(js, conn::STATE_BUCKET, replicas, None).await?;
    Ok(())
}

/// The followers of the three buckets and of the state, after loading them.
pub struct Loaded {
    items: Vec<(Inventory, kv::Follow)>,
    state: kv::Follow,
    /// Inventories that had no state when loaded.
    unstated: Vec<Inventory>,
}

/// Replaces the cache with the mirror: the state first, then every item bucket (items are
/// written before the state that vouches for them, so the items read are at least as new).
/// An inventory without state (never written by a leader) is left as the cache holds it.
pub async fn load(js: &jetstream::Context, cache: &Cache, replicas: u32) -> Result<Loaded, String> {
    buckets(js, replicas).await?;
    let (states, state) = kv::read_all(js, conn::STATE_BUCKET, false).await?;
    let mut items = Vec::with_capacity(3);
    let mut unstated = Vec::new();
    for inv in Inventory::ALL {
        let started = Instant::now();
        let (contents, follow) = kv::read_all(js, &kv::bucket(inv), false).await?;
        items.push((inv, follow));
        let mut map = ItemMap::default();
        for value in contents.values() {
            if let Some(item) = kv::decode_item(inv, value) {
                map.insert(item.key.clone(), Arc::new(item));
            }
        }
        let n = map.len();
        match states.get(inv.as_str()) {
            Some(state) => {
                drop(cache.replace(inv, map));
                apply_state(cache, inv, state);
            }
            None => {
                // No leader has finished a poll of this inventory yet: the cache keeps what it
                // has (a warm start from the store) and takes what the bucket holds; the first
                // state to arrive reloads it whole.
                cache.apply(inv, map.into_values(), &[]);
                unstated.push(inv);
            }
        }
        events::MirrorLoaded {
            inventory: inv,
            items: n,
            ready: cache.is_ready(inv),
            duration: started.elapsed(),
        }
        .emit();
    }
    cache.poll_finished();
    Ok(Loaded {
        items,
        state,
        unstated,
    })
}

/// Most changes applied to the cache at once.
const BATCH: usize = 5_000;

/// How long a batch waits for the next change of a burst.
const BATCH_WAIT: Duration = Duration::from_millis(20);

/// Applies followed changes, in order (the last change of a key wins), in one step.
fn apply_batch(cache: &Cache, inv: Inventory, batch: Vec<kv::Update>) {
    let mut last: std::collections::HashMap<String, Option<bytes::Bytes>> =
        std::collections::HashMap::with_capacity(batch.len());
    for update in batch {
        if let Some(key) = kv::decode_key(&update.key) {
            last.insert(key, update.value);
        }
    }
    let mut upserts = Vec::new();
    let mut removals = Vec::new();
    for (key, value) in last {
        match value.and_then(|v| kv::decode_item(inv, &v)) {
            Some(item) => upserts.push(Arc::new(item)),
            None => removals.push(Key::new(&key)),
        }
    }
    cache.apply(inv, upserts, &removals);
    cache.poll_finished();
}

/// Why following stopped.
pub enum Stopped {
    /// An inventory's first state arrived: load the mirror again.
    Reload,
    Failed(String),
}

/// Applies every later change of the mirror to the cache, until a follower fails or a reload
/// is due.
pub async fn follow(cache: &Cache, loaded: Loaded) -> Stopped {
    let Loaded {
        items,
        mut state,
        unstated,
    } = loaded;
    let mut tasks = tokio::task::JoinSet::new();
    for (inv, mut follow) in items {
        let cache = cache.clone();
        tasks.spawn(async move {
            loop {
                // A leader's poll arrives as a burst of changes: they are applied together
                // (one new published view per batch, not per item).
                let mut batch = Vec::new();
                let mut wait = None;
                while batch.len() < BATCH {
                    let next = match wait {
                        None => Some(follow.next().await),
                        Some(d) => tokio::time::timeout(d, follow.next()).await.ok(),
                    };
                    match next {
                        None => break,
                        Some(None) => {
                            return Stopped::Failed("the mirror's consumer ended".to_owned());
                        }
                        Some(Some(Err(e))) => return Stopped::Failed(e),
                        Some(Some(Ok(update))) => batch.push(update),
                    }
                    wait = Some(BATCH_WAIT);
                }
                apply_batch(&cache, inv, batch);
            }
        });
    }
    let cache = cache.clone();
    tasks.spawn(async move {
        loop {
            match state.next().await {
                None => return Stopped::Failed("the state's consumer ended".to_owned()),
                Some(Err(e)) => return Stopped::Failed(e),
                Some(Ok(update)) => {
                    if let (Ok(inv), Some(value)) = (update.key.parse::<Inventory>(), update.value)
                    {
                        if unstated.contains(&inv) {
                            return Stopped::Reload;
                        }
                        apply_state(&cache, inv, &value);
                    }
                }
            }
        }
    });
    let why = tasks
        .join_next()
        .await
        .and_then(Result::ok)
        .unwrap_or_else(|| Stopped::Failed("a follower stopped".to_owned()));
    tasks.shutdown().await;
    why
}

/// A standby's loop: load the mirror, follow it, start again after a failure. Runs until
/// aborted.
pub async fn standby(js: jetstream::Context, cache: Cache, replicas: u32) {
    loop {
        match load(&js, &cache, replicas).await {
            Ok(loaded) => match follow(&cache, loaded).await {
                Stopped::Reload => continue,
                Stopped::Failed(why) => events::NatsProblem { error: &why }.emit(),
            },
            Err(e) => events::NatsProblem { error: &e }.emit(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

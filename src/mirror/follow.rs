//! A standby's cache: the mirror loaded into it, then followed change by change; and the shared
//! sync state (`ses_inventory_state`) that lets a standby that takes over carry on with a
//! refresh instead of a new buildup.

use super::{conn, kv};
use crate::cache::{Awaiting, Cache, ItemMap};
use crate::model::inventory::Inventory;
use crate::model::item::Key;
use crate::model::status::{Mark, Phase, SyncTimes};
use crate::telemetry::events;
use async_nats::jetstream;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Items awaiting a second witness carried in a state entry, at most (the oldest first): a
/// mark that does not fit only delays a removal after a takeover, never causes one.
pub(crate) const MAX_AWAITING_IN_STATE: usize = 10_000;

/// The state entry of `inv` (its key in [`conn::STATE_BUCKET`] is the inventory's name): the
/// window times, readiness, whether the first buildup settled, and the items awaiting a
/// second witness.
pub(crate) fn state_value(cache: &Cache, inv: Inventory) -> Vec<u8> {
    let status = cache.status(inv);
    let t = |t: Option<DateTime<Utc>>| t.map(crate::time::format::millis);
    let mut awaiting: Vec<(Key, Mark)> = cache.awaiting(inv).into_iter().collect();
    awaiting.sort_unstable_by(|a, b| (a.1.since, &a.0).cmp(&(b.1.since, &b.0)));
    awaiting.truncate(MAX_AWAITING_IN_STATE);
    let awaiting: Vec<Value> = awaiting
        .iter()
        .map(|(k, m)| json!([k.as_str(), t(Some(m.since)), m.misses, m.certain, m.gone]))
        .collect();
    json!({
        "window_anchor": t(status.times.window_anchor),
        "last_complete_full": t(status.times.last_complete_full),
        "last_success": t(status.last_success),
        "ready": cache.is_ready(inv),
        "settled": status.settled,
        "awaiting": awaiting,
    })
    .to_string()
    .into_bytes()
}

/// Takes a state entry into the cache's status of `inv`: window times, last success, readiness,
/// settling, and the items awaiting a second witness.
fn apply_state(cache: &Cache, inv: Inventory, value: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(value) else {
        return;
    };
    let parse = |s: Option<&str>| s.and_then(crate::time::format::parse);
    let t = |name: &str| parse(v[name].as_str());
    let ready = v["ready"] == true;
    cache.update_status(inv, |s| {
        s.times = SyncTimes {
            window_anchor: t("window_anchor"),
            last_complete_full: t("last_complete_full"),
        };
        s.last_success = t("last_success").or(s.last_success);
        // Entries written before settling existed come from settled inventories.
        s.settled = v["settled"].as_bool().unwrap_or(true);
        if ready {
            s.phase = Phase::Ready;
        }
    });
    let awaiting: Awaiting = v["awaiting"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let key = e[0].as_str()?;
            let mark = Mark {
                since: parse(e[1].as_str())?,
                misses: u8::try_from(e[2].as_u64()?).unwrap_or(u8::MAX),
                certain: e[3].as_bool()?,
                gone: e[4].as_bool()?,
            };
            Some((Key::new(key), mark))
        })
        .collect();
    cache.set_awaiting(inv, awaiting);
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
pub(crate) enum Stopped {
    /// An inventory's first state arrived: load the mirror again.
    Reload,
    Failed(String),
}

/// Applies every later change of the mirror to the cache, until a follower fails or a reload
/// is due.
pub(crate) async fn follow(cache: &Cache, loaded: Loaded) -> Stopped {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_entry_carries_the_marks_and_settling_to_a_standby() {
        let leader = Cache::new();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let inv = Inventory::Carriers;
        leader.update_status(inv, |s| {
            s.settled = false;
            s.times.last_complete_full = Some(at("2026-12-01T10:00:00Z"));
            s.times.window_anchor = Some(at("2026-12-01T10:00:00Z"));
        });
        leader.mark_ready(inv);
        let mark = |since: &str, misses, certain| Mark {
            since: at(since),
            misses,
            certain,
            gone: false,
        };
        let mut awaiting = Awaiting::default();
        awaiting.insert(Key::new("C-1"), mark("2026-12-01T10:00:00Z", 1, true));
        awaiting.insert(Key::new("C-2"), mark("2026-12-02T10:00:00Z", 2, false));
        leader.set_awaiting(inv, awaiting.clone());

        let standby = Cache::new();
        apply_state(&standby, inv, &state_value(&leader, inv));
        assert_eq!(standby.awaiting(inv), awaiting);
        let status = standby.status(inv);
        assert!(!status.settled);
        assert_eq!(status.unconfirmed, 2);
        assert_eq!(status.unconfirmed_since, Some(at("2026-12-01T10:00:00Z")));
        assert!(standby.is_ready(inv));

        // An entry written before marks existed: settled, nothing awaiting.
        apply_state(&standby, inv, br#"{"ready":true}"#);
        assert!(standby.status(inv).settled);
        assert!(standby.awaiting(inv).is_empty());
    }

    #[test]
    fn a_state_entry_carries_at_most_the_oldest_marks() {
        let cache = Cache::new();
        let inv = Inventory::Services;
        let start = "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let awaiting: Awaiting = (0..MAX_AWAITING_IN_STATE + 5)
            .map(|i| {
                let since = start + chrono::Duration::seconds(i as i64);
                (Key::new(&format!("K-{i:06}")), Mark::new(since))
            })
            .collect();
        cache.set_awaiting(inv, awaiting);
        let value: Value = serde_json::from_slice(&state_value(&cache, inv)).unwrap();
        let carried = value["awaiting"].as_array().unwrap();
        assert_eq!(carried.len(), MAX_AWAITING_IN_STATE);
        assert_eq!(carried[0][0], "K-000000", "the oldest first");
    }
}

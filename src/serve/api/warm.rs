//! Keeps the read indexes built: each view the pollers publish gets the indexes a poll does not
//! carry over (postings, dense bitsets, the search text: [`crate::cache::View::warm`]) on a
//! blocking thread, so that after a start or a poll the first filter or `q` does not pay for
//! them. Checks for new views once a second;
//! a view replaced while being warmed, or a stopping server, ends its warming at once.

use crate::cache::Cache;
use crate::model::inventory::Inventory;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the published views are checked for a new generation.
const EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop` reads true.
pub(crate) fn spawn(cache: Cache, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut warmed: [Option<u64>; 3] = [None; 3];
        loop {
            for inv in Inventory::ALL {
                let view = cache.view(inv);
                let generation = view.generation();
                if warmed[inv.index()] == Some(generation) {
                    continue;
                }
                warmed[inv.index()] = Some(generation);
                let (cache, stop) = (cache.clone(), stop.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    view.warm(|| !*stop.borrow() && cache.view(inv).generation() == generation)
                })
                .await;
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ItemMap;
    use crate::model::item::{Item, Key};
    use std::sync::Arc;

    fn services(n: usize) -> ItemMap {
        (0..n)
            .map(|i| {
                let key = format!("SVC-{i:04}");
                let status = ["Operational", "Pending"][i % 2];
                let raw = serde_json::json!({
                    "externalId": key,
                    "name": format!("Service {i}"),
                    "status": status,
                    "category": "CFS",
                })
                .to_string();
                let t = chrono::Utc::now();
                let key = Key::new(&key);
                let item = Item::new(key.clone(), Inventory::Services, raw.into(), t, t);
                (key, Arc::new(item))
            })
            .collect()
    }

    async fn warm_within(cache: &Cache, what: &str) {
        for _ in 0..200 {
            if cache.view(Inventory::Services).is_warm() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: the view is still cold after 10 s");
    }

    #[tokio::test]
    async fn every_published_view_is_warmed_without_a_request_and_stopping_ends_it() {
        let cache = Cache::new();
        drop(cache.replace(Inventory::Services, services(500)));
        assert!(!cache.view(Inventory::Services).is_warm(), "cold");
        let (stop, stop_rx) = watch::channel(false);
        let warmer = spawn(cache.clone(), stop_rx);
        warm_within(&cache, "after a load").await;
        // A poll publishes a new view: it lacks the search text, which is not carried.
        let more = services(600);
        cache.apply(Inventory::Services, more.values().cloned(), &[]);
        warm_within(&cache, "after a poll").await;
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), warmer)
            .await
            .expect("the warmer stops with the server")
            .unwrap();
        // Stopped: a new view stays cold.
        drop(cache.replace(Inventory::Services, services(50)));
        tokio::time::sleep(EVERY * 2).await;
        assert!(!cache.view(Inventory::Services).is_warm());
    }
}

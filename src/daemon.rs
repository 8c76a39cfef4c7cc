//! The running daemon: the cache, one poller task per inventory, the status logger; started
//! together and stopped together.

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::inventory::Inventory;
use crate::status;
use crate::sync::{PollRequest, Poller};
use crate::upstream::{ClientError, Upstream};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// A started daemon. Dropping it without [`Daemon::shutdown`] also stops its tasks.
pub struct Daemon {
    cache: Cache,
    requests: [mpsc::Sender<PollRequest>; 3],
    tasks: JoinSet<()>,
}

impl Daemon {
    /// Starts the pollers and the status logger on the current runtime.
    pub fn start(cfg: Arc<Config>, clock: Clock) -> Result<Daemon, ClientError> {
        Self::start_with_cache(cfg, clock, Cache::new())
    }

    /// As [`Daemon::start`], over a cache that may already hold items (a warm start).
    pub fn start_with_cache(
        cfg: Arc<Config>,
        clock: Clock,
        cache: Cache,
    ) -> Result<Daemon, ClientError> {
        let upstream = Upstream::new(cfg.clone())?;
        let mut tasks = JoinSet::new();
        let requests = Inventory::ALL.map(|inv| {
            // Capacity 1 is enough: requests that find the channel full join the one queued.
            let (tx, rx) = mpsc::channel(1);
            let poller =
                Poller::new(inv, upstream.clone(), cache.clone(), clock.clone()).with_requests(rx);
            tasks.spawn(poller.run());
            tx
        });
        if cfg.poll.status_interval > 0 {
            tasks.spawn(status::log_periodically(
                cache.clone(),
                Duration::from_secs(cfg.poll.status_interval),
            ));
        }
        Ok(Daemon {
            cache,
            requests,
            tasks,
        })
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Asks `inv`'s poller to poll now; joins a request already queued. Returns false only if
    /// the poller is gone.
    pub fn request_poll(&self, inv: Inventory, full: bool) -> bool {
        match self.requests[inv.index()].try_send(PollRequest { full }) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Stops polling: in-flight requests are abandoned, and polls not yet applied are dropped.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

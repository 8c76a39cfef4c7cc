//! The running daemon: the cache, one poller task per inventory, the status logger; started
//! together and stopped together.

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::inventory::Inventory;
use crate::status::{self, Phase};
use crate::sync::{Journal, PollRequest, Poller};
use crate::upstream::{ClientError, Upstream};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What became of a request for an immediate poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestOutcome {
    /// A poll is already running; the request joins it.
    Joined,
    /// The poller will start one now (or right after the one it is finishing).
    Queued,
    /// The poller is not running (shutting down).
    Unavailable,
}

/// Asks pollers for immediate polls. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    cache: Cache,
    requests: Arc<[mpsc::Sender<PollRequest>; 3]>,
}

impl Control {
    /// Asks `inv`'s poller to poll now (`full` for a full pass). A request made while a poll of
    /// that inventory runs joins it, unless it asks for a full pass during a refresh.
    pub fn request_poll(&self, inv: Inventory, full: bool) -> RequestOutcome {
        let running = match self.cache.status(inv).phase {
            Phase::Building | Phase::Resyncing => true,
            Phase::Refreshing => !full,
            _ => false,
        };
        match self.requests[inv.index()].try_send(PollRequest { full }) {
            Err(mpsc::error::TrySendError::Closed(_)) => RequestOutcome::Unavailable,
            _ if running => RequestOutcome::Joined,
            // A full channel means a request is already queued: this one joins it.
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => RequestOutcome::Queued,
        }
    }
}

/// A started daemon. Dropping it without [`Daemon::shutdown`] also stops its tasks.
pub struct Daemon {
    cache: Cache,
    requests: [mpsc::Sender<PollRequest>; 3],
    tasks: JoinSet<()>,
}

impl Daemon {
    /// Starts the pollers and the status logger on the current runtime.
    pub fn start(cfg: Arc<Config>, clock: Clock) -> Result<Daemon, ClientError> {
        Self::start_with(cfg, clock, Cache::new(), None)
    }

    /// As [`Daemon::start`], over a cache that may already hold items (a warm start), sending
    /// every applied poll to `journal` when given (the durable store).
    pub fn start_with(
        cfg: Arc<Config>,
        clock: Clock,
        cache: Cache,
        journal: Option<Journal>,
    ) -> Result<Daemon, ClientError> {
        let upstream = Upstream::new(cfg.clone())?;
        let mut tasks = JoinSet::new();
        let requests = Inventory::ALL.map(|inv| {
            // Capacity 1 is enough: requests that find the channel full join the one queued.
            let (tx, rx) = mpsc::channel(1);
            let mut poller =
                Poller::new(inv, upstream.clone(), cache.clone(), clock.clone()).with_requests(rx);
            if let Some(journal) = &journal {
                poller = poller.with_journal(journal.clone());
            }
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

    /// A handle that asks pollers for immediate polls (for the read API).
    pub fn control(&self) -> Control {
        Control {
            cache: self.cache.clone(),
            requests: Arc::new(self.requests.clone()),
        }
    }

    /// Stops polling: in-flight requests are abandoned, and polls not yet applied are dropped.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

//! The pollers of a running daemon: one task per inventory over a shared cache, started
//! together and stopped together, and the [`Control`] that asks them for immediate polls.
//! [`Pollers`] is the one place that starts and stops them, for the daemon without `ha.enabled`
//! and for a leader's terms alike, and publishes their control where the read API finds it.

use crate::cache::Cache;
use crate::config::Config;
use crate::model::inventory::Inventory;
use crate::model::status::Phase;
use crate::source::{ClientError, Upstream};
use crate::sync::{Journal, PollRequest, Poller};
use crate::time::clock::Clock;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Where the read API finds the pollers' control: replaced whenever they start or stop.
pub(crate) type ControlSlot = Arc<RwLock<Control>>;

/// The pollers of this process, running or not. Starting publishes their [`Control`] in the
/// slot; stopping puts an idle one back (every request is then `Unavailable`) before the
/// pollers go.
pub(crate) struct Pollers {
    cfg: Arc<Config>,
    clock: Clock,
    cache: Cache,
    slot: ControlSlot,
    running: Option<Daemon>,
}

impl Pollers {
    /// Pollers of `cache` with `cfg`'s settings, not started; their client is checked now, so
    /// that a configuration it cannot use stops the daemon at start.
    pub fn new(cfg: Arc<Config>, clock: Clock, cache: Cache) -> Result<Pollers, ClientError> {
        Upstream::new(cfg.clone())?;
        let slot = Arc::new(RwLock::new(Control::idle(cache.clone())));
        Ok(Pollers {
            cfg,
            clock,
            cache,
            slot,
            running: None,
        })
    }

    /// Where their control is published.
    pub fn slot(&self) -> ControlSlot {
        self.slot.clone()
    }

    /// Starts them (if they are not running), each applied poll going to `journal`.
    pub fn start(&mut self, journal: Option<Journal>) -> Result<(), ClientError> {
        if self.running.is_none() {
            let daemon = Daemon::start_with(
                self.cfg.clone(),
                self.clock.clone(),
                self.cache.clone(),
                journal,
            )?;
            self.publish(daemon.control());
            self.running = Some(daemon);
        }
        Ok(())
    }

    /// Stops them: requests are refused from now on, in-flight requests are abandoned and
    /// polls not yet applied dropped.
    pub async fn stop(&mut self) {
        self.publish(Control::idle(self.cache.clone()));
        if let Some(daemon) = self.running.take() {
            daemon.shutdown().await;
        }
    }

    fn publish(&self, control: Control) {
        *self.slot.write().unwrap_or_else(PoisonError::into_inner) = control;
    }
}

/// What became of a request for an immediate poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
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
    /// Makes "look at the queue, then send" one step for concurrent requesters.
    sending: Arc<Mutex<()>>,
}

impl Control {
    /// A control with no pollers behind it (a standby): every request is `Unavailable`.
    pub fn idle(cache: Cache) -> Control {
        let requests = Inventory::ALL.map(|_| mpsc::channel(1).0);
        Control {
            cache,
            requests: Arc::new(requests),
            sending: Arc::default(),
        }
    }

    /// Asks `inv`'s poller to poll now (`full` for a full pass). A request made while a poll of
    /// that inventory runs joins it, unless it asks for a full pass during a refresh.
    pub fn request_poll(&self, inv: Inventory, full: bool) -> RequestOutcome {
        let running = match self.cache.status(inv).phase {
            Phase::Building | Phase::Resyncing => true,
            Phase::Refreshing => !full,
            _ => false,
        };
        let tx = &self.requests[inv.index()];
        let sent = {
            let _one_at_a_time = self.sending.lock().unwrap_or_else(PoisonError::into_inner);
            // The queue (two slots) holds at most one refresh request, and only alone: a refresh
            // joins whatever is queued, so a slot is always left for a full request. A full
            // request that finds both slots taken therefore joins a queued full one; it must
            // never be dropped behind a queued refresh.
            if !full && !tx.is_closed() && tx.capacity() < tx.max_capacity() {
                Ok(())
            } else {
                tx.try_send(PollRequest { full })
            }
        };
        match sent {
            Err(mpsc::error::TrySendError::Closed(_)) => RequestOutcome::Unavailable,
            _ if running => RequestOutcome::Joined,
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => RequestOutcome::Queued,
        }
    }
}

/// A started daemon. Dropping it without [`Daemon::shutdown`] also stops its tasks.
pub struct Daemon {
    cache: Cache,
    requests: [mpsc::Sender<PollRequest>; 3],
    sending: Arc<Mutex<()>>,
    tasks: JoinSet<()>,
}

impl Daemon {
    /// Starts the pollers on the current runtime.
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
            // Two slots: a queued refresh request and a full one (see `Control::request_poll`).
            let (tx, rx) = mpsc::channel(2);
            let mut poller = Poller::new(inv, &cfg, upstream.clone(), cache.clone(), clock.clone())
                .with_requests(rx);
            if let Some(journal) = &journal {
                poller = poller.with_journal(journal.clone());
            }
            tasks.spawn(poller.run());
            tx
        });
        Ok(Daemon {
            cache,
            requests,
            sending: Arc::default(),
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
            sending: self.sending.clone(),
        }
    }

    /// Stops polling: in-flight requests are abandoned, and polls not yet applied are dropped.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

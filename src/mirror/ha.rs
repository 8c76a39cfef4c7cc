//! Leader and standby (`ha.enabled`): a standby serves the mirror; when the elector wins the
//! lease it loads the mirror once more (the old leader is gone or fenced: nothing changes it
//! any more), starts the pollers, which carry on from the shared sync state with a refresh, and
//! hands the read API their [`Control`]; when the lease is lost the pollers are stopped at once
//! and it stands by again.

use super::change::{Change, tee};
use super::follow;
use super::lease::{HaStatus, Role};
use crate::cache::Cache;
use crate::config::Config;
use crate::sync::Journal;
use crate::sync::daemon::Pollers;
use crate::telemetry::events;
use async_nats::jetstream;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the supervisor needs to run terms.
pub(crate) struct Terms {
    pub cfg: Arc<Config>,
    pub cache: Cache,
    /// Started for each leader term, stopped at its end.
    pub pollers: Pollers,
    /// The store's journal, when there is a store.
    pub store: Option<Journal>,
    pub(super) mirror: mpsc::Sender<Change>,
    pub(super) lagged: Arc<AtomicBool>,
    /// Counts leader terms begun; the mirror's writer starts each by bringing it level.
    pub(super) term: watch::Sender<u64>,
}

/// Runs standby and leader terms as the lease decides, until `stop` turns true.
pub(super) async fn supervise(
    js: jetstream::Context,
    mut terms: Terms,
    mut status: watch::Receiver<HaStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let replicas = terms.cfg.nats.replicas;
    let instance = terms.cfg.ha.instance_name();
    events::StandbyStarted {
        instance: &instance,
    }
    .emit();
    loop {
        // Standing by: follow the mirror until this instance holds the lease.
        let standby = tokio::spawn(follow::standby(js.clone(), terms.cache.clone(), replicas));
        let leading = tokio::select! {
            r = status.wait_for(|s| s.role == Role::Leader) => r.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        };
        standby.abort();
        let _ = standby.await;
        if !leading {
            return;
        }
        // Leading: the mirror as it is now (nobody else writes it), then the pollers.
        let mut loaded = false;
        for _ in 0..5 {
            match follow::load(&js, &terms.cache, replicas).await {
                Ok(_) => {
                    loaded = true;
                    break;
                }
                Err(e) => {
                    events::NatsProblem { error: &e }.emit();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        if !loaded {
            // The cache holds what the standby followed; the first full pass settles the rest.
            events::NatsProblem {
                error: &"the mirror could not be read again before leading; polling from the followed copy",
            }
            .emit();
        }
        // The cache is the mirror's now: the writer may bring the mirror level with it.
        terms.term.send_modify(|t| *t += 1);
        let journal = tee(
            terms.mirror.clone(),
            terms.lagged.clone(),
            terms.store.clone(),
        );
        if let Err(e) = terms.pollers.start(Some(journal)) {
            // Checked at start; should it fail now, stand by rather than lead without pollers.
            events::NatsProblem { error: &e }.emit();
            return;
        }
        let stopping = tokio::select! {
            _ = status.wait_for(|s| s.role != Role::Leader) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        // Polls in flight are abandoned: nothing more of this term reaches the cache.
        terms.pollers.stop().await;
        if stopping {
            return;
        }
    }
}

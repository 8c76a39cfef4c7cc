//! The composition root: the one place that wires the parts of a running daemon together —
//! store (warm load and writer), pollers, read API, systemd notifications, status log — in
//! order, and takes them down in reverse. `run`, `demo` and `sync-once` all build on it. With
//! `nats.url` the NATS mirror follows the journal; with `ha.enabled` the mirror's supervisor
//! starts and stops the pollers as the lease decides.

use crate::cache::Cache;
use crate::cmd::memory;
use crate::config::Config;
use crate::mirror::{HaParts, Mirror};
use crate::serve::{notify, server, status_log};
use crate::store::{self, Store};
use crate::sync::Journal;
use crate::sync::daemon::Pollers;
use crate::time::clock::Clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Opens `store.path` (unless empty), loads it into `cache` and starts its writer.
pub(crate) fn open_store(
    cfg: &Config,
    cache: &Cache,
) -> anyhow::Result<Option<(Journal, store::Writer)>> {
    let Some(path) = store::resolve_path(&cfg.store.path) else {
        return Ok(None);
    };
    let (store, _opened) = Store::open(&path)?;
    let mut store = store
        .with_retention(cfg.store.history_max_age_days, cfg.store.history_max_bytes)
        .with_snapshot_on_stop(cfg.store.snapshot_on_stop && !cfg.ha.enabled);
    store.load(cache)?;
    // The poll history only feeds the console's charts: a file that cannot give it back
    // starts the daemon with an empty one.
    if let Err(error) = store.load_history(cache) {
        tracing::warn!(message = "Poll history not loaded.", %error);
    }
    Ok(Some(store.spawn_writer(cache.clone())))
}

/// How the daemon talks to its service manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// systemd's notify protocol, when `$NOTIFY_SOCKET` is set.
    FromEnv,
    Off,
}

/// A running daemon: everything [`App::start`] started.
pub struct App {
    cache: Cache,
    /// The pollers (without `ha.enabled`; with it, the mirror's supervisor runs them).
    pollers: Option<Pollers>,
    api: Option<server::Server>,
    writer: Option<store::Writer>,
    mirror: Option<Mirror>,
    background: Vec<JoinHandle<()>>,
    notifier: Option<notify::Notifier>,
}

impl App {
    /// Loads the store into a new cache, starts the pollers (journalling to the store), serves
    /// `api` when given, the status log every `poll.status_interval`, and notifications.
    pub fn start(
        cfg: Arc<Config>,
        clock: Clock,
        api: Option<server::Bound>,
        notify: Notify,
    ) -> anyhow::Result<App> {
        let cache = Cache::new();
        let (journal, writer) = open_store(&cfg, &cache)?.unzip();
        let mut pollers = Pollers::new(cfg.clone(), clock, cache.clone())?;
        let control = pollers.slot();
        let (pollers, mirror) = if cfg.ha.enabled {
            // Leader and standby: the mirror's supervisor starts the pollers while this
            // instance holds the lease.
            let parts = HaParts {
                pollers,
                store: journal,
            };
            (
                None,
                Mirror::start(cfg.clone(), cache.clone(), Some(parts))?,
            )
        } else {
            // The mirror follows the cache through the same journal as the store, never
            // slowing it.
            let mirror = Mirror::start(cfg.clone(), cache.clone(), None)?;
            let journal = match &mirror {
                Some(mirror) => Some(mirror.tee(journal)),
                None => journal,
            };
            pollers.start(journal)?;
            (Some(pollers), mirror)
        };
        let ha = mirror.as_ref().map(Mirror::ha);
        let api = api.map(|bound| {
            bound
                .with_ha(ha.clone())
                .with_store(store::resolve_path(&cfg.store.path))
                .serve_switchable(cache.clone(), control.clone())
        });
        let mut background = Vec::new();
        if cfg.poll.status_interval > 0 {
            background.push(tokio::spawn(status_log::log_periodically(
                cache.clone(),
                Duration::from_secs(cfg.poll.status_interval),
            )));
        }
        background.push(tokio::spawn(memory::trim_after_polls(
            cache.clone(),
            memory::TRIM_EVERY,
        )));
        let notifier = (notify == Notify::FromEnv).then(notify::Notifier::from_env);
        if let Some(notifier) = &notifier {
            background.push(tokio::spawn(notify::run(
                cache.clone(),
                notifier.clone(),
                notify::watchdog_interval_from_env(),
                ha.filter(|_| cfg.ha.enabled),
            )));
        }
        Ok(App {
            cache,
            pollers,
            api,
            writer,
            mirror,
            background,
            notifier,
        })
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Stops in reverse order: tells the service manager, stops serving, stops the pollers
    /// (polls not yet applied are dropped), then waits for the store to commit what was applied.
    pub async fn stop(self) {
        for task in &self.background {
            task.abort();
        }
        if let Some(notifier) = &self.notifier {
            notifier.stopping().await;
        }
        if let Some(api) = self.api {
            api.shutdown().await;
        }
        if let Some(mut pollers) = self.pollers {
            pollers.stop().await;
        }
        if let Some(mirror) = self.mirror {
            mirror.finish().await;
        }
        if let Some(writer) = self.writer {
            writer.finish().await;
        }
    }
}

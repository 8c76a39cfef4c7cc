//! What every handler of the read API and the web console shares.

use crate::cache::Cache;
use crate::mirror::lease::HaStatus;
use crate::model::secret::Secret;
use crate::serve::console::sessions::Sessions;
use crate::sync::daemon::{Control, ControlSlot};
use chrono::{DateTime, Utc};
use std::sync::{Arc, PoisonError};
use std::time::Instant;
use tokio::sync::watch;

/// What every handler of the API and the console shares.
pub(crate) struct ApiState {
    pub(crate) cache: Cache,
    /// The pollers' control; a standby's comes and goes with its leader terms.
    pub(crate) control: ControlSlot,
    /// The leader/standby role (`ha.enabled`).
    pub(crate) ha: Option<watch::Receiver<HaStatus>>,
    /// `api.token`, when one is configured.
    pub(crate) token: Option<Secret>,
    pub(crate) started: Instant,
    pub(crate) started_at: DateTime<Utc>,
    /// The start, in nanoseconds: part of every `ETag`, so a restart never repeats one.
    pub(crate) boot: i64,
    /// The store's file, when there is one: the change log is read from it.
    pub(crate) store: Option<std::path::PathBuf>,
    /// The console's signed-in browsers.
    pub(crate) sessions: Sessions,
}

impl ApiState {
    /// The control of the pollers running now (none on a standby: every request is refused).
    pub(crate) fn control(&self) -> Control {
        self.control
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub(crate) type AppState = Arc<ApiState>;

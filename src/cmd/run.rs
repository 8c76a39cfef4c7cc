//! `ses-inventory run` (the default): the daemon, until `shutdown` completes (SIGTERM/SIGINT).

use crate::cmd::logging;
use crate::cmd::root::{App, Notify};
use crate::config::Config;
use crate::serve::server;
use crate::time::clock::Clock;
use std::future::Future;
use std::sync::Arc;

pub async fn run(cfg: Arc<Config>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    logging::init(&cfg.log);
    tracing::info!(
        message = "Starting.",
        version = env!("CARGO_PKG_VERSION"),
        tmf638 = %cfg.tmf638.endpoint,
        tmf639 = %cfg.tmf639.endpoint,
        cache_update_frequency = cfg.poll.cache_update_frequency,
    );
    // Bound before the first upstream request: a port in use stops the start at once.
    let api = server::Bound::bind(&cfg.api).await?;
    let app = App::start(cfg, Clock::System, Some(api), Notify::FromEnv)?;
    shutdown.await;
    app.stop().await;
    tracing::info!(message = "Stopped.");
    Ok(())
}

//! `ses-inventory demo`: the simulator and the daemon in one process, with readable logs, so a
//! newcomer sees a buildup, retries, a skipped 504 page and refreshes without any setup.
//!
//! The demo polls every 20 seconds, far below the operator range (3600 s and up), so that
//! refreshes happen while someone watches; only this programmatic configuration can do that.

use crate::cmd::logging;
use crate::cmd::root::{App, Notify};
use crate::config::{Config, LogConfig, LogFormat};
use crate::model::inventory::Inventory;
use crate::model::secret::Secret;
use crate::serve::server;
use crate::time::clock::Clock;
use ses_inventory_sim::{Fault, FaultKind, SimConfig, Simulator};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Where the demo serves the read API (an ephemeral port when this one is busy).
pub(crate) const DEMO_API: (std::net::Ipv4Addr, u16) = (std::net::Ipv4Addr::LOCALHOST, 9638);
/// The demo's store, in the working directory: a second demo starts warm from it.
pub(crate) const DEMO_STORE: &str = "ses-inventory-demo.db";

/// Seconds between the demo's refresh polls.
pub(crate) const DEMO_FREQUENCY: u64 = 20;

/// The daemon configuration pointed at a running simulator, with demo timings.
pub fn config_for(sim: &Simulator, sim_cfg: &SimConfig) -> Config {
    let mut cfg = Config::defaults();
    cfg.tmf638.endpoint = sim.tmf638_url();
    cfg.tmf638.username = sim_cfg.tmf638_user.clone();
    cfg.tmf638.password = Secret::new(sim_cfg.tmf638_password.clone());
    cfg.tmf639.endpoint = sim.tmf639_url();
    cfg.tmf639.username = sim_cfg.tmf639_user.clone();
    cfg.tmf639.password = Secret::new(sim_cfg.tmf639_password.clone());
    cfg.http.bypass_proxy = true;
    cfg.http.retry_attempts = 3;
    cfg.http.retry_initial_delay_ms = 300;
    cfg.http.retry_max_delay_ms = 2_000;
    cfg.poll.cache_update_frequency = DEMO_FREQUENCY;
    cfg.poll.failure_backoff_initial = 5;
    cfg.poll.failure_backoff_max = 30;
    cfg.poll.status_interval = 30;
    // No store: tests and benchmarks build on this configuration; `run` below adds one.
    cfg.store.path = String::new();
    cfg.log = LogConfig {
        format: LogFormat::Pretty,
        level: "info".into(),
    };
    cfg
}

pub async fn run(shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let sim_cfg = SimConfig {
        services: 400,
        carriers: 150,
        resources: 800,
        latency: Duration::from_millis(40),
        ..SimConfig::default()
    };
    let sim = Simulator::start(sim_cfg.clone(), ([127, 0, 0, 1], 0).into()).await?;
    // Show the failure handling: one throttled page (retried after Retry-After), and one page the
    // gateway keeps timing out on during the first buildup (skipped; the pass is retried).
    sim.inject(Fault {
        inventory: Some(Inventory::Services.into()),
        page: Some(2),
        times: Some(1),
        ..Fault::new(FaultKind::Status {
            code: 429,
            retry_after: Some("1".into()),
        })
    });
    sim.inject(Fault {
        inventory: Some(Inventory::Resources.into()),
        page: Some(4),
        times: Some(3),
        ..Fault::new(FaultKind::Status {
            code: 504,
            retry_after: None,
        })
    });
    let mut cfg = config_for(&sim, &sim_cfg);
    cfg.store.path = DEMO_STORE.into();
    cfg.validate_timing()?;
    logging::init(&cfg.log);
    let listener = match tokio::net::TcpListener::bind(DEMO_API).await {
        Ok(l) => l,
        // Busy (another demo?): any free port will do.
        Err(_) => tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?,
    };
    let api_addr = listener.local_addr()?;
    println!(
        "ses-inventory demo: web console at http://{api_addr}/ — simulator at http://{} \
         ({} services, {} carriers, {} resources); refresh every {DEMO_FREQUENCY} s; data changes \
         every 10 s; store {DEMO_STORE}. Ctrl-C to stop.",
        sim.addr(),
        sim_cfg.services,
        sim_cfg.carriers,
        sim_cfg.resources,
    );
    println!(
        "Read API at http://{api_addr}, e.g.: curl -s 'http://{api_addr}/api/v1/services?limit=3&sort=-last_update' \
         (also /api/v1/status, /readyz, /metrics)"
    );
    let api = server::Bound::from_listener(listener, Secret::default());
    let app = App::start(Arc::new(cfg), Clock::System, Some(api), Notify::Off)?;
    // The simulator's data changes every 10 s, so refreshes have work to do.
    let changes = async {
        let mut ticker = tokio::time::interval(Duration::from_secs(10));
        ticker.tick().await;
        for step in 1.. {
            ticker.tick().await;
            sim.mutate(step);
        }
    };
    tokio::select! {
        _ = shutdown => {}
        _ = changes => {}
    }
    app.stop().await;
    sim.shutdown().await;
    Ok(())
}

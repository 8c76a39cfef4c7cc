//! The `ses-inventory` command line: the daemon and its companions.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ses_inventory::clock::Clock;
use ses_inventory::config::{self, Config};
use ses_inventory::daemon::Daemon;
use ses_inventory::store::{self, Store};
use ses_inventory::{api, demo, export, healthcheck, logging, notify, once, shutdown, sim};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Keeps a live copy of SES's TMF 638/639 service, carrier and resource inventory.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Without it: $SES_INVENTORY_CONFIG, then
    /// $CONFIGURATION_DIRECTORY/config.toml, then /etc/ses-inventory/config.toml if present;
    /// otherwise built-in defaults and the environment alone.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon (the default): build the cache, keep it current, until SIGTERM/SIGINT.
    Run,
    /// One full pass of all three inventories, then a JSON summary on stdout.
    /// Exits 1 if any inventory failed or skipped pages.
    SyncOnce,
    /// Validate the configuration and print it, passwords redacted.
    CheckConfig,
    /// Serve the built-in simulator of the upstream API.
    Sim(sim::SimArgs),
    /// Start the simulator and the daemon against it, with readable logs.
    Demo,
    /// Ask the running daemon's /healthz (on api.listen): exit 0 on 200, 1 otherwise.
    /// For container health checks; needs no shell tools.
    Healthcheck {
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Write one inventory from the store (store.path) as CSV, JSON or NDJSON; safe while the
    /// daemon runs.
    Export {
        /// services, carriers or resources.
        inventory: ses_inventory::Inventory,
        #[arg(long, value_enum, default_value = "csv")]
        format: export::Format,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Exit code for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let command = cli.command.unwrap_or(Command::Run);
    match command {
        Command::Sim(args) => exit(runtime.block_on(async {
            sim::run(args, shutdown::signal())
                .await
                .context("simulator")
        })),
        Command::Demo => exit(runtime.block_on(demo::run(shutdown::signal()))),
        command => {
            let file = cli.config.or_else(config::default_config_path);
            let cfg = match Config::load(file.as_deref()) {
                Ok(cfg) => Arc::new(cfg),
                Err(e) => {
                    eprintln!("error: {e}");
                    // Health checkers read 2 as reserved: unhealthy is 1.
                    if matches!(command, Command::Healthcheck { .. }) {
                        return ExitCode::FAILURE;
                    }
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match command {
                Command::CheckConfig => {
                    print!("{}", cfg.to_redacted_toml());
                    ExitCode::SUCCESS
                }
                Command::SyncOnce => runtime.block_on(sync_once(cfg)),
                Command::Healthcheck { timeout } => {
                    runtime.block_on(health(&cfg, std::time::Duration::from_secs(timeout)))
                }
                Command::Export {
                    inventory,
                    format,
                    output,
                } => exit(export_to(&cfg, inventory, format, output.as_deref())),
                _ => exit(runtime.block_on(run(cfg))),
            }
        }
    }
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: Arc<Config>) -> anyhow::Result<()> {
    logging::init(&cfg.log);
    tracing::info!(
        message = "Starting.",
        version = env!("CARGO_PKG_VERSION"),
        tmf638 = %cfg.tmf638.endpoint,
        tmf639 = %cfg.tmf639.endpoint,
        cache_update_frequency = cfg.poll.cache_update_frequency,
    );
    // Bound before the first upstream request: a port in use stops the start at once.
    let api = api::Bound::bind(&cfg.api).await?;
    let cache = ses_inventory::cache::Cache::new();
    let (journal, writer) = open_store(&cfg, &cache)?.unzip();
    let daemon = Daemon::start_with(cfg, Clock::System, cache, journal)?;
    let api = api.serve(daemon.cache().clone(), daemon.control());
    let notifier = notify::Notifier::from_env();
    let notifications = tokio::spawn(notify::run(
        daemon.cache().clone(),
        notifier.clone(),
        notify::watchdog_interval_from_env(),
    ));
    shutdown::signal().await;
    notifications.abort();
    notifier.stopping();
    api.shutdown().await;
    daemon.shutdown().await;
    if let Some(writer) = writer {
        writer.finish().await;
    }
    tracing::info!(message = "Stopped.");
    Ok(())
}

async fn sync_once(cfg: Arc<Config>) -> ExitCode {
    logging::init(&cfg.log);
    let cache = ses_inventory::cache::Cache::new();
    let (journal, writer) = match open_store(&cfg, &cache) {
        Ok(opened) => opened.unzip(),
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = once::sync_once(cfg, cache, journal).await;
    if let Some(writer) = writer {
        writer.finish().await;
    }
    match result {
        Ok(summary) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&summary).expect("summary serializes")
            );
            if once::all_complete(&summary) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn health(cfg: &Config, timeout: std::time::Duration) -> ExitCode {
    let result = match healthcheck::healthz_url(&cfg.api) {
        Ok(url) => healthcheck::check(&url, timeout).await.map(|()| url),
        Err(e) => Err(e),
    };
    match result {
        Ok(url) => {
            println!("healthy: {url} answered 200");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Opens `store.path` (unless empty), loads it into `cache` and starts its writer.
fn open_store(
    cfg: &Config,
    cache: &ses_inventory::cache::Cache,
) -> anyhow::Result<Option<(ses_inventory::sync::Journal, store::Writer)>> {
    let Some(path) = store::resolve_path(&cfg.store.path) else {
        return Ok(None);
    };
    let (store, _opened) = Store::open(&path)?;
    store.load(cache)?;
    Ok(Some(store.spawn_writer(cache.clone())))
}

fn export_to(
    cfg: &Config,
    inventory: ses_inventory::Inventory,
    format: export::Format,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let path = store::resolve_path(&cfg.store.path)
        .context("store.path is empty: there is no store to export from")?;
    match output {
        Some(file) => {
            let f = std::fs::File::create(file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            let mut w = std::io::BufWriter::new(f);
            export::export(&path, inventory, format, &mut w)?;
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            export::export(&path, inventory, format, &mut w)?;
        }
    }
    Ok(())
}

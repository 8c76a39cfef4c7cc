//! The `ses-inventory` command line: the daemon and its companions.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ses_inventory::cmd::{changes, demo, export, healthcheck, run, shutdown, sim, sync_once};
use ses_inventory::config::{self, Config};
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
    /// Print the read API's OpenAPI 3.1 document (as served at /api/v1/openapi.json), for
    /// generating clients offline.
    Openapi,
    /// Write one inventory from the store (store.path) as CSV, JSON, NDJSON or the upstream's
    /// JSON; safe while the daemon runs.
    Export {
        /// services, carriers or resources.
        inventory: ses_inventory::Inventory,
        #[arg(long, value_enum, default_value = "csv")]
        format: ses_inventory::store::export::Format,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the change log from the store (store.path), newest first: what each poll added,
    /// updated (which columns, from what to what) and removed; safe while the daemon runs.
    Changes {
        #[command(flatten)]
        filter: changes::Args,
        #[arg(long, value_enum, default_value = "csv")]
        format: changes::Format,
    },
}

/// Exit code for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    ses_inventory::cmd::memory::limit_arenas();
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
        Command::Openapi => exit(
            ses_inventory::cmd::print_stdout(&ses_inventory::serve::api::openapi::text())
                .context("writing to stdout"),
        ),
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
                Command::CheckConfig => exit(
                    ses_inventory::cmd::print_stdout(&cfg.to_redacted_toml())
                        .context("writing to stdout"),
                ),
                Command::SyncOnce => runtime.block_on(sync_once::command(cfg)),
                Command::Healthcheck { timeout } => runtime.block_on(healthcheck::command(
                    &cfg,
                    std::time::Duration::from_secs(timeout),
                )),
                Command::Export {
                    inventory,
                    format,
                    output,
                } => exit(export::command(&cfg, inventory, format, output.as_deref())),
                Command::Changes { filter, format } => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    exit(changes::command(&cfg, &filter, format, &mut out))
                }
                _ => exit(runtime.block_on(run::run(cfg, shutdown::signal()))),
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

//! `ses-inventory sim`: the simulator of the upstream API (crate `ses-inventory-sim`), served
//! from the command line.

use crate::model::inventory::Inventory;
use crate::model::secret::Secret;
use ses_inventory_sim::{Fault, SimConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

impl From<Inventory> for ses_inventory_sim::Inventory {
    fn from(inv: Inventory) -> Self {
        match inv {
            Inventory::Services => ses_inventory_sim::Inventory::Services,
            Inventory::Carriers => ses_inventory_sim::Inventory::Carriers,
            Inventory::Resources => ses_inventory_sim::Inventory::Resources,
        }
    }
}

/// Arguments of `ses-inventory sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8638")]
    pub listen: SocketAddr,
    /// Seed of the data generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of services.
    #[arg(long, default_value_t = 200)]
    pub services: usize,
    /// Number of carriers.
    #[arg(long, default_value_t = 80)]
    pub carriers: usize,
    /// Number of resources.
    #[arg(long, default_value_t = 400)]
    pub resources: usize,
    #[arg(long, default_value = "svc-user")]
    pub tmf638_user: String,
    #[arg(long, default_value = "svc-pass")]
    pub tmf638_password: Secret,
    #[arg(long, default_value = "res-user")]
    pub tmf639_user: String,
    #[arg(long, default_value = "res-pass")]
    pub tmf639_password: Secret,
    /// Added to every page response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Seconds between change steps (updates, deletions, additions); 0 = never.
    #[arg(long, default_value_t = 0)]
    pub(crate) change_every_secs: u64,
    /// Serve pages without `X-Total-Count` and `X-Result-Count` (the real gateway documents
    /// neither).
    #[arg(long)]
    pub(crate) no_total: bool,
    /// Move an item to the end of its dataset when it is updated, like a gateway that lists in
    /// `lastUpdate` order.
    #[arg(long)]
    pub resort_on_update: bool,
    /// Per mille of services and resources generated as ones the daemon's rules drop.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub(crate) not_kept_permille: u16,
    /// Per mille of fields written in their TMF v5 shape rather than v4.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub(crate) v5_permille: u16,
    /// Extra bytes of description per service and resource (larger items).
    #[arg(long, default_value_t = 0)]
    pub(crate) pad_bytes: usize,
    /// Fail requests: INVENTORY:PAGE:CODE:TIMES, e.g. services:3:504:1000 (`*` = any/forever).
    #[arg(long = "fail", value_name = "INVENTORY:PAGE:CODE:TIMES")]
    pub fail: Vec<String>,
}

impl SimArgs {
    pub fn config(&self) -> SimConfig {
        SimConfig {
            seed: self.seed,
            services: self.services,
            carriers: self.carriers,
            resources: self.resources,
            tmf638_user: self.tmf638_user.clone(),
            tmf638_password: self.tmf638_password.expose().to_string(),
            tmf639_user: self.tmf639_user.clone(),
            tmf639_password: self.tmf639_password.expose().to_string(),
            latency: Duration::from_millis(self.latency_ms),
            total_header: !self.no_total,
            resort_on_update: self.resort_on_update,
            mix: ses_inventory_sim::Mix {
                not_kept_permille: self.not_kept_permille.into(),
                v5_permille: self.v5_permille.into(),
                pad_bytes: self.pad_bytes,
            },
            ..SimConfig::default()
        }
    }

    pub fn faults(&self) -> Result<Vec<Fault>, String> {
        self.fail.iter().map(|s| Fault::parse_cli(s)).collect()
    }
}

/// Serves the simulator until `shutdown` completes.
pub async fn run(args: SimArgs, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let faults = args
        .faults()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    ses_inventory_sim::run(
        args.config(),
        args.listen,
        faults,
        Duration::from_secs(args.change_every_secs),
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[tokio::test]
    async fn arguments_make_the_simulator_and_bad_faults_are_refused() {
        let cli = Cli::parse_from([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--services",
            "3",
            "--fail",
            "services:3:504:1000",
        ]);
        assert_eq!(cli.sim.config().services, 3);
        assert_eq!(cli.sim.config().tmf639_user, "res-user");
        assert!(cli.sim.config().total_header && !cli.sim.config().resort_on_update);
        let dialect = Cli::parse_from(["sim", "--no-total", "--resort-on-update"]);
        assert!(!dialect.sim.config().total_header && dialect.sim.config().resort_on_update);
        assert_eq!(cli.sim.faults().unwrap()[0].times, Some(1000));
        assert!(!format!("{:?}", cli.sim).contains("svc-pass"));
        let bad = Cli::parse_from(["sim", "--fail", "nope"]);
        let err = run(bad.sim, async {}).await.unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}

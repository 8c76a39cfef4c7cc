//! `ses-inventory export`: one inventory from the store, to a file or stdout.

use crate::config::Config;
use crate::model::inventory::Inventory;
use crate::store::{self, export};
use anyhow::Context;
use std::path::Path;

pub fn command(
    cfg: &Config,
    inventory: Inventory,
    format: export::Format,
    output: Option<&Path>,
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

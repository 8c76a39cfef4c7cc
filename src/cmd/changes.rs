//! `ses-inventory changes`: the change log from the store (read-only: safe while the daemon
//! runs), newest first, as CSV, JSON or NDJSON.

use crate::config::Config;
use crate::model::inventory::Inventory;
use crate::store::changes::{self, Change, ChangeFilter, ChangeKind};
use crate::store::{self, export::write_csv_line};
use anyhow::{Context, bail};
use chrono::Utc;
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Ndjson,
}

/// What to read: the CLI's options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Args {
    /// Only this inventory (services, carriers or resources).
    #[arg(long)]
    pub inventory: Option<Inventory>,
    /// Only this item's changes.
    #[arg(long)]
    pub id: Option<String>,
    /// Only these kinds (comma-separated: baseline, added, updated, removed).
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Only updates that changed this column.
    #[arg(long)]
    pub column: Option<String>,
    /// Since this time: RFC 3339, or a span back from now (30m, 24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many entries (default: all).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// The CSV header; each entry's fields follow it in this order.
const CSV_HEADER: [&str; 10] = [
    "seq",
    "at",
    "inventory",
    "id",
    "kind",
    "poll_kind",
    "poll_reason",
    "columns",
    "reason",
    "items",
];

pub fn command(
    cfg: &Config,
    args: &Args,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let path = store::resolve_path(&cfg.store.path)
        .context("store.path is empty: there is no store to read the change log from")?;
    let now = Utc::now();
    let time = |flag: &str, v: &Option<String>| -> anyhow::Result<_> {
        v.as_deref()
            .map(|v| {
                crate::time::format::parse_or_span(v, now).with_context(|| {
                    format!(
                        "--{flag}: `{v}` is neither an RFC 3339 time nor a span like 30m, 24h or 7d"
                    )
                })
            })
            .transpose()
    };
    let mut kinds = Vec::new();
    for k in &args.kind {
        match ChangeKind::parse(k) {
            Some(k) => kinds.push(k),
            None => bail!("--kind: `{k}` is not baseline, added, updated or removed"),
        }
    }
    let mut filter = ChangeFilter {
        inventory: args.inventory,
        key: args.id.clone(),
        kinds,
        column: args.column.clone(),
        since: time("since", &args.since)?,
        until: time("until", &args.until)?,
        poll: None,
        before_id: None,
        limit: 1000,
    };
    let conn = store::open_read_only(&path)?;
    let mut left = args.limit.unwrap_or(usize::MAX);
    let mut first = true;
    if format == Format::Csv {
        write_csv_line(out, CSV_HEADER.iter().map(|h| Some(*h)))?;
    }
    if format == Format::Json {
        out.write_all(b"[")?;
    }
    while left > 0 {
        filter.limit = left.min(1000);
        let mut page = changes::list(&conn, &filter)
            .with_context(|| format!("store {}: reading the change log", path.display()))?;
        let more = page.len() > filter.limit;
        page.truncate(filter.limit);
        for change in &page {
            write_one(out, format, change, first)?;
            first = false;
        }
        left -= page.len();
        match page.last() {
            Some(last) if more => filter.before_id = Some(last.seq),
            _ => break,
        }
    }
    if format == Format::Json {
        out.write_all(b"]\n")?;
    }
    out.flush()?;
    Ok(())
}

fn write_one(out: &mut dyn Write, format: Format, c: &Change, first: bool) -> std::io::Result<()> {
    match format {
        Format::Json => {
            if !first {
                out.write_all(b",")?;
            }
            out.write_all(b"\n")?;
            serde_json::to_writer(&mut *out, c)?;
            Ok(())
        }
        Format::Ndjson => {
            serde_json::to_writer(&mut *out, c)?;
            out.write_all(b"\n")
        }
        Format::Csv => {
            let seq = c.seq.to_string();
            let columns = c.columns.as_ref().map(|v| v.to_string());
            let items = c.items.map(|n| n.to_string());
            let fields = [
                Some(seq.as_str()),
                Some(c.at.as_str()),
                Some(c.inventory.as_str()),
                Some(c.id.as_str()),
                Some(c.kind.as_str()),
                Some(c.poll_kind.as_str()),
                c.poll_reason.as_deref(),
                columns.as_deref(),
                c.reason.as_deref(),
                items.as_deref(),
            ];
            write_csv_line(out, fields.into_iter())
        }
    }
}

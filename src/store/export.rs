//! `ses-inventory export`: one inventory from the store as CSV, JSON, NDJSON, or the upstream's
//! own JSON.
//!
//! Reads the SQLite file read-only (safe while the daemon writes: WAL gives the export one
//! consistent snapshot), row by row, so memory stays flat however large the inventory.
//!
//! - CSV: a heading line with the connector's headings (`ID` first, `First Seen` and
//!   `Last Seen` last), one line per item, RFC 4180 quoting; lists joined with `"; "` as
//!   [`crate::model::row::Cell::to_text`] shows them.
//! - JSON: one array of objects; NDJSON: one object per line. Each object holds `id`, every
//!   column by its snake_case name ([`crate::model::row::Cell::to_json`] values: lists as arrays of
//!   entries, dates as RFC 3339 text), `first_seen` and `last_seen`.
//! - Upstream: each item's JSON as the upstream served it (compact), one per line: what
//!   `json_extract(raw, ...)` read before the store compressed it.

use super::compression::Decoders;
use crate::model::inventory::Inventory;
use crate::model::row::{ColumnKind, Entry, Row};
use crate::store::{self, StoreError};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Ndjson,
    /// Each item's upstream JSON (compact), one per line.
    Upstream,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store {path}: reading {inventory}: {error}")]
    Read {
        path: String,
        inventory: Inventory,
        error: rusqlite::Error,
    },
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes every item of `inv` in `store_path` to `out`; returns how many.
pub fn export(
    store_path: &Path,
    inv: Inventory,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let mut conn = store::open_read_only(store_path)?;
    let read = |source| ExportError::Read {
        path: store_path.display().to_string(),
        inventory: inv,
        error: source,
    };
    // One read transaction: a consistent snapshot even while the daemon commits.
    let tx = conn.transaction().map_err(read)?;
    if format == Format::Upstream {
        return upstream(&tx, inv, out).map_err(|e| match e {
            Failure::Read(e) => read(e),
            Failure::Write(e) => ExportError::Write(e),
        });
    }
    let cols = Row::columns(inv);
    let names: Vec<String> = cols.iter().map(|c| format!("t.\"{}\"", c.name)).collect();
    // A file the daemon has not upgraded yet (schema 3 and before) holds each row's own.
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(read)?;
    let last_seen = if version >= 4 {
        store::LAST_SEEN
    } else {
        "t.last_seen"
    };
    let mut stmt = tx
        .prepare(&format!(
            "SELECT t.key, {}, t.first_seen, {last_seen} FROM \"{}\" t ORDER BY t.key",
            names.join(", "),
            store::table(inv)
        ))
        .map_err(read)?;
    let bound: &[&str] = if version >= 4 { &[inv.as_str()] } else { &[] };
    let mut rows = stmt
        .query(rusqlite::params_from_iter(bound))
        .map_err(read)?;
    let mut count = 0u64;
    match format {
        Format::Csv => {
            let mut heading = vec!["ID"];
            heading.extend(cols.iter().map(|c| c.heading));
            heading.extend(["First Seen", "Last Seen"]);
            write_csv_line(out, heading.iter().map(|s| Some(*s)))?;
        }
        Format::Json => out.write_all(b"[")?,
        Format::Ndjson | Format::Upstream => {}
    }
    while let Some(r) = rows.next().map_err(read)? {
        let text = |i: usize| r.get::<_, Option<String>>(i).map_err(read);
        let mut values: Vec<Option<String>> = Vec::with_capacity(cols.len() + 3);
        for i in 0..cols.len() + 3 {
            values.push(text(i)?);
        }
        match format {
            Format::Csv => {
                let cells = values.iter().enumerate().map(|(i, v)| {
                    let kind = (1..=cols.len()).contains(&i).then(|| cols[i - 1].kind);
                    match kind {
                        Some(ColumnKind::One | ColumnKind::Many) => v.as_deref().and_then(readable),
                        _ => v.clone(),
                    }
                });
                let cells: Vec<Option<String>> = cells.collect();
                write_csv_line(out, cells.iter().map(Option::as_deref))?;
            }
            Format::Json | Format::Ndjson | Format::Upstream => {
                let mut obj = Map::new();
                let mut it = values.into_iter();
                obj.insert("id".into(), it.next().flatten().into());
                for c in cols {
                    let v = it.next().flatten();
                    let json = match c.kind {
                        ColumnKind::Text | ColumnKind::Time => v.map_or(Value::Null, Value::String),
                        ColumnKind::One => v
                            .and_then(|s| serde_json::from_str(&s).ok())
                            .unwrap_or(Value::Null),
                        ColumnKind::Many => v
                            .and_then(|s| serde_json::from_str(&s).ok())
                            .unwrap_or_else(|| Value::Array(Vec::new())),
                    };
                    obj.insert(c.name.into(), json);
                }
                obj.insert("first_seen".into(), it.next().flatten().into());
                obj.insert("last_seen".into(), it.next().flatten().into());
                if format == Format::Json && count > 0 {
                    out.write_all(b",")?;
                }
                if format == Format::Json {
                    out.write_all(b"\n")?;
                }
                serde_json::to_writer(&mut *out, &obj).map_err(std::io::Error::other)?;
                if format == Format::Ndjson {
                    out.write_all(b"\n")?;
                }
            }
        }
        count += 1;
    }
    if format == Format::Json {
        out.write_all(b"\n]\n")?;
    }
    out.flush()?;
    Ok(count)
}

enum Failure {
    Read(rusqlite::Error),
    Write(std::io::Error),
}

/// Every item's upstream JSON, one per line, in key order.
fn upstream(
    tx: &rusqlite::Transaction<'_>,
    inv: Inventory,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    let mut decoders = Decoders::read(tx, inv).map_err(Failure::Read)?;
    let mut stmt = tx
        .prepare(&format!(
            "SELECT raw, raw_dict FROM \"{}\" ORDER BY key",
            store::table(inv)
        ))
        .map_err(Failure::Read)?;
    let mut rows = stmt.query([]).map_err(Failure::Read)?;
    let mut count = 0;
    while let Some(r) = rows.next().map_err(Failure::Read)? {
        let json = r
            .get_ref(0)
            .and_then(|raw| decoders.json(raw, r.get(1)?, 0))
            .map_err(Failure::Read)?;
        out.write_all(json.as_bytes()).map_err(Failure::Write)?;
        out.write_all(b"\n").map_err(Failure::Write)?;
        count += 1;
    }
    out.flush().map_err(Failure::Write)?;
    Ok(count)
}

/// A stored entry (JSON object) or list of entries (JSON array) as readable text, as
/// [`crate::model::row::Cell::to_text`] shows it.
fn readable(json: &str) -> Option<String> {
    let value: Value = serde_json::from_str(json).ok()?;
    let entry = |v: Value| serde_json::from_value::<Entry>(v).unwrap_or_default();
    let text = match value {
        Value::Array(list) => list
            .into_iter()
            .map(|v| entry(v).to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => return None,
        v => entry(v).to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// One CSV record (RFC 4180): fields quoted when they hold a comma, quote, CR or LF. (The
/// console's CSV download writes its lines with it too.)
pub(crate) fn write_csv_line<'a>(
    out: &mut dyn Write,
    fields: impl Iterator<Item = Option<&'a str>>,
) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, field) in fields.enumerate() {
        if i > 0 {
            line.push(',');
        }
        let f = field.unwrap_or("");
        if f.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&f.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(f);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let mut out = Vec::new();
        write_csv_line(
            &mut out,
            [
                Some("a"),
                None,
                Some("b,c"),
                Some("say \"hi\""),
                Some("x\ny"),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\r\n"
        );
    }

    #[test]
    fn lists_read_like_the_cache_shows_them() {
        let entries = vec![
            Entry {
                name: Some("Band".into()),
                value: Some("Ku".into()),
                ..Entry::default()
            },
            Entry {
                id: Some("R1".into()),
                role: Some("site".into()),
                ..Entry::default()
            },
        ];
        let cell = crate::model::row::Cell::Many(entries.into());
        let stored = cell.to_json().to_string();
        assert_eq!(readable(&stored), cell.to_text());
        assert_eq!(readable("[]"), None);
    }
}

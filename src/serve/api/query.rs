//! The list query: filters, `q`, `sort`, paging and `fields`, parsed once from the query string
//! and then applied to a snapshot of items (never under the cache lock).

use crate::model::inventory::Inventory;
use crate::model::item::Item;
use crate::model::row::{Cell, Row};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::sync::Arc;

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;

/// A parameter that cannot be honoured; the message names it.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(
        "unknown column `{column}` for {inventory} in `{param}`; columns: {}",
        columns(*inventory).join(", ")
    )]
    UnknownColumn {
        inventory: Inventory,
        column: String,
        param: &'static str,
    },
    #[error("`{param}={value}` is not valid: {expected}")]
    BadValue {
        param: String,
        value: String,
        expected: String,
    },
    #[error("`{0}` is given more than once")]
    Repeated(String),
}

/// The column names a client may use: `id` (the cache key), then the row's columns.
pub fn columns(inventory: Inventory) -> Vec<&'static str> {
    std::iter::once("id")
        .chain(Row::columns(inventory).iter().map(|c| c.name))
        .collect()
}

/// A column of a list: the key, or the row's column at an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Id,
    Column(usize),
}

impl Field {
    fn parse(inventory: Inventory, name: &str, param: &'static str) -> Result<Field, QueryError> {
        if name == "id" {
            return Ok(Field::Id);
        }
        Row::columns(inventory)
            .iter()
            .position(|c| c.name == name)
            .map(Field::Column)
            .ok_or_else(|| QueryError::UnknownColumn {
                inventory,
                column: name.to_string(),
                param,
            })
    }

    fn name(self, inventory: Inventory) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Column(i) => Row::columns(inventory)[i].name,
        }
    }

    fn json(self, item: &Item) -> Value {
        match self {
            Field::Id => Value::String(item.key.to_string()),
            Field::Column(i) => item.row.cell(i).to_json(),
        }
    }
}

/// A parsed list query.
#[derive(Debug)]
pub struct ListQuery {
    inventory: Inventory,
    /// Equality filters: a row matches when, for every field, its text equals one of the values
    /// (an empty value matches an empty cell).
    filters: Vec<(Field, Vec<String>)>,
    /// Lower-cased substring searched in id, external_id, name and description.
    q: Option<String>,
    sort: Vec<(Field, bool)>,
    pub offset: usize,
    pub limit: usize,
    fields: Vec<Field>,
}

/// One page of a list and the total it was cut from.
pub struct ListPage {
    pub total: usize,
    pub rows: Vec<Value>,
}

fn number(param: &str, value: &str, max: usize) -> Result<usize, QueryError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| QueryError::BadValue {
            param: param.into(),
            value: value.into(),
            expected: format!("a whole number from 0 to {max}"),
        })
}

impl ListQuery {
    /// Parses the query pairs of `GET /api/v1/{inventory}`. Every parameter that is not `q`,
    /// `sort`, `offset`, `limit` or `fields` is an equality filter on the column of that name.
    pub fn parse(
        inventory: Inventory,
        pairs: &[(String, String)],
    ) -> Result<ListQuery, QueryError> {
        let mut query = ListQuery {
            inventory,
            filters: Vec::new(),
            q: None,
            sort: Vec::new(),
            offset: 0,
            limit: DEFAULT_LIMIT,
            fields: Vec::new(),
        };
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            let reserved = matches!(key.as_str(), "q" | "sort" | "offset" | "limit" | "fields");
            if reserved {
                if seen.contains(&key.as_str()) {
                    return Err(QueryError::Repeated(key.clone()));
                }
                seen.push(key);
            }
            match key.as_str() {
                "q" => {
                    let q = value.trim().to_lowercase();
                    query.q = (!q.is_empty()).then_some(q);
                }
                "offset" => query.offset = number("offset", value, usize::MAX)?,
                "limit" => query.limit = number("limit", value, MAX_LIMIT)?,
                "sort" => {
                    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let (name, descending) = match part.strip_prefix('-') {
                            Some(name) => (name, true),
                            None => (part.strip_prefix('+').unwrap_or(part), false),
                        };
                        query
                            .sort
                            .push((Field::parse(inventory, name, "sort")?, descending));
                    }
                }
                "fields" => {
                    query.fields.push(Field::Id);
                    for name in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let field = Field::parse(inventory, name, "fields")?;
                        if !query.fields.contains(&field) {
                            query.fields.push(field);
                        }
                    }
                }
                name => {
                    let field = Field::parse(inventory, name, "filter")?;
                    match query.filters.iter_mut().find(|(f, _)| *f == field) {
                        Some((_, values)) => values.push(value.clone()),
                        None => query.filters.push((field, vec![value.clone()])),
                    }
                }
            }
        }
        if query.fields.is_empty() {
            query.fields.push(Field::Id);
            query
                .fields
                .extend((0..Row::columns(inventory).len()).map(Field::Column));
        }
        Ok(query)
    }

    fn matches(&self, item: &Item) -> bool {
        let filtered = self.filters.iter().all(|(field, values)| {
            // Text cells compare in place; other kinds through their text form.
            let cell = match field {
                Field::Id => Cell::Text(Some(item.key.as_str())),
                Field::Column(i) => item.row.cell(*i),
            };
            match cell {
                Cell::Text(t) => {
                    let t = t.unwrap_or_default();
                    values.iter().any(|v| v == t)
                }
                _ => values.contains(&cell.to_text().unwrap_or_default()),
            }
        });
        filtered
            && self.q.as_ref().is_none_or(|q| {
                contains_caseless(item.key.as_str(), q)
                    || [0, 1, 2].into_iter().any(|i| {
                        // external_id, name and description are the first three columns of every
                        // inventory.
                        matches!(item.row.cell(i), Cell::Text(Some(t)) if contains_caseless(t, q))
                    })
            })
    }

    /// Orders two items: the sort keys in turn (empty cells last, either direction), then the id
    /// so that paging is stable.
    fn compare(&self, a: &Item, b: &Item) -> Ordering {
        for &(field, descending) in &self.sort {
            let ord = match field {
                Field::Id => a.key.cmp(&b.key),
                Field::Column(i) => compare_cells(a.row.cell(i), b.row.cell(i)),
            };
            let ord = match ord {
                Ordering::Equal => continue,
                // Empty sorts last whatever the direction.
                _ if is_empty(a, field) || is_empty(b, field) => ord,
                _ if descending => ord.reverse(),
                _ => ord,
            };
            return ord;
        }
        a.key.cmp(&b.key)
    }

    /// Filters, sorts and pages `items` (a snapshot), and renders the page's rows.
    pub fn run(&self, mut items: Vec<Arc<Item>>) -> ListPage {
        items.retain(|item| self.matches(item));
        let total = items.len();
        let end = self.offset.saturating_add(self.limit).min(total);
        if self.offset >= end {
            return ListPage {
                total,
                rows: Vec::new(),
            };
        }
        // Only the first `end` items need a full sort.
        if end < total {
            items.select_nth_unstable_by(end, |a, b| self.compare(a, b));
            items.truncate(end);
        }
        items.sort_unstable_by(|a, b| self.compare(a, b));
        let rows = items[self.offset..end]
            .iter()
            .map(|item| self.render(item))
            .collect();
        ListPage { total, rows }
    }

    /// The names of the chosen fields, `id` first: the keys of every rendered row, in order.
    pub fn field_names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|f| f.name(self.inventory)).collect()
    }

    /// One row as a JSON object of the chosen fields, `id` first.
    pub fn render(&self, item: &Item) -> Value {
        let mut obj = Map::new();
        for &field in &self.fields {
            obj.insert(field.name(self.inventory).to_string(), field.json(item));
        }
        Value::Object(obj)
    }
}

/// The full row of an item (every column, `id` first).
pub fn full_row(inventory: Inventory, item: &Item) -> Value {
    ListQuery::parse(inventory, &[])
        .expect("no parameters always parse")
        .render(item)
}

fn is_empty(item: &Item, field: Field) -> bool {
    match field {
        Field::Id => false,
        Field::Column(i) => item.row.cell(i).is_empty(),
    }
}

/// Whether `hay` contains `needle` (already lower-case), ignoring case; without allocating when
/// the needle is ASCII (the common case: ids, names).
fn contains_caseless(hay: &str, needle: &str) -> bool {
    if needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        hay.to_lowercase().contains(needle)
    }
}

/// Text compared case-insensitively without allocating.
fn caseless(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

/// Compares two cells of one column: empty last; text case-insensitively (then exactly); times
/// by value; others by their text.
fn compare_cells(a: Cell<'_>, b: Cell<'_>) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    match (a, b) {
        (Cell::Text(Some(x)), Cell::Text(Some(y))) => {
            caseless(x).cmp(caseless(y)).then_with(|| x.cmp(y))
        }
        (Cell::Time(x), Cell::Time(y)) => x.cmp(&y),
        _ => a.to_text().cmp(&b.to_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::item::Key;
    use chrono::Utc;
    use serde_json::json;

    fn item(id: &str, name: Option<&str>, status: &str) -> Arc<Item> {
        let mut v = json!({"externalId": id, "status": status, "@type": "CFS"});
        if let Some(n) = name {
            v["name"] = json!(n);
        }
        let row = Row::extract(Inventory::Services, &v);
        Arc::new(Item::new(
            Key::new(id),
            v.to_string().into(),
            row,
            Utc::now(),
            Utc::now(),
        ))
    }

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ids(page: &ListPage) -> Vec<&str> {
        page.rows
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect()
    }

    fn items() -> Vec<Arc<Item>> {
        vec![
            item("B", Some("beta"), "Operational"),
            item("A", Some("Alpha"), "Planned"),
            item("C", None, "Operational"),
            item("D", Some("delta"), "Operational"),
        ]
    }

    fn run(s: &[(&str, &str)]) -> ListPage {
        ListQuery::parse(Inventory::Services, &pairs(s))
            .unwrap()
            .run(items())
    }

    #[test]
    fn filters_search_sort_and_page() {
        assert_eq!(ids(&run(&[])), ["A", "B", "C", "D"]);
        let p = run(&[("status", "Operational"), ("sort", "-name")]);
        assert_eq!(
            (p.total, ids(&p)),
            (3, vec!["D", "B", "C"]),
            "empty name last"
        );
        assert_eq!(ids(&run(&[("sort", "name")])), ["A", "B", "D", "C"]);
        assert_eq!(ids(&run(&[("q", "ALP")])), ["A"]);
        assert_eq!(ids(&run(&[("q", "d")])), ["D"]);
        let p = run(&[("offset", "1"), ("limit", "2")]);
        assert_eq!((p.total, ids(&p)), (4, vec!["B", "C"]));
        assert!(run(&[("offset", "9")]).rows.is_empty());
        assert_eq!(
            ids(&run(&[
                ("status", "Planned"),
                ("status", "Operational"),
                ("limit", "1")
            ])),
            ["A"]
        );
        let p = run(&[("fields", "name")]);
        assert_eq!(p.rows[0], json!({"id": "A", "name": "Alpha"}));
        assert_eq!(
            ids(&run(&[("name", "")])),
            ["C"],
            "an empty value matches an empty cell"
        );
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (k, v, needle) in [
            ("colour", "red", "colour"),
            ("sort", "-colour", "colour"),
            ("fields", "name,colour", "colour"),
            ("limit", "1001", "limit"),
            ("limit", "ten", "ten"),
            ("offset", "-1", "offset"),
        ] {
            let err = ListQuery::parse(Inventory::Services, &pairs(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{k}={v}: {err}");
        }
        let err = ListQuery::parse(
            Inventory::Services,
            &pairs(&[("limit", "1"), ("limit", "2")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("limit"), "{err}");
    }
}

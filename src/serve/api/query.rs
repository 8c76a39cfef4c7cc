//! The list query: filters, `q`, `sort`, paging and `fields`, parsed once from the query string
//! and then applied to a snapshot of items (never under the cache lock).

mod matches;

use crate::cache::view::{POSTED, View};
use crate::model::inventory::Inventory;
use crate::model::item::Item;
use crate::model::row::{Cell, Row};
use matches::Matches;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

/// Rows per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub(crate) const MAX_LIMIT: usize = 1000;

/// The list parameters that are not column filters.
pub(crate) const RESERVED: [&str; 6] = ["q", "sort", "offset", "limit", "fields", "after"];

/// A parameter that cannot be honoured; the message names it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
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
        Row::column_index(inventory, name)
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
            Field::Column(i) => item.cell(i).to_json(),
        }
    }
}

/// A parsed list query.
#[derive(Debug)]
pub(crate) struct ListQuery {
    inventory: Inventory,
    /// Equality filters: a row matches when, for every field, its text equals one of the values
    /// (an empty value matches an empty cell).
    filters: Vec<(Field, Vec<String>)>,
    /// Lower-cased substring searched in id, external_id, name and description.
    q: Option<String>,
    sort: Vec<(Field, bool)>,
    pub offset: usize,
    pub limit: usize,
    /// The cursor: rows after this id, in the default order.
    pub after: Option<String>,
    fields: Vec<Field>,
}

/// One page of a list and the total it was cut from.
pub(crate) struct ListPage {
    pub total: usize,
    /// The page's items, in order.
    pub items: Vec<Arc<Item>>,
    /// Where the next page starts, when there are rows after this one.
    pub next: Option<Next>,
    inventory: Inventory,
    fields: Vec<Field>,
}

impl ListPage {
    /// The rows shown.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The rows as JSON objects of the chosen fields, `id` first.
    pub fn rows(&self) -> Vec<Value> {
        self.items
            .iter()
            .map(|item| render(self.inventory, &self.fields, item))
            .collect()
    }

    /// The rows as a JSON array's text, written straight from the cells (no `Value`).
    pub fn to_json(&self) -> Vec<u8> {
        struct Rows<'p>(&'p ListPage);
        impl Serialize for Rows<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let page = self.0;
                let mut seq = s.serialize_seq(Some(page.items.len()))?;
                for item in &page.items {
                    seq.serialize_element(&RowJson {
                        inventory: page.inventory,
                        fields: &page.fields,
                        item,
                    })?;
                }
                seq.end()
            }
        }
        // Strings, dates and entries of strings: serializing them cannot fail.
        serde_json::to_vec(&Rows(self)).unwrap_or_default()
    }
}

/// One row of chosen fields, serialized in place.
struct RowJson<'a> {
    inventory: Inventory,
    fields: &'a [Field],
    item: &'a Item,
}

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for &field in self.fields {
            let name = field.name(self.inventory);
            match field {
                Field::Id => map.serialize_entry(name, self.item.key.as_str())?,
                Field::Column(i) => map.serialize_entry(name, &self.item.cell(i))?,
            }
        }
        map.end()
    }
}

/// The next page of a list: by cursor in the default order, else by offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    After(String),
    Offset(usize),
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
            after: None,
            fields: Vec::new(),
        };
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            if RESERVED.contains(&key.as_str()) {
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
                "after" => query.after = Some(value.clone()),
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
        if let Some(after) = &query.after {
            let by_id = query.sort.is_empty() || query.sort == [(Field::Id, false)];
            if !by_id || seen.contains(&"offset") {
                return Err(QueryError::BadValue {
                    param: "after".into(),
                    value: after.clone(),
                    expected: "a cursor for the default order (by id), without `offset` or \
                               another `sort`"
                        .into(),
                });
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

    /// Whether `item` passes every filter and `q` (the reference the view's indexes agree with).
    #[cfg(test)]
    fn matches(&self, item: &Item) -> bool {
        self.filters
            .iter()
            .all(|(field, values)| matches_filter(item, *field, values))
            && self.found(item)
    }

    /// Orders two items: the sort keys in turn (empty cells last, either direction), then the id
    /// so that paging is stable.
    fn compare(&self, a: &Item, b: &Item) -> Ordering {
        for &(field, descending) in &self.sort {
            let ord = match field {
                Field::Id => a.key.cmp(&b.key),
                Field::Column(i) => a.cell(i).compare(&b.cell(i)),
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

    /// Filters, sorts and pages the inventory `view`, and renders the page's rows. Equality
    /// filters on status and type start from the view's postings, a sort by one column reads
    /// the view's order for it, the default order is the view's own: only a sort by several
    /// columns sorts the matching items here.
    pub fn run(&self, view: &View) -> ListPage {
        let items = view.items();
        // Positions (ascending, so in key order) of the matching items; `None`: all of them.
        let matched = self.matching(view);
        let total = matched.total();
        // Where the page starts among the matching items in their order: the offset, or (the
        // default order only) the number of matches up to the cursor.
        let from = match &self.after {
            None => self.offset.min(total),
            Some(after) => matched.before(view.position_after(after) as u32),
        };
        let end = from.saturating_add(self.limit).min(total);
        let page: Vec<u32> = if from >= end {
            Vec::new()
        } else {
            match self.sort.as_slice() {
                [] | [(Field::Id, false)] => matched.range(from, end),
                [(Field::Id, true)] => {
                    let mut page = matched.range(total - end, total - from);
                    page.reverse();
                    page
                }
                [(Field::Column(c), descending)] => {
                    let order = view.order(*c, *descending);
                    match &matched {
                        Matches::All(_) => order[from..end].to_vec(),
                        _ => {
                            let bits = matched.bits(items.len());
                            order
                                .iter()
                                .copied()
                                .filter(|&at| matches::has(&bits, at))
                                .skip(from)
                                .take(end - from)
                                .collect()
                        }
                    }
                }
                _ => {
                    let mut list = matched.into_list();
                    let compare =
                        |a: &u32, b: &u32| self.compare(&items[*a as usize], &items[*b as usize]);
                    // Only the first `end` items need a full sort.
                    if end < list.len() {
                        list.select_nth_unstable_by(end, compare);
                        list.truncate(end);
                    }
                    list.sort_unstable_by(compare);
                    list[from..end].to_vec()
                }
            }
        };
        let rows: Vec<Arc<Item>> = page.iter().map(|&at| items[at as usize].clone()).collect();
        let next = (end < total).then(|| match (&self.sort[..], page.last()) {
            // A cursor in the default order, unless the client pages by offset.
            ([] | [(Field::Id, false)], Some(&last)) if self.offset == 0 => {
                Next::After(items[last as usize].key.to_string())
            }
            _ => Next::Offset(end),
        });
        ListPage {
            total,
            items: rows,
            next,
            inventory: self.inventory,
            fields: self.fields.clone(),
        }
    }

    /// Whether running the query on `view` may take more than a moment: a search, a filter
    /// without postings or whose postings `view` has not built yet, a sort by a column (whose
    /// order may still have to be built) or by several.
    pub(crate) fn may_be_slow(&self, view: &View) -> bool {
        self.q.is_some()
            || self.filters.iter().any(|(field, _)| match field {
                Field::Column(c) if POSTED.contains(c) => !view.has_postings(*c),
                _ => true,
            })
            || !matches!(self.sort.as_slice(), [] | [(Field::Id, _)])
    }

    /// The items of `view` that pass every filter and `q`. One dense value per filter on status
    /// and type (a dashboard's query) intersects bitsets; otherwise the postings narrow the
    /// candidates, `q` the view's search text, and the other filters are checked item by item.
    fn matching<'v>(&self, view: &'v View) -> Matches<'v> {
        let items = view.items();
        let posted = |field: &Field| match field {
            Field::Column(c) if POSTED.contains(c) => Some(*c),
            _ => None,
        };
        if self.q.is_none() && !self.filters.is_empty() {
            let dense: Option<Vec<&[u64]>> = self
                .filters
                .iter()
                .map(|(field, values)| match values.as_slice() {
                    [one] => view.posting_bits(posted(field)?, one),
                    _ => None,
                })
                .collect();
            if let Some(sets) = dense {
                return Matches::and(&sets);
            }
        }
        let mut matched: Option<Cow<'v, [u32]>> = None;
        let mut rest = Vec::new();
        for filter @ (field, values) in &self.filters {
            let Some(column) = posted(field) else {
                rest.push(filter);
                continue;
            };
            let posting = |v: &str| view.posting(column, v).unwrap_or_default();
            let list = match values.as_slice() {
                [one] => Cow::Borrowed(posting(one)),
                _ => {
                    let mut union: Vec<u32> =
                        values.iter().flat_map(|v| posting(v)).copied().collect();
                    union.sort_unstable();
                    union.dedup();
                    Cow::Owned(union)
                }
            };
            matched = Some(match matched {
                None => list,
                Some(before) => Cow::Owned(intersect(&before, &list)),
            });
        }
        // The view's search text finds `q` exactly unless `q` holds the NUL that separates an
        // item's fields there (then a hit may span two fields, and each is checked below).
        let exact = self.q.as_ref().is_none_or(|q| !q.contains('\0'));
        if let Some(q) = &self.q {
            let hits = view.search(q);
            matched = Some(match matched {
                None => Cow::Owned(hits),
                Some(before) => Cow::Owned(intersect(&before, &hits)),
            });
        }
        let keep = |at: &u32| {
            let item = &items[*at as usize];
            rest.iter().all(|(f, v)| matches_filter(item, *f, v)) && (exact || self.found(item))
        };
        if !rest.is_empty() || !exact {
            matched = Some(Cow::Owned(match matched {
                Some(list) => list.iter().copied().filter(keep).collect(),
                None => (0..items.len() as u32).filter(keep).collect(),
            }));
        }
        match matched {
            Some(list) => Matches::List(list),
            None => Matches::All(items.len()),
        }
    }

    /// Whether `item` holds the `q` text (case-insensitively) in its id, external id, name or
    /// description; true without `q`.
    fn found(&self, item: &Item) -> bool {
        self.q.as_ref().is_none_or(|q| {
            contains_caseless(item.key.as_str(), q)
                || [0, 1, 2].into_iter().any(|i| {
                    // external_id, name and description are the first three columns of every
                    // inventory.
                    matches!(item.cell(i), Cell::Text(Some(t)) if contains_caseless(t, q))
                })
        })
    }

    /// The names of the chosen fields, `id` first: the keys of every rendered row, in order.
    pub(crate) fn field_names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|f| f.name(self.inventory)).collect()
    }

    /// One row as a JSON object of the chosen fields, `id` first.
    pub fn render(&self, item: &Item) -> Value {
        render(self.inventory, &self.fields, item)
    }
}

/// One row as a JSON object of `fields`.
fn render(inventory: Inventory, fields: &[Field], item: &Item) -> Value {
    let mut obj = Map::new();
    for &field in fields {
        obj.insert(field.name(inventory).to_string(), field.json(item));
    }
    Value::Object(obj)
}

/// Whether `item`'s `field` reads one of `values` (an empty value matches an empty cell). Text
/// cells compare in place; other kinds through their text form.
fn matches_filter(item: &Item, field: Field, values: &[String]) -> bool {
    let cell = match field {
        Field::Id => Cell::Text(Some(item.key.as_str())),
        Field::Column(i) => item.cell(i),
    };
    match cell {
        Cell::Text(t) => {
            let t = t.unwrap_or_default();
            values.iter().any(|v| v == t)
        }
        _ => values.contains(&cell.to_text().unwrap_or_default()),
    }
}

/// The positions in both ascending lists.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The full row of an item (every column, `id` first).
pub(crate) fn full_row(inventory: Inventory, item: &Item) -> Value {
    ListQuery::parse(inventory, &[])
        .expect("no parameters always parse")
        .render(item)
}

fn is_empty(item: &Item, field: Field) -> bool {
    match field {
        Field::Id => false,
        Field::Column(i) => item.cell(i).is_empty(),
    }
}

/// Whether `hay` contains `needle` (already lower-case), ignoring case (Unicode lower case, as
/// the view's search text); without allocating when both are ASCII (ids, most names).
fn contains_caseless(hay: &str, needle: &str) -> bool {
    if needle.is_ascii() && hay.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        hay.to_lowercase().contains(needle)
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
        Arc::new(Item::new(
            Key::new(id),
            Inventory::Services,
            v.to_string().into(),
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
        page.items.iter().map(|i| i.key.as_str()).collect()
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
            .run(&View::build(1, items()))
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
        assert!(run(&[("offset", "9")]).items.is_empty());
        assert_eq!(
            ids(&run(&[
                ("status", "Planned"),
                ("status", "Operational"),
                ("limit", "1")
            ])),
            ["A"]
        );
        let p = run(&[("fields", "name")]);
        assert_eq!(p.rows()[0], json!({"id": "A", "name": "Alpha"}));
        let text: Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(
            text,
            Value::Array(p.rows()),
            "written in place, the same JSON"
        );
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

    /// The list by hand: every item tested, all of them sorted, the page cut out.
    fn naive(query: &ListQuery, items: &[Arc<Item>]) -> (usize, Vec<String>) {
        let mut matched: Vec<&Arc<Item>> = items.iter().filter(|i| query.matches(i)).collect();
        matched.sort_by(|a, b| query.compare(a, b));
        let total = matched.len();
        let from = match &query.after {
            Some(after) => matched
                .iter()
                .filter(|i| i.key.as_str() <= after.as_str())
                .count(),
            None => query.offset.min(total),
        };
        let end = from.saturating_add(query.limit).min(total);
        let ids = matched[from.min(end)..end]
            .iter()
            .map(|i| i.key.to_string())
            .collect();
        (total, ids)
    }

    #[test]
    fn every_query_on_the_view_equals_filtering_and_sorting_by_hand() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let pick =
            |next: &mut dyn FnMut(usize) -> usize, from: &[&'static str]| from[next(from.len())];
        for round in 0..60 {
            let n = next(40);
            let items: Vec<Arc<Item>> = (0..n)
                .map(|i| {
                    let mut v = json!({"externalId": format!("K{:02}", next(60))});
                    for (field, values) in [
                        ("name", &["alpha", "Alpha", "beta", "", "Gamma"][..]),
                        ("status", &["Operational", "Planned", "Retired"][..]),
                        ("@type", &["CFS", "RFS"][..]),
                        (
                            "lastUpdate",
                            &["2024-01-01", "2023-05-05T10:00:00Z", "bad"][..],
                        ),
                    ] {
                        if next(5) > 0 {
                            v[field] = json!(pick(&mut next, values));
                        }
                    }
                    v["description"] = json!(format!("item {i}"));
                    v
                })
                .map(|v| {
                    Arc::new(Item::new(
                        Key::new(v["externalId"].as_str().unwrap()),
                        Inventory::Services,
                        v.to_string().into(),
                        Utc::now(),
                        Utc::now(),
                    ))
                })
                .collect();
            // The map keeps one item per key: the view gets the same.
            let view = View::build(1, {
                let mut by_key = std::collections::BTreeMap::new();
                for item in &items {
                    by_key.insert(item.key.clone(), item.clone());
                }
                by_key.into_values().collect::<Vec<_>>()
            });
            let items: Vec<Arc<Item>> = view.items().to_vec();
            for _ in 0..40 {
                let mut q: Vec<(&str, String)> = Vec::new();
                for _ in 0..next(3) {
                    let (field, values) = [
                        ("status", &["Operational", "Planned", "Retired", ""][..]),
                        ("type", &["CFS", "RFS"][..]),
                        ("name", &["alpha", "Alpha", ""][..]),
                        ("id", &["K01", "K02"][..]),
                    ][next(4)];
                    q.push((field, pick(&mut next, values).to_string()));
                }
                if next(4) == 0 {
                    q.push(("q", pick(&mut next, &["ALP", "item 1", "k0", "zz"]).into()));
                }
                let by_cursor = next(4) == 0;
                if by_cursor {
                    q.push(("after", format!("K{:02}", next(60))));
                } else {
                    let sorts = [
                        "name",
                        "-name",
                        "id",
                        "-id",
                        "last_update",
                        "-status,name",
                        "type,-last_update",
                    ];
                    if next(3) > 0 {
                        q.push(("sort", pick(&mut next, &sorts).into()));
                    }
                    q.push(("offset", next(12).to_string()));
                }
                q.push(("limit", (1 + next(10)).to_string()));
                let pairs: Vec<(String, String)> =
                    q.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                let query = ListQuery::parse(Inventory::Services, &pairs).unwrap();
                let page = query.run(&view);
                let got: Vec<String> = page
                    .rows()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_string())
                    .collect();
                let (total, expected) = naive(&query, &items);
                assert_eq!((page.total, got), (total, expected), "round {round}: {q:?}");
            }
        }
    }

    #[test]
    fn a_cursor_walk_across_a_poll_neither_skips_nor_repeats_an_unchanged_item() {
        let all: Vec<Arc<Item>> = (0..30)
            .map(|i| item(&format!("K{i:02}"), Some("n"), "Operational"))
            .collect();
        let mut view = View::build(1, all.clone());
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        for step in 0.. {
            let mut p = vec![("limit".to_string(), "7".to_string())];
            if let Some(a) = &after {
                p.push(("after".to_string(), a.clone()));
            }
            let page = ListQuery::parse(Inventory::Services, &p)
                .unwrap()
                .run(&view);
            seen.extend(ids(&page).into_iter().map(str::to_string));
            if step == 1 {
                // A poll lands mid-walk: two items before the cursor and one after it go,
                // one is added before it and one after.
                view = view.updated(
                    2,
                    vec![item("K00a", None, "Planned"), item("K99", None, "Planned")],
                    &[Key::new("K01"), Key::new("K05"), Key::new("K20")],
                );
            }
            match page.next {
                Some(Next::After(a)) => after = Some(a),
                None => break,
                Some(other) => panic!("default order pages by cursor, got {other:?}"),
            }
            assert!(step < 20, "the walk ends");
        }
        let unchanged: Vec<String> = all
            .iter()
            .map(|i| i.key.to_string())
            .filter(|k| !["K01", "K05", "K20"].contains(&k.as_str()))
            .collect();
        for key in &unchanged {
            assert_eq!(
                seen.iter().filter(|s| *s == key).count(),
                1,
                "{key} once: {seen:?}"
            );
        }
        assert!(
            seen.contains(&"K99".to_string()),
            "an item added ahead is reached"
        );
        assert!(
            !seen.contains(&"K20".to_string()),
            "an item removed ahead is not shown"
        );
    }
}

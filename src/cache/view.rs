//! What readers see of one inventory: an immutable [`View`], published whole after every applied
//! poll. It holds the items in key order, and indexes kept for the life of the view: the list
//! order by each column (ascending and descending), for the few-valued columns (status and
//! type) the items holding each value, and the text `q` searches. A request therefore never
//! copies or sorts the inventory. Orders and postings are carried from one view to the next;
//! the read API builds whatever a new view lacks in the background ([`View::warm`]), and a
//! request that comes first builds what it needs itself, once.

use crate::model::item::{Item, Key};
use crate::model::row::Cell;
#[cfg(test)]
use crate::model::row::Row;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The columns with postings (status and type: columns 3 and 4 of every inventory).
pub(crate) const POSTED: [usize; 2] = [3, 4];

/// The most columns a table has.
const MAX_COLUMNS: usize = 12;

type Postings = HashMap<Box<str>, Box<[u32]>>;
/// The bitsets of a posted column's dense values.
type Dense = HashMap<Box<str>, Box<[u64]>>;

/// One published state of an inventory.
pub struct View {
    generation: u64,
    items: Box<[Arc<Item>]>,
    /// Per row column: positions in ascending (`[0]`) and descending (`[1]`) list order.
    orders: [[OnceLock<Box<[u32]>>; 2]; MAX_COLUMNS],
    /// Per posted column: the positions of the items whose cell reads each text (`""`: empty).
    postings: [OnceLock<Postings>; POSTED.len()],
    /// Per posted column: bitsets of its dense values (held by at least 1/32 of the items).
    dense: [OnceLock<Dense>; POSTED.len()],
    /// The searched texts of every item, lower-cased, and where each item's starts.
    search: OnceLock<Search>,
}

/// The text `q` searches: per item, its key, external id (unless it is the key), name and
/// description (the first three columns of every inventory), lower-cased and separated by NUL.
struct Search {
    text: String,
    starts: Vec<u32>,
}

/// Search texts longer than this (about 60,000 items) are scanned on two threads.
const SEARCH_SPLIT: usize = 8 << 20;

impl Search {
    /// The positions, ascending, of the items in `range` whose text holds the needle.
    fn find(&self, finder: &memchr::memmem::Finder<'_>, range: std::ops::Range<usize>) -> Vec<u32> {
        let mut found = Vec::new();
        let start = |item: usize| {
            self.starts
                .get(item)
                .map_or(self.text.len(), |&s| s as usize)
        };
        let end = start(range.end);
        let mut from = start(range.start);
        while let Some(at) = finder.find(&self.text.as_bytes()[from..end]) {
            let item = self.starts.partition_point(|&s| s as usize <= from + at) - 1;
            found.push(item as u32);
            // One hit per item: go on from the next item's text.
            from = start(item + 1);
            if from >= end {
                break;
            }
        }
        found
    }
}

impl View {
    fn with_items(generation: u64, items: Box<[Arc<Item>]>) -> View {
        View {
            generation,
            items,
            orders: Default::default(),
            postings: Default::default(),
            dense: Default::default(),
            search: OnceLock::new(),
        }
    }

    /// An empty inventory.
    pub fn empty() -> View {
        View::with_items(0, Box::default())
    }

    /// The view of a whole inventory (a complete pass, or a load).
    pub fn build(generation: u64, items: impl IntoIterator<Item = Arc<Item>>) -> View {
        View::from_sorted(generation, View::sorted(items))
    }

    /// `items` in key order: a whole view's items, sorted where they are gathered (a load's
    /// threads).
    pub(crate) fn sorted(items: impl IntoIterator<Item = Arc<Item>>) -> Vec<Arc<Item>> {
        let mut items: Vec<Arc<Item>> = items.into_iter().collect();
        items.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        items
    }

    /// The view of `items`, already in key order ([`View::sorted`]).
    pub(crate) fn from_sorted(generation: u64, items: Vec<Arc<Item>>) -> View {
        debug_assert!(items.windows(2).all(|w| w[0].key < w[1].key));
        View::with_items(generation, items.into_boxed_slice())
    }

    /// This view with `upserts` put in (replacing items of the same key) and `removals` taken
    /// out; an upsert wins over a removal of its key. Linear: a merge of sorted lists. The
    /// indexes this view has built are carried over (the items that stayed keep their places
    /// relative to each other; the new ones are inserted), so a poll does not make the next
    /// request rebuild them.
    pub fn updated(&self, generation: u64, mut upserts: Vec<Arc<Item>>, removals: &[Key]) -> View {
        upserts.sort_by(|a, b| a.key.cmp(&b.key));
        // The last upsert of a key wins, as in the map.
        upserts.reverse();
        upserts.dedup_by(|later, earlier| later.key == earlier.key);
        upserts.reverse();
        let mut removals: Vec<&Key> = removals.iter().collect();
        removals.sort_unstable();
        let mut merged = Vec::with_capacity(self.items.len() + upserts.len());
        // Where each old item went (`GONE`: removed or replaced), and where the upserts are.
        let mut moved = vec![GONE; self.items.len()];
        let mut fresh = Vec::with_capacity(upserts.len());
        let mut new = upserts.into_iter().peekable();
        let mut gone = removals.into_iter().peekable();
        for (at, old) in self.items.iter().enumerate() {
            while let Some(item) = new.next_if(|item| item.key < old.key) {
                fresh.push(merged.len() as u32);
                merged.push(item);
            }
            if let Some(item) = new.next_if(|item| item.key == old.key) {
                fresh.push(merged.len() as u32);
                merged.push(item);
                continue;
            }
            while gone.next_if(|key| **key < old.key).is_some() {}
            if gone.next_if(|key| **key == old.key).is_some() {
                continue;
            }
            moved[at] = merged.len() as u32;
            merged.push(old.clone());
        }
        for item in new {
            fresh.push(merged.len() as u32);
            merged.push(item);
        }
        let view = View::with_items(generation, merged.into_boxed_slice());
        for (column, orders) in self.orders.iter().enumerate() {
            for (direction, order) in orders.iter().enumerate() {
                if let Some(order) = order.get() {
                    let carried = view.carry_order(order, &moved, &fresh, column, direction == 1);
                    let _ = view.orders[column][direction].set(carried);
                }
            }
        }
        for (slot, postings) in self.postings.iter().enumerate() {
            if let Some(postings) = postings.get() {
                let carried = view.carry_postings(postings, &moved, &fresh, POSTED[slot]);
                let _ = view.postings[slot].set(carried);
            }
        }
        view
    }

    /// The view of `items` (a complete pass), made from this one: the items that are the same
    /// (the same allocation: a pass keeps an unchanged item's) stay, the others are put in or
    /// taken out, and the indexes are carried over as by [`View::updated`].
    pub fn rebuilt(&self, generation: u64, items: &crate::cache::ItemMap) -> View {
        if self.items.is_empty() {
            // Nothing to carry (a first pass): the items in key order, and no more.
            return View::build(generation, items.values().cloned());
        }
        let same: std::collections::HashSet<*const Item> = self
            .items
            .iter()
            .filter(|old| items.get(&old.key).is_some_and(|new| Arc::ptr_eq(old, new)))
            .map(Arc::as_ptr)
            .collect();
        let upserts: Vec<Arc<Item>> = items
            .values()
            .filter(|item| !same.contains(&Arc::as_ptr(item)))
            .cloned()
            .collect();
        let removals: Vec<Key> = self
            .items
            .iter()
            .filter(|old| !items.contains_key(&old.key))
            .map(|old| old.key.clone())
            .collect();
        self.updated(generation, upserts, &removals)
    }

    /// `order` (of the view this one was made from) with the items that stayed moved to their
    /// new places and the fresh ones inserted where they sort.
    fn carry_order(
        &self,
        order: &[u32],
        moved: &[u32],
        fresh: &[u32],
        column: usize,
        descending: bool,
    ) -> Box<[u32]> {
        let carried: Vec<u32> = order
            .iter()
            .map(|&at| moved[at as usize])
            .filter(|&at| at != GONE)
            .collect();
        if fresh.is_empty() {
            return carried.into_boxed_slice();
        }
        let key = |at: u32| SortKey::of(self.items[at as usize].cell(column));
        let cmp = |a: &(SortKey<'_>, u32), b: &(SortKey<'_>, u32)| {
            in_order(&a.0, &b.0, descending).then(a.1.cmp(&b.1))
        };
        let mut inserts: Vec<(SortKey<'_>, u32)> = fresh.iter().map(|&at| (key(at), at)).collect();
        inserts.sort_by(cmp);
        let mut out = Vec::with_capacity(carried.len() + inserts.len());
        let mut from = 0;
        for insert in &inserts {
            let upto =
                from + carried[from..].partition_point(|&at| cmp(&(key(at), at), insert).is_lt());
            out.extend_from_slice(&carried[from..upto]);
            out.push(insert.1);
            from = upto;
        }
        out.extend_from_slice(&carried[from..]);
        out.into_boxed_slice()
    }

    /// `postings` (of the view this one was made from) with the items moved and the fresh ones
    /// added to the list of their text.
    fn carry_postings(
        &self,
        postings: &Postings,
        moved: &[u32],
        fresh: &[u32],
        column: usize,
    ) -> Postings {
        let mut added: HashMap<&str, Vec<u32>> = HashMap::new();
        for &at in fresh {
            added
                .entry(posted_text(&self.items[at as usize], column))
                .or_default()
                .push(at);
        }
        let mut out: Postings = HashMap::with_capacity(postings.len() + added.len());
        for (text, list) in postings {
            let kept = list
                .iter()
                .map(|&at| moved[at as usize])
                .filter(|&at| at != GONE);
            let new = added.remove(&**text).unwrap_or_default();
            let merged = merge_ascending(kept, new);
            if !merged.is_empty() {
                out.insert(text.clone(), merged.into_boxed_slice());
            }
        }
        for (text, list) in added {
            out.insert(text.into(), list.into_boxed_slice());
        }
        out
    }

    /// Counts the polls applied to the inventory since the daemon started.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The items, in key order.
    pub fn items(&self) -> &[Arc<Item>] {
        &self.items
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item of `key` (a binary search).
    pub fn get(&self, key: &str) -> Option<&Arc<Item>> {
        self.items
            .binary_search_by(|item| item.key.as_str().cmp(key))
            .ok()
            .map(|at| &self.items[at])
    }

    /// The position of the first item whose key sorts after `key`.
    pub(crate) fn position_after(&self, key: &str) -> usize {
        self.items.partition_point(|item| item.key.as_str() <= key)
    }

    /// The positions of the items in the list order of row column `column`: by its cells (empty
    /// last whichever the direction), then by key.
    pub fn order(&self, column: usize, descending: bool) -> &[u32] {
        self.orders[column][usize::from(descending)].get_or_init(|| {
            // Keys computed once per item, so the sort compares bytes and numbers, not cells:
            // the same order as `Cell::compare` (empty last, text by its lower case then as
            // written, times by value, other kinds by their text).
            let keys: Vec<SortKey<'_>> = self
                .items
                .iter()
                .map(|item| SortKey::of(item.cell(column)))
                .collect();
            let mut order: Vec<u32> = (0..keys.len() as u32).collect();
            // Stable: equal cells stay in key order.
            order.sort_by(|&a, &b| in_order(&keys[a as usize], &keys[b as usize], descending));
            order.into_boxed_slice()
        })
    }

    /// The positions (ascending) of the items whose cell of posted column `column` reads `text`
    /// (`""`: empty); `None` when `column` has no postings.
    pub(crate) fn posting(&self, column: usize, text: &str) -> Option<&[u32]> {
        let postings = self.postings(column)?;
        Some(postings.get(text).map_or(&[][..], |list| list))
    }

    /// Every text of posted column `column` (`""`: empty) and how many items hold it, ordered by
    /// text; `None` when `column` has no postings. (The console's filter choices.)
    pub(crate) fn posting_counts(&self, column: usize) -> Option<Vec<(&str, usize)>> {
        let mut counts: Vec<(&str, usize)> = self
            .postings(column)?
            .iter()
            .map(|(text, list)| (&**text, list.len()))
            .collect();
        counts.sort_unstable();
        Some(counts)
    }

    /// The bitset (bit i: the item at position i) of the items whose posted `column` reads
    /// `text`, when that value is dense (held by at least 1/32 of the items, so at most 32
    /// bitsets per column); `None` otherwise. Two dense filters intersect word by word.
    pub(crate) fn posting_bits(&self, column: usize, text: &str) -> Option<&[u64]> {
        let slot = POSTED.iter().position(|&c| c == column)?;
        let dense = self.dense[slot].get_or_init(|| {
            let n = self.items.len();
            self.postings(column)
                .into_iter()
                .flatten()
                .filter(|(_, list)| !list.is_empty() && list.len() * 32 >= n)
                .map(|(text, list)| (text.clone(), to_bits(list, n).into_boxed_slice()))
                .collect()
        });
        dense.get(text).map(|words| &**words)
    }

    /// Whether the postings of `column` are built (a filter on it is then a lookup).
    pub(crate) fn has_postings(&self, column: usize) -> bool {
        POSTED
            .iter()
            .position(|&c| c == column)
            .is_some_and(|slot| self.postings[slot].get().is_some())
    }

    fn postings(&self, column: usize) -> Option<&Postings> {
        let slot = POSTED.iter().position(|&c| c == column)?;
        Some(self.postings[slot].get_or_init(|| {
            let mut lists: HashMap<Box<str>, Vec<u32>> = HashMap::new();
            for (at, item) in self.items.iter().enumerate() {
                let text = posted_text(item, column);
                match lists.get_mut(text) {
                    Some(list) => list.push(at as u32),
                    None => {
                        lists.insert(text.into(), vec![at as u32]);
                    }
                }
            }
            lists
                .into_iter()
                .map(|(text, list)| (text, list.into_boxed_slice()))
                .collect()
        }))
    }

    /// The positions (ascending) of the items whose searched text may hold `needle` (already
    /// lower-case): every item that does, and rarely one whose match spans two of its fields.
    pub fn search(&self, needle: &str) -> Vec<u32> {
        self.search_split(needle, SEARCH_SPLIT)
    }

    /// [`View::search`], on two threads when the text is longer than `split` bytes.
    fn search_split(&self, needle: &str, split: usize) -> Vec<u32> {
        let search = self.search_text();
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let items = search.starts.len();
        if search.text.len() < split || items < 2 {
            return search.find(&finder, 0..items);
        }
        // A large text is scanned in two halves at once (an item's text is never split).
        let half = items / 2;
        let (mut found, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| search.find(&finder, half..items));
            (search.find(&finder, 0..half), second.join())
        });
        found.extend(second.expect("the search thread panicked"));
        found
    }

    fn search_text(&self) -> &Search {
        self.search.get_or_init(|| {
            let mut text = String::new();
            let mut starts = Vec::with_capacity(self.items.len());
            for item in self.items.iter() {
                starts.push(text.len() as u32);
                let key = item.key.as_str();
                let fields = [0, 1, 2].map(|column| match item.cell(column) {
                    Cell::Text(t) => t.unwrap_or_default(),
                    _ => "",
                });
                // The external id is the key of services and carriers: once is enough.
                let external = Some(fields[0]).filter(|&e| e != key);
                for field in [Some(key), external, Some(fields[1]), Some(fields[2])]
                    .into_iter()
                    .flatten()
                {
                    let at = text.len();
                    if field.is_ascii() {
                        text.push_str(field);
                        text[at..].make_ascii_lowercase();
                    } else {
                        text.push_str(&field.to_lowercase());
                    }
                    text.push('\0');
                }
            }
            text.shrink_to_fit();
            Search { text, starts }
        })
    }

    /// Builds the indexes a poll does not carry over, or a start lacks: the postings, the
    /// dense bitsets, the search text — one at a time, while `go_on()` holds. (Orders are
    /// carried from view to view; each is built by the first request that sorts by its
    /// column, so that only the orders in use take memory.) A request that needs an index
    /// being built waits for it rather than building it twice.
    pub fn warm(&self, go_on: impl Fn() -> bool) {
        for column in POSTED {
            if !go_on() {
                return;
            }
            self.posting_bits(column, "");
        }
        if go_on() {
            self.search_text();
        }
    }

    /// Whether every index [`View::warm`] builds is built.
    pub fn is_warm(&self) -> bool {
        self.postings.iter().all(|p| p.get().is_some())
            && self.dense.iter().all(|d| d.get().is_some())
            && self.search.get().is_some()
    }

    /// Bytes the built indexes hold (for the benchmarks).
    pub fn index_bytes(&self) -> usize {
        let orders: usize = self
            .orders
            .iter()
            .flatten()
            .filter_map(OnceLock::get)
            .map(|order| order.len() * 4)
            .sum();
        let postings: usize = self
            .postings
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|p| p.iter())
            .map(|(text, list)| text.len() + list.len() * 4 + 48)
            .sum();
        let search = self
            .search
            .get()
            .map_or(0, |s| s.text.len() + s.starts.len() * 4);
        let dense: usize = self
            .dense
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|d| d.values())
            .map(|words| words.len() * 8)
            .sum();
        orders + postings + dense + search + self.items.len() * std::mem::size_of::<Arc<Item>>()
    }
}

/// The bitset (bit i: position i) of `list`'s positions among `n`.
pub(crate) fn to_bits(list: &[u32], n: usize) -> Vec<u64> {
    let mut words = vec![0u64; n.div_ceil(64)];
    for &at in list {
        words[at as usize / 64] |= 1 << (at % 64);
    }
    words
}

/// Marks an old item that is not in the new view.
const GONE: u32 = u32::MAX;

/// The text a posting files an item under: its cell's text, `""` when empty.
fn posted_text(item: &Item, column: usize) -> &str {
    match item.cell(column) {
        Cell::Text(t) => t.unwrap_or_default(),
        _ => "",
    }
}

/// Two sort keys in list order: ascending, or descending with empty cells still last.
fn in_order(a: &SortKey<'_>, b: &SortKey<'_>, descending: bool) -> std::cmp::Ordering {
    let ord = a.cmp(b);
    if descending && !a.is_empty() && !b.is_empty() {
        ord.reverse()
    } else {
        ord
    }
}

/// Two ascending lists as one.
fn merge_ascending(a: impl Iterator<Item = u32>, b: Vec<u32>) -> Vec<u32> {
    let mut out = Vec::with_capacity(b.len());
    let mut b = b.into_iter().peekable();
    for x in a {
        while let Some(y) = b.next_if(|y| *y < x) {
            out.push(y);
        }
        out.push(x);
    }
    out.extend(b);
    out
}

/// A cell reduced to what orders it (see [`Cell::compare`]).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey<'a> {
    /// Text: its lower case (allocated only when it differs), then the text as written.
    Text(std::borrow::Cow<'a, str>, &'a str),
    Time(chrono::DateTime<chrono::Utc>),
    Other(String),
    /// Empty cells sort last.
    Empty,
}

impl<'a> SortKey<'a> {
    fn of(cell: Cell<'a>) -> SortKey<'a> {
        if cell.is_empty() {
            return SortKey::Empty;
        }
        match cell {
            Cell::Text(Some(text)) => {
                let lower = if text
                    .chars()
                    .any(|c| c.to_lowercase().ne(std::iter::once(c)))
                {
                    std::borrow::Cow::Owned(text.chars().flat_map(char::to_lowercase).collect())
                } else {
                    std::borrow::Cow::Borrowed(text)
                };
                SortKey::Text(lower, text)
            }
            Cell::Time(Some(time)) => SortKey::Time(time),
            other => SortKey::Other(other.to_text().unwrap_or_default()),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, SortKey::Empty)
    }
}

/// Whether the view's order and the column agree (for tests of the module).
#[cfg(test)]
fn sorted_by(view: &View, column: usize, descending: bool) -> bool {
    view.order(column, descending).windows(2).all(|w| {
        let (a, b) = (&view.items[w[0] as usize], &view.items[w[1] as usize]);
        let (ca, cb) = (a.cell(column), b.cell(column));
        let ord = match ca.compare(&cb) {
            o if descending && !ca.is_empty() && !cb.is_empty() => o.reverse(),
            o => o,
        };
        ord.then_with(|| a.key.cmp(&b.key)) != std::cmp::Ordering::Greater
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inventory::Inventory;
    use chrono::Utc;
    use serde_json::json;

    fn item(key: &str, status: &str, name: Option<&str>) -> Arc<Item> {
        let mut v = json!({"externalId": key, "status": status});
        if let Some(name) = name {
            v["name"] = json!(name);
        }
        Arc::new(Item::new(
            Key::new(key),
            Inventory::Services,
            v.to_string().into(),
            Utc::now(),
            Utc::now(),
        ))
    }

    fn keys(view: &View) -> Vec<&str> {
        view.items().iter().map(|i| i.key.as_str()).collect()
    }

    #[test]
    fn updates_merge_in_key_order_and_an_upsert_beats_a_removal() {
        let view = View::build(1, ["c", "a", "e"].map(|k| item(k, "Active", None)));
        assert_eq!(keys(&view), ["a", "c", "e"]);
        let changed = item("c", "Retired", None);
        let next = view.updated(
            2,
            vec![
                item("b", "Active", None),
                changed.clone(),
                item("f", "x", None),
            ],
            &[Key::new("a"), Key::new("b"), Key::new("zz")],
        );
        assert_eq!(keys(&next), ["b", "c", "e", "f"]);
        assert!(Arc::ptr_eq(&next.items()[1], &changed));
        assert_eq!(next.generation(), 2);
        assert_eq!(keys(&view), ["a", "c", "e"], "the old view is unchanged");
        assert_eq!(next.position_after("c"), 2);
        assert!(Arc::ptr_eq(next.get("c").unwrap(), &changed));
        assert!(next.get("a").is_none() && next.get("zz").is_none());
        assert_eq!(next.position_after(""), 0);
        assert_eq!(next.position_after("zzz"), 4);
    }

    #[test]
    fn orders_put_empty_cells_last_both_ways_and_ties_in_key_order() {
        let view = View::build(
            1,
            [
                item("1", "s", Some("beta")),
                item("2", "s", None),
                item("3", "s", Some("Alpha")),
                item("4", "s", Some("beta")),
                item("5", "s", Some("gamma")),
            ],
        );
        let name = 1;
        let by = |descending| -> Vec<&str> {
            view.order(name, descending)
                .iter()
                .map(|&at| view.items()[at as usize].key.as_str())
                .collect()
        };
        assert_eq!(by(false), ["3", "1", "4", "5", "2"]);
        assert_eq!(by(true), ["5", "1", "4", "3", "2"]);
        assert!(sorted_by(&view, name, false) && sorted_by(&view, name, true));
    }

    #[test]
    fn postings_list_the_items_of_each_status() {
        let view = View::build(
            1,
            [
                item("a", "Active", None),
                item("b", "Retired", None),
                item("c", "Active", None),
            ],
        );
        assert!(!view.has_postings(3));
        assert_eq!(view.posting(3, "Active"), Some(&[0, 2][..]));
        assert!(view.has_postings(3) && !view.has_postings(4) && !view.has_postings(1));
        assert_eq!(
            view.posting(3, "active"),
            Some(&[][..]),
            "exact, like the filter"
        );
        assert_eq!(view.posting(4, ""), Some(&[0, 1, 2][..]), "no type: empty");
        assert_eq!(view.posting(1, "x"), None, "name has no postings");
        assert_eq!(
            view.posting_counts(3),
            Some(vec![("Active", 2), ("Retired", 1)])
        );
        assert_eq!(view.posting_counts(4), Some(vec![("", 3)]));
        assert_eq!(view.posting_counts(1), None);
        assert!(view.index_bytes() > 0);
        let bare = View::build(1, view.items().to_vec());
        assert_eq!(
            bare.index_bytes(),
            3 * std::mem::size_of::<Arc<Item>>(),
            "key order only"
        );
        assert!(
            view.index_bytes() > bare.index_bytes(),
            "postings are counted"
        );
    }

    #[test]
    fn search_finds_each_item_once_in_any_of_its_fields() {
        let view = View::build(
            1,
            [
                item("SES-1", "Active", Some("Astra 1N")),
                item("SES-2", "Active", Some("astra astra")),
                item("X-3", "Active", Some("Ku ÉTÉ")),
            ],
        );
        assert_eq!(view.search("astra"), [0, 1]);
        assert_eq!(view.search("ses-"), [0, 1]);
        assert_eq!(view.search("été"), [2]);
        assert_eq!(view.search("nothing"), Vec::<u32>::new());
    }

    #[test]
    fn a_search_in_two_halves_finds_what_one_scan_finds() {
        let names = ["Astra 1N", "astra 2", "Ku", "", "SES astra", "x"];
        let view = View::build(
            1,
            (0..41).map(|i| {
                let key = format!("SES-{i:03}");
                item(
                    &key,
                    "Active",
                    Some(names[i % names.len()]).filter(|n| !n.is_empty()),
                )
            }),
        );
        for needle in [
            "astra", "ses-0", "ses-040", "ses-000", "ku", "x", "none", "0",
        ] {
            let whole = view.search_split(needle, usize::MAX);
            assert_eq!(view.search_split(needle, 0), whole, "{needle}");
            // Each item once, ascending.
            assert!(whole.windows(2).all(|w| w[0] < w[1]), "{needle}: {whole:?}");
        }
        assert_eq!(view.search_split("ses-040", 0), [40]);
        assert_eq!(view.search_split("ses-000", 0), [0]);
        assert_eq!(view.search_split("astra", 0).len(), 21);
    }

    /// A posted column's lists, sorted by text.
    type Lists<'v> = Vec<(&'v str, Vec<u32>)>;

    /// Every order and posting a view would build, read out.
    fn indexes(view: &View) -> (Vec<Vec<u32>>, Vec<Lists<'_>>) {
        let mut orders = Vec::new();
        for column in 0..Row::columns(Inventory::Services).len() {
            for descending in [false, true] {
                orders.push(view.order(column, descending).to_vec());
            }
        }
        let postings = POSTED
            .iter()
            .map(|&column| {
                let mut lists: Lists<'_> = view
                    .postings(column)
                    .unwrap()
                    .iter()
                    .map(|(text, list)| (&**text, list.to_vec()))
                    .collect();
                lists.sort();
                lists
            })
            .collect();
        (orders, postings)
    }

    #[test]
    fn carried_indexes_equal_indexes_built_anew() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let random_item = |key: u64, next: &mut dyn FnMut(u64) -> u64| {
            let names = ["alpha", "Alpha", "beta", "Gamma", "gamma"];
            let statuses = ["Operational", "Planned", "Retired"];
            let ty = ["CFS", "RFS"][next(2) as usize];
            let mut v = json!({"externalId": format!("K{key:03}"), "@type": ty});
            if next(4) > 0 {
                v["name"] = json!(names[next(5) as usize]);
            }
            if next(4) > 0 {
                v["status"] = json!(statuses[next(3) as usize]);
            }
            if next(3) > 0 {
                v["lastUpdate"] = json!(format!("2024-01-{:02}", 1 + next(28)));
            }
            Arc::new(Item::new(
                Key::new(&format!("K{key:03}")),
                Inventory::Services,
                v.to_string().into(),
                Utc::now(),
                Utc::now(),
            ))
        };
        let mut map = crate::cache::ItemMap::default();
        for _ in 0..60 {
            let item = random_item(next(200), &mut next);
            map.insert(item.key.clone(), item);
        }
        let mut view = View::build(1, map.values().cloned());
        let _ = indexes(&view);
        for round in 0..40 {
            // A refresh: a few upserts (new keys and changed items) and removals.
            let upserts: Vec<Arc<Item>> = (0..next(8))
                .map(|_| random_item(next(200), &mut next))
                .collect();
            let removals: Vec<Key> = (0..next(5))
                .map(|_| Key::new(&format!("K{:03}", next(200))))
                .collect();
            for key in &removals {
                map.remove(key);
            }
            for item in &upserts {
                map.insert(item.key.clone(), item.clone());
            }
            let next_view = if round % 3 == 2 {
                view.rebuilt(round + 2, &map)
            } else {
                view.updated(round + 2, upserts, &removals)
            };
            let fresh = View::build(0, map.values().cloned());
            assert_eq!(keys(&next_view), keys(&fresh), "round {round}");
            // Carried (built from the old view's), then compared with built from nothing.
            assert!(next_view.orders.iter().flatten().all(|o| o.get().is_some()));
            assert_eq!(indexes(&next_view), indexes(&fresh), "round {round}");
            view = next_view;
        }
    }
}

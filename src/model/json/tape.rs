//! [`Tape`]: an item's JSON laid out flat in one vector, read straight from compact text (the
//! `fast` reader) or from a [`Json`] tree; [`Val`] reads it.

use super::*;

/// A JSON value laid out flat, in document order: an array's node is followed by its elements,
/// an object's by a [`Node::Key`] and the value of each member; each container knows where it
/// ends. Reading one costs one allocation however many objects it holds, and no copy of its
/// strings: they point into the text it was read from (or into the [`Json`] tree it was laid
/// out from). Read it through [`Val`].
#[derive(Clone, Debug, Default)]
pub struct Tape<'a> {
    pub(super) nodes: Vec<Node<'a>>,
}

/// One node of a [`Tape`].
#[derive(Clone, Debug, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(&'a str),
    /// An array; `end` is the index of the first node after its last element.
    Array {
        end: u32,
    },
    /// An object; `end` is the index of the first node after its last member.
    Object {
        end: u32,
    },
    /// A member's name; its value follows.
    Key(&'a str),
}

impl<'a> Tape<'a> {
    /// The tape of the JSON text `text`, read as [`Json::parse`] reads it: straight from the
    /// text when it is compact and its strings carry no escapes, else through a [`Json`] tree
    /// (`tree` holds it, the tape's strings point into it). JSON that does not parse gives a
    /// tape holding `null`.
    pub fn parse<'t>(text: &'t str, tree: &'a mut Option<Json<'t>>) -> Tape<'a>
    where
        't: 'a,
    {
        if let Some(tape) = Tape::read_compact(text) {
            return tape;
        }
        Tape::of(tree.insert(Json::parse(text).unwrap_or(Json::Null)))
    }

    /// The tape of a [`Json`] tree (its strings point into the tree).
    pub fn of(json: &'a Json<'_>) -> Tape<'a> {
        fn lay<'a>(json: &'a Json<'_>, nodes: &mut Vec<Node<'a>>) {
            match json {
                Json::Null => nodes.push(Node::Null),
                Json::Bool(b) => nodes.push(Node::Bool(*b)),
                Json::Number(n) => nodes.push(Node::Number(n.clone())),
                Json::String(s) => nodes.push(Node::String(s)),
                Json::Array(items) => {
                    let at = nodes.len();
                    nodes.push(Node::Array { end: 0 });
                    for item in items {
                        lay(item, nodes);
                    }
                    nodes[at] = Node::Array {
                        end: nodes.len() as u32,
                    };
                }
                Json::Object(Obj(members)) => {
                    let at = nodes.len();
                    nodes.push(Node::Object { end: 0 });
                    for (key, value) in members {
                        nodes.push(Node::Key(key));
                        lay(value, nodes);
                    }
                    nodes[at] = Node::Object {
                        end: nodes.len() as u32,
                    };
                }
            }
        }
        let mut nodes = Vec::new();
        lay(json, &mut nodes);
        Tape { nodes }
    }

    /// The tape of `text` read straight from it, when `text` is compact JSON whose strings
    /// carry no escapes; `None` for anything else (whitespace, an escape, a control character
    /// in a string, nesting deeper than [`fast::MAX_DEPTH`], a syntax error, a number that
    /// `serde_json` does not read), which [`Tape::parse`] then leaves to `serde_json`. What it
    /// accepts it reads exactly as `serde_json` would.
    pub(crate) fn read_compact(text: &'a str) -> Option<Tape<'a>> {
        // About one node per eight bytes of an upstream element.
        let mut tape = Tape {
            nodes: Vec::with_capacity(text.len() / 8 + 4),
        };
        tape.append_compact(text)?;
        Some(tape)
    }

    /// An empty tape with room for `nodes` nodes, to [`append_compact`](Tape::append_compact)
    /// several values to (a page's elements: one allocation for them all).
    pub fn with_capacity(nodes: usize) -> Tape<'a> {
        Tape {
            nodes: Vec::with_capacity(nodes),
        }
    }

    /// This tape emptied, its allocation kept for values read from another text (a listing
    /// reuses one for all its pages: a fresh one per page costs its pages' first-touch faults).
    pub(crate) fn recycle<'b>(mut self) -> Tape<'b> {
        self.nodes.clear();
        Tape {
            // Collected in place: the same allocation (the vector is empty).
            nodes: self.nodes.into_iter().map(|_| unreachable!()).collect(),
        }
    }

    /// Reads `text` as [`Tape::read_compact`] does onto the end of this tape; the index of its
    /// value (for [`Tape::value`]), or `None` and the tape as it was.
    pub(crate) fn append_compact(&mut self, text: &'a str) -> Option<usize> {
        let start = self.nodes.len();
        let mut reader = fast::Reader {
            text,
            at: 0,
            depth: 0,
            nodes: std::mem::take(&mut self.nodes),
        };
        let read = reader.value().is_some() && reader.at == text.len();
        self.nodes = reader.nodes;
        if !read {
            self.nodes.truncate(start);
        }
        read.then_some(start)
    }

    /// The value the tape holds (its first).
    pub fn root(&self) -> Val<'_, 'a> {
        self.value(0)
    }

    /// The value at `at`, an index [`Tape::append_compact`] gave.
    pub fn value(&self, at: usize) -> Val<'_, 'a> {
        assert!(at < self.nodes.len(), "no value at {at}");
        Val {
            nodes: &self.nodes,
            at,
        }
    }
}

/// One value of a [`Tape`]: what [`Json`] is to a tree. Its strings live as long as the text
/// (or tree) the tape was read from, not as long as the tape.
#[derive(Clone, Copy, Debug)]
pub struct Val<'t, 'a> {
    nodes: &'t [Node<'a>],
    at: usize,
}

impl<'t, 'a> Val<'t, 'a> {
    pub fn node(&self) -> &'t Node<'a> {
        &self.nodes[self.at]
    }

    /// The index of the node after this value.
    fn end(&self) -> usize {
        match self.node() {
            Node::Array { end } | Node::Object { end } => *end as usize,
            _ => self.at + 1,
        }
    }

    fn at(&self, at: usize) -> Val<'t, 'a> {
        Val {
            nodes: self.nodes,
            at,
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self.node(), Node::Object { .. })
    }

    pub fn is_null(&self) -> bool {
        matches!(self.node(), Node::Null)
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match self.node() {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    /// An object's members in document order (none for anything else).
    pub(crate) fn members(self) -> impl Iterator<Item = (&'a str, Val<'t, 'a>)> {
        let (mut at, end) = match self.node() {
            Node::Object { end } => (self.at + 1, *end as usize),
            _ => (0, 0),
        };
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let Node::Key(key) = self.nodes[at] else {
                unreachable!("an object's member starts with its key")
            };
            let value = self.at(at + 1);
            at = value.end();
            Some((key, value))
        })
    }

    /// An array's elements (none for anything else).
    pub fn items(self) -> impl Iterator<Item = Val<'t, 'a>> {
        let (mut at, end) = match self.node() {
            Node::Array { end } => (self.at + 1, *end as usize),
            _ => (0, 0),
        };
        std::iter::from_fn(move || {
            (at < end).then(|| {
                let item = self.at(at);
                at = item.end();
                item
            })
        })
    }

    /// The member named `key` (the last one, when a key repeats, as [`Obj::get`] reads it).
    pub fn get(self, key: &str) -> Option<Val<'t, 'a>> {
        // As `members()`, in one tight loop: row extraction asks an object for a dozen names.
        let Node::Object { end } = self.node() else {
            return None;
        };
        let (mut at, end) = (self.at + 1, *end as usize);
        let mut found = None;
        while at < end {
            let value = at + 1;
            if matches!(self.nodes[at], Node::Key(k) if k == key) {
                found = Some(value);
            }
            at = match self.nodes[value] {
                Node::Array { end } | Node::Object { end } => end as usize,
                _ => value + 1,
            };
        }
        found.map(|at| self.at(at))
    }
}

/// As [`Json`] serializes: compact JSON text, as `serde_json` writes it.
impl Serialize for Val<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.node() {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Number(n) => n.serialize(s),
            Node::String(t) | Node::Key(t) => s.serialize_str(t),
            Node::Array { .. } => {
                let mut seq = s.serialize_seq(None)?;
                for item in self.items() {
                    seq.serialize_element(&item)?;
                }
                seq.end()
            }
            Node::Object { .. } => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in self.members() {
                    map.serialize_entry(k, &v)?;
                }
                map.end()
            }
        }
    }
}

/// [`Tape::read_compact`]'s reader.
mod fast {
    use super::{Node, Number};

    /// Deeper nesting is left to `serde_json` (whose limit is 128).
    pub(super) const MAX_DEPTH: u32 = 100;

    pub(super) struct Reader<'a> {
        pub(super) text: &'a str,
        pub(super) at: usize,
        pub(super) depth: u32,
        pub(super) nodes: Vec<Node<'a>>,
    }

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// Nonzero when a byte of `v` is zero (its lowest flagged byte is one).
    fn zero_byte(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v & HIGHS
    }

    impl<'a> Reader<'a> {
        fn peek(&self) -> Option<u8> {
            self.text.as_bytes().get(self.at).copied()
        }

        pub(super) fn value(&mut self) -> Option<()> {
            let node = match self.peek()? {
                b'{' => return self.object(),
                b'[' => return self.array(),
                b'"' => Node::String(self.string()?),
                b't' => self.literal("true", Node::Bool(true))?,
                b'f' => self.literal("false", Node::Bool(false))?,
                b'n' => self.literal("null", Node::Null)?,
                b'-' | b'0'..=b'9' => Node::Number(self.number()?),
                _ => return None,
            };
            self.nodes.push(node);
            Some(())
        }

        fn literal(&mut self, word: &str, node: Node<'a>) -> Option<Node<'a>> {
            self.text.as_bytes()[self.at..]
                .starts_with(word.as_bytes())
                .then(|| {
                    self.at += word.len();
                    node
                })
        }

        /// The string at `self.at` (its opening quote), if it has no escape and no control
        /// character.
        fn string(&mut self) -> Option<&'a str> {
            let bytes = self.text.as_bytes();
            let start = self.at + 1;
            let mut i = start;
            loop {
                // Eight bytes at a time to the first quote, backslash or control character.
                while let Some(chunk) = bytes.get(i..i + 8) {
                    let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                    let found = zero_byte(v ^ (ONES * u64::from(b'"')))
                        | zero_byte(v ^ (ONES * u64::from(b'\\')))
                        | (v.wrapping_sub(ONES * 0x20) & !v & HIGHS);
                    if found != 0 {
                        i += (found.trailing_zeros() / 8) as usize;
                        break;
                    }
                    i += 8;
                }
                match *bytes.get(i)? {
                    b'"' => {
                        self.at = i + 1;
                        return Some(&self.text[start..i]);
                    }
                    b'\\' => return None,
                    b if b < 0x20 => return None,
                    _ => i += 1,
                }
            }
        }

        fn number(&mut self) -> Option<Number> {
            let rest = &self.text.as_bytes()[self.at..];
            let len = rest
                .iter()
                .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(rest.len());
            let digits = &rest[..len];
            let text = &self.text[self.at..self.at + len];
            self.at += len;
            // A plain integer that fits: what serde_json reads as a u64.
            if (1..=19).contains(&digits.len())
                && digits.iter().all(u8::is_ascii_digit)
                && (digits[0] != b'0' || digits.len() == 1)
            {
                let n = digits
                    .iter()
                    .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                return Some(n.into());
            }
            // Anything else as serde_json reads a number (the same visitor calls).
            serde_json::from_str::<Number>(text).ok()
        }

        /// Opens a container: its node (its end set by `close`).
        fn open(&mut self, node: Node<'a>) -> Option<usize> {
            self.depth += 1;
            self.at += 1;
            self.nodes.push(node);
            (self.depth <= MAX_DEPTH).then_some(self.nodes.len() - 1)
        }

        fn close(&mut self, at: usize) {
            self.depth -= 1;
            let end = self.nodes.len() as u32;
            match &mut self.nodes[at] {
                Node::Array { end: e } | Node::Object { end: e } => *e = end,
                _ => unreachable!("a container's node"),
            }
        }

        fn object(&mut self) -> Option<()> {
            let at = self.open(Node::Object { end: 0 })?;
            if self.peek()? == b'}' {
                self.at += 1;
            } else {
                loop {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let key = self.string()?;
                    self.nodes.push(Node::Key(key));
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.at += 1;
                    self.value()?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b'}' => {
                            self.at += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            self.close(at);
            Some(())
        }

        fn array(&mut self) -> Option<()> {
            let at = self.open(Node::Array { end: 0 })?;
            if self.peek()? == b']' {
                self.at += 1;
            } else {
                loop {
                    self.value()?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            self.close(at);
            Some(())
        }
    }
}

//! JSON read straight from a page's bytes, without building a `serde_json::Value` per element.
//!
//! A page holds tens of elements of about a kilobyte each, and most of them are unchanged from
//! the cache. Three tools keep that cheap:
//! - [`scan`] reads only the few top-level fields a decision needs (key, status, type) as
//!   borrowed raw values: no allocation for an element whose strings carry no escapes;
//! - [`compact`] gives the element's compact text (whitespace outside strings
//!   removed, everything else byte for byte as the upstream wrote it), so an unchanged element
//!   is recognised by comparing bytes with the cached text;
//! - [`Tape`] is what row extraction reads for the elements that are new or changed: the
//!   element as one flat list of nodes, strings pointing into the text, one allocation. Compact
//!   text whose strings carry no escapes (what the upstream sends, what the cache keeps) is read
//!   straight into it; anything else is read by `serde_json` into a [`Json`] tree (strings
//!   borrowed unless they carry escapes, objects as small vectors) and laid out from that.

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Number;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

mod tape;
pub use tape::{Node, Tape, Val};

/// A JSON value whose strings borrow from the text it was parsed from.
#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Obj<'a>),
}

/// An object's members in document order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Obj<'a>(pub Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Obj<'a> {
    /// The member named `key` (the last one, when a key repeats, as a map would keep it).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'a> Json<'a> {
    /// Parses `text`; strings without escapes borrow from it.
    pub fn parse(text: &'a str) -> Result<Json<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn as_object(&self) -> Option<&Obj<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object()?.get(key)
    }
}

/// Compact JSON text, as `serde_json` writes it.
impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(t) => s.serialize_str(t),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(Obj(members)) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

/// A string that borrows from the input when it can (serde's own `Cow<str>` always copies).
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            members.push((key, map.next_value()?));
        }
        Ok(Json::Object(Obj(members)))
    }
}

/// The deepest nesting of arrays and objects an item may have. TMF items nest a few levels;
/// every reader of a cached item's JSON as a tree (the API's and the mirror's `upstream`, the
/// console's pretty print) recurses, and serde_json stops at 128.
pub const MAX_DEPTH: usize = 64;

/// Whether the JSON text `text` nests arrays and objects deeper than `max` (strings, and the
/// brackets in them, skipped). One pass over the bytes, no allocation.
pub fn nests_deeper_than(text: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut bytes = text.as_bytes().iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => {
                // To the closing quote; a backslash takes the byte after it.
                while let Some(&c) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether `text` is one JSON value that `serde_json` reads whole: besides its syntax (which a
/// page's element finder checks), strings whose escapes make text (no lone surrogate), numbers
/// in range, nesting within `serde_json`'s limit (127 levels). Nothing is kept; strings without
/// escapes are not copied.
pub fn readable(text: &str) -> bool {
    struct Any;
    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Any, D::Error> {
            d.deserialize_any(AnyVisitor)
        }
    }
    struct AnyVisitor;
    impl<'de> Visitor<'de> for AnyVisitor {
        type Value = Any;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Any, E> {
            Ok(Any)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Any, E> {
            Ok(Any)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Any, E> {
            Ok(Any)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Any, E> {
            Ok(Any)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Any, E> {
            Ok(Any)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Any, E> {
            Ok(Any)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Any, A::Error> {
            while seq.next_element::<Any>()?.is_some() {}
            Ok(Any)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Any, A::Error> {
            while map.next_key::<Any>()?.is_some() {
                map.next_value::<Any>()?;
            }
            Ok(Any)
        }
    }
    serde_json::from_str::<Any>(text).is_ok()
}

/// At most this many fields can be asked of [`scan`].
pub(crate) const MAX_SCANNED: usize = 16;

/// The top-level members named in `wanted` of the JSON text `raw`, as borrowed raw values (the
/// last one when a name repeats); `None` when `raw` is not an object. Reading stops as soon as
/// the first `enough` names of `wanted` are all found (the rest of the element is not read, so
/// a later repeat of a name is not seen either); `enough = 0` reads the whole element.
/// Allocates nothing unless a member name carries an escape.
pub fn scan<'a, W: AsRef<str>>(
    raw: &'a str,
    wanted: &[W],
    enough: usize,
) -> Option<[Option<&'a RawValue>; MAX_SCANNED]> {
    /// Why the visitor stopped reading early (not an error of the input).
    const ENOUGH: &str = "enough members found";
    struct Scan<'a, 'w, W> {
        wanted: &'w [W],
        enough: usize,
        found: [Option<&'a RawValue>; MAX_SCANNED],
        object: bool,
    }
    impl<'de, W: AsRef<str>> Visitor<'de> for &mut Scan<'de, '_, W> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            self.object = true;
            while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                match self.wanted.iter().position(|w| w.as_ref() == key) {
                    Some(i) => {
                        self.found[i] = Some(map.next_value::<&'de RawValue>()?);
                        if self.enough > 0 && self.found[..self.enough].iter().all(Option::is_some)
                        {
                            return Err(de::Error::custom(ENOUGH));
                        }
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
        // Anything but an object.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    }
    let wanted = &wanted[..wanted.len().min(MAX_SCANNED)];
    let mut scan = Scan {
        wanted,
        enough: enough.min(wanted.len()),
        found: [None; MAX_SCANNED],
        object: false,
    };
    let mut de = serde_json::Deserializer::from_str(raw);
    let stopped_early = |scan: &Scan<'_, '_, W>| {
        scan.enough > 0 && scan.found[..scan.enough].iter().all(Option::is_some)
    };
    match de.deserialize_any(&mut scan) {
        Ok(()) => {}
        // All wanted found is the only way to stop with ENOUGH (reading stops right there).
        Err(_) if scan.object && stopped_early(&scan) => {}
        Err(_) => return None,
    }
    scan.object.then_some(scan.found)
}

/// A raw value as text for a rule or a key: a non-blank string (borrowed unless it carries
/// escapes) or a number's text; anything else is absent.
pub fn text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let s = raw.get();
    match s.as_bytes().first()? {
        b'"' => {
            let Str(text) = serde_json::from_str::<Str<'_>>(s).ok()?;
            (!text.trim().is_empty()).then_some(text)
        }
        b'-' | b'0'..=b'9' => {
            // Written as serde_json writes numbers, so a key reads the same as before.
            let n: Number = serde_json::from_str(s).ok()?;
            Some(Cow::Owned(n.to_string()))
        }
        _ => None,
    }
}

/// `text` without whitespace outside strings: `text` itself when it has none (no copy), else
/// the compact form written into `scratch`. Strings are skipped with a vectorised search for
/// their closing quote, so the cost is mostly that of the few bytes between strings.
pub fn compact<'t>(text: &'t str, scratch: &'t mut String) -> &'t str {
    let bytes = text.as_bytes();
    let mut i = 0;
    // Start of the part of `text` not yet copied to `scratch`, once a copy is needed.
    let mut copied_to: Option<usize> = None;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string: to the next quote that is not escaped.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                        Some(at) if bytes[i + at] == b'\\' => {
                            i = (i + at + 2).min(bytes.len());
                        }
                        Some(at) => {
                            i += at + 1;
                            break;
                        }
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                }
            }
            b' ' | b'\n' | b'\r' | b'\t' => {
                let from = match copied_to {
                    Some(from) => from,
                    None => {
                        scratch.clear();
                        scratch.reserve(text.len());
                        0
                    }
                };
                scratch.push_str(&text[from..i]);
                i += 1;
                copied_to = Some(i);
            }
            _ => i += 1,
        }
    }
    match copied_to {
        None => text,
        Some(from) => {
            scratch.push_str(&text[from.min(text.len())..]);
            scratch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn strings_without_escapes_borrow_and_the_tree_prints_compact() {
        let text =
            r#"{ "a": "plain", "b": "esc\"aped", "n": [1, 2.5, -3], "o": {"t": true, "z": null} }"#;
        let j = Json::parse(text).unwrap();
        let o = j.as_object().unwrap();
        assert!(matches!(
            o.get("a"),
            Some(Json::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(o.get("b"), Some(Json::String(Cow::Owned(s))) if s == "esc\"aped"));
        assert_eq!(
            j.to_string(),
            r#"{"a":"plain","b":"esc\"aped","n":[1,2.5,-3],"o":{"t":true,"z":null}}"#
        );
        // Like a map, a repeated key reads as its last value.
        let j = Json::parse(r#"{"k":1,"k":2}"#).unwrap();
        assert_eq!(j.get("k"), Some(&Json::Number(2.into())));
    }

    #[test]
    fn a_tape_read_from_compact_text_is_the_tree_laid_out() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let deep_objects = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        let mut texts: Vec<String> = [
            r#"{"a":"plain","b":"esc\"aped","n":[1,2.5,-3],"o":{"t":true,"z":null}}"#,
            r#"{"a":"plain","n":[1,2.5,-3,1e5],"o":{"t":true,"z":null},"e":{},"l":[]}"#,
            r#"{"k":1,"k":2,"k":{"k":[]}}"#,
            r#"{"u":"é ü 中文 🚀","e":"\u00e9\ud83d\ude80","s":"a\/b","t":"tab\there"}"#,
            r#"{"u":"é ü 中文 🚀 and some more text to pass eight bytes"}"#,
            r#"{"lone":"\ud800"}"#,
            r#"[[[],[{}],[[1,[2,[3]]]]],{"":""}]"#,
            r#"[0,1,-0,-0.0,1e5,1E5,1e-5,-1.5e+3,0.1,1.0,18446744073709551615,18446744073709551616]"#,
            r#"[9999999999999999999,99999999999999999999,-9223372036854775808,-9223372036854775809]"#,
            r#"[1e400,-1e400]"#,
            r#"[00]"#,
            r#"[01]"#,
            r#"[1.]"#,
            r#"[-]"#,
            r#"[1-2]"#,
            r#"[.5]"#,
            r#"{"a" :1}"#,
            r#" {"a":1}"#,
            r#"{"a":1} "#,
            "{\"a\":\"line\nbreak\"}",
            "{\"a\":\"\u{7f}\u{1f}\"}",
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a":1"#,
            r#"{"a""#,
            r#"{"a"}"#,
            r#"{1:2}"#,
            r#"[tru]"#,
            r#"[true,false,null]"#,
            r#"[nul"#,
            r#""just a string that is long enough for the eight byte steps""#,
            r#""tail quote after eight: 12345678""#,
            r#""x""#,
            r#""""#,
            "42",
            "",
            "{}{}",
            r#"{"a":1}x"#,
        ]
        .map(String::from)
        .to_vec();
        texts.extend([
            deep(99),
            deep(100),
            deep(101),
            deep(128),
            deep(129),
            deep(200),
        ]);
        texts.extend([deep_objects(100), deep_objects(101), deep_objects(130)]);
        let mut fast = 0;
        for text in &texts {
            let tree = serde_json::from_str::<Json<'_>>(text);
            match Tape::read_compact(text) {
                Some(tape) => {
                    fast += 1;
                    let tree = tree.unwrap_or_else(|e| panic!("{text}: read, but {e}"));
                    assert_eq!(tape.nodes, Tape::of(&tree).nodes, "{text}");
                    assert_eq!(
                        serde_json::to_string(&tape.root()).unwrap(),
                        tree.to_string()
                    );
                    // Strings point into the text.
                    let within = |s: &str| text.as_bytes().as_ptr_range().contains(&s.as_ptr());
                    assert!(tape.nodes.iter().all(|n| match n {
                        Node::String(s) | Node::Key(s) => s.is_empty() || within(s),
                        _ => true,
                    }));
                }
                // Left to serde_json: what it reads there is what Tape::parse lays out.
                None => {
                    let mut kept = None;
                    let tape = Tape::parse(text, &mut kept);
                    let expected = tree.unwrap_or(Json::Null);
                    assert_eq!(tape.nodes, Tape::of(&expected).nodes, "{text}");
                }
            }
        }
        assert_eq!(fast, 15, "the compact texts without escapes are read fast");
    }

    #[test]
    fn a_recycled_tape_keeps_its_allocation() {
        let text = String::from(r#"{"a":[1,2,3],"b":"x"}"#);
        let mut tape = Tape::with_capacity(64);
        assert_eq!(tape.append_compact(&text), Some(0));
        assert_eq!(
            tape.append_compact(" [1]"),
            None,
            "not compact: the tape as it was"
        );
        assert_eq!(tape.append_compact("[1]"), Some(8));
        assert_eq!(serde_json::to_string(&tape.value(8)).unwrap(), "[1]");
        let capacity = tape.nodes.capacity();
        let tape: Tape<'static> = tape.recycle();
        assert!(tape.nodes.is_empty());
        assert_eq!(tape.nodes.capacity(), capacity);
    }

    #[test]
    fn a_tape_value_reads_as_its_tree() {
        let text = r#"{"k":1,"a":[1,{"b":"x"},[]],"k":{"k":[2]},"s":"t","z":null}"#;
        let tape = Tape::read_compact(text).unwrap();
        let root = tape.root();
        assert!(root.is_object());
        let keys: Vec<&str> = root.members().map(|(k, _)| k).collect();
        assert_eq!(keys, ["k", "a", "k", "s", "z"]);
        // The last of a repeated key, as Obj::get.
        let k = root.get("k").unwrap();
        assert_eq!(serde_json::to_string(&k).unwrap(), r#"{"k":[2]}"#);
        let a: Vec<String> = root
            .get("a")
            .unwrap()
            .items()
            .map(|v| serde_json::to_string(&v).unwrap())
            .collect();
        assert_eq!(a, ["1", r#"{"b":"x"}"#, "[]"]);
        assert_eq!(root.get("s").and_then(|v| v.as_str()), Some("t"));
        assert!(root.get("z").unwrap().is_null());
        assert!(root.get("missing").is_none());
        assert!(
            root.get("s").unwrap().get("s").is_none(),
            "a string has no members"
        );
        assert_eq!(root.get("s").unwrap().items().count(), 0);
    }

    #[test]
    fn nesting_depth_counts_containers_not_brackets_in_strings() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(&nested(MAX_DEPTH), MAX_DEPTH));
        assert!(nests_deeper_than(&nested(MAX_DEPTH + 1), MAX_DEPTH));
        let in_object = format!(r#"{{"a":{}}}"#, nested(MAX_DEPTH - 1));
        assert!(!nests_deeper_than(&in_object, MAX_DEPTH));
        assert!(nests_deeper_than(&format!("[{in_object}]"), MAX_DEPTH));
        // Brackets inside strings, escaped quotes and backslashes included, do not count.
        let text = format!(
            r#"{{"s":"{}\"\\{}","t":[1]}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(!nests_deeper_than(&text, 2));
        assert!(nests_deeper_than(&text, 1));
        // Whatever is allowed reads back as a tree.
        let deepest = format!(r#"{{"a":{}}}"#, nested(MAX_DEPTH - 1));
        assert!(serde_json::from_str::<serde_json::Value>(&deepest).is_ok());
    }

    #[test]
    fn readable_is_what_serde_json_reads_whole() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        for text in [
            r#"{"a":"\ud83d\ude80","b":[1,2.5,-0,1e308],"c":{"d":null}}"#,
            r#""plain""#,
            "true",
            &deep(127),
        ] {
            assert!(readable(text), "{text}");
            assert!(serde_json::from_str::<serde_json::Value>(text).is_ok());
        }
        // Syntax a raw value accepts, which serde_json cannot read as a value.
        for text in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"x\ude80"}"#,
            r#"{"\udc00":1}"#,
            "[1e400]",
            "-1e309",
            &deep(128),
        ] {
            assert!(serde_json::from_str::<&RawValue>(text).is_ok(), "{text}");
            assert!(!readable(text), "{text}");
            assert!(serde_json::from_str::<serde_json::Value>(text).is_err());
        }
        assert!(!readable("[1,]") && !readable("{} {}") && !readable(""));
    }

    #[test]
    fn scan_reads_only_the_wanted_members() {
        let r =
            r#"{"externalId":"SVC-1","name":{"deep":[1,2]},"status":"Operational","@type":"CFS"}"#;
        let found = scan(r, &["externalId", "status", "@type", "missing"], 0).unwrap();
        assert_eq!(found[0].map(RawValue::get), Some(r#""SVC-1""#));
        assert_eq!(found[1].map(RawValue::get), Some(r#""Operational""#));
        assert_eq!(found[2].map(RawValue::get), Some(r#""CFS""#));
        assert!(found[3].is_none());
        for not_object in ["[1,2]", "42", "\"text\"", "null", "true"] {
            assert!(scan(not_object, &["a"], 0).is_none(), "{not_object}");
        }
        // Stopping early: once the first two are found the rest is not read, bad JSON included.
        let early = scan(r#"{"a":1,"b":2,"c":3,"broken"#, &["a", "b", "c"], 2).unwrap();
        assert_eq!(early[1].map(RawValue::get), Some("2"));
        assert!(early[2].is_none());
        assert!(scan(r#"{"a":1,"broken"#, &["a", "b"], 2).is_none());
    }

    #[test]
    fn text_of_strings_and_numbers() {
        assert_eq!(text(raw(r#""SVC-1""#)).as_deref(), Some("SVC-1"));
        assert!(matches!(text(raw(r#""SVC-1""#)), Some(Cow::Borrowed(_))));
        assert_eq!(text(raw(r#""a\u00e9""#)).as_deref(), Some("aé"));
        assert_eq!(text(raw("42")).as_deref(), Some("42"));
        assert_eq!(text(raw("1.50")).as_deref(), Some("1.5"));
        for absent in [r#""  ""#, "null", "true", "[]", "{}"] {
            assert!(text(raw(absent)).is_none(), "{absent}");
        }
    }

    #[test]
    fn compact_removes_whitespace_outside_strings_only() {
        let mut scratch = String::new();
        let text = "{ \"a b\" : [ 1 ,\n\t2 ] , \"c\":\"x \\\" y\" }";
        assert_eq!(compact(text, &mut scratch), r#"{"a b":[1,2],"c":"x \" y"}"#);
        // Already compact: the text itself, not a copy.
        let tight = r#"{"a b":[1,2],"c":"x \" y"}"#;
        assert!(std::ptr::eq(compact(tight, &mut scratch), tight));
        // An escaped backslash before a quote ends the string.
        let tricky = r#"{"p":"C:\\" , "q":1}"#;
        assert_eq!(compact(tricky, &mut scratch), r#"{"p":"C:\\","q":1}"#);
        assert_eq!(compact(" [ ] ", &mut scratch), "[]");
    }
}

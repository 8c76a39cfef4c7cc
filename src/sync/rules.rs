//! The keep rules: which page elements are cached, under which key.

use crate::config::InventoryConfig;
use crate::model::inventory::Inventory;
use crate::model::json::{self, Json, Node, Obj, Val};
use crate::model::row;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// What the keep rules say about one page element. The key borrows from the page.
#[derive(Debug)]
pub(crate) enum Verdict<'a> {
    /// Cache it under `key` (its row is extracted only if its JSON changed).
    Keep { key: Cow<'a, str> },
    /// It exists upstream but is not kept (status or type): remove it if cached.
    NotKept { key: Cow<'a, str> },
    /// No usable key: skipped.
    NoKey,
    /// Not a JSON object (or not JSON `serde_json` reads whole): skipped.
    NotObject,
}

/// The keep rules of one inventory, prepared once from its configuration: which top-level
/// members of an element they read, in which order of preference.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    keep_statuses: Vec<String>,
    exclude_types: Vec<String>,
    /// The member names read from each element (see [`json::scan`]), the deciding ones first.
    wanted: Vec<String>,
    /// How many of `wanted` decide an element when they hold usable values.
    enough: usize,
    key: usize,
    /// With `key_field = "externalId"`: v5's `externalIdentifier`, read when the key is absent.
    external_identifier: Option<usize>,
    status: usize,
    /// The row's status members, in order, when `status_field` gives nothing.
    status_fallbacks: Vec<usize>,
    type_field: usize,
    type_fallbacks: Vec<usize>,
}

impl Rules {
    pub fn new(inventory: Inventory, cfg: &InventoryConfig) -> Rules {
        let lower = |v: &[String]| v.iter().map(|s| s.trim().to_lowercase()).collect();
        let mut wanted: Vec<String> = Vec::new();
        let mut slot = |name: &str| match wanted.iter().position(|w| w == name) {
            Some(i) => i,
            None => {
                wanted.push(name.to_owned());
                wanted.len() - 1
            }
        };
        // The members that decide in the usual case come first, so that reading an element can
        // stop as soon as they are found (`enough`); the fallbacks follow.
        let key = slot(&cfg.key_field);
        let mut deciding = key;
        if !cfg.keep_statuses.is_empty() {
            deciding = deciding.max(slot(&cfg.status_field));
        }
        if !cfg.exclude_types.is_empty() {
            deciding = deciding.max(slot(&cfg.type_field));
        }
        let enough = deciding + 1;
        let status = slot(&cfg.status_field);
        let type_field = slot(&cfg.type_field);
        let external_identifier =
            (cfg.key_field == "externalId").then(|| slot("externalIdentifier"));
        let status_fallbacks = row::extract::status_fields(inventory)
            .iter()
            .map(|f| slot(f))
            .collect();
        let type_fallbacks = row::extract::TYPE_FIELDS.iter().map(|f| slot(f)).collect();
        debug_assert!(wanted.len() <= json::MAX_SCANNED);
        Rules {
            keep_statuses: lower(&cfg.keep_statuses),
            exclude_types: lower(&cfg.exclude_types),
            wanted,
            enough,
            key,
            external_identifier,
            status,
            status_fallbacks,
            type_field,
            type_fallbacks,
        }
    }

    /// Runs for every element of a page that is not read onto a tape (whitespace, escapes, deep
    /// nesting) and for the single-item endpoint's answers: it reads the members it needs,
    /// borrowed from the page, and allocates nothing for an element whose strings carry no
    /// escapes. An element `serde_json` cannot read whole (a lone surrogate escape, a number out
    /// of range: the page's element finder checks syntax only) is not an object: its row could
    /// not be read, and the API could not serve it. (Nesting deeper than [`json::MAX_DEPTH`] is
    /// the listing's `too_deep` rule's: no version of such an element is taken.)
    pub fn judge<'a>(&self, element: &'a str) -> Verdict<'a> {
        if !json::nests_deeper_than(element, json::MAX_DEPTH) && !json::readable(element) {
            return Verdict::NotObject;
        }
        let Some(mut found) = json::scan(element, &self.wanted, self.enough) else {
            return Verdict::NotObject;
        };
        // A deciding member that is there but blank (or not text) sends the rules to their
        // fallbacks, which an early stop did not read: read the whole element then.
        if found[..self.enough].iter().any(|r| !usable(*r)) {
            if let Some(all) = json::scan(element, &self.wanted, 0) {
                found = all;
            }
        }
        self.decide(&found, |found| {
            v5_external_id(
                found[self.key],
                self.external_identifier.and_then(|i| found[i]),
            )
        })
    }

    /// [`Rules::judge`] of an element already read onto a tape (the same verdict, the same
    /// members read: the first `enough` deciding members up to where they are all found, else
    /// the last of each name in the whole element).
    pub(crate) fn judge_tape<'a>(&self, element: Val<'_, 'a>) -> Verdict<'a> {
        if !element.is_object() {
            return Verdict::NotObject;
        }
        let wanted = &self.wanted[..self.wanted.len().min(json::MAX_SCANNED)];
        let read = |enough: usize| {
            let mut found: [Option<Val<'_, 'a>>; json::MAX_SCANNED] = [None; json::MAX_SCANNED];
            for (name, value) in element.members() {
                if let Some(i) = wanted.iter().position(|w| w == name) {
                    found[i] = Some(value);
                    if enough > 0 && found[..enough].iter().all(Option::is_some) {
                        break;
                    }
                }
            }
            found
        };
        let mut found = read(self.enough);
        if found[..self.enough].iter().any(|r| !usable(*r)) {
            found = read(0);
        }
        // Reached only after reading the whole element (the key decides): the last
        // `externalId` and `externalIdentifier`, as the row reads them.
        self.decide(&found, |_| row::extract::external_id_in(element))
    }

    /// The verdict on the members `found` (in the order of `wanted`); `v5_key` reads the key
    /// from v5's identifiers when the key member gives none.
    fn decide<'a, M: Member<'a>>(
        &self,
        found: &[Option<M>; json::MAX_SCANNED],
        v5_key: impl FnOnce(&[Option<M>; json::MAX_SCANNED]) -> Option<Box<str>>,
    ) -> Verdict<'a> {
        let key = match found[self.key].and_then(M::text) {
            Some(k) => k,
            None => match self.external_identifier {
                // v5 shapes carry the external id as externalIdentifier[] (or externalId holds
                // a list of identifiers): the row's reading of the External ID column.
                // (The row's text is trimmed and never blank.)
                Some(_) => match v5_key(found) {
                    Some(k) => Cow::Owned(k.into()),
                    None => return Verdict::NoKey,
                },
                None => return Verdict::NoKey,
            },
        };
        if !self.keep_statuses.is_empty() {
            let status = found[self.status].and_then(M::text).or_else(|| {
                self.status_fallbacks
                    .iter()
                    .find_map(|&i| found[i].and_then(M::row_text))
            });
            if !status.is_some_and(|s| one_of(&s, &self.keep_statuses)) {
                return Verdict::NotKept { key };
            }
        }
        if !self.exclude_types.is_empty() {
            let ty = found[self.type_field].and_then(M::text).or_else(|| {
                self.type_fallbacks
                    .iter()
                    .find_map(|&i| found[i].and_then(M::row_text))
            });
            if ty.is_some_and(|t| one_of(&t, &self.exclude_types)) {
                return Verdict::NotKept { key };
            }
        }
        Verdict::Keep { key }
    }
}

/// A member the rules read: a raw value of the page's text, or a value on a tape.
trait Member<'a>: Copy {
    /// A non-blank string (as written, not trimmed) or a number's text ([`json::text`]).
    fn text(self) -> Option<Cow<'a, str>>;
    /// As the row reads text: a non-blank string, a number or a boolean.
    fn row_text(self) -> Option<Cow<'a, str>>;
}

impl<'a> Member<'a> for &'a RawValue {
    fn text(self) -> Option<Cow<'a, str>> {
        json::text(self)
    }
    fn row_text(self) -> Option<Cow<'a, str>> {
        row_text(self)
    }
}

impl<'a> Member<'a> for Val<'_, 'a> {
    fn text(self) -> Option<Cow<'a, str>> {
        match self.node() {
            Node::String(s) => (!s.trim().is_empty()).then_some(Cow::Borrowed(*s)),
            // Written as serde_json writes numbers, as json::text does.
            Node::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }
    fn row_text(self) -> Option<Cow<'a, str>> {
        match self.node() {
            Node::Bool(true) => Some(Cow::Borrowed("true")),
            Node::Bool(false) => Some(Cow::Borrowed("false")),
            _ => self.text(),
        }
    }
}

/// A deciding member is usable when it is there and reads as text.
fn usable<'a, M: Member<'a>>(member: Option<M>) -> bool {
    member.is_some_and(|m| m.text().is_some())
}

/// The External ID as the row reads it from `externalId` and `externalIdentifier`.
fn v5_external_id(
    external_id: Option<&RawValue>,
    identifiers: Option<&RawValue>,
) -> Option<Box<str>> {
    fn member<'a>(
        name: &'static str,
        raw: Option<&'a RawValue>,
    ) -> Option<(Cow<'a, str>, Json<'a>)> {
        Some((Cow::Borrowed(name), Json::parse(raw?.get()).ok()?))
    }
    let members = [
        member("externalId", external_id),
        member("externalIdentifier", identifiers),
    ];
    let object = Json::Object(Obj(members.into_iter().flatten().collect()));
    row::extract::external_id_of(&object)
}

/// A member as the row reads text: a non-blank string, a number or a boolean.
fn row_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    match raw.get() {
        "true" => Some(Cow::Borrowed("true")),
        "false" => Some(Cow::Borrowed("false")),
        _ => json::text(raw),
    }
}

/// Whether `value` (trimmed) is one of `lowered` (already trimmed and lower-cased), ignoring
/// case; no allocation for ASCII values.
fn one_of(value: &str, lowered: &[String]) -> bool {
    let value = value.trim();
    if value.is_ascii() {
        lowered.iter().any(|l| l.eq_ignore_ascii_case(value))
    } else {
        let value = value.to_lowercase();
        lowered.contains(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::{Value, json};

    fn rules(inv: Inventory) -> Rules {
        Rules::new(inv, Config::defaults().inventory(inv))
    }

    /// Judges `v` as the page would carry it (its JSON text).
    trait JudgeValue {
        fn judge_value(&self, v: &Value) -> Verdict<'static>;
    }

    impl JudgeValue for Rules {
        fn judge_value(&self, v: &Value) -> Verdict<'static> {
            let text = v.to_string();
            assert_same_verdicts(self, &text);
            match self.judge(&text) {
                Verdict::Keep { key } => Verdict::Keep {
                    key: Cow::Owned(key.into_owned()),
                },
                Verdict::NotKept { key } => Verdict::NotKept {
                    key: Cow::Owned(key.into_owned()),
                },
                Verdict::NoKey => Verdict::NoKey,
                Verdict::NotObject => Verdict::NotObject,
            }
        }
    }

    /// The verdict on a tape is the verdict on the text.
    fn assert_same_verdicts(rules: &Rules, text: &str) {
        let on_text = format!("{:?}", rules.judge(text));
        match json::Tape::read_compact(text) {
            Some(tape) => {
                let on_tape = format!("{:?}", rules.judge_tape(tape.root()));
                assert_eq!(on_tape, on_text, "{text}");
            }
            None => assert!(text.contains(['\\', ' ']), "read fast: {text}"),
        }
    }

    #[test]
    fn a_tape_is_judged_as_its_text() {
        let mut strict = Config::defaults().resources;
        strict.keep_statuses = vec!["Operational".into(), "true".into()];
        let mut by_type = Config::defaults().services;
        by_type.exclude_types = vec!["Gone".into(), "7".into()];
        let all = [
            rules(Inventory::Services),
            rules(Inventory::Carriers),
            rules(Inventory::Resources),
            Rules::new(Inventory::Resources, &strict),
            Rules::new(Inventory::Services, &by_type),
        ];
        let elements = [
            r#"{"externalId":"S","status":"Operational"}"#,
            r#"{"externalId":"S","status":"Operational","status":"Terminated"}"#,
            r#"{"status":"Terminated","externalId":"S","status":"Operational"}"#,
            r#"{"externalId":"A","externalId":"B","status":"Operational","externalId":"C"}"#,
            r#"{"externalId":" ","status":"Operational","externalId":"late"}"#,
            r#"{"externalId":"S","status":"","state":"Operational","status":" "}"#,
            r#"{"externalId":"S","status":true,"state":"Operational"}"#,
            r#"{"externalId":"S","status":7,"operatingStatus":"Operational"}"#,
            r#"{"externalId":42,"status":"Operational"}"#,
            r#"{"externalId":1.50,"status":"Operational"}"#,
            r#"{"externalId":-0,"status":"Operational"}"#,
            r#"{"externalId":1e5,"status":"Operational"}"#,
            r#"{"externalId":null,"externalIdentifier":[{"id":" X-1 ","owner":"o"}],"state":"Operational"}"#,
            r#"{"externalIdentifier":[{"id":""},{"id":"second"}],"status":"Operational"}"#,
            r#"{"externalIdentifier":[{"id":"first"}],"externalIdentifier":[{"id":"last"}]}"#,
            r#"{"externalId":[{"id":"in a list"}],"status":"Operational"}"#,
            r#"{"externalId":{"id":"an object"},"status":"Operational"}"#,
            r#"{"externalId":"S","status":"Operational","@type":"Gone"}"#,
            r#"{"externalId":"S","status":"Operational","@type":" ","type":"gone"}"#,
            r#"{"externalId":"S","status":"Operational","category":7}"#,
            r#"{"id":"R","@type":"Card"}"#,
            r#"{"id":"R","@type":"Card","@type":"Antenna"}"#,
            r#"{"@type":"Card","id":"R","@type":"Antenna"}"#,
            r#"{"id":"R","@type":"","type":"Slot"}"#,
            r#"{"id":"R","resourceStatus":true,"status":"Operational"}"#,
            r#"{"id":"R","status":" ","lifecycleState":"OPERATIONAL"}"#,
            r#"{"id":"R","status":"Opérational"}"#,
            r#"{"id":"R1","id":"R2","status":"Operational","@type":"Port"}"#,
            r#"{"id":"","externalId":"S"}"#,
            r#"{"name":"no key at all","nested":{"id":"x","externalId":"y"}}"#,
            r#"{}"#,
            r#"[{"id":"R"}]"#,
            r#""text""#,
            r#"42"#,
            r#"null"#,
            r#"{"externalId":"S\u0041","status":"Operational"}"#,
            r#"{"id":"R", "status":"Operational"}"#,
        ];
        for r in &all {
            for element in elements {
                assert_same_verdicts(r, element);
            }
        }
    }

    fn key_of(v: Verdict) -> Option<String> {
        match v {
            Verdict::Keep { key, .. } => Some(key.to_string()),
            _ => None,
        }
    }

    #[test]
    fn services_are_keyed_by_external_id_in_v4_and_v5() {
        let r = rules(Inventory::Services);
        let v4 = json!({"id": "1", "externalId": "SVC-1", "status": "Operational"});
        let v5 = json!({"id": "2", "externalIdentifier": [{"id": "SVC-2", "owner": "SES"}], "state": "Operational"});
        assert_eq!(key_of(r.judge_value(&v4)).as_deref(), Some("SVC-1"));
        assert_eq!(key_of(r.judge_value(&v5)).as_deref(), Some("SVC-2"));
        assert!(matches!(
            r.judge_value(&json!({"externalId": "  ", "status": "Operational"})),
            Verdict::NoKey
        ));
        assert!(matches!(
            r.judge_value(&json!({"externalId": null})),
            Verdict::NoKey
        ));
        assert!(matches!(r.judge_value(&json!(42)), Verdict::NotObject));
    }

    #[test]
    fn services_not_operational_are_not_kept() {
        let r = rules(Inventory::Services);
        let v = r.judge_value(&json!({"externalId": "S", "status": "Terminated"}));
        assert!(matches!(v, Verdict::NotKept { .. }));
        let v = r.judge_value(&json!({"externalId": "S"}));
        assert!(
            matches!(v, Verdict::NotKept { .. }),
            "no status is not Operational"
        );
        assert!(
            key_of(r.judge_value(&json!({"externalId": "S", "status": "operational"}))).is_some()
        );
        // Carriers keep every status by default.
        assert!(
            key_of(
                rules(Inventory::Carriers)
                    .judge_value(&json!({"externalId": "C", "status": "Planned"}))
            )
            .is_some()
        );
    }

    #[test]
    fn a_blank_status_field_falls_back_to_the_other_status_shapes() {
        let r = rules(Inventory::Services);
        let v5 = json!({"externalId": "S", "status": " ", "state": "Operational"});
        assert!(key_of(r.judge_value(&v5)).is_some());
        let v5 = json!({"externalId": "S", "status": "", "state": "Terminated"});
        assert!(key_of(r.judge_value(&v5)).is_none());
    }

    #[test]
    fn fallback_members_read_booleans_as_text_like_the_row() {
        // Odd but possible: a boolean status, with a configuration that keeps "true".
        let mut cfg = Config::defaults().resources;
        cfg.keep_statuses = vec!["true".into()];
        let r = Rules::new(Inventory::Resources, &cfg);
        assert!(key_of(r.judge_value(&json!({"id": "R1", "resourceStatus": true}))).is_some());
        assert!(key_of(r.judge_value(&json!({"id": "R2", "resourceStatus": false}))).is_none());
        cfg.keep_statuses = vec![];
        cfg.exclude_types = vec!["false".into()];
        let r = Rules::new(Inventory::Resources, &cfg);
        assert!(key_of(r.judge_value(&json!({"id": "R3", "type": false}))).is_none());
        assert!(key_of(r.judge_value(&json!({"id": "R4", "type": true}))).is_some());
    }

    #[test]
    fn excluded_resource_types_are_not_kept() {
        let r = rules(Inventory::Resources);
        for ty in [
            "Card",
            "BandwidthSegment",
            "LogicalPort",
            "Multicast",
            "Slot",
            "Port",
            "Circuit",
        ] {
            let v = r.judge_value(&json!({"id": "R", "@type": ty}));
            assert!(matches!(v, Verdict::NotKept { .. }), "{ty}");
        }
        assert_eq!(
            key_of(r.judge_value(&json!({"id": 7, "@type": "Antenna"}))).as_deref(),
            Some("7")
        );
    }
}

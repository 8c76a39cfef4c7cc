//! The keep rules: which page elements are cached, under which key.

use crate::config::InventoryConfig;
use crate::model::inventory::Inventory;
use crate::model::item::Key;
use crate::model::row;
use serde_json::Value;
use std::borrow::Cow;

/// What the keep rules say about one page element.
#[derive(Debug)]
pub enum Verdict {
    /// Cache it under `key` (its row is extracted only if its JSON changed).
    Keep { key: Key },
    /// It exists upstream but is not kept (status or type): remove it if cached.
    NotKept { key: Key, reason: NotKeptReason },
    /// No usable key: skipped.
    NoKey,
    /// Not a JSON object: skipped.
    NotObject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotKeptReason {
    Status,
    Type,
}

/// The keep rules of one inventory, prepared once from its configuration.
#[derive(Clone, Debug)]
pub struct Rules {
    inventory: Inventory,
    key_field: String,
    status_field: String,
    keep_statuses: Vec<String>,
    type_field: String,
    exclude_types: Vec<String>,
}

impl Rules {
    pub fn new(inventory: Inventory, cfg: &InventoryConfig) -> Rules {
        let lower = |v: &[String]| v.iter().map(|s| s.trim().to_lowercase()).collect();
        Rules {
            inventory,
            key_field: cfg.key_field.clone(),
            status_field: cfg.status_field.clone(),
            keep_statuses: lower(&cfg.keep_statuses),
            type_field: cfg.type_field.clone(),
            exclude_types: lower(&cfg.exclude_types),
        }
    }

    /// Runs for every element of every page: it borrows the element's text rather than copying
    /// it, and allocates only the key.
    pub fn judge(&self, element: &Value) -> Verdict {
        let Some(obj) = element.as_object() else {
            return Verdict::NotObject;
        };
        let key = match field_text(obj.get(&self.key_field)) {
            Some(k) => Key::new(&k),
            // v5 shapes carry the external id as externalIdentifier[].
            None if self.key_field == "externalId" => match row::external_id_of(element) {
                Some(k) if !k.trim().is_empty() => Key::new(&k),
                _ => return Verdict::NoKey,
            },
            None => return Verdict::NoKey,
        };
        if !self.keep_statuses.is_empty() {
            let kept = match field_text(obj.get(&self.status_field)) {
                Some(status) => one_of(&status, &self.keep_statuses),
                None => row::status_of(self.inventory, element)
                    .is_some_and(|status| one_of(&status, &self.keep_statuses)),
            };
            if !kept {
                return Verdict::NotKept {
                    key,
                    reason: NotKeptReason::Status,
                };
            }
        }
        if !self.exclude_types.is_empty() {
            let excluded = match field_text(obj.get(&self.type_field)) {
                Some(ty) => one_of(&ty, &self.exclude_types),
                None => row::type_of(element).is_some_and(|ty| one_of(&ty, &self.exclude_types)),
            };
            if excluded {
                return Verdict::NotKept {
                    key,
                    reason: NotKeptReason::Type,
                };
            }
        }
        Verdict::Keep { key }
    }
}

/// A non-blank string (borrowed) or a number (as text); anything else is absent.
fn field_text(v: Option<&Value>) -> Option<Cow<'_, str>> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
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
    use serde_json::json;

    fn rules(inv: Inventory) -> Rules {
        Rules::new(inv, Config::defaults().inventory(inv))
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
        assert_eq!(key_of(r.judge(&v4)).as_deref(), Some("SVC-1"));
        assert_eq!(key_of(r.judge(&v5)).as_deref(), Some("SVC-2"));
        assert!(matches!(
            r.judge(&json!({"externalId": "  ", "status": "Operational"})),
            Verdict::NoKey
        ));
        assert!(matches!(
            r.judge(&json!({"externalId": null})),
            Verdict::NoKey
        ));
        assert!(matches!(r.judge(&json!(42)), Verdict::NotObject));
    }

    #[test]
    fn services_not_operational_are_not_kept() {
        let r = rules(Inventory::Services);
        let v = r.judge(&json!({"externalId": "S", "status": "Terminated"}));
        assert!(matches!(
            v,
            Verdict::NotKept {
                reason: NotKeptReason::Status,
                ..
            }
        ));
        let v = r.judge(&json!({"externalId": "S"}));
        assert!(
            matches!(
                v,
                Verdict::NotKept {
                    reason: NotKeptReason::Status,
                    ..
                }
            ),
            "no status is not Operational"
        );
        assert!(key_of(r.judge(&json!({"externalId": "S", "status": "operational"}))).is_some());
        // Carriers keep every status by default.
        assert!(
            key_of(
                rules(Inventory::Carriers).judge(&json!({"externalId": "C", "status": "Planned"}))
            )
            .is_some()
        );
    }

    #[test]
    fn a_blank_status_field_falls_back_to_the_other_status_shapes() {
        let r = rules(Inventory::Services);
        let v5 = json!({"externalId": "S", "status": " ", "state": "Operational"});
        assert!(key_of(r.judge(&v5)).is_some());
        let v5 = json!({"externalId": "S", "status": "", "state": "Terminated"});
        assert!(key_of(r.judge(&v5)).is_none());
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
            let v = r.judge(&json!({"id": "R", "@type": ty}));
            assert!(
                matches!(
                    v,
                    Verdict::NotKept {
                        reason: NotKeptReason::Type,
                        ..
                    }
                ),
                "{ty}"
            );
        }
        assert_eq!(
            key_of(r.judge(&json!({"id": 7, "@type": "Antenna"}))).as_deref(),
            Some("7")
        );
    }
}

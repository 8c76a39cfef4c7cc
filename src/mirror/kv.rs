//! The key-value side of the mirror: bucket names, how an upstream key becomes a KV key, what an
//! entry holds, and reading a whole bucket.
//!
//! **Keys.** A KV key may hold only `A-Z a-z 0-9 - _ / = .`, and `.` separates tokens. Upstream
//! keys are free text, so they are escaped: `A-Z a-z 0-9 - _` stay as they are, every other
//! byte of the key's UTF-8 becomes `=` and two upper-case hex digits (`.` → `=2E`, `/` → `=2F`,
//! `=` → `=3D`, a space → `=20`, `é` → `=C3=A9`); the empty key is `=`. The encoding is one to
//! one, so [`decode_key`] gives the upstream key back.
//!
//! **Values.** One JSON object per item: `id` (the upstream key), the row's columns as the read
//! API lists them (snake_case, dates in RFC 3339 UTC, references as objects, lists as arrays),
//! `first_seen`, `last_seen` (when the entry was written: a poll that sees an item unchanged
//! does not rewrite it) and `upstream` (the item as received, so that a standby serves exactly
//! what the leader does).

use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::row::Row;
use crate::time::format;
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// The bucket mirroring `inv`: `ses_inventory_services`, `_carriers`, `_resources`.
pub fn bucket(inv: Inventory) -> String {
    format!("ses_inventory_{}", inv.as_str())
}

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The KV key of an upstream key (see the module docs).
pub fn encode_key(key: &str) -> String {
    if key.is_empty() {
        return "=".to_owned();
    }
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            out.push('=');
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// The upstream key of a KV key written by [`encode_key`]; `None` for anything else.
pub fn decode_key(encoded: &str) -> Option<String> {
    if encoded == "=" {
        return Some(String::new());
    }
    if encoded.is_empty() {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'=' {
            let hex = encoded.get(i + 1..i + 3)?;
            if !hex
                .bytes()
                .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(&h))
            {
                return None;
            }
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if plain(byte) {
                return None; // never written that way: not one of ours
            }
            out.push(byte);
            i += 3;
        } else if plain(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The entry of `item` as a JSON object (see the module docs), without `last_seen`.
fn value_without_last_seen(inv: Inventory, item: &Item) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("id".into(), Value::String(item.key.as_str().to_owned()));
    for (i, column) in Row::columns(inv).iter().enumerate() {
        map.insert(column.name.into(), item.cell(i).to_json());
    }
    map.insert(
        "first_seen".into(),
        Value::String(format::millis(item.first_seen)),
    );
    map.insert("upstream".into(), item.json());
    map
}

/// The bytes of `item`'s entry, `last_seen` = `written`.
pub(crate) fn encode_value(inv: Inventory, item: &Item, written: DateTime<Utc>) -> Vec<u8> {
    let mut map = value_without_last_seen(inv, item);
    // `last_seen` goes before `upstream`, next to `first_seen`.
    let upstream = map.remove("upstream").unwrap_or(Value::Null);
    map.insert("last_seen".into(), Value::String(format::millis(written)));
    map.insert("upstream".into(), upstream);
    // A map of strings and values serializes.
    serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
}

/// Whether the stored entry `stored` says what `item` would (`last_seen` aside).
pub(crate) fn same_value(inv: Inventory, item: &Item, stored: &[u8]) -> bool {
    let Ok(Value::Object(mut stored)) = serde_json::from_slice::<Value>(stored) else {
        return false;
    };
    stored.remove("last_seen");
    stored == value_without_last_seen(inv, item)
}

/// An item rebuilt from its entry (a standby's cache): key, upstream JSON, row, first and last
/// seen. `None` when the entry is not one of ours.
pub(crate) fn decode_item(inv: Inventory, value: &[u8]) -> Option<Item> {
    let Value::Object(map) = serde_json::from_slice::<Value>(value).ok()? else {
        return None;
    };
    let key = map.get("id")?.as_str()?;
    let upstream = map.get("upstream")?;
    let raw = serde_json::to_string(upstream).ok()?;
    let seen = |name: &str| {
        map.get(name)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let first_seen = seen("first_seen")?;
    let last_seen = seen("last_seen").unwrap_or(first_seen);
    Some(Item::new(
        Key::new(key),
        inv,
        raw.into_boxed_str(),
        first_seen,
        last_seen,
    ))
}

/// What a bucket holds: encoded key → value, live entries only.
pub(crate) type Contents = HashMap<String, bytes::Bytes>;

/// Longest wait for the next entry while a bucket is being read.
const READ_IDLE: Duration = Duration::from_secs(10);

/// One change of a bucket: a key put (`Some(value)`) or deleted (`None`).
pub struct Update {
    pub key: String,
    pub value: Option<bytes::Bytes>,
}

/// The changes of a bucket after [`read_all`] read it, as they come (a standby follows them).
/// A pull consumer on the bucket's stream: the client's push-based watch is not served by
/// servers before 2.10.
pub struct Follow {
    prefix: String,
    messages: pull::Stream,
}

impl Follow {
    /// The next change; `None` when the consumer is gone (the caller reads the bucket anew).
    pub async fn next(&mut self) -> Option<Result<Update, String>> {
        let message = match self.messages.next().await? {
            Ok(m) => m,
            Err(e) => return Some(Err(e.to_string())),
        };
        Some(Ok(self.update(&message)))
    }

    fn update(&self, message: &jetstream::Message) -> Update {
        let key = message
            .subject
            .as_str()
            .strip_prefix(&self.prefix)
            .unwrap_or_default()
            .to_owned();
        let deleted = message
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
        Update {
            key,
            value: (!deleted).then(|| message.payload.clone()),
        }
    }
}

/// The revision (stream sequence) of every key's last write, deletions included.
pub(crate) type Revisions = HashMap<String, u64>;

/// Reads every live entry of bucket `name` (keys only when `keys_only`: values are then
/// empty), and returns what follows it.
pub async fn read_all(
    js: &jetstream::Context,
    name: &str,
    keys_only: bool,
) -> Result<(Contents, Follow), String> {
    read_with_revisions(js, name, keys_only)
        .await
        .map(|(contents, _, follow)| (contents, follow))
}

/// As [`read_all`], with the revision of every key's last write.
pub(crate) async fn read_with_revisions(
    js: &jetstream::Context,
    name: &str,
    keys_only: bool,
) -> Result<(Contents, Revisions, Follow), String> {
    let fail = |e: &dyn std::fmt::Display| format!("NATS bucket {name}: {e}");
    let mut stream = js
        .get_stream(format!("KV_{name}"))
        .await
        .map_err(|e| fail(&e))?;
    let messages = stream.info().await.map_err(|e| fail(&e))?.state.messages;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::LastPerSubject,
            filter_subject: format!("$KV.{name}.>"),
            ack_policy: AckPolicy::None,
            headers_only: keys_only,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| fail(&e))?;
    let mut follow = Follow {
        prefix: format!("$KV.{name}."),
        messages: consumer.messages().await.map_err(|e| fail(&e))?,
    };
    let mut contents = Contents::new();
    let mut revisions = Revisions::new();
    if messages == 0 {
        return Ok((contents, revisions, follow));
    }
    loop {
        let message = match tokio::time::timeout(READ_IDLE, follow.messages.next()).await {
            Err(_) => return Err(fail(&"reading it stalled")),
            Ok(None) => return Err(fail(&"the consumer ended")),
            Ok(Some(Err(e))) => return Err(fail(&e)),
            Ok(Some(Ok(m))) => m,
        };
        let (pending, sequence) = message
            .info()
            .map(|i| (i.pending, i.stream_sequence))
            .unwrap_or((0, 0));
        let update = follow.update(&message);
        revisions.insert(update.key.clone(), sequence);
        match update.value {
            Some(value) => contents.insert(update.key, value),
            None => contents.remove(&update.key),
        };
        if pending == 0 {
            return Ok((contents, revisions, follow));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_and_is_a_valid_kv_key() {
        let keys = [
            "SES-SVC-0000001",
            "",
            "a.b",
            "a/b",
            "=",
            "=41",
            "with space",
            "ünïcödé ✓",
            "..",
            "*",
            ">",
            "tab\there",
            "x_y-z",
        ];
        for key in keys {
            let enc = encode_key(key);
            assert!(
                enc.bytes().all(|b| plain(b) || b == b'='),
                "{key:?} -> {enc:?}"
            );
            assert_eq!(decode_key(&enc).as_deref(), Some(key), "{enc:?}");
        }
        assert_eq!(encode_key("a.b/c=d"), "a=2Eb=2Fc=3Dd");
        assert_eq!(encode_key("SES-SVC_1"), "SES-SVC_1");
    }

    #[test]
    fn foreign_keys_do_not_decode() {
        for bad in ["=4", "=zz", "=41", "a.b", "=2e", ""] {
            assert_eq!(decode_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_entry_rebuilds_the_item() {
        let json = serde_json::json!({"externalId": "S-1", "name": "One", "status": "Operational",
            "@type": "CFS", "lastUpdate": "2026-01-02T03:04:05Z"});
        let raw = json.to_string();
        let first = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let item = Item::new(
            Key::new("S-1"),
            Inventory::Services,
            raw.clone().into(),
            first,
            first,
        );
        let written = first + chrono::Duration::hours(1);
        let value = encode_value(Inventory::Services, &item, written);
        let back = decode_item(Inventory::Services, &value).unwrap();
        assert_eq!(back.key.as_str(), "S-1");
        assert_eq!(back.row(), item.row());
        assert_eq!(back.raw(), raw.as_str());
        assert_eq!(back.first_seen, first);
        assert_eq!(back.last_seen(), written);
        assert!(same_value(Inventory::Services, &item, &value));
        let v: Value = serde_json::from_slice(&value).unwrap();
        assert_eq!(v["id"], "S-1");
        assert_eq!(v["name"], "One");
        assert_eq!(v["last_update"], "2026-01-02T03:04:05Z");
        assert_eq!(v["first_seen"], "2026-01-01T00:00:00.000Z");
        let other = Item::new(
            Key::new("S-1"),
            Inventory::Services,
            "{}".into(),
            first,
            first,
        );
        assert!(!same_value(Inventory::Services, &other, &value));
    }
}

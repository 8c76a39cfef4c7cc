//! The item page's "History": the item's entries in the change log (newest first, from
//! [`changes::versions`]) and two of its versions side by side, the lines that differ marked.
//!
//! A version is named by the entry that replaced it (`<seq>`: the upstream JSON it kept as its
//! "before") or is `now` (the cache's). The page's `?a=&b=` picks the two; without them, the
//! last kept version against now (for an item no longer in the cache, the two last kept ones).
//! Each timeline entry links to the picks it offers.

use super::changes::{NO_STORE, at, details, poll_link};
use super::diff;
use super::html::{self, Esc};
use crate::model::inventory::Inventory;
use crate::serve::api::history::read;
use crate::serve::state::AppState;
use crate::store::changes::{self, Change};
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// An item's entries, oldest first, each with the version it replaced.
pub(super) type Versions = Vec<(Change, Option<String>)>;

/// The item's entries from the store: `None` without a store.
pub(super) async fn versions(
    state: &AppState,
    inv: Inventory,
    id: &str,
) -> Option<Result<Versions, String>> {
    let store = state.store.clone()?;
    let key = id.to_string();
    Some(read(store, move |conn| changes::versions(conn, inv, &key)).await)
}

/// A version of the item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pick {
    /// The version the entry with this seq replaced.
    Before(i64),
    Now,
}

impl Pick {
    fn parse(s: &str) -> Option<Pick> {
        match s {
            "now" => Some(Pick::Now),
            _ => s.parse().ok().map(Pick::Before),
        }
    }

    fn param(self) -> String {
        match self {
            Pick::Now => "now".into(),
            Pick::Before(seq) => seq.to_string(),
        }
    }
}

/// The versions a page can show: the kept ones (oldest first) and the current one.
struct Known<'v> {
    kept: Vec<(&'v Change, &'v str)>,
    current: Option<&'v str>,
}

impl<'v> Known<'v> {
    fn text(&self, pick: Pick) -> Option<&'v str> {
        match pick {
            Pick::Now => self.current,
            Pick::Before(seq) => self
                .kept
                .iter()
                .find(|(c, _)| c.seq == seq)
                .map(|(_, t)| *t),
        }
    }

    /// The newest version: now, else the last kept.
    fn newest(&self) -> Option<Pick> {
        match self.current {
            Some(_) => Some(Pick::Now),
            None => self.kept.last().map(|(c, _)| Pick::Before(c.seq)),
        }
    }

    /// The version before `pick`.
    fn before(&self, pick: Pick) -> Option<Pick> {
        let older = match pick {
            Pick::Now => self.kept.last(),
            Pick::Before(seq) => {
                let at = self.kept.iter().position(|(c, _)| c.seq == seq)?;
                at.checked_sub(1).map(|i| &self.kept[i])
            }
        };
        older.map(|(c, _)| Pick::Before(c.seq))
    }

    fn label(&self, pick: Pick, now: DateTime<Utc>) -> String {
        match pick {
            Pick::Now => "now (as in the cache)".into(),
            Pick::Before(seq) => {
                let c = self
                    .kept
                    .iter()
                    .find(|(c, _)| c.seq == seq)
                    .map(|(c, _)| *c);
                match c {
                    Some(c) => format!("before entry {seq} ({}, {})", c.kind.as_str(), at(c, now)),
                    None => format!("before entry {seq}"),
                }
            }
        }
    }
}

/// A JSON text pretty-printed (as it is, when it is not JSON).
fn pretty(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}

/// The link to this page comparing `a` with `b`.
fn compare_link(inv: Inventory, id: &str, a: Pick, b: Pick) -> String {
    let pairs = [("a".to_string(), a.param()), ("b".to_string(), b.param())];
    format!("/ui/{inv}/{}{}#compare", html::url(id), html::query(&pairs))
}

/// The History section of `inv`'s item `id`: `versions` as [`versions`] read them, `current`
/// its upstream JSON now (if it is in the cache), `pairs` the page's query (`a`, `b`).
pub(super) fn section(
    body: &mut String,
    inv: Inventory,
    id: &str,
    versions: Option<&Result<Versions, String>>,
    current: Option<&str>,
    pairs: &[(String, String)],
    now: DateTime<Utc>,
) {
    body.push_str(
        "<section id=\"history\" aria-labelledby=\"h-history\"><h2 id=\"h-history\">History</h2>",
    );
    let versions = match versions {
        None => {
            let _ = write!(
                body,
                "<p class=\"muted\" id=\"no-store\">{NO_STORE}</p></section>"
            );
            return;
        }
        Some(Err(e)) => {
            let _ = write!(
                body,
                "<p class=\"error\" role=\"alert\">{}</p></section>",
                Esc(e)
            );
            return;
        }
        Some(Ok(v)) => v,
    };
    let known = Known {
        kept: versions
            .iter()
            .filter_map(|(c, before)| before.as_deref().map(|b| (c, b)))
            .collect(),
        current,
    };
    // The two versions compared: the query's, where it names one this item has.
    let mut problems = Vec::new();
    let mut chosen = |name: &str| {
        let text = pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v)?;
        let pick = Pick::parse(text).filter(|p| known.text(*p).is_some());
        if pick.is_none() {
            problems.push(format!(
                "{name}: `{text}` is not a version of this item (an entry's seq that kept one, or now)"
            ));
        }
        pick
    };
    let (a, b) = (chosen("a"), chosen("b"));
    let b = b.or_else(|| known.newest());
    let a = a.or_else(|| b.and_then(|b| known.before(b)));
    let _ = write!(
        body,
        "<p class=\"muted\">{} in the change log, newest first · \
         <a href=\"/ui/changes?inventory={inv}&amp;id={}\">in the change log</a> · \
         <a href=\"/api/v1/{inv}/{}/history\">as JSON (API)</a></p>",
        match versions.len() {
            1 => "1 entry".to_string(),
            n => format!("{n} entries"),
        },
        Esc(&html::url(id)),
        Esc(&html::url(id)),
    );
    for p in &problems {
        let _ = write!(
            body,
            "<p class=\"error\" role=\"alert\" id=\"pick-error\">{}</p>",
            Esc(p)
        );
    }
    // Links that pick a version as A or as B, keeping the other.
    let picks = |version: Pick| {
        let mut s = String::new();
        for (side, other, is) in [("A", b, a), ("B", a, b)] {
            let (x, y) = if side == "A" {
                (version, other.unwrap_or(version))
            } else {
                (other.unwrap_or(version), version)
            };
            if is == Some(version) {
                let _ = write!(s, " <strong class=\"picked\">{side}</strong>");
            } else {
                let _ = write!(
                    s,
                    " <a href=\"{}\" id=\"pick-{}-{}\">as {side}</a>",
                    Esc(&compare_link(inv, id, x, y)),
                    side.to_lowercase(),
                    version.param()
                );
            }
        }
        s
    };
    body.push_str("<ol class=\"timeline\" id=\"timeline\">");
    if current.is_some() {
        let _ = write!(
            body,
            "<li id=\"version-now\"><strong>Now</strong>: in the cache · compare{}</li>",
            picks(Pick::Now)
        );
    }
    for (c, before) in versions.iter().rev() {
        let _ = write!(
            body,
            "<li id=\"change-{seq}\" data-seq=\"{seq}\" data-kind=\"{kind}\">{} \
             <strong class=\"kind-{kind}\">{kind}</strong> {} <span class=\"muted\">· poll:</span> {}",
            at(c, now),
            details(c),
            poll_link(c),
            seq = c.seq,
            kind = c.kind.as_str(),
        );
        if before.is_some() {
            let _ = write!(
                body,
                " · <span class=\"muted\">the version before it:</span>{}",
                picks(Pick::Before(c.seq))
            );
        }
        body.push_str("</li>");
    }
    if versions.is_empty() {
        body.push_str(
            "<li class=\"muted\">No changes since the change log began (or since the first \
             fill, which is one baseline entry for the whole inventory).</li>",
        );
    }
    body.push_str("</ol>");
    compare(body, &known, a, b, now);
    body.push_str("</section>");
}

/// The two versions side by side.
fn compare(body: &mut String, known: &Known, a: Option<Pick>, b: Option<Pick>, now: DateTime<Utc>) {
    body.push_str("<section id=\"compare\" aria-labelledby=\"h-compare\"><h3 id=\"h-compare\">Compare two versions</h3>");
    let (Some(a), Some(b)) = (a, b) else {
        body.push_str(
            "<p class=\"muted\" id=\"compare-none\">Only one version is known: nothing to \
             compare yet.</p></section>",
        );
        return;
    };
    let (Some(ta), Some(tb)) = (known.text(a), known.text(b)) else {
        body.push_str("</section>");
        return;
    };
    let (pa, pb) = (pretty(ta), pretty(tb));
    let rows = diff::side_by_side(&pa, &pb);
    let changed = rows.iter().filter(|r| r.changed()).count();
    let _ = write!(
        body,
        "<p id=\"compare-summary\">{}</p>\
         <div class=\"table-wrap\"><table class=\"diff\" id=\"diff\">\
         <caption class=\"muted\">Upstream JSON, pretty-printed: lines that differ are marked</caption>\
         <colgroup><col class=\"ln\"><col><col class=\"ln\"><col></colgroup>\
         <thead><tr><th scope=\"col\" colspan=\"2\" id=\"version-a\" data-version=\"{}\">A: {}</th>\
         <th scope=\"col\" colspan=\"2\" id=\"version-b\" data-version=\"{}\">B: {}</th></tr></thead><tbody>",
        match changed {
            0 => "The two versions are the same.".to_string(),
            1 => "1 line differs.".to_string(),
            n => format!("{n} lines differ."),
        },
        a.param(),
        known.label(a, now),
        b.param(),
        known.label(b, now),
    );
    for row in &rows {
        let side = |line: Option<(usize, &str)>, class: &str| match line {
            Some((n, text)) => format!(
                "<td class=\"ln\">{n}</td><td class=\"{class}\"><code>{}</code></td>",
                Esc(text)
            ),
            None => format!("<td class=\"ln\"></td><td class=\"{class} gap\"></td>"),
        };
        if row.changed() {
            let _ = write!(
                body,
                "<tr class=\"changed\">{}{}</tr>",
                side(row.left, "a del"),
                side(row.right, "b ins")
            );
        } else {
            let _ = write!(
                body,
                "<tr>{}{}</tr>",
                side(row.left, "a"),
                side(row.right, "b")
            );
        }
    }
    body.push_str("</tbody></table></div></section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::changes::ChangeKind;

    fn change(seq: i64, kind: ChangeKind) -> Change {
        Change {
            seq,
            inventory: Inventory::Services,
            id: "S1".into(),
            kind,
            at: "2026-12-01T00:00:00.000Z".into(),
            poll_kind: "refresh".into(),
            poll_reason: None,
            poll_started: "2026-11-30T23:59:59.123Z".into(),
            columns: None,
            reason: None,
            items: None,
            has_before: kind != ChangeKind::Added,
        }
    }

    #[test]
    fn the_default_is_the_last_kept_version_against_now_and_the_rename_is_marked() {
        let versions: Versions = vec![
            (change(3, ChangeKind::Added), None),
            (
                change(5, ChangeKind::Updated),
                Some(r#"{"id":"S1","name":"Old <name>"}"#.into()),
            ),
        ];
        let current = r#"{"id":"S1","name":"New"}"#;
        let now = Utc::now();
        let mut body = String::new();
        let ok = Ok(versions);
        section(
            &mut body,
            Inventory::Services,
            "S1",
            Some(&ok),
            Some(current),
            &[],
            now,
        );
        assert!(body.contains("data-version=\"5\""), "{body}");
        assert!(body.contains("id=\"version-b\" data-version=\"now\""));
        let changed: Vec<&str> = body.split("<tr class=\"changed\">").skip(1).collect();
        assert_eq!(changed.len(), 1, "{body}");
        assert!(changed[0].contains("&quot;name&quot;: &quot;Old &lt;name&gt;&quot;"));
        assert!(changed[0].contains("&quot;name&quot;: &quot;New&quot;"));
        // A pick of a version that is not this item's is named, and the default stays.
        let mut body = String::new();
        let pairs = vec![("a".to_string(), "3".to_string())];
        section(
            &mut body,
            Inventory::Services,
            "S1",
            Some(&ok),
            Some(current),
            &pairs,
            now,
        );
        assert!(body.contains("a: `3` is not a version"), "{body}");
        assert!(body.contains("data-version=\"5\""));
        // Links pick a version as A, keeping B.
        assert!(
            body.contains("href=\"/ui/services/S1?a=now&amp;b=now#compare\" id=\"pick-a-now\""),
            "{body}"
        );
        // Without a store, the section says so.
        let mut body = String::new();
        section(&mut body, Inventory::Services, "S1", None, None, &[], now);
        assert!(body.contains("store.path"));
    }
}

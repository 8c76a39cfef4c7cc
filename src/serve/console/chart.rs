//! A small inline SVG chart of recent polls: the item count after each (a line) over their
//! durations (bars: refreshes, full passes, failures). Drawn on the server; styled by classes
//! from the stylesheet (no inline style: the CSP allows none). Each poll's column is a link to
//! its changes (`/ui/changes?poll=<its start>&inventory=<inventory>`).

use super::html;
use crate::cache::PollPoint;
use crate::model::inventory::Inventory;
use crate::model::status::{Outcome, PollKind};
use crate::time::format;
use std::fmt::Write;

const W: f64 = 400.0;
/// Height of the items panel and of the durations panel.
const TOP: f64 = 70.0;
const BOTTOM: f64 = 40.0;
const GAP: f64 = 14.0;
/// The chart has room for this many polls at least; fewer fill it from the right (newest).
const SLOTS: usize = 30;

/// The change log's page of the poll `p` of `inv` (`poll` matches its start to the millisecond).
pub fn changes_link(inv: Inventory, p: &PollPoint) -> String {
    let pairs = [
        ("poll".to_string(), format::millis(p.started)),
        ("inventory".to_string(), inv.as_str().to_string()),
    ];
    format!("/ui/changes{}", html::query(&pairs))
}

/// The chart of `points` (oldest first) of `inv`; a line of text when there are none. `label`
/// names the inventory in the chart's accessible title.
pub fn polls(label: &str, inv: Inventory, points: &[PollPoint]) -> String {
    if points.is_empty() {
        return "<p class=\"muted\">No polls yet: the chart starts with the first.</p>".into();
    }
    let n = points.len();
    let slots = n.max(SLOTS);
    let step = W / slots as f64;
    let left = (slots - n) as f64 * step;
    let min_items = points.iter().map(|p| p.items).min().unwrap_or(0);
    let max_items = points.iter().map(|p| p.items).max().unwrap_or(0);
    let max_ms = points
        .iter()
        .map(|p| p.duration().num_milliseconds().max(0))
        .max()
        .unwrap_or(0)
        .max(1);
    let y_items = |items: u64| {
        if max_items == min_items {
            TOP / 2.0
        } else {
            let f = (items - min_items) as f64 / (max_items - min_items) as f64;
            TOP - 4.0 - f * (TOP - 8.0)
        }
    };
    let height = TOP + GAP + BOTTOM;
    let last = points[n - 1];
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {height}\" role=\"group\" \
         aria-label=\"{}: items after each of the last {n} polls, from {} to {} (now {}); \
         durations up to {}; each poll links to its changes\">",
        html::Esc(label),
        min_items,
        max_items,
        last.items,
        html::duration(chrono::TimeDelta::milliseconds(max_ms)),
    );
    let _ = write!(
        svg,
        "<rect class=\"frame\" x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\"/>",
        W - 1.0,
        TOP - 1.0
    );
    let mut line = String::new();
    for (i, p) in points.iter().enumerate() {
        let x = left + step * (i as f64 + 0.5);
        let _ = write!(
            line,
            "{}{x:.1},{:.1}",
            if i == 0 { "" } else { " " },
            y_items(p.items)
        );
    }
    let _ = write!(
        svg,
        "<polyline class=\"items\" points=\"{line}\"/><circle class=\"dot\" cx=\"{:.1}\" \
         cy=\"{:.1}\" r=\"3\"/>",
        left + step * (n as f64 - 0.5),
        y_items(last.items)
    );
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"12\">{} items</text><text x=\"4\" y=\"{}\">{}</text>",
        html::count(max_items),
        TOP - 4.0,
        html::count(min_items),
    );
    let base = TOP + GAP + BOTTOM;
    for (i, p) in points.iter().enumerate() {
        let ms = p.duration().num_milliseconds().max(0);
        let h = (ms as f64 / max_ms as f64 * (BOTTOM - 2.0)).max(1.0);
        let class = match (p.outcome, p.kind) {
            (Outcome::Failed, _) => "dur failed",
            (_, PollKind::Full) => "dur full",
            _ => "dur",
        };
        let _ = write!(
            svg,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/>",
            left + step * i as f64 + step * 0.1,
            base - h,
            (step * 0.8).max(1.0),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{}\">duration, up to {}</text>",
        TOP + GAP - 3.0,
        html::duration(chrono::TimeDelta::milliseconds(max_ms)),
    );
    // On top: each poll's whole column, a link to its changes.
    for (i, p) in points.iter().enumerate() {
        let kind = match p.kind {
            PollKind::Full => "full pass",
            PollKind::Refresh => "refresh",
        };
        let _ = write!(
            svg,
            "<a href=\"{}\" class=\"poll\"><title>{kind} started {}, {}: +{} added, {} updated, \
             −{} removed — its changes</title><rect class=\"hit\" x=\"{:.1}\" y=\"0\" \
             width=\"{:.1}\" height=\"{height}\"/></a>",
            html::Esc(&changes_link(inv, p)),
            format::millis(p.started),
            p.outcome.as_str(),
            p.added,
            p.updated,
            p.removed,
            left + step * i as f64,
            step,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeDelta, Utc};

    fn point(items: u64, ms: i64, kind: PollKind, outcome: Outcome) -> PollPoint {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        PollPoint {
            kind,
            outcome,
            started: t,
            finished: t + TimeDelta::milliseconds(ms),
            items,
            added: 0,
            updated: 0,
            removed: 0,
            skipped_pages: 0,
            skipped_items: 0,
        }
    }

    #[test]
    fn one_bar_per_poll_the_line_follows_the_counts() {
        let points = [
            point(10, 2000, PollKind::Full, Outcome::Complete),
            point(12, 100, PollKind::Refresh, Outcome::Complete),
            point(12, 50, PollKind::Refresh, Outcome::Failed),
        ];
        let svg = polls("services <x>", Inventory::Services, &points);
        assert_eq!(svg.matches("class=\"dur").count(), 3);
        assert_eq!(svg.matches("dur full").count(), 1);
        assert_eq!(svg.matches("dur failed").count(), 1);
        // The highest count is drawn at the top of its panel, the lowest at the bottom; three
        // polls take the three rightmost of 30 slots.
        assert!(
            svg.contains("points=\"366.7,66.0 380.0,4.0 393.3,4.0\""),
            "{svg}"
        );
        assert!(svg.contains("services &lt;x&gt;"));
        assert!(!svg.contains("style="));
        // Each poll links to its changes.
        assert_eq!(svg.matches("<a href=").count(), 3);
        assert!(svg.contains(
            "href=\"/ui/changes?poll=1970-01-01T00%3A00%3A00.000Z&amp;inventory=services\""
        ));
        assert!(polls("x", Inventory::Services, &[]).contains("No polls yet"));
        assert!(polls("x", Inventory::Services, &points[..1]).contains("<circle"));
    }
}

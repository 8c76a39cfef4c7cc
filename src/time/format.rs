//! The one way times are written as text: RFC 3339, in UTC with a `Z`, at the precision each
//! reader needs, and read back.

use chrono::{DateTime, SecondsFormat, Utc};

/// Whole seconds (`2026-12-07T01:02:03Z`): log lines.
pub fn seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Milliseconds (`2026-12-07T01:02:03.456Z`): the read API, the console, the mirror.
pub(crate) fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Nanoseconds, fixed width, so that comparing two as text compares them as times: the store.
pub fn nanos(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// As precise as the time is, no more (`…:03Z`, `…:03.5Z`): the upstream's dates in rows.
pub fn exact(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A time written by any of these (or any RFC 3339 time, in any offset).
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A time parameter: RFC 3339, or a span back from `now` (`30m`, `24h`, `7d`, `90s`).
pub fn parse_or_span(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(t) = parse(text) {
        return Some(t);
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(now - chrono::Duration::seconds(n.checked_mul(seconds)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_or_spans_back_from_now() {
        let now = parse("2026-12-07T12:00:00Z").unwrap();
        let at = |s: &str| parse_or_span(s, now).map(seconds);
        assert_eq!(at("24h").as_deref(), Some("2026-12-06T12:00:00Z"));
        assert_eq!(at("7d").as_deref(), Some("2026-11-30T12:00:00Z"));
        assert_eq!(at("90s").as_deref(), Some("2026-12-07T11:58:30Z"));
        assert_eq!(
            at("2026-12-01T00:00:00+01:00").as_deref(),
            Some("2026-11-30T23:00:00Z")
        );
        assert_eq!(at("24"), None);
        assert_eq!(at("h"), None);
        assert_eq!(at("3w"), None);
        assert_eq!(at("99999999999999999d"), None);
    }

    #[test]
    fn each_precision_reads_back() {
        let t = parse("2026-12-07T01:02:03.456+01:00").unwrap();
        assert_eq!(seconds(t), "2026-12-07T00:02:03Z");
        assert_eq!(millis(t), "2026-12-07T00:02:03.456Z");
        assert_eq!(nanos(t), "2026-12-07T00:02:03.456000000Z");
        assert_eq!(exact(t), "2026-12-07T00:02:03.456Z");
        for write in [seconds, millis, nanos, exact] {
            let text = write(t);
            assert_eq!(parse(&text).map(write), Some(text));
        }
        assert_eq!(parse("yesterday"), None);
    }
}

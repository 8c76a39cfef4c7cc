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

#[cfg(test)]
mod tests {
    use super::*;

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

//! What the next poll should be: a full pass, or a refresh with which `updatedDaysAgo`.
//!
//! Pure arithmetic over timestamps, so every rule is unit-tested without a network or a clock.

use crate::config::{DaysAgoSemantics, PollConfig};
pub use crate::model::status::FullReason;
use crate::model::status::SyncTimes;
use chrono::{DateTime, Duration, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollPlan {
    Full(FullReason),
    Refresh { days_ago: u32 },
}

/// Chooses the next poll at `now`.
pub fn plan(times: &SyncTimes, now: DateTime<Utc>, cfg: &PollConfig) -> PollPlan {
    let (Some(full), Some(anchor)) = (times.last_complete_full, times.window_anchor) else {
        return PollPlan::Full(FullReason::Initial);
    };
    if cfg.full_resync_interval > 0
        && now - full >= Duration::seconds(cfg.full_resync_interval as i64)
    {
        return PollPlan::Full(FullReason::Resync);
    }
    let since = anchor - Duration::seconds(cfg.window_margin as i64);
    if now - since > Duration::days(cfg.max_refresh_window_days.into()) {
        return PollPlan::Full(FullReason::WindowTooWide);
    }
    PollPlan::Refresh {
        days_ago: days_ago(since, now, cfg.updated_days_ago_semantics),
    }
}

/// The smallest `updatedDaysAgo` whose window, asked at `now`, reaches back to `since`.
pub fn days_ago(since: DateTime<Utc>, now: DateTime<Utc>, semantics: DaysAgoSemantics) -> u32 {
    if since >= now {
        return 0;
    }
    let n = match semantics {
        // Covers (N+1)×24 h: N = ceil(gap / 24 h) - 1.
        DaysAgoSemantics::Rolling => {
            let gap = (now - since).num_seconds();
            let day = 86_400;
            (gap + day - 1) / day - 1
        }
        // Covers since midnight of (today - N): N = days between the two dates.
        DaysAgoSemantics::Calendar => (now.date_naive() - since.date_naive()).num_days(),
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The span a refresh with `days_ago` covers when asked at `now`: (from, now].
#[cfg(test)]
fn covered_since(days_ago: u32, now: DateTime<Utc>, semantics: DaysAgoSemantics) -> DateTime<Utc> {
    match semantics {
        DaysAgoSemantics::Rolling => now - Duration::days(i64::from(days_ago) + 1),
        DaysAgoSemantics::Calendar => (now.date_naive() - Duration::days(days_ago.into()))
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn cfg() -> PollConfig {
        let mut p = Config::defaults().poll;
        p.full_resync_interval = 0;
        p
    }

    fn refresh_after(gap: Duration, cfg: &PollConfig) -> PollPlan {
        let start = at("2026-03-10T12:30:00Z");
        let times = SyncTimes {
            last_complete_full: Some(start),
            window_anchor: Some(start),
        };
        plan(&times, start + gap, cfg)
    }

    #[test]
    fn hourly_polls_send_zero_like_the_connector() {
        assert_eq!(
            refresh_after(Duration::hours(1), &cfg()),
            PollPlan::Refresh { days_ago: 0 }
        );
    }

    #[test]
    fn a_thirty_hour_gap_widens_the_window() {
        // 30 h + 1 h margin = 31 h: needs (N+1)×24 h ≥ 31 h, so N = 1.
        assert_eq!(
            refresh_after(Duration::hours(30), &cfg()),
            PollPlan::Refresh { days_ago: 1 }
        );
    }

    #[test]
    fn a_five_day_frequency_asks_for_five_days_back() {
        // 120 h + 1 h margin = 121 h: N = 5 covers 144 h.
        assert_eq!(
            refresh_after(Duration::days(5), &cfg()),
            PollPlan::Refresh { days_ago: 5 }
        );
    }

    #[test]
    fn the_window_always_covers_the_gap_plus_margin() {
        let c = cfg();
        let start = at("2026-03-10T23:59:59Z");
        for hours in 0..(24 * 29) {
            let now = start + Duration::hours(hours) + Duration::minutes(7);
            for semantics in [DaysAgoSemantics::Rolling, DaysAgoSemantics::Calendar] {
                let since = start - Duration::seconds(c.window_margin as i64);
                let n = days_ago(since, now, semantics);
                assert!(
                    covered_since(n, now, semantics) <= since,
                    "{hours} h {semantics:?}"
                );
                if n > 0 {
                    assert!(
                        covered_since(n - 1, now, semantics) > since,
                        "N={n} not minimal"
                    );
                }
            }
        }
    }

    #[test]
    fn calendar_semantics_counts_midnights() {
        let since = at("2026-03-09T23:30:00Z");
        assert_eq!(
            days_ago(
                since,
                at("2026-03-10T00:10:00Z"),
                DaysAgoSemantics::Calendar
            ),
            1
        );
        assert_eq!(
            days_ago(
                since,
                at("2026-03-09T23:50:00Z"),
                DaysAgoSemantics::Calendar
            ),
            0
        );
    }

    #[test]
    fn past_the_bound_a_full_pass_runs_instead() {
        let c = cfg();
        assert_eq!(
            refresh_after(Duration::days(30), &c),
            PollPlan::Full(FullReason::WindowTooWide)
        );
        assert!(matches!(
            refresh_after(Duration::days(29), &c),
            PollPlan::Refresh { .. }
        ));
        // A window of exactly 30 days (the gap plus the one-hour margin) is not past the bound.
        assert!(matches!(
            refresh_after(Duration::days(30) - Duration::hours(1), &c),
            PollPlan::Refresh { .. }
        ));
        assert_eq!(
            refresh_after(
                Duration::days(30) - Duration::hours(1) + Duration::seconds(1),
                &c
            ),
            PollPlan::Full(FullReason::WindowTooWide)
        );
    }

    #[test]
    fn full_passes_for_initial_and_resync() {
        let mut c = cfg();
        let now = at("2026-03-10T00:00:00Z");
        assert_eq!(
            plan(&SyncTimes::default(), now, &c),
            PollPlan::Full(FullReason::Initial)
        );
        c.full_resync_interval = 86_400;
        assert_eq!(
            refresh_after(Duration::hours(24), &c),
            PollPlan::Full(FullReason::Resync)
        );
        assert_eq!(
            refresh_after(Duration::hours(23), &c),
            PollPlan::Refresh { days_ago: 0 }
        );
    }
}

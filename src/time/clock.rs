//! Wall-clock time for the sync engine, replaceable in tests by one that follows tokio's clock.

use chrono::{DateTime, Utc};

/// The source of "now" for refresh windows and timestamps.
///
/// Production uses the system clock: windows must span real time, including time the host was
/// suspended, and stored timestamps must survive restarts. Tests use [`Clock::tokio_at`], which
/// advances with tokio's (pausable) clock, so `tokio::time::advance` moves the refresh window
/// exactly as a real outage would.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Tokio {
        anchor_utc: DateTime<Utc>,
        anchor: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `at` now and advances with `tokio::time::Instant`.
    pub fn tokio_at(at: DateTime<Utc>) -> Clock {
        Clock::Tokio {
            anchor_utc: at,
            anchor: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Tokio { anchor_utc, anchor } => {
                let elapsed = tokio::time::Instant::now().saturating_duration_since(*anchor);
                *anchor_utc + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
            }
        }
    }
}

//! Time for the engine: "now" (the system clock, or tokio's paused clock in tests),
//! exponential backoff with jitter, and times as text.

pub mod backoff;
pub mod clock;
pub mod format;

//! Time for the engine: "now" (the system clock, or tokio's paused clock in tests) and
//! exponential backoff with jitter.

pub mod backoff;
pub mod clock;

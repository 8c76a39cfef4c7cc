//! What operators see of the engine: one type per event, which writes its log line and records
//! its metric, and the metrics registry those events record into.

pub mod events;
pub mod metrics;

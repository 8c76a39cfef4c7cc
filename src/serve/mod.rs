//! What the running daemon offers the outside: the read API (with health, readiness and
//! metrics), the web console, systemd notifications, and the periodic status log.

pub mod api;
pub mod console;
pub mod notify;
pub mod server;
pub mod state;
pub mod status_log;

//! The commands of the binary, above every other layer: `run`, `sync-once`, `export`,
//! `healthcheck`, `demo` and `sim`, and the process plumbing they share (logging, signals, memory).

pub mod changes;
pub mod demo;
pub mod export;
pub mod healthcheck;
pub mod logging;
pub mod memory;
pub mod root;
pub mod run;
pub mod shutdown;
pub mod sim;
pub mod sync_once;

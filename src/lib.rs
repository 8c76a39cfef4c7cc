//! ses-inventory: keeps a live, trustworthy copy of SES's TMF 638/639 service, carrier and
//! resource inventory. See docs/ARCHITECTURE.md for the map of these modules.

pub mod api;
pub mod backoff;
pub mod cache;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod events;
pub mod export;
pub mod healthcheck;
pub mod inventory;
pub mod item;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod once;
pub mod row;
pub mod secret;
pub mod shutdown;
pub mod sim;
pub mod status;
pub mod store;
pub mod sync;
pub mod upstream;
pub mod window;

pub use inventory::Inventory;

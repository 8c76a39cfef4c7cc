//! ses-inventory: keeps a live, trustworthy copy of SES's TMF 638/639 service, carrier and
//! resource inventory. See docs/ARCHITECTURE.md for the map of these modules.
//!
//! The top-level modules are layers: a module imports only from the layers below it, and no
//! two files import each other. The one list of the layers is `LAYERS` in tests/layers.rs,
//! which checks both.

pub mod cache;
pub mod cmd;
pub mod config;
/// The fuzz targets' checks (`fuzz/`): for the tests and the `fuzzing` feature only.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod mirror;
pub mod model;
pub mod serve;
pub mod source;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod time;

pub use model::inventory::Inventory;

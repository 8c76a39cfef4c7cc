//! The shared vocabulary, below everything else: the inventories, items and their rows, what a
//! poll reports, and the secret wrapper. No I/O, no locks, no imports from other layers.

pub mod inventory;
pub mod item;
pub mod json;
pub mod row;
pub mod secret;
pub mod status;

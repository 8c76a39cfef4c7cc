//! The three collections the simulator serves. The daemon has its own `Inventory`; this crate
//! depends on nothing of the daemon, so it names them itself (the daemon converts with `From`).

use std::fmt;
use std::str::FromStr;

/// One simulated collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Inventory {
    /// TMF 638 `service` (active customer-facing services).
    Services,
    /// TMF 638 `service` with `@type=element`.
    Carriers,
    /// TMF 639 `resource`.
    Resources,
}

impl Inventory {
    pub const ALL: [Inventory; 3] = [
        Inventory::Services,
        Inventory::Carriers,
        Inventory::Resources,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Inventory::Services => "services",
            Inventory::Carriers => "carriers",
            Inventory::Resources => "resources",
        }
    }

    /// Position in [`Inventory::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Inventory {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Inventory::ALL
            .into_iter()
            .find(|i| i.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown inventory `{s}`: expected services, carriers or resources")
            })
    }
}

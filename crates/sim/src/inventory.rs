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

    /// The API that serves it: services and carriers share TMF 638.
    pub fn api(self) -> Api {
        match self {
            Inventory::Services | Inventory::Carriers => Api::Tmf638,
            Inventory::Resources => Api::Tmf639,
        }
    }
}

/// One of the two simulated APIs; each has its own path prefix and credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// TMF 638 Service Inventory (`{base638}/service`: services and carriers).
    Tmf638,
    /// TMF 639 Resource Inventory (`{base639}/resource`: resources).
    Tmf639,
}

impl Api {
    pub const ALL: [Api; 2] = [Api::Tmf638, Api::Tmf639];

    pub fn as_str(self) -> &'static str {
        match self {
            Api::Tmf638 => "tmf638",
            Api::Tmf639 => "tmf639",
        }
    }

    /// Position in [`Api::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

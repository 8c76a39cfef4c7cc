//! The three inventories the daemon keeps, and which upstream API serves each.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One of the three inventories, each kept by its own poller and shown as its own table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Inventory {
    /// Customer-facing services (TMF 638 `service`, active ones).
    Services,
    /// Carrier elements (TMF 638 `service` with `@type=element`).
    Carriers,
    /// Network resources (TMF 639 `resource`).
    Resources,
}

/// The upstream API an inventory is read from; each has its own endpoint and credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Tmf638,
    Tmf639,
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

    /// Position in [`Inventory::ALL`], for per-inventory arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn api(self) -> Api {
        match self {
            Inventory::Services | Inventory::Carriers => Api::Tmf638,
            Inventory::Resources => Api::Tmf639,
        }
    }
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Tmf638 => "tmf638",
            Api::Tmf639 => "tmf639",
        }
    }
}

impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an inventory name that is not one of the three.
#[derive(Debug, thiserror::Error)]
#[error("unknown inventory `{0}`: expected services, carriers or resources")]
pub struct UnknownInventory(pub String);

impl FromStr for Inventory {
    type Err = UnknownInventory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "services" | "service" => Ok(Inventory::Services),
            "carriers" | "carrier" => Ok(Inventory::Carriers),
            "resources" | "resource" => Ok(Inventory::Resources),
            _ => Err(UnknownInventory(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_named() {
        for inv in Inventory::ALL {
            assert_eq!(inv.as_str().parse::<Inventory>().unwrap(), inv);
            assert_eq!(Inventory::ALL[inv.index()], inv);
        }
        let err = "widgets".parse::<Inventory>().unwrap_err();
        assert!(err.to_string().contains("widgets"));
    }
}

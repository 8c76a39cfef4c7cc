//! What every step of one inventory's polls works with, handed to each explicitly: the
//! inventory, the upstream to ask, the cache to apply to, the clock, the keep rules, the poll
//! settings and the journal.

use super::Journal;
use super::rules::Rules;
use crate::cache::Cache;
use crate::config::{Config, PollConfig};
use crate::model::inventory::Inventory;
use crate::source::Upstream;
use crate::time::clock::Clock;

pub(super) struct Context {
    pub(super) inventory: Inventory,
    pub(super) upstream: Upstream,
    pub(super) cache: Cache,
    pub(super) clock: Clock,
    pub(super) rules: Rules,
    pub(super) poll: PollConfig,
    /// Where every applied poll goes (the durable store, the mirror), if anywhere.
    pub(super) journal: Option<Journal>,
}

impl Context {
    pub(super) fn new(
        inventory: Inventory,
        cfg: &Config,
        upstream: Upstream,
        cache: Cache,
        clock: Clock,
    ) -> Context {
        Context {
            inventory,
            upstream,
            cache,
            clock,
            rules: Rules::new(inventory, cfg.inventory(inventory)),
            poll: cfg.poll.clone(),
            journal: None,
        }
    }
}

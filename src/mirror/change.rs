//! What the mirror receives of each applied poll, and the journal tee that offers it a copy
//! without ever making a poll wait.

use crate::model::inventory::Inventory;
use crate::model::item::{Item, Key};
use crate::model::status::PollReport;
use crate::sync::{Applied, Journal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// What the mirror needs of an applied poll.
pub struct Change {
    pub inventory: Inventory,
    pub report: PollReport,
    pub upserts: Vec<Arc<Item>>,
    pub removed: Vec<Key>,
    /// A complete full pass replaced the inventory: the bucket is reconciled with the cache.
    pub swept: bool,
}

impl Change {
    pub(super) fn of(applied: &Applied) -> Change {
        Change {
            inventory: applied.inventory,
            report: applied.report.clone(),
            upserts: applied.upserts.clone(),
            removed: applied.removed.clone(),
            swept: applied.swept,
        }
    }
}

/// A journal for the pollers that passes every applied poll on to `next` (the store's) and
/// offers a copy to the mirror without ever waiting for it.
pub(super) fn tee(
    mirror: mpsc::Sender<Change>,
    lagged: Arc<AtomicBool>,
    next: Option<Journal>,
) -> Journal {
    let (tx, mut rx) = mpsc::unbounded_channel::<Applied>();
    tokio::spawn(async move {
        while let Some(applied) = rx.recv().await {
            if mirror.try_send(Change::of(&applied)).is_err() {
                lagged.store(true, Ordering::Release);
            }
            if let Some(next) = &next {
                let _ = next.send(applied);
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn applied() -> Applied {
        Applied::refresh(Inventory::Services, Vec::new(), chrono::Utc::now())
    }

    #[tokio::test]
    async fn the_tee_never_waits_for_the_mirror_and_the_store_gets_every_poll() {
        // A mirror that takes nothing: its queue (one slot) fills at once.
        let (mirror, mut mirror_rx) = mpsc::channel(1);
        let lagged = Arc::new(AtomicBool::new(false));
        let (store, mut store_rx) = mpsc::unbounded_channel();
        let journal = tee(mirror, lagged.clone(), Some(store));
        for _ in 0..5 {
            journal.send(applied()).unwrap();
        }
        drop(journal);
        for _ in 0..5 {
            let got = tokio::time::timeout(Duration::from_secs(5), store_rx.recv()).await;
            assert!(matches!(got, Ok(Some(_))), "the store got every poll");
        }
        assert!(
            lagged.load(Ordering::Acquire),
            "the mirror knows it missed polls"
        );
        assert!(mirror_rx.try_recv().is_ok(), "the mirror got the first");
        assert!(mirror_rx.try_recv().is_err(), "and no more");
    }
}

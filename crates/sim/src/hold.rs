//! A fault that holds matching requests until the test releases them: "the pass is past page 1
//! and stuck on page 2" as a fact the test controls, not a delay it hopes is long enough.
//!
//! ```ignore
//! let hold = Hold::new();
//! sim.inject(Fault { page: Some(2), times: Some(1), ..Fault::new(FaultKind::Hold(hold.clone())) });
//! // ... start the poll ...
//! hold.arrived(1).await; // page 1 was answered and page 2 asked for
//! // ... look at the cache, kill the process, ...
//! hold.release();        // page 2 is answered normally from here on
//! ```
//!
//! A held request is answered normally (with the data current at release) once released; a
//! released hold lets every later matching request through at once. Works across runtimes (the
//! simulator may run on its own thread): it is built on `tokio::sync::watch`, which needs none.

use std::sync::Arc;
use tokio::sync::watch;

/// A handle shared by the test and the simulator's fault list; clones are the same hold.
#[derive(Clone)]
pub struct Hold(Arc<Inner>);

struct Inner {
    /// Requests that reached the hold so far.
    arrived: watch::Sender<usize>,
    released: watch::Sender<bool>,
}

impl Hold {
    pub fn new() -> Hold {
        Hold(Arc::new(Inner {
            arrived: watch::Sender::new(0),
            released: watch::Sender::new(false),
        }))
    }

    /// Resolves once at least `n` requests have reached the hold (held, or let through after
    /// the release).
    pub async fn arrived(&self, n: usize) {
        let mut rx = self.0.arrived.subscribe();
        // The sender lives in `self`: the channel cannot close while we wait.
        let _ = rx.wait_for(|&count| count >= n).await;
    }

    /// How many requests have reached the hold so far.
    pub fn count(&self) -> usize {
        *self.0.arrived.borrow()
    }

    /// Lets every held request, and every later one, through.
    pub fn release(&self) {
        self.0.released.send_replace(true);
    }

    /// Called by the server for a matching request: counts it, then waits for the release.
    pub(crate) async fn wait(&self) {
        let mut released = self.0.released.subscribe();
        self.0.arrived.send_modify(|n| *n += 1);
        let _ = released.wait_for(|&r| r).await;
    }
}

impl Default for Hold {
    fn default() -> Self {
        Hold::new()
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("arrived", &self.count())
            .field("released", &*self.0.released.borrow())
            .finish()
    }
}

/// Two holds are equal when they are the same hold.
impl PartialEq for Hold {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Hold {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_until_released_and_counts_arrivals() {
        let hold = Hold::new();
        let waiting = tokio::spawn({
            let hold = hold.clone();
            async move { hold.wait().await }
        });
        hold.arrived(1).await;
        assert_eq!(hold.count(), 1);
        assert!(!waiting.is_finished());
        hold.release();
        waiting.await.unwrap();
        // After the release, later requests pass at once (and are still counted).
        hold.wait().await;
        assert_eq!(hold.count(), 2);
        assert_eq!(hold, hold.clone());
        assert_ne!(hold, Hold::new());
    }
}

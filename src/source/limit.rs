//! How many page requests may be in flight to one API at once: a limit shared by every poller of
//! that API (services and carriers share TMF 638), which adapts to how the upstream copes, and
//! the pause a `Retry-After` asks for.
//!
//! - The limit starts at `http.max_in_flight_per_api`. An answer that says the upstream is
//!   overloaded (429, 503, 504, or a timeout) halves it, never below 1; a run of
//!   [`GROW_AFTER`] clean pages adds one back, never above the maximum (additive increase,
//!   multiplicative decrease, as TCP does). Requests already in flight when it shrank are not
//!   cut; new ones wait until the count is below the limit.
//! - One overload halves the limit once: answers to requests that were sent before the last
//!   decrease do not decrease it again, so a burst of 429s to a full window of requests costs
//!   half the window, not all of it (TCP's "once per window"). Retries are new requests.
//! - A `Retry-After` (capped by `http.retry_after_max`) pauses every *new* request to that API
//!   until it has passed, whichever poller asks; requests already sent are not recalled.
//! - Slots are handed out first come, first served (a fair tokio `Semaphore`), so one poller
//!   cannot starve the other, and a listing's earlier pages are not overtaken by its later ones.
//!
//! A slot is held for one attempt only, never across a retry's backoff. The state sits behind a
//! std `Mutex` that is never held across an `.await`; events are emitted after it is released.

use crate::model::inventory::Api;
use crate::telemetry::events::{self, LimitCause};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Clean pages in a row after which the limit grows by one.
pub const GROW_AFTER: u32 = 8;

/// The longest pause that is kept as it is (a larger `Retry-After` cap would overflow `Instant`).
const LONGEST_PAUSE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The limit of one API.
pub(super) struct Limiter {
    api: Api,
    max: u32,
    /// Available permits + permits out − `State::debt` = `State::limit`.
    permits: Semaphore,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limit: u32,
    /// Permits still out beyond the limit after it shrank: forgotten as they come back.
    debt: u32,
    /// Requests sent and not yet answered (slots past any pause).
    in_flight: u32,
    /// Clean answers in a row since the limit last changed or an answer was not clean.
    clean: u32,
    /// Bumped by every decrease; a slot remembers the epoch it was sent in.
    epoch: u64,
    paused_until: Option<Instant>,
}

/// What one answer says about the upstream's load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Signal {
    /// A page arrived.
    Clean,
    /// 429, 503, 504 or a timeout: the upstream is overloaded. Carries the status label
    /// (`429`, `503`, `504`, `timeout`).
    Throttled(String),
    /// Any other failure: says nothing about load, but breaks a clean run.
    Other,
}

/// The right to one request to the API; dropping it (answered, or the request was abandoned)
/// gives it back.
pub(super) struct Slot<'a> {
    limiter: &'a Limiter,
    /// `None` once given back.
    permit: Option<SemaphorePermit<'a>>,
    /// Counted in `in_flight` (past any pause).
    sent: bool,
    epoch: u64,
}

impl Limiter {
    pub(super) fn new(api: Api, max: u32) -> Limiter {
        let max = max.max(1);
        events::UpstreamLimit {
            api,
            limit: max,
            previous: max,
            cause: LimitCause::Start,
            status: "",
        }
        .emit();
        Limiter {
            api,
            max,
            permits: Semaphore::new(max as usize),
            state: Mutex::new(State {
                limit: max,
                debt: 0,
                in_flight: 0,
                clean: 0,
                epoch: 0,
                paused_until: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current limit.
    pub(super) fn limit(&self) -> u32 {
        self.lock().limit
    }

    /// Requests in flight now.
    pub(super) fn in_flight(&self) -> u32 {
        self.lock().in_flight
    }

    /// Waits for a slot (first come, first served) and for any pause to pass, then counts the
    /// request as in flight.
    pub(super) async fn acquire(&self) -> Slot<'_> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut slot = Slot {
            limiter: self,
            permit: Some(permit),
            sent: false,
            epoch: 0,
        };
        // Holding the permit while paused costs nothing: no request may go out meanwhile, and
        // the order of the queue is kept. A pause may be extended while this sleeps.
        let in_flight = loop {
            let until = {
                let mut s = self.lock();
                match s.paused_until {
                    Some(until) if until > Instant::now() => until,
                    _ => {
                        s.paused_until = None;
                        s.in_flight += 1;
                        slot.sent = true;
                        slot.epoch = s.epoch;
                        break s.in_flight;
                    }
                }
            };
            tokio::time::sleep_until(until).await;
        };
        events::UpstreamInFlight {
            api: self.api,
            in_flight,
        }
        .emit();
        slot
    }
}

impl Slot<'_> {
    /// The request was answered: adapts the limit to `signal`, pauses new requests for `pause`
    /// (a `Retry-After`, already capped), and gives the slot back.
    pub(super) fn finish(self, signal: Signal, pause: Option<Duration>) {
        let l = self.limiter;
        let mut changed = None;
        {
            let mut s = l.lock();
            match signal {
                Signal::Clean => {
                    s.clean += 1;
                    if s.clean >= GROW_AFTER && s.limit < l.max {
                        s.clean = 0;
                        let previous = s.limit;
                        s.limit += 1;
                        if s.debt > 0 {
                            s.debt -= 1;
                        } else {
                            l.permits.add_permits(1);
                        }
                        changed = Some((previous, LimitCause::Recovered, String::new()));
                    }
                }
                Signal::Throttled(status) => {
                    s.clean = 0;
                    // Only the first overload of the requests sent under this limit halves it.
                    if self.epoch == s.epoch {
                        s.epoch += 1;
                        let previous = s.limit;
                        let limit = (previous / 2).max(1);
                        let cut = previous - limit;
                        if cut > 0 {
                            let forgotten = l.permits.forget_permits(cut as usize) as u32;
                            s.debt += cut - forgotten;
                            s.limit = limit;
                            changed = Some((previous, LimitCause::Throttled, status));
                        }
                    }
                }
                Signal::Other => s.clean = 0,
            }
            if let Some(pause) = pause {
                let now = Instant::now();
                let until = now
                    .checked_add(pause.min(LONGEST_PAUSE))
                    .unwrap_or(now + LONGEST_PAUSE);
                s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
            }
        }
        if let Some((previous, cause, status)) = changed {
            events::UpstreamLimit {
                api: l.api,
                limit: l.limit(),
                previous,
                cause,
                status: &status,
            }
            .emit();
        }
        if let Some(delay) = pause {
            events::UpstreamPaused { api: l.api, delay }.emit();
        }
        // `drop` gives the slot back.
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let l = self.limiter;
        let Some(permit) = self.permit.take() else {
            return;
        };
        let in_flight = {
            let mut s = l.lock();
            if self.sent {
                s.in_flight -= 1;
            }
            if s.debt > 0 {
                // The limit shrank while this was out: the permit goes with it.
                s.debt -= 1;
                permit.forget();
            } else {
                drop(permit);
            }
            s.in_flight
        };
        if self.sent {
            events::UpstreamInFlight {
                api: l.api,
                in_flight,
            }
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Takes `n` slots at once (each must be free now).
    async fn take(l: &Limiter, n: usize) -> Vec<Slot<'_>> {
        let mut slots = Vec::new();
        for _ in 0..n {
            slots.push(now_or_never(l.acquire()).await.expect("a free slot"));
        }
        slots
    }

    /// The future's output if it is ready at once (a few polls allowed for the runtime).
    async fn now_or_never<F: std::future::Future>(f: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::ZERO, f).await.ok()
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_bounds_slots_and_they_are_served_in_order() {
        let l = Arc::new(Limiter::new(Api::Tmf638, 2));
        let held = take(&l, 2).await;
        assert_eq!(l.in_flight(), 2);
        assert!(now_or_never(l.acquire()).await.is_none(), "a third waits");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..3 {
            let (l, order) = (l.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let slot = l.acquire().await;
                order.lock().unwrap().push(i);
                slot.finish(Signal::Clean, None);
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
        assert_eq!(l.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overload_halves_the_limit_once_per_window_and_clean_pages_win_it_back() {
        let l = Limiter::new(Api::Tmf639, 8);
        let mut window = take(&l, 8).await;
        // A burst of 429s to the eight requests sent together: one halving, not three.
        for _ in 0..3 {
            window
                .pop()
                .unwrap()
                .finish(Signal::Throttled("429".into()), None);
        }
        assert_eq!(l.limit(), 4);
        // Five are still out, above the new limit: nothing new goes until only three are left.
        assert!(now_or_never(l.acquire()).await.is_none());
        window.pop().unwrap().finish(Signal::Clean, None);
        assert!(now_or_never(l.acquire()).await.is_none());
        window.pop().unwrap().finish(Signal::Other, None);
        assert_eq!(l.in_flight(), 3);
        let retry = now_or_never(l.acquire())
            .await
            .expect("a slot under the limit");
        assert!(now_or_never(l.acquire()).await.is_none());
        // A request sent after the decrease that is throttled too halves it again; so does the
        // next one, down to 1 and never below.
        retry.finish(Signal::Throttled("503".into()), None);
        assert_eq!(l.limit(), 2);
        drop(window);
        let s = take(&l, 1).await.pop().unwrap();
        s.finish(Signal::Throttled("timeout".into()), None);
        assert_eq!(l.limit(), 1);
        let s = take(&l, 1).await.pop().unwrap();
        s.finish(Signal::Throttled("504".into()), None);
        assert_eq!(l.limit(), 1);
        assert_eq!(l.in_flight(), 0);
        // Eight clean pages in a row add one; a failure in between starts the run again.
        for _ in 0..GROW_AFTER - 1 {
            take(&l, 1).await.pop().unwrap().finish(Signal::Clean, None);
        }
        take(&l, 1).await.pop().unwrap().finish(Signal::Other, None);
        assert_eq!(l.limit(), 1);
        for _ in 0..GROW_AFTER {
            take(&l, 1).await.pop().unwrap().finish(Signal::Clean, None);
        }
        assert_eq!(l.limit(), 2);
        let two = take(&l, 2).await;
        assert!(now_or_never(l.acquire()).await.is_none());
        drop(two);
        // ... back up to the maximum, and no further.
        for _ in 0..20 * GROW_AFTER {
            take(&l, 1).await.pop().unwrap().finish(Signal::Clean, None);
        }
        assert_eq!(l.limit(), 8);
        let all = take(&l, 8).await;
        assert!(now_or_never(l.acquire()).await.is_none());
        drop(all);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_new_requests_but_not_those_in_flight() {
        let l = Arc::new(Limiter::new(Api::Tmf638, 4));
        let mut out = take(&l, 2).await;
        let start = Instant::now();
        out.pop().unwrap().finish(
            Signal::Throttled("429".into()),
            Some(Duration::from_secs(7)),
        );
        // The other request is still in flight; a new one waits out the pause.
        assert_eq!(l.in_flight(), 1);
        assert!(now_or_never(l.acquire()).await.is_none());
        let waiter = {
            let l = l.clone();
            tokio::spawn(async move {
                let slot = l.acquire().await;
                let at = Instant::now();
                slot.finish(Signal::Clean, None);
                at
            })
        };
        // A second Retry-After while paused extends the pause; a shorter one does not shorten it.
        out.pop()
            .unwrap()
            .finish(Signal::Other, Some(Duration::from_secs(2)));
        let sent = waiter.await.unwrap();
        assert_eq!(sent - start, Duration::from_secs(7));
        assert_eq!(l.in_flight(), 0);
        // A request given up while it waited for the pause gives its slot back.
        take(&l, 1)
            .await
            .pop()
            .unwrap()
            .finish(Signal::Clean, Some(Duration::from_secs(60)));
        let abandoned = tokio::spawn({
            let l = l.clone();
            async move { l.acquire().await.finish(Signal::Clean, None) }
        });
        tokio::task::yield_now().await;
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        tokio::time::sleep(Duration::from_secs(60)).await;
        let limit = l.limit() as usize;
        assert_eq!(take(&l, limit).await.len(), limit);
    }
}

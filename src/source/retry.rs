//! The retry policy around one page: backoff with jitter, the server's `Retry-After` (capped),
//! up to `http.retry_attempts`; only failures that another attempt may fix are retried. Each
//! attempt takes a slot of its API's limit of requests in flight (`limit`) and tells it how the
//! upstream answered.

use super::limit::Signal;
use super::{Page, PageError, PageFailure, PageRequest, Upstream};
use crate::telemetry::events;
use crate::time::backoff::Backoff;
use std::time::{Duration, Instant};

impl Upstream {
    /// One page with the retry policy: retryable failures are tried again with exponential
    /// backoff and jitter (or the server's `Retry-After`, capped) up to `http.retry_attempts`.
    pub(crate) async fn fetch_page_with_retries(
        &self,
        req: PageRequest,
    ) -> Result<Page, PageFailure> {
        let h = &self.cfg.http;
        let mut backoff = Backoff::new(
            Duration::from_millis(h.retry_initial_delay_ms),
            Duration::from_millis(h.retry_max_delay_ms),
        );
        let limiter = self.limiter(req.inventory.api());
        let cap = Duration::from_secs(h.retry_after_max);
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Waits while the API's window is full or a Retry-After pauses it.
            let slot = limiter.acquire().await;
            let started = Instant::now();
            let result = self.fetch_page(req).await;
            let took = started.elapsed();
            let signal = match &result {
                Ok(_) => Signal::Clean,
                Err(e) if e.is_throttling() => Signal::Throttled(e.status_label()),
                Err(_) => Signal::Other,
            };
            let pause = result
                .as_ref()
                .err()
                .and_then(PageError::retry_after)
                .map(|d| d.min(cap));
            slot.finish(signal, pause);
            events::UpstreamRequest {
                inventory: req.inventory,
                page: req.page,
                status: &match &result {
                    Ok(page) => page.status.to_string(),
                    Err(e) => e.status_label(),
                },
                duration: took,
            }
            .emit();
            match result {
                // `events::PageFetched` is the listing's to emit: a page requested past the end
                // of a listing is discarded, and not counted as fetched.
                Ok(page) => return Ok(page),
                Err(error) if error.is_retryable() && attempt < h.retry_attempts => {
                    let jittered = backoff.next_delay();
                    let delay = match error.retry_after() {
                        Some(server) => server.min(cap),
                        None => jittered,
                    };
                    events::PageRetry {
                        inventory: req.inventory,
                        page: req.page,
                        attempt,
                        delay,
                        error: &error,
                    }
                    .emit();
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    return Err(PageFailure {
                        error,
                        attempts: attempt,
                    });
                }
            }
        }
    }
}

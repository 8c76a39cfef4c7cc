//! Exponential backoff with jitter, for page retries and for failed polls.

use std::time::Duration;

/// Doubling delays from `initial` up to `max`, each scaled by a random factor in [0.5, 1.0] so
/// that pollers that failed together do not retry together.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            failures: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the base.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        base.mul_f64(0.5 + 0.5 * unit_random())
    }

    /// The un-jittered delay the next call is based on.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(30));
        self.initial.saturating_mul(factor).min(self.max)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A uniform number in [0, 1) from a small per-thread xorshift generator; jitter needs no more.
fn unit_random() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15);
            (t ^ (std::process::id() as u64).rotate_left(32)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(800), Duration::from_secs(30));
        let mut ceilings = vec![];
        for _ in 0..10 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(d <= ceiling && d >= ceiling / 2, "{d:?} vs {ceiling:?}");
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(&ceilings[..6], &[800, 1600, 3200, 6400, 12800, 25600]);
        assert!(ceilings[6..].iter().all(|&c| c == 30_000));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(800));
    }
}

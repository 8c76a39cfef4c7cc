//! Memory the allocator keeps. glibc's malloc gives each thread that allocates under contention
//! an arena of its own (up to eight per core) and keeps what is freed in them for reuse: a
//! daemon whose polls allocate and free a whole inventory's worth of pages and rows on varying
//! threads sees its resident memory climb well past what it holds (the soak: +49 % while the
//! heap in use stayed flat; `docs/performance.md#soak`). Two remedies, both glibc's own:
//!
//! - [`limit_arenas`]: at most [`ARENAS`] arenas (`mallopt(M_ARENA_MAX)`), unless the operator set
//!   `MALLOC_ARENA_MAX`, which glibc reads itself and which then wins;
//! - [`trim_after_polls`]: after polls have finished, at most once per interval, give the free
//!   memory at the top of each arena and the free pages inside them back to the kernel
//!   (`malloc_trim(0)`), on a blocking thread.
//!
//! Elsewhere (musl, other systems) both do nothing.

use crate::cache::Cache;
use crate::telemetry::events;
use std::time::{Duration, Instant};

/// The arenas glibc may create: one for the main thread and one more, however many threads
/// allocate. Enough for a daemon whose work is a poll at a time per inventory.
pub const ARENAS: i32 = 2;

/// The least time between two trims.
pub const TRIM_EVERY: Duration = Duration::from_secs(60);

/// Caps glibc's arenas at [`ARENAS`], unless `MALLOC_ARENA_MAX` is set. Call first thing in
/// `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a malloc parameter; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// Gives free memory back to the kernel after polls finish: once a poll of any inventory has
/// finished, and at least `every` after the last trim. Runs until aborted.
pub async fn trim_after_polls(cache: Cache, every: Duration) {
    let mut polls = cache.watch_polls();
    loop {
        if polls.changed().await.is_err() {
            return;
        }
        let started = Instant::now();
        let Ok((before, after)) = tokio::task::spawn_blocking(trim).await else {
            return;
        };
        events::MemoryTrimmed {
            resident_before: before,
            resident_after: after,
            duration: started.elapsed(),
        }
        .emit();
        tokio::time::sleep(every).await;
        // Polls that finished while it slept are covered by the next trim.
    }
}

/// Trims glibc's heap; the resident bytes before and after (0 where they cannot be read).
fn trim() -> (u64, u64) {
    let before = resident_bytes();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' locks itself; safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
    (before, resident_bytes())
}

/// Resident bytes of this process, from `/proc/self/status` (0 where it cannot be read).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_gives_back_what_was_freed() {
        // Touch 64 MiB in small blocks and free fifteen in sixteen: the free space lies between
        // blocks still in use, where malloc does not give it back by itself. A trim does.
        let mut blocks: Vec<Vec<u8>> = (0..16_384).map(|_| vec![1u8; 4096]).collect();
        let mut i = 0;
        blocks.retain(|_| {
            i += 1;
            i % 16 == 0
        });
        let (before, after) = trim();
        assert_eq!(blocks.len(), 1024);
        assert!(before > 0, "statm is readable");
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(
                after + 32 * 1024 * 1024 < before,
                "resident {before} -> {after}: the freed blocks stayed"
            );
        }
    }
}

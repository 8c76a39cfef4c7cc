//! systemd's notification protocol (`sd_notify`): `READY=1` once every inventory is ready,
//! `STATUS=` after each poll, `WATCHDOG=1` keep-alives, `STOPPING=1` on shutdown.
//!
//! The protocol is one datagram of `KEY=VALUE` lines sent to the Unix socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract socket when it starts with `@`). Without the variable
//! every call is a no-op. A notification that cannot be sent is logged once and otherwise
//! ignored: systemd's bookkeeping must never stop the daemon.

use crate::cache::Cache;
use crate::model::inventory::Inventory;
use crate::model::status::Phase;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Sends notifications to the service manager. Cheap to clone.
#[derive(Clone, Default)]
pub struct Notifier {
    target: Option<Arc<Target>>,
}

struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// The first failure is logged as a warning, later ones at debug level.
    warned: AtomicBool,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`, or a silent one when it is unset or unusable.
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(s) if !s.is_empty() => Notifier::to_socket(&s.to_string_lossy()),
            _ => Notifier::default(),
        }
    }

    /// A notifier for the socket `name` (`/path` or `@abstract`).
    pub fn to_socket(name: &str) -> Notifier {
        match open(name) {
            Ok((socket, addr)) => Notifier {
                target: Some(Arc::new(Target {
                    socket,
                    addr,
                    warned: AtomicBool::new(false),
                })),
            },
            Err(e) => {
                tracing::warn!(
                    message = "NOTIFY_SOCKET is unusable; systemd will not be notified.",
                    socket = name,
                    error = %e,
                );
                Notifier::default()
            }
        }
    }

    /// Whether notifications go anywhere.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one message (newline-separated `KEY=VALUE` lines). Never blocks, never fails.
    pub fn send(&self, message: &str) {
        let Some(t) = &self.target else { return };
        if let Err(e) = t.socket.send_to_addr(message.as_bytes(), &t.addr) {
            if t.warned.swap(true, Ordering::Relaxed) {
                tracing::debug!(message = "systemd notification failed.", error = %e);
            } else {
                tracing::warn!(
                    message = "systemd notification failed; the daemon goes on without it.",
                    error = %e,
                );
            }
        }
    }

    /// `STOPPING=1`: the service manager sees the stop as intended.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=Stopping.");
    }
}

fn open(name: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = if let Some(abstract_name) = name.strip_prefix('@') {
        abstract_addr(abstract_name)?
    } else {
        SocketAddr::from_pathname(name)?
    };
    let socket = UnixDatagram::unbound()?;
    // A full receive queue must drop the message, not stall a runtime thread.
    socket.set_nonblocking(true)?;
    Ok((socket, addr))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &str) -> std::io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &str) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract sockets exist on Linux only",
    ))
}

/// How often to send `WATCHDOG=1`: half of `watchdog_usec`, when it is a positive number and
/// `watchdog_pid` (when set) is `own_pid` — the watchdog may be meant for another process.
pub fn watchdog_interval(
    watchdog_usec: Option<&str>,
    watchdog_pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    let usec: u64 = watchdog_usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = watchdog_pid.filter(|p| !p.trim().is_empty()) {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

/// [`watchdog_interval`] from `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
pub fn watchdog_interval_from_env() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// One line about every inventory, e.g.
/// `services: ready, 1204 items; carriers: refreshing, 56 items; resources: failing, 0 items (3 failures)`.
pub fn summary(cache: &Cache) -> String {
    Inventory::ALL
        .iter()
        .map(|&inv| {
            let s = cache.status(inv);
            let mut part = format!("{inv}: {}, {} items", s.phase.as_str(), cache.len(inv));
            if s.phase == Phase::Failing && s.consecutive_failures > 0 {
                part.push_str(&format!(
                    " ({} failure{})",
                    s.consecutive_failures,
                    if s.consecutive_failures == 1 { "" } else { "s" }
                ));
            }
            part
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How far each `EXTEND_TIMEOUT_USEC=` pushes systemd's start timeout while a first full pass is
/// still fetching pages.
pub const EXTEND_BY: Duration = Duration::from_secs(90);

/// Whether the start is making progress: some inventory that is not ready yet is fetching pages
/// right now (not waiting out a failure backoff).
pub fn first_pass_running(cache: &Cache) -> bool {
    Inventory::ALL
        .iter()
        .any(|&inv| !cache.is_ready(inv) && cache.status(inv).phase == Phase::Building)
}

/// Runs until cancelled: `READY=1` once every inventory is ready, `STATUS=` after every finished
/// poll, `WATCHDOG=1` every `watchdog` when given. Spawn it next to the daemon and abort it before
/// sending [`Notifier::stopping`].
///
/// Until `READY=1`, while a first full pass is fetching pages, `EXTEND_TIMEOUT_USEC=` keeps
/// systemd's `TimeoutStartSec=` from killing a start that is slow only because the inventory is
/// large. A start that is stuck (every unready inventory failing and backing off) gets no
/// extension, so the start timeout and `Restart=` still apply.
pub async fn run(cache: Cache, notifier: Notifier, watchdog: Option<Duration>) {
    if !notifier.is_active() {
        return;
    }
    notifier.send(&format!("STATUS=Building the cache: {}", summary(&cache)));
    let mut polls = cache.watch_polls();
    let ready = cache.wait_all_ready();
    tokio::pin!(ready);
    let mut ready_sent = false;
    // Without a watchdog the timer runs but is never selected.
    let mut ticker = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Well inside EXTEND_BY, and no slower than the watchdog.
    let mut extend = tokio::time::interval(watchdog.unwrap_or(EXTEND_BY / 4).min(EXTEND_BY / 4));
    extend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut ready, if !ready_sent => {
                ready_sent = true;
                notifier.send(&format!("READY=1\nSTATUS={}", summary(&cache)));
            }
            changed = polls.changed() => {
                if changed.is_err() {
                    // The cache is gone: nothing more to report (the watchdog stops too,
                    // which is right for a daemon that lost its cache).
                    return;
                }
                notifier.send(&format!("STATUS={}", summary(&cache)));
            }
            _ = extend.tick(), if !ready_sent => {
                if first_pass_running(&cache) {
                    notifier.send(&format!(
                        "EXTEND_TIMEOUT_USEC={}\nSTATUS=Building the cache: {}",
                        EXTEND_BY.as_micros(),
                        summary(&cache)
                    ));
                }
            }
            _ = ticker.tick(), if watchdog.is_some() => {
                // Reading every inventory's status and size takes each lock briefly: a daemon
                // stuck on a lock stops pinging and systemd restarts it.
                let _ = summary(&cache);
                notifier.send("WATCHDOG=1");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_is_half_the_interval_and_only_for_this_process() {
        let half = Some(Duration::from_millis(200));
        assert_eq!(watchdog_interval(Some("400000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("400000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("400000"), Some(""), 7), half);
        assert_eq!(watchdog_interval(Some("400000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::default();
        assert!(!n.is_active());
        n.send("READY=1");
        n.stopping();
    }

    #[test]
    fn messages_reach_a_path_socket_and_a_missing_one_is_not_an_error() {
        let dir = std::env::temp_dir().join(format!("ses-notify-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to_socket(path.to_str().unwrap());
        n.send("READY=1\nSTATUS=ok");
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok");
        drop(rx);
        std::fs::remove_file(&path).unwrap();
        n.send("WATCHDOG=1"); // no receiver any more: logged, not fatal
        n.send("WATCHDOG=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("ses-notify-unit-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        Notifier::to_socket(&format!("@{name}")).send("STOPPING=1");
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");
    }

    #[test]
    fn the_start_is_extended_only_while_a_first_pass_fetches() {
        let cache = Cache::new();
        assert!(!first_pass_running(&cache), "nothing started yet");
        cache.update_status(Inventory::Services, |s| s.phase = Phase::Building);
        assert!(first_pass_running(&cache));
        cache.update_status(Inventory::Services, |s| s.phase = Phase::Failing);
        assert!(
            !first_pass_running(&cache),
            "backing off after a failure is no progress"
        );
        cache.update_status(Inventory::Carriers, |s| s.phase = Phase::Building);
        cache.mark_ready(Inventory::Carriers);
        assert!(
            !first_pass_running(&cache),
            "a ready inventory's pass is not the start's"
        );
    }

    #[test]
    fn the_summary_names_each_inventory_phase_and_size() {
        let cache = Cache::new();
        cache.update_status(Inventory::Resources, |s| {
            s.phase = Phase::Failing;
            s.consecutive_failures = 2;
        });
        assert_eq!(
            summary(&cache),
            "services: starting, 0 items; carriers: starting, 0 items; \
             resources: failing, 0 items (2 failures)"
        );
    }
}

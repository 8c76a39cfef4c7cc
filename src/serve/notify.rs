//! systemd notifications. The protocol (`KEY=VALUE` datagrams to `$NOTIFY_SOCKET`, reading
//! `$WATCHDOG_USEC`/`$WATCHDOG_PID`) is the `sd-notify` crate's; when to say what is ours:
//! `READY=1` once every inventory is ready, `STATUS=` after each poll, `WATCHDOG=1` at half the
//! watchdog timeout, `EXTEND_TIMEOUT_USEC=` while a first pass fetches, `STOPPING=1` on shutdown.
//!
//! `sd_notify::notify` sends on a blocking socket: a service manager that stops draining its
//! socket would stall the caller. So no task of the daemon calls it. [`Notifier`] hands each
//! notification to one sender thread through a short queue, and drops it when the queue is
//! full. Without `$NOTIFY_SOCKET` nothing is sent and no thread runs. A notification that
//! cannot be sent or is dropped is logged — the first as a warning, later ones at debug level —
//! and otherwise ignored: systemd's bookkeeping must never stop the daemon.

use crate::cache::Cache;
use crate::mirror::lease::{HaStatus, Role};
use crate::model::inventory::Inventory;
use crate::model::status::Phase;
use sd_notify::NotifyState;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Notifications waiting for the sender thread; more are dropped (a stuck service manager
/// must not make the daemon queue without bound).
const QUEUE: usize = 16;

/// How long [`Notifier::stopping`] waits for `STOPPING=1` to be sent before shutdown goes on.
const STOPPING_WAIT: Duration = Duration::from_secs(1);

/// One notification, owned so that it can cross to the sender thread.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Note {
    Status(String),
    /// `READY=1` and a `STATUS=`.
    Ready(String),
    /// `EXTEND_TIMEOUT_USEC=` and a `STATUS=`.
    Extend(Duration, String),
    Watchdog,
    /// `STOPPING=1` and `STATUS=Stopping.`
    Stopping,
}

/// What sends one datagram of states: `sd_notify::notify`, or a recorder in tests.
type Transport = Box<dyn Fn(&[NotifyState<'_>]) -> io::Result<()> + Send>;

impl Note {
    fn send(&self, transport: &Transport) -> io::Result<()> {
        match self {
            Note::Status(s) => transport(&[NotifyState::Status(s)]),
            Note::Ready(s) => transport(&[NotifyState::Ready, NotifyState::Status(s)]),
            Note::Extend(by, s) => {
                let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
                transport(&[NotifyState::ExtendTimeoutUsec(usec), NotifyState::Status(s)])
            }
            Note::Watchdog => transport(&[NotifyState::Watchdog]),
            Note::Stopping => transport(&[NotifyState::Stopping, NotifyState::Status("Stopping.")]),
        }
    }
}

struct Queued {
    note: Note,
    /// Told once the note has been sent (or failed).
    sent: Option<oneshot::Sender<()>>,
}

/// Sends notifications to the service manager. Cheap to clone; the sender thread ends when the
/// last clone is dropped.
#[derive(Clone, Default)]
pub struct Notifier {
    target: Option<Arc<Target>>,
}

struct Target {
    queue: SyncSender<Queued>,
    /// Shared with the sender thread: whether a failure has been logged as a warning.
    warned: Arc<AtomicBool>,
}

/// Logs a notification that did not reach the service manager: a warning the first time,
/// debug after that.
fn failed(warned: &AtomicBool, error: &dyn std::fmt::Display) {
    if warned.swap(true, Ordering::Relaxed) {
        tracing::debug!(message = "systemd notification failed.", error = %error);
    } else {
        tracing::warn!(
            message = "systemd notification failed; the daemon goes on without it.",
            error = %error,
        );
    }
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`, or a silent one when it is unset or unusable.
    pub(crate) fn from_env() -> Notifier {
        let socket = match std::env::var_os("NOTIFY_SOCKET") {
            Some(s) if !s.is_empty() => s,
            _ => return Notifier::default(),
        };
        if socket.as_encoded_bytes().starts_with(b"@") {
            // sd-notify connects to `$NOTIFY_SOCKET` as a path; systemd itself hands services
            // a path (`/run/systemd/notify`), only some other managers an abstract name.
            tracing::warn!(
                message = "NOTIFY_SOCKET is unusable; systemd will not be notified.",
                socket = %socket.to_string_lossy(),
                error = "abstract sockets are not supported",
            );
            return Notifier::default();
        }
        Notifier::with_transport(Box::new(sd_notify::notify))
    }

    /// A notifier whose sender thread sends through `transport`.
    fn with_transport(transport: Transport) -> Notifier {
        let (queue, notes) = mpsc::sync_channel::<Queued>(QUEUE);
        let warned = Arc::new(AtomicBool::new(false));
        let thread_warned = warned.clone();
        let spawned = std::thread::Builder::new()
            .name("sd-notify".into())
            .spawn(move || {
                for Queued { note, sent } in notes {
                    if let Err(e) = note.send(&transport) {
                        failed(&thread_warned, &e);
                    }
                    if let Some(sent) = sent {
                        let _ = sent.send(());
                    }
                }
            });
        match spawned {
            Ok(_) => Notifier {
                target: Some(Arc::new(Target { queue, warned })),
            },
            Err(e) => {
                tracing::warn!(
                    message = "NOTIFY_SOCKET is unusable; systemd will not be notified.",
                    error = %e,
                );
                Notifier::default()
            }
        }
    }

    /// Whether notifications go anywhere.
    pub(crate) fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Queues `note` for the sender thread. Never blocks, never fails.
    fn post(&self, note: Note, sent: Option<oneshot::Sender<()>>) {
        let Some(t) = &self.target else { return };
        match t.queue.try_send(Queued { note, sent }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => failed(
                &t.warned,
                &"the notify socket is not draining; notification dropped",
            ),
            Err(TrySendError::Disconnected(_)) => {
                failed(&t.warned, &"the notification thread has stopped")
            }
        }
    }

    fn status(&self, status: String) {
        self.post(Note::Status(status), None);
    }

    /// `STOPPING=1`: the service manager sees the stop as intended. Waits (at most a second)
    /// until it is sent, so that it goes out before the process exits.
    pub(crate) async fn stopping(&self) {
        let (sent, was_sent) = oneshot::channel();
        self.post(Note::Stopping, Some(sent));
        let _ = tokio::time::timeout(STOPPING_WAIT, was_sent).await;
    }
}

/// How often to send `WATCHDOG=1`: half of the watchdog `timeout` (none when it is zero).
pub(crate) fn watchdog_interval(timeout: Option<Duration>) -> Option<Duration> {
    timeout
        .filter(|t| !t.is_zero())
        .map(|t| (t / 2).max(Duration::from_millis(1)))
}

/// [`watchdog_interval`] of the timeout systemd set for this process: `$WATCHDOG_USEC`, unless
/// `$WATCHDOG_PID` names another process (read by `sd_notify::watchdog_enabled`).
pub(crate) fn watchdog_interval_from_env() -> Option<Duration> {
    watchdog_interval(sd_notify::watchdog_enabled())
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
pub(crate) const EXTEND_BY: Duration = Duration::from_secs(90);

/// Whether the start is making progress: some inventory that is not ready yet is fetching pages
/// right now (not waiting out a failure backoff).
pub(crate) fn first_pass_running(cache: &Cache) -> bool {
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
///
/// With `ha` (`ha.enabled`), every `STATUS=` starts with the role (`leader; ...`, `standby,
/// leader <name>; ...`), and a change of role sends one.
pub async fn run(
    cache: Cache,
    notifier: Notifier,
    watchdog: Option<Duration>,
    mut ha: Option<watch::Receiver<HaStatus>>,
) {
    if !notifier.is_active() {
        return;
    }

    notifier.status(format!("Building the cache: {}", line(&ha, &cache)));
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
                notifier.post(Note::Ready(line(&ha, &cache)), None);
            }
            changed = polls.changed() => {
                if changed.is_err() {
                    // The cache is gone: nothing more to report (the watchdog stops too,
                    // which is right for a daemon that lost its cache).
                    return;
                }
                notifier.status(line(&ha, &cache));
            }
            _ = extend.tick(), if !ready_sent => {
                if first_pass_running(&cache) {
                    let status = format!("Building the cache: {}", line(&ha, &cache));
                    notifier.post(Note::Extend(EXTEND_BY, status), None);
                }
            }
            changed = async { ha.as_mut().expect("checked").changed().await }, if ha.is_some() => {
                if changed.is_err() {
                    ha = None;
                }
                notifier.status(line(&ha, &cache));
            }
            _ = ticker.tick(), if watchdog.is_some() => {
                // Reading every inventory's status and size takes each lock briefly: a daemon
                // stuck on a lock stops pinging and systemd restarts it.
                let _ = line(&ha, &cache);
                notifier.post(Note::Watchdog, None);
            }
        }
    }
}

/// The status line: the role first with `ha.enabled`, then [`summary`].
fn line(ha: &Option<watch::Receiver<HaStatus>>, cache: &Cache) -> String {
    let Some(ha) = ha else {
        return summary(cache);
    };
    let role = {
        let s = ha.borrow();
        match (s.role, &s.leader) {
            (Role::Standby, Some(leader)) => format!("standby, leader {leader}"),
            (role, _) => role.as_str().to_owned(),
        }
    };
    format!("{role}; {}", summary(cache))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{Receiver, RecvTimeoutError};

    /// A notifier whose datagrams arrive, as text, on the returned receiver.
    fn recording() -> (Notifier, Receiver<String>) {
        let (tx, rx) = mpsc::channel();
        let notifier = Notifier::with_transport(Box::new(move |states| {
            let text: String = states.iter().map(|s| format!("{s}\n")).collect();
            tx.send(text).map_err(io::Error::other)
        }));
        (notifier, rx)
    }

    fn next(rx: &Receiver<String>) -> String {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a datagram")
    }

    #[test]
    fn with_ha_the_status_line_starts_with_the_role() {
        let cache = Cache::new();
        assert!(line(&None, &cache).starts_with("services: "));
        let (tx, rx) = watch::channel(HaStatus::standby_unknown());
        let ha = Some(rx);
        assert!(line(&ha, &cache).starts_with("standby; services: "));
        tx.send_modify(|s| s.leader = Some("inv-a".into()));
        assert!(
            line(&ha, &cache).starts_with("standby, leader inv-a; services: "),
            "{}",
            line(&ha, &cache)
        );
        tx.send_modify(|s| s.role = Role::Leader);
        assert!(line(&ha, &cache).starts_with("leader; services: "));
    }

    #[test]
    fn watchdog_is_half_the_timeout() {
        let half = Some(Duration::from_millis(200));
        assert_eq!(watchdog_interval(Some(Duration::from_millis(400))), half);
        assert_eq!(watchdog_interval(Some(Duration::ZERO)), None);
        assert_eq!(watchdog_interval(None), None);
        assert_eq!(
            watchdog_interval(Some(Duration::from_micros(1))),
            Some(Duration::from_millis(1))
        );
    }

    #[tokio::test]
    async fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::default();
        assert!(!n.is_active());
        n.status("ok".into());
        n.stopping().await;
    }

    #[tokio::test]
    async fn each_notification_is_one_datagram_of_systemd_states() {
        let (n, rx) = recording();
        n.post(Note::Ready("all ready".into()), None);
        n.post(Note::Extend(EXTEND_BY, "Building".into()), None);
        n.post(Note::Watchdog, None);
        n.stopping().await;
        assert_eq!(next(&rx), "READY=1\nSTATUS=all ready\n");
        assert_eq!(next(&rx), "EXTEND_TIMEOUT_USEC=90000000\nSTATUS=Building\n");
        assert_eq!(next(&rx), "WATCHDOG=1\n");
        assert_eq!(
            rx.try_recv().as_deref(),
            Ok("STOPPING=1\nSTATUS=Stopping.\n"),
            "sent before stopping() returned"
        );
    }

    #[test]
    fn a_socket_that_does_not_drain_never_blocks_the_daemon() {
        // The transport blocks until released, as a send to a full socket would.
        let (release, released) = mpsc::channel::<()>();
        let n = Notifier::with_transport(Box::new(move |_| {
            let _ = released.recv();
            Err(io::Error::from(io::ErrorKind::WouldBlock))
        }));
        let (done, finished) = mpsc::channel();
        let poster = n.clone();
        std::thread::spawn(move || {
            for _ in 0..QUEUE * 4 {
                poster.post(Note::Watchdog, None);
            }
            done.send(()).unwrap();
        });
        assert_ne!(
            finished.recv_timeout(Duration::from_secs(10)),
            Err(RecvTimeoutError::Timeout),
            "posting blocked behind a stuck socket"
        );
        drop(release); // lets the sender thread fail the rest and end with the notifier
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn ready_once_every_inventory_is_ready_then_a_status_per_poll() {
        let cache = Cache::new();
        let (n, rx) = recording();
        let task = tokio::spawn(run(cache.clone(), n, None, None));
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let recv = || {
            let rx = rx.clone();
            tokio::task::spawn_blocking(move || next(&rx.lock().unwrap()))
        };
        let starting = "services: starting, 0 items; carriers: starting, 0 items; \
                        resources: starting, 0 items";
        assert_eq!(
            recv().await.unwrap(),
            format!("STATUS=Building the cache: {starting}\n")
        );
        for inv in Inventory::ALL {
            cache.update_status(inv, |s| s.phase = Phase::Ready);
            cache.mark_ready(inv);
        }
        let ready = "services: ready, 0 items; carriers: ready, 0 items; resources: ready, 0 items";
        assert_eq!(recv().await.unwrap(), format!("READY=1\nSTATUS={ready}\n"));
        cache.poll_finished();
        assert_eq!(recv().await.unwrap(), format!("STATUS={ready}\n"));
        task.abort();
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

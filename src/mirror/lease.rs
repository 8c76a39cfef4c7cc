//! The leader lease (`ha.enabled`): one key, `leader`, in the bucket `ses_inventory_lease`,
//! whose entries the server drops `ha.lease_seconds` after they were written (the bucket's
//! `max_age`), so a dead leader's lease ends by the server's clock, not by anyone's.
//!
//! A standby tries to *create* the key every third of the lease: that succeeds only once the
//! key is gone. The leader *renews* it every third of the lease with a compare-and-set on the
//! revision it holds; a refused renewal (someone else holds it) or no renewal for a whole lease
//! (NATS unreachable, or the process was paused) ends its term at once. The [`Fence`] is how
//! the writers know: it holds the lease revision and the local deadline of the term (measured
//! on the monotonic clock from *before* the renewal was sent), and a write is refused once the
//! deadline has passed, even before the elector has noticed.

use super::conn;
use crate::telemetry::events;
use async_nats::jetstream::{self, kv::Store};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The bucket of the lease.
pub const LEASE_BUCKET: &str = "ses_inventory_lease";

/// The key of the lease in it.
pub(crate) const LEASE_KEY: &str = "leader";

/// This instance's part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `ha.enabled = false`: the only instance.
    Off,
    Standby,
    Leader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Off => "off",
            Role::Standby => "standby",
            Role::Leader => "leader",
        }
    }
}

/// What the status API, the metrics and systemd are told.
#[derive(Clone, Debug, PartialEq)]
pub struct HaStatus {
    pub role: Role,
    /// The instance holding the lease, when known.
    pub leader: Option<String>,
    /// When the lease ends unless renewed (by the writer's clock), when known.
    pub lease_expires: Option<DateTime<Utc>>,
    /// The lease revision of this instance's term (leader only).
    pub revision: u64,
    /// The monotonic deadline of this instance's term (leader only).
    deadline: Option<Instant>,
}

impl HaStatus {
    pub fn off() -> HaStatus {
        HaStatus {
            role: Role::Off,
            leader: None,
            lease_expires: None,
            revision: 0,
            deadline: None,
        }
    }

    /// A standby that does not know the leader yet.
    pub(crate) fn standby_unknown() -> HaStatus {
        HaStatus::standby(None, None)
    }

    fn standby(leader: Option<String>, lease_expires: Option<DateTime<Utc>>) -> HaStatus {
        HaStatus {
            role: Role::Standby,
            leader,
            lease_expires,
            revision: 0,
            deadline: None,
        }
    }
}

/// Lets writers check that this instance still leads; cheap to clone.
#[derive(Clone)]
pub(crate) struct Fence(watch::Receiver<HaStatus>);

impl Fence {
    /// The lease revision while this instance leads and its term has not run out.
    pub fn revision(&self) -> Option<u64> {
        let s = self.0.borrow();
        (s.role == Role::Leader && s.deadline.is_some_and(|d| Instant::now() < d))
            .then_some(s.revision)
    }

    /// Resolves when the status changes (false once the elector is gone).
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

/// The elector: holds or seeks the lease until dropped (or released).
pub(crate) struct Elector {
    js: jetstream::Context,
    status: watch::Receiver<HaStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Elector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Elector {
    /// Starts seeking the lease for `instance` on `js`, telling `tx` its status.
    pub fn start(
        js: jetstream::Context,
        instance: String,
        lease: Duration,
        replicas: u32,
        tx: watch::Sender<HaStatus>,
    ) -> Elector {
        tx.send_replace(HaStatus::standby(None, None));
        let status = tx.subscribe();
        let task = tokio::spawn(run(js.clone(), instance, lease, replicas, tx));
        Elector { js, status, task }
    }

    /// Stops seeking the lease and, while this instance still holds it, gives it up (deletes
    /// the key at the revision it holds), so that a standby need not wait for it to run out.
    pub async fn release(self) {
        self.task.abort();
        let Some(revision) = self.fence().revision() else {
            return;
        };
        let released = tokio::time::timeout(Duration::from_secs(2), async {
            let store = self.js.get_key_value(LEASE_BUCKET).await.ok()?;
            store
                .delete_expect_revision(LEASE_KEY, Some(revision))
                .await
                .ok()
        })
        .await;
        if matches!(released, Ok(Some(()))) {
            events::LeaseReleased { revision }.emit();
        }
    }

    pub fn watch(&self) -> watch::Receiver<HaStatus> {
        self.status.clone()
    }

    pub(crate) fn fence(&self) -> Fence {
        Fence(self.status.clone())
    }
}

fn value(instance: &str, lease: Duration, now: DateTime<Utc>) -> bytes::Bytes {
    json!({
        "holder": instance,
        "lease_seconds": lease.as_secs(),
        "renewed": crate::time::format::millis(now),
    })
    .to_string()
    .into()
}

/// Who holds the lease and until when, from its entry.
fn holder(entry: &[u8]) -> (Option<String>, Option<DateTime<Utc>>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(entry) else {
        return (None, None);
    };
    let name = v["holder"].as_str().map(str::to_owned);
    let expires = v["renewed"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .zip(v["lease_seconds"].as_i64())
        .map(|(t, secs)| t.with_timezone(&Utc) + chrono::Duration::seconds(secs));
    (name, expires)
}

async fn lease_bucket(js: &jetstream::Context, lease: Duration, replicas: u32) -> Store {
    let mut delay = Duration::from_millis(250);
    loop {
        match conn::bucket(js, LEASE_BUCKET, replicas, Some(lease)).await {
            Ok(store) => return store,
            Err(e) => {
                events::NatsProblem { error: &e }.emit();
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn run(
    js: jetstream::Context,
    instance: String,
    lease: Duration,
    replicas: u32,
    tx: watch::Sender<HaStatus>,
) {
    let store = lease_bucket(&js, lease, replicas).await;
    let client = js.client();
    let tick = lease / 3;
    let mut held: Option<(u64, Instant)> = None;
    loop {
        match held {
            None => {
                if !connected_by(&client, Instant::now() + tick).await {
                    continue;
                }
                let sent = Instant::now();
                let attempt = tokio::time::timeout(
                    tick,
                    store.create(LEASE_KEY, value(&instance, lease, Utc::now())),
                )
                .await;
                if let Ok(Ok(revision)) = attempt {
                    let deadline = sent + lease;
                    held = Some((revision, deadline));
                    tx.send_replace(HaStatus {
                        role: Role::Leader,
                        leader: Some(instance.clone()),
                        lease_expires: Some(
                            Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default(),
                        ),
                        revision,
                        deadline: Some(deadline),
                    });
                    events::LeaseChanged {
                        instance: &instance,
                        role: Role::Leader.as_str(),
                        leader: &instance,
                        revision,
                        reason: "acquired",
                    }
                    .emit();
                    continue;
                }
                // Someone else holds it (or NATS does not answer): say who, try again later.
                let (leader, expires) = match tokio::time::timeout(tick, store.get(LEASE_KEY)).await
                {
                    Ok(Ok(Some(v))) => holder(&v),
                    _ => (None, None),
                };
                tx.send_if_modified(|s| {
                    let next = HaStatus::standby(leader, expires);
                    (*s != next).then(|| *s = next).is_some()
                });
                tokio::time::sleep_until(sent + tick).await;
            }
            Some((revision, deadline)) => {
                // Renew at a third of the term; give up the moment the term runs out.
                // While the client is disconnected nothing is sent: try again soon, within
                // the term (the deadline below ends it).
                let retry = (Instant::now() + Duration::from_millis(500).min(tick)).min(deadline);
                let lost = if connected_by(&client, retry).await {
                    let sent = Instant::now();
                    let renewal =
                        store.update(LEASE_KEY, value(&instance, lease, Utc::now()), revision);
                    let outcome = tokio::select! {
                        r = renewal => Some(r),
                        () = tokio::time::sleep_until(deadline) => None,
                    };
                    match outcome {
                        Some(Ok(next)) => {
                            let deadline = sent + lease;
                            held = Some((next, deadline));
                            let expires =
                                Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
                            tx.send_modify(|s| {
                                s.revision = next;
                                s.deadline = Some(deadline);
                                s.lease_expires = Some(expires);
                            });
                            tokio::time::sleep_until(sent + tick).await;
                            None
                        }
                        Some(Err(e))
                            if e.kind()
                                == async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision =>
                        {
                            Some("another instance holds the lease")
                        }
                        Some(Err(_)) if Instant::now() < deadline => {
                            // NATS did not answer: try again soon, within the term.
                            tokio::time::sleep(Duration::from_millis(500).min(tick)).await;
                            None
                        }
                        _ => Some("the lease ran out before it could be renewed"),
                    }
                } else {
                    None
                };
                // A term also ends when the process was paused past its deadline.
                let lost = lost.or_else(|| {
                    (Instant::now() >= held.map_or(deadline, |h| h.1))
                        .then_some("the lease ran out before it could be renewed")
                });
                if let Some(reason) = lost {
                    held = None;
                    tx.send_replace(HaStatus::standby(None, None));
                    events::LeaseChanged {
                        instance: &instance,
                        role: Role::Standby.as_str(),
                        leader: "",
                        revision,
                        reason,
                    }
                    .emit();
                }
            }
        }
    }
}

/// Waits until the client is connected, at most until `until`; whether it is. Nothing is
/// asked of the lease while the client is disconnected: it would keep the request and send it
/// once it reconnects, perhaps terms later, and a create sent that late makes this instance
/// the holder without its knowing (nobody leads until the entry runs out), a renewal that late
/// renews a term it has already given up.
async fn connected_by(client: &async_nats::Client, until: Instant) -> bool {
    loop {
        if client.connection_state() == async_nats::connection::State::Connected {
            return true;
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50).min(until - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(deadline: Instant) -> Fence {
        let (_tx, rx) = watch::channel(HaStatus {
            role: Role::Leader,
            leader: Some("me".into()),
            lease_expires: None,
            revision: 7,
            deadline: Some(deadline),
        });
        Fence(rx)
    }

    #[tokio::test]
    async fn the_fence_closes_when_the_term_runs_out_even_before_the_elector_notices() {
        let now = Instant::now();
        assert_eq!(leader(now + Duration::from_secs(5)).revision(), Some(7));
        assert_eq!(leader(now - Duration::from_millis(1)).revision(), None);
        let (_tx, rx) = watch::channel(HaStatus::standby_unknown());
        assert_eq!(Fence(rx).revision(), None);
    }
}

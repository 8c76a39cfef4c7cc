//! A request for a poll that is answered `queued` gets a poll, even when it comes in the
//! instant between a poll being applied and the poller going back to sleep.
//!
//! That instant is too short to hit by timing. The test widens it: a tracing layer (this
//! binary's only subscriber, so it runs alone here) stops the poller on the "Poll complete."
//! line of the next services poll, which is written after the poll was applied and the
//! inventory is no longer polling, and before the poller waits for its next poll. While it
//! stands there, the test asks for a refresh.

mod common;

use common::*;
use ses_inventory::Inventory::Services;
use ses_inventory::sync::daemon::{Daemon, RequestOutcome};
use ses_inventory::time::clock::Clock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Stops the thread that writes the next services "Poll complete." line, once armed, until
/// released; says when it stopped.
#[derive(Clone, Default)]
struct Pause {
    armed: Arc<AtomicBool>,
    stopped: Arc<Mutex<Option<mpsc::Sender<()>>>>,
    release: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
}

#[derive(Default)]
struct Fields {
    message: String,
    inventory: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "inventory" => self.inventory = format!("{value:?}"),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "inventory" => self.inventory = value.to_owned(),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Pause {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message == "Poll complete."
            && f.inventory == "services"
            && self.armed.swap(false, Ordering::SeqCst)
        {
            if let Some(stopped) = self.stopped.lock().unwrap().take() {
                let _ = stopped.send(());
            }
            if let Some(release) = self.release.lock().unwrap().take() {
                // Bounded: a test that failed before releasing does not hang the poller.
                let _ = release.recv_timeout(Duration::from_secs(30));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_made_as_a_poll_ends_is_queued_and_gets_its_own_poll() {
    let pause = Pause::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(pause.clone()))
        .expect("the only subscriber of this binary");

    let (sim, sc) = empty_sim().await;
    sim.set_items(Services, services(3));
    // Refreshes only when asked: the next timed poll is an hour away.
    let daemon = Daemon::start(Arc::new(config(&sim, &sc)), Clock::System).unwrap();
    let control = daemon.control();
    let cache = daemon.cache().clone();
    tokio::time::timeout(Duration::from_secs(30), cache.wait_ready(Services))
        .await
        .unwrap();
    settled(&cache, Services, 30).await;
    let refreshes = || {
        sim.requests()
            .iter()
            .filter(|r| r.inventory == Some(Services.into()) && r.updated_days_ago.is_some())
            .count()
    };
    let before = refreshes();

    let (stopped_tx, stopped) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    *pause.stopped.lock().unwrap() = Some(stopped_tx);
    *pause.release.lock().unwrap() = Some(release_rx);
    pause.armed.store(true, Ordering::SeqCst);

    assert_eq!(
        control.request_poll(Services, false),
        RequestOutcome::Queued
    );
    tokio::task::spawn_blocking(move || stopped.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the requested refresh ran and was applied");
    assert_eq!(refreshes(), before + 1, "the first requested refresh");

    // The refresh is applied; its poller stands between applying it and sleeping.
    assert_eq!(
        control.request_poll(Services, false),
        RequestOutcome::Queued,
        "the inventory is no longer polling"
    );
    release.send(()).unwrap();

    eventually(20, "the second requested refresh runs", || {
        refreshes() == before + 2
    })
    .await;
    daemon.shutdown().await;
}

//! Connecting to NATS from `[nats]`, and the JetStream objects the mirror writes: the three
//! buckets, the change stream, and the HA bucket.

use super::{kv, stream};
use crate::config::NatsConfig;
use crate::model::inventory::Inventory;
use crate::telemetry::events;
use async_nats::jetstream::{self, kv::Store};
use async_nats::{ConnectOptions, Event, ServerAddr};
use std::time::Duration;

/// How long a JetStream request (publish acknowledgement, bucket lookup) may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The bucket holding the shared sync state: per inventory, the window anchor, the last
/// complete full pass and readiness, written by the leader after each applied poll.
pub(crate) const STATE_BUCKET: &str = "ses_inventory_state";

/// A configuration the client cannot use; names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}`: {message}")]
pub(crate) struct SetupError {
    pub key: &'static str,
    pub message: String,
}

/// What to connect to and how: parsed from `[nats]` before anything runs, so that a bad
/// credentials file stops the start with an error naming it.
pub(crate) struct Connector {
    servers: Vec<ServerAddr>,
    options: ConnectOptions,
}

impl Connector {
    pub fn new(cfg: &NatsConfig, instance: &str) -> Result<Connector, SetupError> {
        let servers = cfg
            .urls()
            .into_iter()
            .map(|u| {
                u.parse::<ServerAddr>().map_err(|e| SetupError {
                    key: "nats.url",
                    message: format!("a server address is not usable: {}", e.kind()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut options = ConnectOptions::new()
            .name(format!("ses-inventory {instance}"))
            .retry_on_initial_connect()
            .connection_timeout(REQUEST_TIMEOUT)
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((250 * attempts as u64).min(2_000))
            })
            .event_callback(|event| async move {
                match event {
                    Event::Connected => events::NatsConnection { connected: true }.emit(),
                    Event::Disconnected => events::NatsConnection { connected: false }.emit(),
                    Event::ServerError(e) => events::NatsProblem { error: &e }.emit(),
                    Event::ClientError(e) => events::NatsProblem { error: &e }.emit(),
                    other => events::NatsProblem { error: &other }.emit(),
                }
            });
        if !cfg.token.is_empty() {
            options = options.token(cfg.token.expose().to_owned());
        }
        if !cfg.credentials_file.is_empty() {
            let text = std::fs::read_to_string(&cfg.credentials_file).map_err(|e| SetupError {
                key: "nats.credentials_file",
                message: format!("cannot read {}: {e}", cfg.credentials_file),
            })?;
            // The parser's error could quote the file: say what is wrong, not what it holds.
            options = options.credentials(&text).map_err(|_| SetupError {
                key: "nats.credentials_file",
                message: format!(
                    "{} does not hold a user JWT and an NKey seed (`nsc generate creds`)",
                    cfg.credentials_file
                ),
            })?;
        }
        if !cfg.ca_file.is_empty() {
            options = options.add_root_certificates(cfg.ca_file.clone().into());
        }
        if cfg.urls().iter().any(|u| u.starts_with("tls://")) {
            options = options.require_tls(true);
        }
        Ok(Connector { servers, options })
    }

    /// Connects in the background: returns at once, the client keeps (re)connecting.
    pub async fn connect(self) -> Result<jetstream::Context, String> {
        let client = self
            .options
            .connect(self.servers)
            .await
            .map_err(|e| format!("NATS connect: {e}"))?;
        let mut js = jetstream::new(client);
        js.set_timeout(REQUEST_TIMEOUT);
        Ok(js)
    }
}

/// A bucket by name, created (one value per key) when missing. The bucket's stream is created
/// here with the settings a KV bucket has (`KV_<name>`, subjects `$KV.<name>.>`, rollups, direct
/// get), rather than by the client's `create_key_value`, which needs an account-info reply that
/// servers before 2.10 do not send.
/// `max_age`: entries are dropped that long after they were written (the lease).
pub async fn bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: u32,
    max_age: Option<Duration>,
) -> Result<Store, String> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{name}"),
        description: Some("ses-inventory".to_owned()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: max_age.unwrap_or_default(),
        max_bytes: -1,
        max_message_size: -1,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: replicas as usize,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("NATS bucket {name}: {e}"))?;
    js.get_key_value(name)
        .await
        .map_err(|e| format!("NATS bucket {name}: {e}"))
}

/// The three item buckets.
pub(crate) async fn item_buckets(js: &jetstream::Context, replicas: u32) -> Result<(), String> {
    for inv in Inventory::ALL {
        bucket(js, &kv::bucket(inv), replicas, None).await?;
    }
    Ok(())
}

/// The change stream, created when missing; its retention follows `nats.stream_max_age` and
/// `nats.stream_max_bytes` when they changed since.
pub(crate) async fn change_stream(js: &jetstream::Context, cfg: &NatsConfig) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("NATS stream {}: {e}", stream::STREAM);
    let wanted = jetstream::stream::Config {
        name: stream::STREAM.to_owned(),
        description: Some("ses-inventory: item changes and poll reports".to_owned()),
        subjects: vec![stream::SUBJECTS.to_owned()],
        max_age: Duration::from_secs(cfg.stream_max_age),
        max_bytes: cfg.stream_max_bytes,
        num_replicas: cfg.replicas as usize,
        storage: jetstream::stream::StorageType::File,
        discard: jetstream::stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let mut existing = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|e| fail(&e))?;
    let config = &existing.info().await.map_err(|e| fail(&e))?.config;
    if config.max_age != wanted.max_age || config.max_bytes != wanted.max_bytes {
        let mut updated = config.clone();
        updated.max_age = wanted.max_age;
        updated.max_bytes = wanted.max_bytes;
        js.update_stream(updated).await.map_err(|e| fail(&e))?;
    }
    Ok(())
}

//! Configuration: built-in defaults (`config/default.toml`), then an optional TOML file, then
//! `SES_INVENTORY__<SECTION>__<KEY>` environment variables; parsed once into typed settings and
//! validated before any request is made.
//!
//! Defaults live in exactly one place, `config/default.toml`, which is compiled in as the bottom
//! layer. The structs below therefore carry no serde defaults, and `deny_unknown_fields` turns a
//! misspelt key into an error that names it.

use crate::model::inventory::{Api, Inventory};
use crate::model::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The built-in defaults, also the documented reference of every key.
pub(crate) const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment prefix; sections and keys are separated by `__`.
pub(crate) const ENV_PREFIX: &str = "SES_INVENTORY";

/// Valid range of `poll.cache_update_frequency`, in seconds (the connector's range).
pub(crate) const FREQUENCY_RANGE: std::ops::RangeInclusive<u64> = 3600..=432_000;

/// Valid range of `poll.pages_in_flight`.
pub(crate) const PAGES_IN_FLIGHT_RANGE: std::ops::RangeInclusive<u32> = 1..=64;

/// Valid range of `http.max_in_flight_per_api`.
pub(crate) const MAX_IN_FLIGHT_PER_API_RANGE: std::ops::RangeInclusive<u32> = 1..=256;

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: [&str; 6] = [
    "services.keep_statuses",
    "services.exclude_types",
    "carriers.keep_statuses",
    "carriers.exclude_types",
    "resources.keep_statuses",
    "resources.exclude_types",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("configuration: {0}")]
    Parse(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// A TOML syntax error as one line: `line L, column C: message` (1-based, column in characters).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(span) = e.span() else {
        return message;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: {message}")
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub tmf638: UpstreamConfig,
    pub tmf639: UpstreamConfig,
    pub http: HttpConfig,
    pub poll: PollConfig,
    pub services: InventoryConfig,
    pub carriers: InventoryConfig,
    pub resources: InventoryConfig,
    pub store: StoreConfig,
    pub api: ApiServerConfig,
    pub log: LogConfig,
    pub nats: NatsConfig,
    pub ha: HaConfig,
}

/// One upstream API: where it is and how to authenticate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub endpoint: String,
    pub username: String,
    pub password: Secret,
    pub(crate) password_file: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub timeout: u64,
    pub connect_timeout: u64,
    pub pool_idle_timeout: u64,
    pub bypass_proxy: bool,
    pub ca_file: String,
    pub max_body_bytes: u64,
    pub retry_attempts: u32,
    pub retry_initial_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    pub retry_after_max: u64,
    /// Most page requests in flight at once to one API, across its pollers (the ceiling of the
    /// adaptive limit).
    pub max_in_flight_per_api: u32,
    pub(crate) user_agent: String,
}

/// How the upstream interprets `updatedDaysAgo=N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaysAgoSemantics {
    /// The last (N+1)×24 hours, counted back from the request.
    Rolling,
    /// Since midnight UTC, N days before the request's day.
    Calendar,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    pub cache_update_frequency: u64,
    pub records_per_page: u32,
    pub page_size_param: String,
    pub page_param: String,
    pub first_page: u32,
    pub(crate) updated_days_ago_param: String,
    pub(crate) updated_days_ago_semantics: DaysAgoSemantics,
    pub window_margin: u64,
    pub max_refresh_window_days: u32,
    pub full_resync_interval: u64,
    pub failure_backoff_initial: u64,
    pub failure_backoff_max: u64,
    pub max_pages: u32,
    /// Pages of one listing requested ahead of the one being absorbed (1 = one at a time).
    pub pages_in_flight: u32,
    pub status_interval: u64,
    pub(crate) total_count_header: String,
    /// A full listing that returns fewer kept items than this share of those cached cannot
    /// witness absences (0 to 1; 0 = any listing can).
    pub min_listing_share: f64,
    /// Most items a full pass asks the single-item endpoint about (`<inventory>.item_path`).
    pub(crate) max_item_checks: u32,
}

/// What to request for one inventory and which of its items to keep.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub items_pointer: String,
    pub key_field: String,
    pub(crate) status_field: String,
    pub(crate) keep_statuses: Vec<String>,
    pub(crate) type_field: String,
    pub(crate) exclude_types: Vec<String>,
    /// The upstream's single-item path under the API's endpoint, `{id}` standing for the
    /// item's `id` (e.g. "/service/{id}"); empty = not used.
    #[serde(default)]
    pub item_path: String,
}

/// The durable store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub path: String,
    /// The change log keeps entries this many days (0: no limit by age).
    pub history_max_age_days: u64,
    /// The change log's entries (mostly the earlier versions they keep) are pruned, oldest
    /// first, beyond this many bytes (0: no limit by size).
    pub history_max_bytes: u64,
    /// On a clean stop, leave a snapshot of the cache beside the file for a fast next start
    /// (not with `ha.enabled`: a standby's cache follows the mirror, not the file).
    pub snapshot_on_stop: bool,
}

/// The read API, health, readiness and metrics server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiServerConfig {
    pub listen: String,
    pub token: Secret,
    pub token_file: String,
    pub allow_unauthenticated: bool,
}

impl ApiServerConfig {
    /// The address to listen on; `None` when the API is off (`listen` empty).
    pub(crate) fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse::<SocketAddr>().map(Some).map_err(|_| {
            invalid(
                "api.listen",
                format!(
                    "`{listen}` is not an IP address and port, e.g. 127.0.0.1:9638 or [::]:9638 \
                     (empty = no API)"
                ),
            )
        })
    }

    /// Fills `token` from `token_file`, or from `$CREDENTIALS_DIRECTORY/api-token` when neither
    /// is set.
    fn resolve_token(&mut self, credentials_dir: Option<&Path>) -> Result<(), ConfigError> {
        if !self.token_file.is_empty() {
            if !self.token.is_empty() {
                return Err(invalid(
                    "api.token_file",
                    "set either token or token_file, not both",
                ));
            }
            self.token = read_secret_file(Path::new(&self.token_file))
                .map_err(|m| invalid("api.token_file", m))?;
            if self.token.is_empty() {
                return Err(invalid(
                    "api.token_file",
                    format!("{} is empty", self.token_file),
                ));
            }
        } else if self.token.is_empty()
            && let Some(dir) = credentials_dir
        {
            let path = dir.join("api-token");
            if path.exists() {
                self.token =
                    read_secret_file(&path).map_err(|m| invalid("api.token (credential)", m))?;
            }
        }
        Ok(())
    }

    /// The listen address parses, and a non-loopback one has a token unless
    /// `allow_unauthenticated` says otherwise.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let Some(addr) = self.listen_addr()? else {
            return Ok(());
        };
        if self.token.expose().chars().any(char::is_whitespace) {
            return Err(invalid("api.token", "must not contain whitespace"));
        }
        if !addr.ip().is_loopback() && self.token.is_empty() && !self.allow_unauthenticated {
            return Err(invalid(
                "api.listen",
                format!(
                    "{addr} is reachable from other hosts: set api.token or api.token_file, \
                     or api.allow_unauthenticated = true"
                ),
            ));
        }
        Ok(())
    }
}

/// The NATS JetStream mirror and change stream (`src/mirror`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub url: String,
    pub credentials_file: String,
    pub token: Secret,
    pub token_file: String,
    pub ca_file: String,
    pub(crate) replicas: u32,
    pub(crate) stream_max_age: u64,
    pub(crate) stream_max_bytes: i64,
    pub(crate) max_pending_writes: u32,
}

/// Valid range of `ha.lease_seconds`.
pub(crate) const LEASE_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 3..=3600;

/// Valid range of `nats.replicas` (JetStream allows 1 to 5).
pub(crate) const REPLICAS_RANGE: std::ops::RangeInclusive<u32> = 1..=5;

impl NatsConfig {
    /// Whether the mirror is on.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The server URLs, as given (comma-separated in `url`).
    pub fn urls(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// Fills `token` from `token_file`, or `token`/`credentials_file` from
    /// `$CREDENTIALS_DIRECTORY/nats-token` / `nats-creds` when nothing is configured.
    fn resolve_secrets(&mut self, credentials_dir: Option<&Path>) -> Result<(), ConfigError> {
        if !self.token_file.is_empty() {
            if !self.token.is_empty() {
                return Err(invalid(
                    "nats.token_file",
                    "set either token or token_file, not both",
                ));
            }
            self.token = read_secret_file(Path::new(&self.token_file))
                .map_err(|m| invalid("nats.token_file", m))?;
            if self.token.is_empty() {
                return Err(invalid(
                    "nats.token_file",
                    format!("{} is empty", self.token_file),
                ));
            }
        } else if self.token.is_empty()
            && self.credentials_file.is_empty()
            && let Some(dir) = credentials_dir
        {
            let token = dir.join("nats-token");
            let creds = dir.join("nats-creds");
            if token.exists() {
                self.token =
                    read_secret_file(&token).map_err(|m| invalid("nats.token (credential)", m))?;
            } else if creds.exists() {
                self.credentials_file = creds.display().to_string();
            }
        }
        Ok(())
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        for url in self.urls() {
            validate_nats_url(url).map_err(|m| invalid("nats.url", m))?;
        }
        if !self.token.is_empty() && !self.credentials_file.is_empty() {
            return Err(invalid(
                "nats.credentials_file",
                "set either a credentials file or a token, not both",
            ));
        }
        for (key, path) in [
            ("nats.credentials_file", &self.credentials_file),
            ("nats.ca_file", &self.ca_file),
        ] {
            if !path.is_empty() && std::fs::File::open(path).is_err() {
                return Err(invalid(key, format!("{path} is not a readable file")));
            }
        }
        if !REPLICAS_RANGE.contains(&self.replicas) {
            return Err(invalid(
                "nats.replicas",
                format!("{} is out of range: must be 1 to 5", self.replicas),
            ));
        }
        if self.max_pending_writes == 0 {
            return Err(invalid("nats.max_pending_writes", "must be at least 1"));
        }
        if self.stream_max_bytes == 0 || self.stream_max_bytes < -1 {
            return Err(invalid(
                "nats.stream_max_bytes",
                "must be a number of bytes, or -1 for no size limit",
            ));
        }
        Ok(())
    }
}

/// A NATS server URL: nats://, tls://, ws:// or a bare host:port; never with credentials.
fn validate_nats_url(url: &str) -> Result<(), String> {
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("nats://{url}")
    };
    let parsed = reqwest::Url::parse(&with_scheme).map_err(|e| {
        // The URL may hold a credential: name the problem, not the text.
        format!("a server URL is not a URL ({e})")
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "must not contain credentials; use nats.token_file or nats.credentials_file".into(),
        );
    }
    if !matches!(parsed.scheme(), "nats" | "tls") {
        return Err(format!("`{url}` must use nats:// or tls://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

/// Leader election among instances sharing a NATS cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    pub enabled: bool,
    pub(crate) lease_seconds: u64,
    pub instance: String,
}

impl HaConfig {
    /// This instance's name: `instance`, else the host name (from `/proc`, or `/etc/hostname`
    /// where a sandbox hides `/proc/sys`), else `ses-inventory`.
    pub(crate) fn instance_name(&self) -> String {
        let name = self.instance.trim();
        if !name.is_empty() {
            return name.to_owned();
        }
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|h| h.trim().to_owned())
            .find(|h| !h.is_empty())
            .unwrap_or_else(|| "ses-inventory".to_owned())
    }

    pub(crate) fn validate(&self, nats: &NatsConfig) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if !nats.enabled() {
            return Err(invalid(
                "ha.enabled",
                "needs nats.url: the lease and the mirror live in NATS JetStream",
            ));
        }
        if !LEASE_SECONDS_RANGE.contains(&self.lease_seconds) {
            return Err(invalid(
                "ha.lease_seconds",
                format!(
                    "{} is out of range: must be {} to {} seconds",
                    self.lease_seconds,
                    LEASE_SECONDS_RANGE.start(),
                    LEASE_SECONDS_RANGE.end()
                ),
            ));
        }
        if self.instance.chars().any(|c| c.is_control()) {
            return Err(invalid(
                "ha.instance",
                "must not contain control characters",
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// Where the configuration file comes from when `--config` is not given.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SES_INVENTORY_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(dir) = std::env::var_os("CONFIGURATION_DIRECTORY").filter(|p| !p.is_empty()) {
        let p = Path::new(&dir).join("config.toml");
        if p.exists() {
            return Some(p);
        }
    }
    let etc = Path::new("/etc/ses-inventory/config.toml");
    etc.exists().then(|| etc.to_path_buf())
}

impl Config {
    /// The built-in defaults alone (no file, no environment).
    pub fn defaults() -> Config {
        Self::build(None, std::iter::empty()).expect("built-in defaults are valid")
    }

    /// Loads defaults, then `file` (which must exist when given), then the process environment;
    /// reads password files and validates everything.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut cfg = Self::build(file, std::env::vars())?;
        cfg.resolve_secrets(std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Layers the sources; `env` is the environment to read overrides from (a parameter so
    /// tests need not touch the process environment).
    pub fn build(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        use config::{Environment, File, FileFormat};
        let mut builder =
            config::Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            // Parse alone first so a syntax error names the file, line and column, on one line.
            toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                message: toml_error(&text, &e),
            })?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        }
        let prefix = format!("{ENV_PREFIX}__");
        let vars: config::Map<String, String> =
            env.filter(|(k, _)| k.starts_with(&prefix)).collect();
        if let Some((value, inside)) = nested_env_pair(vars.keys()) {
            return Err(ConfigError::Parse(format!(
                "environment variables {value} and {inside} are both set: the first names a \
                 value, the second a key inside it (set one of them)"
            )));
        }
        let mut environment = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .source(Some(vars));
        for key in LIST_KEYS {
            environment = environment.with_list_parse_key(key);
        }
        let merged = builder
            .add_source(environment)
            .build()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        merged
            .try_deserialize::<Config>()
            .map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Fills passwords from `password_file`, or from `$CREDENTIALS_DIRECTORY/<api>-password`
    /// (systemd `LoadCredential=`) when neither password nor file is configured.
    pub(crate) fn resolve_secrets(
        &mut self,
        credentials_dir: Option<PathBuf>,
    ) -> Result<(), ConfigError> {
        for api in [Api::Tmf638, Api::Tmf639] {
            let section = self.upstream_mut(api);
            let key = format!("{api}.password_file");
            if !section.password_file.is_empty() {
                if !section.password.is_empty() {
                    return Err(invalid(
                        key,
                        "set either password or password_file, not both",
                    ));
                }
                section.password = read_secret_file(Path::new(&section.password_file))
                    .map_err(|m| invalid(&key, m))?;
            } else if section.password.is_empty()
                && let Some(dir) = &credentials_dir
            {
                let path = dir.join(format!("{api}-password"));
                if path.exists() {
                    section.password = read_secret_file(&path)
                        .map_err(|m| invalid(format!("{api}.password (credential)"), m))?;
                }
            }
        }
        self.api.resolve_token(credentials_dir.as_deref())?;
        self.nats.resolve_secrets(credentials_dir.as_deref())
    }

    /// Checks every value whose range or form is constrained; the error names the key.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for api in [Api::Tmf638, Api::Tmf639] {
            let section = self.upstream(api);
            validate_endpoint(&section.endpoint)
                .map_err(|m| invalid(format!("{api}.endpoint"), m))?;
        }
        let poll = &self.poll;
        if !FREQUENCY_RANGE.contains(&poll.cache_update_frequency) {
            return Err(invalid(
                "poll.cache_update_frequency",
                format!(
                    "{} is out of range: must be {} to {} seconds",
                    poll.cache_update_frequency,
                    FREQUENCY_RANGE.start(),
                    FREQUENCY_RANGE.end()
                ),
            ));
        }
        self.validate_timing()?;
        for (key, name) in [
            ("poll.page_param", &poll.page_param),
            ("poll.page_size_param", &poll.page_size_param),
            ("poll.updated_days_ago_param", &poll.updated_days_ago_param),
        ] {
            if name.trim().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }
        for inv in Inventory::ALL {
            let c = self.inventory(inv);
            if !c.path.is_empty() && !c.path.starts_with('/') {
                return Err(invalid(format!("{inv}.path"), "must start with `/`"));
            }
            if !c.items_pointer.is_empty() && !c.items_pointer.starts_with('/') {
                return Err(invalid(
                    format!("{inv}.items_pointer"),
                    "must be empty or a JSON pointer starting with `/`, e.g. \"/result\"",
                ));
            }
            if c.key_field.trim().is_empty() {
                return Err(invalid(format!("{inv}.key_field"), "must not be empty"));
            }
            if !c.item_path.is_empty()
                && (!c.item_path.starts_with('/') || !c.item_path.contains("{id}"))
            {
                return Err(invalid(
                    format!("{inv}.item_path"),
                    "must be empty or a path starting with `/` that holds `{id}`, e.g. \"/service/{id}\"",
                ));
            }
        }
        if !self.http.ca_file.is_empty() && !Path::new(&self.http.ca_file).is_file() {
            return Err(invalid(
                "http.ca_file",
                format!("{} is not a readable file", self.http.ca_file),
            ));
        }
        // tracing-subscriber's directive parser panics on some text that is not ASCII (it
        // slices at character positions); no target, level or span filter needs any.
        if !self.log.level.is_ascii() {
            return Err(invalid(
                "log.level",
                "must be ASCII: targets, levels and span filters",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", e.to_string()))?;
        self.api.validate()?;
        self.nats.validate()?;
        self.ha.validate(&self.nats)?;
        Ok(())
    }

    /// The checks that also apply to a programmatic configuration (demo, tests), which may use a
    /// refresh frequency below the operator range.
    pub fn validate_timing(&self) -> Result<(), ConfigError> {
        let (p, h) = (&self.poll, &self.http);
        let positive: [(&str, u64); 6] = [
            ("poll.records_per_page", p.records_per_page.into()),
            (
                "poll.max_refresh_window_days",
                p.max_refresh_window_days.into(),
            ),
            ("poll.failure_backoff_initial", p.failure_backoff_initial),
            ("poll.max_pages", p.max_pages.into()),
            ("http.retry_attempts", h.retry_attempts.into()),
            ("http.max_body_bytes", h.max_body_bytes),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for (key, value, range) in [
            (
                "poll.pages_in_flight",
                p.pages_in_flight,
                PAGES_IN_FLIGHT_RANGE,
            ),
            (
                "http.max_in_flight_per_api",
                h.max_in_flight_per_api,
                MAX_IN_FLIGHT_PER_API_RANGE,
            ),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    key,
                    format!(
                        "{value} is out of range: must be {} to {}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        if !(0.0..=1.0).contains(&p.min_listing_share) {
            return Err(invalid(
                "poll.min_listing_share",
                format!("{} is out of range: must be 0 to 1", p.min_listing_share),
            ));
        }
        if p.failure_backoff_max < p.failure_backoff_initial {
            return Err(invalid(
                "poll.failure_backoff_max",
                "must not be below poll.failure_backoff_initial",
            ));
        }
        if h.retry_max_delay_ms < h.retry_initial_delay_ms {
            return Err(invalid(
                "http.retry_max_delay_ms",
                "must not be below http.retry_initial_delay_ms",
            ));
        }
        Ok(())
    }

    /// The section (`[tmf638]` or `[tmf639]`) of the upstream API `api`.
    pub fn upstream(&self, api: Api) -> &UpstreamConfig {
        match api {
            Api::Tmf638 => &self.tmf638,
            Api::Tmf639 => &self.tmf639,
        }
    }

    fn upstream_mut(&mut self, api: Api) -> &mut UpstreamConfig {
        match api {
            Api::Tmf638 => &mut self.tmf638,
            Api::Tmf639 => &mut self.tmf639,
        }
    }

    pub fn inventory(&self, inv: Inventory) -> &InventoryConfig {
        match inv {
            Inventory::Services => &self.services,
            Inventory::Carriers => &self.carriers,
            Inventory::Resources => &self.resources,
        }
    }

    /// The effective configuration as TOML, passwords redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

impl PollConfig {
    pub fn frequency(&self) -> Duration {
        Duration::from_secs(self.cache_update_frequency)
    }
}

fn validate_endpoint(endpoint: &str) -> Result<(), String> {
    let url =
        reqwest::Url::parse(endpoint).map_err(|e| format!("`{endpoint}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{endpoint}` must use http or https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Do not echo the URL: it holds a credential.
        return Err("must not contain credentials; use username and password instead".into());
    }
    if url.query().is_some() {
        return Err(format!(
            "`{endpoint}` must not carry a query; use <inventory>.query"
        ));
    }
    Ok(())
}

fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(Secret::new(text))
}

/// Two of `names` where one is a key path inside the other (`X__SERVICES` and
/// `X__SERVICES__KEEP_STATUSES`, in any case), the shortest such pair in name order: merged,
/// their outcome would depend on the order the `config` crate meets them in, which it does
/// not fix (a value, or a section without its other keys).
fn nested_env_pair<'a>(names: impl Iterator<Item = &'a String>) -> Option<(String, String)> {
    let mut names: Vec<String> = names.map(|n| n.to_ascii_uppercase()).collect();
    names.sort();
    names.iter().find_map(|outer| {
        let inside = names.iter().find(|n| {
            n.len() > outer.len() + 2
                && n.starts_with(outer.as_str())
                && n[outer.len()..].starts_with("__")
        })?;
        Some((outer.clone(), inside.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn build_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let cfg = Config::build(None, env(pairs))?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn a_log_level_that_is_not_ascii_is_an_error_not_a_panic() {
        // tracing-subscriber 0.3.23 panics on this one ("not a char boundary"), found by fuzzing.
        let panics = "\u{b}:\u{fffd}[";
        let err = build_env(&[("SES_INVENTORY__LOG__LEVEL", panics)]).unwrap_err();
        assert!(err.to_string().contains("`log.level`"), "{err}");
        build_env(&[(
            "SES_INVENTORY__LOG__LEVEL",
            "warn,ses_inventory[poll]=debug",
        )])
        .unwrap();
    }

    #[test]
    fn a_value_and_a_key_inside_it_from_the_environment_are_an_error_every_time() {
        // Found by fuzzing: merged in the `config` crate's hash order, these loaded in some
        // runs and failed naming `services.path` in others.
        for _ in 0..20 {
            let err = build_env(&[
                (
                    "SES_INVENTORY__SERVICES__KEEP_STATUSES",
                    "Operational,Planned",
                ),
                ("SES_INVENTORY__SERVICES", "Operational"),
            ])
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                "configuration: environment variables SES_INVENTORY__SERVICES and \
                 SES_INVENTORY__SERVICES__KEEP_STATUSES are both set: the first names a value, \
                 the second a key inside it (set one of them)"
            );
        }
        // Keys side by side are not nested.
        build_env(&[
            ("SES_INVENTORY__SERVICES__KEEP_STATUSES", "Operational"),
            ("SES_INVENTORY__SERVICES__KEEP_STATUSES_X", "x"),
        ])
        .unwrap_err();
        build_env(&[
            ("SES_INVENTORY__POLL__MAX_PAGES", "10"),
            ("SES_INVENTORY__POLL__MAX_PAGES2", "10"),
        ])
        .unwrap_err();
        build_env(&[("SES_INVENTORY__POLL__MAX_PAGES", "10")]).unwrap();
    }

    #[test]
    fn defaults_match_the_documented_upstream() {
        let c = Config::defaults();
        assert!(c.tmf639.endpoint.ends_with("/tmf/api/v1/tmf639"));
        assert_eq!(c.poll.records_per_page, 40);
        assert_eq!(c.poll.cache_update_frequency, 3600);
        assert_eq!(c.services.keep_statuses, ["Operational"]);
        assert_eq!(
            c.carriers.query.get("@type").map(String::as_str),
            Some("element")
        );
        assert_eq!(c.resources.key_field, "id");
        assert_eq!(c.resources.exclude_types.len(), 7);
        assert_eq!(c.poll.pages_in_flight, 4);
        assert_eq!(c.http.max_in_flight_per_api, 8);
        c.validate().unwrap();
    }

    #[test]
    fn environment_overrides_every_section() {
        let c = build_env(&[
            ("SES_INVENTORY__TMF638__ENDPOINT", "http://127.0.0.1:9/x"),
            ("SES_INVENTORY__TMF638__USERNAME", "u"),
            ("SES_INVENTORY__TMF638__PASSWORD", "12345"),
            ("SES_INVENTORY__POLL__CACHE_UPDATE_FREQUENCY", "7200"),
            ("SES_INVENTORY__POLL__RECORDS_PER_PAGE", "50"),
            ("SES_INVENTORY__RESOURCES__EXCLUDE_TYPES", "Card,Slot"),
            ("SES_INVENTORY__SERVICES__QUERY__STATUS", "2"),
            ("OTHER_VAR", "ignored"),
        ])
        .unwrap();
        assert_eq!(c.tmf638.endpoint, "http://127.0.0.1:9/x");
        assert_eq!(c.tmf638.password.expose(), "12345");
        assert_eq!(c.poll.cache_update_frequency, 7200);
        assert_eq!(c.poll.records_per_page, 50);
        assert_eq!(c.resources.exclude_types, ["Card", "Slot"]);
        assert_eq!(c.services.query["status"], "2");
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: [(&str, &str, &str); 9] = [
            (
                "SES_INVENTORY__POLL__PAGES_IN_FLIGHT",
                "0",
                "poll.pages_in_flight",
            ),
            (
                "SES_INVENTORY__POLL__PAGES_IN_FLIGHT",
                "65",
                "poll.pages_in_flight",
            ),
            (
                "SES_INVENTORY__HTTP__MAX_IN_FLIGHT_PER_API",
                "0",
                "http.max_in_flight_per_api",
            ),
            (
                "SES_INVENTORY__HTTP__MAX_IN_FLIGHT_PER_API",
                "257",
                "http.max_in_flight_per_api",
            ),
            (
                "SES_INVENTORY__POLL__CACHE_UPDATE_FREQUENCY",
                "60",
                "poll.cache_update_frequency",
            ),
            (
                "SES_INVENTORY__POLL__CACHE_UPDATE_FREQUENCY",
                "500000",
                "poll.cache_update_frequency",
            ),
            (
                "SES_INVENTORY__TMF639__ENDPOINT",
                "not a url",
                "tmf639.endpoint",
            ),
            (
                "SES_INVENTORY__TMF638__ENDPOINT",
                "ftp://host/x",
                "tmf638.endpoint",
            ),
            (
                "SES_INVENTORY__POLL__RECORDS_PER_PAGE",
                "0",
                "poll.records_per_page",
            ),
        ];
        for (k, v, key) in cases {
            let err = build_env(&[(k, v)]).unwrap_err().to_string();
            assert!(err.contains(key), "{k}={v}: {err}");
        }
    }

    #[test]
    fn in_flight_limits_accept_their_whole_range() {
        for (pages, per_api) in [("1", "1"), ("64", "256")] {
            let c = build_env(&[
                ("SES_INVENTORY__POLL__PAGES_IN_FLIGHT", pages),
                ("SES_INVENTORY__HTTP__MAX_IN_FLIGHT_PER_API", per_api),
            ])
            .unwrap();
            assert_eq!(c.poll.pages_in_flight.to_string(), pages);
            assert_eq!(c.http.max_in_flight_per_api.to_string(), per_api);
        }
        // Programmatic configurations (tests, the demo) are held to the same range.
        let mut c = Config::defaults();
        c.poll.pages_in_flight = 0;
        let err = c.validate_timing().unwrap_err().to_string();
        assert!(err.contains("poll.pages_in_flight"), "{err}");
    }

    #[test]
    fn unknown_and_mistyped_keys_are_errors() {
        let err = build_env(&[("SES_INVENTORY__POLL__CACHE_UPDATE_FREQUENZY", "3600")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cache_update_frequenzy"), "{err}");
        let err = build_env(&[("SES_INVENTORY__POLL__RECORDS_PER_PAGE", "many")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("records_per_page"), "{err}");
    }

    #[test]
    fn endpoint_with_credentials_is_refused_without_echoing_them() {
        let err = build_env(&[("SES_INVENTORY__TMF638__ENDPOINT", "https://bob:s3cr3t@h/x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tmf638.endpoint"));
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn file_layer_and_syntax_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("sesinv-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[poll]\nrecords_per_page = 50\n[services]\nkeep_statuses = []\n",
        )
        .unwrap();
        let c = Config::build(Some(&good), std::iter::empty()).unwrap();
        assert_eq!(c.poll.records_per_page, 50);
        assert!(c.services.keep_statuses.is_empty());
        assert_eq!(
            c.services.key_field, "externalId",
            "untouched keys keep defaults"
        );

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[poll]\nrecords_per_page = 50\nfirst_page 1\n").unwrap();
        let err = Config::build(Some(&bad), std::iter::empty())
            .unwrap_err()
            .to_string();
        // One line naming the file, the line and the column of the mistake.
        assert!(!err.contains('\n'), "{err}");
        assert!(
            err.starts_with(&format!(
                "configuration file {}: line 3, column 12: ",
                bad.display()
            )),
            "{err}"
        );
        let missing = dir.join("missing.toml");
        let err = Config::build(Some(&missing), std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.toml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn passwords_come_from_files_and_the_credentials_directory() {
        let dir = std::env::temp_dir().join(format!("sesinv-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "from-file\n").unwrap();
        std::fs::write(dir.join("tmf639-password"), "from-creds\r\n").unwrap();
        let mut c = Config::defaults();
        c.tmf638.password_file = dir.join("pw").display().to_string();
        c.resolve_secrets(Some(dir.clone())).unwrap();
        assert_eq!(c.tmf638.password.expose(), "from-file");
        assert_eq!(c.tmf639.password.expose(), "from-creds");

        let mut both = Config::defaults();
        both.tmf638.password = Secret::new("x");
        both.tmf638.password_file = dir.join("pw").display().to_string();
        let err = both.resolve_secrets(None).unwrap_err().to_string();
        assert!(err.contains("tmf638.password_file"), "{err}");

        let mut gone = Config::defaults();
        gone.tmf639.password_file = dir.join("nope").display().to_string();
        let err = gone.resolve_secrets(None).unwrap_err().to_string();
        assert!(
            err.contains("tmf639.password_file") && err.contains("nope"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn api_listen_needs_a_token_beyond_loopback() {
        let err = build_env(&[("SES_INVENTORY__API__LISTEN", "0.0.0.0:9638")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("api.listen") && err.contains("api.token"),
            "{err}"
        );
        build_env(&[
            ("SES_INVENTORY__API__LISTEN", "0.0.0.0:9638"),
            ("SES_INVENTORY__API__TOKEN", "t0ken"),
        ])
        .unwrap();
        build_env(&[
            ("SES_INVENTORY__API__LISTEN", "[::]:9638"),
            ("SES_INVENTORY__API__ALLOW_UNAUTHENTICATED", "true"),
        ])
        .unwrap();
        build_env(&[("SES_INVENTORY__API__LISTEN", "[::1]:9638")]).unwrap();
        let off = build_env(&[("SES_INVENTORY__API__LISTEN", "")]).unwrap();
        assert_eq!(off.api.listen_addr().unwrap(), None);
        let err = build_env(&[("SES_INVENTORY__API__LISTEN", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("api.listen") && err.contains("localhost"),
            "{err}"
        );
    }

    #[test]
    fn api_token_comes_from_a_file_or_the_credentials_directory() {
        let dir = std::env::temp_dir().join(format!("sesinv-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tok"), "file-token\n").unwrap();
        std::fs::write(dir.join("api-token"), "cred-token\n").unwrap();
        let mut c = Config::defaults();
        c.api.token_file = dir.join("tok").display().to_string();
        c.resolve_secrets(None).unwrap();
        assert_eq!(c.api.token.expose(), "file-token");

        let mut c = Config::defaults();
        c.resolve_secrets(Some(dir.clone())).unwrap();
        assert_eq!(c.api.token.expose(), "cred-token");

        let mut both = Config::defaults();
        both.api.token = Secret::new("x");
        both.api.token_file = dir.join("tok").display().to_string();
        let err = both.resolve_secrets(None).unwrap_err().to_string();
        assert!(err.contains("api.token_file"), "{err}");
        assert!(!err.contains("file-token"), "{err}");

        let mut gone = Config::defaults();
        gone.api.token_file = dir.join("nope").display().to_string();
        let err = gone.resolve_secrets(None).unwrap_err().to_string();
        assert!(
            err.contains("api.token_file") && err.contains("nope"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redacted_toml_hides_passwords() {
        let mut c = Config::defaults();
        c.tmf638.password = Secret::new("topsecret");
        let text = c.to_redacted_toml();
        assert!(!text.contains("topsecret"));
        assert!(text.contains("***"));
        assert!(text.contains("cache_update_frequency = 3600"));
    }

    #[test]
    fn nats_and_ha_come_from_the_environment_and_bad_values_name_their_key() {
        let cfg = build_env(&[
            ("SES_INVENTORY__NATS__URL", "nats://a:4222, tls://b:4222"),
            ("SES_INVENTORY__HA__ENABLED", "true"),
            ("SES_INVENTORY__HA__LEASE_SECONDS", "30"),
        ])
        .unwrap();
        assert_eq!(cfg.nats.urls(), ["nats://a:4222", "tls://b:4222"]);
        assert!(cfg.ha.enabled && cfg.ha.lease_seconds == 30);
        assert!(!Config::defaults().nats.enabled() && !Config::defaults().ha.enabled);
        let key_of = |pairs: &[(&str, &str)]| match build_env(pairs) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        let url = ("SES_INVENTORY__NATS__URL", "nats://127.0.0.1:4222");
        assert_eq!(
            key_of(&[
                url,
                ("SES_INVENTORY__HA__ENABLED", "true"),
                ("SES_INVENTORY__HA__LEASE_SECONDS", "2")
            ]),
            "ha.lease_seconds"
        );
        assert_eq!(
            key_of(&[url, ("SES_INVENTORY__NATS__REPLICAS", "6")]),
            "nats.replicas"
        );
        assert_eq!(
            key_of(&[("SES_INVENTORY__NATS__URL", "http://x:4222")]),
            "nats.url"
        );
        assert_eq!(
            key_of(&[url, ("SES_INVENTORY__NATS__CA_FILE", "/nonexistent/ca.pem")]),
            "nats.ca_file"
        );
    }
}

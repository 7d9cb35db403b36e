//! Server configuration: defaults, then a TOML file, then `HERALD_SECTION__KEY`
//! environment variables; the binary applies command-line flags last.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything `herald serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the embedded log.
    pub data_dir: PathBuf,
    /// Keep the log in memory only (nothing survives a restart).
    pub memory: bool,
    /// Storage settings.
    pub storage: StorageConfig,
    /// Size limits.
    pub limits: LimitsConfig,
    /// Long-poll settings.
    pub long_poll: LongPollConfig,
    /// Server-Sent Events settings.
    pub sse: SseConfig,
    /// WebSocket settings.
    pub websocket: WebSocketConfig,
    /// Live subscription settings (SSE, WebSocket, gRPC streams).
    pub subscriptions: SubscriptionsConfig,
    /// Webhook and job-callback delivery.
    pub webhooks: WebhooksConfig,
    /// Request-reply.
    pub rpc: RpcConfig,
    /// Default retention of topics without their own.
    pub retention: RetentionConfig,
    /// Shutdown settings.
    pub shutdown: ShutdownConfig,
    /// TLS (HTTPS, WSS and gRPC over TLS on the same port).
    pub tls: TlsConfig,
    /// The Prometheus `/metrics` endpoint.
    pub metrics: MetricsConfig,
    /// Access control; absent = anonymous full access, on loopback addresses only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::auth::AuthConfig>,
    /// Serve anonymous full access on a non-loopback address without `[auth]`
    /// (`serve --allow-anonymous`).
    pub allow_anonymous: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./herald-data"),
            memory: false,
            storage: StorageConfig::default(),
            limits: LimitsConfig::default(),
            long_poll: LongPollConfig::default(),
            sse: SseConfig::default(),
            websocket: WebSocketConfig::default(),
            subscriptions: SubscriptionsConfig::default(),
            webhooks: WebhooksConfig::default(),
            rpc: RpcConfig::default(),
            retention: RetentionConfig::default(),
            shutdown: ShutdownConfig::default(),
            tls: TlsConfig::default(),
            metrics: MetricsConfig::default(),
            auth: None,
            allow_anonymous: false,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `"always"`: answer publishes after fsync (default). `"never"`: lossy, fsync about
    /// once a second.
    pub sync: Sync,
    /// Page cache of the embedded store, in MiB.
    pub cache_mb: usize,
    /// How long an `Idempotency-Key` is remembered (`"2m"`).
    #[serde(with = "humantime_serde_str")]
    pub dedup_window: Duration,
    /// Most messages committed in one transaction.
    pub max_batch_messages: usize,
    /// How long the writer waits for more publishes once several arrive together
    /// (`"0s"` = only what is already queued).
    #[serde(with = "humantime_serde_str")]
    pub commit_window: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            sync: Sync::Always,
            cache_mb: 64,
            dedup_window: Duration::from_secs(120),
            max_batch_messages: 8192,
            commit_window: Duration::ZERO,
        }
    }
}

/// Durability of acknowledged publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sync {
    /// fsync before answering (default).
    Always,
    /// Lossy: fsync about once a second.
    Never,
}

/// `[limits]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message payload, in bytes.
    pub max_payload_bytes: usize,
    /// Largest request body of a batch publish, in bytes.
    pub max_body_bytes: usize,
    /// Most messages in one batch publish.
    pub max_batch_items: usize,
    /// Requests a second per principal (callers without a token: per address); 0 = off.
    pub rate_per_second: u32,
    /// Requests allowed in a burst above the rate (0 = the rate).
    pub burst: u32,
    /// Requests a second per client IP address, whoever calls; 0 = off.
    pub ip_rate_per_second: u32,
    /// Burst of the per-address limit (0 = the rate).
    pub ip_burst: u32,
    /// Most long polls parked at once; more are answered 429 `limit_reached`.
    pub max_long_polls: usize,
    /// Most concurrent HTTP/2 streams (gRPC calls and streams) per connection.
    pub max_http2_streams: u32,
    /// Seconds a client may take to send a request head (and, on a new connection, its
    /// first bytes or TLS handshake); slower connections are closed.
    pub header_read_timeout_seconds: u64,
    /// Most open connections from one IP address (0 = unlimited).
    pub max_connections_per_ip: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_payload_bytes: 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_items: 1000,
            rate_per_second: 0,
            burst: 0,
            ip_rate_per_second: 0,
            ip_burst: 0,
            max_long_polls: 100_000,
            max_http2_streams: 1024,
            header_read_timeout_seconds: 30,
            max_connections_per_ip: 10_000,
        }
    }
}

/// `[long_poll]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LongPollConfig {
    /// Longest `wait` a read may ask for.
    pub max_wait_seconds: u64,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        LongPollConfig {
            max_wait_seconds: 60,
        }
    }
}

/// `[sse]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SseConfig {
    /// Seconds between `: keepalive` comments on idle streams.
    pub keepalive_seconds: u64,
    /// The `retry:` reconnection delay sent first, in milliseconds.
    pub retry_ms: u64,
}

impl Default for SseConfig {
    fn default() -> Self {
        SseConfig {
            keepalive_seconds: 15,
            retry_ms: 3000,
        }
    }
}

/// `[websocket]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Origins allowed to open WebSockets (`https://app.example.com`); empty = any.
    /// Requests without an `Origin` header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// Seconds between server pings.
    pub ping_interval_seconds: u64,
    /// Close connections that sent nothing (not even a pong) for this many seconds.
    pub idle_timeout_seconds: u64,
    /// Close connections whose writes stay blocked this long (slow consumers).
    pub send_timeout_seconds: u64,
    /// Most subscriptions on one connection.
    pub max_subscriptions: usize,
    /// Most publishes in flight on one connection.
    pub max_inflight: usize,
    /// Read buffer per connection, in bytes (allocated for every connection).
    pub read_buffer_bytes: usize,
    /// Outgoing frames are gathered up to this many bytes per write.
    pub write_buffer_bytes: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            allowed_origins: Vec::new(),
            ping_interval_seconds: 20,
            idle_timeout_seconds: 60,
            send_timeout_seconds: 30,
            max_subscriptions: 100,
            max_inflight: 256,
            read_buffer_bytes: 1024,
            write_buffer_bytes: 64 * 1024,
        }
    }
}

/// `[subscriptions]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// Messages buffered per subscription; a subscriber further behind reads from storage.
    pub buffer: usize,
    /// Payload bytes buffered per subscription (same rule).
    pub buffer_bytes: usize,
    /// A subscriber that falls behind its buffer this many times within
    /// `overflow_window` is closed as a slow consumer (with its cursor).
    pub max_overflows: u32,
    /// See `max_overflows`.
    #[serde(with = "humantime_serde_str")]
    pub overflow_window: Duration,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        SubscriptionsConfig {
            buffer: 1024,
            buffer_bytes: 1024 * 1024,
            max_overflows: 4,
            overflow_window: Duration::from_secs(60),
        }
    }
}

/// `[rpc]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Seconds a call waits for its reply unless it asks otherwise.
    pub default_timeout_seconds: f64,
    /// The longest timeout a call may ask for, in seconds.
    pub max_timeout_seconds: f64,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            default_timeout_seconds: 5.0,
            max_timeout_seconds: 60.0,
        }
    }
}

/// `[webhooks]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Allow URLs on loopback, private, link-local and other non-public networks (for
    /// local development and tests only).
    pub allow_private_networks: bool,
    /// Waits after each failed attempt; the number of attempts is one more than its
    /// length (unless an endpoint asks for fewer).
    pub retry_schedule: Vec<String>,
    /// Seconds an attempt may take.
    pub timeout_seconds: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_private_networks: false,
            retry_schedule: ["5s", "5m", "30m", "2h", "5h", "10h", "24h"]
                .map(String::from)
                .to_vec(),
            timeout_seconds: 10,
        }
    }
}

impl WebhooksConfig {
    /// The schedule as durations.
    pub fn schedule(&self) -> Result<Vec<Duration>, ConfigError> {
        self.retry_schedule
            .iter()
            .map(|s| {
                humantime::parse_duration(s).map_err(|e| {
                    ConfigError::Invalid(format!("webhooks.retry_schedule: {s:?}: {e}"))
                })
            })
            .collect()
    }
}

/// `[retention]`: defaults for topics without their own retention.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Keep at most this many messages per topic (0 = unlimited).
    pub max_messages: u64,
    /// Keep at most this many payload bytes per topic (0 = unlimited).
    pub max_bytes: u64,
    /// Keep messages at most this long (`"7d"`; `"0s"` = forever).
    #[serde(with = "humantime_serde_str")]
    pub max_age: Duration,
}

/// `[shutdown]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long open requests may take to finish after a shutdown signal.
    pub grace_seconds: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_seconds: 10 }
    }
}

/// `[tls]`: both files or neither.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (Prometheus text format).
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true }
    }
}

/// Durations as humantime strings (`"2m"`, `"500ms"`).
mod humantime_serde_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then `file` (if any), then `HERALD_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut tree = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let known = known_keys();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("HERALD_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if !known.iter().any(|k| k == &path[0]) {
                // Not a config key (e.g. HERALD_SERVER for the client commands).
                continue;
            }
            set_path(&mut tree, &path, parse_env_value(&value))
                .map_err(|e| ConfigError::Invalid(format!("{name}: {e}")))?;
        }
        let config: Config = toml::Value::Table(tree)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.limits.max_payload_bytes == 0 {
            return bad("limits.max_payload_bytes must be positive");
        }
        if self.limits.max_body_bytes < self.limits.max_payload_bytes {
            return bad("limits.max_body_bytes must be at least limits.max_payload_bytes");
        }
        if self.limits.max_http2_streams == 0 {
            return bad("limits.max_http2_streams must be positive");
        }
        if self.limits.header_read_timeout_seconds == 0 {
            return bad("limits.header_read_timeout_seconds must be positive");
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return bad("tls.cert_file and tls.key_file must be set together");
        }
        if self.limits.max_batch_items == 0 {
            return bad("limits.max_batch_items must be positive");
        }
        if self.storage.max_batch_messages == 0 {
            return bad("storage.max_batch_messages must be positive");
        }
        if self.sse.keepalive_seconds == 0 {
            return bad("sse.keepalive_seconds must be positive");
        }
        let ws = &self.websocket;
        if ws.ping_interval_seconds == 0
            || ws.idle_timeout_seconds == 0
            || ws.send_timeout_seconds == 0
        {
            return bad("websocket ping, idle and send timeouts must be positive");
        }
        if ws.read_buffer_bytes < 256 {
            return bad("websocket.read_buffer_bytes must be at least 256");
        }
        let schedule = self.webhooks.schedule()?;
        if schedule.len() > 50
            || schedule
                .iter()
                .any(|d| *d > Duration::from_secs(7 * 86_400))
        {
            return bad("webhooks.retry_schedule holds at most 50 waits of at most 7 days");
        }
        if self.webhooks.timeout_seconds == 0 || self.webhooks.timeout_seconds > 300 {
            return bad("webhooks.timeout_seconds must be between 1 and 300");
        }
        if self.subscriptions.buffer == 0 || self.subscriptions.max_overflows == 0 {
            return bad("subscriptions.buffer and subscriptions.max_overflows must be positive");
        }
        if let Some(auth) = &self.auth {
            auth.validate().map_err(ConfigError::Invalid)?;
        } else if !self.listen.ip().is_loopback() && !self.allow_anonymous {
            return Err(ConfigError::Invalid(format!(
                "refusing to serve anonymous full access on {}: configure [auth] (API keys or \
                 JWT; see the README's \"Access control\") or pass --allow-anonymous \
                 (config allow_anonymous = true)",
                self.listen
            )));
        }
        let rpc = &self.rpc;
        let ok = |s: f64| s.is_finite() && s > 0.0 && s <= 3600.0;
        if !ok(rpc.default_timeout_seconds)
            || !ok(rpc.max_timeout_seconds)
            || rpc.default_timeout_seconds > rpc.max_timeout_seconds
        {
            return bad(
                "rpc timeouts must be between 0 and 3600 seconds, the default at most the maximum",
            );
        }
        Ok(())
    }
}

fn known_keys() -> Vec<String> {
    match toml::Value::try_from(Config::default()) {
        Ok(toml::Value::Table(t)) => t.keys().cloned().chain(["auth".to_owned()]).collect(),
        _ => Vec::new(),
    }
}

/// Env values are TOML values when they parse as one (`2048`, `true`, `["5s"]`), strings
/// otherwise.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(tree: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = tree;
    for p in parents {
        let entry = cur
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("{p} is not a section"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_file_then_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("herald.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_payload_bytes = 100\n[long_poll]\nmax_wait_seconds = 5\n",
        )
        .expect("write");
        let c = Config::load(
            Some(&file),
            env(&[
                ("HERALD_LIMITS__MAX_PAYLOAD_BYTES", "2048"),
                ("HERALD_DATA_DIR", "/tmp/x"),
                ("HERALD_STORAGE__DEDUP_WINDOW", "5m"),
                ("HERALD_SERVER", "http://ignored"),
                ("PATH", "/bin"),
            ]),
        )
        .expect("load");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.limits.max_payload_bytes, 2048);
        assert_eq!(c.long_poll.max_wait_seconds, 5);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.storage.dedup_window, Duration::from_secs(300));
    }

    #[test]
    fn rejects_unknown_and_invalid_keys() {
        let e = Config::load(None, env(&[("HERALD_LIMITS__MAX_PAYLAOD_BYTES", "1")]));
        assert!(e.is_err());
        let e = Config::load(None, env(&[("HERALD_STORAGE__SYNC", "sometimes")]));
        assert!(e.is_err());
        let e = Config::load(None, env(&[("HERALD_LIMITS__MAX_PAYLOAD_BYTES", "0")]));
        assert!(e.is_err());
        assert!(Config::load(None, env(&[])).is_ok());
    }
}

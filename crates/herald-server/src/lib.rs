//! herald's server: the doors (HTTP now; SSE, WebSocket and gRPC build on the same
//! state), configuration and lifecycle. A library: `Server::bind(config)` gives a
//! [`ServerHandle`] with the real address; the binary and the tests call the same thing.

pub mod auth;
pub mod config;
pub mod grpc;
pub mod http;
mod lean;
pub mod metrics;
pub mod ratelimit;
mod serve;
mod state;
mod tls;
pub mod webhooks;

pub use config::Config;
pub use state::AppState;
pub use tls::TlsError;

use herald_core::clock::{Clock, SystemClock};
use herald_core::{Hub, HubOptions, LogStore, MemoryStore, Retention};
use herald_store::{RedbOptions, RedbStore, SyncMode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the log: {0}")]
    Store(#[from] herald_core::StoreError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot start webhooks: {0}")]
    Webhooks(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    tls: bool,
    hub: Hub,
    auth: Arc<auth::Auth>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, or `https://ADDR` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The core, for in-process use.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Applies a new configuration's credentials (`[auth]`); other settings need a
    /// restart. Live streams of removed or changed keys end with `token_revoked`.
    pub fn reload(&self, config: &Config) -> Result<(), StartError> {
        self.reloader().reload(config)
    }

    /// A handle that reloads credentials while the server runs (e.g. on SIGHUP).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            auth: self.auth.clone(),
        }
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the server gracefully and waits until the log is closed.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// Waits until the server has stopped (after its shutdown token is cancelled).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Reloads a running server's credentials; see [`ServerHandle::reload`].
#[derive(Debug, Clone)]
pub struct Reloader {
    auth: Arc<auth::Auth>,
}

impl Reloader {
    /// Applies `config`'s `[auth]`.
    pub fn reload(&self, config: &Config) -> Result<(), StartError> {
        config.validate()?;
        self.auth
            .reload(config.auth.as_ref())
            .map_err(|e| StartError::Config(config::ConfigError::Invalid(e)))
    }
}

/// Starts servers.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the log, binds the listener and starts serving.
    pub async fn bind(config: Config) -> Result<ServerHandle, StartError> {
        Server::bind_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`Server::bind`], with an injected wall clock (for tests of time-based
    /// behaviour such as age retention and idempotency windows).
    pub async fn bind_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<ServerHandle, StartError> {
        config.validate()?;
        let auth = Arc::new(
            auth::Auth::new(config.auth.as_ref())
                .map_err(|e| StartError::Config(config::ConfigError::Invalid(e)))?,
        );
        let tls = tls::acceptor(&config.tls)?;
        let hub = open_hub(&config, clock)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let connections = tokio_util::task::TaskTracker::new();
        let webhooks =
            webhooks::Webhooks::start(hub.clone(), &config.webhooks, connections.clone())
                .map_err(|e| StartError::Webhooks(e.to_string()))?;
        let config_limits = config.limits.clone();
        let state = AppState {
            hub: hub.clone(),
            config: Arc::new(config),
            connections,
            webhooks,
            auth: auth.clone(),
            rate_limits: ratelimit::RateLimits::new(
                config_limits.rate_per_second,
                config_limits.burst,
                config_limits.ip_rate_per_second,
                config_limits.ip_burst,
            ),
        };
        let mut router = grpc::routes(http::router(state.clone()), state.clone());
        if state.config.metrics.enabled {
            metrics::install();
            router = router.merge(metrics::router(state.clone()));
        }
        let serves_tls = tls.is_some();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve::run(listener, router, state, shutdown.clone(), tls));
        Ok(ServerHandle {
            addr,
            tls: serves_tls,
            hub,
            auth,
            shutdown,
            task,
        })
    }
}

fn open_hub(config: &Config, clock: Arc<dyn Clock>) -> Result<Hub, StartError> {
    let r = &config.retention;
    let opts = HubOptions {
        max_payload_bytes: config.limits.max_payload_bytes,
        max_batch_items: config.limits.max_batch_items,
        max_wait: Duration::from_secs(config.long_poll.max_wait_seconds),
        dedup_window: config.storage.dedup_window,
        default_retention: Retention {
            max_messages: (r.max_messages > 0).then_some(r.max_messages),
            max_bytes: (r.max_bytes > 0).then_some(r.max_bytes),
            max_age: (!r.max_age.is_zero()).then_some(r.max_age),
        },
        clock,
        rpc_default_timeout: Duration::from_secs_f64(config.rpc.default_timeout_seconds),
        rpc_max_timeout: Duration::from_secs_f64(config.rpc.max_timeout_seconds),
        max_long_polls: config.limits.max_long_polls,
        subscriptions: herald_core::SubscriptionOptions {
            buffer: config.subscriptions.buffer,
            buffer_bytes: config.subscriptions.buffer_bytes,
            max_overflows: config.subscriptions.max_overflows,
            overflow_window: config.subscriptions.overflow_window,
            ..herald_core::SubscriptionOptions::default()
        },
        ..HubOptions::default()
    };
    if config.memory {
        return Hub::open(opts, |ctx| {
            Ok::<_, StartError>(Arc::new(MemoryStore::new(ctx)) as Arc<dyn LogStore>)
        });
    }
    let store_opts = RedbOptions {
        sync: match config.storage.sync {
            config::Sync::Always => SyncMode::Always,
            config::Sync::Never => SyncMode::Never,
        },
        cache_bytes: config.storage.cache_mb * 1024 * 1024,
        max_batch_messages: config.storage.max_batch_messages,
        commit_window: config.storage.commit_window,
        ..RedbOptions::default()
    };
    let dir = config.data_dir.clone();
    Ok(Hub::open(opts, move |ctx| {
        RedbStore::open(&dir, store_opts, ctx).map(|s| Arc::new(s) as Arc<dyn LogStore>)
    })?)
}

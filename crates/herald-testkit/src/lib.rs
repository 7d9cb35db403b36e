//! In-process test servers on `127.0.0.1:0` with real sockets, one per test.

pub use herald_core::clock::ManualClock;
use herald_core::clock::{Clock, SystemClock};
mod proxy;

pub use proxy::TestProxy;

use herald_server::{Config, Server, ServerHandle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

/// A running server with its own scratch data directory.
#[derive(Debug)]
pub struct TestServer {
    handle: Option<ServerHandle>,
    config: Config,
    clock: Arc<dyn Clock>,
    _dir: Option<TempDir>,
    data_dir: PathBuf,
}

impl TestServer {
    /// A server on the embedded durable store in a fresh temporary directory.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Like [`TestServer::start`], with the configuration adjusted by `f`.
    pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_with_clock(Arc::new(SystemClock), f).await
    }

    /// Like [`TestServer::start_with`], with an injected wall clock.
    pub async fn start_with_clock(
        clock: Arc<dyn Clock>,
        f: impl FnOnce(&mut Config),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.shutdown.grace_seconds = 5;
        f(&mut config);
        let data_dir = config.data_dir.clone();
        let handle = Server::bind_with_clock(config.clone(), clock.clone())
            .await
            .expect("server starts");
        TestServer {
            handle: Some(handle),
            config,
            clock,
            _dir: Some(dir),
            data_dir,
        }
    }

    /// A server on the in-memory store.
    pub async fn memory() -> TestServer {
        TestServer::start_with(|c| c.memory = true).await
    }

    fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("server is running")
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.handle().url()
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// The server's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.handle().addr()
    }

    /// The in-process server handle.
    pub fn server(&self) -> &ServerHandle {
        self.handle()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// An SDK client for this server.
    pub fn client(&self) -> herald_client::Client {
        herald_client::Client::new(&self.url()).expect("client")
    }

    /// A plain HTTP client.
    pub fn http(&self) -> reqwest::Client {
        http_client()
    }

    /// Stops the server gracefully and starts it again on the same data directory (on a
    /// new port).
    pub async fn restart(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        let handle = Server::bind_with_clock(self.config.clone(), self.clock.clone())
            .await
            .expect("server restarts");
        self.handle = Some(handle);
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

/// A plain HTTP client (with herald's one TLS crypto provider installed).
pub fn http_client() -> reqwest::Client {
    http_builder().build().expect("http client")
}

/// A builder for a plain HTTP client (with herald's TLS crypto provider installed).
pub fn http_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

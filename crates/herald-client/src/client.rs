use crate::error::{Error, ErrorKind};
use crate::subscribe::{SubscribeOptions, Subscription};
use bytes::Bytes;
use herald_proto::{BatchItem, Problem, Published, ReadResponse};
use std::sync::Arc;
use std::time::Duration;

/// A handle to one herald server. Cheap to clone; clones share connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), herald_client::Error> {
/// let client = herald_client::Client::new("http://127.0.0.1:8080")?;
/// let again = client.clone();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Arc<str>,
    /// The gRPC (HTTP/2) connection, made on first use.
    grpc: Arc<std::sync::OnceLock<tonic::transport::Channel>>,
    /// The bearer token sent with every request, if any.
    pub(crate) token: Option<Arc<str>>,
}

/// Options of a publish.
///
/// ```
/// let opts = herald_client::PublishOptions::json().event("created").idempotency_key("order-1");
/// ```
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Payload content type (`application/octet-stream` when absent).
    pub content_type: Option<String>,
    /// Event type.
    pub event: Option<String>,
    /// Deduplication key: the same key on the same topic within the server's window
    /// returns the first message's id.
    pub idempotency_key: Option<String>,
}

impl PublishOptions {
    /// A JSON payload.
    pub fn json() -> Self {
        PublishOptions::content_type("application/json")
    }

    /// A UTF-8 text payload.
    pub fn text() -> Self {
        PublishOptions::content_type("text/plain; charset=utf-8")
    }

    /// A payload of the given content type.
    pub fn content_type(ct: impl Into<String>) -> Self {
        PublishOptions {
            content_type: Some(ct.into()),
            ..PublishOptions::default()
        }
    }

    /// Sets the event type.
    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// Options of a read.
///
/// ```
/// use std::time::Duration;
/// let opts = herald_client::ReadOptions::after("latest").limit(10).wait(Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Start after this cursor (`earliest`, `latest` or an id); `earliest` when absent.
    pub after: Option<String>,
    /// Most messages (1–1000; server default 100).
    pub limit: Option<u32>,
    /// Long-poll for up to this long when nothing is there yet.
    pub wait: Option<Duration>,
}

impl ReadOptions {
    /// Reads after `cursor`.
    pub fn after(cursor: impl Into<String>) -> Self {
        ReadOptions {
            after: Some(cursor.into()),
            ..ReadOptions::default()
        }
    }

    /// Sets the limit.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the long-poll wait.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }
}

fn bearer(token: &str) -> Result<reqwest::header::HeaderValue, Error> {
    let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "the token must be visible ASCII"))?;
    v.set_sensitive(true);
    Ok(v)
}

fn http_client(auth: Option<reqwest::header::HeaderValue>) -> Result<reqwest::Client, Error> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(v) = auth {
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .default_headers(headers)
        .build()?)
}

/// Passes successful answers through; turns error answers into an [`Error`] with the
/// server's problem document.
pub(crate) async fn check(res: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let code = status.as_u16();
    let body = res.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<Problem>(&body) {
        Ok(p) => Err(Error::from_problem(code, p)),
        Err(_) => Err(Error::new(
            ErrorKind::Status(code),
            format!(
                "HTTP {code}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        )),
    }
}

impl Client {
    /// A client for the server at `base_url` (for example `http://127.0.0.1:8080`).
    ///
    /// ```
    /// assert!(herald_client::Client::new("http://127.0.0.1:8080").is_ok());
    /// assert!(herald_client::Client::new("ftp://example.com").is_err());
    /// ```
    pub fn new(base_url: &str) -> Result<Client, Error> {
        // herald uses ring as its one TLS crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = reqwest::Url::parse(base_url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("invalid server URL {base_url:?}: {e}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the server URL must be http:// or https://",
            ));
        }
        Ok(Client {
            http: http_client(None)?,
            base: base_url.trim_end_matches('/').into(),
            grpc: Arc::default(),
            token: None,
        })
    }

    /// The same server, presenting `token` (an API key or a JWT) on every request: as
    /// `Authorization: Bearer` over HTTP, WebSocket and gRPC.
    ///
    /// ```
    /// let client = herald_client::Client::new("http://127.0.0.1:8080")?.with_token("s3cret")?;
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn with_token(self, token: &str) -> Result<Client, Error> {
        let value = bearer(token)?;
        Ok(Client {
            http: http_client(Some(value))?,
            base: self.base,
            grpc: Arc::default(),
            token: Some(token.into()),
        })
    }

    /// `Authorization: Bearer <token>` for requests the client builds itself.
    pub(crate) fn authorization(&self) -> Option<reqwest::header::HeaderValue> {
        self.token.as_deref().and_then(|t| bearer(t).ok())
    }

    /// A gRPC request carrying the token.
    pub(crate) fn grpc_request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(v) = self
            .authorization()
            .and_then(|v| v.to_str().ok()?.parse().ok())
        {
            req.metadata_mut().insert("authorization", v);
        }
        req
    }

    /// The gRPC client (same address; HTTP/2 without TLS for `http://`). Must be
    /// called inside a Tokio runtime.
    pub(crate) fn grpc(
        &self,
    ) -> Result<herald_proto::grpc::herald_client::HeraldClient<tonic::transport::Channel>, Error>
    {
        let channel = match self.grpc.get() {
            Some(c) => c.clone(),
            None => {
                let endpoint = tonic::transport::Endpoint::from_shared(self.base.to_string())
                    .map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()))?
                    .connect_timeout(Duration::from_secs(10))
                    .tcp_nodelay(true);
                self.grpc.get_or_init(|| endpoint.connect_lazy()).clone()
            }
        };
        Ok(
            herald_proto::grpc::herald_client::HeraldClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024),
        )
    }

    /// The server's base URL, without a trailing slash.
    ///
    /// ```
    /// let client = herald_client::Client::new("http://127.0.0.1:8080/").unwrap();
    /// assert_eq!(client.base_url(), "http://127.0.0.1:8080");
    /// ```
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Publishes one message and returns its id once it is durable.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// use herald_client::PublishOptions;
    /// let p = client.publish("orders.eu", r#"{"id":1}"#, PublishOptions::json()).await?;
    /// println!("stored as {}", p.id);
    /// # Ok(()) }
    /// ```
    pub async fn publish(
        &self,
        topic: &str,
        data: impl Into<Bytes>,
        opts: PublishOptions,
    ) -> Result<Published, Error> {
        let mut req = self
            .http
            .post(self.url(&format!("/v1/topics/{topic}/messages")))
            .body(data.into());
        if let Some(ct) = &opts.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(e) = &opts.event {
            req = req.header("herald-event", e);
        }
        if let Some(k) = &opts.idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let res = check(req.send().await?).await?;
        Ok(res.json().await?)
    }

    /// Publishes many messages in one request and one commit; each item succeeds or
    /// fails on its own.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// use herald_client::BatchItem;
    /// let item = BatchItem {
    ///     topic: "orders.eu".into(),
    ///     data: serde_json::value::RawValue::from_string("{\"id\":1}".into()).unwrap(),
    ///     event: None, content_type: None, encoding: None, idempotency_key: None,
    /// };
    /// for r in client.publish_batch(&[item]).await? {
    ///     println!("{:?}", r.map(|p| p.id));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn publish_batch(
        &self,
        items: &[BatchItem],
    ) -> Result<Vec<Result<Published, Problem>>, Error> {
        let res = self
            .http
            .post(self.url("/v1/messages"))
            .json(items)
            .send()
            .await?;
        let res = check(res).await?;
        let raw: Vec<serde_json::Value> = res.json().await?;
        Ok(raw
            .into_iter()
            .map(|v| {
                if v.get("id").is_some() {
                    serde_json::from_value(v).map_err(|e| {
                        Problem::new(herald_proto::ErrorCode::Internal, 500, e.to_string())
                    })
                } else {
                    Err(serde_json::from_value(v).unwrap_or_else(|e| {
                        Problem::new(herald_proto::ErrorCode::Internal, 500, e.to_string())
                    }))
                }
            })
            .collect())
    }

    /// Reads messages of one or more topics or patterns (a short poll, or a long poll
    /// when `wait` is set).
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// use herald_client::ReadOptions;
    /// let page = client.read(&["orders.*"], ReadOptions::after("earliest").limit(50)).await?;
    /// for m in &page.messages { println!("{}", m.id); }
    /// let next_page = client.read(&["orders.*"], ReadOptions::after(page.next)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn read(&self, patterns: &[&str], opts: ReadOptions) -> Result<ReadResponse, Error> {
        if patterns.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "at least one topic or pattern is required",
            ));
        }
        let mut query: Vec<(&str, String)> =
            patterns.iter().map(|p| ("topic", p.to_string())).collect();
        if let Some(a) = &opts.after {
            query.push(("after", a.clone()));
        }
        if let Some(l) = opts.limit {
            query.push(("limit", l.to_string()));
        }
        let mut req = self.http.get(self.url("/v1/messages"));
        if let Some(w) = opts.wait {
            query.push(("wait", format!("{}", w.as_secs_f64())));
            req = req.timeout(w + Duration::from_secs(15));
        } else {
            req = req.timeout(Duration::from_secs(30));
        }
        let res = check(req.query(&query).send().await?).await?;
        Ok(res.json().await?)
    }

    /// Follows a topic or pattern as a `Stream` of [`crate::Event`]s; see
    /// [`SubscribeOptions`] for the transport and start position.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) {
    /// use futures_util::StreamExt;
    /// use herald_client::{SubscribeOptions, Via};
    /// let mut sub = client.subscribe("orders.>", SubscribeOptions::new(Via::LongPoll));
    /// while let Some(Ok(event)) = sub.next().await {
    ///     println!("{event:?}");
    /// }
    /// # }
    /// ```
    pub fn subscribe(&self, pattern: &str, opts: SubscribeOptions) -> Subscription {
        Subscription::start(self.clone(), pattern.to_owned(), opts)
    }
}

//! Request-reply: [`Client::call`] (HTTP) and [`Client::serve`] (a responder over gRPC).

use crate::client::{Client, check};
use crate::error::{Error, ErrorKind};
use bytes::Bytes;
use herald_proto::grpc::{self, serve_event, serve_request};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Options of a call.
///
/// ```
/// use std::time::Duration;
/// let opts = herald_client::CallOptions::json().timeout(Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// The request's content type (`application/octet-stream` when absent).
    pub content_type: Option<String>,
    /// How long to wait for the reply (the server's default when absent).
    pub timeout: Option<Duration>,
}

impl CallOptions {
    /// A JSON request.
    pub fn json() -> Self {
        CallOptions {
            content_type: Some("application/json".into()),
            timeout: None,
        }
    }

    /// Sets the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// A responder's reply (or what a serve handler returns).
///
/// ```
/// let ok = herald_client::Reply::json(r#"{"total":42}"#);
/// assert_eq!(ok.status, 200);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP semantics: 200 unless the responder said otherwise.
    pub status: u16,
    /// The reply's content type.
    pub content_type: String,
    /// The reply body.
    pub data: Bytes,
}

impl Reply {
    /// A 200 reply with a JSON body.
    pub fn json(data: impl Into<Bytes>) -> Self {
        Reply {
            status: 200,
            content_type: "application/json".into(),
            data: data.into(),
        }
    }

    /// A reply with a status and a text body.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            data: Bytes::from(text.into()),
        }
    }
}

/// A request handed to a [`Client::serve`] handler.
#[derive(Debug, Clone)]
pub struct Request {
    /// The service called.
    pub service: String,
    /// The request's content type.
    pub content_type: String,
    /// The request body.
    pub data: Bytes,
}

impl Client {
    /// Calls `service`: the request goes to one of its responders and their reply comes
    /// back (whatever its status). Errors are herald's own: no responder (503), timeout
    /// (504), responders gone (502), bad input.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// use herald_client::CallOptions;
    /// let reply = client.call("pricing.quote", r#"{"sku":"a1"}"#, CallOptions::json()).await?;
    /// println!("{} {}", reply.status, String::from_utf8_lossy(&reply.data));
    /// # Ok(()) }
    /// ```
    pub async fn call(
        &self,
        service: &str,
        data: impl Into<Bytes>,
        opts: CallOptions,
    ) -> Result<Reply, Error> {
        let mut req = self
            .http
            .post(self.url(&format!("/v1/rpc/{service}")))
            .body(data.into());
        if let Some(ct) = &opts.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = opts.timeout {
            req = req
                .query(&[("timeout", t.as_secs_f64().to_string())])
                .timeout(t + Duration::from_secs(5));
        }
        let res = req.send().await?;
        // Replies carry `herald-replied`; anything else is herald's own answer.
        let res = if res.headers().contains_key("herald-replied") {
            res
        } else {
            check(res).await?
        };
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok(Reply {
            status,
            content_type,
            data: res.bytes().await?,
        })
    }

    /// Serves `service` until an error retrying cannot fix (or until the future is
    /// dropped): each request is passed to `handler` (concurrently) and its reply sent
    /// back. Connects over gRPC and reconnects with backoff; requests that were in hand
    /// when a connection broke are retried by their callers on other responders.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// use herald_client::Reply;
    /// client.serve("echo", |req| async move {
    ///     Reply { status: 200, content_type: req.content_type, data: req.data }
    /// }).await
    /// # }
    /// ```
    pub async fn serve<H, F>(&self, service: &str, handler: H) -> Result<(), Error>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let mut backoff = Duration::from_millis(100);
        loop {
            let began = std::time::Instant::now();
            match self.serve_once(service, handler.clone()).await {
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => tracing::debug!(error = %e, "serve connection ended; reconnecting"),
                Ok(()) => tracing::debug!("serve stream ended; reconnecting"),
            }
            if began.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            tokio::time::sleep(crate::subscribe::jitter(backoff)).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn serve_once<H, F>(&self, service: &str, handler: Arc<H>) -> Result<(), Error>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let mut client = self.grpc()?;
        let (tx, rx) = tokio::sync::mpsc::channel::<grpc::ServeRequest>(256);
        let start = serve_request::Request::Start(grpc::ServeStart {
            service: service.to_owned(),
        });
        tx.send(grpc::ServeRequest {
            request: Some(start),
        })
        .await
        .map_err(|_| Error::new(ErrorKind::Connect, "serve channel closed"))?;
        let outbound =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        let mut inbound = client
            .serve(self.grpc_request(outbound))
            .await?
            .into_inner();
        while let Some(ev) = inbound.message().await? {
            let Some(serve_event::Event::Request(r)) = ev.event else {
                continue;
            };
            let (tx, handler) = (tx.clone(), handler.clone());
            tokio::spawn(async move {
                let reply = handler(Request {
                    service: r.service,
                    content_type: r.content_type,
                    data: r.data,
                })
                .await;
                let reply = serve_request::Request::Reply(grpc::Reply {
                    request_id: r.request_id,
                    status: u32::from(reply.status),
                    content_type: reply.content_type,
                    data: reply.data,
                });
                let _ = tx
                    .send(grpc::ServeRequest {
                        request: Some(reply),
                    })
                    .await;
            });
        }
        Ok(())
    }
}

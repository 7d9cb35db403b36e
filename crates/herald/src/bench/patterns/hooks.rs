//! The webhook pattern's clients: one endpoint per client (`/hook/{i}`) on a local HTTP
//! receiver in this process. The server is the HTTP client here, so requests, bytes and
//! connections are counted on the receiver's accepted sockets.

use super::tally::{Counted, Receiver, Tally};
use crate::bench::load::RawHttp;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

struct Endpoints {
    clients: Vec<Mutex<Receiver>>,
    tally: Arc<Tally>,
}

/// Starts the receiver for `clients` endpoints; returns its address and accept task.
pub async fn listen(
    clients: usize,
    tally: Arc<Tally>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let endpoints = Arc::new(Endpoints {
        clients: (0..clients)
            .map(|_| Mutex::new(Receiver::default()))
            .collect(),
        tally,
    });
    let accept = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let io = TokioIo::new(Counted::new(s, endpoints.tally.clone()));
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| deliver(req, endpoints.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    Ok((addr, accept))
}

/// Records one delivery and answers 204.
async fn deliver(
    req: Request<Incoming>,
    endpoints: Arc<Endpoints>,
) -> Result<Response<Empty<Bytes>>, hyper::Error> {
    let endpoint = req
        .uri()
        .path()
        .strip_prefix("/hook/")
        .and_then(|i| i.parse::<usize>().ok());
    endpoints.tally.request();
    let body = req.into_body().collect().await?.to_bytes();
    if let Some(c) = endpoint.and_then(|i| endpoints.clients.get(i))
        && let Ok(mut c) = c.lock()
    {
        c.got(&endpoints.tally, &body);
    }
    let mut res = Response::new(Empty::new());
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(res)
}

/// Registers one webhook per endpoint on `topic` (from its tail); returns their ids.
pub async fn register(
    server: SocketAddr,
    topic: &str,
    sink: SocketAddr,
    clients: usize,
) -> anyhow::Result<Vec<String>> {
    let mut conn = RawHttp::connect(server).await?;
    let mut ids = Vec::with_capacity(clients);
    for i in 0..clients {
        let body = serde_json::json!({"pattern": topic, "url": format!("http://{sink}/hook/{i}")});
        let req = conn.encode(
            "POST",
            "/v1/webhooks",
            "application/json",
            body.to_string().as_bytes(),
        );
        let res = conn.roundtrip(&req).await.context(
            "creating a webhook (a running server needs webhooks.allow_private_networks)",
        )?;
        let v: serde_json::Value = serde_json::from_slice(res)?;
        if let Some(id) = v["id"].as_str() {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// Deletes the webhooks `register` made (on a server that outlives the run).
pub async fn unregister(base: &str, ids: &[String]) -> anyhow::Result<()> {
    // herald's one TLS crypto provider (already installed when run from `main`).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().build()?;
    for id in ids {
        http.delete(format!("{base}/v1/webhooks/{id}"))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(())
}

//! The SDK falls back from WebSocket to SSE to long polling when a transport is refused.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use herald_client::{Event, PublishOptions, SubscribeOptions, Via};
use herald_testkit::TestServer;
use std::time::Duration;

/// Serves 404 on the refused paths and forwards everything else to `upstream`.
async fn front(upstream: String, refused: &'static [&'static str]) -> String {
    let http = herald_testkit::http_client();
    let app = Router::new().fallback(move |req: Request| {
        let http = http.clone();
        let upstream = upstream.clone();
        async move {
            let path = req.uri().path().to_owned();
            if refused.iter().any(|r| path.starts_with(r)) {
                return StatusCode::NOT_FOUND.into_response();
            }
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let mut out = http.request(req.method().clone(), format!("{upstream}{pq}"));
            for (k, v) in req.headers() {
                if k != "host" {
                    out = out.header(k, v);
                }
            }
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            match out.body(body).send().await {
                Ok(res) => {
                    let mut b = Response::builder().status(res.status());
                    for (k, v) in res.headers() {
                        b = b.header(k, v);
                    }
                    b.body(Body::from_stream(res.bytes_stream()))
                        .unwrap_or_default()
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn first_message(sub: &mut herald_client::Subscription) -> String {
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(Ok(Event::Message(m)))) => m.id,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_falls_back_to_sse_then_to_long_poll() {
    let s = TestServer::start().await;
    let c = s.client();
    let p = c
        .publish("fb", "1", PublishOptions::json())
        .await
        .expect("publish");

    let no_ws = herald_client::Client::new(&front(s.url(), &["/v1/ws"]).await).expect("client");
    let mut sub = no_ws.subscribe("fb", SubscribeOptions::new(Via::Ws).after("earliest"));
    assert_eq!(first_message(&mut sub).await, p.id);
    assert_eq!(sub.via(), Via::Sse);

    let no_push = herald_client::Client::new(&front(s.url(), &["/v1/ws", "/v1/events"]).await)
        .expect("client");
    let mut sub = no_push.subscribe("fb", SubscribeOptions::new(Via::Ws).after("earliest"));
    assert_eq!(first_message(&mut sub).await, p.id);
    assert_eq!(sub.via(), Via::LongPoll);

    let mut strict = no_ws.subscribe("fb", SubscribeOptions::new(Via::Ws).fallback(false));
    match tokio::time::timeout(Duration::from_secs(10), strict.next()).await {
        Ok(Some(Err(e))) => assert_eq!(e.kind(), herald_client::ErrorKind::Status(404)),
        other => panic!("expected the refusal as an error, got {other:?}"),
    }
}

//! Request-reply: HTTP, WebSocket and gRPC callers; WebSocket and gRPC responders.

use crate::grpc::{client as grpc_client, outbound};
use crate::ws::{Ws, connect, recv, send};
use herald_client::{CallOptions, Reply};
use herald_proto::grpc::{self, serve_event, serve_request};
use herald_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// Waits until `n` responders serve `service`.
async fn responders(s: &TestServer, service: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.server().hub().responders(service) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "responders never came"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A WebSocket responder of `service`.
async fn ws_responder(s: &TestServer, service: &str) -> Ws {
    let mut ws = connect(s, "/v1/ws", &[]).await.expect("connect");
    send(&mut ws, json!({"op":"serve","ref":"r","service":service})).await;
    let ok = recv(&mut ws).await;
    assert_eq!(
        (ok["op"].as_str(), ok["ref"].as_str()),
        (Some("serving"), Some("r"))
    );
    ws
}

/// Answers the next request on `ws` with `reply(request)`.
async fn answer(ws: &mut Ws, reply: impl FnOnce(&Value) -> Value) -> Value {
    let req = recv(ws).await;
    assert_eq!(req["op"], "request");
    let mut out = reply(&req);
    out["op"] = json!("reply");
    out["request_id"] = req["request_id"].clone();
    send(ws, out).await;
    req
}

async fn http_call(s: &TestServer, service: &str, query: &str, body: &str) -> reqwest::Response {
    s.http()
        .post(s.at(&format!("/v1/rpc/{service}{query}")))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_across_websocket_and_grpc_responders() {
    let s = TestServer::start().await;
    let mut a = ws_responder(&s, "echo").await;
    let mut b = ws_responder(&s, "echo").await;
    let c = s.client();
    let grpc_side = tokio::spawn(async move {
        c.serve("echo", |req| async move {
            Reply {
                status: 200,
                content_type: req.content_type,
                data: format!("grpc:{}", String::from_utf8_lossy(&req.data)).into(),
            }
        })
        .await
    });
    responders(&s, "echo", 3).await;
    let mut bodies = Vec::new();
    for i in 0..6 {
        let mut call = tokio::spawn({
            let (http, url) = (s.http(), s.at("/v1/rpc/echo"));
            async move {
                http.post(url)
                    .header("content-type", "application/json")
                    .body(format!("{{\"n\":{i}}}"))
                    .send()
                    .await
                    .expect("call")
            }
        });
        // Whichever WS responder gets it answers; the gRPC one answers by itself.
        let res = tokio::select! {
            r = answer(&mut a, |req| json!({"data": {"ws":"a","got":req["data"]}})) => {
                assert_eq!(r["service"], "echo");
                call.await
            }
            _ = answer(&mut b, |req| json!({"data": {"ws":"b","got":req["data"]}, "status": 201})) => {
                call.await
            }
            res = &mut call => res,
        }
        .expect("join");
        let status = res.status().as_u16();
        let body = res.text().await.expect("body");
        bodies.push((i, status, body));
    }
    let by = |who: &str| bodies.iter().filter(|(_, _, b)| b.contains(who)).count();
    assert_eq!(
        (by("\"a\""), by("\"b\""), by("grpc:")),
        (2, 2, 2),
        "round-robin: {bodies:?}"
    );
    for (i, status, body) in &bodies {
        if body.contains("\"b\"") {
            assert_eq!(*status, 201, "the responder's status is the response's");
        } else {
            assert_eq!(*status, 200);
        }
        if body.starts_with("grpc:") {
            assert_eq!(body, &format!("grpc:{{\"n\":{i}}}"));
        } else {
            let v: Value = serde_json::from_str(body).expect("json");
            assert_eq!(v["got"]["n"], *i, "each reply belongs to its call");
        }
    }
    grpc_side.abort();
}

#[tokio::test]
async fn no_responder_timeout_and_bad_input() {
    let s = TestServer::start().await;
    let res = http_call(&s, "nobody", "", "{}").await;
    assert_eq!(res.status(), 503);
    let p: Value = res.json().await.expect("problem");
    assert_eq!(p["code"], "no_responder");

    let mut slow = ws_responder(&s, "slow").await;
    let started = tokio::time::Instant::now();
    let res = http_call(&s, "slow", "?timeout=0.3", "{}").await;
    assert_eq!(res.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    let p: Value = res.json().await.expect("problem");
    assert_eq!(p["code"], "timeout");
    // A late reply is dropped quietly; the responder's connection is fine.
    let req = recv(&mut slow).await;
    send(
        &mut slow,
        json!({"op":"reply","request_id":req["request_id"],"data":1}),
    )
    .await;
    send(&mut slow, json!({"op":"ping","ref":"p"})).await;
    assert_eq!(recv(&mut slow).await["op"], "pong");

    for (query, code) in [
        ("?timeout=abc", "invalid_parameter"),
        ("?timeout=0", "invalid_parameter"),
        ("?timeout=9999", "invalid_parameter"),
    ] {
        let res = http_call(&s, "slow", query, "{}").await;
        assert_eq!(res.status(), 400, "{query}");
        let p: Value = res.json().await.expect("problem");
        assert_eq!(p["code"], code);
    }
    let res = http_call(&s, "bad..name", "", "{}").await;
    assert_eq!(res.status(), 400);

    // Replies the responder gets wrong: error frames, and the connection stays.
    send(&mut slow, json!({"op":"reply","request_id":12345,"data":1})).await;
    assert_eq!(recv(&mut slow).await["code"], "not_found");
    let call = tokio::spawn({
        let (http, url) = (s.http(), s.at("/v1/rpc/slow"));
        async move { http.post(url).body("x").send().await.expect("call") }
    });
    let req = recv(&mut slow).await;
    send(
        &mut slow,
        json!({"op":"reply","request_id":req["request_id"],"status":99,"data":1}),
    )
    .await;
    assert_eq!(recv(&mut slow).await["code"], "invalid_frame");
    send(
        &mut slow,
        json!({"op":"reply","request_id":req["request_id"],"status":404,"content_type":"text/plain","data":"nope"}),
    )
    .await;
    let res = call.await.expect("join");
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["herald-replied"], "true");
    assert_eq!(res.text().await.expect("body"), "nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_that_dies_mid_call_means_a_retry_or_502() {
    let s = TestServer::start().await;
    let mut doomed = ws_responder(&s, "flaky").await;
    let mut good = ws_responder(&s, "flaky").await;
    responders(&s, "flaky", 2).await;
    // Whichever gets the first request dies with it in hand; the other answers.
    let call = tokio::spawn({
        let (http, url) = (s.http(), s.at("/v1/rpc/flaky"));
        async move { http.post(url).body("hi").send().await.expect("call") }
    });
    tokio::select! {
        req = recv(&mut doomed) => {
            assert_eq!(req["op"], "request");
            drop(doomed);
            answer(&mut good, |_| json!({"data":"from good"})).await;
        }
        req = recv(&mut good) => {
            assert_eq!(req["op"], "request");
            drop(good);
            good = doomed;
            answer(&mut good, |_| json!({"data":"from good"})).await;
        }
    }
    let res = call.await.expect("join");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "\"from good\"");

    // The last one dies too: 502, not a hang.
    responders(&s, "flaky", 1).await;
    let call = tokio::spawn({
        let (http, url) = (s.http(), s.at("/v1/rpc/flaky?timeout=30"));
        async move { http.post(url).body("hi").send().await.expect("call") }
    });
    let req = recv(&mut good).await;
    assert_eq!(req["op"], "request");
    drop(good);
    let res = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("answered, not hung")
        .expect("join");
    assert_eq!(res.status(), 502);
    let p: Value = res.json().await.expect("problem");
    assert_eq!(p["code"], "responder_gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_and_concurrent_calls_correlate() {
    let s = TestServer::start().await;
    let c = s.client();
    let server_side = tokio::spawn(async move {
        c.serve("rev", |req| async move {
            // Reply out of order on purpose.
            let delay = req.data.len() as u64 % 7;
            tokio::time::sleep(Duration::from_millis(delay * 5)).await;
            let mut data = req.data.to_vec();
            data.reverse();
            Reply {
                status: 200,
                content_type: req.content_type,
                data: data.into(),
            }
        })
        .await
    });
    responders(&s, "rev", 1).await;
    let c = s.client();
    let calls = (0..50).map(|i| {
        let c = c.clone();
        async move {
            let body = format!("call-{i}-{}", "x".repeat(i));
            let reply = c
                .call("rev", body.clone(), CallOptions::default())
                .await
                .expect("call");
            let want: String = body.chars().rev().collect();
            assert_eq!(String::from_utf8_lossy(&reply.data), want, "call {i}");
        }
    });
    futures_util::future::join_all(calls).await;

    // Nearly 1 MiB of binary through HTTP → gRPC responder → HTTP.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let reply = c
        .call(
            "rev",
            big.clone(),
            CallOptions {
                content_type: Some("application/octet-stream".into()),
                timeout: Some(Duration::from_secs(20)),
            },
        )
        .await
        .expect("big call");
    let mut want = big.clone();
    want.reverse();
    assert_eq!(reply.data.len(), want.len());
    assert!(reply.data == want);
    // Over the payload limit: refused before any responder sees it.
    let too_big = vec![0u8; 2 * 1024 * 1024];
    let e = c
        .call("rev", too_big, CallOptions::default())
        .await
        .expect_err("too large");
    assert_eq!(e.code().map(|c| c.as_str()), Some("payload_too_large"));
    server_side.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_grpc_callers() {
    let s = TestServer::start().await;
    // A gRPC responder written against the generated stub.
    let mut g = grpc_client(&s).await;
    let (tx, rx) = mpsc::channel(16);
    tx.send(grpc::ServeRequest {
        request: Some(serve_request::Request::Start(grpc::ServeStart {
            service: "math.double".into(),
        })),
    })
    .await
    .expect("send");
    let mut requests = g.serve(outbound(rx)).await.expect("serve").into_inner();
    tokio::spawn(async move {
        while let Ok(Some(ev)) = requests.message().await {
            let Some(serve_event::Event::Request(r)) = ev.event else {
                continue;
            };
            let n: i64 = serde_json::from_slice(&r.data).unwrap_or(0);
            let reply = serve_request::Request::Reply(grpc::Reply {
                request_id: r.request_id,
                status: 0,
                content_type: "application/json".into(),
                data: (n * 2).to_string().into(),
            });
            let _ = tx
                .send(grpc::ServeRequest {
                    request: Some(reply),
                })
                .await;
        }
    });
    responders(&s, "math.double", 1).await;

    let r = g
        .call(grpc::CallRequest {
            service: "math.double".into(),
            data: "21".into(),
            content_type: "application/json".into(),
            timeout_ms: 5000,
        })
        .await
        .expect("gRPC call")
        .into_inner();
    assert_eq!((r.status, &r.data[..]), (200, &b"42"[..]));
    let none = g
        .call(grpc::CallRequest {
            service: "nobody".into(),
            ..Default::default()
        })
        .await
        .expect_err("no responder");
    assert_eq!(none.code(), tonic::Code::Unavailable);
    assert_eq!(
        none.metadata()
            .get("herald-code")
            .and_then(|v| v.to_str().ok()),
        Some("no_responder")
    );

    let mut ws = connect(&s, "/v1/ws", &[]).await.expect("connect");
    send(
        &mut ws,
        json!({"op":"call","ref":"c1","service":"math.double","data":5}),
    )
    .await;
    let reply = recv(&mut ws).await;
    assert_eq!(
        (
            reply["op"].as_str(),
            reply["ref"].as_str(),
            reply["status"].as_u64()
        ),
        (Some("reply"), Some("c1"), Some(200))
    );
    assert_eq!(reply["data"], 10);
    send(
        &mut ws,
        json!({"op":"call","ref":"c2","service":"nobody","data":5}),
    )
    .await;
    let e = recv(&mut ws).await;
    assert_eq!(
        (e["op"].as_str(), e["code"].as_str()),
        (Some("error"), Some("no_responder"))
    );
}

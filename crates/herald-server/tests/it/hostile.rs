//! Hostile input: oversize bodies on every route that takes one, with and without a
//! Content-Length; each answers 413 `payload_too_large` and the server stays healthy.

use herald_testkit::TestServer;
use serde_json::Value;

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/topics/h/messages"),
    ("POST", "/v1/messages"),
    ("PUT", "/v1/topics/h"),
    ("PUT", "/v1/topics/h/groups/g"),
    ("POST", "/v1/topics/h/groups/g/claim"),
    ("POST", "/v1/topics/h/groups/g/ack"),
    ("POST", "/v1/topics/h/groups/g/nack"),
    ("POST", "/v1/topics/h/groups/g/extend"),
    ("POST", "/v1/jobs/q"),
    ("POST", "/v1/jobs/q/some-id/progress"),
    ("POST", "/v1/jobs/q/some-id/complete"),
    ("POST", "/v1/jobs/q/some-id/fail"),
    ("POST", "/v1/webhooks"),
    ("POST", "/v1/rpc/svc"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_are_refused_on_every_route() {
    let s = TestServer::start_with(|c| {
        c.limits.max_payload_bytes = 1024;
        c.limits.max_body_bytes = 4096;
    })
    .await;
    let http = s.http();
    // Larger than every route's limit (the largest fixed one is 1 MiB).
    let big = vec![b' '; 2 * 1024 * 1024 + 1];
    for (method, path) in ROUTES {
        for chunked in [false, true] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let body = if chunked {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
                reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
            } else {
                reqwest::Body::from(big.clone())
            };
            let res = http
                .request(method, s.at(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request");
            let status = res.status().as_u16();
            let problem: Value = res.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, problem["code"].as_str()),
                (413, Some("payload_too_large")),
                "{path} (chunked: {chunked}): {problem}"
            );
        }
    }
    let (status, _) = crate::get(&http, &s.url(), "/healthz").await;
    assert_eq!(status, 200);
    crate::publish(&http, &s.url(), "h", "1").await;
}

/// Found by the property tests: a non-ASCII content type panicked the connection task.
#[tokio::test]
async fn non_ascii_content_types_are_refused_not_fatal() {
    use crate::ws::{connect, recv, send};
    let s = TestServer::start().await;
    let mut ws = connect(&s, "/v1/ws", &[]).await.expect("ws");
    send(
        &mut ws,
        serde_json::json!({"op":"publish","ref":1,"topic":"t","data":"x","content_type":"ééé+json"}),
    )
    .await;
    let answer = recv(&mut ws).await;
    assert_eq!(answer["op"], "error", "{answer}");
    send(&mut ws, serde_json::json!({"op":"ping","ref":2})).await;
    assert_eq!(recv(&mut ws).await["op"], "pong", "the connection stays");
    let res = s
        .http()
        .post(s.at("/v1/messages"))
        .json(&serde_json::json!([{"topic":"t","data":"x","content_type":"ééé"}]))
        .send()
        .await
        .expect("batch");
    let body = res.text().await.expect("body");
    assert!(body.contains("\"code\""), "the item is refused: {body}");
}

/// Found by the property tests: deeply nested MessagePack overflowed the stack.
#[tokio::test]
async fn deeply_nested_msgpack_frames_are_refused() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let s = TestServer::start().await;
    let mut ws = crate::ws::connect(
        &s,
        "/v1/ws",
        &[("sec-websocket-protocol", "herald.v1.msgpack")],
    )
    .await
    .expect("ws");
    // {"op":"ping","ref":[[[…1…]]]} nested 5,000 deep.
    let mut frame = vec![0x82, 0xa2, b'o', b'p', 0xa4, b'p', b'i', b'n', b'g'];
    frame.extend_from_slice(&[0xa3, b'r', b'e', b'f']);
    frame.extend(std::iter::repeat_n(0x91, 5000));
    frame.push(0x01);
    ws.send(Message::Binary(frame.into())).await.expect("send");
    let answer = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("an answer in time")
            .expect("open")
            .expect("frame")
        {
            Message::Binary(b) => break rmp_serde::from_slice::<Value>(&b).expect("msgpack"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(answer["op"], "error", "{answer}");
    let (status, _) = crate::get(&s.http(), &s.url(), "/healthz").await;
    assert_eq!(status, 200);
}

/// Found by schemathesis: a message published to a job's status topic made the job
/// unreadable (500). Status topics are written by herald only.
#[tokio::test]
async fn job_status_topics_cannot_be_forged() {
    let s = TestServer::start().await;
    let (status, job) = crate::post_json(&s, "/v1/jobs/q", &serde_json::json!({"n": 1})).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id");
    let res = s
        .http()
        .post(s.at(&format!("/v1/topics/jobs.q.{id}/messages")))
        .header("content-type", "application/json")
        .body(r#"{"x":1}"#)
        .send()
        .await
        .expect("publish");
    assert_eq!(res.status(), 403);
    let (status, doc) = crate::get(&s.http(), &s.url(), &format!("/v1/jobs/q/{id}")).await;
    assert_eq!((status, doc["status"].as_str()), (200, Some("queued")));
}

/// Found by schemathesis: a group on a topic near the name limit has no room for the
/// default dead-letter topic; the answer says what to do.
#[tokio::test]
async fn long_topics_need_an_explicit_dead_letter_topic() {
    let s = TestServer::start().await;
    let topic = [
        "s".repeat(64),
        "s".repeat(64),
        "s".repeat(64),
        "s".repeat(4),
    ]
    .join(".");
    assert_eq!(topic.len(), 199);
    let (status, problem) = crate::post_json(
        &s,
        &format!("/v1/topics/{topic}/groups/g/claim"),
        &serde_json::json!({"max": 1}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("dead_letter")),
        "{problem}"
    );
    let res = s
        .http()
        .put(s.at(&format!("/v1/topics/{topic}/groups/g")))
        .json(&serde_json::json!({"dead_letter": "long.dlq"}))
        .send()
        .await
        .expect("configure");
    assert_eq!(res.status(), 200);
    let (status, _) = crate::post_json(
        &s,
        &format!("/v1/topics/{topic}/groups/g/claim"),
        &serde_json::json!({"max": 1}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn subscriptions_per_websocket_are_bounded() {
    use crate::ws::{connect, recv, send};
    let s = TestServer::start_with(|c| c.websocket.max_subscriptions = 2).await;
    let mut ws = connect(&s, "/v1/ws", &[]).await.expect("ws");
    let mut answers = Vec::new();
    for i in 0..3 {
        send(
            &mut ws,
            serde_json::json!({"op":"subscribe","ref":i,"topic":format!("cap.{i}")}),
        )
        .await;
        let f = recv(&mut ws).await;
        answers.push(
            f["code"]
                .as_str()
                .or(f["op"].as_str())
                .unwrap_or("?")
                .to_owned(),
        );
    }
    assert_eq!(answers, ["subscribed", "subscribed", "limit_reached"]);
    send(&mut ws, serde_json::json!({"op":"ping","ref":"p"})).await;
    assert_eq!(recv(&mut ws).await["op"], "pong", "the connection stays");
}

//! WebSocket frames, subprotocols, limits and closes, with a raw tokio-tungstenite client.

use futures_util::{SinkExt, StreamExt};
use herald_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> Result<Ws, WsError> {
    let mut req = format!("ws://{}{path}", s.addr())
        .into_client_request()
        .expect("request");
    for (k, v) in headers {
        let name = axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
        req.headers_mut().insert(name, v.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON text frame (skipping pings).
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("json frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads until a close frame; returns its code and reason.
pub async fn closed(ws: &mut Ws) -> (u16, String, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(Some(f)))) => {
                return (u16::from(f.code), f.reason.to_string(), before);
            }
            Some(Ok(Message::Text(t))) => before.push(serde_json::from_str(&t).expect("json")),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn subscribe_publish_ping_unsubscribe() {
    let s = TestServer::start().await;
    let mut ws = connect(&s, "/v1/ws", &[]).await.expect("connect");
    send(
        &mut ws,
        json!({"op":"subscribe","ref":"a","topic":"ws.*","after":"latest"}),
    )
    .await;
    let sub = recv(&mut ws).await;
    assert_eq!(
        (sub["op"].as_str(), sub["ref"].as_str()),
        (Some("subscribed"), Some("a"))
    );
    let sid = sub["sub"].as_str().expect("sub").to_owned();
    send(
        &mut ws,
        json!({"op":"subscribe","ref":7,"topic":["other","ws.b"]}),
    )
    .await;
    let sub2 = recv(&mut ws).await;
    assert_eq!(sub2["ref"], 7);
    let sid2 = sub2["sub"].as_str().expect("sub").to_owned();
    send(
        &mut ws,
        json!({"op":"publish","ref":"p1","topic":"ws.b","data":{"x":1},"event":"made"}),
    )
    .await;
    let mut frames = [
        recv(&mut ws).await,
        recv(&mut ws).await,
        recv(&mut ws).await,
    ];
    frames.sort_by_key(|f| f["op"].as_str().map(str::to_owned));
    let [m1, m2, published] = [frames[0].clone(), frames[1].clone(), frames[2].clone()];
    assert_eq!(published["op"], "published");
    assert_eq!(published["ref"], "p1");
    let id = published["id"].as_str().expect("id");
    let subs: Vec<&str> = [&m1, &m2]
        .iter()
        .map(|m| m["sub"].as_str().expect("sub"))
        .collect();
    assert!(subs.contains(&sid.as_str()) && subs.contains(&sid2.as_str()));
    for m in [&m1, &m2] {
        assert_eq!(m["op"], "message");
        assert_eq!(m["message"]["id"], id);
        assert_eq!(m["message"]["data"], json!({"x": 1}));
        assert_eq!(m["message"]["event"], "made");
    }
    send(&mut ws, json!({"op":"ping","ref":"pp"})).await;
    assert_eq!(recv(&mut ws).await, json!({"op":"pong","ref":"pp"}));
    send(&mut ws, json!({"op":"unsubscribe","ref":"u","sub":sid})).await;
    let un = recv(&mut ws).await;
    assert_eq!(
        (un["op"].as_str(), un["cursor"].as_str()),
        (Some("unsubscribed"), Some(id))
    );
    send(
        &mut ws,
        json!({"op":"publish","topic":"ws.a","data":"t","content_type":"text/plain"}),
    )
    .await;
    let next = recv(&mut ws).await;
    assert_eq!(
        next["op"], "published",
        "no message for the dropped subscription: {next}"
    );
    send(&mut ws, json!({"op":"unsubscribe","ref":"u2","sub":sid})).await;
    let err = recv(&mut ws).await;
    assert_eq!(
        (
            err["op"].as_str(),
            err["code"].as_str(),
            err["ref"].as_str()
        ),
        (Some("error"), Some("not_found"), Some("u2"))
    );
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_survives() {
    let s = TestServer::start_with(|c| c.limits.max_payload_bytes = 1000).await;
    let mut ws = connect(&s, "/v1/ws", &[]).await.expect("connect");
    ws.send(Message::Text("{not json".into()))
        .await
        .expect("send");
    assert_eq!(recv(&mut ws).await["code"], "invalid_frame");
    send(&mut ws, json!({"op":"dance","ref":"d"})).await;
    let e = recv(&mut ws).await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("unknown_op"), Some("d"))
    );
    send(&mut ws, json!({"op":"subscribe","ref":"s","topic":"a..b"})).await;
    assert_eq!(recv(&mut ws).await["code"], "invalid_pattern");
    send(
        &mut ws,
        json!({"op":"subscribe","ref":"s","topic":"a","after":"nope"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "invalid_cursor");
    send(
        &mut ws,
        json!({"op":"publish","ref":"p","topic":"bad topic","data":1}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "invalid_topic");
    send(&mut ws, json!({"op":"publish","ref":"p","topic":"t","data":"x".repeat(1500),"content_type":"text/plain"})).await;
    assert_eq!(recv(&mut ws).await["code"], "payload_too_large");
    send(
        &mut ws,
        json!({"op":"publish","ref":"p","topic":"t","data":"x","event":"reset"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "invalid_event");
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send");
    assert_eq!(recv(&mut ws).await["code"], "invalid_frame");
    send(&mut ws, json!({"op":"ping","ref":1})).await;
    assert_eq!(
        recv(&mut ws).await["op"],
        "pong",
        "still serving after bad frames"
    );
    // A frame beyond the size limit closes with 1009; the server stays healthy.
    let huge = "y".repeat(200 * 1024);
    send(
        &mut ws,
        json!({"op":"publish","topic":"t","data":huge,"content_type":"text/plain"}),
    )
    .await;
    let (code, _, _) = closed(&mut ws).await;
    assert_eq!(code, 1009);
    let mut again = connect(&s, "/v1/ws", &[]).await.expect("reconnect");
    send(&mut again, json!({"op":"ping"})).await;
    assert_eq!(recv(&mut again).await["op"], "pong");
    let ok = s.http().get(s.at("/healthz")).send().await.expect("health");
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn msgpack_subprotocol_speaks_the_same_shapes() {
    let s = TestServer::start().await;
    let mut ws = connect(
        &s,
        "/v1/ws",
        &[("sec-websocket-protocol", "herald.v1.msgpack")],
    )
    .await
    .expect("connect");
    let enc = |v: Value| Message::Binary(rmp_serde::to_vec_named(&v).expect("encode").into());
    let next = async |ws: &mut Ws| -> Value {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("frame")
                .expect("open")
                .expect("ok")
            {
                Message::Binary(b) => return rmp_serde::from_slice(&b).expect("msgpack frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected binary, got {other:?}"),
            }
        }
    };
    ws.send(enc(
        json!({"op":"subscribe","ref":1,"topic":"mp","after":"earliest"}),
    ))
    .await
    .expect("send");
    assert_eq!(next(&mut ws).await["op"], "subscribed");
    ws.send(enc(
        json!({"op":"publish","ref":2,"topic":"mp","data":{"k":[1,2]}}),
    ))
    .await
    .expect("send");
    let mut frames = [next(&mut ws).await, next(&mut ws).await];
    frames.sort_by_key(|f| f["op"].as_str().map(str::to_owned));
    assert_eq!(frames[0]["op"], "message");
    assert_eq!(frames[0]["message"]["data"], json!({"k": [1, 2]}));
    assert_eq!(frames[0]["sub"], "s1");
    assert_eq!(frames[1]["op"], "published");
    ws.send(Message::Binary(vec![0xc1].into()))
        .await
        .expect("send");
    assert_eq!(next(&mut ws).await["code"], "invalid_frame");
    ws.send(Message::Text("{\"op\":\"ping\"}".into()))
        .await
        .expect("send");
    assert_eq!(
        next(&mut ws).await["code"],
        "invalid_frame",
        "text frames are refused on msgpack"
    );
}

#[tokio::test]
async fn origins_outside_the_allow_list_are_refused_before_upgrade() {
    let s = TestServer::start_with(|c| {
        c.websocket.allowed_origins = vec!["https://good.example".into()]
    })
    .await;
    match connect(&s, "/v1/ws", &[("origin", "https://evil.example")]).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert!(
        connect(&s, "/v1/ws", &[("origin", "https://good.example")])
            .await
            .is_ok()
    );
    assert!(
        connect(&s, "/v1/ws", &[]).await.is_ok(),
        "non-browser clients send no Origin"
    );
    let plain = s.http().get(s.at("/v1/ws")).send().await.expect("get");
    assert_eq!(plain.status(), 400, "a plain GET is not an upgrade");
}

#[tokio::test]
async fn receive_only_route_pushes_bare_envelopes() {
    let s = TestServer::start().await;
    let c = s.client();
    let first = c
        .publish("ro", "1", herald_client::PublishOptions::json())
        .await
        .expect("publish");
    let mut ws = connect(&s, "/v1/topics/ro/ws?after=earliest", &[])
        .await
        .expect("connect");
    let m = recv(&mut ws).await;
    assert_eq!(
        (m["id"].as_str(), m["data"].as_i64()),
        (Some(first.id.as_str()), Some(1))
    );
    send(&mut ws, json!({"op":"publish","topic":"ro","data":2})).await;
    c.publish("ro", "3", herald_client::PublishOptions::json())
        .await
        .expect("publish");
    assert_eq!(
        recv(&mut ws).await["data"],
        3,
        "client frames are ignored on the receive-only route"
    );
    let flipped = format!(
        "{}{}",
        if first.id.starts_with('f') { "0" } else { "f" },
        &first.id[1..]
    );
    let mut ws = connect(&s, &format!("/v1/topics/ro/ws?after={flipped}"), &[])
        .await
        .expect("connect");
    assert_eq!(recv(&mut ws).await["reset"]["reason"], "epoch");
    match connect(&s, "/v1/topics/bad..t/ws", &[]).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), 400),
        other => panic!("expected 400, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn shutdown_closes_with_going_away_and_every_cursor() {
    let s = TestServer::start().await;
    let mut ws = connect(&s, "/v1/ws", &[]).await.expect("connect");
    send(&mut ws, json!({"op":"subscribe","topic":"sd"})).await;
    recv(&mut ws).await;
    send(&mut ws, json!({"op":"publish","topic":"sd","data":1})).await;
    let mut id = String::new();
    for _ in 0..2 {
        let f = recv(&mut ws).await;
        if f["op"] == "published" {
            id = f["id"].as_str().expect("id").to_owned();
        }
    }
    let stop = tokio::spawn(s.stop());
    let (code, reason, before) = closed(&mut ws).await;
    stop.await.expect("stopped");
    assert_eq!(code, 1001);
    assert_eq!(reason, format!("shutting_down s1={id}"));
    let closing = before
        .iter()
        .find(|f| f["op"] == "closing")
        .expect("closing frame");
    assert_eq!(closing["cursors"]["s1"], id.as_str());
}

#[tokio::test]
async fn a_peer_that_never_reads_is_closed_without_slowing_others_or_growing_memory() {
    let s = TestServer::start_with(|c| {
        c.websocket.send_timeout_seconds = 2;
        c.subscriptions.buffer_bytes = 256 * 1024;
    })
    .await;
    let mut stuck = connect(&s, "/v1/ws", &[]).await.expect("connect");
    send(&mut stuck, json!({"op":"subscribe","topic":"flood"})).await;
    assert_eq!(recv(&mut stuck).await["op"], "subscribed");
    let c = s.client();
    let mut fast = c.subscribe(
        "flood",
        herald_client::SubscribeOptions::new(herald_client::Via::Ws).fallback(false),
    );
    while s.server().hub().live_stats().listeners < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ~24 MiB through a peer that reads nothing.
    let payload = "z".repeat(64 * 1024);
    let started = tokio::time::Instant::now();
    let mut max_queued = 0;
    for _ in 0..12 {
        let batch: Vec<herald_client::BatchItem> = (0..32)
            .map(|_| herald_client::BatchItem {
                topic: "flood".into(),
                data: serde_json::value::RawValue::from_string(
                    serde_json::to_string(&payload).expect("json"),
                )
                .expect("raw"),
                event: None,
                content_type: Some("text/plain".into()),
                encoding: None,
                idempotency_key: None,
            })
            .collect();
        c.publish_batch(&batch).await.expect("batch");
        max_queued = max_queued.max(s.server().hub().live_stats().queued_bytes);
    }
    let mut got = 0;
    while got < 384 {
        match tokio::time::timeout(Duration::from_secs(20), fast.next())
            .await
            .expect("fast reader keeps up")
        {
            Some(Ok(herald_client::Event::Message(_))) => got += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the stuck peer did not slow the others"
    );
    assert!(
        max_queued <= 2 * 256 * 1024 + 64 * 1024,
        "buffers stayed bounded: {max_queued} bytes queued"
    );
    // The stuck peer is closed as a slow consumer once its writes stay blocked.
    let (code, reason, _) = closed(&mut stuck).await;
    assert_eq!(code, 4008);
    assert!(reason.starts_with("slow_consumer s1="), "{reason}");
}

#[tokio::test]
async fn idle_peers_are_closed() {
    let s = TestServer::start_with(|c| {
        c.websocket.ping_interval_seconds = 1;
        c.websocket.idle_timeout_seconds = 1;
    })
    .await;
    let mut ws = connect(&s, "/v1/ws", &[]).await.expect("connect");
    // Not reading means not answering pings.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, reason, _) = closed(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4000, "idle_timeout"));
}

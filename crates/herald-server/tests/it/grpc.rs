//! The gRPC door with a client generated from `proto/herald/v1/herald.proto` by tonic,
//! plus the standard health and reflection services.

use herald_proto::grpc::herald_client::HeraldClient;
use herald_proto::grpc::{
    self, ConsumeRequest, ConsumeStart, PublishRequest, ReadRequest, Settle, SubscribeRequest,
    consume_event, consume_request, subscribe_event,
};
use herald_testkit::TestServer;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::Channel;

pub async fn client(s: &TestServer) -> HeraldClient<Channel> {
    HeraldClient::connect(s.url()).await.expect("gRPC connect")
}

fn publish(topic: &str, data: &str) -> PublishRequest {
    PublishRequest {
        topic: topic.into(),
        data: data.to_owned().into(),
        content_type: "application/json".into(),
        ..Default::default()
    }
}

/// A client-streaming request body fed from a channel.
pub fn outbound<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

#[tokio::test]
async fn publish_read_and_errors_with_codes() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let a = c
        .publish(publish("g.a", "1"))
        .await
        .expect("publish")
        .into_inner();
    let mut keyed = publish("g.b", "{\"x\":2}");
    keyed.key = Some("k1".into());
    keyed.headers.insert("trace".into(), "t1".into());
    keyed.event = Some("made".into());
    let b = c
        .publish(keyed.clone())
        .await
        .expect("publish")
        .into_inner();
    let again = c.publish(keyed).await.expect("publish again").into_inner();
    assert_eq!((again.id.as_str(), again.duplicate), (b.id.as_str(), true));
    // The same message is visible over HTTP, with the same cursor.
    let (_, http) = crate::get(&s.http(), &s.url(), "/v1/topics/g.b/messages").await;
    assert_eq!(http["messages"][0]["id"], b.id.as_str());
    assert_eq!(http["messages"][0]["headers"]["trace"], "t1");

    let read = c
        .read(ReadRequest {
            patterns: vec!["g.*".into()],
            after: "earliest".into(),
            ..Default::default()
        })
        .await
        .expect("read")
        .into_inner();
    let ids: Vec<&str> = read.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [a.id.as_str(), b.id.as_str()]);
    assert_eq!(read.next, b.id);
    assert_eq!(&read.messages[1].data[..], b"{\"x\":2}");
    assert_eq!(read.messages[1].event.as_deref(), Some("made"));

    // A long poll is answered by the next publish.
    let mut poller = c.clone();
    let next = read.next.clone();
    let parked = tokio::spawn(async move {
        poller
            .read(ReadRequest {
                patterns: vec!["g.a".into()],
                after: next,
                wait_ms: 10_000,
                ..Default::default()
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.publish(publish("g.a", "3")).await.expect("publish");
    let woke = parked.await.expect("join").expect("read").into_inner();
    assert_eq!(&woke.messages[0].data[..], b"3");

    // Errors: the gRPC code, the stable herald code and the problem document.
    let bad = c
        .publish(publish("a..b", "1"))
        .await
        .expect_err("invalid topic");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        bad.metadata()
            .get("herald-code")
            .and_then(|v| v.to_str().ok()),
        Some("invalid_topic")
    );
    let problem: herald_proto::Problem =
        serde_json::from_slice(bad.details()).expect("problem details");
    assert_eq!(
        (problem.status, problem.code.as_str()),
        (400, "invalid_topic")
    );
    let not_json = c
        .publish(publish("g.a", "{nope"))
        .await
        .expect_err("invalid JSON");
    assert_eq!(not_json.code(), tonic::Code::InvalidArgument);
    let bad_cursor = c
        .read(ReadRequest {
            patterns: vec!["g.a".into()],
            after: "zzz".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad cursor");
    assert_eq!(
        bad_cursor
            .metadata()
            .get("herald-code")
            .and_then(|v| v.to_str().ok()),
        Some("invalid_cursor")
    );
    let too_long = c
        .read(ReadRequest {
            patterns: vec!["g.a".into()],
            wait_ms: 3_600_000,
            ..Default::default()
        })
        .await
        .expect_err("wait over the maximum");
    assert_eq!(too_long.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn oversize_messages_are_refused_and_the_connection_survives() {
    let s = TestServer::start_with(|c| {
        c.limits.max_payload_bytes = 1024;
        c.limits.max_body_bytes = 4096;
    })
    .await;
    let mut c = client(&s).await;
    let e = c
        .publish(publish("big", &format!("\"{}\"", "x".repeat(2000))))
        .await
        .expect_err("over the payload limit");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    let e = c
        .publish(publish("big", &format!("\"{}\"", "x".repeat(10_000))))
        .await
        .expect_err("over the message size limit");
    assert_eq!(
        e.code(),
        tonic::Code::OutOfRange,
        "tonic's code for a message over the limit"
    );
    c.publish(publish("big", "1")).await.expect("still fine");
}

#[tokio::test]
async fn subscribe_starts_with_its_cursor_then_resets_and_messages() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let mut stream = c
        .subscribe(SubscribeRequest {
            patterns: vec!["sub.>".into()],
            after: "latest".into(),
        })
        .await
        .expect("subscribe")
        .into_inner();
    let first = stream.message().await.expect("item").expect("open");
    let Some(subscribe_event::Event::Subscribed(at)) = first.event else {
        panic!("expected subscribed first, got {first:?}");
    };
    let p = c
        .publish(publish("sub.x", "7"))
        .await
        .expect("publish")
        .into_inner();
    let next = stream.message().await.expect("item").expect("open");
    match next.event {
        Some(subscribe_event::Event::Message(m)) => {
            assert_eq!((m.id.as_str(), &m.data[..]), (p.id.as_str(), &b"7"[..]));
            assert!(m.id > at.cursor);
        }
        other => panic!("expected the message, got {other:?}"),
    }
    // A cursor from another log: a reset comes first.
    let foreign = "00000000000000010000000000000001";
    let mut stream = c
        .subscribe(SubscribeRequest {
            patterns: vec!["sub.>".into()],
            after: foreign[..24].into(),
        })
        .await
        .expect("subscribe")
        .into_inner();
    let _subscribed = stream.message().await.expect("item").expect("open");
    let reset = stream.message().await.expect("item").expect("open");
    assert!(
        matches!(reset.event, Some(subscribe_event::Event::Reset(ref r)) if r.reason == "epoch"),
        "{reset:?}"
    );
}

#[tokio::test]
async fn consume_delivers_settles_and_releases_on_close() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    for i in 0..5 {
        c.publish(publish("work", &i.to_string()))
            .await
            .expect("publish");
    }
    let (tx, rx) = mpsc::channel(16);
    let start = consume_request::Request::Start(ConsumeStart {
        topic: "work".into(),
        group: "g".into(),
        prefetch: 3,
    });
    tx.send(ConsumeRequest {
        request: Some(start),
    })
    .await
    .expect("send");
    let mut events = c.consume(outbound(rx)).await.expect("consume").into_inner();
    let mut receipts = Vec::new();
    while receipts.len() < 3 {
        match events.message().await.expect("item").expect("open").event {
            Some(consume_event::Event::Delivery(d)) => {
                assert_eq!(d.attempt, 1);
                receipts.push(d.receipt);
            }
            other => panic!("expected deliveries, got {other:?}"),
        }
    }
    // The window is full: nothing more until something settles.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), events.message())
            .await
            .is_err()
    );
    let ack = consume_request::Request::Ack(Settle {
        receipts: vec![receipts[0].clone(), "bogus".into()],
        ..Default::default()
    });
    tx.send(ConsumeRequest { request: Some(ack) })
        .await
        .expect("send");
    let mut settled = None;
    let mut more = 0;
    while settled.is_none() || more < 1 {
        match events.message().await.expect("item").expect("open").event {
            Some(consume_event::Event::Settled(s)) => settled = Some(s),
            Some(consume_event::Event::Delivery(_)) => more += 1,
            None => {}
        }
    }
    let settled = settled.expect("settled");
    assert_eq!((settled.op.as_str(), settled.settled), ("ack", 1));
    assert_eq!(settled.refused[0].code, "unknown_receipt");
    // Closing the stream hands its three unsettled messages back at once.
    drop(tx);
    drop(events);
    let hub = s.server().hub().clone();
    let topic = herald_core::TopicName::parse("work").expect("topic");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = hub
            .group_stats(&herald_core::Principal::anonymous(), &topic, "g")
            .expect("stats");
        if stats.in_flight == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "leases not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn health_and_reflection_for_stock_tools() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let s = TestServer::start().await;
    let channel = Channel::from_shared(s.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = health
            .check(HealthCheckRequest {
                service: "herald.v1.Herald".into(),
            })
            .await;
        if let Ok(r) = r
            && r.into_inner().status == 1
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures_util::stream::iter(vec![req]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.message().await.expect("item").expect("answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"herald.v1.Herald"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_holds_bounded_memory_and_slows_nobody() {
    let s = TestServer::start_with(|c| c.subscriptions.buffer_bytes = 256 * 1024).await;
    let mut c = client(&s).await;
    let sub = |c: &mut HeraldClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.subscribe(SubscribeRequest {
                patterns: vec!["flood".into()],
                after: "latest".into(),
            })
            .await
            .expect("subscribe")
            .into_inner()
        }
    };
    let mut stuck = sub(&mut c).await;
    let _ = stuck.message().await.expect("subscribed");
    // The fast reader is on its own connection, as a separate client would be.
    let mut fast = sub(&mut client(&s).await).await;
    let _ = fast.message().await.expect("subscribed");
    let payload = serde_json::to_string(&"z".repeat(16 * 1024)).expect("json");
    let mut max_queued = 0;
    // Bursts smaller than a subscription's buffer, so a reader that keeps up never
    // falls behind.
    let total = 64 * 8;
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < total {
            match fast.message().await.expect("fast stream") {
                Some(ev) if matches!(ev.event, Some(subscribe_event::Event::Message(_))) => {
                    got += 1
                }
                Some(_) => {}
                None => panic!("fast stream ended"),
            }
        }
        got
    });
    for _ in 0..64 {
        let batch: Vec<herald_client::BatchItem> = (0..8)
            .map(|_| herald_client::BatchItem {
                topic: "flood".into(),
                data: serde_json::value::RawValue::from_string(payload.clone()).expect("raw"),
                event: None,
                content_type: Some("text/plain".into()),
                encoding: None,
                idempotency_key: None,
            })
            .collect();
        s.client().publish_batch(&batch).await.expect("batch");
        max_queued = max_queued.max(s.server().hub().live_stats().queued_bytes);
    }
    let got = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the fast reader keeps up")
        .expect("join");
    assert_eq!(got, total);
    assert!(
        max_queued <= 3 * 256 * 1024,
        "subscriptions held {max_queued} bytes"
    );
    // The stuck one, read at last: messages in order with no gap (caught up from
    // storage), or the slow-consumer status with its cursor.
    let mut last = String::new();
    let mut n = 0;
    while n < total {
        match tokio::time::timeout(Duration::from_secs(10), stuck.message()).await {
            Ok(Ok(Some(ev))) => {
                if let Some(subscribe_event::Event::Message(m)) = ev.event {
                    assert!(m.id > last, "in order");
                    last = m.id;
                    n += 1;
                }
            }
            Ok(Err(status)) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted);
                assert!(status.metadata().get("herald-cursor").is_some());
                return;
            }
            other => panic!("expected messages or a closing status, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unknown_methods_and_bad_first_frames_are_refused() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(ConsumeRequest {
        request: Some(consume_request::Request::Ack(Settle::default())),
    })
    .await
    .expect("send");
    let e = c.consume(outbound(rx)).await.expect_err("start first");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let (tx, rx) = mpsc::channel(1);
    tx.send(grpc::ServeRequest {
        request: Some(grpc::serve_request::Request::Start(grpc::ServeStart {
            service: "bad service".into(),
        })),
    })
    .await
    .expect("send");
    let e = c.serve(outbound(rx)).await.expect_err("invalid service");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
}

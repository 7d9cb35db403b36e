//! The subscriber scenario suite: written once, run over every transport the SDK speaks.

use futures_util::StreamExt;
use herald_client::{Envelope, Event, PublishOptions, SubscribeOptions, Subscription, Via};
use herald_testkit::{TestProxy, TestServer};
use std::time::Duration;

macro_rules! over_every_transport {
    ($($name:ident),* $(,)?) => {
        mod long_poll {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(herald_client::Via::LongPoll).await } )*
        }
        mod sse {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(herald_client::Via::Sse).await } )*
        }
        mod ws {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(herald_client::Via::Ws).await } )*
        }
        mod grpc {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(herald_client::Via::Grpc).await } )*
        }
    };
}

over_every_transport!(
    delivers_in_order_with_every_payload_kind,
    wildcard_patterns_span_topics,
    resumes_exactly_after_the_connection_is_cut,
    unknown_cursors_reset_first,
    a_thousand_subscribers_all_get_everything,
);

fn opts(via: Via) -> SubscribeOptions {
    SubscribeOptions::new(via)
        .fallback(false)
        .max_backoff(Duration::from_millis(200))
}

/// The next `n` messages (panics on a reset or an error).
async fn messages(sub: &mut Subscription, n: usize) -> Vec<Envelope> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
            Err(_) => panic!("only {} of {n} messages arrived", out.len()),
            Ok(None) => panic!("the subscription ended"),
            Ok(Some(Err(e))) => panic!("subscription error: {e}"),
            Ok(Some(Ok(Event::Reset(r)))) => panic!("unexpected reset {r:?}"),
            Ok(Some(Ok(Event::Message(m)))) => out.push(m),
        }
    }
    out
}

async fn publish_json(c: &herald_client::Client, topic: &str, body: String) -> String {
    c.publish(topic, body, PublishOptions::json())
        .await
        .expect("publish")
        .id
}

pub async fn delivers_in_order_with_every_payload_kind(via: Via) {
    let s = TestServer::start().await;
    let c = s.client();
    let mut sub = c.subscribe("ord", opts(via).after("earliest"));
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(publish_json(&c, "ord", format!("{{\"n\":{i}}}")).await);
    }
    let text = c
        .publish("ord", "two\nlines", PublishOptions::text().event("note"))
        .await
        .expect("text");
    let bin = c
        .publish(
            "ord",
            vec![0u8, 255, 10],
            PublishOptions::content_type("application/octet-stream"),
        )
        .await
        .expect("bin");
    let got = messages(&mut sub, 32).await;
    let got_ids: Vec<&str> = got.iter().map(|m| m.id.as_str()).collect();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.push(&text.id);
    want.push(&bin.id);
    assert_eq!(got_ids, want);
    assert_eq!(got[5].data.get(), "{\"n\":5}");
    assert_eq!(got[30].payload().expect("text"), b"two\nlines");
    assert_eq!(got[30].event.as_deref(), Some("note"));
    assert_eq!(got[31].payload().expect("bin"), vec![0u8, 255, 10]);
}

pub async fn wildcard_patterns_span_topics(via: Via) {
    let s = TestServer::start().await;
    let c = s.client();
    let mut star = c.subscribe("w.*", opts(via).after("earliest"));
    let mut rest = c.subscribe("w.>", opts(via).after("earliest"));
    for (t, i) in [
        ("w.a", 1),
        ("x.a", 2),
        ("w.b", 3),
        ("w.a.deep", 4),
        ("w", 5),
        ("w.a", 6),
    ] {
        publish_json(&c, t, i.to_string()).await;
    }
    let data = |ms: Vec<Envelope>| {
        ms.iter()
            .map(|m| m.data.get().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(data(messages(&mut star, 3).await), vec!["1", "3", "6"]);
    assert_eq!(data(messages(&mut rest, 4).await), vec!["1", "3", "4", "6"]);
}

pub async fn resumes_exactly_after_the_connection_is_cut(via: Via) {
    let s = TestServer::start().await;
    let proxy = TestProxy::start(s.addr()).await;
    let direct = s.client();
    let through_proxy = herald_client::Client::new(&proxy.url()).expect("client");
    let mut sub = through_proxy.subscribe("cut.>", opts(via).after("earliest"));
    let total = 240;
    let publisher = tokio::spawn(async move {
        for i in 0..total {
            let topic = if i % 2 == 0 { "cut.a" } else { "cut.b" };
            publish_json(&direct, topic, i.to_string()).await;
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }
    });
    let cutter = {
        let proxy_cut = std::sync::Arc::new(proxy);
        let p = proxy_cut.clone();
        (
            tokio::spawn(async move {
                for _ in 0..6 {
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    p.cut();
                }
            }),
            proxy_cut,
        )
    };
    let got = messages(&mut sub, total).await;
    publisher.await.expect("publisher");
    cutter.0.await.expect("cutter");
    assert!(
        cutter.1.accepted() > 1,
        "the connection was cut and re-established"
    );
    // The concatenated stream is exactly the log.
    let log = s
        .client()
        .read(
            &["cut.>"],
            herald_client::ReadOptions::after("earliest").limit(1000),
        )
        .await
        .expect("read");
    let want: Vec<&str> = log.messages.iter().map(|m| m.id.as_str()).collect();
    let got_ids: Vec<&str> = got.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(want.len(), total);
    assert_eq!(got_ids, want, "no gap and no duplicate across reconnects");
    let nothing_more = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(
        nothing_more.is_err(),
        "no duplicate after the end: {nothing_more:?}"
    );
}

pub async fn unknown_cursors_reset_first(via: Via) {
    let s = TestServer::start().await;
    let c = s.client();
    let first = publish_json(&c, "gone", "1".into()).await;
    publish_json(&c, "gone", "2".into()).await;
    let flipped = format!(
        "{}{}",
        if first.starts_with('f') { "0" } else { "f" },
        &first[1..]
    );
    let mut sub = c.subscribe("gone", opts(via).after(flipped));
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(Ok(Event::Reset(r)))) => assert_eq!(r.reason, herald_client::ResetReason::Epoch),
        other => panic!("expected a reset first, got {other:?}"),
    }
    let got = messages(&mut sub, 2).await;
    assert_eq!(got[0].id, first);

    s.http()
        .put(s.at("/v1/topics/gone"))
        .json(&serde_json::json!({"retention": {"max_messages": 1}}))
        .send()
        .await
        .expect("retention");
    let zero = format!("{}{:016x}", &first[..8], 0);
    let mut stale = c.subscribe("gone", opts(via).after(zero));
    match tokio::time::timeout(Duration::from_secs(10), stale.next()).await {
        Ok(Some(Ok(Event::Reset(r)))) => {
            assert_eq!(r.reason, herald_client::ResetReason::Expired);
            assert_eq!(r.earliest, first);
        }
        other => panic!("expected a reset first, got {other:?}"),
    }
    let got = messages(&mut stale, 1).await;
    assert_eq!(got[0].data.get(), "2");
}

pub async fn a_thousand_subscribers_all_get_everything(via: Via) {
    let s = TestServer::start().await;
    let c = s.client();
    let mut subs: Vec<Subscription> = (0..1000).map(|_| c.subscribe("crowd", opts(via))).collect();
    // Every subscriber must be listening before the first publish (they start at `latest`).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while s.server().hub().live_stats().listeners < 1000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            s.server().hub().live_stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(publish_json(&c, "crowd", i.to_string()).await);
    }
    let all = futures_util::future::join_all(subs.iter_mut().map(|sub| messages(sub, 10))).await;
    for got in all {
        let got: Vec<String> = got.into_iter().map(|m| m.id).collect();
        assert_eq!(got, ids);
    }
}

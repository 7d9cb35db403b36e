//! Server-Sent Events framing, resume, keepalive and limits, with raw HTTP and the
//! eventsource-stream parser.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use herald_client::PublishOptions;
use herald_testkit::TestServer;
use serde_json::Value;
use std::time::Duration;

async fn open(s: &TestServer, path: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut req = s
        .http()
        .get(s.at(path))
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    res
}

/// Raw bytes until `needle` has appeared.
async fn read_until(res: &mut reqwest::Response, buf: &mut String, needle: &str) {
    while !buf.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {buf:?}"))
            .expect("chunk")
            .expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).expect("utf8"));
    }
}

#[tokio::test]
async fn stream_starts_with_retry_then_open_then_framed_events() {
    let s = TestServer::start().await;
    let c = s.client();
    let first = c
        .publish("ev", "{\"a\":1}", PublishOptions::json().event("made"))
        .await
        .expect("publish");
    let mut res = open(&s, "/v1/topics/ev/events?after=earliest", None).await;
    let mut buf = String::new();
    read_until(&mut res, &mut buf, "event: made").await;
    assert!(buf.starts_with("retry: 3000\n"), "{buf:?}");
    let open_block = buf.split("\n\n").next().expect("block");
    assert!(open_block.contains("event: open"));
    let msg = format!(
        "id: {}\nevent: made\ndata: {{\"id\":\"{}\"",
        first.id, first.id
    );
    assert!(buf.contains(&msg), "{buf:?}");
    c.publish("ev", "plain", PublishOptions::text())
        .await
        .expect("publish");
    read_until(&mut res, &mut buf, "event: message").await;
}

#[tokio::test]
async fn payloads_cannot_break_framing_and_format_data_splits_lines() {
    let s = TestServer::start().await;
    let c = s.client();
    let nasty = "line1\nid: forged\r\nevent: reset\rdata: x\n\nline5";
    c.publish("fr", nasty, PublishOptions::text())
        .await
        .expect("publish");
    c.publish("fr", "{\n \"pretty\": true\n}", PublishOptions::json())
        .await
        .expect("publish");
    for (format, want) in [("envelope", None), ("data", Some(nasty))] {
        let res = open(
            &s,
            &format!("/v1/topics/fr/events?after=earliest&format={format}"),
            None,
        )
        .await;
        let mut events = res.bytes_stream().eventsource();
        let mut got = Vec::new();
        while got.len() < 3 {
            let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .expect("event")
                .expect("open")
                .expect("ok");
            got.push(ev);
        }
        assert_eq!(got[0].event, "open");
        assert_eq!(
            got[1].event, "message",
            "a payload cannot inject an event type"
        );
        assert_eq!(got[2].event, "message");
        match want {
            None => {
                let env: Value = serde_json::from_str(&got[1].data).expect("envelope");
                assert_eq!(env["data"], nasty);
                let env: Value = serde_json::from_str(&got[2].data).expect("envelope");
                assert_eq!(env["data"]["pretty"], true);
            }
            Some(text) => {
                // SSE normalises line endings to LF.
                assert_eq!(got[1].data, text.replace("\r\n", "\n").replace('\r', "\n"));
                assert_eq!(got[2].data, "{\"pretty\":true}");
            }
        }
        assert_ne!(got[1].id, "forged");
    }
    let bad = s
        .http()
        .get(s.at("/v1/topics/fr/events?format=xml"))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn last_event_id_resumes_exactly_and_wins_over_after() {
    let s = TestServer::start().await;
    let c = s.client();
    let a = c
        .publish("le", "1", PublishOptions::json())
        .await
        .expect("p");
    let b = c
        .publish("le", "2", PublishOptions::json())
        .await
        .expect("p");
    let res = open(&s, "/v1/topics/le/events?after=earliest", Some(&a.id)).await;
    let mut events = res.bytes_stream().eventsource();
    let _open = events.next().await;
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("event")
        .expect("open")
        .expect("ok");
    assert_eq!(ev.id, b.id);
    let bad = s
        .http()
        .get(s.at("/v1/topics/le/events"))
        .header("last-event-id", "garbage")
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("problem");
    assert_eq!(body["code"], "invalid_cursor");
}

#[tokio::test]
async fn idle_streams_get_keepalive_comments() {
    let s = TestServer::start_with(|c| c.sse.keepalive_seconds = 1).await;
    let mut res = open(&s, "/v1/events?topic=quiet.*", None).await;
    let mut buf = String::new();
    read_until(&mut res, &mut buf, ": keepalive\n\n").await;
}

#[tokio::test]
async fn unknown_cursor_sends_a_reset_event_carrying_earliest_as_its_id() {
    let s = TestServer::start().await;
    let c = s.client();
    let a = c
        .publish("rs", "1", PublishOptions::json())
        .await
        .expect("p");
    let flipped = format!(
        "{}{}",
        if a.id.starts_with('f') { "0" } else { "f" },
        &a.id[1..]
    );
    let res = open(&s, &format!("/v1/topics/rs/events?after={flipped}"), None).await;
    let mut events = res.bytes_stream().eventsource();
    let _open = events.next().await;
    let reset = events.next().await.expect("event").expect("ok");
    assert_eq!(reset.event, "reset");
    let body: Value = serde_json::from_str(&reset.data).expect("json");
    assert_eq!(body["reason"], "epoch");
    assert_eq!(reset.id, body["earliest"].as_str().expect("earliest"));
    let msg = events.next().await.expect("event").expect("ok");
    assert_eq!(msg.id, a.id);
}

#[tokio::test]
async fn shutdown_ends_streams_with_a_close_event() {
    let s = TestServer::start().await;
    let res = open(&s, "/v1/events?topic=>", None).await;
    let mut events = res.bytes_stream().eventsource();
    let _open = events.next().await;
    let stop = tokio::spawn(s.stop());
    let close = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("close event")
        .expect("event")
        .expect("ok");
    assert_eq!(close.event, "close");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("end")
            .is_none()
    );
    stop.await.expect("stopped");
}

#[tokio::test]
async fn a_reader_that_stops_reading_holds_bounded_memory_and_slows_nobody() {
    let s = TestServer::start_with(|c| c.subscriptions.buffer_bytes = 128 * 1024).await;
    let c = s.client();
    // Opened and never read again.
    let _stuck = open(&s, "/v1/events?topic=big", None).await;
    let mut fast = c.subscribe(
        "big",
        herald_client::SubscribeOptions::new(herald_client::Via::Sse).fallback(false),
    );
    while s.server().hub().live_stats().listeners < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let payload = "q".repeat(32 * 1024);
    let mut max_queued = 0;
    for _ in 0..400 {
        c.publish("big", payload.clone(), PublishOptions::text())
            .await
            .expect("publish");
        max_queued = max_queued.max(s.server().hub().live_stats().queued_bytes);
    }
    let mut got = 0;
    while got < 400 {
        match tokio::time::timeout(Duration::from_secs(20), fast.next())
            .await
            .expect("keeps up")
        {
            Some(Ok(herald_client::Event::Message(_))) => got += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        max_queued <= 2 * 128 * 1024 + 32 * 1024,
        "buffers stayed bounded: {max_queued}"
    );
}

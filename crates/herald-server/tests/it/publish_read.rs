use crate::{datas, get, ids, publish};
use herald_testkit::TestServer;
use serde_json::{Value, json};

#[tokio::test]
async fn publish_then_read_keeps_order_and_cursors() {
    let s = TestServer::start().await;
    let http = s.http();
    let mut published = Vec::new();
    for i in 0..5 {
        let p = publish(&http, &s.url(), "orders.eu", &format!("{{\"n\":{i}}}")).await;
        assert_eq!(p["topic"], "orders.eu");
        assert!(p["time"].as_str().expect("time").ends_with('Z'));
        published.push(p["id"].as_str().expect("id").to_owned());
    }
    let mut sorted = published.clone();
    sorted.sort();
    assert_eq!(sorted, published, "cursors grow with publish order");
    let (status, read) = get(&http, &s.url(), "/v1/topics/orders.eu/messages").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&read), published);
    assert_eq!(
        datas(&read),
        (0..5).map(|i| json!({"n": i})).collect::<Vec<_>>()
    );
    assert_eq!(read["next"], published[4].as_str());
    assert!(read.get("reset").is_none());
    let m = &read["messages"][0];
    assert_eq!(m["content_type"], "application/json");
    assert!(m.get("encoding").is_none());
}

#[tokio::test]
async fn resume_from_any_cursor_returns_exactly_the_rest() {
    let s = TestServer::start().await;
    let http = s.http();
    let mut all = Vec::new();
    for i in 0..12 {
        let p = publish(&http, &s.url(), "r", &i.to_string()).await;
        all.push(p["id"].as_str().expect("id").to_owned());
    }
    for (i, cursor) in all.iter().enumerate() {
        let (_, read) = get(
            &http,
            &s.url(),
            &format!("/v1/topics/r/messages?after={cursor}"),
        )
        .await;
        assert_eq!(ids(&read), all[i + 1..].to_vec(), "after #{i}");
    }
    // Paging with limit walks the whole log without gap or duplicate.
    let mut seen = Vec::new();
    let mut after = "earliest".to_owned();
    loop {
        let (_, page) = get(
            &http,
            &s.url(),
            &format!("/v1/topics/r/messages?after={after}&limit=5"),
        )
        .await;
        let got = ids(&page);
        if got.is_empty() {
            break;
        }
        seen.extend(got);
        after = page["next"].as_str().expect("next").to_owned();
    }
    assert_eq!(seen, all);
    let (_, latest) = get(&http, &s.url(), "/v1/topics/r/messages?after=latest").await;
    assert!(ids(&latest).is_empty());
    assert_eq!(latest["next"], all[11].as_str());
}

#[tokio::test]
async fn pattern_reads_span_topics_in_log_order() {
    let s = TestServer::start().await;
    let http = s.http();
    for (t, n) in [
        ("orders.eu", 1),
        ("orders.us", 2),
        ("users.new", 3),
        ("orders.eu.late", 4),
        ("orders.eu", 5),
    ] {
        publish(&http, &s.url(), t, &n.to_string()).await;
    }
    let (_, r) = get(&http, &s.url(), "/v1/messages?topic=orders.*").await;
    assert_eq!(datas(&r), vec![json!(1), json!(2), json!(5)]);
    let (_, r) = get(&http, &s.url(), "/v1/messages?topic=orders.>").await;
    assert_eq!(datas(&r), vec![json!(1), json!(2), json!(4), json!(5)]);
    let (_, r) = get(
        &http,
        &s.url(),
        "/v1/messages?topic=orders.us&topic=users.*",
    )
    .await;
    assert_eq!(datas(&r), vec![json!(2), json!(3)]);
    let (_, r) = get(&http, &s.url(), "/v1/messages?topic=%3E&limit=2").await;
    assert_eq!(datas(&r), vec![json!(1), json!(2)]);
    let next = r["next"].as_str().expect("next");
    let (_, r) = get(
        &http,
        &s.url(),
        &format!("/v1/messages?topic=>&after={next}"),
    )
    .await;
    assert_eq!(datas(&r), vec![json!(3), json!(4), json!(5)]);
}

#[tokio::test]
async fn payloads_render_as_json_text_or_base64() {
    let s = TestServer::start().await;
    let http = s.http();
    let send = |ct: &'static str, body: Vec<u8>| {
        let http = http.clone();
        let url = s.at("/v1/topics/kinds/messages");
        async move {
            let res = http
                .post(url)
                .header("content-type", ct)
                .header("herald-event", "kind.test")
                .body(body)
                .send()
                .await
                .expect("send");
            assert_eq!(res.status(), 201);
        }
    };
    send("application/json", b"{\n  \"pretty\": [1, 2]\n}".to_vec()).await;
    send(
        "text/plain; charset=utf-8",
        "two\nlines \u{1F600}".as_bytes().to_vec(),
    )
    .await;
    send("application/octet-stream", vec![0, 159, 146, 150]).await;
    let (_, r) = get(&http, &s.url(), "/v1/topics/kinds/messages").await;
    let m = r["messages"].as_array().expect("messages");
    assert_eq!(m[0]["data"], json!({"pretty": [1, 2]}));
    assert_eq!(m[0]["event"], "kind.test");
    assert_eq!(m[1]["data"], "two\nlines \u{1F600}");
    assert_eq!(m[2]["data"], "AJ+Slg==");
    assert_eq!(m[2]["encoding"], "base64");
    let mut event = http
        .post(s.at("/v1/topics/kinds/messages?event=from.query"))
        .body("x")
        .send()
        .await
        .expect("send")
        .json::<Value>()
        .await
        .expect("json");
    let id = event["id"].take();
    let (_, r) = get(&http, &s.url(), "/v1/topics/kinds/messages?after=latest").await;
    assert!(ids(&r).is_empty());
    let (_, r) = get(&http, &s.url(), "/v1/topics/kinds/messages?limit=1000").await;
    let last = r["messages"]
        .as_array()
        .expect("messages")
        .last()
        .cloned()
        .expect("last");
    assert_eq!(last["id"], id);
    assert_eq!(last["event"], "from.query");
    assert_eq!(last["content_type"], "application/octet-stream");
}

#[tokio::test]
async fn batch_publish_answers_each_item_in_order() {
    let s = TestServer::start().await;
    let http = s.http();
    let body = json!([
        {"topic": "b.one", "data": {"a": 1}},
        {"topic": "bad topic", "data": 1},
        {"topic": "b.two", "data": "hello", "content_type": "text/plain", "event": "greet"},
        {"topic": "b.one", "data": "AAEC", "encoding": "base64"},
        {"topic": "b.one", "data": 2, "idempotency_key": "k"},
        {"topic": "b.one", "data": 3, "idempotency_key": "k"}
    ]);
    let res = http
        .post(s.at("/v1/messages"))
        .json(&body)
        .send()
        .await
        .expect("batch");
    assert_eq!(res.status(), 200);
    let out: Vec<Value> = res.json().await.expect("json");
    assert_eq!(out.len(), 6);
    assert!(out[0]["id"].is_string());
    assert_eq!(out[1]["code"], "invalid_topic");
    assert_eq!(out[1]["status"], 400);
    assert_eq!(out[2]["topic"], "b.two");
    assert_eq!(
        out[4]["id"], out[5]["id"],
        "same key within a batch dedupes"
    );
    let (_, r) = get(&http, &s.url(), "/v1/messages?topic=b.*").await;
    let m = r["messages"].as_array().expect("messages");
    assert_eq!(m.len(), 4);
    assert_eq!(m[1]["data"], "hello");
    assert_eq!(m[1]["event"], "greet");
    assert_eq!(m[2]["data"], "AAEC");
    assert_eq!(m[2]["encoding"], "base64");

    let nd = "{\"topic\":\"nd\",\"data\":1}\n\n{\"topic\":\"nd\",\"data\":2}\nnot json\n";
    let res = http
        .post(s.at("/v1/messages"))
        .header("content-type", "application/x-ndjson")
        .body(nd)
        .send()
        .await
        .expect("ndjson");
    assert_eq!(res.status(), 200);
    let out: Vec<Value> = res.json().await.expect("json");
    assert_eq!(out.len(), 3);
    assert_eq!(out[2]["code"], "invalid_body");
    let (_, r) = get(&http, &s.url(), "/v1/topics/nd/messages").await;
    assert_eq!(datas(&r), vec![json!(1), json!(2)]);
}

#[tokio::test]
async fn sdk_publishes_reads_and_follows_by_long_poll() {
    use futures_util::StreamExt;
    use herald_client::{Event, PublishOptions, ReadOptions, SubscribeOptions, Via};
    let s = TestServer::start().await;
    let c = s.client();
    let first = c
        .publish("sdk.a", "1", PublishOptions::json())
        .await
        .expect("publish");
    let mut sub = c.subscribe(
        "sdk.*",
        SubscribeOptions::new(Via::LongPoll).after("earliest"),
    );
    c.publish("sdk.b", "hi", PublishOptions::text().event("e"))
        .await
        .expect("publish");
    let mut got = Vec::new();
    while got.len() < 2 {
        match sub.next().await.expect("item").expect("ok") {
            Event::Message(m) => got.push(m),
            Event::Reset(r) => panic!("unexpected reset {r:?}"),
        }
    }
    assert_eq!(got[0].id, first.id);
    assert_eq!(got[1].payload().expect("payload"), b"hi");
    assert_eq!(got[1].event.as_deref(), Some("e"));
    let page = c
        .read(&["sdk.a"], ReadOptions::default())
        .await
        .expect("read");
    assert_eq!(page.messages.len(), 1);
    let err = c
        .read(&["bad..pattern"], ReadOptions::default())
        .await
        .expect_err("invalid");
    assert_eq!(
        err.code(),
        Some(herald_client::Problem::new(herald_proto::ErrorCode::InvalidPattern, 400, "").code)
    );
}

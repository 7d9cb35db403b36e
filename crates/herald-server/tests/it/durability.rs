use crate::{datas, get, ids, publish};
use herald_testkit::{ManualClock, TestServer};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn data_survives_a_restart_on_the_same_dir() {
    let mut s = TestServer::start().await;
    let http = s.http();
    let mut want = Vec::new();
    for i in 0..20 {
        let p = publish(&http, &s.url(), &format!("keep.t{}", i % 3), &i.to_string()).await;
        want.push(p["id"].as_str().expect("id").to_owned());
    }
    s.restart().await;
    let (_, r) = get(&http, &s.url(), "/v1/messages?topic=keep.*").await;
    assert_eq!(ids(&r), want);
    let p = publish(&http, &s.url(), "keep.t0", "99").await;
    assert!(
        p["id"].as_str().expect("id") > want[19].as_str(),
        "cursors keep growing after restart"
    );
}

#[tokio::test]
async fn unknown_cursors_yield_a_reset_then_the_oldest_retained() {
    let s = TestServer::start().await;
    let http = s.http();
    let first = publish(&http, &s.url(), "gap", "1").await;
    let first_id = first["id"].as_str().expect("id").to_owned();
    publish(&http, &s.url(), "gap", "2").await;
    // A cursor of another epoch (wiped data).
    let mut foreign = first_id.clone();
    let flipped = if foreign.starts_with('0') { "1" } else { "0" };
    foreign.replace_range(0..1, flipped);
    let (status, r) = get(
        &http,
        &s.url(),
        &format!("/v1/topics/gap/messages?after={foreign}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(r["reset"]["reason"], "epoch");
    assert_eq!(datas(&r), vec![json!(1), json!(2)]);
    // A cursor beyond the end of this log is unknown too.
    let beyond = format!("{}{:016x}", &first_id[..8], 9_999_999u64);
    let (_, r) = get(
        &http,
        &s.url(),
        &format!("/v1/topics/gap/messages?after={beyond}"),
    )
    .await;
    assert_eq!(r["reset"]["reason"], "epoch");
    // A cursor older than retention.
    let res = http
        .put(s.at("/v1/topics/gap"))
        .json(&json!({"retention": {"max_messages": 1}}))
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 200);
    let (_, r) = get(
        &http,
        &s.url(),
        &format!("/v1/topics/gap/messages?after={first_id}"),
    )
    .await;
    assert!(
        r.get("reset").is_none(),
        "nothing after this cursor was removed"
    );
    let before_first = format!("{}{:016x}", &first_id[..8], 0);
    let (_, r) = get(
        &http,
        &s.url(),
        &format!("/v1/topics/gap/messages?after={before_first}"),
    )
    .await;
    assert_eq!(r["reset"]["reason"], "expired");
    assert_eq!(datas(&r), vec![json!(2)]);
    assert_eq!(r["reset"]["earliest"], first_id.as_str());
    assert_eq!(r["next"], r["messages"][0]["id"]);
    // A long poll with an unknown cursor answers the reset at once.
    let (_, r) = get(
        &http,
        &s.url(),
        &format!("/v1/topics/gap/messages?after={foreign}&wait=30"),
    )
    .await;
    assert_eq!(r["reset"]["reason"], "epoch");
}

#[tokio::test]
async fn idempotency_keys_hold_within_the_window_and_across_restart() {
    let clock = ManualClock::new(1_800_000_000_000);
    let mut s = TestServer::start_with_clock(clock.clone(), |_| {}).await;
    let http = s.http();
    let send = |key: &'static str, body: &'static str| {
        let http = http.clone();
        let url = s.at("/v1/topics/idem/messages");
        async move {
            let res = http
                .post(url)
                .header("idempotency-key", key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            (
                res.status().as_u16(),
                res.json::<Value>().await.expect("json"),
            )
        }
    };
    let (status, a) = send("order-1", "1").await;
    assert_eq!(status, 201);
    let (status, b) = send("order-1", "2").await;
    assert_eq!(status, 200);
    assert_eq!(
        a, b,
        "a duplicate answers the first message's id, topic and time"
    );
    s.restart().await;
    let send = |key: &'static str, body: &'static str| {
        let http = http.clone();
        let url = s.at("/v1/topics/idem/messages");
        async move {
            let res = http
                .post(url)
                .header("idempotency-key", key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            (
                res.status().as_u16(),
                res.json::<Value>().await.expect("json"),
            )
        }
    };
    let (status, c) = send("order-1", "3").await;
    assert_eq!(
        (status, &c["id"]),
        (200, &a["id"]),
        "remembered across restart"
    );
    clock.advance(Duration::from_secs(121));
    s.server().hub().maintain().await.expect("maintain");
    let (status, d) = send("order-1", "4").await;
    assert_eq!(status, 201, "the key expired with the 2 minute window");
    assert_ne!(d["id"], a["id"]);
    let (_, r) = get(&http, &s.url(), "/v1/topics/idem/messages").await;
    assert_eq!(datas(&r), vec![json!(1), json!(4)]);
}

#[tokio::test]
async fn retention_by_count_bytes_and_age() {
    let clock = ManualClock::new(1_800_000_000_000);
    let s = TestServer::start_with_clock(clock.clone(), |_| {}).await;
    let http = s.http();
    let put = |topic: &str, body: Value| {
        let req = http.put(s.at(&format!("/v1/topics/{topic}"))).json(&body);
        async move {
            let res = req.send().await.expect("put");
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.expect("json")
        }
    };
    let stats = put("ret.count", json!({"retention": {"max_messages": 2}})).await;
    assert_eq!(stats["retention"]["max_messages"], 2);
    put("ret.bytes", json!({"max_bytes": 5})).await;
    put("ret.age", json!({"retention": {"max_age": "1h"}})).await;
    for i in 1..=4 {
        publish(&http, &s.url(), "ret.count", &i.to_string()).await;
        publish(&http, &s.url(), "ret.bytes", "\"ab\"").await;
    }
    publish(&http, &s.url(), "ret.age", "\"old\"").await;
    clock.advance(Duration::from_secs(1800));
    publish(&http, &s.url(), "ret.age", "\"new\"").await;
    clock.advance(Duration::from_secs(1801));
    s.server().hub().maintain().await.expect("maintain");
    let (_, r) = get(&http, &s.url(), "/v1/topics/ret.count/messages").await;
    assert_eq!(datas(&r), vec![json!(3), json!(4)]);
    let (_, r) = get(&http, &s.url(), "/v1/topics/ret.bytes/messages").await;
    assert_eq!(
        datas(&r).len(),
        1,
        "4-byte payloads under a 5-byte limit: one fits"
    );
    let (_, r) = get(&http, &s.url(), "/v1/topics/ret.age/messages").await;
    assert_eq!(datas(&r), vec![json!("new")]);
    let (_, stats) = get(&http, &s.url(), "/v1/topics/ret.count").await;
    assert_eq!(
        (stats["count"].as_u64(), stats["bytes"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        stats["first"],
        r["messages"][0]["id"]
            .as_str()
            .map(|_| stats["first"].clone())
            .unwrap_or_default()
    );
}

#[tokio::test]
async fn memory_mode_serves_the_same_api() {
    let s = TestServer::memory().await;
    let http = s.http();
    let p = publish(&http, &s.url(), "mem", "{\"x\":1}").await;
    let (_, r) = get(&http, &s.url(), "/v1/topics/mem/messages").await;
    assert_eq!(ids(&r), vec![p["id"].as_str().expect("id").to_owned()]);
    assert!(
        !s.data_dir().join("herald.redb").exists(),
        "memory mode writes no files"
    );
    let _ = Arc::new(());
}

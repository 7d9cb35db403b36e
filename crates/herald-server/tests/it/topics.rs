use crate::{get, publish};
use herald_testkit::TestServer;
use serde_json::json;

#[tokio::test]
async fn topics_list_stats_and_delete() {
    let s = TestServer::start().await;
    let http = s.http();
    let a1 = publish(&http, &s.url(), "t.a", "1").await;
    let a2 = publish(&http, &s.url(), "t.a", "22").await;
    publish(&http, &s.url(), "t.b", "3").await;
    let (status, list) = get(&http, &s.url(), "/v1/topics").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["t.a", "t.b"]);
    let (_, st) = get(&http, &s.url(), "/v1/topics/t.a").await;
    assert_eq!(st["first"], a1["id"]);
    assert_eq!(st["last"], a2["id"]);
    assert_eq!(
        (st["count"].as_u64(), st["bytes"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(st["subscribers"], 0);
    assert_eq!(st["groups"], 0);

    let res = http
        .delete(s.at("/v1/topics/t.a"))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let (status, _) = get(&http, &s.url(), "/v1/topics/t.a").await;
    assert_eq!(status, 404);
    let (_, list) = get(&http, &s.url(), "/v1/topics").await;
    assert_eq!(list["topics"].as_array().expect("topics").len(), 1);
    let (_, r) = get(
        &http,
        &s.url(),
        &format!(
            "/v1/topics/t.a/messages?after={}",
            a1["id"].as_str().expect("id")
        ),
    )
    .await;
    assert_eq!(
        r["reset"]["reason"], "expired",
        "readers inside a deleted topic learn of the gap"
    );
    let p = publish(&http, &s.url(), "t.a", "4").await;
    let (_, r) = get(&http, &s.url(), "/v1/topics/t.a/messages").await;
    assert_eq!(r["messages"][0]["id"], p["id"]);
    assert_eq!(r["messages"].as_array().map(Vec::len), Some(1));
    let (_, st) = get(&http, &s.url(), "/v1/topics/t.a").await;
    assert_eq!(st["retention"], json!({}));
}

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    let http = s.http();
    let (status, h) = get(&http, &s.url(), "/healthz").await;
    assert_eq!((status, h["status"].as_str()), (200, Some("ok")));
    let (status, r) = get(&http, &s.url(), "/readyz").await;
    assert_eq!((status, r["status"].as_str()), (200, Some("ready")));
    s.server().hub().begin_shutdown();
    let (status, _) = get(&http, &s.url(), "/readyz").await;
    assert_eq!(status, 503);
    let res = http
        .post(s.at("/v1/topics/x/messages"))
        .body("1")
        .send()
        .await
        .expect("send");
    assert_eq!(
        res.status(),
        503,
        "publishes are refused while shutting down"
    );
}

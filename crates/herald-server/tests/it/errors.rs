//! Bad input gets a clear 4xx problem document and changes nothing.

use herald_testkit::TestServer;
use serde_json::Value;

async fn tail(http: &reqwest::Client, s: &TestServer) -> Value {
    http.get(s.at("/readyz"))
        .send()
        .await
        .expect("ready")
        .json::<Value>()
        .await
        .expect("json")["latest"]
        .clone()
}

async fn expect_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let p: Value = res.json().await.expect("problem json");
    assert_eq!(p["code"], code);
    assert_eq!(p["status"], status);
    assert!(p["type"].as_str().expect("type").ends_with(code));
    assert!(!p["title"].as_str().expect("title").is_empty());
    assert!(!p["detail"].as_str().expect("detail").is_empty());
    p
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let s = TestServer::start_with(|c| c.limits.max_payload_bytes = 1024).await;
    let http = s.http();
    http.post(s.at("/v1/topics/ok/messages"))
        .body("seed")
        .send()
        .await
        .expect("seed");
    let before = tail(&http, &s).await;

    for bad in [
        "a..b",
        "a%20b",
        "a.*",
        "a.%3E",
        &"x".repeat(65),
        &vec!["s"; 17].join("."),
    ] {
        let res = http
            .post(s.at(&format!("/v1/topics/{bad}/messages")))
            .body("x")
            .send()
            .await
            .expect("send");
        let p = expect_problem(res, 400, "invalid_topic").await;
        assert!(p["detail"].as_str().expect("detail").contains("topic"));
    }
    let res = http
        .post(s.at("/v1/topics/ok/messages"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .expect("send");
    expect_problem(res, 413, "payload_too_large").await;
    let res = http
        .post(s.at("/v1/topics/ok/messages"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    expect_problem(res, 400, "invalid_json").await;
    let res = http
        .post(s.at("/v1/topics/ok/messages"))
        .header("herald-event", "bad event\n")
        .body("x")
        .send()
        .await;
    if let Ok(res) = res {
        expect_problem(res, 400, "invalid_event").await;
    }
    let res = http
        .post(s.at("/v1/topics/ok/messages"))
        .header("herald-event", "has space")
        .body("x")
        .send()
        .await
        .expect("send");
    expect_problem(res, 400, "invalid_event").await;
    let res = http
        .post(s.at("/v1/messages"))
        .header("content-type", "text/plain")
        .body("[]")
        .send()
        .await
        .expect("send");
    expect_problem(res, 415, "unsupported_media_type").await;
    let res = http
        .post(s.at("/v1/messages"))
        .body("[]")
        .send()
        .await
        .expect("send");
    expect_problem(res, 415, "unsupported_media_type").await;
    let res = http
        .post(s.at("/v1/messages"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("send");
    expect_problem(res, 400, "invalid_body").await;
    let res = http
        .post(s.at("/v1/messages"))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("send");
    expect_problem(res, 400, "invalid_body").await;
    assert_eq!(
        tail(&http, &s).await,
        before,
        "no bad write changed the log"
    );

    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=1001", "invalid_limit"),
        ("limit=-1", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("wait=61", "invalid_wait"),
        ("wait=-1", "invalid_wait"),
        ("wait=soon", "invalid_wait"),
        ("wait=NaN", "invalid_wait"),
        ("after=nope", "invalid_cursor"),
        ("after=00000000000000000000000g", "invalid_cursor"),
        ("after=LATEST", "invalid_cursor"),
    ] {
        let res = http
            .get(s.at(&format!("/v1/topics/ok/messages?{query}")))
            .send()
            .await
            .expect("get");
        expect_problem(res, 400, code).await;
    }
    let res = http.get(s.at("/v1/messages")).send().await.expect("get");
    expect_problem(res, 400, "invalid_pattern").await;
    let res = http
        .get(s.at("/v1/messages?topic=a.>.b"))
        .send()
        .await
        .expect("get");
    expect_problem(res, 400, "invalid_pattern").await;
    let res = http
        .put(s.at("/v1/topics/ok"))
        .json(&serde_json::json!({"retention": {"max_age": "soon"}}))
        .send()
        .await
        .expect("put");
    expect_problem(res, 400, "invalid_retention").await;
    let res = http
        .put(s.at("/v1/topics/ok"))
        .json(&serde_json::json!({"retention": {"max_mesages": 1}}))
        .send()
        .await
        .expect("put");
    expect_problem(res, 400, "invalid_retention").await;
    let res = http.get(s.at("/v1/nope")).send().await.expect("get");
    expect_problem(res, 404, "not_found").await;
    let res = http
        .patch(s.at("/v1/topics/ok/messages"))
        .send()
        .await
        .expect("patch");
    expect_problem(res, 405, "method_not_allowed").await;
    let res = http
        .get(s.at("/v1/topics/never"))
        .send()
        .await
        .expect("get");
    expect_problem(res, 404, "topic_not_found").await;
    let res = http
        .delete(s.at("/v1/topics/never"))
        .send()
        .await
        .expect("delete");
    expect_problem(res, 404, "topic_not_found").await;
    assert_eq!(tail(&http, &s).await, before);
    let (status, stats) = (
        200,
        http.get(s.at("/v1/topics/ok"))
            .send()
            .await
            .expect("get")
            .json::<Value>()
            .await
            .expect("json"),
    );
    assert_eq!((status, stats["count"].as_u64()), (200, Some(1)));
    assert!(
        stats["retention"].get("max_age").is_none(),
        "a refused PUT changed nothing"
    );
}

#[tokio::test]
async fn oversize_batch_body_is_refused() {
    let s = TestServer::start_with(|c| {
        c.limits.max_payload_bytes = 100;
        c.limits.max_body_bytes = 1000;
        c.limits.max_batch_items = 3;
    })
    .await;
    let http = s.http();
    let big = serde_json::json!([{"topic": "t", "data": "x".repeat(2000)}]);
    let res = http
        .post(s.at("/v1/messages"))
        .json(&big)
        .send()
        .await
        .expect("send");
    expect_problem(res, 413, "payload_too_large").await;
    let many = serde_json::json!([{"topic": "t", "data": 1}, {"topic": "t", "data": 2}, {"topic": "t", "data": 3}, {"topic": "t", "data": 4}]);
    let res = http
        .post(s.at("/v1/messages"))
        .json(&many)
        .send()
        .await
        .expect("send");
    expect_problem(res, 400, "invalid_parameter").await;
    let item_too_big =
        serde_json::json!([{"topic": "t", "data": "y".repeat(150)}, {"topic": "t", "data": 1}]);
    let res = http
        .post(s.at("/v1/messages"))
        .json(&item_too_big)
        .send()
        .await
        .expect("send");
    let out: Vec<Value> = res.json().await.expect("json");
    assert_eq!(out[0]["code"], "payload_too_large");
    assert!(out[1]["id"].is_string());
}

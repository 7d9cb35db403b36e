//! Consumer groups over HTTP and WebSocket, on the durable store.

use crate::publish;
use futures_util::{SinkExt, StreamExt};
use herald_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    crate::post_json(s, path, &body).await
}

fn receipts(claim: &Value) -> Vec<String> {
    claim["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| d["receipt"].as_str().expect("receipt").to_owned())
        .collect()
}

fn datas(claim: &Value) -> Vec<Value> {
    claim["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| d["message"]["data"].clone())
        .collect()
}

#[tokio::test]
async fn claim_ack_stats_and_acks_survive_a_restart() {
    let mut s = TestServer::start().await;
    for i in 0..10 {
        publish(&s.http(), &s.url(), "orders", &i.to_string()).await;
    }
    let (status, cfg) = s
        .http()
        .put(s.at("/v1/topics/orders/groups/billing"))
        .json(&json!({"start": "earliest", "lease_seconds": 30, "max_attempts": 3}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .expect("put");
    assert_eq!(status, 200);
    let cfg: Value = cfg.json().await.expect("json");
    assert_eq!(
        (cfg["max_attempts"].as_u64(), cfg["dead_letter"].as_str()),
        (Some(3), Some("orders.dlq"))
    );
    let (status, claim) = post(
        &s,
        "/v1/topics/orders/groups/billing/claim",
        json!({"max": 10}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(datas(&claim), (0..10).map(|i| json!(i)).collect::<Vec<_>>());
    assert!(
        claim["deliveries"]
            .as_array()
            .expect("d")
            .iter()
            .all(|d| d["attempt"] == 1)
    );
    let r = receipts(&claim);
    // Ack 0,1,2,4,6,8: the acked position is after 2.
    let acked: Vec<&String> = [0, 1, 2, 4, 6, 8].iter().map(|&i| &r[i]).collect();
    let (status, body) = post(
        &s,
        "/v1/topics/orders/groups/billing/ack",
        json!({"receipts": acked}),
    )
    .await;
    assert_eq!((status, body["acked"].as_u64()), (200, Some(6)));
    let stats: Value = s
        .http()
        .get(s.at("/v1/topics/orders/groups/billing"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (stats["lag"].as_u64(), stats["in_flight"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(stats["acked"], claim["deliveries"][2]["message"]["id"]);
    let (_, topic) = crate::get(&s.http(), &s.url(), "/v1/topics/orders").await;
    assert_eq!(topic["groups"], 1);

    s.restart().await;
    // Nothing acked comes back; everything unacked does.
    let (_, again) = post(
        &s,
        "/v1/topics/orders/groups/billing/claim",
        json!({"max": 10, "wait": 0.2}),
    )
    .await;
    assert_eq!(datas(&again), vec![json!(3), json!(5), json!(7), json!(9)]);
    assert!(
        again["deliveries"]
            .as_array()
            .expect("d")
            .iter()
            .all(|d| d["attempt"] == 2),
        "attempts survive: {again}"
    );
    let (status, body) = post(
        &s,
        "/v1/topics/orders/groups/billing/ack",
        json!({"receipts": receipts(&again)}),
    )
    .await;
    assert_eq!((status, body["acked"].as_u64()), (200, Some(4)));
    let (_, none) = post(
        &s,
        "/v1/topics/orders/groups/billing/claim",
        json!({"max": 10}),
    )
    .await;
    assert!(datas(&none).is_empty());
    let stats: Value = s
        .http()
        .get(s.at("/v1/topics/orders/groups/billing"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["lag"], 0);
}

#[tokio::test]
async fn expiry_late_acks_dead_letters_and_redrive_over_http() {
    let s = TestServer::start().await;
    publish(&s.http(), &s.url(), "tasks", "{\"n\":1}").await;
    s.http()
        .put(s.at("/v1/topics/tasks/groups/w"))
        .json(&json!({"lease_seconds": 0.3, "max_attempts": 2}))
        .send()
        .await
        .expect("put");
    let (_, first) = post(&s, "/v1/topics/tasks/groups/w/claim", json!({"max": 1})).await;
    let old = receipts(&first);
    // Long poll: the redelivery arrives once the 0.3 s lease runs out.
    let (_, second) = post(
        &s,
        "/v1/topics/tasks/groups/w/claim",
        json!({"max": 1, "wait": 5}),
    )
    .await;
    assert_eq!(second["deliveries"][0]["attempt"], 2);
    let (status, late) = post(
        &s,
        "/v1/topics/tasks/groups/w/ack",
        json!({"receipts": old}),
    )
    .await;
    assert_eq!(
        (status, late["code"].as_str()),
        (409, Some("lease_expired")),
        "{late}"
    );
    let (status, nacked) = post(
        &s,
        "/v1/topics/tasks/groups/w/nack",
        json!({"receipts": receipts(&second), "error": "payment provider down"}),
    )
    .await;
    assert_eq!((status, nacked["nacked"].as_u64()), (200, Some(1)));
    let stats: Value = s
        .http()
        .get(s.at("/v1/topics/tasks/groups/w"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["dead_lettered"], 1);
    let (_, dlq) = crate::get(&s.http(), &s.url(), "/v1/topics/tasks.dlq/messages").await;
    let m = &dlq["messages"][0];
    assert_eq!(m["data"], json!({"n": 1}));
    assert_eq!(m["headers"]["herald-origin-topic"], "tasks");
    assert_eq!(
        m["headers"]["herald-origin-id"],
        first["deliveries"][0]["message"]["id"]
    );
    assert_eq!(m["headers"]["herald-attempts"], "2");
    assert_eq!(m["headers"]["herald-last-error"], "payment provider down");
    let (status, redriven) = post(&s, "/v1/topics/tasks/groups/w/redrive", json!({})).await;
    assert_eq!((status, redriven["redriven"].as_u64()), (200, Some(1)));
    let (_, back) = post(&s, "/v1/topics/tasks/groups/w/claim", json!({"max": 1})).await;
    assert_eq!(
        (
            back["deliveries"][0]["attempt"].as_u64(),
            &back["deliveries"][0]["message"]["data"]
        ),
        (Some(1), &json!({"n": 1}))
    );
    let (status, ext) = post(
        &s,
        "/v1/topics/tasks/groups/w/extend",
        json!({"receipts": receipts(&back), "lease_seconds": 60}),
    )
    .await;
    assert_eq!((status, ext["extended"].as_u64()), (200, Some(1)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, ok) = post(
        &s,
        "/v1/topics/tasks/groups/w/ack",
        json!({"receipts": receipts(&back)}),
    )
    .await;
    assert_eq!(
        (status, ok["acked"].as_u64()),
        (200, Some(1)),
        "the extended lease is still valid"
    );
}

#[tokio::test]
async fn bad_group_requests_get_problem_documents() {
    let s = TestServer::start().await;
    for (path, body, status, code) in [
        (
            "/v1/topics/t/groups/bad%20name/claim",
            json!({}),
            400,
            "invalid_parameter",
        ),
        (
            "/v1/topics/t/groups/g/claim",
            json!({"max": 0}),
            400,
            "invalid_parameter",
        ),
        (
            "/v1/topics/t/groups/g/claim",
            json!({"wait": 999}),
            400,
            "invalid_wait",
        ),
        (
            "/v1/topics/t/groups/g/claim",
            json!({"maxx": 1}),
            400,
            "invalid_body",
        ),
        (
            "/v1/topics/t/groups/nope/ack",
            json!({"receipts": ["x"]}),
            404,
            "group_not_found",
        ),
        (
            "/v1/topics/t/groups/g/ack",
            json!({"receipts": []}),
            400,
            "invalid_body",
        ),
    ] {
        let (got, body) = post(&s, path, body).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    let (_, _) = post(&s, "/v1/topics/t/groups/g/claim", json!({})).await;
    let (got, body) = post(
        &s,
        "/v1/topics/t/groups/g/ack",
        json!({"receipts": ["nonsense"]}),
    )
    .await;
    assert_eq!((got, body["code"].as_str()), (404, Some("unknown_receipt")));
    let res = s
        .http()
        .put(s.at("/v1/topics/t/groups/g"))
        .json(&json!({"max_attempts": 0}))
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 400);
}

async fn ws(s: &TestServer) -> crate::ws::Ws {
    crate::ws::connect(s, "/v1/ws", &[]).await.expect("connect")
}

#[tokio::test]
async fn ws_consume_prefetches_acks_and_releases_leases_on_close() {
    let s = TestServer::start().await;
    for i in 0..6 {
        publish(&s.http(), &s.url(), "wq", &i.to_string()).await;
    }
    let mut a = ws(&s).await;
    crate::ws::send(
        &mut a,
        json!({"op":"consume","ref":"c","topic":"wq","group":"g","prefetch":2}),
    )
    .await;
    let consuming = crate::ws::recv(&mut a).await;
    assert_eq!(
        (consuming["op"].as_str(), consuming["ref"].as_str()),
        (Some("consuming"), Some("c"))
    );
    let d1 = crate::ws::recv(&mut a).await;
    let d2 = crate::ws::recv(&mut a).await;
    assert_eq!(
        (d1["op"].as_str(), d1["attempt"].as_u64()),
        (Some("delivery"), Some(1))
    );
    assert_eq!(
        (
            d1["message"]["data"].as_i64(),
            d2["message"]["data"].as_i64()
        ),
        (Some(0), Some(1))
    );
    assert!(d1["receipt"].as_str().expect("receipt").starts_with("s1:"));
    // The window is full: nothing more until something is settled.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), a.next())
            .await
            .is_err()
    );
    crate::ws::send(
        &mut a,
        json!({"op":"ack","ref":"a1","receipts":[d1["receipt"]]}),
    )
    .await;
    let mut frames = [crate::ws::recv(&mut a).await, crate::ws::recv(&mut a).await];
    frames.sort_by_key(|f| f["op"].as_str().map(str::to_owned));
    assert_eq!(
        (frames[0]["op"].as_str(), frames[0]["settled"].as_u64()),
        (Some("acked"), Some(1))
    );
    assert_eq!(
        (
            frames[1]["op"].as_str(),
            frames[1]["message"]["data"].as_i64()
        ),
        (Some("delivery"), Some(2))
    );
    crate::ws::send(&mut a, json!({"op":"ack","receipts":["s9:bogus"]})).await;
    assert_eq!(crate::ws::recv(&mut a).await["code"], "unknown_receipt");
    // Closing the connection releases its two leases for redelivery at once.
    a.close(None).await.expect("close");
    drop(a);
    let (_, claim) = post(
        &s,
        "/v1/topics/wq/groups/g/claim",
        json!({"max": 10, "wait": 2}),
    )
    .await;
    let got: Vec<(i64, u64)> = claim["deliveries"]
        .as_array()
        .expect("d")
        .iter()
        .map(|d| {
            (
                d["message"]["data"].as_i64().expect("n"),
                d["attempt"].as_u64().expect("a"),
            )
        })
        .collect();
    assert_eq!(got, vec![(1, 2), (2, 2), (3, 1), (4, 1), (5, 1)]);
    let mut b = ws(&s).await;
    crate::ws::send(
        &mut b,
        json!({"op":"consume","topic":"wq","group":"g","prefetch":1}),
    )
    .await;
    crate::ws::recv(&mut b).await;
    crate::ws::send(
        &mut b,
        json!({"op":"consume","topic":"bad topic","group":"g"}),
    )
    .await;
    assert_eq!(crate::ws::recv(&mut b).await["code"], "invalid_topic");
    b.send(Message::Close(None)).await.expect("close");
}

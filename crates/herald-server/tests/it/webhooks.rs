//! Webhooks against a local receiver that verifies every request with the official
//! Standard Webhooks library.

use crate::publish;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_testkit::TestServer;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver answers, in turn; the last answer repeats.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Ok,
    Fail,
    TooMany(u64),
    Gone,
    RedirectToLoopback,
}

#[derive(Default)]
pub struct Seen {
    /// (webhook-id, body, verified, time)
    pub requests: Vec<(String, Value, bool, Instant)>,
}

pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
    secret: Arc<Mutex<Option<String>>>,
}

impl Receiver {
    pub async fn start(answers: Vec<Answer>) -> Receiver {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let secret: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let answers = Arc::new(Mutex::new(answers));
        let app = Router::new().fallback({
            let (seen, secret, answers) = (seen.clone(), secret.clone(), answers.clone());
            move |headers: HeaderMap, body: axum::body::Bytes| {
                let (seen, secret, answers) = (seen.clone(), secret.clone(), answers.clone());
                async move {
                    let verified = secret.lock().expect("lock").as_ref().is_some_and(|s| {
                        standardwebhooks::Webhook::new(s)
                            .is_ok_and(|wh| wh.verify(&body, &headers).is_ok())
                    });
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    seen.lock()
                        .expect("lock")
                        .requests
                        .push((id, value, verified, Instant::now()));
                    let answer = {
                        let mut a = answers.lock().expect("lock");
                        if a.len() > 1 { a.remove(0) } else { a[0] }
                    };
                    let res: Response = match answer {
                        Answer::Ok => StatusCode::NO_CONTENT.into_response(),
                        Answer::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "no").into_response(),
                        Answer::TooMany(secs) => (
                            StatusCode::TOO_MANY_REQUESTS,
                            [("retry-after", secs.to_string())],
                            "slow down",
                        )
                            .into_response(),
                        Answer::Gone => StatusCode::GONE.into_response(),
                        Answer::RedirectToLoopback => {
                            (StatusCode::FOUND, [("location", "http://127.0.0.1:1/")], "")
                                .into_response()
                        }
                    };
                    res
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, seen, secret }
    }

    pub fn trust(&self, secret: &str) {
        *self.secret.lock().expect("lock") = Some(secret.to_owned());
    }

    pub fn count(&self) -> usize {
        self.seen.lock().expect("lock").requests.len()
    }

    pub async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests arrived",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.webhooks.allow_private_networks = true;
        c.webhooks.retry_schedule = vec!["100ms".into(), "150ms".into(), "200ms".into()];
        c.webhooks.timeout_seconds = 2;
    })
    .await
}

async fn create(s: &TestServer, body: Value) -> (u16, Value) {
    crate::post_json(s, "/v1/webhooks", &body).await
}

async fn get(s: &TestServer, path: &str) -> Value {
    crate::get(&s.http(), &s.url(), path).await.1
}

#[tokio::test]
async fn signed_in_order_with_retries_and_a_delivery_log() {
    let s = server().await;
    let r = Receiver::start(vec![Answer::Fail, Answer::Fail, Answer::Ok]).await;
    let (status, hook) = create(&s, json!({"pattern": "orders.*", "url": r.url})).await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"));
    r.trust(secret);
    let id = hook["id"].as_str().expect("id").to_owned();
    let a = publish(&s.http(), &s.url(), "orders.eu", "{\"n\":1}").await;
    let b = publish(&s.http(), &s.url(), "orders.us", "{\"n\":2}").await;
    publish(&s.http(), &s.url(), "users.new", "{\"n\":3}").await;
    r.wait_for(4).await;
    let seen = r.seen.lock().expect("lock").requests.clone();
    // Two failures of the first message, then it, then the second: in order.
    let ids: Vec<&str> = seen.iter().map(|(id, ..)| id.as_str()).collect();
    let (a_id, b_id) = (a["id"].as_str().expect("id"), b["id"].as_str().expect("id"));
    assert_eq!(
        ids,
        vec![a_id, a_id, a_id, b_id],
        "webhook-id is the message id, stable across retries"
    );
    assert!(
        seen.iter().all(|(_, _, verified, _)| *verified),
        "every request verifies with standardwebhooks"
    );
    assert_eq!(seen[2].1["data"]["n"], 1);
    assert_eq!(seen[3].1["topic"], "orders.us");
    let gap = seen[1].3.duration_since(seen[0].3);
    assert!(
        gap >= Duration::from_millis(100),
        "the retry waited for the schedule: {gap:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = get(&s, &format!("/v1/webhooks/{id}/deliveries")).await;
    let log = log["deliveries"].as_array().expect("deliveries");
    assert_eq!(log.len(), 4);
    assert_eq!(
        (log[0]["outcome"].as_str(), log[0]["status"].as_u64()),
        (Some("delivered"), Some(204))
    );
    assert_eq!(
        (
            log[3]["outcome"].as_str(),
            log[3]["status"].as_u64(),
            log[3]["attempt"].as_u64()
        ),
        (Some("retrying"), Some(500), Some(1))
    );
    assert!(log[0]["latency_ms"].as_f64().is_some());
    let state = get(&s, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        (state["delivered"].as_u64(), state["cursor"].as_str()),
        (Some(2), Some(b_id))
    );
    assert!(
        state.get("secret").is_none(),
        "the secret is only shown at creation"
    );
    let list = get(&s, "/v1/webhooks").await;
    assert_eq!(list["webhooks"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn retry_after_is_honoured_and_exhausted_messages_are_dead_lettered() {
    let s = server().await;
    let r = Receiver::start(vec![
        Answer::TooMany(1),
        Answer::Fail,
        Answer::RedirectToLoopback,
        Answer::Ok,
    ])
    .await;
    let (_, hook) = create(&s, json!({"pattern": "q", "url": r.url, "max_attempts": 3})).await;
    r.trust(hook["secret"].as_str().expect("secret"));
    let id = hook["id"].as_str().expect("id").to_owned();
    let first = publish(&s.http(), &s.url(), "q", "1").await;
    let second = publish(&s.http(), &s.url(), "q", "2").await;
    r.wait_for(4).await;
    let seen = r.seen.lock().expect("lock").requests.clone();
    let gap = seen[1].3.duration_since(seen[0].3);
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After: 1 was honoured, waited {gap:?}"
    );
    // 429, 500, then a redirect (not followed): three attempts, then the dead letter.
    assert_eq!(
        seen[3].0,
        second["id"].as_str().expect("id"),
        "delivery moved on to the next message"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dlq = get(
        &s,
        &format!("/v1/topics/_herald.webhooks.{id}.dlq/messages"),
    )
    .await;
    let m = &dlq["messages"][0];
    assert_eq!(m["data"], 1);
    assert_eq!(m["headers"]["herald-origin-id"], first["id"]);
    assert_eq!(m["headers"]["herald-attempts"], "3");
    assert!(
        m["headers"]["herald-last-error"]
            .as_str()
            .expect("error")
            .contains("redirects are not followed")
    );
    let state = get(&s, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        (state["dead_lettered"].as_u64(), state["delivered"].as_u64()),
        (Some(1), Some(1))
    );
    // Replay from the start delivers both again.
    let res = s
        .http()
        .post(s.at(&format!("/v1/webhooks/{id}/replay?after=earliest")))
        .send()
        .await
        .expect("replay");
    assert_eq!(res.status(), 200);
    r.wait_for(6).await;
    let seen = r.seen.lock().expect("lock").requests.clone();
    assert_eq!(
        (seen[4].1["data"].as_i64(), seen[5].1["data"].as_i64()),
        (Some(1), Some(2))
    );
}

#[tokio::test]
async fn gone_disables_test_deliveries_and_delete() {
    let s = server().await;
    let r = Receiver::start(vec![Answer::Ok, Answer::Gone]).await;
    let (_, hook) = create(
        &s,
        json!({"pattern": "g.>", "url": r.url, "after": "earliest"}),
    )
    .await;
    r.trust(hook["secret"].as_str().expect("secret"));
    let id = hook["id"].as_str().expect("id").to_owned();
    let test: Value = s
        .http()
        .post(s.at(&format!("/v1/webhooks/{id}/test")))
        .send()
        .await
        .expect("test")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (test["status"].as_u64(), test["outcome"].as_str()),
        (Some(204), Some("delivered"))
    );
    assert!(
        r.seen.lock().expect("lock").requests[0].2,
        "the test event is signed too"
    );
    assert_eq!(
        r.seen.lock().expect("lock").requests[0].1["type"],
        "herald.test"
    );
    publish(&s.http(), &s.url(), "g.a", "1").await;
    publish(&s.http(), &s.url(), "g.a", "2").await;
    r.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        r.count(),
        2,
        "410 disabled the endpoint: the second message was not retried"
    );
    let state = get(&s, &format!("/v1/webhooks/{id}")).await;
    assert!(
        state["disabled"]
            .as_str()
            .expect("disabled")
            .contains("410")
    );
    let res = s
        .http()
        .delete(s.at(&format!("/v1/webhooks/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let res = s
        .http()
        .get(s.at(&format!("/v1/webhooks/{id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn schedules_survive_a_restart() {
    let mut s = TestServer::start_with(|c| {
        c.webhooks.allow_private_networks = true;
        c.webhooks.retry_schedule = vec!["1s".into()];
    })
    .await;
    let r = Receiver::start(vec![Answer::Fail, Answer::Ok]).await;
    let (_, hook) = create(&s, json!({"pattern": "rs", "url": r.url})).await;
    r.trust(hook["secret"].as_str().expect("secret"));
    let id = hook["id"].as_str().expect("id").to_owned();
    publish(&s.http(), &s.url(), "rs", "1").await;
    r.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.restart().await;
    let state = get(&s, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(state["attempt"], 1, "{state}");
    assert!(state["next_attempt"].is_string());
    r.wait_for(2).await;
    let seen = r.seen.lock().expect("lock").requests.clone();
    assert!(
        seen[1].3.duration_since(seen[0].3) >= Duration::from_millis(900),
        "the stored schedule held across the restart"
    );
    assert!(seen[1].2);
}

#[tokio::test]
async fn unsafe_destinations_are_refused_without_the_allow_flag() {
    let s = TestServer::start().await;
    for url in [
        "http://127.1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost./",
        "http://a@127.0.0.1/",
        "file:///etc/passwd",
    ] {
        let (status, body) = create(&s, json!({"pattern": "x", "url": url})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("forbidden_destination")),
            "{url}: {body}"
        );
    }
    let res = s
        .http()
        .post(s.at("/v1/jobs/q"))
        .header("herald-callback", "http://10.1.2.3/cb")
        .body("task")
        .send()
        .await
        .expect("submit");
    assert_eq!(res.status(), 400);
    let (status, body) = create(&s, json!({"pattern": "x..y", "url": "http://example.com/"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_pattern"))
    );
    let (status, _) = create(
        &s,
        json!({"pattern": "x", "url": "http://example.com/", "secret": "short"}),
    )
    .await;
    assert_eq!(status, 400);
}

//! Jobs end to end: submit, work through a consumer group, learn the outcome every way.

use crate::webhooks::{Answer, Receiver};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use herald_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;

async fn submit(s: &TestServer, queue: &str, body: &str, callback: Option<&str>) -> Value {
    let mut req = s
        .http()
        .post(s.at(&format!("/v1/jobs/{queue}")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(cb) = callback {
        req = req.header("herald-callback", cb);
    }
    let res = req.send().await.expect("submit");
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["status_url"], location.as_str());
    v
}

async fn doc(s: &TestServer, url: &str) -> Value {
    crate::get(&s.http(), &s.url(), url).await.1
}

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    crate::post_json(s, path, &body).await
}

/// Claims one task from `jobs.{queue}` as group `workers`.
async fn claim(s: &TestServer, queue: &str) -> Value {
    let (status, c) = post(
        s,
        &format!("/v1/topics/jobs.{queue}/groups/workers/claim"),
        json!({"max": 1, "wait": 5}),
    )
    .await;
    assert_eq!(status, 200);
    c["deliveries"][0].clone()
}

#[tokio::test]
async fn submit_work_and_learn_the_outcome_by_short_and_long_poll() {
    let s = TestServer::start().await;
    let job = submit(&s, "render", "{\"frame\":7}", None).await;
    let url = job["status_url"].as_str().expect("url").to_owned();
    let id = job["id"].as_str().expect("id").to_owned();
    let d = doc(&s, &url).await;
    assert_eq!(
        (
            d["status"].as_str(),
            d["attempt"].as_u64(),
            d["queue"].as_str()
        ),
        (Some("queued"), Some(0), Some("render"))
    );
    // A worker takes it: running, attempt 1.
    let task = claim(&s, "render").await;
    assert_eq!(task["message"]["id"], id.as_str());
    assert_eq!(task["message"]["data"]["frame"], 7);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let d = doc(&s, &url).await;
    assert_eq!(
        (d["status"].as_str(), d["attempt"].as_u64()),
        (Some("running"), Some(1))
    );
    let (status, p) = post(&s, &format!("{url}/progress"), json!({"percent": 40})).await;
    assert_eq!((status, p["progress"]["percent"].as_u64()), (200, Some(40)));
    // A long poll is answered when the job finishes.
    let waiting = tokio::spawn({
        let (http, target) = (s.http(), s.at(&format!("{url}?wait=20")));
        async move {
            http.get(target)
                .send()
                .await
                .expect("get")
                .json::<Value>()
                .await
                .expect("json")
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    let (status, done) = post(
        &s,
        &format!("{url}/complete"),
        json!({"url": "s3://frames/7.png"}),
    )
    .await;
    assert_eq!((status, done["status"].as_str()), (200, Some("succeeded")));
    let finished = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered")
        .expect("join");
    assert_eq!(finished["status"], "succeeded");
    assert_eq!(finished["result"]["url"], "s3://frames/7.png");
    assert_eq!(finished["progress"]["percent"], 40);
    assert!(finished["created"].as_str() <= finished["updated"].as_str());
    // Completing settled the worker's delivery: nothing to redeliver.
    let (_, again) = post(
        &s,
        "/v1/topics/jobs.render/groups/workers/claim",
        json!({"max": 1}),
    )
    .await;
    assert!(again["deliveries"].as_array().expect("d").is_empty());
    let (status, conflict) = post(&s, &format!("{url}/fail"), json!("late")).await;
    assert_eq!((status, conflict["code"].as_str()), (409, Some("conflict")));
}

#[tokio::test]
async fn follow_a_job_over_sse_and_websocket() {
    let s = TestServer::start().await;
    let job = submit(&s, "mail", "\"hello\"", None).await;
    let id = job["id"].as_str().expect("id").to_owned();
    let topic = format!("jobs.mail.{id}");
    let res = s
        .http()
        .get(s.at(&format!("/v1/topics/{topic}/events?after=earliest")))
        .send()
        .await
        .expect("sse");
    let mut events = res.bytes_stream().eventsource();
    let mut ws = crate::ws::connect(&s, "/v1/ws", &[]).await.expect("ws");
    crate::ws::send(
        &mut ws,
        json!({"op":"subscribe","topic": topic, "after":"earliest"}),
    )
    .await;
    assert_eq!(crate::ws::recv(&mut ws).await["op"], "subscribed");
    claim(&s, "mail").await;
    let (status, _) = post(
        &s,
        &format!("/v1/jobs/mail/{id}/fail"),
        json!({"reason": "bounced"}),
    )
    .await;
    assert_eq!(status, 200);
    let mut sse_states = Vec::new();
    while sse_states.last().map(String::as_str) != Some("failed") {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("event")
            .expect("open")
            .expect("ok");
        if ev.event == "message" {
            let env: Value = serde_json::from_str(&ev.data).expect("envelope");
            sse_states.push(env["data"]["status"].as_str().expect("status").to_owned());
        }
    }
    assert_eq!(sse_states, vec!["queued", "running", "failed"]);
    let mut ws_states = Vec::new();
    while ws_states.last().map(String::as_str) != Some("failed") {
        let f = crate::ws::recv(&mut ws).await;
        ws_states.push(
            f["message"]["data"]["status"]
                .as_str()
                .expect("status")
                .to_owned(),
        );
    }
    assert_eq!(ws_states, sse_states);
    let d = doc(&s, &format!("/v1/jobs/mail/{id}")).await;
    assert_eq!(d["error"]["reason"], "bounced");
}

#[tokio::test]
async fn the_signed_callback_carries_the_final_document() {
    let s = crate::webhooks::server().await;
    let r = Receiver::start(vec![Answer::Fail, Answer::Ok]).await;
    let job = submit(&s, "export", "{}", Some(&r.url)).await;
    let secret = job["callback_secret"].as_str().expect("callback secret");
    assert!(secret.starts_with("whsec_"));
    r.trust(secret);
    let id = job["id"].as_str().expect("id").to_owned();
    claim(&s, "export").await;
    post(
        &s,
        &format!("/v1/jobs/export/{id}/complete"),
        json!({"rows": 3}),
    )
    .await;
    r.wait_for(2).await;
    let seen = r.seen.lock().expect("lock").requests.clone();
    assert!(
        seen.iter().all(|(_, _, verified, _)| *verified),
        "verifies with the job's callback secret"
    );
    assert_eq!(seen[0].0, seen[1].0, "the retry keeps the webhook-id");
    assert_eq!(
        (seen[1].1["id"].as_str(), seen[1].1["status"].as_str()),
        (Some(id.as_str()), Some("succeeded"))
    );
    assert_eq!(seen[1].1["result"]["rows"], 3);
}

#[tokio::test]
async fn a_dead_worker_means_a_retry_and_exhausted_attempts_mean_failed() {
    let s = TestServer::start().await;
    let res = s
        .http()
        .put(s.at("/v1/topics/jobs.fragile/groups/workers"))
        .json(&json!({"lease_seconds": 0.3, "max_attempts": 2}))
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 200);
    let job = submit(&s, "fragile", "1", None).await;
    let url = job["status_url"].as_str().expect("url").to_owned();
    let first = claim(&s, "fragile").await;
    assert_eq!(first["attempt"], 1);
    // The worker dies: after the lease, the task comes back.
    let second = claim(&s, "fragile").await;
    assert_eq!(second["attempt"], 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(doc(&s, &url).await["attempt"], 2);
    // It dies again: attempts are exhausted and the job ends failed.
    let d: Value = s
        .http()
        .get(s.at(&format!("{url}?wait=5")))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(d["status"], "failed");
    assert!(
        d["error"]
            .as_str()
            .expect("error")
            .contains("attempts exhausted"),
        "{d}"
    );
}

#[tokio::test]
async fn bad_job_requests() {
    let s = TestServer::start().await;
    let res = s
        .http()
        .post(s.at("/v1/jobs/bad.queue"))
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 400, "a queue name is one segment");
    let res = s
        .http()
        .post(s.at("/v1/jobs/bad%20queue"))
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 400);
    let res = s
        .http()
        .get(s.at("/v1/jobs/q/000000000000000000000001"))
        .send()
        .await
        .expect("get");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "job_not_found");
    let res = s
        .http()
        .get(s.at("/v1/jobs/q/not-an-id"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 404);
    let res = s
        .http()
        .post(s.at("/v1/jobs/q/not-an-id/complete"))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 404);
}

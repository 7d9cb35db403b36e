use crate::{get, ids, publish};
use herald_testkit::TestServer;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test]
async fn long_poll_wakes_promptly_on_publish() {
    let s = TestServer::start().await;
    let http = s.http();
    let first = publish(&http, &s.url(), "lp", "0").await;
    let after = first["id"].as_str().expect("id").to_owned();
    let url = s.at(&format!("/v1/topics/lp/messages?after={after}&wait=20"));
    let poll = tokio::spawn({
        let http = http.clone();
        async move {
            let res = http.get(url).send().await.expect("poll");
            (Instant::now(), res.json::<Value>().await.expect("json"))
        }
    });
    // Let the poll park, then publish.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poll.is_finished(), "the long poll must wait for a message");
    let p = publish(&http, &s.url(), "lp", "1").await;
    let published_at = Instant::now();
    let (answered_at, body) = poll.await.expect("join");
    assert_eq!(ids(&body), vec![p["id"].as_str().expect("id").to_owned()]);
    let delay = answered_at.saturating_duration_since(published_at);
    assert!(
        delay < Duration::from_millis(500),
        "woke {delay:?} after the publish"
    );
}

#[tokio::test]
async fn long_poll_times_out_empty_with_the_same_next() {
    let s = TestServer::start().await;
    let http = s.http();
    let p = publish(&http, &s.url(), "quiet", "0").await;
    let after = p["id"].as_str().expect("id");
    let started = Instant::now();
    let (status, body) = get(
        &http,
        &s.url(),
        &format!("/v1/topics/quiet/messages?after={after}&wait=0.4"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(body["messages"], Value::Array(vec![]));
    assert_eq!(body["next"], after);
    // A publish on another topic does not wake or change this poll's answer.
    let other = tokio::spawn({
        let http = http.clone();
        let url = s.url();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            publish(&http, &url, "noise", "1").await;
        }
    });
    let (_, body) = get(
        &http,
        &s.url(),
        &format!("/v1/topics/quiet/messages?after={after}&wait=0.5"),
    )
    .await;
    other.await.expect("noise");
    assert_eq!(body["messages"], Value::Array(vec![]));
    assert_eq!(body["next"], after);
}

#[tokio::test]
async fn a_thousand_parked_long_polls_are_released_by_one_publish() {
    let s = TestServer::start().await;
    let http = herald_testkit::http_builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = s.at("/v1/topics/crowd/messages?after=latest&wait=30");
    let mut polls = Vec::new();
    for _ in 0..1000 {
        let http = http.clone();
        let url = url.clone();
        polls.push(tokio::spawn(async move {
            http.get(url)
                .send()
                .await
                .expect("poll")
                .json::<Value>()
                .await
                .expect("json")
        }));
    }
    // Wait until all are parked: the topic's stats count them as subscribers.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let parked = s.server().hub().topic(
            &herald_core::Principal::anonymous(),
            &herald_core::TopicName::parse("crowd").expect("t"),
        );
        let n = parked.map(|t| t.subscribers).unwrap_or(0);
        if n == 1000 {
            break;
        }
        if n == 0 {
            // The topic does not exist yet: create it without waking anyone.
            let _ = s
                .http()
                .put(s.at("/v1/topics/crowd"))
                .json(&serde_json::json!({"retention": {}}))
                .send()
                .await;
        }
        assert!(Instant::now() < deadline, "only {n} polls parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = publish(&s.http(), &s.url(), "crowd", "\"go\"").await;
    let id = p["id"].as_str().expect("id").to_owned();
    for poll in polls {
        let body = tokio::time::timeout(Duration::from_secs(20), poll)
            .await
            .expect("released")
            .expect("join");
        assert_eq!(ids(&body), vec![id.clone()]);
    }
}

#[tokio::test]
async fn shutdown_answers_parked_long_polls() {
    let s = TestServer::start().await;
    let http = s.http();
    let p = publish(&http, &s.url(), "sd", "0").await;
    let after = p["id"].as_str().expect("id").to_owned();
    let url = s.at(&format!("/v1/topics/sd/messages?after={after}&wait=30"));
    let poll = tokio::spawn(async move {
        let res = http.get(url).send().await.expect("poll");
        (
            res.status().as_u16(),
            res.json::<Value>().await.expect("json"),
        )
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    s.stop().await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("answered")
        .expect("join");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(status, 200);
    assert_eq!(body["messages"], Value::Array(vec![]));
    assert_eq!(body["next"], after.as_str());
}

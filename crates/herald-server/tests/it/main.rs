//! HTTP integration tests: one in-process server per test on 127.0.0.1:0, real clients.

mod auth;
mod durability;
mod errors;
mod fallback;
mod groups;
mod grpc;
mod hostile;
mod jobs;
mod lean;
mod listener;
mod long_poll;
mod openapi;
mod publish_read;
mod rpc;
mod scenarios;
mod sse;
mod tls;
mod topics;
mod webhooks;
mod ws;

use serde_json::Value;

/// Publishes `body` as JSON to `topic` and returns the response JSON.
pub async fn publish(http: &reqwest::Client, url: &str, topic: &str, body: &str) -> Value {
    let res = http
        .post(format!("{url}/v1/topics/{topic}/messages"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("publish request");
    assert_eq!(res.status(), 201, "publish to {topic}");
    res.json().await.expect("publish json")
}

/// POSTs `body` as JSON to `path` and returns (status, JSON body or null).
pub async fn post_json(s: &herald_testkit::TestServer, path: &str, body: &Value) -> (u16, Value) {
    let res = s
        .http()
        .post(s.at(path))
        .json(body)
        .send()
        .await
        .expect("post");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// GETs `path` and returns (status, JSON body).
pub async fn get(http: &reqwest::Client, url: &str, path: &str) -> (u16, Value) {
    let res = http.get(format!("{url}{path}")).send().await.expect("get");
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The `data` fields of a read response.
pub fn datas(read: &Value) -> Vec<Value> {
    read["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["data"].clone())
        .collect()
}

/// The `id` fields of a read response.
pub fn ids(read: &Value) -> Vec<String> {
    read["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

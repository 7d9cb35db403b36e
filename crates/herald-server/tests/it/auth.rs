//! Access control at every door: API keys and JWTs, refused tokens, patterns, revocation
//! on reload, expiry of live streams, anonymous grants and the safe default.

use crate::ws::{closed, connect};
use base64::Engine;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use herald_proto::grpc::herald_client::HeraldClient;
use herald_proto::grpc::{self, PublishRequest, SubscribeRequest};
use herald_server::auth::{
    ApiKeyConfig, AuthConfig, GrantsConfig, HeraldClaim, JwtConfig, SigningKey, hash_key, mint,
};
use herald_testkit::TestServer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Error as WsError;

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/keys")
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).expect("test key")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn api_key(name: &str, key: &str, publish: &[&str], subscribe: &[&str]) -> ApiKeyConfig {
    ApiKeyConfig {
        name: Some(name.into()),
        hash: hash_key(key),
        publish: strings(publish),
        subscribe: strings(subscribe),
        admin: false,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A server with an RSA public key (and audience `herald-tests`) for JWTs and the API
/// key `key-a` for `a.*`.
async fn rsa_server() -> TestServer {
    TestServer::start_with(|c| {
        c.auth = Some(AuthConfig {
            jwt: Some(JwtConfig {
                public_key_file: Some(keys_dir().join("rsa_public.pem")),
                audience: Some("herald-tests".into()),
                leeway_seconds: 0,
                ..JwtConfig::default()
            }),
            api_keys: vec![api_key("key-a", "key-a", &GRANT, &GRANT)],
            ..AuthConfig::default()
        });
    })
    .await
}

/// Signs `claims` with the test RSA key.
fn rs256(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).expect("rsa key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign")
}

/// `a.*`, and the request-reply services of `a.x` and `a.y` (see [`doors`]).
const GRANT: [&str; 3] = ["a.*", "rpc.a_x", "rpc.a_y"];

fn grants() -> Value {
    json!({"publish": GRANT, "subscribe": GRANT, "admin": false})
}

/// How a door answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Unauthorized,
    Forbidden,
}

fn http_outcome(status: u16) -> Outcome {
    match status {
        401 => Outcome::Unauthorized,
        403 => Outcome::Forbidden,
        _ => Outcome::Allowed,
    }
}

fn grpc_outcome(code: tonic::Code) -> Outcome {
    match code {
        tonic::Code::Unauthenticated => Outcome::Unauthorized,
        tonic::Code::PermissionDenied => Outcome::Forbidden,
        _ => Outcome::Allowed,
    }
}

/// Tries `topic` (a plain name like `a.x`) at every door with `token`; returns each
/// door's outcome.
async fn doors(s: &TestServer, token: &str, topic: &str) -> Vec<(&'static str, Outcome)> {
    let http = s.http();
    let bearer = format!("Bearer {token}");
    let mut out = Vec::new();
    let send = |req: reqwest::RequestBuilder| {
        let bearer = bearer.clone();
        async move {
            let res = req
                .header("authorization", bearer)
                .send()
                .await
                .expect("request");
            if res.status() == 401 {
                assert!(
                    res.headers().get("www-authenticate").is_some(),
                    "401 without WWW-Authenticate"
                );
            }
            http_outcome(res.status().as_u16())
        }
    };
    let publish = http
        .post(s.at(&format!("/v1/topics/{topic}/messages")))
        .header("content-type", "application/json")
        .body("1");
    out.push(("http publish", send(publish).await));
    // A batch answers per item: a refused item carries the refusal's code.
    let batch = http
        .post(s.at("/v1/messages"))
        .bearer_auth(token)
        .json(&json!([{"topic": topic, "data": 1}]))
        .send()
        .await
        .expect("batch");
    let status = batch.status().as_u16();
    let body = batch.text().await.expect("batch body");
    out.push((
        "http batch",
        if body.contains("\"code\":\"forbidden\"") {
            Outcome::Forbidden
        } else {
            http_outcome(status)
        },
    ));
    let read = http.get(s.at(&format!("/v1/topics/{topic}/messages")));
    out.push(("http read", send(read).await));
    let poll = http.get(s.at(&format!("/v1/messages?topic={topic}&wait=0.05")));
    out.push(("long poll", send(poll).await));
    let sse = http.get(s.at(&format!("/v1/events?topic={topic}&after=latest")));
    out.push(("sse", send(sse).await));
    let claim = http
        .post(s.at(&format!("/v1/topics/{topic}/groups/g/claim")))
        .json(&json!({"max": 1}));
    out.push(("queue claim", send(claim).await));
    let hook = http.post(s.at("/v1/webhooks")).json(&json!({
        "pattern": topic, "url": "https://example.com/hook"
    }));
    out.push(("webhook create", send(hook).await));
    // Service `a_x` lives on topic `rpc.a_x`.
    let service = topic.replace('.', "_");
    let rpc = http
        .post(s.at(&format!("/v1/rpc/{service}?timeout=0.05")))
        .body("1");
    out.push(("rpc call", send(rpc).await));
    let ws = connect(
        s,
        &format!("/v1/topics/{topic}/ws"),
        &[("authorization", bearer.as_str())],
    )
    .await;
    out.push((
        "ws upgrade",
        match ws {
            Ok(_) => Outcome::Allowed,
            Err(WsError::Http(res)) => http_outcome(res.status().as_u16()),
            Err(e) => panic!("websocket: {e}"),
        },
    ));
    let mut grpc = HeraldClient::connect(s.url()).await.expect("grpc");
    let mut req = tonic::Request::new(PublishRequest {
        topic: topic.into(),
        data: b"1".to_vec().into(),
        ..Default::default()
    });
    req.metadata_mut()
        .insert("authorization", bearer.parse().expect("metadata"));
    out.push((
        "grpc publish",
        match grpc.publish(req).await {
            Ok(_) => Outcome::Allowed,
            Err(st) => grpc_outcome(st.code()),
        },
    ));
    let mut req = tonic::Request::new(SubscribeRequest {
        patterns: vec![topic.into()],
        after: "latest".into(),
    });
    req.metadata_mut()
        .insert("authorization", bearer.parse().expect("metadata"));
    out.push((
        "grpc subscribe",
        match grpc.subscribe(req).await {
            Ok(_) => Outcome::Allowed,
            Err(st) => grpc_outcome(st.code()),
        },
    ));
    out
}

fn assert_all(got: &[(&'static str, Outcome)], want: Outcome, why: &str) {
    let wrong: Vec<_> = got.iter().filter(|(_, o)| *o != want).collect();
    assert!(
        wrong.is_empty(),
        "{why}: expected {want:?} at every door, got {wrong:?}"
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_at_every_door() {
    let s = rsa_server().await;
    let exp = now() + 3600;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({"exp": exp, "aud": "herald-tests", "herald": grants()});
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    // HS256 "signed" with the server's RSA public key as the HMAC secret.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&pem("rsa_public.pem")),
    )
    .expect("sign");
    let cases = [
        ("alg none", none),
        ("HS256 with the RSA public key", confused),
        (
            "expired",
            rs256(&json!({"exp": now() - 3600, "aud": "herald-tests", "herald": grants()})),
        ),
        (
            "future nbf",
            rs256(
                &json!({"exp": exp, "nbf": now() + 3600, "aud": "herald-tests", "herald": grants()}),
            ),
        ),
        (
            "wrong aud",
            rs256(&json!({"exp": exp, "aud": "someone-else", "herald": grants()})),
        ),
        (
            "missing exp",
            rs256(&json!({"aud": "herald-tests", "herald": grants()})),
        ),
        ("unknown API key", "not-a-key".to_owned()),
        (
            "Ed25519 key the server does not know",
            mint(
                &SigningKey::PrivatePem(pem("ed25519_private.pem")),
                None,
                HeraldClaim::default(),
                Duration::from_secs(60),
            )
            .expect("mint"),
        ),
    ];
    for (why, token) in &cases {
        assert_all(&doors(&s, token, "a.x").await, Outcome::Unauthorized, why);
    }
    // The same claims, properly signed, pass.
    let good = rs256(&claims);
    assert_all(
        &doors(&s, &good, "a.x").await,
        Outcome::Allowed,
        "valid RS256",
    );
    assert_all(
        &doors(&s, "key-a", "a.y").await,
        Outcome::Allowed,
        "API key",
    );
}

#[tokio::test]
async fn patterns_bound_what_a_token_may_do() {
    let s = rsa_server().await;
    let token = rs256(&json!({"exp": now() + 3600, "aud": "herald-tests", "herald": grants()}));
    for token in [token.as_str(), "key-a"] {
        assert_all(
            &doors(&s, token, "b.x").await,
            Outcome::Forbidden,
            "a.* on b.x",
        );
        // Wildcard escalation: a.* covers a.b but not a.b.c, a.> or >.
        assert_all(
            &doors(&s, token, "a.b.c").await,
            Outcome::Forbidden,
            "a.* on a.b.c",
        );
        for pattern in ["a.>", ">", "*.x"] {
            let res = s
                .http()
                .get(s.at(&format!("/v1/messages?topic={pattern}")))
                .bearer_auth(token)
                .send()
                .await
                .expect("read");
            assert_eq!(res.status(), 403, "a.* reading {pattern}");
        }
        // Admin routes need admin.
        let res = s
            .http()
            .delete(s.at("/v1/topics/a.x"))
            .bearer_auth(token)
            .send()
            .await
            .expect("delete");
        assert_eq!(res.status(), 403, "delete without admin");
    }
    // Over a WebSocket the refusal is an error frame and the connection stays.
    let mut ws = connect(&s, "/v1/ws?token=key-a", &[]).await.expect("ws");
    crate::ws::send(
        &mut ws,
        json!({"op": "publish", "ref": 1, "topic": "b.x", "data": 1}),
    )
    .await;
    let err = crate::ws::recv(&mut ws).await;
    assert_eq!(
        (err["op"].as_str(), err["code"].as_str()),
        (Some("error"), Some("forbidden"))
    );
    crate::ws::send(
        &mut ws,
        json!({"op": "publish", "ref": 2, "topic": "a.x", "data": 1}),
    )
    .await;
    let ok = crate::ws::recv(&mut ws).await;
    assert_eq!(ok["op"], "published", "{ok}");
}

#[tokio::test]
async fn tokens_come_from_header_query_or_cookie_and_must_agree() {
    let s = rsa_server().await;
    let url = s.at("/v1/topics/a.x/messages");
    let status = |req: reqwest::RequestBuilder| async move {
        req.send().await.expect("request").status().as_u16()
    };
    let http = s.http();
    assert_eq!(status(http.get(&url)).await, 401, "no token");
    assert_eq!(status(http.get(&url).bearer_auth("key-a")).await, 200);
    assert_eq!(status(http.get(format!("{url}?token=key-a"))).await, 200);
    assert_eq!(
        status(http.get(&url).header("cookie", "x=1; herald_token=key-a")).await,
        200
    );
    assert_eq!(
        status(http.get(format!("{url}?token=key-a")).bearer_auth("key-a")).await,
        200,
        "header and query agree"
    );
    let res = http
        .get(format!("{url}?token=other"))
        .bearer_auth("key-a")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401, "header and query disagree");
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["code"], "unauthorized");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("disagree")),
        "{problem}"
    );
    assert_eq!(
        status(http.get(&url).header("authorization", "Basic a2V5LWE6")).await,
        401,
        "other schemes are refused"
    );
}

#[tokio::test]
async fn removing_a_key_on_reload_revokes_it_and_ends_its_streams() {
    let keep = api_key("keep", "keep-key", &[">"], &[">"]);
    let gone = api_key("gone", "gone-key", &[">"], &[">"]);
    let auth = |keys: Vec<ApiKeyConfig>| AuthConfig {
        api_keys: keys,
        ..AuthConfig::default()
    };
    let first = auth(vec![keep.clone(), gone]);
    let s = TestServer::start_with(|c| c.auth = Some(first)).await;
    let res = s
        .http()
        .get(s.at("/v1/topics/r.x/events?after=latest&token=gone-key"))
        .send()
        .await
        .expect("sse");
    assert_eq!(res.status(), 200);
    let mut sse = res.bytes_stream().eventsource();
    let mut ws = connect(&s, "/v1/ws?token=gone-key", &[]).await.expect("ws");
    crate::ws::send(
        &mut ws,
        json!({"op": "subscribe", "ref": 1, "topic": "r.x", "after": "latest"}),
    )
    .await;
    assert_eq!(crate::ws::recv(&mut ws).await["op"], "subscribed");
    let mut grpc = HeraldClient::connect(s.url()).await.expect("grpc");
    let mut req = tonic::Request::new(SubscribeRequest {
        patterns: vec!["r.x".into()],
        after: "latest".into(),
    });
    req.metadata_mut().insert(
        "authorization",
        "Bearer gone-key".parse().expect("metadata"),
    );
    let mut stream = grpc.subscribe(req).await.expect("subscribe").into_inner();
    // A gRPC consumer and a gRPC responder with the same key.
    let (consume_tx, consume_rx) = tokio::sync::mpsc::channel(4);
    consume_tx
        .send(grpc::ConsumeRequest {
            request: Some(grpc::consume_request::Request::Start(grpc::ConsumeStart {
                topic: "r.x".into(),
                group: "g".into(),
                prefetch: 1,
            })),
        })
        .await
        .expect("start");
    let mut req = tonic::Request::new(crate::grpc::outbound(consume_rx));
    req.metadata_mut().insert(
        "authorization",
        "Bearer gone-key".parse().expect("metadata"),
    );
    let mut consuming = grpc.consume(req).await.expect("consume").into_inner();
    let (serve_tx, serve_rx) = tokio::sync::mpsc::channel(4);
    serve_tx
        .send(grpc::ServeRequest {
            request: Some(grpc::serve_request::Request::Start(grpc::ServeStart {
                service: "revoked".into(),
            })),
        })
        .await
        .expect("start");
    let mut req = tonic::Request::new(crate::grpc::outbound(serve_rx));
    req.metadata_mut().insert(
        "authorization",
        "Bearer gone-key".parse().expect("metadata"),
    );
    let mut serving = grpc.serve(req).await.expect("serve").into_inner();

    let next = herald_server::Config {
        auth: Some(auth(vec![keep])),
        ..herald_server::Config::default()
    };
    s.server().reload(&next).expect("reload");

    let ended = close_event(&mut sse).await;
    assert!(ended.contains("token_revoked"), "{ended}");
    let (code, reason, _) = closed(&mut ws).await;
    assert_eq!(
        (code, reason.starts_with("token_revoked")),
        (4001, true),
        "{reason}"
    );
    let st = ended_with(&mut stream).await;
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "{st:?}");
    let st = ended_with(&mut consuming).await;
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "consume: {st:?}");
    let st = ended_with(&mut serving).await;
    assert_eq!(st.code(), tonic::Code::Unauthenticated, "serve: {st:?}");
    drop((consume_tx, serve_tx));
    let res = s
        .http()
        .get(s.at("/v1/topics/r.x/messages"))
        .bearer_auth("gone-key")
        .send()
        .await
        .expect("read");
    assert_eq!(res.status(), 401, "a removed key");
    let res = s
        .http()
        .get(s.at("/v1/topics/r.x/messages"))
        .bearer_auth("keep-key")
        .send()
        .await
        .expect("read");
    assert_eq!(res.status(), 200, "a kept key");
}

#[tokio::test]
async fn live_streams_end_when_their_jwt_expires() {
    let s = TestServer::start_with(|c| {
        c.auth = Some(AuthConfig {
            jwt: Some(JwtConfig {
                hs256_secret: Some(SECRET.into()),
                leeway_seconds: 0,
                ..JwtConfig::default()
            }),
            ..AuthConfig::default()
        });
    })
    .await;
    let claim = || HeraldClaim {
        publish: strings(&["e.>"]),
        subscribe: strings(&["e.>"]),
        admin: false,
    };
    let key = SigningKey::Secret(SECRET.into());
    // `exp` has whole seconds: 2 s leaves at least 1 s to connect.
    let short = mint(&key, Some("brief".into()), claim(), Duration::from_secs(2)).expect("mint");
    let res = s
        .http()
        .get(s.at("/v1/events?topic=e.x&after=latest"))
        .bearer_auth(&short)
        .send()
        .await
        .expect("sse");
    assert_eq!(res.status(), 200);
    let mut sse = res.bytes_stream().eventsource();
    let mut ws = connect(&s, &format!("/v1/ws?token={short}"), &[])
        .await
        .expect("ws");
    let ended = close_event(&mut sse).await;
    assert!(ended.contains("token_expired"), "{ended}");
    let (code, reason, _) = closed(&mut ws).await;
    assert_eq!(
        (code, reason.starts_with("token_expired")),
        (4001, true),
        "{reason}"
    );
    // A longer token from `herald token create`'s minting works.
    let long = mint(&key, None, claim(), Duration::from_secs(3600)).expect("mint");
    let res = s
        .http()
        .post(s.at("/v1/topics/e.x/messages"))
        .bearer_auth(&long)
        .body("1")
        .send()
        .await
        .expect("publish");
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn anonymous_callers_get_only_the_configured_grants() {
    let s = TestServer::start_with(|c| {
        c.auth = Some(AuthConfig {
            anonymous: Some(GrantsConfig {
                publish: Vec::new(),
                subscribe: strings(&["public.>"]),
            }),
            api_keys: vec![api_key("w", "writer", &["public.>"], &[])],
            ..AuthConfig::default()
        });
    })
    .await;
    let http = s.http();
    let res = http
        .post(s.at("/v1/topics/public.news/messages"))
        .bearer_auth("writer")
        .header("content-type", "application/json")
        .body("1")
        .send()
        .await
        .expect("publish");
    assert_eq!(res.status(), 201);
    let (status, read) = crate::get(&http, &s.url(), "/v1/topics/public.news/messages").await;
    assert_eq!((status, crate::datas(&read)), (200, vec![json!(1)]));
    let res = http
        .post(s.at("/v1/topics/public.news/messages"))
        .body("2")
        .send()
        .await
        .expect("publish");
    assert_eq!(res.status(), 401, "anonymous may not publish");
    assert_eq!(
        res.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer realm=\"herald\"")
    );
    let (status, _) = crate::get(&http, &s.url(), "/v1/topics/private/messages").await;
    assert_eq!(status, 401, "anonymous may not read outside its grant");
    // The writer key may publish but not read.
    let res = http
        .get(s.at("/v1/topics/public.news/messages"))
        .bearer_auth("writer")
        .send()
        .await
        .expect("read");
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn anonymous_full_access_is_refused_off_loopback() {
    let mut config = herald_server::Config {
        listen: "0.0.0.0:0".parse().expect("addr"),
        memory: true,
        ..herald_server::Config::default()
    };
    let err = herald_server::Server::bind(config.clone())
        .await
        .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("--allow-anonymous") && msg.contains("[auth]"),
        "{msg}"
    );
    config.allow_anonymous = true;
    let s = herald_server::Server::bind(config.clone())
        .await
        .expect("allowed explicitly");
    s.shutdown().await;
    config.allow_anonymous = false;
    config.auth = Some(AuthConfig {
        api_keys: vec![api_key("k", "k", &[">"], &[">"])],
        ..AuthConfig::default()
    });
    let s = herald_server::Server::bind(config)
        .await
        .expect("allowed with auth");
    s.shutdown().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let s = TestServer::start_with(|c| {
        c.limits.rate_per_second = 1;
        c.limits.burst = 3;
    })
    .await;
    let http = s.http();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let res = http
            .get(s.at("/v1/topics/rl/messages"))
            .send()
            .await
            .expect("read");
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let problem: Value = res.json().await.expect("problem");
            assert_eq!(problem["code"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst passes");
    assert_eq!(statuses[4], 429, "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    let mut grpc = HeraldClient::connect(s.url()).await.expect("grpc");
    let err = grpc
        .publish(PublishRequest {
            topic: "rl".into(),
            data: b"1".to_vec().into(),
            ..Default::default()
        })
        .await
        .expect_err("limited");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
}

#[tokio::test]
async fn parked_long_polls_are_bounded() {
    let s = TestServer::start_with(|c| c.limits.max_long_polls = 1).await;
    let http = s.http();
    let parked = tokio::spawn({
        let (http, url) = (
            http.clone(),
            s.at("/v1/topics/lp/messages?after=latest&wait=10"),
        );
        async move {
            http.get(url)
                .send()
                .await
                .expect("parked")
                .status()
                .as_u16()
        }
    });
    // Wait until the first poll is parked.
    for _ in 0..500 {
        if s.server().hub().live_stats().listeners == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        s.server().hub().live_stats().listeners,
        1,
        "the first poll parks"
    );
    let refused = http
        .get(s.at("/v1/topics/lp2/messages?wait=5"))
        .send()
        .await
        .expect("poll");
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let problem: Value = refused.json().await.expect("problem");
    assert_eq!(problem["code"], "limit_reached");
    let metrics = http
        .get(s.at("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("herald_refusals_total")
                && l.contains("code=\"limit_reached\"")
                && l.contains("door=\"http\"")),
        "the refusal is counted:\n{metrics}"
    );
    crate::publish(&http, &s.url(), "lp", "1").await;
    assert_eq!(parked.await.expect("join"), 200);
    // The slot is free again.
    let (status, _) = crate::get(&http, &s.url(), "/v1/topics/lp/messages?wait=0.05").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_presents_its_token_on_every_transport() {
    use herald_client::{Event, PublishOptions, SubscribeOptions, Via};
    let s = rsa_server().await;
    let client = s.client().with_token("key-a").expect("token");
    let p = client
        .publish("a.sdk", "1", PublishOptions::json())
        .await
        .expect("publish with a key");
    let poll = Via::Poll {
        interval: Duration::from_millis(50),
    };
    for via in [Via::Ws, Via::Sse, Via::LongPoll, poll, Via::Grpc] {
        let mut sub = client.subscribe(
            "a.sdk",
            SubscribeOptions::new(via).after("earliest").fallback(false),
        );
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(Ok(Event::Message(m)))) => assert_eq!(m.id, p.id, "{via:?}"),
            other => panic!("{via:?}: expected the message, got {other:?}"),
        }
    }
    // Without the token every transport is refused, and the refusal is final.
    let anonymous = s.client();
    let e = anonymous
        .publish("a.sdk", "2", PublishOptions::json())
        .await
        .expect_err("refused");
    assert_eq!(e.kind(), herald_client::ErrorKind::Status(401));
    for via in [Via::Ws, Via::Sse, Via::Grpc] {
        let mut sub = anonymous.subscribe("a.sdk", SubscribeOptions::new(via).after("earliest"));
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(Err(_))) => {}
            other => panic!("{via:?}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_operations_count_against_the_rate_limit() {
    let s = TestServer::start_with(|c| {
        c.limits.rate_per_second = 1;
        c.limits.burst = 3;
    })
    .await;
    // The upgrade is one request; two publishes fit the burst, the third does not.
    let mut ws = connect(&s, "/v1/ws", &[]).await.expect("ws");
    let mut codes = Vec::new();
    for i in 0..3 {
        crate::ws::send(
            &mut ws,
            json!({"op": "publish", "ref": i, "topic": "wsrl", "data": i}),
        )
        .await;
        let f = crate::ws::recv(&mut ws).await;
        codes.push(
            f["code"]
                .as_str()
                .unwrap_or(f["op"].as_str().unwrap_or("?"))
                .to_owned(),
        );
    }
    assert_eq!(codes, ["published", "published", "rate_limited"]);
    // The connection stays: pings are not counted.
    crate::ws::send(&mut ws, json!({"op": "ping", "ref": "p"})).await;
    assert_eq!(crate::ws::recv(&mut ws).await["op"], "pong");
}

#[tokio::test]
async fn metrics_need_an_admin_token_when_auth_is_on() {
    let mut admin = api_key("ops", "ops-key", &[], &[]);
    admin.admin = true;
    let s = TestServer::start_with(|c| {
        c.auth = Some(AuthConfig {
            api_keys: vec![admin, api_key("user", "user-key", &[">"], &[">"])],
            ..AuthConfig::default()
        });
    })
    .await;
    let status = |token: Option<&str>| {
        let mut req = s.http().get(s.at("/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.expect("metrics").status().as_u16() }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("user-key")).await, 403);
    assert_eq!(status(Some("ops-key")).await, 200);
}

/// The status a gRPC stream ends with (within 10 s).
async fn ended_with<T>(stream: &mut tonic::Streaming<T>) -> tonic::Status {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the gRPC stream ended without a status"),
                Err(st) => return st,
            }
        }
    })
    .await
    .expect("the stream ends in time")
}

/// The data of the `close` event an SSE stream ends with (within 10 s).
async fn close_event<S, E>(sse: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<eventsource_stream::Event, E>> + Unpin,
    E: std::fmt::Debug,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match sse.next().await {
                Some(Ok(ev)) if ev.event == "close" => return ev.data,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("SSE failed before a close event: {e:?}"),
                None => panic!("SSE ended without a close event"),
            }
        }
    })
    .await
    .expect("SSE close in time")
}

#[tokio::test]
async fn the_per_address_limit_covers_every_key_from_that_address() {
    let s = TestServer::start_with(|c| {
        c.limits.ip_rate_per_second = 1;
        c.limits.ip_burst = 2;
        c.auth = Some(AuthConfig {
            api_keys: vec![
                api_key("one", "key-one", &[">"], &[">"]),
                api_key("two", "key-two", &[">"], &[">"]),
            ],
            ..AuthConfig::default()
        });
    })
    .await;
    let mut statuses = Vec::new();
    for key in ["key-one", "key-two", "key-one", "key-two"] {
        let res = s
            .http()
            .get(s.at("/v1/topics/ip/messages"))
            .bearer_auth(key)
            .send()
            .await
            .expect("read");
        statuses.push(res.status().as_u16());
    }
    assert_eq!(&statuses[..2], &[200, 200], "the burst passes");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
}

//! The accept path under hostile input: header read timeouts, connections per IP, and
//! the `/metrics` endpoint that counts them.

use herald_testkit::TestServer;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server whose clients must send request heads within one second.
async fn impatient() -> TestServer {
    TestServer::start_with(|c| {
        c.memory = true;
        c.limits.header_read_timeout_seconds = 1;
    })
    .await
}

/// Waits (at most 5 s) until the server closes `stream`; how long that took. Whatever
/// the server sends before closing is discarded.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server did not close the connection");
    since.elapsed()
}

/// Sends a GET for `path` on `stream` and reads one response: (head, body).
async fn raw_get(stream: &mut TcpStream, path: &str) -> (String, String) {
    let req = format!("GET {path} HTTP/1.1\r\nhost: herald\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    read_response(stream).await
}

/// Reads one response with a `content-length` body (or up to EOF without one).
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(usize::MAX);
                if data.len() - (end + 4) >= len {
                    let body = String::from_utf8_lossy(&data[end + 4..end + 4 + len]).to_string();
                    return (head, body);
                }
            }
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                let text = String::from_utf8_lossy(&data).to_string();
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                return (head.to_owned(), body.to_owned());
            }
            data.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("a response in time")
}

async fn metrics_text(s: &TestServer) -> String {
    let res = s
        .http()
        .get(s.at("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);
    res.text().await.expect("metrics text")
}

#[tokio::test]
async fn half_sent_head_is_closed_after_the_header_timeout() {
    let s = impatient().await;
    let mut slow = TcpStream::connect(s.addr()).await.expect("connect");
    let since = Instant::now();
    slow.write_all(b"GET /v1/topics/t/messages?wait=5 HTTP/1.1\r\nhost: her")
        .await
        .expect("write");
    // Another connection is served meanwhile.
    let (status, _) = super::get(&s.http(), &s.url(), "/healthz").await;
    assert_eq!(status, 200);
    let took = closed_after(&mut slow, since).await;
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    let mut fresh = TcpStream::connect(s.addr()).await.expect("connect");
    let (head, _) = raw_get(&mut fresh, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let text = metrics_text(&s).await;
    assert!(
        text.contains("herald_limit_rejections_total{limit=\"header_read_timeout\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn silent_connection_is_closed_after_the_header_timeout() {
    let s = impatient().await;
    let mut silent = TcpStream::connect(s.addr()).await.expect("connect");
    let took = closed_after(&mut silent, Instant::now()).await;
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
}

#[tokio::test]
async fn later_heads_on_a_kept_alive_connection_are_timed_too() {
    let s = impatient().await;
    let mut conn = TcpStream::connect(s.addr()).await.expect("connect");
    // A request hyper serves (not a long poll), then half of the next one.
    let (head, body) = raw_get(&mut conn, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("ok"), "{body}");
    let since = Instant::now();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost")
        .await
        .expect("write");
    let took = closed_after(&mut conn, since).await;
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
}

#[tokio::test]
async fn partial_http2_preface_is_closed_after_the_header_timeout() {
    let s = impatient().await;
    let mut h2 = TcpStream::connect(s.addr()).await.expect("connect");
    let since = Instant::now();
    h2.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    let took = closed_after(&mut h2, since).await;
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_get_429() {
    let s = TestServer::start_with(|c| {
        c.memory = true;
        c.limits.max_connections_per_ip = 2;
    })
    .await;
    let mut first = TcpStream::connect(s.addr()).await.expect("connect");
    let mut second = TcpStream::connect(s.addr()).await.expect("connect");
    for conn in [&mut first, &mut second] {
        let (head, _) = raw_get(conn, "/healthz").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    let mut third = TcpStream::connect(s.addr()).await.expect("connect");
    let (head, body) = raw_get(&mut third, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: Value = serde_json::from_str(&body).expect("problem json");
    assert_eq!(problem["status"], 429, "{problem}");
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://"))
    );
    // The open ones still work, and a freed slot is usable again.
    let (head, _) = raw_get(&mut second, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = TcpStream::connect(s.addr()).await.expect("connect");
        let (head, _) = raw_get(&mut again, "/healthz").await;
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot was never freed: {head}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(second);
    // /metrics needs a slot too: wait until the kept-alive connection is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let mut conn = TcpStream::connect(s.addr()).await.expect("connect");
        let (head, body) = raw_get(&mut conn, "/metrics").await;
        if head.starts_with("HTTP/1.1 200") {
            break body;
        }
        assert!(Instant::now() < deadline, "no slot for /metrics: {head}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        text.contains("herald_limit_rejections_total{limit=\"connections_per_ip\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_connections() {
    let s = TestServer::memory().await;
    let (status, _) = super::get(&s.http(), &s.url(), "/healthz").await;
    assert_eq!(status, 200);
    let res = s
        .http()
        .get(s.at("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = res.text().await.expect("text");
    assert!(
        text.contains("herald_connections_accepted_total{protocol=\"http1\",tls=\"false\"}"),
        "{text}"
    );
    assert!(text.contains("herald_connections_open{"), "{text}");
    assert!(
        text.contains("# TYPE herald_connections_accepted_total counter"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let s = TestServer::start_with(|c| {
        c.memory = true;
        c.metrics.enabled = false;
    })
    .await;
    let (status, _) = super::get(&s.http(), &s.url(), "/metrics").await;
    assert_eq!(status, 404);
}

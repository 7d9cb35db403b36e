//! Long polls and event streams on raw HTTP/1.1 connections: keep-alive, pipelining,
//! hand-over to the general HTTP path, and clients that go away.

use herald_testkit::TestServer;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one response with a content-length body; returns (status, head, body).
async fn response(s: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, String, String) {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                buf.drain(..end + 4 + len);
                let status = head[9..12].parse().expect("status");
                return (status, head, body);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        assert!(
            n > 0,
            "connection closed early; have {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn long_polls_keep_alive_pipeline_and_hand_over() {
    let s = TestServer::start().await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    let mut buf = Vec::new();
    // Two pipelined long polls, then a publish (not a long poll: served by the general path).
    let get = "GET /v1/topics/lean/messages?wait=0.2 HTTP/1.1\r\nhost: x\r\n\r\n";
    let post = "POST /v1/topics/lean/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1\r\n\r\n7";
    c.write_all(format!("{get}{get}{post}").as_bytes())
        .await
        .expect("write");
    for _ in 0..2 {
        let (status, head, body) = response(&mut c, &mut buf).await;
        assert_eq!(status, 200, "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json")
        );
        assert!(head.to_ascii_lowercase().contains("date: "));
        assert!(body.contains("\"messages\":[]"), "{body}");
    }
    let (status, _, body) = response(&mut c, &mut buf).await;
    assert_eq!(status, 201, "{body}");
    // The connection still serves long polls after the hand-over.
    c.write_all(b"GET /v1/topics/lean/messages?wait=1&after=earliest HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (status, _, body) = response(&mut c, &mut buf).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"data\":7"), "{body}");
    // Errors from the router come back as problem documents.
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    c.write_all(
        b"GET /v1/topics/lean/messages?wait=99 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let (status, head, body) = response(&mut c, &mut buf).await;
    assert_eq!(status, 400);
    assert!(head.contains("application/problem+json"));
    assert!(body.contains("invalid_wait"));
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
        .await
        .expect("closed")
        .expect("read");
    assert_eq!(n, 0, "connection: close is honoured");
}

#[tokio::test]
async fn event_streams_are_chunked_and_end_cleanly() {
    let s = TestServer::start().await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    c.write_all(
        b"GET /v1/topics/lean.sse/events HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n",
    )
    .await
    .expect("write");
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("event: open") {
        let mut chunk = [0u8; 4096];
        let n = c.read(&mut chunk).await.expect("read");
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200 ok\r\n"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"));
    assert!(text.contains("content-type: text/event-stream"));
    s.server().hub().begin_shutdown();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = c.read(&mut chunk).await.expect("read");
            rest.extend_from_slice(&chunk[..n]);
            if n == 0 || String::from_utf8_lossy(&rest).contains("0\r\n\r\n") {
                break;
            }
        }
    })
    .await
    .expect("the stream ends");
    assert!(String::from_utf8_lossy(&rest).contains("event: close"));
}

#[tokio::test]
async fn a_client_that_goes_away_releases_its_long_poll() {
    let s = TestServer::start().await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    c.write_all(b"GET /v1/topics/gone/messages?wait=30&after=latest HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let hub = s.server().hub().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hub.live_stats().listeners != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the long poll never parked"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(c);
    while hub.live_stats().listeners != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the parked poll outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! TLS on the one port: HTTP/1.1, HTTP/2 (ALPN) and WebSockets over TLS with a
//! self-signed certificate; plain HTTP and slow handshakes are refused.

use futures_util::StreamExt;
use herald_testkit::TestServer;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A self-signed certificate for `localhost` and `127.0.0.1`, written to a temporary
/// directory, and a server that uses it.
struct Tls {
    server: TestServer,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

async fn start(f: impl FnOnce(&mut herald_server::Config)) -> Tls {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, key.cert.pem()).expect("write cert");
    std::fs::write(&key_file, key.signing_key.serialize_pem()).expect("write key");
    let server = TestServer::start_with(|c| {
        c.memory = true;
        c.tls.cert_file = Some(cert_file);
        c.tls.key_file = Some(key_file);
        f(c);
    })
    .await;
    Tls {
        server,
        cert_pem: key.cert.pem(),
        cert_der: key.cert.der().clone(),
        _dir: dir,
    }
}

impl Tls {
    /// A client that trusts the certificate.
    fn http(&self, builder: reqwest::ClientBuilder) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).expect("cert");
        builder.add_root_certificate(cert).build().expect("client")
    }

    /// A rustls client configuration that trusts the certificate, offering `alpn`.
    fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

async fn publish_and_read(http: &reqwest::Client, url: &str, topic: &str) -> reqwest::Version {
    let published = super::publish(http, url, topic, "{\"n\":1}").await;
    assert!(published["id"].is_string(), "{published}");
    let res = http
        .get(format!("{url}/v1/topics/{topic}/messages"))
        .send()
        .await
        .expect("read");
    assert_eq!(res.status(), 200);
    let version = res.version();
    let read: serde_json::Value = res.json().await.expect("read json");
    assert_eq!(super::datas(&read), vec![serde_json::json!({"n": 1})]);
    version
}

#[tokio::test]
async fn https_serves_http1_and_http2_on_one_port() {
    let tls = start(|_| {}).await;
    let url = tls.server.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let h1 = tls.http(herald_testkit::http_builder().http1_only());
    assert_eq!(
        publish_and_read(&h1, &url, "tls.h1").await,
        reqwest::Version::HTTP_11
    );
    let h2 = tls.http(herald_testkit::http_builder());
    assert_eq!(
        publish_and_read(&h2, &url, "tls.h2").await,
        reqwest::Version::HTTP_2,
        "ALPN chooses HTTP/2"
    );
    // By name as well as by address.
    let by_name = tls.http(herald_testkit::http_builder().resolve("localhost", tls.server.addr()));
    let port = tls.server.addr().port();
    let (status, _) = super::get(&by_name, &format!("https://localhost:{port}"), "/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails() {
    let tls = start(|_| {}).await;
    let plain = herald_testkit::http_client();
    let res = plain
        .get(format!("http://{}/healthz", tls.server.addr()))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(res.is_err(), "plain HTTP was answered: {res:?}");
    // The server is unharmed.
    let https = tls.http(herald_testkit::http_builder());
    let (status, _) = super::get(&https, &tls.server.url(), "/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn websockets_work_over_tls() {
    let tls = start(|_| {}).await;
    let https = tls.http(herald_testkit::http_builder());
    super::publish(&https, &tls.server.url(), "tls.ws", "{\"n\":7}").await;
    let connector = tokio_tungstenite::Connector::Rustls(tls.client_config(&[]));
    let url = format!(
        "wss://{}/v1/topics/tls.ws/ws?after=earliest",
        tls.server.addr()
    );
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(connector))
            .await
            .expect("wss connect");
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a frame in time")
        .expect("open")
        .expect("frame");
    let msg: serde_json::Value =
        serde_json::from_str(frame.to_text().expect("text")).expect("json");
    assert_eq!(msg["data"]["n"], 7, "{msg}");
}

/// Waits (at most 5 s) until the server closes the stream; how long that took.
async fn closed_after<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, since: Instant) -> Duration {
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

#[tokio::test]
async fn handshake_must_finish_within_the_header_timeout() {
    let tls = start(|c| c.limits.header_read_timeout_seconds = 1).await;
    let mut silent = TcpStream::connect(tls.server.addr())
        .await
        .expect("connect");
    let since = Instant::now();
    let took = closed_after(&mut silent, since).await;
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn http2_over_tls_must_send_its_preface_in_time() {
    let tls = start(|c| c.limits.header_read_timeout_seconds = 1).await;
    let since = Instant::now();
    let tcp = TcpStream::connect(tls.server.addr())
        .await
        .expect("connect");
    let connector = tokio_rustls::TlsConnector::from(tls.client_config(&[b"h2"]));
    let name = ServerName::try_from("localhost").expect("name");
    let mut stream = connector.connect(name, tcp).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    // Handshake done, then silence instead of the HTTP/2 preface.
    let took = closed_after(&mut stream, since).await;
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

//! Sending one signed webhook request.

use super::ssrf::{Resolver, check_url};
use base64::Engine;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Most response bytes read from a receiver (the rest is discarded).
const MAX_RESPONSE: usize = 64 * 1024;

/// A `whsec_…` secret: 24 random bytes, base64.
pub fn new_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 24]>())
    )
}

/// The signing key of a `whsec_…` secret, if it is one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .ok()?;
    (16..=64).contains(&key.len()).then_some(key)
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let tag = herald_core::hmac::hmac_sha256(key, &signed);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// What one attempt did.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The HTTP status, when a response came.
    pub status: Option<u16>,
    /// Time to the response (or the failure).
    pub latency: Duration,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The receiver's `Retry-After`, if any.
    pub retry_after: Option<Duration>,
}

impl Attempt {
    /// 2xx.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// 410: the receiver asks never to be called again.
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// The webhook HTTP client.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Sender, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .dns_resolver(std::sync::Arc::new(Resolver { allow_private }))
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            // Endpoints often share a host (one receiver, many paths): keep enough
            // connections to it for every endpoint that delivers at once.
            .pool_max_idle_per_host(128)
            .build()?;
        Ok(Sender {
            http,
            allow_private,
        })
    }

    /// POSTs `body` to `url`, signed with `key`, as `webhook-id: id`.
    pub async fn send(&self, url: &str, key: &[u8], id: &str, body: Bytes) -> Attempt {
        let started = Instant::now();
        let fail = |error: String| Attempt {
            status: None,
            latency: started.elapsed(),
            error: Some(error),
            retry_after: None,
        };
        let url = match check_url(url, self.allow_private) {
            Ok(u) => u,
            Err(e) => return fail(e.to_string()),
        };
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let res = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature(key, id, timestamp, &body))
            .body(body)
            .send()
            .await;
        let mut res = match res {
            Ok(r) => r,
            Err(e) => return fail(describe(&e)),
        };
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Read (and drop) at most MAX_RESPONSE bytes, so a receiver cannot stall or flood us.
        let mut read = 0;
        while read < MAX_RESPONSE {
            match res.chunk().await {
                Ok(Some(c)) => read += c.len(),
                _ => break,
            }
        }
        let error = match status {
            200..=299 => None,
            300..=399 => Some(format!("HTTP {status}: redirects are not followed")),
            _ => Some(format!("HTTP {status}")),
        };
        Attempt {
            status: Some(status),
            latency: started.elapsed(),
            error,
            retry_after,
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    if e.is_timeout() {
        format!("timed out: {msg}")
    } else {
        msg
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at a day.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let d = match v.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v.trim())
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(d.min(Duration::from_secs(86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(new_secret().starts_with("whsec_") && secret_key(&new_secret()).is_some());
        assert!(secret_key("nope").is_none());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("999999999"),
            Some(Duration::from_secs(86_400))
        );
        assert!(parse_retry_after("soon").is_none());
    }
}

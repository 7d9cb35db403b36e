//! One HTTP/1.1 keep-alive connection with the least client-side work per request (as in
//! herald's own bench): requests pre-encoded, one write and usually one read per round
//! trip.

use bytes::Bytes;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawHttp {
    stream: TcpStream,
    buf: Vec<u8>,
    host: String,
}

impl RawHttp {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<RawHttp> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawHttp {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            host: addr.to_string(),
        })
    }

    /// Encodes a request once, for sending many times.
    pub fn encode(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Bytes {
        let mut out = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    /// Sends an encoded request and reads the response (content-length bodies only);
    /// fails on a non-2xx status. Returns the body.
    pub async fn roundtrip(&mut self, request: &[u8]) -> anyhow::Result<&[u8]> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        loop {
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                anyhow::bail!("connection closed by the server");
            }
            let mut headers = [httparse::EMPTY_HEADER; 24];
            let mut res = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = res.parse(&self.buf)? else {
                continue;
            };
            let status = res.code.unwrap_or(0);
            let len = res
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| anyhow::anyhow!("response without content-length"))?;
            if self.buf.len() < head + len {
                continue;
            }
            let body = &self.buf[head..head + len];
            if !(200..300).contains(&status) {
                anyhow::bail!("HTTP {status}: {}", String::from_utf8_lossy(body));
            }
            return Ok(body);
        }
    }
}

//! A lean SSE reader over raw HTTP/1.1 (chunked or close-delimited bodies): calls back
//! with each `data:` line.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Sse {
    stream: TcpStream,
    buf: Vec<u8>,
    chunked: bool,
}

impl Sse {
    /// Sends the request and returns once the response head has arrived.
    pub async fn open(addr: SocketAddr, path: &str) -> anyhow::Result<Sse> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let req =
            format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n");
        stream.write_all(req.as_bytes()).await?;
        let mut buf = Vec::with_capacity(8 * 1024);
        loop {
            if stream.read_buf(&mut buf).await? == 0 {
                anyhow::bail!("closed before the response head");
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = res.parse(&buf)? {
                if res.code != Some(200) {
                    anyhow::bail!("SSE answered {:?}", res.code);
                }
                let chunked = res.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("transfer-encoding")
                        && String::from_utf8_lossy(h.value).contains("chunked")
                });
                buf.drain(..head);
                return Ok(Sse {
                    stream,
                    buf,
                    chunked,
                });
            }
        }
    }

    /// Reads until the stream ends, calling `on` with each `data:` line's value.
    pub async fn run(mut self, mut on: impl FnMut(&[u8])) {
        let mut body: Vec<u8> = Vec::with_capacity(8 * 1024);
        let mut raw = std::mem::take(&mut self.buf);
        loop {
            // Move complete chunks (or everything, when not chunked) into `body`.
            if self.chunked {
                while let Some(nl) = raw.windows(2).position(|w| w == b"\r\n") {
                    let size = std::str::from_utf8(&raw[..nl])
                        .ok()
                        .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
                    let Some(size) = size else { return };
                    if size == 0 {
                        return;
                    }
                    if raw.len() < nl + 2 + size + 2 {
                        break;
                    }
                    body.extend_from_slice(&raw[nl + 2..nl + 2 + size]);
                    raw.drain(..nl + 2 + size + 2);
                }
            } else {
                body.append(&mut raw);
            }
            let mut start = 0;
            while let Some(nl) = body[start..].iter().position(|&b| b == b'\n') {
                let line = &body[start..start + nl];
                if let Some(data) = line.strip_prefix(b"data: ") {
                    on(data);
                }
                start += nl + 1;
            }
            body.drain(..start);
            if raw.capacity() - raw.len() < 4096 {
                raw.reserve(16 * 1024);
            }
            match self.stream.read_buf(&mut raw).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

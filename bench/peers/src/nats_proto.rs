//! A lean NATS core subscriber that speaks the text protocol over TCP or over NATS's
//! WebSocket listener (the same bytes inside binary frames), so both transports are
//! measured with the same client work.

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::ws::WsStream;

enum Io {
    Tcp(TcpStream),
    Ws(Box<WsStream>),
}

pub struct NatsSub {
    io: Io,
    buf: Vec<u8>,
}

impl NatsSub {
    /// Connects, subscribes to `subject` and waits for the server to confirm (PONG).
    pub async fn subscribe(addr: SocketAddr, ws: bool, subject: &str) -> anyhow::Result<NatsSub> {
        let io = if ws {
            Io::Ws(Box::new(
                crate::ws::connect(&format!("ws://{addr}/"), None).await?,
            ))
        } else {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Io::Tcp(s)
        };
        let mut c = NatsSub {
            io,
            buf: Vec::with_capacity(8 * 1024),
        };
        c.line().await?; // INFO
        let hello = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"name\":\"peers\"}}\r\nSUB {subject} 1\r\nPING\r\n"
        );
        c.write(hello.as_bytes()).await?;
        loop {
            let l = c.line().await?;
            if l.starts_with(b"PONG") {
                return Ok(c);
            }
            if l.starts_with(b"-ERR") {
                anyhow::bail!("nats: {}", String::from_utf8_lossy(&l));
            }
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        match &mut self.io {
            Io::Tcp(s) => {
                if self.buf.capacity() - self.buf.len() < 4096 {
                    self.buf.reserve(16 * 1024);
                }
                if s.read_buf(&mut self.buf).await? == 0 {
                    anyhow::bail!("closed");
                }
            }
            Io::Ws(w) => match w.next().await {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Text(t))) => self.buf.extend_from_slice(t.as_bytes()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("closed"),
            },
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match &mut self.io {
            Io::Tcp(s) => s.write_all(bytes).await?,
            Io::Ws(w) => w.send(Message::Binary(bytes.to_vec().into())).await?,
        }
        Ok(())
    }

    /// The next protocol line (without CRLF), consumed from the buffer.
    async fn line(&mut self) -> anyhow::Result<Vec<u8>> {
        loop {
            if let Some(end) = find_crlf(&self.buf) {
                let l = self.buf[..end].to_vec();
                self.buf.drain(..end + 2);
                return Ok(l);
            }
            self.fill().await?;
        }
    }

    /// Reads messages until the connection ends, calling `on` with each payload.
    pub async fn run(mut self, mut on: impl FnMut(&[u8])) {
        let mut start = 0;
        loop {
            // Parse everything complete in the buffer.
            while let Some(end) = find_crlf(&self.buf[start..]) {
                let line = &self.buf[start..start + end];
                if line.starts_with(b"MSG ") {
                    let size = line
                        .rsplit(|&b| b == b' ')
                        .next()
                        .and_then(|s| std::str::from_utf8(s).ok())
                        .and_then(|s| s.parse::<usize>().ok())
                        .unwrap_or(0);
                    let body = start + end + 2;
                    if self.buf.len() < body + size + 2 {
                        break;
                    }
                    on(&self.buf[body..body + size]);
                    start = body + size + 2;
                } else {
                    let ping = line.starts_with(b"PING");
                    start += end + 2;
                    if ping && self.write(b"PONG\r\n").await.is_err() {
                        return;
                    }
                }
            }
            self.buf.drain(..start);
            start = 0;
            if self.fill().await.is_err() {
                return;
            }
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

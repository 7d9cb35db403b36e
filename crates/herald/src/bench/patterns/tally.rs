//! What the clients of one pattern saw, summed over all of them, and the byte-counting
//! socket every client (and the webhook receiver) talks through.

use crate::bench::clients::{now_us, parse_payload};
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Counters shared by every client of one pattern.
#[derive(Debug)]
pub struct Tally {
    /// HTTP requests, WebSocket upgrades and gRPC calls made (for webhooks: the POSTs the
    /// server made to the receiver).
    pub requests: AtomicU64,
    /// Poll responses without a message.
    pub empty: AtomicU64,
    /// Bytes the clients' sockets read plus wrote (TCP payload: HTTP heads, bodies and
    /// chunk framing, WebSocket frames, HTTP/2 frames; no TCP/IP headers).
    pub bytes: AtomicU64,
    /// Client sockets open now.
    pub open: AtomicU64,
    /// Distinct messages received, summed over clients.
    pub delivered: AtomicU64,
    /// Messages received again (at or before one already seen).
    pub duplicates: AtomicU64,
    /// Messages that arrived ahead of an earlier one (a gap).
    pub disorder: AtomicU64,
    /// Clients that failed, and the last failure.
    pub errors: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// Publish → receipt, in microseconds.
    pub latency: Mutex<Histogram<u64>>,
}

/// The counters that are measured over a window (before and after it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub requests: u64,
    pub empty: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn new() -> anyhow::Result<Arc<Tally>> {
        Ok(Arc::new(Tally {
            requests: AtomicU64::new(0),
            empty: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            open: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            disorder: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            latency: Mutex::new(Histogram::new(3)?),
        }))
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.load(Ordering::Relaxed),
            empty: self.empty.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn fail(&self, e: &anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(format!("{e:#}"));
        }
    }
}

/// One client's position: the next payload number it expects.
#[derive(Debug, Default)]
pub struct Receiver {
    next: u64,
}

impl Receiver {
    /// Records one received message (bench payload `{"n":…,"t":…}` somewhere in `frame`);
    /// frames without one (subscribe confirmations, open events) are ignored.
    pub fn got(&mut self, tally: &Tally, frame: &[u8]) {
        let Some((n, t)) = parse_payload(frame) else {
            return;
        };
        if n < self.next {
            tally.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if n > self.next {
            tally.disorder.fetch_add(1, Ordering::Relaxed);
        }
        self.next = n + 1;
        tally.delivered.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = tally.latency.lock() {
            let _ = h.record(now_us().saturating_sub(t));
        }
    }
}

/// A TCP stream that adds every byte read or written to a [`Tally`] and counts itself as
/// open while it lives.
#[derive(Debug)]
pub struct Counted {
    inner: TcpStream,
    tally: Arc<Tally>,
}

impl Counted {
    pub async fn connect(addr: SocketAddr, tally: Arc<Tally>) -> std::io::Result<Counted> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Counted::new(s, tally))
    }

    pub fn new(inner: TcpStream, tally: Arc<Tally>) -> Counted {
        tally.open.fetch_add(1, Ordering::Relaxed);
        Counted { inner, tally }
    }

    fn add(&self, n: usize) {
        self.tally.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.tally.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.add(buf.filled().len() - before);
        }
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.add(n);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.add(n);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

//! A connection's byte stream with its limits: the per-IP slot, the open-connections
//! gauge, and the deadlines on request heads and the HTTP/2 preface.

use super::*;

/// A connection's byte stream, holding its per-IP slot and its place in the open
/// connections gauge for as long as it lives (also after a WebSocket upgrade).
pub(super) struct Conn<IO> {
    pub(super) io: IO,
    /// HTTP/1: whether a request has begun but its head is not yet answered (bytes
    /// read since the last write, or nothing written yet).
    pub(super) awaiting_head: Option<Arc<AtomicBool>>,
    /// HTTP/2 over TLS: the preface is due by a deadline.
    pub(super) preface: Option<Preface>,
    pub(super) _open: OpenConnection,
    pub(super) _slot: Slot,
}

pub(super) struct Preface {
    pub(super) remaining: usize,
    pub(super) timer: Pin<Box<tokio::time::Sleep>>,
}

impl<IO> Conn<IO> {
    pub(super) fn new(io: IO, slot: Slot, open: OpenConnection) -> Self {
        Conn {
            io,
            awaiting_head: None,
            preface: None,
            _open: open,
            _slot: slot,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > 0 {
                    if let Some(a) = &this.awaiting_head {
                        a.store(true, Ordering::Relaxed);
                    }
                    if let Some(p) = &mut this.preface {
                        p.remaining = p.remaining.saturating_sub(n);
                        if p.remaining == 0 {
                            this.preface = None;
                        }
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if let Some(p) = &mut this.preface
                    && p.timer.as_mut().poll(cx).is_ready()
                {
                    this.preface = None;
                    metrics::rejected(LIMIT_HEADER_READ_TIMEOUT);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no HTTP/2 preface within the header read timeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> Conn<IO> {
    pub(super) fn wrote(&self, n: usize) {
        if n > 0
            && let Some(a) = &self.awaiting_head
        {
            a.store(false, Ordering::Relaxed);
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.wrote(n);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.wrote(n);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

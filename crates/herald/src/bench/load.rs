//! The load-generation core: a closed loop of `concurrency` workers, each repeating one
//! operation until the deadline, with latency recorded in HDR histograms and a progress
//! bar.

use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// What one measured run produced.
#[derive(Debug)]
pub struct LoadResult {
    /// Operations completed in the measured window.
    pub ops: u64,
    /// Units of work (messages) completed in the measured window.
    pub units: u64,
    /// Errors in the measured window.
    pub errors: u64,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Latency of each operation, in microseconds.
    pub latency: Histogram<u64>,
}

/// Runs `op` in a loop on `concurrency` workers: `warmup` unmeasured, then `duration`
/// measured. `op` returns the units of work it completed (e.g. messages in a batch).
pub async fn closed_loop<W, F, Fut>(
    label: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    make_worker: W,
) -> anyhow::Result<LoadResult>
where
    W: Fn(usize) -> F,
    F: Future<Output = anyhow::Result<Box<dyn FnMut() -> Fut + Send>>>,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let mut op = make_worker(i).await?;
        let (measuring, stop, done) = (measuring.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut ops, mut units, mut errors) = (0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let r = op().await;
                let on = measuring.load(Ordering::Relaxed);
                match r {
                    Ok(n) if on => {
                        let _ = hist.record(start.elapsed().as_micros() as u64);
                        ops += 1;
                        units += n;
                        done.fetch_add(n, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) if on => errors += 1,
                    Err(_) => {}
                }
            }
            (hist, ops, units, errors)
        }));
    }
    let bar = ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    bar.set_message("warming up");
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let secs = started.elapsed().as_secs_f64().max(0.001);
        bar.set_position(started.elapsed().as_millis() as u64);
        bar.set_message(format!(
            "{:.0}/s",
            done.load(Ordering::Relaxed) as f64 / secs
        ));
    }
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    bar.finish_and_clear();
    let mut latency = Histogram::<u64>::new(3)?;
    let (mut ops, mut units, mut errors) = (0, 0, 0);
    for t in tasks {
        let (h, o, u, e) = t.await?;
        latency.add(h)?;
        ops += o;
        units += u;
        errors += e;
    }
    Ok(LoadResult {
        ops,
        units,
        errors,
        elapsed,
        latency,
    })
}

/// One HTTP/1.1 keep-alive connection with the least possible client-side work per
/// request (like wrk): one task, requests pre-encoded, one write and usually one read per
/// round trip, no allocation per request. The load generator shares the machine with the
/// server it measures, so its own cost matters.
pub struct RawHttp {
    stream: TcpStream,
    buf: Vec<u8>,
    host: String,
    /// `authorization: Bearer …\r\n`, when the server needs a token.
    auth: String,
}

impl RawHttp {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<RawHttp> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawHttp {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            host: addr.to_string(),
            auth: String::new(),
        })
    }

    /// Presents `token` (an API key or a JWT) on every request encoded from now on.
    pub fn with_token(mut self, token: Option<&str>) -> RawHttp {
        self.auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        self
    }

    /// Encodes a request once, for sending many times.
    pub fn encode(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Bytes {
        let mut out = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\n{}content-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            self.host,
            self.auth,
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    /// Sends an encoded request and reads the response; fails on a non-2xx status.
    /// Returns the response body.
    pub async fn roundtrip(&mut self, request: &[u8]) -> anyhow::Result<&[u8]> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(request).await?;
        self.buf.clear();
        loop {
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                anyhow::bail!("connection closed by the server");
            }
            let mut headers = [httparse::EMPTY_HEADER; 16];
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

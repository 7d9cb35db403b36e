//! Open connections per client IP address, and the 429 answer beyond the limit.

use super::*;

/// Open connections per IP address.
#[derive(Debug)]
pub(super) struct PerIp {
    pub(super) max: u32,
    pub(super) counts: Mutex<HashMap<IpAddr, u32>>,
    pub(super) refusing: AtomicUsize,
}

/// One connection's place in [`PerIp`], given back when dropped.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) owner: Option<(Arc<PerIp>, IpAddr)>,
}

impl PerIp {
    /// `max` = 0: unlimited.
    pub(super) fn new(max: u32) -> Arc<PerIp> {
        Arc::new(PerIp {
            max,
            counts: Mutex::new(HashMap::new()),
            refusing: AtomicUsize::new(0),
        })
    }

    /// A slot for a connection from `ip`, or `None` when `ip` holds the maximum.
    pub(super) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.max == 0 {
            return Some(Slot { owner: None });
        }
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: Some((self.clone(), ip)),
        })
    }

    /// Answers a refused HTTP/1 connection with a 429 problem document and closes it,
    /// in the background; when many are being answered already, just closes it.
    pub(super) fn refuse(self: &Arc<Self>, stream: TcpStream) {
        if self.refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
            self.refusing.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), answer_429(stream)).await;
            this.refusing.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((per_ip, ip)) = &self.owner else {
            return;
        };
        let mut counts = per_ip.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(ip);
            }
        }
    }
}

pub(super) async fn answer_429(mut stream: TcpStream) {
    let problem = ApiError::new(
        ErrorCode::RateLimited,
        "too many connections from this address; close some and retry",
    )
    .problem();
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut res = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    res.extend_from_slice(&body);
    if stream.write_all(&res).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    // Read what the client sent until it closes: closing with unread bytes would reset
    // the connection, and the client might lose the answer.
    let mut sink = [0u8; 1024];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

//! A prefetching group member for long-lived connections.

use super::{Delivery, Group};
use crate::error::HubError;
use crate::hub::Hub;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::{Duration, Instant};

/// A group member that keeps up to `prefetch` unsettled deliveries: a `Stream` of
/// delivery batches. Settle deliveries with [`Hub::ack`] / [`Hub::nack`]; capacity frees
/// as they settle (or their leases expire). Dropping it releases its leases for
/// redelivery.
pub struct Consumer {
    holder: u64,
    group: Arc<Group>,
    inner: BoxStream<'static, Result<Vec<Delivery>, HubError>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.group)
            .field("holder", &self.holder)
            .finish()
    }
}

/// Owns the member's identity; releases its leases when the consumer goes away.
struct Member {
    hub: Hub,
    group: Arc<Group>,
    holder: u64,
    prefetch: usize,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.group.release(&self.hub, self.holder);
    }
}

impl Member {
    fn held(&self) -> usize {
        self.group
            .state()
            .leases
            .values()
            .filter(|l| l.holder == Some(self.holder))
            .count()
    }

    async fn next(&mut self) -> Option<Result<Vec<Delivery>, HubError>> {
        let shutdown = self.hub.shutdown_token();
        loop {
            let notified = self.group.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shutdown.is_cancelled() {
                return None;
            }
            let room = self.prefetch.saturating_sub(self.held());
            if room > 0 {
                match self.group.take(&self.hub, room, None, Some(self.holder)) {
                    Ok(d) if !d.is_empty() => return Some(Ok(d)),
                    Ok(_) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
            let due = self
                .group
                .next_due()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.cancelled() => return None,
            }
        }
    }
}

impl Consumer {
    pub(crate) fn new(hub: Hub, group: Arc<Group>, prefetch: usize) -> Consumer {
        let holder = hub.groups().holder_id();
        let member = Member {
            hub,
            group: group.clone(),
            holder,
            prefetch,
        };
        let inner = Box::pin(futures_util::stream::unfold(member, |mut m| async move {
            let item = m.next().await?;
            Some((item, m))
        }));
        Consumer {
            holder,
            group,
            inner,
        }
    }

    /// The topic consumed.
    pub fn topic(&self) -> &crate::TopicName {
        &self.group.topic
    }

    /// The group name.
    pub fn group(&self) -> &str {
        &self.group.name
    }
}

impl Stream for Consumer {
    type Item = Result<Vec<Delivery>, HubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

//! Live subscriptions: catch up from storage, then follow the live fan-out, with no gap
//! and no duplicate at the hand-over.
//!
//! A subscription registers with the fan-out *before* its first storage read, so every
//! message committed after registration reaches its queue, and every message committed
//! before is visible to the read. Messages at or below the delivered position are
//! dropped, which removes the overlap. The queue is bounded: when it overflows it is
//! emptied and marked, and the subscription goes back to reading storage from its last
//! delivered position. A subscription that overflows too often is closed with its cursor
//! so the client can resume. Messages are shared (`Arc`), never copied per subscriber.

use crate::cursor::Cursor;
use crate::error::HubError;
use crate::fanout::{Listener, Registration};
use crate::hub::{Hub, ResetInfo, Resolved};
use crate::message::Message;
use crate::topic::Filter;
use futures_util::Stream;
use herald_proto::ResetReason;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Settings of live subscriptions.
#[derive(Debug, Clone)]
pub struct SubscriptionOptions {
    /// Messages buffered per subscription between fan-out and delivery.
    pub buffer: usize,
    /// Payload bytes buffered per subscription (at least one message is always taken).
    pub buffer_bytes: usize,
    /// Most messages one storage read during catch-up returns.
    pub catchup_batch: usize,
    /// Overflows within `overflow_window` after which a subscription is closed as a slow
    /// consumer.
    pub max_overflows: u32,
    /// See `max_overflows`.
    pub overflow_window: Duration,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        SubscriptionOptions {
            buffer: 1024,
            buffer_bytes: 1024 * 1024,
            catchup_batch: 256,
            max_overflows: 4,
            overflow_window: Duration::from_secs(60),
        }
    }
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// It fell behind the live stream too often.
    SlowConsumer,
    /// The server is shutting down.
    ShuttingDown,
    /// Storage failed while catching up.
    StorageFailure,
    /// The subscriber's credential expired.
    TokenExpired,
    /// The subscriber's credential was revoked.
    TokenRevoked,
}

impl CloseReason {
    /// A stable name for the reason (`slow_consumer`, `shutting_down`,
    /// `storage_failure`, `token_expired`, `token_revoked`).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::ShuttingDown => "shutting_down",
            CloseReason::StorageFailure => "storage_failure",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::TokenRevoked => "token_revoked",
        }
    }
}

/// One item of a subscription.
#[derive(Debug, Clone)]
pub enum SubEvent {
    /// The start cursor was unknown, or messages the subscription had not delivered yet
    /// were removed: delivery continues from `info.earliest`.
    Reset(ResetInfo),
    /// Messages in log order (one or more).
    Messages(Vec<Arc<Message>>),
    /// The subscription ended; `cursor` is where to resume.
    Closed {
        /// Why.
        reason: CloseReason,
        /// The last delivered position.
        cursor: Cursor,
    },
}

#[derive(Debug, Default)]
struct QueueState {
    buf: VecDeque<Arc<Message>>,
    /// Payload bytes in `buf`.
    bytes: usize,
    overflowed: bool,
    closed: bool,
    waker: Option<Waker>,
    /// A wake was requested by this batch and not yet delivered.
    wake_pending: bool,
}

/// The bounded queue the fan-out fills.
#[derive(Debug)]
pub(crate) struct SubQueue {
    state: Mutex<QueueState>,
    cap: usize,
    cap_bytes: usize,
}

impl SubQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Messages currently buffered.
    pub(crate) fn len(&self) -> usize {
        self.lock().buf.len()
    }

    /// Takes everything buffered after `after`.
    fn drain_after(s: &mut QueueState, after: u64) -> Vec<Arc<Message>> {
        s.bytes = 0;
        s.buf.drain(..).filter(|m| m.seq() > after).collect()
    }
}

impl Listener for SubQueue {
    fn offer(&self, msg: &Arc<Message>) -> bool {
        let mut s = self.lock();
        if s.closed || s.overflowed {
            return false;
        }
        let size = msg.data.len();
        let full =
            s.buf.len() >= self.cap || (!s.buf.is_empty() && s.bytes + size > self.cap_bytes);
        if full {
            // Fall behind: free the buffer now; delivery resumes from storage.
            s.overflowed = true;
            s.buf = VecDeque::new();
            s.bytes = 0;
        } else {
            s.buf.push_back(msg.clone());
            s.bytes += size;
        }
        if s.waker.is_some() && !s.wake_pending {
            s.wake_pending = true;
            return true;
        }
        false
    }

    fn queued(&self) -> (usize, usize) {
        let s = self.lock();
        (s.buf.len(), s.bytes)
    }

    fn wake(&self) {
        let waker = {
            let mut s = self.lock();
            s.wake_pending = false;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn close(&self) {
        let waker = {
            let mut s = self.lock();
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Catchup,
    Live,
    Done,
}

/// A live subscription: a `Stream` of [`SubEvent`]s in log order.
pub struct Subscription {
    hub: Hub,
    filter: Filter,
    queue: Arc<SubQueue>,
    _registration: Registration,
    after: u64,
    phase: Phase,
    pending: Option<SubEvent>,
    overflows: VecDeque<Instant>,
    opts: SubscriptionOptions,
    /// Ends the subscription when the subscriber's credential lapses.
    lapse: Option<std::pin::Pin<Box<dyn std::future::Future<Output = CloseReason> + Send>>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("filter", &self.filter)
            .field("after", &self.after)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn start(
        hub: Hub,
        filter: Filter,
        start: crate::Start,
        queue: Arc<SubQueue>,
        registration: Registration,
        opts: SubscriptionOptions,
        who: &crate::Principal,
    ) -> Result<Subscription, HubError> {
        let mut sub = Subscription {
            lapse: who.lapse(),
            hub,
            filter,
            queue,
            _registration: registration,
            after: 0,
            phase: Phase::Catchup,
            pending: None,
            overflows: VecDeque::new(),
            opts,
        };
        match sub.hub.resolve(&sub.filter, start)? {
            Resolved::At { after, .. } => sub.after = after,
            Resolved::Reset(reason) => sub.reset(reason)?,
        }
        Ok(sub)
    }

    pub(crate) fn queue(opts: &SubscriptionOptions) -> Arc<SubQueue> {
        Arc::new(SubQueue {
            state: Mutex::new(QueueState::default()),
            cap: opts.buffer,
            cap_bytes: opts.buffer_bytes,
        })
    }

    /// The last delivered position: resuming after it loses and repeats nothing.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.hub.epoch(), self.after)
    }

    /// The filter this subscription follows.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Messages waiting in the live buffer.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn reset(&mut self, reason: ResetReason) -> Result<(), HubError> {
        let (info, floor) = self.hub.reset_info(&self.filter, reason)?;
        self.after = floor;
        self.pending = Some(SubEvent::Reset(info));
        Ok(())
    }

    fn close(&mut self, reason: CloseReason) -> SubEvent {
        self.phase = Phase::Done;
        SubEvent::Closed {
            reason,
            cursor: self.cursor(),
        }
    }

    /// Records an overflow; true when the subscription has overflowed too often.
    fn overflowed_too_often(&mut self) -> bool {
        let now = Instant::now();
        while self
            .overflows
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.opts.overflow_window)
        {
            self.overflows.pop_front();
        }
        self.overflows.push_back(now);
        self.overflows.len() as u32 >= self.opts.max_overflows
    }

    /// One step of catch-up from storage.
    fn catch_up(&mut self) -> Option<SubEvent> {
        let batch = match self
            .hub
            .store()
            .read(&self.filter, self.after, self.opts.catchup_batch)
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "subscription read failed");
                return Some(self.close(CloseReason::StorageFailure));
            }
        };
        if batch.trimmed > self.after {
            // Messages this subscription had not delivered yet were removed.
            return match self.reset(ResetReason::Expired) {
                Ok(()) => self.pending.take(),
                Err(_) => Some(self.close(CloseReason::StorageFailure)),
            };
        }
        if let Some(last) = batch.messages.last() {
            self.after = last.seq();
            return Some(SubEvent::Messages(batch.messages));
        }
        // Caught up with storage: switch to live unless the queue overflowed meanwhile.
        let mut q = self.queue.lock();
        if q.overflowed {
            q.overflowed = false;
            q.bytes = 0;
            drop(q);
            if self.overflowed_too_often() {
                return Some(self.close(CloseReason::SlowConsumer));
            }
            return None;
        }
        self.phase = Phase::Live;
        None
    }
}

impl Stream for Subscription {
    type Item = SubEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubEvent>> {
        let this = &mut *self;
        if this.phase != Phase::Done
            && let Some(lapse) = this.lapse.as_mut()
            && let Poll::Ready(reason) = lapse.as_mut().poll(cx)
        {
            this.lapse = None;
            return Poll::Ready(Some(this.close(reason)));
        }
        loop {
            if let Some(ev) = this.pending.take() {
                return Poll::Ready(Some(ev));
            }
            match this.phase {
                Phase::Done => return Poll::Ready(None),
                Phase::Catchup => {
                    if this.queue.lock().closed {
                        return Poll::Ready(Some(this.close(CloseReason::ShuttingDown)));
                    }
                    if let Some(ev) = this.catch_up() {
                        return Poll::Ready(Some(ev));
                    }
                }
                Phase::Live => {
                    let mut q = this.queue.lock();
                    if q.closed {
                        drop(q);
                        return Poll::Ready(Some(this.close(CloseReason::ShuttingDown)));
                    }
                    if q.overflowed {
                        q.overflowed = false;
                        q.bytes = 0;
                        drop(q);
                        this.phase = Phase::Catchup;
                        if this.overflowed_too_often() {
                            return Poll::Ready(Some(this.close(CloseReason::SlowConsumer)));
                        }
                        continue;
                    }
                    let out = SubQueue::drain_after(&mut q, this.after);
                    if let Some(last) = out.last() {
                        drop(q);
                        this.after = last.seq();
                        return Poll::Ready(Some(SubEvent::Messages(out)));
                    }
                    q.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

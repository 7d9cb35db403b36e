//! The delivery loops: one per endpoint (in order, from its cursor) and one for job
//! callbacks (a consumer group over `_herald.callbacks`, in parallel).

use super::{Endpoint, Webhooks, dlq, log_entry, log_publish, secret_key};
use futures_util::StreamExt;
use herald_core::jobs::{CALLBACK_TOPIC, CALLBACK_URL_HEADER};
use herald_core::{
    Cursor, Filter, GroupConfig, HubError, Pattern, Principal, Read, Start, TopicName, dead_letter,
};
use std::sync::Arc;
use std::time::Duration;

/// Messages read at once for one endpoint (delivered one at a time, in order).
const READ_AHEAD: usize = 64;

/// How long one read waits for the next message (the loop re-checks its state between).
const POLL: Duration = Duration::from_secs(25);

fn now_ms(w: &Webhooks) -> u64 {
    w.hub().options().clock.now_ms()
}

/// Delivers one endpoint's messages until it is deleted or the server stops.
pub(super) async fn endpoint(w: Arc<Webhooks>, ep: Arc<Endpoint>) {
    let hub = w.hub().clone();
    let shutdown = hub.shutdown_token();
    let (id, filter) = {
        let s = ep.state();
        let filter = Pattern::parse(&s.pattern)
            .ok()
            .and_then(|p| Filter::new(vec![p]).ok());
        (s.id.clone(), filter)
    };
    let Some(filter) = filter else {
        tracing::error!(webhook = id, "endpoint pattern is invalid; not delivering");
        return;
    };
    let system = Principal::system();
    let mut ahead: std::collections::VecDeque<std::sync::Arc<herald_core::Message>> =
        std::collections::VecDeque::new();
    let mut ahead_from: Option<u64> = None;
    loop {
        let rec = ep.state().clone();
        let wait = if rec.disabled.is_some() {
            Some(Duration::from_secs(3600))
        } else {
            let now = now_ms(&w);
            (rec.next_attempt_ms > now).then(|| Duration::from_millis(rec.next_attempt_ms - now))
        };
        if let Some(wait) = wait {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ep.wake.notified() => {}
                _ = ep.stop.cancelled() => return,
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        // Messages read ahead are every match after `ahead_from`: they stay valid while
        // the endpoint's position has not moved before it (a replay may).
        if ahead_from.is_some_and(|from| rec.cursor >= from) {
            while ahead.front().is_some_and(|m| m.seq() <= rec.cursor) {
                ahead.pop_front();
            }
            ahead_from = Some(rec.cursor);
        } else {
            ahead.clear();
        }
        if ahead.is_empty() {
            let read = Read {
                filter: filter.clone(),
                start: Start::After(Cursor::new(hub.epoch(), rec.cursor)),
                limit: READ_AHEAD,
                wait: POLL,
            };
            let page = tokio::select! {
                r = hub.read(&system, read) => r,
                _ = ep.wake.notified() => continue,
                _ = ep.stop.cancelled() => return,
                _ = shutdown.cancelled() => return,
            };
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(webhook = id, error = %e, "reading for a webhook failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Some(reset) = &page.reset {
                tracing::warn!(webhook = id, reason = ?reset.reason, "messages for this webhook were removed before delivery");
                let rec = {
                    let mut s = ep.state();
                    s.cursor = reset.earliest.seq;
                    s.attempt = 0;
                    s.last_error = Some(format!(
                        "messages removed before delivery ({:?})",
                        reset.reason
                    ));
                    s.clone()
                };
                let _ = w.save(&rec, Vec::new()).await;
                continue;
            }
            ahead.extend(page.messages);
            ahead_from = Some(rec.cursor);
        }
        let Some(m) = ahead.front().cloned() else {
            continue;
        };
        let key = secret_key(&rec.secret).unwrap_or_default();
        let body = bytes::Bytes::copy_from_slice(m.envelope().as_bytes());
        let attempt_no = rec.attempt + 1;
        let msg_id = m.id.to_string();
        let a = tokio::select! {
            a = w.sender().send(&rec.url, &key, &msg_id, body) => a,
            _ = ep.stop.cancelled() => return,
        };
        let mut msgs = Vec::new();
        let (next, outcome) = {
            let mut s = ep.state();
            if s.cursor != rec.cursor {
                // Replayed meanwhile: this result is for an old position.
                continue;
            }
            let outcome = if a.delivered() {
                s.cursor = m.seq();
                s.attempt = 0;
                s.next_attempt_ms = 0;
                s.delivered += 1;
                s.last_error = None;
                "delivered"
            } else if a.gone() {
                s.disabled = Some("the receiver answered 410 Gone".into());
                s.last_error = a.error.clone();
                "disabled"
            } else if attempt_no >= s.max_attempts {
                let error = a.error.clone().unwrap_or_default();
                if let Ok(t) = dlq(&s.id) {
                    msgs.push(dead_letter(&m, t, Some(&s.id), attempt_no, &error));
                }
                s.cursor = m.seq();
                s.attempt = 0;
                s.next_attempt_ms = 0;
                s.dead_lettered += 1;
                s.last_error = a.error.clone();
                "dead_lettered"
            } else {
                s.attempt = attempt_no;
                s.next_attempt_ms =
                    now_ms(&w) + w.delay(attempt_no, a.retry_after).as_millis() as u64;
                s.last_error = a.error.clone();
                "retrying"
            };
            (s.clone(), outcome)
        };
        let entry = log_entry(&m.id.to_string(), attempt_no, &a, outcome, &hub);
        if let Ok(p) = log_publish(&id, &entry) {
            msgs.insert(0, p);
        }
        // The new state must be stored before moving on; retry until it is.
        while let Err(e) = w.save(&next, msgs.clone()).await {
            if matches!(e, HubError::ShuttingDown) || shutdown.is_cancelled() {
                return;
            }
            tracing::error!(webhook = id, error = %e, "cannot store webhook state; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Delivers job callbacks: each callback message is POSTed to its URL, signed with its
/// job's secret; failures are nacked with the retry schedule's delay, and the group
/// dead-letters a callback after its last attempt.
pub(super) async fn callbacks(w: Arc<Webhooks>) {
    let hub = w.hub().clone();
    let system = Principal::system();
    let Ok(topic) = TopicName::parse(CALLBACK_TOPIC) else {
        return;
    };
    let cfg = GroupConfig {
        start: Start::Earliest,
        lease: Duration::from_secs(300),
        max_attempts: w.default_attempts(),
        dead_letter: None,
    };
    if let Err(e) = hub
        .configure_group(&system, &topic, "dispatcher", cfg)
        .await
    {
        tracing::error!(error = %e, "cannot set up the job callback dispatcher");
        return;
    }
    let Ok(mut consumer) = hub.consume(&system, &topic, "dispatcher", 32) else {
        return;
    };
    while let Some(batch) = consumer.next().await {
        let Ok(batch) = batch else { continue };
        for d in batch {
            let (w, topic) = (w.clone(), topic.clone());
            tokio::spawn(async move {
                let m = &d.message;
                let header = |k: &str| {
                    m.headers
                        .iter()
                        .find(|(hk, _)| &**hk == k)
                        .map(|(_, v)| v.to_string())
                };
                let (Some(url), Some(job)) = (header(CALLBACK_URL_HEADER), header("herald-job-id"))
                else {
                    let _ = w
                        .hub()
                        .ack(
                            &Principal::system(),
                            &topic,
                            "dispatcher",
                            std::slice::from_ref(&d.receipt),
                        )
                        .await;
                    return;
                };
                let key = match w.hub().callback_secret(&job).await {
                    Ok(s) => secret_key(&s).unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(job, error = %e, "no callback secret");
                        return;
                    }
                };
                let a = w
                    .sender()
                    .send(&url, &key, &m.id.to_string(), m.data.clone())
                    .await;
                let system = Principal::system();
                let receipts = [d.receipt.clone()];
                let r = if a.delivered() || a.gone() {
                    w.hub().ack(&system, &topic, "dispatcher", &receipts).await
                } else {
                    let delay = w.delay(d.attempt, a.retry_after);
                    w.hub()
                        .nack(
                            &system,
                            &topic,
                            "dispatcher",
                            &receipts,
                            delay,
                            a.error.clone(),
                        )
                        .await
                };
                if let Err(e) = r {
                    tracing::warn!(job, error = %e, "cannot settle a job callback");
                }
            });
        }
    }
}

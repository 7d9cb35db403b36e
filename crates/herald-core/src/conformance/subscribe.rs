//! Hub-level subscription scenarios over a store: catch-up to live without gap or
//! duplicate, resets, overflow back to storage, slow-consumer closure, shutdown.

use super::{Factory, text, topic};
use crate::clock::ManualClock;
use crate::hub::{Hub, HubOptions, Publish};
use crate::principal::Principal;
use crate::store::{LogStore, Retention};
use crate::subscription::{CloseReason, SubEvent, Subscription, SubscriptionOptions};
use crate::topic::{Filter, Pattern};
use crate::{Cursor, Start};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

fn hub(factory: &impl Factory, subs: SubscriptionOptions) -> Hub {
    let opts = HubOptions {
        clock: ManualClock::new(super::T0),
        subscriptions: subs,
        maintenance_interval: Duration::from_secs(3600),
        ..HubOptions::default()
    };
    Hub::open(opts, |ctx| Ok::<Arc<dyn LogStore>, ()>(factory(ctx)))
        .unwrap_or_else(|()| unreachable!())
}

fn filter(p: &str) -> Filter {
    Filter::new(vec![Pattern::parse(p).expect("pattern")]).expect("filter")
}

async fn publish(hub: &Hub, t: &str, body: &str) -> Cursor {
    hub.publish(
        &Principal::anonymous(),
        Publish::new(topic(t), "text/plain", body.to_owned()),
    )
    .await
    .expect("publish")
    .id
}

/// Collects message bodies until `n` arrived (failing on anything but messages).
async fn take(sub: &mut Subscription, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("subscription stalled")
            .expect("subscription ended");
        match ev {
            SubEvent::Messages(ms) => out.extend(
                ms.iter()
                    .map(|m| String::from_utf8_lossy(&m.data).into_owned()),
            ),
            other => panic!("expected messages, got {other:?}"),
        }
    }
    assert_eq!(out.len(), n, "no more than asked for arrived in one batch");
    out
}

/// Runs every subscription scenario, each on a fresh store.
pub async fn run_subscriptions(factory: impl Factory) {
    handover_has_no_gap_or_duplicate(&factory).await;
    latest_earliest_and_cursor_starts(&factory).await;
    unknown_and_expired_cursors_reset(&factory).await;
    overflow_falls_back_to_storage_then_closes_slow_consumers(&factory).await;
    shutdown_closes_with_cursor(&factory).await;
}

/// Subscribing while a publisher runs: the stream equals the log exactly.
pub async fn handover_has_no_gap_or_duplicate(factory: &impl Factory) {
    for round in 0..3 {
        let hub = hub(factory, SubscriptionOptions::default());
        let who = Principal::anonymous();
        for i in 0..100 {
            publish(&hub, "h.a", &i.to_string()).await;
        }
        let publisher = {
            let hub = hub.clone();
            tokio::spawn(async move {
                for i in 100..400 {
                    let t = if i % 3 == 0 { "h.b" } else { "h.a" };
                    publish(&hub, t, &i.to_string()).await;
                    if i % 50 == round {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let mut sub = hub
            .subscribe(&who, filter("h.*"), Start::Earliest)
            .expect("subscribe");
        let got = take(&mut sub, 400).await;
        publisher.await.expect("publisher");
        let want: Vec<String> = (0..400).map(|i| i.to_string()).collect();
        assert_eq!(got, want, "round {round}");
        assert_eq!(sub.cursor(), hub.latest());
    }
}

/// `latest` delivers only what comes next; a cursor resumes right after it.
pub async fn latest_earliest_and_cursor_starts(factory: &impl Factory) {
    let hub = hub(factory, SubscriptionOptions::default());
    let who = Principal::anonymous();
    let first = publish(&hub, "s", "old").await;
    let mut latest = hub
        .subscribe(&who, filter("s"), Start::Latest)
        .expect("subscribe");
    let mut from_first = hub
        .subscribe(&who, filter("s"), Start::After(first))
        .expect("subscribe");
    let mut earliest = hub
        .subscribe(&who, filter("s"), Start::Earliest)
        .expect("subscribe");
    publish(&hub, "s", "new").await;
    publish(&hub, "other", "x").await;
    assert_eq!(take(&mut latest, 1).await, vec!["new"]);
    assert_eq!(take(&mut from_first, 1).await, vec!["new"]);
    assert_eq!(take(&mut earliest, 2).await, vec!["old", "new"]);
    let denied = hub.subscribe(
        &Principal::new("k", vec![], vec![Pattern::parse("a.*").expect("p")], false),
        filter(">"),
        Start::Latest,
    );
    assert!(matches!(denied, Err(crate::HubError::Forbidden(_))));
}

/// Unknown cursors and removed, undelivered messages produce a reset first.
pub async fn unknown_and_expired_cursors_reset(factory: &impl Factory) {
    let hub = hub(factory, SubscriptionOptions::default());
    let who = Principal::anonymous();
    let a = publish(&hub, "r", "1").await;
    publish(&hub, "r", "2").await;
    let foreign = Cursor::new(crate::Epoch(a.epoch.0.wrapping_add(1)), 1);
    let mut sub = hub
        .subscribe(&who, filter("r"), Start::After(foreign))
        .expect("subscribe");
    match sub.next().await.expect("event") {
        SubEvent::Reset(info) => {
            assert_eq!(info.reason, crate::ResetReason::Epoch);
            assert_eq!(info.earliest.seq, 0);
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    assert_eq!(take(&mut sub, 2).await, vec!["1", "2"]);

    hub.set_retention(
        &who,
        &topic("r"),
        Retention {
            max_messages: Some(1),
            ..Retention::default()
        },
    )
    .await
    .expect("retention");
    let mut stale = hub
        .subscribe(&who, filter("r"), Start::After(Cursor::new(a.epoch, 0)))
        .expect("subscribe");
    match stale.next().await.expect("event") {
        SubEvent::Reset(info) => {
            assert_eq!(info.reason, crate::ResetReason::Expired);
            assert_eq!(info.earliest, a, "continues after the last removed message");
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    assert_eq!(take(&mut stale, 1).await, vec!["2"]);
    let mut after_a = hub
        .subscribe(&who, filter("r"), Start::After(a))
        .expect("subscribe");
    assert_eq!(
        take(&mut after_a, 1).await,
        vec!["2"],
        "nothing after `a` was removed"
    );
    // Live delivery: removing "2" once delivered is no gap.
    publish(&hub, "r", "3").await;
    assert_eq!(take(&mut after_a, 1).await, vec!["3"]);
}

/// A reader that falls behind its buffer catches up from storage and loses nothing; one
/// that keeps falling behind is closed with its cursor.
pub async fn overflow_falls_back_to_storage_then_closes_slow_consumers(factory: &impl Factory) {
    let opts = SubscriptionOptions {
        buffer: 8,
        buffer_bytes: 1024,
        catchup_batch: 16,
        max_overflows: 3,
        overflow_window: Duration::from_secs(600),
    };
    let hub = hub(factory, opts);
    let who = Principal::anonymous();
    let mut sub = hub
        .subscribe(&who, filter("o"), Start::Latest)
        .expect("subscribe");
    for i in 0..100 {
        publish(&hub, "o", &i.to_string()).await;
    }
    assert!(sub.queued() <= 8, "the buffer never grows past its bound");
    let got = take(&mut sub, 100).await;
    assert_eq!(got, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    // The first overflow is counted when catch-up reaches the live queue again (round
    // 0); rounds 1 and 2 overflow again, reaching the limit of three.
    let mut last = hub.latest();
    for round in 0..3 {
        hub.publish_batch(
            &who,
            (0..20)
                .map(|i| {
                    Ok(Publish::new(
                        topic("o"),
                        "text/plain",
                        format!("b{round}.{i}"),
                    ))
                })
                .collect(),
        )
        .await
        .expect("batch");
        match sub.next().await.expect("event") {
            SubEvent::Messages(ms) => last = ms.last().map(|m| m.id).unwrap_or(last),
            SubEvent::Closed { reason, cursor } => {
                assert_eq!(reason, CloseReason::SlowConsumer);
                assert_eq!(cursor, last, "closed with the last delivered position");
                assert_eq!(round, 2, "closed at the third overflow");
                assert!(sub.next().await.is_none());
                return;
            }
            other => panic!("unexpected {other:?}"),
        }
        // Drain what catch-up has, without reaching live again.
        while let Ok(Some(SubEvent::Messages(ms))) =
            tokio::time::timeout(Duration::from_millis(5), sub.next()).await
        {
            last = ms.last().map(|m| m.id).unwrap_or(last);
        }
    }
    panic!("the slow consumer was never closed");
}

/// Shutdown ends subscriptions with their cursor.
pub async fn shutdown_closes_with_cursor(factory: &impl Factory) {
    let hub = hub(factory, SubscriptionOptions::default());
    let who = Principal::anonymous();
    let mut sub = hub
        .subscribe(&who, filter(">"), Start::Latest)
        .expect("subscribe");
    let c = publish(&hub, "x", "1").await;
    assert_eq!(take(&mut sub, 1).await, vec!["1"]);
    let waiting = tokio::spawn(async move { sub.next().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    hub.begin_shutdown();
    match waiting.await.expect("join") {
        Some(SubEvent::Closed { reason, cursor }) => {
            assert_eq!(reason, CloseReason::ShuttingDown);
            assert_eq!(cursor, c);
        }
        other => panic!("expected closed, got {other:?}"),
    }
    assert!(hub.subscribe(&who, filter(">"), Start::Latest).is_err());
    let _ = text("x", "y");
}

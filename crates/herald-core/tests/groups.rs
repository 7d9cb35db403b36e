//! Consumer groups in the core, with paused time: leases, expiry, dead letters, redrive,
//! competing members, prefetching consumers.

use futures_util::StreamExt;
use herald_core::{
    Claim, GroupConfig, Hub, HubError, HubOptions, LogStore, MemoryStore, Principal, Publish,
    Start, TopicName,
};
use std::sync::Arc;
use std::time::Duration;

fn hub() -> Hub {
    Hub::open(HubOptions::default(), |ctx| {
        Ok::<_, ()>(Arc::new(MemoryStore::new(ctx)) as Arc<dyn LogStore>)
    })
    .unwrap_or_else(|()| unreachable!())
}

fn t(s: &str) -> TopicName {
    TopicName::parse(s).expect("topic")
}

async fn publish(hub: &Hub, topic: &str, n: usize) {
    for i in 0..n {
        hub.publish(
            &Principal::anonymous(),
            Publish::new(t(topic), "text/plain", i.to_string()),
        )
        .await
        .expect("publish");
    }
}

fn claim(max: usize) -> Claim {
    Claim {
        max,
        wait: Duration::ZERO,
        lease: None,
    }
}

fn body(d: &herald_core::Delivery) -> String {
    String::from_utf8_lossy(&d.message.data).into_owned()
}

#[tokio::test(start_paused = true)]
async fn leases_expire_and_redeliver_with_the_next_attempt() {
    let hub = hub();
    let who = Principal::anonymous();
    publish(&hub, "q", 2).await;
    let cfg = GroupConfig {
        lease: Duration::from_secs(10),
        max_attempts: 3,
        ..GroupConfig::default()
    };
    hub.configure_group(&who, &t("q"), "g", cfg)
        .await
        .expect("configure");
    let first = hub
        .claim(&who, &t("q"), "g", claim(1))
        .await
        .expect("claim");
    assert_eq!((body(&first[0]), first[0].attempt), ("0".into(), 1));
    // Nothing else is claimable while the lease holds... except the second message.
    let second = hub
        .claim(&who, &t("q"), "g", claim(5))
        .await
        .expect("claim");
    assert_eq!(second.iter().map(body).collect::<Vec<_>>(), vec!["1"]);
    hub.ack(&who, &t("q"), "g", std::slice::from_ref(&second[0].receipt))
        .await
        .expect("ack");
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(
        hub.claim(&who, &t("q"), "g", claim(5))
            .await
            .expect("claim")
            .is_empty()
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let again = hub
        .claim(&who, &t("q"), "g", claim(5))
        .await
        .expect("claim");
    assert_eq!((body(&again[0]), again[0].attempt), ("0".into(), 2));
    // The old holder's late ack is refused with a clear code.
    let late = hub
        .ack(&who, &t("q"), "g", std::slice::from_ref(&first[0].receipt))
        .await
        .expect("ack");
    assert!(
        matches!(late[0].outcome, Err(HubError::LeaseExpired(_))),
        "{:?}",
        late[0].outcome
    );
    let ok = hub
        .ack(&who, &t("q"), "g", std::slice::from_ref(&again[0].receipt))
        .await
        .expect("ack");
    assert!(ok[0].outcome.is_ok());
    let stats = hub.group_stats(&who, &t("q"), "g").expect("stats");
    assert_eq!(
        (stats.lag, stats.in_flight, stats.acked),
        (0, 0, hub.latest())
    );
}

#[tokio::test(start_paused = true)]
async fn a_claim_long_polls_until_a_message_or_a_redelivery() {
    let hub = hub();
    let who = Principal::anonymous();
    let waiting = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let c = Claim {
                max: 1,
                wait: Duration::from_secs(30),
                lease: Some(Duration::from_secs(5)),
            };
            hub.claim(&Principal::anonymous(), &t("lp"), "g", c).await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished());
    publish(&hub, "lp", 1).await;
    let got = waiting.await.expect("join").expect("claim");
    assert_eq!(got.len(), 1);
    // A second claim waits for the lease to run out, then gets the redelivery.
    let started = tokio::time::Instant::now();
    let c = Claim {
        max: 1,
        wait: Duration::from_secs(30),
        lease: None,
    };
    let redelivered = hub.claim(&who, &t("lp"), "g", c).await.expect("claim");
    assert_eq!(redelivered[0].attempt, 2);
    assert!(
        started.elapsed() >= Duration::from_secs(3) && started.elapsed() < Duration::from_secs(6)
    );
}

#[tokio::test(start_paused = true)]
async fn exhausted_messages_are_dead_lettered_with_their_history_and_redriven() {
    let hub = hub();
    let who = Principal::anonymous();
    publish(&hub, "jobs", 1).await;
    let cfg = GroupConfig {
        lease: Duration::from_secs(1),
        max_attempts: 2,
        ..GroupConfig::default()
    };
    hub.configure_group(&who, &t("jobs"), "w", cfg)
        .await
        .expect("configure");
    let a = hub
        .claim(&who, &t("jobs"), "w", claim(1))
        .await
        .expect("claim");
    hub.nack(
        &who,
        &t("jobs"),
        "w",
        std::slice::from_ref(&a[0].receipt),
        Duration::ZERO,
        Some("boom".into()),
    )
    .await
    .expect("nack");
    let b = hub
        .claim(&who, &t("jobs"), "w", claim(1))
        .await
        .expect("claim");
    assert_eq!(b[0].attempt, 2);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(
        hub.claim(&who, &t("jobs"), "w", claim(1))
            .await
            .expect("claim")
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stats = hub.group_stats(&who, &t("jobs"), "w").expect("stats");
    assert_eq!((stats.dead_lettered, stats.lag), (1, 0));
    let dlq = hub
        .read(
            &who,
            herald_core::Read {
                filter: herald_core::Filter::topic(&t("jobs.dlq")),
                start: Start::Earliest,
                limit: 10,
                wait: Duration::ZERO,
            },
        )
        .await
        .expect("read dlq");
    assert_eq!(dlq.messages.len(), 1);
    let m = &dlq.messages[0];
    assert_eq!(&m.data[..], b"0");
    let header = |k: &str| {
        m.headers
            .iter()
            .find(|(hk, _)| &**hk == k)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(header("herald-origin-topic").as_deref(), Some("jobs"));
    assert_eq!(
        header("herald-origin-id"),
        Some(a[0].message.id.to_string())
    );
    assert_eq!(header("herald-attempts").as_deref(), Some("2"));
    assert!(
        header("herald-last-error").is_some_and(|e| e.contains("lease expired")),
        "{:?}",
        header("herald-last-error")
    );
    assert_eq!(
        hub.redrive(&who, &t("jobs"), "w").await.expect("redrive"),
        1
    );
    let c = hub
        .claim(&who, &t("jobs"), "w", claim(1))
        .await
        .expect("claim");
    assert_eq!(
        (body(&c[0]), c[0].attempt),
        ("0".into(), 1),
        "redriven with fresh attempts"
    );
    hub.ack(&who, &t("jobs"), "w", std::slice::from_ref(&c[0].receipt))
        .await
        .expect("ack");
    assert_eq!(
        hub.group_stats(&who, &t("jobs"), "w")
            .expect("stats")
            .dead_lettered,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_members_each_get_every_message_exactly_once() {
    let hub = hub();
    publish(&hub, "work", 300).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let hub = hub.clone();
        tasks.push(tokio::spawn(async move {
            let who = Principal::anonymous();
            let mut mine = Vec::new();
            loop {
                let c = Claim {
                    max: 7,
                    wait: Duration::from_millis(200),
                    lease: None,
                };
                let got = hub.claim(&who, &t("work"), "pool", c).await.expect("claim");
                if got.is_empty() {
                    return mine;
                }
                let receipts: Vec<String> = got.iter().map(|d| d.receipt.clone()).collect();
                mine.extend(got.iter().map(body));
                for s in hub
                    .ack(&who, &t("work"), "pool", &receipts)
                    .await
                    .expect("ack")
                {
                    s.outcome.expect("every ack lands");
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("member"));
    }
    let mut sorted: Vec<u32> = all.iter().map(|s| s.parse().expect("number")).collect();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..300).collect::<Vec<_>>(),
        "every message once, none twice"
    );
}

#[tokio::test(start_paused = true)]
async fn prefetching_consumers_keep_their_window_and_release_leases_when_dropped() {
    let hub = hub();
    let who = Principal::anonymous();
    publish(&hub, "pf", 10).await;
    let mut c = hub.consume(&who, &t("pf"), "g", 3).expect("consume");
    let first = c.next().await.expect("batch").expect("ok");
    assert_eq!(first.len(), 3);
    let more = tokio::time::timeout(Duration::from_millis(100), c.next()).await;
    assert!(
        more.is_err(),
        "no more than the prefetch window is outstanding"
    );
    hub.ack(&who, &t("pf"), "g", std::slice::from_ref(&first[0].receipt))
        .await
        .expect("ack");
    let next = c.next().await.expect("batch").expect("ok");
    assert_eq!(next.len(), 1, "one settled, one more delivered");
    drop(c);
    // The dropped consumer's three leases are free at once (not after the lease).
    let got = hub
        .claim(&who, &t("pf"), "g", claim(10))
        .await
        .expect("claim");
    let bodies: Vec<String> = got.iter().map(body).collect();
    assert_eq!(bodies, vec!["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert_eq!(got[0].attempt, 2);
}

#[tokio::test]
async fn bad_group_requests_are_refused() {
    let hub = hub();
    let who = Principal::anonymous();
    assert!(matches!(
        hub.claim(&who, &t("x"), "bad name", claim(1)).await,
        Err(HubError::InvalidParameter(_))
    ));
    assert!(matches!(
        hub.claim(&who, &t("x"), "g", claim(0)).await,
        Err(HubError::InvalidParameter(_))
    ));
    assert!(matches!(
        hub.ack(&who, &t("x"), "nope", &["r".into()]).await,
        Err(HubError::GroupNotFound(_))
    ));
    let cfg = GroupConfig {
        dead_letter: Some(t("x")),
        ..GroupConfig::default()
    };
    assert!(
        hub.configure_group(&who, &t("x"), "g", cfg).await.is_err(),
        "a topic cannot be its own DLQ"
    );
    let cfg = GroupConfig {
        max_attempts: 0,
        ..GroupConfig::default()
    };
    assert!(hub.configure_group(&who, &t("x"), "g", cfg).await.is_err());
    let reader = Principal::new(
        "r",
        vec![],
        vec![herald_core::Pattern::parse("a.*").expect("p")],
        false,
    );
    assert!(matches!(
        hub.claim(&reader, &t("x"), "g", claim(1)).await,
        Err(HubError::Forbidden(_))
    ));
    let settled = {
        hub.claim(&who, &t("x"), "g", claim(1))
            .await
            .expect("implicit create");
        hub.ack(&who, &t("x"), "g", &["nonsense".into()])
            .await
            .expect("ack")
    };
    assert!(matches!(
        settled[0].outcome,
        Err(HubError::UnknownReceipt(_))
    ));
}

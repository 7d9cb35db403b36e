//! The conformance suite every [`LogStore`] must pass. A backend's tests call
//! [`run_all`] with a function that opens a fresh, empty store for a context.
//!
//! ```no_run
//! # async fn demo() {
//! use herald_core::{MemoryStore, conformance};
//! conformance::run_all(|ctx| std::sync::Arc::new(MemoryStore::new(ctx))).await;
//! # }
//! ```

mod subscribe;

pub use subscribe::run_subscriptions;

use crate::clock::ManualClock;
use crate::message::Message;
use crate::store::{Append, Appended, CommitSink, LogStore, Record, Retention, StoreContext};
use crate::topic::{Filter, Pattern, TopicName};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Opens a fresh, empty store.
pub trait Factory: Fn(StoreContext) -> Arc<dyn LogStore> {}
impl<F: Fn(StoreContext) -> Arc<dyn LogStore>> Factory for F {}

/// Records committed batches.
#[derive(Debug, Default)]
pub struct RecordingSink {
    seen: Mutex<Vec<u64>>,
}

impl RecordingSink {
    /// Positions committed so far, in the order the sink saw them.
    pub fn seqs(&self) -> Vec<u64> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl CommitSink for RecordingSink {
    fn committed(&self, batch: &[Arc<Message>]) {
        if let Ok(mut v) = self.seen.lock() {
            v.extend(batch.iter().map(|m| m.id.seq));
        }
    }
}

/// A store under test with its sink and clock.
#[derive(Debug)]
pub struct Rig {
    /// The store.
    pub store: Arc<dyn LogStore>,
    /// What it committed.
    pub sink: Arc<RecordingSink>,
    /// Its clock.
    pub clock: Arc<ManualClock>,
}

/// The start time of the manual clock (2024-01-01T00:00:00Z).
pub const T0: u64 = 1_704_067_200_000;

/// Opens a rig with the given default retention.
pub fn rig(factory: &impl Factory, default_retention: Retention) -> Rig {
    let sink = Arc::new(RecordingSink::default());
    let clock = ManualClock::new(T0);
    let store = factory(StoreContext {
        sink: sink.clone(),
        clock: clock.clone(),
        dedup_window: Duration::from_secs(120),
        default_retention,
    });
    Rig { store, sink, clock }
}

/// A topic name (panics on invalid input: test helper).
pub fn topic(s: &str) -> TopicName {
    TopicName::parse(s).unwrap_or_else(|e| panic!("bad test topic {s}: {e}"))
}

/// A filter over patterns (panics on invalid input: test helper).
pub fn filter(pats: &[&str]) -> Filter {
    Filter::new(
        pats.iter()
            .map(|p| Pattern::parse(p).unwrap_or_else(|e| panic!("bad test pattern {p}: {e}")))
            .collect(),
    )
    .unwrap_or_else(|e| panic!("bad test filter: {e}"))
}

/// A text message to `t`.
pub fn text(t: &str, body: &str) -> Append {
    Append {
        topic: topic(t),
        event: None,
        content_type: "text/plain".into(),
        headers: vec![],
        data: Bytes::copy_from_slice(body.as_bytes()),
        idempotency_key: None,
    }
}

fn new_seq(a: &Appended) -> u64 {
    match a {
        Appended::New(m) => m.id.seq,
        Appended::Duplicate { .. } => panic!("expected a new message, got a duplicate"),
    }
}

async fn append(store: &Arc<dyn LogStore>, items: Vec<Append>) -> Vec<Appended> {
    store.append(items, Vec::new()).await.expect("append")
}

fn bodies(store: &Arc<dyn LogStore>, f: &Filter, after: u64, limit: usize) -> Vec<String> {
    store
        .read(f, after, limit)
        .expect("read")
        .messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect()
}

/// Runs every conformance check, each on a fresh store.
pub async fn run_all(factory: impl Factory) {
    append_assigns_increasing_positions(&factory).await;
    read_respects_after_and_limit(&factory).await;
    filters_select_topics(&factory).await;
    wide_patterns_scan_in_order(&factory).await;
    idempotency_keys_dedupe_within_window(&factory).await;
    retention_by_count_and_bytes(&factory).await;
    retention_by_age(&factory).await;
    retention_inside_one_commit(&factory).await;
    delete_topic_removes_and_marks(&factory).await;
    set_retention_creates_and_trims(&factory).await;
    concurrent_appends_commit_in_order(&factory).await;
    message_fields_round_trip(&factory).await;
    records_are_written_with_appends(&factory).await;
    count_after_counts_one_topic(&factory).await;
}

/// Positions grow by one per message across topics; the sink sees each once, in order.
pub async fn append_assigns_increasing_positions(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    assert_eq!(r.store.tail(), 0);
    let a = append(&r.store, vec![text("a", "1"), text("b", "2")]).await;
    let b = append(&r.store, vec![text("a", "3")]).await;
    let seqs: Vec<u64> = a.iter().chain(b.iter()).map(new_seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(r.store.tail(), 3);
    assert_eq!(r.sink.seqs(), vec![1, 2, 3]);
    let t = r.store.topic(&topic("a")).expect("topic").expect("exists");
    assert_eq!(
        (t.first, t.last, t.count, t.bytes),
        (Some(1), Some(3), 2, 2)
    );
    let names: Vec<String> = r
        .store
        .topics()
        .expect("topics")
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    assert!(r.store.topic(&topic("zz")).expect("topic").is_none());
}

/// `after` is exclusive, `limit` caps the answer, `tail` reports the log end.
pub async fn read_respects_after_and_limit(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let items = (1..=10).map(|i| text("t", &i.to_string())).collect();
    append(&r.store, items).await;
    let f = filter(&["t"]);
    assert_eq!(bodies(&r.store, &f, 0, 3), vec!["1", "2", "3"]);
    assert_eq!(
        bodies(&r.store, &f, 3, 100),
        vec!["4", "5", "6", "7", "8", "9", "10"]
    );
    assert!(bodies(&r.store, &f, 10, 100).is_empty());
    let batch = r.store.read(&f, 0, 1).expect("read");
    assert_eq!((batch.tail, batch.trimmed), (10, 0));
}

/// Exact names and wildcard patterns select the right topics, in log order.
pub async fn filters_select_topics(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    append(
        &r.store,
        vec![
            text("orders.eu", "1"),
            text("orders.us", "2"),
            text("orders.eu.late", "3"),
            text("users", "4"),
            text("orders.eu", "5"),
        ],
    )
    .await;
    let s = &r.store;
    assert_eq!(bodies(s, &filter(&["orders.eu"]), 0, 10), vec!["1", "5"]);
    assert_eq!(
        bodies(s, &filter(&["orders.eu", "users"]), 0, 10),
        vec!["1", "4", "5"]
    );
    assert_eq!(
        bodies(s, &filter(&["orders.*"]), 0, 10),
        vec!["1", "2", "5"]
    );
    assert_eq!(
        bodies(s, &filter(&["orders.>"]), 0, 10),
        vec!["1", "2", "3", "5"]
    );
    assert_eq!(
        bodies(s, &filter(&["orders.>", "users"]), 1, 2),
        vec!["2", "3"]
    );
    assert_eq!(bodies(s, &filter(&[">"]), 0, 10).len(), 5);
    assert!(bodies(s, &filter(&["nothing.*"]), 0, 10).is_empty());
    assert!(bodies(s, &filter(&["nothing"]), 0, 10).is_empty());
}

/// A pattern over many topics still reads in log order.
pub async fn wide_patterns_scan_in_order(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let items: Vec<Append> = (0..300)
        .map(|i| text(&format!("m.t{}", i % 150), &i.to_string()))
        .collect();
    append(&r.store, items).await;
    append(&r.store, vec![text("other", "x")]).await;
    let got = bodies(&r.store, &filter(&["m.*"]), 0, 1000);
    let want: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    let page = bodies(&r.store, &filter(&["m.*"]), 100, 5);
    assert_eq!(page, vec!["100", "101", "102", "103", "104"]);
}

/// The same key on the same topic within the window answers the first position.
pub async fn idempotency_keys_dedupe_within_window(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let keyed = |t: &str, body: &str, key: &str| Append {
        idempotency_key: Some(key.into()),
        ..text(t, body)
    };
    let a = append(&r.store, vec![keyed("t", "1", "k1"), keyed("t", "2", "k1")]).await;
    assert_eq!(new_seq(&a[0]), 1);
    assert!(
        matches!(a[1], Appended::Duplicate { seq: 1, .. }),
        "{:?}",
        a[1]
    );
    let b = append(&r.store, vec![keyed("t", "3", "k1"), keyed("u", "4", "k1")]).await;
    assert!(matches!(b[0], Appended::Duplicate { seq: 1, .. }));
    assert_eq!(new_seq(&b[1]), 2, "keys are scoped to a topic");
    assert_eq!(bodies(&r.store, &filter(&["t"]), 0, 10), vec!["1"]);
    assert_eq!(r.sink.seqs(), vec![1, 2]);
    r.clock.advance(Duration::from_secs(121));
    r.store.maintain().await.expect("maintain");
    let c = append(&r.store, vec![keyed("t", "5", "k1")]).await;
    assert_eq!(new_seq(&c[0]), 3, "expired keys no longer dedupe");
}

/// Count and byte limits keep the newest messages and report what was removed.
pub async fn retention_by_count_and_bytes(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let s = &r.store;
    s.set_retention(
        &topic("c"),
        Retention {
            max_messages: Some(3),
            ..Retention::default()
        },
    )
    .await
    .expect("retention");
    for i in 1..=5 {
        append(s, vec![text("c", &i.to_string()), text("keep", "k")]).await;
    }
    s.maintain().await.expect("maintain");
    assert_eq!(bodies(s, &filter(&["c"]), 0, 10), vec!["3", "4", "5"]);
    let t = s.topic(&topic("c")).expect("topic").expect("exists");
    assert_eq!(
        (t.count, t.bytes, t.first, t.last),
        (3, 3, Some(5), Some(9))
    );
    assert_eq!(s.read(&filter(&["c"]), 0, 10).expect("read").trimmed, 3);
    assert_eq!(s.read(&filter(&["keep"]), 0, 10).expect("read").trimmed, 0);
    assert_eq!(bodies(s, &filter(&["keep"]), 0, 10).len(), 5);

    s.set_retention(
        &topic("b"),
        Retention {
            max_bytes: Some(10),
            ..Retention::default()
        },
    )
    .await
    .expect("retention");
    for body in ["aaaa", "bbbb", "cccc", "dddd"] {
        append(s, vec![text("b", body)]).await;
    }
    s.maintain().await.expect("maintain");
    assert_eq!(bodies(s, &filter(&["b"]), 0, 10), vec!["cccc", "dddd"]);
    assert_eq!(s.topic(&topic("b")).expect("t").expect("exists").bytes, 8);
}

/// Retention can remove part of what one commit wrote; reads at every position agree.
pub async fn retention_inside_one_commit(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let s = &r.store;
    let items = (1..=10).map(|i| text("one", &i.to_string())).collect();
    append(s, items).await;
    s.set_retention(
        &topic("one"),
        Retention {
            max_messages: Some(3),
            ..Retention::default()
        },
    )
    .await
    .expect("retention");
    let f = filter(&["one"]);
    assert_eq!(bodies(s, &f, 0, 10), vec!["8", "9", "10"]);
    assert_eq!(bodies(s, &f, 8, 10), vec!["9", "10"]);
    assert_eq!(bodies(s, &f, 9, 1), vec!["10"]);
    assert_eq!(s.read(&f, 0, 10).expect("read").trimmed, 7);
    let t = s.topic(&topic("one")).expect("topic").expect("exists");
    assert_eq!((t.count, t.first, t.last), (3, Some(8), Some(10)));
    append(s, vec![text("one", "11")]).await;
    assert_eq!(bodies(s, &f, 0, 10), vec!["9", "10", "11"]);
}

/// Messages older than `max_age` go; the default retention applies to every topic.
pub async fn retention_by_age(factory: &impl Factory) {
    let r = rig(
        factory,
        Retention {
            max_age: Some(Duration::from_secs(60)),
            ..Retention::default()
        },
    );
    let s = &r.store;
    append(s, vec![text("t", "old")]).await;
    r.clock.advance(Duration::from_secs(30));
    append(s, vec![text("t", "new")]).await;
    r.clock.advance(Duration::from_secs(31));
    s.maintain().await.expect("maintain");
    assert_eq!(bodies(s, &filter(&["t"]), 0, 10), vec!["new"]);
    assert_eq!(s.read(&filter(&["t"]), 0, 10).expect("read").trimmed, 1);
    r.clock.advance(Duration::from_secs(60));
    s.maintain().await.expect("maintain");
    assert!(bodies(s, &filter(&["t"]), 0, 10).is_empty());
    let t = s.topic(&topic("t")).expect("topic").expect("still listed");
    assert_eq!((t.count, t.first, t.last), (0, None, Some(2)));
}

/// Deleting a topic removes it and its messages; readers see the removal.
pub async fn delete_topic_removes_and_marks(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let s = &r.store;
    append(s, vec![text("d", "1"), text("e", "2"), text("d", "3")]).await;
    assert!(s.delete_topic(&topic("d")).await.expect("delete"));
    assert!(!s.delete_topic(&topic("d")).await.expect("delete again"));
    assert!(
        !s.delete_topic(&topic("never"))
            .await
            .expect("delete unknown")
    );
    assert!(s.topic(&topic("d")).expect("topic").is_none());
    assert_eq!(s.topics().expect("topics").len(), 1);
    let b = s.read(&filter(&["d"]), 0, 10).expect("read");
    assert!(b.messages.is_empty());
    assert_eq!(b.trimmed, 3);
    assert_eq!(bodies(s, &filter(&[">"]), 0, 10), vec!["2"]);
    append(s, vec![text("d", "4")]).await;
    assert_eq!(bodies(s, &filter(&["d"]), 0, 10), vec!["4"]);
    let t = s.topic(&topic("d")).expect("topic").expect("recreated");
    assert_eq!((t.count, t.retention), (1, Retention::default()));
}

/// Setting retention on an unknown topic creates it.
pub async fn set_retention_creates_and_trims(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let s = &r.store;
    let want = Retention {
        max_messages: Some(2),
        max_bytes: Some(1000),
        max_age: Some(Duration::from_secs(3600)),
    };
    let info = s.set_retention(&topic("new.one"), want).await.expect("set");
    assert_eq!((info.count, info.retention), (0, want));
    assert_eq!(s.topics().expect("topics").len(), 1);
    for i in 0..4 {
        append(s, vec![text("x", &i.to_string())]).await;
    }
    let info = s
        .set_retention(
            &topic("x"),
            Retention {
                max_messages: Some(1),
                ..Retention::default()
            },
        )
        .await
        .expect("set");
    assert_eq!(info.count, 1);
    assert_eq!(bodies(s, &filter(&["x"]), 0, 10), vec!["3"]);
}

/// Concurrent appends get distinct positions and the sink sees them in log order.
pub async fn concurrent_appends_commit_in_order(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = r.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                let a = s
                    .append(vec![text(&format!("w{w}"), &i.to_string())], Vec::new())
                    .await
                    .expect("append");
                seqs.push(new_seq(&a[0]));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.expect("task");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "per-writer order kept"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=400).collect::<Vec<u64>>());
    assert_eq!(r.sink.seqs(), (1..=400).collect::<Vec<u64>>());
    for w in 0..8 {
        let got = bodies(&r.store, &filter(&[&format!("w{w}")]), 0, 100);
        assert_eq!(got, (0..50).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}

/// Every field of a message survives storage.
pub async fn message_fields_round_trip(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let item = Append {
        topic: topic("f"),
        event: Some("created".into()),
        content_type: "application/octet-stream".into(),
        headers: vec![("x-a".into(), "1".into()), ("x-b".into(), "two".into())],
        data: Bytes::from_static(&[0, 1, 2, 255]),
        idempotency_key: None,
    };
    append(&r.store, vec![item]).await;
    let b = r.store.read(&filter(&["f"]), 0, 1).expect("read");
    let m = &b.messages[0];
    assert_eq!(m.id.epoch, r.store.epoch());
    assert_eq!(m.topic.as_str(), "f");
    assert_eq!(m.time_ms, T0);
    assert_eq!(m.event.as_deref(), Some("created"));
    assert_eq!(&*m.content_type, "application/octet-stream");
    assert_eq!(m.headers.len(), 2);
    assert_eq!(&*m.headers[1].1, "two");
    assert_eq!(&m.data[..], &[0, 1, 2, 255]);
}

/// Records are written atomically with appends, listed by prefix, and deletable.
pub async fn records_are_written_with_appends(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let s = &r.store;
    let rec = |k: &str, v: Option<&str>| Record {
        key: k.to_owned(),
        value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
    };
    s.append(
        vec![text("t", "1")],
        vec![
            rec("group/a", Some("1")),
            rec("group/b", Some("2")),
            rec("hook/x", Some("3")),
        ],
    )
    .await
    .expect("append");
    s.append(
        Vec::new(),
        vec![rec("group/a", Some("10")), rec("group/b", None)],
    )
    .await
    .expect("records only");
    let got = s.records("group/").expect("records");
    assert_eq!(got, vec![("group/a".to_owned(), Bytes::from_static(b"10"))]);
    assert_eq!(s.records("hook/").expect("records").len(), 1);
    assert!(s.records("zzz").expect("records").is_empty());
    assert_eq!(s.tail(), 1, "a records-only append adds no message");
}

/// `count_after` counts retained messages of one topic after a position.
pub async fn count_after_counts_one_topic(factory: &impl Factory) {
    let r = rig(factory, Retention::default());
    let s = &r.store;
    append(
        s,
        (0..10)
            .map(|i| text(if i % 2 == 0 { "c.a" } else { "c.b" }, "x"))
            .collect(),
    )
    .await;
    append(s, vec![text("c.a", "y"), text("c.a", "z")]).await;
    let a = topic("c.a");
    assert_eq!(s.count_after(&a, 0).expect("count"), 7);
    assert_eq!(
        s.count_after(&a, 4).expect("count"),
        5,
        "positions 5, 7, 9, 11, 12"
    );
    assert_eq!(s.count_after(&a, 11).expect("count"), 1);
    assert_eq!(s.count_after(&a, 12).expect("count"), 0);
    assert_eq!(s.count_after(&topic("none"), 0).expect("count"), 0);
    s.set_retention(
        &a,
        Retention {
            max_messages: Some(3),
            ..Retention::default()
        },
    )
    .await
    .expect("retention");
    assert_eq!(s.count_after(&a, 0).expect("count"), 3);
}

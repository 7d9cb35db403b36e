//! What survives closing and reopening the store on the same files.

use herald_core::clock::ManualClock;
use herald_core::conformance::{RecordingSink, filter, text, topic};
use herald_core::{Append, Appended, LogStore, Retention, StoreContext};
use herald_store::{RedbOptions, RedbStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn open(dir: &Path, clock: Arc<ManualClock>) -> RedbStore {
    RedbStore::open(
        dir,
        RedbOptions::default(),
        StoreContext {
            sink: Arc::new(RecordingSink::default()),
            clock,
            dedup_window: Duration::from_secs(120),
            default_retention: Retention::default(),
        },
    )
    .expect("open")
}

fn keyed(t: &str, body: &str, key: &str) -> Append {
    Append {
        idempotency_key: Some(key.into()),
        ..text(t, body)
    }
}

fn bodies(s: &RedbStore, pat: &str) -> Vec<String> {
    s.read(&filter(&[pat]), 0, 1000)
        .expect("read")
        .messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect()
}

#[tokio::test]
async fn log_epoch_topics_and_keys_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000_000);
    let s = open(dir.path(), clock.clone());
    let epoch = s.epoch();
    s.append(
        vec![keyed("a", "1", "k"), text("b", "2"), text("a", "3")],
        Vec::new(),
    )
    .await
    .expect("append");
    s.set_retention(
        &topic("c"),
        Retention {
            max_messages: Some(7),
            ..Retention::default()
        },
    )
    .await
    .expect("retention");
    s.close().await.expect("close");
    assert!(
        s.append(vec![text("a", "x")], Vec::new()).await.is_err(),
        "closed store refuses writes"
    );
    drop(s);

    let s = open(dir.path(), clock.clone());
    assert_eq!(s.epoch(), epoch, "epoch is stored with the data");
    assert_eq!(s.tail(), 3);
    assert_eq!(bodies(&s, "a"), vec!["1", "3"]);
    assert_eq!(bodies(&s, ">"), vec!["1", "2", "3"]);
    let c = s.topic(&topic("c")).expect("topic").expect("exists");
    assert_eq!(c.retention.max_messages, Some(7));
    let again = s
        .append(vec![keyed("a", "dup", "k"), text("a", "4")], Vec::new())
        .await
        .expect("append");
    assert!(
        matches!(again[0], Appended::Duplicate { seq: 1, .. }),
        "key remembered across restart"
    );
    match &again[1] {
        Appended::New(m) => assert_eq!(m.id.seq, 4, "positions continue after restart"),
        other => panic!("expected new message, got {other:?}"),
    }
    clock.advance(Duration::from_secs(121));
    s.maintain().await.expect("maintain");
    let later = s
        .append(vec![keyed("a", "5", "k")], Vec::new())
        .await
        .expect("append");
    assert!(
        matches!(later[0], Appended::New(_)),
        "expired key no longer dedupes"
    );
    s.close().await.expect("close");
}

#[tokio::test]
async fn deleted_topic_stays_deleted_and_positions_never_repeat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000_000);
    let s = open(dir.path(), clock.clone());
    let items = (0..10_000).map(|i| text("big", &i.to_string())).collect();
    s.append(items, Vec::new()).await.expect("append");
    s.append(vec![text("small", "s")], Vec::new())
        .await
        .expect("append");
    assert!(s.delete_topic(&topic("big")).await.expect("delete"));
    assert!(
        bodies(&s, "big").is_empty(),
        "gone at once, even before the purge finishes"
    );
    s.close().await.expect("close");
    drop(s);

    let s = open(dir.path(), clock);
    assert!(s.topic(&topic("big")).expect("topic").is_none());
    assert!(bodies(&s, "big").is_empty());
    assert_eq!(
        s.read(&filter(&["big"]), 0, 10).expect("read").trimmed,
        10_000
    );
    assert_eq!(
        s.tail(),
        10_001,
        "the tail survives even when the newest messages are deleted"
    );
    s.maintain().await.expect("maintain purges the rest");
    s.append(vec![text("big", "new")], Vec::new())
        .await
        .expect("append");
    assert_eq!(bodies(&s, "big"), vec!["new"]);
    assert_eq!(bodies(&s, ">"), vec!["s", "new"]);
    s.close().await.expect("close");
}

#[tokio::test]
async fn a_second_open_of_the_same_files_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000_000);
    let s = open(dir.path(), clock.clone());
    let err = RedbStore::open(
        dir.path(),
        RedbOptions::default(),
        StoreContext {
            sink: Arc::new(RecordingSink::default()),
            clock,
            dedup_window: Duration::from_secs(120),
            default_retention: Retention::default(),
        },
    )
    .expect_err("second open must fail");
    assert!(err.to_string().contains("in use"), "{err}");
    s.close().await.expect("close");
}

#[tokio::test]
async fn statistics_written_lazily_are_repaired_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000_000);
    let s = open(dir.path(), clock.clone());
    s.append(
        (0..10).map(|i| text("st", &i.to_string())).collect(),
        Vec::new(),
    )
    .await
    .expect("append");
    for i in 10..15 {
        s.append(vec![text("st", &format!("{i:>3}"))], Vec::new())
            .await
            .expect("append");
    }
    s.append(vec![text("other", "x")], Vec::new())
        .await
        .expect("append");
    let before = s.topic(&topic("st")).expect("topic").expect("exists");
    assert_eq!(
        (before.count, before.last, before.bytes),
        (15, Some(15), 10 + 15)
    );
    // No close: the statistics of the last appends were never written.
    drop(s);
    let s = open(dir.path(), clock);
    let after = s.topic(&topic("st")).expect("topic").expect("exists");
    assert_eq!(after, before);
    assert_eq!(s.tail(), 16);
    let other = s.topic(&topic("other")).expect("topic").expect("exists");
    assert_eq!(
        (other.count, other.first, other.last),
        (1, Some(16), Some(16))
    );
    s.close().await.expect("close");
}

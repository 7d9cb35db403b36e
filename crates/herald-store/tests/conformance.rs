use herald_core::{LogStore, conformance};
use herald_store::{RedbOptions, RedbStore};
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_store_passes_conformance() {
    let dirs = Arc::new(Mutex::new(Vec::new()));
    let keep = dirs.clone();
    conformance::run_all(move |ctx| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(dir.path(), RedbOptions::default(), ctx).expect("open");
        keep.lock().expect("lock").push(dir);
        Arc::new(store) as Arc<dyn LogStore>
    })
    .await;
    drop(dirs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_store_passes_subscription_scenarios() {
    let dirs = Arc::new(Mutex::new(Vec::new()));
    let keep = dirs.clone();
    conformance::run_subscriptions(move |ctx| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(dir.path(), RedbOptions::default(), ctx).expect("open");
        keep.lock().expect("lock").push(dir);
        Arc::new(store) as Arc<dyn LogStore>
    })
    .await;
    drop(dirs);
}

use herald_core::{MemoryStore, conformance};
use std::sync::Arc;

#[tokio::test]
async fn memory_store_passes_conformance() {
    conformance::run_all(|ctx| Arc::new(MemoryStore::new(ctx)) as Arc<dyn herald_core::LogStore>)
        .await;
}

#[tokio::test]
async fn memory_store_passes_subscription_scenarios() {
    conformance::run_subscriptions(|ctx| {
        Arc::new(MemoryStore::new(ctx)) as Arc<dyn herald_core::LogStore>
    })
    .await;
}

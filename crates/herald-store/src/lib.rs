//! herald's embedded durable log store on redb.
//!
//! One writer thread owns every write transaction. Concurrent appends queue up while the
//! previous commit is syncing and go into the next transaction together (group commit),
//! so one fsync covers many publishers; each publisher is answered only after the commit
//! that holds its message. Reads run on the caller's thread against MVCC snapshots.
//! Retention, deletion and key expiry run in the writer in bounded chunks between
//! batches of publishes.

mod codec;
mod read;
mod tables;
mod writer;

use bytes::Bytes;
use codec::TopicRecord;
use futures_util::future::{BoxFuture, FutureExt};
use herald_core::{
    Append, Appended, Epoch, Filter, LogStore, ReadBatch, Record, Retention, StoreContext,
    StoreError, TopicInfo, TopicName,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use writer::Request;

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Every commit is fsynced before publishers are answered (the default).
    #[default]
    Always,
    /// Lossy: commits are fsynced about once a second; a crash can lose the last second
    /// of acknowledged writes.
    Never,
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct RedbOptions {
    /// Durability of acknowledged writes.
    pub sync: SyncMode,
    /// Page cache size in bytes.
    pub cache_bytes: usize,
    /// Most messages in one commit.
    pub max_batch_messages: usize,
    /// Most payload bytes in one commit.
    pub max_batch_bytes: usize,
    /// How long the writer lingers for more publishes once several arrive together.
    pub commit_window: Duration,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            sync: SyncMode::Always,
            cache_bytes: 64 * 1024 * 1024,
            max_batch_messages: 8192,
            max_batch_bytes: 16 * 1024 * 1024,
            commit_window: Duration::from_micros(0),
        }
    }
}

/// What readers see of the topics; the writer updates it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Directory {
    pub by_name: HashMap<TopicName, u32>,
    pub topics: HashMap<u32, TopicRecord>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub db: redb::Database,
    pub epoch: Epoch,
    pub tail: AtomicU64,
    pub dir: RwLock<Directory>,
    pub default_retention: Retention,
}

impl Shared {
    pub(crate) fn dir(&self) -> std::sync::RwLockReadGuard<'_, Directory> {
        self.dir.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The redb-backed [`LogStore`].
#[derive(Debug)]
pub struct RedbStore {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    path: PathBuf,
}

pub(crate) fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Io(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) the log in `dir/herald.redb`.
    pub fn open(dir: &Path, opts: RedbOptions, ctx: StoreContext) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Io(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let path = dir.join("herald.redb");
        let db = redb::Database::builder()
            .set_cache_size(opts.cache_bytes)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Io(format!(
                    "{} is in use by another herald process",
                    path.display()
                )),
                other => StoreError::Io(format!("cannot open {}: {other}", path.display())),
            })?;
        let (state, epoch) = writer::State::load(&db)?;
        let shared = Arc::new(Shared {
            db,
            epoch,
            tail: AtomicU64::new(state.tail),
            dir: RwLock::new(state.directory()),
            default_retention: ctx.default_retention,
        });
        let (tx, rx) = mpsc::channel(1024);
        let w = writer::Writer::new(shared.clone(), ctx, opts, rx, state);
        let thread = std::thread::Builder::new()
            .name("herald-writer".into())
            .spawn(move || w.run())
            .map_err(io)?;
        Ok(RedbStore {
            shared,
            tx,
            thread: Mutex::new(Some(thread)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let tx = self.tx.clone();
        let (reply, rx) = oneshot::channel();
        let req = make(reply);
        async move {
            tx.send(req).await.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        }
        .boxed()
    }

    fn info(&self, rec: &TopicRecord) -> TopicInfo {
        TopicInfo {
            name: rec.name.clone(),
            first: rec.first,
            last: rec.last,
            count: rec.count,
            bytes: rec.bytes,
            retention: rec.retention.unwrap_or_default(),
        }
    }
}

impl Drop for RedbStore {
    /// Without `close`, the writer stops after what is already queued; waiting for it
    /// releases the database file before the store is gone.
    fn drop(&mut self) {
        let (tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl LogStore for RedbStore {
    fn epoch(&self) -> Epoch {
        self.shared.epoch
    }

    fn tail(&self) -> u64 {
        self.shared.tail.load(Ordering::Acquire)
    }

    fn append(
        &self,
        items: Vec<Append>,
        records: Vec<Record>,
    ) -> BoxFuture<'static, Result<Vec<Appended>, StoreError>> {
        self.call(|reply| Request::Append {
            items,
            records,
            reply,
        })
    }

    fn records(&self, prefix: &str) -> Result<Vec<(String, Bytes)>, StoreError> {
        use redb::ReadableDatabase;
        let txn = self.shared.db.begin_read().map_err(io)?;
        let table = txn.open_table(tables::RECORDS).map_err(io)?;
        let mut out = Vec::new();
        for row in table.range(prefix..).map_err(io)? {
            let (k, v) = row.map_err(io)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_owned(), Bytes::copy_from_slice(v.value())));
        }
        Ok(out)
    }

    fn read(&self, filter: &Filter, after: u64, limit: usize) -> Result<ReadBatch, StoreError> {
        read::read(&self.shared, filter, after, limit)
    }

    fn trimmed(&self, filter: &Filter) -> Result<u64, StoreError> {
        let dir = self.shared.dir();
        let mark = |id: &u32| dir.topics.get(id).map(|r| r.trimmed);
        Ok(match filter.exact_topics() {
            Some(names) => names
                .iter()
                .filter_map(|n| TopicName::parse(n).ok())
                .filter_map(|n| dir.by_name.get(&n).and_then(mark))
                .max()
                .unwrap_or(0),
            None => dir
                .topics
                .values()
                .filter(|r| filter.matches(r.name.as_str()))
                .map(|r| r.trimmed)
                .max()
                .unwrap_or(0),
        })
    }

    fn count_after(&self, topic: &TopicName, after: u64) -> Result<u64, StoreError> {
        read::count_after(&self.shared, topic, after)
    }

    fn topics(&self) -> Result<Vec<TopicInfo>, StoreError> {
        let dir = self.shared.dir();
        let mut out: Vec<TopicInfo> = dir
            .topics
            .values()
            .filter(|r| r.live)
            .map(|r| self.info(r))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn topic(&self, name: &TopicName) -> Result<Option<TopicInfo>, StoreError> {
        let dir = self.shared.dir();
        Ok(dir
            .by_name
            .get(name)
            .and_then(|id| dir.topics.get(id))
            .filter(|r| r.live)
            .map(|r| self.info(r)))
    }

    fn set_retention(
        &self,
        name: &TopicName,
        retention: Retention,
    ) -> BoxFuture<'static, Result<TopicInfo, StoreError>> {
        let name = name.clone();
        self.call(|reply| Request::SetRetention {
            name,
            retention,
            reply,
        })
    }

    fn delete_topic(&self, name: &TopicName) -> BoxFuture<'static, Result<bool, StoreError>> {
        let name = name.clone();
        self.call(|reply| Request::Delete { name, reply })
    }

    fn maintain(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        self.call(|reply| Request::Maintain { reply })
    }

    fn close(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let closing = self.call(|reply| Request::Close { reply });
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        async move {
            let r = closing.await;
            if let Some(t) = thread {
                // The writer exits right after answering Close.
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            match r {
                Err(StoreError::Closed) => Ok(()),
                other => other,
            }
        }
        .boxed()
    }
}

//! Interest registry: who waits on which topics. The committing thread hands each
//! committed batch to [`Fanout::committed`], which offers every message to the listeners
//! whose filter matches it, in log order, and then wakes each touched listener once.

use crate::message::Message;
use crate::store::CommitSink;
use crate::topic::Filter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

/// Something that wants committed messages of a filter.
pub(crate) trait Listener: Send + Sync {
    /// Offers one committed message. Must not block. Returns true when the listener
    /// needs a wake and had none pending (so each listener is woken once per batch).
    fn offer(&self, msg: &Arc<Message>) -> bool;
    /// Wakes whoever waits on this listener; called once per batch that touched it.
    fn wake(&self);
    /// The hub is shutting down: wake and end.
    fn close(&self);
    /// Messages and payload bytes held for delivery.
    fn queued(&self) -> (usize, usize) {
        (0, 0)
    }
}

type Listeners = HashMap<u64, Arc<dyn Listener>>;

#[derive(Default)]
struct Registry {
    /// Listeners whose filter names topics exactly, by topic.
    exact: HashMap<Arc<str>, Listeners>,
    /// Listeners with wildcard filters, grouped by identical filter so each distinct
    /// filter is evaluated once per message.
    wild: HashMap<Filter, Listeners>,
}

/// The registry. Cheap to share.
#[derive(Default)]
pub(crate) struct Fanout {
    reg: RwLock<Registry>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").finish_non_exhaustive()
    }
}

/// Keeps a listener registered; unregisters on drop.
#[derive(Debug)]
pub(crate) struct Registration {
    fanout: Weak<Fanout>,
    id: u64,
    filter: Filter,
}

impl Fanout {
    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.reg.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.reg.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `listener` for messages matching `filter`.
    pub(crate) fn register(
        self: &Arc<Self>,
        filter: &Filter,
        listener: Arc<dyn Listener>,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut reg = self.write();
        match filter.exact_topics() {
            Some(names) => {
                for name in names {
                    reg.exact
                        .entry(Arc::from(name))
                        .or_default()
                        .insert(id, listener.clone());
                }
            }
            None => {
                reg.wild
                    .entry(filter.clone())
                    .or_default()
                    .insert(id, listener);
            }
        }
        Registration {
            fanout: Arc::downgrade(self),
            id,
            filter: filter.clone(),
        }
    }

    fn unregister(&self, id: u64, filter: &Filter) {
        let mut reg = self.write();
        match filter.exact_topics() {
            Some(names) => {
                for name in names {
                    if let Some(map) = reg.exact.get_mut(name) {
                        map.remove(&id);
                        if map.is_empty() {
                            reg.exact.remove(name);
                        }
                    }
                }
            }
            None => {
                if let Some(map) = reg.wild.get_mut(filter) {
                    map.remove(&id);
                    if map.is_empty() {
                        reg.wild.remove(filter);
                    }
                }
            }
        }
    }

    /// Closes every listener (shutdown).
    pub(crate) fn close_all(&self) {
        let reg = self.read();
        for l in reg
            .exact
            .values()
            .chain(reg.wild.values())
            .flat_map(|m| m.values())
        {
            l.close();
        }
    }

    /// Listeners of user topics, and messages and payload bytes they hold for delivery.
    /// The server's own waits on internal (`_`-prefixed) topics are not counted.
    pub(crate) fn totals(&self) -> (usize, usize, usize) {
        let reg = self.read();
        let mut seen = std::collections::HashSet::new();
        let (mut n, mut msgs, mut bytes) = (0, 0, 0);
        let exact = reg
            .exact
            .iter()
            .filter(|(topic, _)| !topic.starts_with('_'))
            .map(|(_, m)| m);
        let wild = reg
            .wild
            .iter()
            .filter(|(f, _)| !f.patterns().iter().all(|p| p.as_str().starts_with('_')))
            .map(|(_, m)| m);
        for (id, l) in exact.chain(wild).flat_map(|m| m.iter()) {
            if seen.insert(*id) {
                let (m, b) = l.queued();
                n += 1;
                msgs += m;
                bytes += b;
            }
        }
        (n, msgs, bytes)
    }

    /// How many listeners would receive a message on `topic`.
    pub(crate) fn interest(&self, topic: &str) -> u64 {
        let reg = self.read();
        let exact = reg.exact.get(topic).map_or(0, |m| m.len());
        let wild: usize = reg
            .wild
            .iter()
            .filter(|(f, _)| f.matches(topic))
            .map(|(_, m)| m.len())
            .sum();
        (exact + wild) as u64
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(fanout) = self.fanout.upgrade() {
            fanout.unregister(self.id, &self.filter);
        }
    }
}

impl CommitSink for Fanout {
    fn committed(&self, batch: &[Arc<Message>]) {
        let reg = self.read();
        if reg.exact.is_empty() && reg.wild.is_empty() {
            return;
        }
        let mut touched: Vec<&Arc<dyn Listener>> = Vec::new();
        for msg in batch {
            let topic = msg.topic.as_str();
            if let Some(map) = reg.exact.get(topic) {
                touched.extend(map.values().filter(|l| l.offer(msg)));
            }
            for (filter, map) in &reg.wild {
                if filter.matches(topic) {
                    touched.extend(map.values().filter(|l| l.offer(msg)));
                }
            }
        }
        for l in touched {
            l.wake();
        }
    }
}

/// A listener that only records "something matching arrived" (long polls).
#[derive(Default)]
pub(crate) struct Waiter {
    notify: tokio::sync::Notify,
    wake_pending: std::sync::atomic::AtomicBool,
}

impl Waiter {
    /// Waits until a matching message was committed after registration.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await
    }
}

impl Listener for Waiter {
    fn offer(&self, _msg: &Arc<Message>) -> bool {
        !self.wake_pending.swap(true, Ordering::AcqRel)
    }

    fn wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
        // notify_one stores a permit if nobody is waiting yet, so a commit between
        // registration and the first poll is not lost.
        self.notify.notify_one();
    }

    fn close(&self) {
        self.notify.notify_one();
    }
}

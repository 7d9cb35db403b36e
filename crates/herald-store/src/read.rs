//! The read path: snapshot reads by topic index, merged across topics, or a scan of the
//! log order for patterns that match many topics.

use crate::codec::decode_message;
use crate::tables::{MESSAGES, SEQS};
use crate::{Shared, io};
use herald_core::{Cursor, Filter, Message, ReadBatch, StoreError, TopicName};
use redb::ReadableDatabase;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Above this many matching topics, a read scans the log order instead of merging
/// per-topic ranges.
const MERGE_MAX_TOPICS: usize = 256;

struct Target {
    id: u32,
    name: TopicName,
    /// Read from after this position (the later of the cursor and the topic's trim mark).
    from: u64,
}

pub(crate) fn read(
    shared: &Shared,
    filter: &Filter,
    after: u64,
    limit: usize,
) -> Result<ReadBatch, StoreError> {
    // Order matters: tail, then the snapshot, then the directory (which the writer
    // updates before each commit), so every topic in the snapshot is known.
    let tail = shared.tail.load(Ordering::Acquire);
    let txn = shared.db.begin_read().map_err(io)?;
    let mut trimmed = 0;
    let targets: Vec<Target> = {
        let dir = shared.dir();
        let mut pick = |id: u32| {
            let rec = dir.topics.get(&id)?;
            trimmed = trimmed.max(rec.trimmed);
            Some(Target {
                id,
                name: rec.name.clone(),
                from: after.max(rec.trimmed),
            })
        };
        match filter.exact_topics() {
            Some(names) => names
                .iter()
                .filter_map(|n| TopicName::parse(n).ok())
                .filter_map(|n| dir.by_name.get(&n).copied())
                .filter_map(&mut pick)
                .collect(),
            None => dir
                .topics
                .iter()
                .filter(|(_, r)| filter.matches(r.name.as_str()))
                .map(|(id, _)| *id)
                .collect::<Vec<_>>()
                .into_iter()
                .filter_map(&mut pick)
                .collect(),
        }
    };
    let epoch = shared.epoch;
    let messages = txn.open_table(MESSAGES).map_err(io)?;
    let mut out: Vec<Arc<Message>> = Vec::new();
    let decode = |id: u64, t: &Target, v: &[u8]| {
        decode_message(Cursor::new(epoch, id), t.name.clone(), v)
            .map(Arc::new)
            .ok_or_else(|| StoreError::Io(format!("message {id} is corrupt")))
    };
    if targets.len() <= MERGE_MAX_TOPICS {
        let mut ranges = Vec::with_capacity(targets.len());
        let mut heap = BinaryHeap::new();
        for (i, t) in targets.iter().enumerate() {
            let mut range = messages
                .range((t.id, t.from.saturating_add(1))..=(t.id, u64::MAX))
                .map_err(io)?;
            if let Some(row) = range.next() {
                let (k, v) = row.map_err(io)?;
                heap.push(Reverse((k.value().1, i)));
                ranges.push((range, Some(v)));
            } else {
                ranges.push((range, None));
            }
        }
        while out.len() < limit {
            let Some(Reverse((seq, i))) = heap.pop() else {
                break;
            };
            let (range, head) = &mut ranges[i];
            if let Some(v) = head.take() {
                out.push(decode(seq, &targets[i], v.value())?);
            }
            if let Some(row) = range.next() {
                let (k, v) = row.map_err(io)?;
                heap.push(Reverse((k.value().1, i)));
                *head = Some(v);
            }
        }
    } else {
        let by_id: HashMap<u32, &Target> = targets.iter().map(|t| (t.id, t)).collect();
        let seqs = txn.open_table(SEQS).map_err(io)?;
        for row in seqs.range(after.saturating_add(1)..).map_err(io)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(io)?;
            let (seq, id) = (k.value(), v.value());
            let Some(t) = by_id.get(&id) else { continue };
            if seq <= t.from {
                continue;
            }
            if let Some(v) = messages.get((id, seq)).map_err(io)? {
                out.push(decode(seq, t, v.value())?);
            }
        }
    }
    Ok(ReadBatch {
        messages: out,
        tail,
        trimmed,
    })
}

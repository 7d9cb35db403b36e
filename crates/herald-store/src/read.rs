//! The read path: snapshot reads of each matching topic's range, merged into log order.
//! Topics with nothing after the cursor (known from the directory) are not touched.

use crate::codec::{chunk_entries, chunk_len, decode_message, entry_at};
use crate::tables::MESSAGES;
use crate::{Shared, io};
use herald_core::{Cursor, Filter, Message, ReadBatch, StoreError, TopicName};
use redb::ReadableDatabase;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
            // The directory is updated before each commit, so `last` covers the snapshot.
            if rec.last.unwrap_or(0) <= after.max(rec.trimmed) {
                return None;
            }
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
    let mut sources = Vec::with_capacity(targets.len());
    let mut heap = BinaryHeap::new();
    for (i, t) in targets.iter().enumerate() {
        let s = Source::open(&messages, t.id, t.from)?;
        if let Some((seq, _, _)) = s.head {
            heap.push(Reverse((seq, i)));
        }
        sources.push(s);
    }
    let mut out: Vec<Arc<Message>> = Vec::new();
    while out.len() < limit {
        let Some(Reverse((seq, i))) = heap.pop() else {
            break;
        };
        let s = &mut sources[i];
        let t = &targets[i];
        let m = s
            .decode_head(Cursor::new(epoch, seq), &t.name)
            .ok_or_else(|| StoreError::Io(format!("message {seq} of {} is corrupt", t.name)))?;
        out.push(Arc::new(m));
        s.advance()?;
        if let Some((seq, _, _)) = s.head {
            heap.push(Reverse((seq, i)));
        }
    }
    Ok(ReadBatch {
        messages: out,
        tail,
        trimmed,
    })
}

type Chunks = redb::ReadOnlyTable<(u32, u64), &'static [u8]>;

/// One topic's messages after a position, walked chunk by chunk.
struct Source {
    range: redb::Range<'static, (u32, u64), &'static [u8]>,
    chunk: Option<redb::AccessGuard<'static, &'static [u8]>>,
    pos: usize,
    /// The next message: position and byte range within `chunk`.
    head: Option<(u64, usize, usize)>,
    from: u64,
}

impl Source {
    fn open(table: &Chunks, id: u32, from: u64) -> Result<Source, StoreError> {
        // The chunk holding `from + 1`, if any, starts at or before it.
        let next = from.saturating_add(1);
        let start = match table.range((id, 0)..=(id, next)).map_err(io)?.next_back() {
            Some(row) => row.map_err(io)?.0.value().1,
            None => next,
        };
        let range = table.range((id, start)..=(id, u64::MAX)).map_err(io)?;
        let mut s = Source {
            range,
            chunk: None,
            pos: 0,
            head: None,
            from,
        };
        s.advance()?;
        Ok(s)
    }

    /// Moves `head` to the next message after `from`.
    fn advance(&mut self) -> Result<(), StoreError> {
        loop {
            if let Some(guard) = &self.chunk {
                let bytes = guard.value();
                loop {
                    match entry_at(bytes, self.pos) {
                        Ok(Some((seq, start, end))) => {
                            self.pos = end;
                            if seq > self.from {
                                self.head = Some((seq, start, end));
                                return Ok(());
                            }
                        }
                        Ok(None) => break,
                        Err(()) => return Err(StoreError::Io("a stored chunk is corrupt".into())),
                    }
                }
                self.chunk = None;
            }
            match self.range.next() {
                None => {
                    self.head = None;
                    return Ok(());
                }
                Some(row) => {
                    self.chunk = Some(row.map_err(io)?.1);
                    self.pos = 0;
                }
            }
        }
    }

    fn decode_head(&self, id: Cursor, topic: &TopicName) -> Option<Message> {
        let (_, start, end) = self.head?;
        let bytes = self.chunk.as_ref()?.value();
        decode_message(id, topic.clone(), bytes.get(start..end)?)
    }
}

/// How many retained messages of `topic` lie after `after`: whole chunks are counted from
/// their headers, only the chunk holding `after + 1` is walked.
pub(crate) fn count_after(
    shared: &Shared,
    topic: &TopicName,
    after: u64,
) -> Result<u64, StoreError> {
    let txn = shared.db.begin_read().map_err(io)?;
    let (id, from) = {
        let dir = shared.dir();
        let Some(&id) = dir.by_name.get(topic) else {
            return Ok(0);
        };
        let trimmed = dir.topics.get(&id).map_or(0, |r| r.trimmed);
        (id, after.max(trimmed))
    };
    let messages = txn.open_table(MESSAGES).map_err(io)?;
    let next = from.saturating_add(1);
    let mut count = 0;
    if let Some(row) = messages
        .range((id, 0)..=(id, from))
        .map_err(io)?
        .next_back()
    {
        let (_, v) = row.map_err(io)?;
        count += chunk_entries(v.value())
            .filter(|(seq, _)| *seq > from)
            .count() as u64;
    }
    for row in messages.range((id, next)..=(id, u64::MAX)).map_err(io)? {
        let (_, v) = row.map_err(io)?;
        count += chunk_len(v.value());
    }
    Ok(count)
}

//! Byte layouts of stored values.

use bytes::Bytes;
use herald_core::{Cursor, Message, Retention, TopicName};
use std::time::Duration;

const MESSAGE_V1: u8 = 1;
const HAS_EVENT: u8 = 1;
const HAS_HEADERS: u8 = 2;

/// Appends a message's encoding to `out`: everything except its topic and position.
pub(crate) fn encode_message(
    out: &mut Vec<u8>,
    time_ms: u64,
    event: Option<&str>,
    content_type: &str,
    headers: &[(Box<str>, Box<str>)],
    data: &[u8],
) {
    out.push(MESSAGE_V1);
    out.extend_from_slice(&time_ms.to_le_bytes());
    let mut flags = 0;
    if event.is_some() {
        flags |= HAS_EVENT;
    }
    if !headers.is_empty() {
        flags |= HAS_HEADERS;
    }
    out.push(flags);
    put_str(out, content_type);
    if let Some(e) = event {
        put_str(out, e);
    }
    if !headers.is_empty() {
        out.extend_from_slice(&(headers.len() as u16).to_le_bytes());
        for (k, v) in headers {
            put_str(out, k);
            put_str(out, v);
        }
    }
    out.extend_from_slice(data);
}

/// Strings stored here are validated by the hub to be far below 64 KiB.
fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

/// The commit time of a stored message, without decoding the rest.
pub(crate) fn message_time(value: &[u8]) -> Option<u64> {
    Reader(value.get(1..)?).u64()
}

/// Payload length of a stored message, without copying it.
pub(crate) fn message_data_len(value: &[u8]) -> Option<usize> {
    let mut r = Reader(value);
    skip_meta(&mut r)?;
    Some(r.0.len())
}

/// A message's fields before its payload: time, event, content type, headers.
type Meta<'a> = (u64, Option<&'a str>, &'a str, Vec<(Box<str>, Box<str>)>);

fn skip_meta<'a>(r: &mut Reader<'a>) -> Option<Meta<'a>> {
    if r.u8()? != MESSAGE_V1 {
        return None;
    }
    let time = r.u64()?;
    let flags = r.u8()?;
    let ct = r.str()?;
    let event = if flags & HAS_EVENT != 0 {
        Some(r.str()?)
    } else {
        None
    };
    let mut headers = Vec::new();
    if flags & HAS_HEADERS != 0 {
        let n = r.u16()?;
        for _ in 0..n {
            headers.push((r.str()?.into(), r.str()?.into()));
        }
    }
    Some((time, event, ct, headers))
}

const CHUNK_V2: u8 = 2;
const CHUNK_HEAD: usize = 3;
const ENTRY_HEAD: usize = 12;

/// Builds one chunk: consecutive messages of one topic from one commit, stored as a
/// single value keyed by (topic, first position). One B-tree insert then covers many
/// messages.
#[derive(Debug, Default)]
pub(crate) struct ChunkBuilder {
    pub first: u64,
    pub count: u16,
    pub buf: Vec<u8>,
}

impl ChunkBuilder {
    /// Adds a message; `encode` writes its v1 encoding into the buffer.
    pub(crate) fn push(&mut self, seq: u64, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.count == 0 {
            self.first = seq;
            self.buf.clear();
            self.buf.extend_from_slice(&[CHUNK_V2, 0, 0]);
        }
        self.buf.extend_from_slice(&seq.to_le_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let start = self.buf.len();
        encode(&mut self.buf);
        let len = (self.buf.len() - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        self.count += 1;
        self.buf[1..3].copy_from_slice(&self.count.to_le_bytes());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Takes the finished chunk, leaving the builder empty.
    pub(crate) fn take(&mut self) -> (u64, &[u8]) {
        self.count = 0;
        (self.first, &self.buf)
    }
}

/// Reads the entry at byte offset `pos` of a chunk (0 = the first entry): its
/// position, the byte range of its v1-encoded message, and the offset of the next entry.
/// `Ok(None)` at the end, `Err(())` when the chunk is corrupt.
#[allow(clippy::result_unit_err)]
pub(crate) fn entry_at(chunk: &[u8], pos: usize) -> Result<Option<(u64, usize, usize)>, ()> {
    if chunk.len() < CHUNK_HEAD || chunk[0] != CHUNK_V2 {
        return Err(());
    }
    let at = pos.max(CHUNK_HEAD);
    if at == chunk.len() {
        return Ok(None);
    }
    let head = chunk.get(at..at + ENTRY_HEAD).ok_or(())?;
    let seq = u64::from_le_bytes(head[..8].try_into().map_err(|_| ())?);
    let len = u32::from_le_bytes(head[8..12].try_into().map_err(|_| ())?) as usize;
    let start = at + ENTRY_HEAD;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= chunk.len())
        .ok_or(())?;
    Ok(Some((seq, start, end)))
}

/// The messages of a stored chunk: (position, v1-encoded message).
pub(crate) fn chunk_entries(chunk: &[u8]) -> ChunkIter<'_> {
    ChunkIter {
        chunk,
        pos: 0,
        corrupt: false,
    }
}

/// Iterates a chunk's entries; stops early (setting `corrupt`) at damage.
pub(crate) struct ChunkIter<'a> {
    chunk: &'a [u8],
    pos: usize,
    pub corrupt: bool,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.corrupt {
            return None;
        }
        match entry_at(self.chunk, self.pos) {
            Ok(Some((seq, start, end))) => {
                self.pos = end;
                Some((seq, &self.chunk[start..end]))
            }
            Ok(None) => None,
            Err(()) => {
                self.corrupt = true;
                None
            }
        }
    }
}

/// How many messages a chunk holds (from its header).
pub(crate) fn chunk_len(chunk: &[u8]) -> u64 {
    match chunk {
        [CHUNK_V2, lo, hi, ..] => u16::from_le_bytes([*lo, *hi]) as u64,
        _ => 0,
    }
}

/// The last position in a chunk.
pub(crate) fn chunk_last(chunk: &[u8]) -> Option<u64> {
    chunk_entries(chunk).last().map(|(seq, _)| seq)
}

/// Decodes a stored message.
pub(crate) fn decode_message(id: Cursor, topic: TopicName, value: &[u8]) -> Option<Message> {
    let mut r = Reader(value);
    let (time, event, ct, headers) = skip_meta(&mut r)?;
    Some(Message::new(
        id,
        topic,
        time,
        event.map(Into::into),
        ct.into(),
        headers,
        Bytes::copy_from_slice(r.0),
    ))
}

/// What the store keeps about a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicRecord {
    pub name: TopicName,
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub count: u64,
    pub bytes: u64,
    /// Highest position removed from this topic; everything at or below it is gone.
    pub trimmed: u64,
    pub retention: Option<Retention>,
    pub live: bool,
}

impl TopicRecord {
    pub(crate) fn new(name: TopicName) -> Self {
        TopicRecord {
            name,
            first: None,
            last: None,
            count: 0,
            bytes: 0,
            trimmed: 0,
            retention: None,
            live: true,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.push(1);
        put_str(&mut out, self.name.as_str());
        for v in [
            self.first.unwrap_or(0),
            self.last.unwrap_or(0),
            self.count,
            self.bytes,
            self.trimmed,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let flags = u8::from(self.live) | (u8::from(self.retention.is_some()) << 1);
        out.push(flags);
        let r = self.retention.unwrap_or_default();
        for v in [
            r.max_messages.unwrap_or(0),
            r.max_bytes.unwrap_or(0),
            r.max_age.map_or(0, |d| d.as_millis() as u64),
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(value: &[u8]) -> Option<Self> {
        let mut r = Reader(value);
        if r.u8()? != 1 {
            return None;
        }
        let name = TopicName::parse(r.str()?).ok()?;
        let opt = |v: u64| (v != 0).then_some(v);
        let first = opt(r.u64()?);
        let last = opt(r.u64()?);
        let count = r.u64()?;
        let bytes = r.u64()?;
        let trimmed = r.u64()?;
        let flags = r.u8()?;
        let (mm, mb, ma) = (r.u64()?, r.u64()?, r.u64()?);
        let retention = (flags & 2 != 0).then(|| Retention {
            max_messages: opt(mm),
            max_bytes: opt(mb),
            max_age: opt(ma).map(Duration::from_millis),
        });
        Some(TopicRecord {
            name,
            first,
            last,
            count,
            bytes,
            trimmed,
            retention,
            live: flags & 1 != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::Epoch;

    #[test]
    fn message_round_trip() {
        let mut buf = Vec::new();
        let headers = vec![("k".into(), "v".into())];
        encode_message(&mut buf, 42, Some("ev"), "text/plain", &headers, b"hello");
        assert_eq!(message_time(&buf), Some(42));
        assert_eq!(message_data_len(&buf), Some(5));
        let t = TopicName::parse("a").expect("topic");
        let m = decode_message(Cursor::new(Epoch(1), 3), t, &buf).expect("decodes");
        assert_eq!(
            (m.time_ms, m.event.as_deref(), &*m.content_type),
            (42, Some("ev"), "text/plain")
        );
        assert_eq!((&m.data[..], m.headers.len()), (&b"hello"[..], 1));
        assert!(
            decode_message(
                Cursor::new(Epoch(1), 3),
                TopicName::parse("a").expect("t"),
                &buf[..5]
            )
            .is_none()
        );
    }

    #[test]
    fn chunk_round_trip() {
        let mut c = ChunkBuilder::default();
        for seq in [5u64, 9, 12] {
            c.push(seq, |out| {
                let mut m = Vec::new();
                encode_message(
                    &mut m,
                    seq,
                    None,
                    "text/plain",
                    &[],
                    format!("m{seq}").as_bytes(),
                );
                out.extend_from_slice(&m);
            });
        }
        let (first, bytes) = c.take();
        assert_eq!(first, 5);
        let entries: Vec<(u64, usize)> = chunk_entries(bytes)
            .map(|(s, m)| (s, message_data_len(m).unwrap_or(0)))
            .collect();
        assert_eq!(entries, vec![(5, 2), (9, 2), (12, 3)]);
        assert_eq!(chunk_last(bytes), Some(12));
        let mut truncated = chunk_entries(&bytes[..bytes.len() - 1]);
        assert_eq!(truncated.by_ref().count(), 2);
        assert!(truncated.corrupt);
        let mut bad = chunk_entries(&[1, 0, 0]);
        assert_eq!(bad.by_ref().count(), 0);
        assert!(bad.corrupt);
    }

    #[test]
    fn topic_round_trip() {
        let mut t = TopicRecord::new(TopicName::parse("a.b").expect("topic"));
        t.first = Some(3);
        t.last = Some(9);
        t.count = 2;
        t.trimmed = 2;
        t.retention = Some(Retention {
            max_messages: Some(5),
            max_bytes: None,
            max_age: Some(Duration::from_secs(60)),
        });
        assert_eq!(TopicRecord::decode(&t.encode()), Some(t.clone()));
        t.retention = None;
        t.live = false;
        assert_eq!(TopicRecord::decode(&t.encode()), Some(t));
    }
}

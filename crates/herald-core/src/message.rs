//! Messages and their JSON envelope.

use crate::clock::rfc3339_ms;
use crate::cursor::Cursor;
use crate::topic::TopicName;
use base64::Engine;
use bytes::Bytes;
use std::sync::OnceLock;

pub use herald_proto::payload::{DataKind, data_kind, is_json_type, is_text_type};

/// One message in the log. Immutable once committed and shared by reference between every
/// reader (`Arc<Message>`); the JSON envelope is rendered at most once.
#[derive(Debug)]
pub struct Message {
    /// Its cursor.
    pub id: Cursor,
    /// Its topic.
    pub topic: TopicName,
    /// When it was committed, in ms since the Unix epoch.
    pub time_ms: u64,
    /// Optional event type.
    pub event: Option<Box<str>>,
    /// Payload content type.
    pub content_type: Box<str>,
    /// Optional headers.
    pub headers: Vec<(Box<str>, Box<str>)>,
    /// The payload.
    pub data: Bytes,
    envelope: OnceLock<Box<str>>,
    envelope_msgpack: OnceLock<Bytes>,
}

impl Message {
    /// Builds a message.
    pub fn new(
        id: Cursor,
        topic: TopicName,
        time_ms: u64,
        event: Option<Box<str>>,
        content_type: Box<str>,
        headers: Vec<(Box<str>, Box<str>)>,
        data: Bytes,
    ) -> Self {
        Message {
            id,
            topic,
            time_ms,
            event,
            content_type,
            headers,
            data,
            envelope: OnceLock::new(),
            envelope_msgpack: OnceLock::new(),
        }
    }

    /// The log position.
    pub fn seq(&self) -> u64 {
        self.id.seq
    }

    /// The RFC 3339 time.
    pub fn time(&self) -> String {
        rfc3339_ms(self.time_ms)
    }

    /// How the payload renders.
    pub fn data_kind(&self) -> DataKind {
        data_kind(&self.content_type, &self.data)
    }

    /// The compact JSON envelope `{id, topic, time, event?, content_type, data, encoding?,
    /// headers?}`, rendered at most once; it never contains a raw newline.
    pub fn envelope(&self) -> &str {
        self.envelope.get_or_init(|| {
            // Every piece written is UTF-8 (validated strings, JSON escapes, hex, base64);
            // the check runs once per message.
            String::from_utf8(self.render_envelope())
                .unwrap_or_default()
                .into_boxed_str()
        })
    }

    /// The envelope as MessagePack (a map with the same keys and values), rendered at
    /// most once.
    pub fn envelope_msgpack(&self) -> &Bytes {
        self.envelope_msgpack.get_or_init(|| {
            serde_json::from_str::<serde_json::Value>(self.envelope())
                .ok()
                .and_then(|v| rmp_serde::to_vec_named(&v).ok())
                .map(Bytes::from)
                .unwrap_or_default()
        })
    }

    /// Appends the payload as it appears in the envelope's `data`, unquoted: compact JSON,
    /// the text itself, or base64. JSON and base64 never contain a newline; text may.
    pub fn write_data(&self, out: &mut Vec<u8>) {
        match self.data_kind() {
            DataKind::Json => compact_json(out, &self.data),
            DataKind::Text => out.extend_from_slice(&self.data),
            DataKind::Binary => out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(&self.data)
                    .as_bytes(),
            ),
        }
    }

    fn render_envelope(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 160);
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(&self.id.encode());
        out.extend_from_slice(b"\",\"topic\":\"");
        out.extend_from_slice(self.topic.as_str().as_bytes());
        out.extend_from_slice(b"\",\"time\":\"");
        out.extend_from_slice(&crate::clock::rfc3339_ms_bytes(self.time_ms));
        out.push(b'"');
        if let Some(event) = &self.event {
            out.extend_from_slice(b",\"event\":");
            write_json_str(&mut out, event);
        }
        out.extend_from_slice(b",\"content_type\":");
        write_json_str(&mut out, &self.content_type);
        out.extend_from_slice(b",\"data\":");
        match self.data_kind() {
            DataKind::Json => compact_json(&mut out, &self.data),
            DataKind::Text => {
                // Text kind guarantees UTF-8.
                write_json_str(
                    &mut out,
                    std::str::from_utf8(&self.data).unwrap_or_default(),
                )
            }
            DataKind::Binary => {
                out.push(b'"');
                let b64 = base64::engine::general_purpose::STANDARD.encode(&self.data);
                out.extend_from_slice(b64.as_bytes());
                out.extend_from_slice(b"\",\"encoding\":\"base64\"");
            }
        }
        if !self.headers.is_empty() {
            out.extend_from_slice(b",\"headers\":{");
            for (i, (k, v)) in self.headers.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(&mut out, k);
                out.push(b':');
                write_json_str(&mut out, v);
            }
            out.push(b'}');
        }
        out.push(b'}');
        out
    }
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Copies valid JSON, dropping insignificant whitespace, so the envelope is one line.
fn compact_json(out: &mut Vec<u8>, json: &[u8]) {
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::Epoch;

    fn msg(ct: &str, data: &[u8]) -> Message {
        Message::new(
            Cursor::new(Epoch(1), 7),
            TopicName::parse("a.b").expect("topic"),
            1_700_000_000_123,
            Some("created".into()),
            ct.into(),
            vec![],
            Bytes::copy_from_slice(data),
        )
    }

    fn env(m: &Message) -> serde_json::Value {
        serde_json::from_str(m.envelope()).expect("valid json")
    }

    #[test]
    fn json_is_embedded_compact() {
        let m = msg(
            "application/json; charset=utf-8",
            b"{\n  \"a\": \"x y\\n\",\n \"n\": 1e400000 }",
        );
        let text = m.envelope();
        assert!(!text.contains('\n'));
        assert!(
            text.contains(r#""data":{"a":"x y\n","n":1e400000}"#),
            "{text}"
        );
        let m = msg("application/json", b"{\"k\": [1, 2]}");
        let v = env(&m);
        assert_eq!(v["data"]["k"][1], 2);
        assert_eq!(v["id"], "00000001".to_string() + "0000000000000007");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["event"], "created");
    }

    #[test]
    fn text_and_binary() {
        let v = env(&msg("text/plain", "line1\nline2 ü".as_bytes()));
        assert_eq!(v["data"], "line1\nline2 ü");
        assert!(v.get("encoding").is_none());
        let v = env(&msg("application/octet-stream", &[0, 255, 10]));
        assert_eq!(v["data"], "AP8K");
        assert_eq!(v["encoding"], "base64");
        let v = env(&msg("text/plain", &[0xff, 0xfe]));
        assert_eq!(v["encoding"], "base64");
    }
}

//! How payloads appear in JSON (envelopes, WebSocket frames): JSON content types as the
//! value itself, text as a string, anything else base64.

use base64::Engine;

/// How a payload is rendered in the JSON envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// The payload is JSON and is embedded as a JSON value.
    Json,
    /// The payload is UTF-8 text and is embedded as a JSON string.
    Text,
    /// Anything else is embedded as a base64 string with `"encoding":"base64"`.
    Binary,
}

/// Whether a content type declares JSON (`application/json`, `application/*+json`).
pub fn is_json_type(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    base.eq_ignore_ascii_case("application/json")
        || (base.len() > 5 && base.as_bytes()[base.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// Whether a content type declares text (`text/*`, form-encoded).
pub fn is_text_type(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    (base.len() >= 5 && base.as_bytes()[..5].eq_ignore_ascii_case(b"text/"))
        || base.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// How a payload with this content type renders.
pub fn data_kind(content_type: &str, data: &[u8]) -> DataKind {
    if is_json_type(content_type) {
        DataKind::Json
    } else if is_text_type(content_type) && std::str::from_utf8(data).is_ok() {
        DataKind::Text
    } else {
        DataKind::Binary
    }
}

/// The reverse of `payload_from_json` (in herald-core): (JSON text of `data`, `Some("base64")` when
/// it is base64). JSON content types embed the value (falling back to base64 when it is
/// not valid JSON), text is a JSON string, anything else base64.
pub fn payload_to_json(content_type: &str, data: &[u8]) -> (String, Option<&'static str>) {
    let base64 = || {
        let text = base64::engine::general_purpose::STANDARD.encode(data);
        (format!("\"{text}\""), Some("base64"))
    };
    match data_kind(content_type, data) {
        DataKind::Json => match serde_json::from_slice::<Box<serde_json::value::RawValue>>(data) {
            Ok(v) => (v.get().to_owned(), None),
            Err(_) => base64(),
        },
        DataKind::Text => (
            serde_json::to_string(&String::from_utf8_lossy(data)).unwrap_or_default(),
            None,
        ),
        DataKind::Binary => base64(),
    }
}

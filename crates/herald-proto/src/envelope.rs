use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A message as it appears on the wire (the JSON envelope).
///
/// `data` is the JSON value when `content_type` is JSON, a string for `text/*`, and a
/// base64 string (with `encoding: "base64"`) otherwise.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Envelope {
    /// The message's cursor.
    pub id: String,
    /// The topic it was published to.
    pub topic: String,
    /// RFC 3339 UTC time with milliseconds.
    #[schema(format = DateTime)]
    pub time: String,
    /// Optional event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The payload's content type.
    pub content_type: String,
    /// The payload, rendered as described on the type.
    #[schema(value_type = serde_json::Value)]
    pub data: Box<RawValue>,
    /// `"base64"` when `data` is base64-encoded bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Optional message headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

impl Envelope {
    /// The payload's bytes: the JSON text for JSON, the string for text, the decoded bytes
    /// for base64.
    pub fn payload(&self) -> Result<Vec<u8>, String> {
        let raw = self.data.get();
        if self.encoding.as_deref() == Some("base64") {
            let s: String = serde_json::from_str(raw).map_err(|e| e.to_string())?;
            use base64::Engine;
            return base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| e.to_string());
        }
        if raw.starts_with('"') && !is_json(&self.content_type) {
            let s: String = serde_json::from_str(raw).map_err(|e| e.to_string())?;
            return Ok(s.into_bytes());
        }
        Ok(raw.as_bytes().to_vec())
    }
}

fn is_json(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    base.eq_ignore_ascii_case("application/json") || base.to_ascii_lowercase().ends_with("+json")
}

/// The answer to a publish: `{"id","topic","time"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Published {
    /// The message's cursor.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// RFC 3339 UTC time with milliseconds.
    #[schema(format = DateTime)]
    pub time: String,
}

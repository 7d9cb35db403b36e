//! Payloads given as JSON values (batch items, WebSocket and gRPC publishes).

use crate::error::HubError;
use crate::message::is_json_type;
use base64::Engine;
use bytes::Bytes;
pub use herald_proto::payload::payload_to_json;

/// Turns a JSON-carried payload into (content type, bytes):
/// - `encoding: "base64"`: `data` is a base64 string of raw bytes
///   (`application/octet-stream` unless a content type is given);
/// - no content type, or a JSON one: `data` is the JSON value itself;
/// - another content type: `data` must be a string, stored as its UTF-8 text.
pub fn payload_from_json(
    data_json: &str,
    content_type: Option<String>,
    encoding: Option<&str>,
) -> Result<(String, Bytes), HubError> {
    let as_string = |what: &str| {
        serde_json::from_str::<String>(data_json)
            .map_err(|_| HubError::InvalidBody(format!("data must be a JSON string {what}")))
    };
    match encoding {
        Some("base64") => {
            let text = as_string("when encoding is base64")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| HubError::InvalidBody(format!("data is not valid base64: {e}")))?;
            Ok((
                content_type.unwrap_or_else(|| "application/octet-stream".into()),
                Bytes::from(bytes),
            ))
        }
        Some(other) => Err(HubError::InvalidBody(format!(
            "unknown encoding {other:?}; only \"base64\" is supported"
        ))),
        None => match content_type {
            None => Ok((
                "application/json".to_owned(),
                Bytes::copy_from_slice(data_json.as_bytes()),
            )),
            Some(ct) if is_json_type(&ct) => Ok((ct, Bytes::copy_from_slice(data_json.as_bytes()))),
            Some(ct) => {
                let text = as_string("for a non-JSON content type")?;
                Ok((ct, Bytes::from(text)))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_json_round_trips() {
        for (ct, data) in [
            ("application/json", &b"{\"a\":[1,2]}"[..]),
            ("text/plain", &b"hi \"there\""[..]),
            ("application/octet-stream", &[0u8, 255, 7][..]),
        ] {
            let (json, enc) = payload_to_json(ct, data);
            let (ct2, back) = payload_from_json(&json, Some(ct.to_owned()), enc).expect("back");
            assert_eq!((ct2.as_str(), &back[..]), (ct, data));
        }
        assert_eq!(
            payload_to_json("application/json", b"{bad").1,
            Some("base64")
        );
    }

    #[test]
    fn the_three_forms() {
        let (ct, b) = payload_from_json("{\"a\":1}", None, None).expect("json");
        assert_eq!(
            (ct.as_str(), &b[..]),
            ("application/json", &b"{\"a\":1}"[..])
        );
        let (ct, b) = payload_from_json("\"hi\"", Some("text/plain".into()), None).expect("text");
        assert_eq!((ct.as_str(), &b[..]), ("text/plain", &b"hi"[..]));
        let (ct, b) = payload_from_json("\"AAE=\"", None, Some("base64")).expect("b64");
        assert_eq!(
            (ct.as_str(), &b[..]),
            ("application/octet-stream", &[0u8, 1][..])
        );
        assert!(payload_from_json("1", Some("text/plain".into()), None).is_err());
        assert!(payload_from_json("\"!!\"", None, Some("base64")).is_err());
        assert!(payload_from_json("\"x\"", None, Some("hex")).is_err());
    }
}

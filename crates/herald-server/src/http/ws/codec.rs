//! Frame encoding for the two subprotocols.

use axum::extract::ws::Message as WsMessage;
use herald_core::Message;
use herald_proto::ErrorCode;
use herald_proto::ws::{ClientFrame, PROTOCOL_MSGPACK, ServerFrame};
use serde_json::Value;

/// The connection's subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// `herald.v1.json`: JSON text frames.
    Json,
    /// `herald.v1.msgpack`: the same objects, MessagePack, binary frames.
    Msgpack,
}

/// A frame that could not be decoded: the error frame's code, message and the `ref` if
/// one could be recovered.
#[derive(Debug)]
pub(crate) struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
    pub reference: Option<Value>,
}

impl Codec {
    pub(crate) fn for_protocol(protocol: Option<&str>) -> Codec {
        if protocol == Some(PROTOCOL_MSGPACK) {
            Codec::Msgpack
        } else {
            Codec::Json
        }
    }

    /// Decodes a data frame; `Ok(None)` for control frames.
    pub(crate) fn decode(self, msg: &WsMessage) -> Result<Option<ClientFrame>, DecodeError> {
        let bad = |code, message: String, reference| DecodeError {
            code,
            message,
            reference,
        };
        match (self, msg) {
            (Codec::Json, WsMessage::Text(text)) => {
                serde_json::from_str(text).map(Some).map_err(|e| {
                    let reference = serde_json::from_str::<Value>(text)
                        .ok()
                        .and_then(|v| v.get("ref").cloned());
                    let code = classify(&e.to_string());
                    bad(code, format!("invalid frame: {e}"), reference)
                })
            }
            (Codec::Msgpack, WsMessage::Binary(bytes)) => {
                from_msgpack(bytes).map(Some).map_err(|e| {
                    let reference = from_msgpack::<Value>(bytes)
                        .ok()
                        .and_then(|v| v.get("ref").cloned());
                    let code = classify(&e.to_string());
                    bad(code, format!("invalid MessagePack frame: {e}"), reference)
                })
            }
            (Codec::Json, WsMessage::Binary(_)) => Err(bad(
                ErrorCode::InvalidFrame,
                "binary frame on a herald.v1.json connection; send JSON text frames".into(),
                None,
            )),
            (Codec::Msgpack, WsMessage::Text(_)) => Err(bad(
                ErrorCode::InvalidFrame,
                "text frame on a herald.v1.msgpack connection; send MessagePack binary frames"
                    .into(),
                None,
            )),
            (_, WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Close(_)) => Ok(None),
        }
    }

    /// Encodes a server frame.
    pub(crate) fn frame(self, f: &ServerFrame) -> WsMessage {
        match self {
            Codec::Json => WsMessage::Text(serde_json::to_string(f).unwrap_or_default().into()),
            Codec::Msgpack => {
                WsMessage::Binary(rmp_serde::to_vec_named(f).unwrap_or_default().into())
            }
        }
    }

    /// `{"op":"message","sub":…,"message":<envelope>}` around the message's shared
    /// envelope (rendered once per message, not per subscriber).
    pub(crate) fn message(self, sub: &str, m: &Message) -> WsMessage {
        match self {
            Codec::Json => {
                let env = m.envelope();
                let mut out = String::with_capacity(env.len() + sub.len() + 40);
                out.push_str("{\"op\":\"message\",\"sub\":\"");
                // Subscription ids are `s` followed by digits: nothing to escape.
                out.push_str(sub);
                out.push_str("\",\"message\":");
                out.push_str(env);
                out.push('}');
                WsMessage::Text(out.into())
            }
            Codec::Msgpack => {
                let env = m.envelope_msgpack();
                let mut out = Vec::with_capacity(env.len() + sub.len() + 32);
                let _ = rmp::encode::write_map_len(&mut out, 3);
                let _ = rmp::encode::write_str(&mut out, "op");
                let _ = rmp::encode::write_str(&mut out, "message");
                let _ = rmp::encode::write_str(&mut out, "sub");
                let _ = rmp::encode::write_str(&mut out, sub);
                let _ = rmp::encode::write_str(&mut out, "message");
                out.extend_from_slice(env);
                WsMessage::Binary(out.into())
            }
        }
    }

    /// `{"op":"delivery","sub":…,"receipt":"<sub>:<receipt>","attempt":n,"message":…}`.
    pub(crate) fn delivery(self, sub: &str, d: &herald_core::Delivery) -> WsMessage {
        let receipt = format!("{sub}:{}", d.receipt);
        match self {
            Codec::Json => {
                let env = d.message.envelope();
                let mut out = String::with_capacity(env.len() + receipt.len() + 80);
                out.push_str("{\"op\":\"delivery\",\"sub\":\"");
                // Subscription ids and receipts are alphanumeric: nothing to escape.
                out.push_str(sub);
                out.push_str("\",\"receipt\":\"");
                out.push_str(&receipt);
                out.push_str("\",\"attempt\":");
                out.push_str(&d.attempt.to_string());
                out.push_str(",\"message\":");
                out.push_str(env);
                out.push('}');
                WsMessage::Text(out.into())
            }
            Codec::Msgpack => {
                let env = d.message.envelope_msgpack();
                let mut out = Vec::with_capacity(env.len() + receipt.len() + 64);
                let _ = rmp::encode::write_map_len(&mut out, 5);
                let _ = rmp::encode::write_str(&mut out, "op");
                let _ = rmp::encode::write_str(&mut out, "delivery");
                let _ = rmp::encode::write_str(&mut out, "sub");
                let _ = rmp::encode::write_str(&mut out, sub);
                let _ = rmp::encode::write_str(&mut out, "receipt");
                let _ = rmp::encode::write_str(&mut out, &receipt);
                let _ = rmp::encode::write_str(&mut out, "attempt");
                let _ = rmp::encode::write_uint(&mut out, u64::from(d.attempt));
                let _ = rmp::encode::write_str(&mut out, "message");
                out.extend_from_slice(env);
                WsMessage::Binary(out.into())
            }
        }
    }

    /// A bare envelope (the receive-only route).
    pub(crate) fn envelope(self, m: &Message) -> WsMessage {
        match self {
            Codec::Json => WsMessage::Text(m.envelope().into()),
            Codec::Msgpack => WsMessage::Binary(m.envelope_msgpack().clone()),
        }
    }

    /// Any serializable value (the receive-only route's reset line).
    pub(crate) fn value(self, v: &Value) -> WsMessage {
        match self {
            Codec::Json => WsMessage::Text(v.to_string().into()),
            Codec::Msgpack => {
                WsMessage::Binary(rmp_serde::to_vec_named(v).unwrap_or_default().into())
            }
        }
    }
}

fn classify(error: &str) -> ErrorCode {
    if error.contains("unknown variant") {
        ErrorCode::UnknownOp
    } else {
        ErrorCode::InvalidFrame
    }
}

/// Decodes MessagePack with the nesting limit serde_json uses (128): rmp-serde's own
/// (1024) lets a small hostile frame overflow a worker thread's stack.
fn from_msgpack<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(128);
    T::deserialize(&mut de)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_classifies() {
        let ok = Codec::Json.decode(&WsMessage::Text(r#"{"op":"ping","ref":7}"#.into()));
        assert!(matches!(ok, Ok(Some(ClientFrame::Ping { .. }))));
        let unknown = Codec::Json
            .decode(&WsMessage::Text(r#"{"op":"dance","ref":"r1"}"#.into()))
            .expect_err("unknown op");
        assert_eq!(unknown.code, ErrorCode::UnknownOp);
        assert_eq!(unknown.reference, Some(Value::from("r1")));
        let garbage = Codec::Json
            .decode(&WsMessage::Text("{nope".into()))
            .expect_err("bad json");
        assert_eq!(garbage.code, ErrorCode::InvalidFrame);
        let bin = rmp_serde::to_vec_named(&serde_json::json!({"op":"ping","ref":1})).expect("mp");
        assert!(matches!(
            Codec::Msgpack.decode(&WsMessage::Binary(bin.into())),
            Ok(Some(ClientFrame::Ping { .. }))
        ));
        let bad = Codec::Msgpack
            .decode(&WsMessage::Binary(vec![0xc1, 0xff].into()))
            .expect_err("bad mp");
        assert_eq!(bad.code, ErrorCode::InvalidFrame);
    }
}

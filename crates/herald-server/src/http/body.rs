//! Request bodies, read up to a limit.

use super::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use herald_proto::ErrorCode;
use http_body_util::BodyExt;
use std::time::Duration;

/// Most bytes of an over-limit body read and thrown away before answering 413: a client
/// still sending when the connection closes can lose the answer. Past this (or
/// [`DRAIN_TIME`]) the connection is simply closed.
const DRAIN_BYTES: usize = 32 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads a request body of at most `limit` bytes; larger bodies are refused with 413.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = |size: String| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("body is {size} bytes; the limit is {limit}"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        drain(body).await;
        return Err(too_large(len.to_string()));
    }
    let mut body = body;
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("cannot read body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let have = first.as_ref().map_or(0, Bytes::len) + rest.len();
        if have + data.len() > limit {
            drain(body).await;
            return Err(too_large("more than that".into()));
        }
        match &first {
            None if rest.is_empty() => first = Some(data),
            _ => {
                if let Some(f) = first.take() {
                    rest.extend_from_slice(&f);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok(match first {
        Some(f) => f,
        None => rest.freeze(),
    })
}

/// Decodes a JSON object into `T`. serde also reads a struct from an array of its fields
/// in order (`["orders.>", "https://…"]`); herald's JSON bodies are objects, so an array is
/// refused like any other wrong type. For bodies that hold raw JSON (`RawValue`).
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_json::Error> {
    if bytes.trim_ascii_start().first() == Some(&b'[') {
        return Err(serde::de::Error::invalid_type(
            serde::de::Unexpected::Seq,
            &"a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
}

/// Decodes a JSON object of settings into `T`, like [`json_object`]; a number with a zero
/// fraction (`5.0`) is the integer it equals, as JSON and JSON Schema have it.
pub(crate) fn json_settings<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_json::Error> {
    let mut v: serde_json::Value = json_object(bytes)?;
    if !v.is_object() {
        return Err(serde::de::Error::invalid_type(
            unexpected(&v),
            &"a JSON object",
        ));
    }
    integral(&mut v);
    T::deserialize(v)
}

fn unexpected(v: &serde_json::Value) -> serde::de::Unexpected<'_> {
    use serde::de::Unexpected;
    use serde_json::Value;
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("a number"),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// Turns every float with a zero fraction that fits an integer into that integer.
fn integral(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && n.is_f64()
                && f.fract() == 0.0
            {
                if (0.0..18446744073709551616.0).contains(&f) {
                    *n = (f as u64).into();
                } else if (-9223372036854775808.0..0.0).contains(&f) {
                    *n = (f as i64).into();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral),
        Value::Object(fields) => fields.values_mut().for_each(integral),
        _ => {}
    }
}

/// Reads and discards what the client is still sending (bounded in bytes and time).
async fn drain(mut body: Body) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                n += d.len();
                if n > DRAIN_BYTES {
                    break;
                }
            }
        }
    })
    .await;
}

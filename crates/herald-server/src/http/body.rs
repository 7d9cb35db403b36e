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

//! Server-Sent Events: `GET /v1/topics/{topic}/events` and `GET /v1/events?topic=…`.

use super::{ApiError, Caller, query::Query, topics::TopicPath};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use herald_core::{
    CloseReason, Filter, HubError, Message, ResetInfo, Start, SubEvent, Subscription,
};
use herald_proto::ErrorCode;
use std::convert::Infallible;
use std::time::Duration;

/// Most bytes gathered into one write when many events are ready.
const MAX_CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `data:` is the JSON envelope.
    Envelope,
    /// `data:` is the bare payload.
    Data,
}

/// `GET /v1/topics/{topic}/events`
#[utoipa::path(
    get, path = "/v1/topics/{topic}/events", operation_id = "topic_events", tag = "push",
    params(
        super::openapi::TopicParam,
        super::openapi::EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor (sent by reconnecting `EventSource`s).", pattern = r"^(earliest|latest|[0-9A-Fa-f]{24})$"),
    ),
    responses(
        (status = 200, description = "A Server-Sent Events stream: `retry:` and an `open` event with the start cursor first, then per message `id: <cursor>`, `event: <event or message>`, `data: <JSON envelope or payload>`; `reset` events for unknown cursors; `: keepalive` comments.", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Invalid topic, cursor or format.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn topic_events(
    State(st): State<AppState>,
    caller: Caller,
    TopicPath(topic): TopicPath,
    q: Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    events(&st, &caller, Filter::topic(&topic), &q, &headers)
}

/// `GET /v1/events?topic=P&topic=P2`
#[utoipa::path(
    get, path = "/v1/events", operation_id = "pattern_events", tag = "push",
    params(
        super::openapi::PatternsQuery,
        super::openapi::EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor (sent by reconnecting `EventSource`s).", pattern = r"^(earliest|latest|[0-9A-Fa-f]{24})$"),
    ),
    responses(
        (status = 200, description = "A Server-Sent Events stream of every matching topic (see `GET /v1/topics/{topic}/events`).", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Missing or invalid topics or patterns, cursor or format.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn pattern_events(
    State(st): State<AppState>,
    caller: Caller,
    q: Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let patterns = q
        .all("topic")
        .map(HubError::pattern)
        .collect::<Result<Vec<_>, _>>()?;
    let filter = Filter::new(patterns).map_err(HubError::from)?;
    events(&st, &caller, filter, &q, &headers)
}

fn events(
    st: &AppState,
    caller: &Caller,
    filter: Filter,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().map(str::trim))
        .transpose()
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidCursor,
                "Last-Event-ID is not visible ASCII",
            )
        })?
        .filter(|s| !s.is_empty());
    let start = match last_event_id.or(q.get("after")) {
        Some(s) => Start::parse(s).map_err(HubError::from)?,
        None => Start::Latest,
    };
    let format = match q.get("format") {
        None | Some("envelope") => Format::Envelope,
        Some("data") => Format::Data,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("format must be \"envelope\" or \"data\"; got {other:?}"),
            ));
        }
    };
    let sub = st.hub.subscribe(caller, filter, start)?;
    let cfg = &st.config.sse;
    let mut keepalive = tokio::time::interval(Duration::from_secs(cfg.keepalive_seconds));
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `open` carries the concrete start position as its id, so a client that reconnects
    // before the first message still resumes exactly.
    let cursor = sub.cursor().to_string();
    let first = format!(
        "retry: {}\nid: {cursor}\nevent: open\ndata: {{\"cursor\":\"{cursor}\"}}\n\n",
        cfg.retry_ms
    );
    let state = Stream {
        sub,
        keepalive,
        format,
        first: Some(first),
        done: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(state, Stream::step));
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

struct Stream {
    sub: Subscription,
    keepalive: tokio::time::Interval,
    format: Format,
    first: Option<String>,
    done: bool,
}

impl Stream {
    async fn step(mut self) -> Option<(Result<Bytes, Infallible>, Stream)> {
        if self.done {
            return None;
        }
        if let Some(first) = self.first.take() {
            // The first tick of an interval is immediate; consume it with the preamble.
            self.keepalive.tick().await;
            return Some((Ok(Bytes::from(first)), self));
        }
        let mut out = Vec::new();
        tokio::select! {
            ev = self.sub.next() => {
                self.render(ev, &mut out);
                // Coalesce: everything else already available goes into the same write.
                while !self.done && out.len() < MAX_CHUNK {
                    match self.sub.next().now_or_never() {
                        Some(ev) => self.render(ev, &mut out),
                        None => break,
                    }
                }
                self.keepalive.reset();
            }
            _ = self.keepalive.tick() => out.extend_from_slice(b": keepalive\n\n"),
        }
        Some((Ok(Bytes::from(out)), self))
    }

    fn render(&mut self, ev: Option<SubEvent>, out: &mut Vec<u8>) {
        match ev {
            None => self.done = true,
            Some(SubEvent::Messages(ms)) => {
                for m in &ms {
                    write_message(out, m, self.format);
                }
            }
            Some(SubEvent::Reset(info)) => write_reset(out, &info),
            Some(SubEvent::Closed { reason, cursor }) => {
                self.done = true;
                let (event, message) = match reason {
                    CloseReason::ShuttingDown => {
                        ("close", "the server is shutting down; reconnect to resume")
                    }
                    CloseReason::SlowConsumer => (
                        "error",
                        "this stream fell behind too often; reconnect to resume",
                    ),
                    CloseReason::StorageFailure => ("error", "storage failed; reconnect to resume"),
                    CloseReason::TokenExpired => (
                        "close",
                        "the token expired; reconnect with a fresh one to resume",
                    ),
                    CloseReason::TokenRevoked => (
                        "close",
                        "the token was revoked; reconnect with a valid one to resume",
                    ),
                };
                let body = serde_json::json!({
                    "code": reason.as_str(),
                    "message": message,
                    "cursor": cursor.to_string(),
                });
                out.extend_from_slice(b"event: ");
                out.extend_from_slice(event.as_bytes());
                out.extend_from_slice(b"\ndata: ");
                out.extend_from_slice(body.to_string().as_bytes());
                out.extend_from_slice(b"\n\n");
            }
        }
    }
}

/// `id:`, `event:` and `data:` lines. Ids are hex, event names are validated on publish,
/// and payload lines are split, so no payload can break the framing.
fn write_message(out: &mut Vec<u8>, m: &Message, format: Format) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(&m.id.encode());
    out.extend_from_slice(b"\nevent: ");
    out.extend_from_slice(m.event.as_deref().unwrap_or("message").as_bytes());
    out.push(b'\n');
    match format {
        Format::Envelope => {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(m.envelope().as_bytes());
            out.push(b'\n');
        }
        Format::Data => {
            let mut data = Vec::with_capacity(m.data.len());
            m.write_data(&mut data);
            write_data_lines(out, &data);
        }
    }
    out.push(b'\n');
}

/// One `data:` line per line of `data` (CRLF, CR and LF all end a line in SSE).
fn write_data_lines(out: &mut Vec<u8>, data: &[u8]) {
    let mut rest = data;
    loop {
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        out.extend_from_slice(b"data: ");
        match end {
            None => {
                out.extend_from_slice(rest);
                out.push(b'\n');
                return;
            }
            Some(i) => {
                out.extend_from_slice(&rest[..i]);
                out.push(b'\n');
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + skip..];
            }
        }
    }
}

fn write_reset(out: &mut Vec<u8>, info: &ResetInfo) {
    let wire = herald_proto::Reset {
        reason: info.reason,
        earliest: info.earliest.to_string(),
        latest: info.latest.to_string(),
    };
    // The reset's id makes a reconnecting EventSource resume from `earliest`.
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(&info.earliest.encode());
    out.extend_from_slice(b"\nevent: reset\ndata: ");
    out.extend_from_slice(&serde_json::to_vec(&wire).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::write_data_lines;

    #[test]
    fn every_line_ending_splits() {
        let mut out = Vec::new();
        write_data_lines(&mut out, b"a\nb\r\nc\rd\n");
        assert_eq!(out, b"data: a\ndata: b\ndata: c\ndata: d\ndata: \n");
        let mut out = Vec::new();
        write_data_lines(&mut out, b"one");
        assert_eq!(out, b"data: one\n");
    }
}

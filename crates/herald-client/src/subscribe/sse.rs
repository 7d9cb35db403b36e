//! Server-Sent Events.

use super::{Event, Session, Stop, protocol_error};
use crate::client::check;
use crate::error::{Error, ErrorKind};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use herald_proto::{Envelope, Reset};
use std::time::Duration;

/// A stream that stays silent longer than this (keepalives come every 15 s) is dead.
const SILENCE: Duration = Duration::from_secs(45);

pub(crate) async fn run(s: &mut Session<'_>) -> Stop {
    let mut req = s
        .client
        .http
        .get(s.client.url("/v1/events"))
        .query(&[("topic", s.pattern)])
        .header("accept", "text/event-stream");
    req = match s.cursor.as_str() {
        "latest" | "earliest" => req.query(&[("after", s.cursor.as_str())]),
        cursor => req.header("last-event-id", cursor),
    };
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) => return Stop::Transient(e.into()),
    };
    let status = res.status().as_u16();
    if matches!(status, 404 | 405 | 406 | 426 | 501) {
        return Stop::Refused(Error::new(
            ErrorKind::Status(status),
            format!("SSE refused with HTTP {status}"),
        ));
    }
    let res = match check(res).await {
        Ok(r) => r,
        Err(e) => return Stop::from_error(e),
    };
    let is_sse = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_sse {
        return Stop::Refused(protocol_error(
            "the server did not answer with text/event-stream",
        ));
    }
    let mut events = res.bytes_stream().eventsource();
    loop {
        let ev = match tokio::time::timeout(SILENCE, events.next()).await {
            Err(_) => {
                return Stop::Transient(Error::new(
                    ErrorKind::Timeout,
                    "the event stream went silent",
                ));
            }
            Ok(None) => {
                return Stop::Transient(Error::new(ErrorKind::Connect, "the event stream ended"));
            }
            Ok(Some(Err(e))) => {
                return Stop::Transient(Error::new(ErrorKind::Connect, e.to_string()));
            }
            Ok(Some(Ok(ev))) => ev,
        };
        let out = match ev.event.as_str() {
            "open" => {
                s.started_at(ev.id);
                continue;
            }
            "reset" => match serde_json::from_str::<Reset>(&ev.data) {
                Ok(r) => Event::Reset(r),
                Err(e) => return Stop::Fatal(protocol_error(format!("bad reset event: {e}"))),
            },
            "error" | "close" => {
                return Stop::Transient(Error::new(
                    ErrorKind::Connect,
                    format!("server ended the stream: {}", ev.data),
                ));
            }
            _ => match serde_json::from_str::<Envelope>(&ev.data) {
                Ok(m) => Event::Message(m),
                Err(e) => return Stop::Fatal(protocol_error(format!("bad message event: {e}"))),
            },
        };
        if let Err(stop) = s.emit(out).await {
            return stop;
        }
    }
}

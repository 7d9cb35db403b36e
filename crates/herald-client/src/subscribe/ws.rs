//! WebSocket (`herald.v1.json`).

use super::{Event, Session, Stop, protocol_error};
use crate::error::{Error, ErrorKind};
use futures_util::{SinkExt, StreamExt};
use herald_proto::ws::PROTOCOL_JSON;
use herald_proto::{Envelope, ErrorCode, Reset};
use serde::Deserialize;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// No frame at all (the server pings every 20 s) for this long means a dead connection.
const SILENCE: Duration = Duration::from_secs(75);

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    op: &'a str,
}

#[derive(Deserialize)]
struct MessageFrame {
    message: Envelope,
}

#[derive(Deserialize)]
struct SubscribedFrame {
    cursor: String,
}

#[derive(Deserialize)]
struct ErrorFrame {
    code: ErrorCode,
    message: String,
}

/// What a server frame means to a subscription.
enum Incoming {
    Event(Event),
    Subscribed(String),
    Error(ErrorCode, String),
    Other,
}

fn decode(text: &str) -> Result<Incoming, serde_json::Error> {
    Ok(match serde_json::from_str::<Head<'_>>(text)?.op {
        "message" => Incoming::Event(Event::Message(
            serde_json::from_str::<MessageFrame>(text)?.message,
        )),
        "reset" => Incoming::Event(Event::Reset(serde_json::from_str::<Reset>(text)?)),
        "subscribed" => Incoming::Subscribed(serde_json::from_str::<SubscribedFrame>(text)?.cursor),
        "error" => {
            let e = serde_json::from_str::<ErrorFrame>(text)?;
            Incoming::Error(e.code, e.message)
        }
        _ => Incoming::Other,
    })
}

pub(crate) fn ws_url(base: &str, path: &str) -> String {
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}{path}")
}

pub(crate) async fn run(s: &mut Session<'_>) -> Stop {
    let mut request = match ws_url(s.client.base_url(), "/v1/ws").into_client_request() {
        Ok(r) => r,
        Err(e) => return Stop::Fatal(Error::new(ErrorKind::InvalidInput, e.to_string())),
    };
    if let Ok(v) = PROTOCOL_JSON.parse() {
        request.headers_mut().insert("sec-websocket-protocol", v);
    }
    if let Some(v) = s.client.authorization() {
        request.headers_mut().insert("authorization", v);
    }
    let mut ws = match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => ws,
        Err(WsError::Http(res)) => {
            let status = res.status().as_u16();
            let e = Error::new(
                ErrorKind::Status(status),
                format!("WebSocket upgrade refused with HTTP {status}"),
            );
            return if status >= 500 || status == 429 {
                Stop::Transient(e)
            } else if status == 401 || status == 403 {
                // Another transport would be refused the same way.
                Stop::Fatal(e)
            } else {
                Stop::Refused(e)
            };
        }
        Err(e) => return Stop::Transient(Error::new(ErrorKind::Connect, e.to_string())),
    };
    let subscribe =
        serde_json::json!({"op": "subscribe", "ref": "sub", "topic": s.pattern, "after": s.cursor});
    if let Err(e) = ws.send(Message::Text(subscribe.to_string().into())).await {
        return Stop::Transient(Error::new(ErrorKind::Connect, e.to_string()));
    }
    loop {
        let msg = match tokio::time::timeout(SILENCE, ws.next()).await {
            Err(_) => {
                return Stop::Transient(Error::new(
                    ErrorKind::Timeout,
                    "the WebSocket went silent",
                ));
            }
            Ok(None) => {
                return Stop::Transient(Error::new(ErrorKind::Connect, "the WebSocket closed"));
            }
            Ok(Some(Err(e))) => {
                return Stop::Transient(Error::new(ErrorKind::Connect, e.to_string()));
            }
            Ok(Some(Ok(m))) => m,
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(frame) => {
                let why = frame
                    .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                    .unwrap_or_default();
                return Stop::Transient(Error::new(
                    ErrorKind::Connect,
                    format!("closed by the server: {why}"),
                ));
            }
            _ => continue,
        };
        let ev = match decode(&text) {
            Ok(Incoming::Event(ev)) => ev,
            Ok(Incoming::Subscribed(cursor)) => {
                s.started_at(cursor);
                continue;
            }
            Ok(Incoming::Error(code, message)) => {
                let e = Error::new(ErrorKind::Status(400), format!("{code}: {message}"));
                return match code {
                    ErrorCode::ShuttingDown
                    | ErrorCode::StorageFailure
                    | ErrorCode::Internal
                    | ErrorCode::LimitReached => Stop::Transient(e),
                    _ => Stop::Fatal(e),
                };
            }
            Ok(Incoming::Other) => continue,
            Err(e) => return Stop::Fatal(protocol_error(format!("bad frame: {e}"))),
        };
        if let Err(stop) = s.emit(ev).await {
            return stop;
        }
    }
}

//! WebSockets: `GET /v1/ws` (every operation) and `GET /v1/topics/{topic}/ws`
//! (receive-only).

mod codec;
mod conn;
mod ops;

use super::{ApiError, Caller, query::Query, topics::TopicPath};
use crate::state::AppState;
use axum::Extension;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use codec::Codec;
use conn::{Conn, Mode};
use herald_core::{Filter, HubError, Start};
use herald_proto::ErrorCode;
use herald_proto::ws::{PROTOCOL_JSON, PROTOCOL_MSGPACK};
use std::net::SocketAddr;

/// Refuses browsers from origins outside the allow-list (before upgrading).
fn check_origin(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let allowed = &st.config.websocket.allowed_origins;
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if allowed.is_empty() {
        return Ok(());
    }
    let origin = origin.to_str().unwrap_or("");
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("origin {origin:?} may not open WebSockets here (websocket.allowed_origins)"),
        ))
    }
}

/// Applies the buffer and size limits, and the subprotocols.
fn configure(
    st: &AppState,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, ApiError> {
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("this route needs a WebSocket upgrade: {}", e.body_text()),
        )
    })?;
    let cfg = &st.config;
    // A frame holds at most one payload (base64 grows it by a third) plus its fields.
    let max_message = cfg.limits.max_payload_bytes / 3 * 4 + 64 * 1024;
    Ok(upgrade
        .read_buffer_size(cfg.websocket.read_buffer_bytes)
        .write_buffer_size(cfg.websocket.write_buffer_bytes)
        .max_write_buffer_size(cfg.websocket.write_buffer_bytes + 2 * max_message)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .protocols([PROTOCOL_JSON, PROTOCOL_MSGPACK]))
}

fn codec_of(upgrade: &WebSocketUpgrade) -> Codec {
    Codec::for_protocol(upgrade.selected_protocol().and_then(|p| p.to_str().ok()))
}

/// `GET /v1/ws`
#[utoipa::path(
    get, path = "/v1/ws", operation_id = "websocket", tag = "push",
    params(
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Connection" = String, Header, description = "`Upgrade`"),
        ("Sec-WebSocket-Key" = String, Header, description = "RFC 6455 handshake key."),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`"),
        ("Sec-WebSocket-Protocol" = Option<String>, Header, description = "`herald.v1.json` (text frames, the default) or `herald.v1.msgpack` (binary frames, same shapes)."),
    ),
    responses(
        (status = 101, description = "Switching Protocols: a WebSocket speaking herald's frames (subscribe, publish, consume, ack, nack, serve, ping; see the API contract)."),
        (status = 400, description = "Not a WebSocket upgrade.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn connect(
    State(st): State<AppState>,
    caller: Caller,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    check_origin(&st, &headers)?;
    let upgrade = configure(&st, upgrade)?;
    let codec = codec_of(&upgrade);
    let tracker = st.connections.clone();
    let ip = peer.map(|p| p.0.0.ip());
    let conn = Conn::new(st, caller.0, ip, codec, Mode::Full);
    Ok(upgrade.on_upgrade(move |socket| tracker.track_future(conn.serve(socket))))
}

/// `GET /v1/topics/{topic}/ws?after=`: pushes bare envelopes; client frames are ignored.
#[utoipa::path(
    get, path = "/v1/topics/{topic}/ws", operation_id = "topic_websocket", tag = "push",
    params(
        super::openapi::TopicParam,
        super::openapi::AfterQuery,
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Connection" = String, Header, description = "`Upgrade`"),
        ("Sec-WebSocket-Key" = String, Header, description = "RFC 6455 handshake key."),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`"),
        ("Sec-WebSocket-Protocol" = Option<String>, Header, description = "`herald.v1.json` (text frames, the default) or `herald.v1.msgpack` (binary frames, same shapes)."),
    ),
    responses(
        (status = 101, description = "Switching Protocols: a receive-only WebSocket that pushes each message's JSON envelope; client frames are ignored."),
        (status = 400, description = "Not a WebSocket upgrade, or an invalid topic or cursor.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn receive(
    State(st): State<AppState>,
    caller: Caller,
    TopicPath(topic): TopicPath,
    q: Query,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    check_origin(&st, &headers)?;
    let upgrade = configure(&st, upgrade)?;
    let start = Start::parse(q.get("after").unwrap_or("latest")).map_err(HubError::from)?;
    let sub = st.hub.subscribe(&caller, Filter::topic(&topic), start)?;
    let codec = codec_of(&upgrade);
    let tracker = st.connections.clone();
    let conn = Conn::new(st, caller.0, None, codec, Mode::ReceiveOnly).with_subscription(sub);
    Ok(upgrade.on_upgrade(move |socket| tracker.track_future(conn.serve(socket))))
}

//! WebSocket client connections with small buffers (the load generator shares the
//! machine with the server it measures).

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `url`, optionally asking for a subprotocol.
pub async fn connect(url: &str, protocol: Option<&str>) -> anyhow::Result<WsStream> {
    let mut req = url.into_client_request()?;
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("sec-websocket-protocol", p.parse()?);
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    Ok(ws)
}

/// Reads text and binary frames until the connection ends, calling `on` with each.
pub async fn read(mut ws: WsStream, mut on: impl FnMut(&[u8])) {
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Text(t) => on(t.as_bytes()),
            Message::Binary(b) => on(&b),
            _ => {}
        }
    }
}

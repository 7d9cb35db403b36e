//! Subscriber adapters: one live subscription per connection on each system, returned
//! once the server has confirmed it, as a future that reads until the connection ends.

use crate::common::System;
use crate::nats_proto::NatsSub;
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use tokio_tungstenite::tungstenite::Message;

pub type OnMsg = Box<dyn FnMut(&[u8]) + Send>;
pub type Reader = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The fan-out topic, in each system's naming.
pub fn topic(sys: System) -> &'static str {
    match sys {
        System::Mqtt | System::MqttWs => "bench/fanout",
        _ => "bench.fanout",
    }
}

/// Opens one subscription on `sys` at `addr`; `id` makes client ids unique.
pub async fn subscribe(
    sys: System,
    addr: SocketAddr,
    id: usize,
    on: OnMsg,
) -> anyhow::Result<Reader> {
    let t = topic(sys);
    Ok(match sys {
        System::Herald => {
            let mut ws = crate::ws::connect(&format!("ws://{addr}/v1/ws"), None).await?;
            let frame = serde_json::json!({"op": "subscribe", "topic": t, "after": "latest"});
            ws.send(Message::Text(frame.to_string().into())).await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(m))) if m.contains("\"subscribed\"") => break,
                    Some(Ok(Message::Text(m))) if m.contains("\"error\"") => {
                        anyhow::bail!("herald refused: {m}")
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("closed before subscribing"),
                }
            }
            Box::pin(crate::ws::read(ws, on))
        }
        System::NodeWs => {
            let ws = crate::ws::connect(&format!("ws://{addr}/sub"), None).await?;
            Box::pin(crate::ws::read(ws, on))
        }
        System::PushpinWs => {
            let ws = crate::ws::connect(&format!("ws://{addr}/ws"), None).await?;
            Box::pin(crate::ws::read(ws, on))
        }
        System::PushpinSse => {
            let s = crate::sse::Sse::open(addr, "/sse").await?;
            Box::pin(s.run(on))
        }
        System::Nats | System::NatsWs => {
            let s = NatsSub::subscribe(addr, sys == System::NatsWs, t).await?;
            Box::pin(s.run(on))
        }
        System::Redis => {
            let client = redis::Client::open(format!("redis://{addr}/"))?;
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(t).await?;
            Box::pin(redis_read(ps, on))
        }
        System::Mqtt | System::MqttWs => mqtt_subscribe(sys, addr, id, on).await?,
        System::Jetstream | System::Rabbitmq => {
            anyhow::bail!("{} is not a pub/sub target here", sys.name())
        }
    })
}

async fn redis_read(ps: redis::aio::PubSub, mut on: OnMsg) {
    let mut msgs = ps.into_on_message();
    while let Some(m) = msgs.next().await {
        on(m.get_payload_bytes());
    }
}

/// MQTT client options for `sys` (TCP or WebSocket) with a unique client id.
pub fn mqtt_options(sys: System, addr: SocketAddr, client_id: String) -> rumqttc::MqttOptions {
    let mut o = if sys == System::MqttWs {
        let mut o = rumqttc::MqttOptions::new(client_id, format!("ws://{addr}/mqtt"), addr.port());
        o.set_transport(rumqttc::Transport::Ws);
        o
    } else {
        rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port())
    };
    o.set_keep_alive(std::time::Duration::from_secs(120));
    o.set_clean_session(true);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o
}

async fn mqtt_subscribe(
    sys: System,
    addr: SocketAddr,
    id: usize,
    mut on: OnMsg,
) -> anyhow::Result<Reader> {
    use rumqttc::{Event, Packet, QoS};
    let opts = mqtt_options(sys, addr, format!("peers-{}-{id}", std::process::id()));
    let (client, mut el) = rumqttc::AsyncClient::new(opts, 16);
    client.subscribe(topic(sys), QoS::AtMostOnce).await?;
    loop {
        match el.poll().await? {
            Event::Incoming(Packet::SubAck(_)) => break,
            Event::Incoming(Packet::ConnAck(c))
                if c.code != rumqttc::ConnectReturnCode::Success =>
            {
                anyhow::bail!("mqtt connect refused: {:?}", c.code)
            }
            _ => {}
        }
    }
    Ok(Box::pin(async move {
        let _client = client;
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev {
                on(&p.payload);
            }
        }
    }))
}

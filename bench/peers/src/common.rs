//! What every scenario shares: the system under test, where it listens, which processes
//! to sample, and the JSON line each measurement appends to the results file.

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::SocketAddr;

/// A system under test, with the transport its clients use.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// herald: WebSocket `/v1/ws` subscribers and consumers, HTTP publishers.
    Herald,
    /// NATS core over TCP.
    Nats,
    /// NATS core over its WebSocket listener.
    NatsWs,
    /// NATS JetStream (work-queue stream, pull consumer).
    Jetstream,
    /// Redis: pub/sub, or XADD / streams with `appendfsync always`.
    Redis,
    /// Mosquitto over MQTT/TCP.
    Mqtt,
    /// Mosquitto over its MQTT/WebSocket listener.
    MqttWs,
    /// RabbitMQ quorum queues with publisher confirms.
    Rabbitmq,
    /// A Node.js `ws` broadcast server (node/broadcast.js).
    NodeWs,
    /// Pushpin: WebSocket clients, HTTP control API publishes.
    PushpinWs,
    /// Pushpin: SSE clients, HTTP control API publishes.
    PushpinSse,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Herald => "herald",
            System::Nats => "nats",
            System::NatsWs => "nats-ws",
            System::Jetstream => "jetstream",
            System::Redis => "redis",
            System::Mqtt => "mqtt",
            System::MqttWs => "mqtt-ws",
            System::Rabbitmq => "rabbitmq",
            System::NodeWs => "node-ws",
            System::PushpinWs => "pushpin-ws",
            System::PushpinSse => "pushpin-sse",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The system under test.
    #[arg(long, value_enum)]
    pub system: System,
    /// Address its clients (subscribers, consumers) connect to.
    #[arg(long)]
    pub addr: SocketAddr,
    /// Address publishers connect to when it differs (NATS-WS and MQTT-WS publish over
    /// TCP; Pushpin publishes to its control API).
    #[arg(long)]
    pub pub_addr: Option<SocketAddr>,
    /// Server process IDs whose CPU time and RSS are measured (summed).
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// The peer this measurement is paired with (herald's runs name their peer).
    #[arg(long)]
    pub vs: Option<String>,
    /// Round number (for the A B B A alternation).
    #[arg(long, default_value_t = 1)]
    pub round: u32,
    /// Append one JSON line per measurement to this file.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

impl Target {
    pub fn publish_addr(&self) -> SocketAddr {
        self.pub_addr.unwrap_or(self.addr)
    }

    pub fn sample(&self) -> crate::procfs::Sample {
        crate::procfs::sample(&self.pid)
    }
}

/// One measurement: a scenario's case on one system in one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub scenario: String,
    pub case: String,
    pub system: String,
    pub vs: String,
    pub round: u32,
    pub metrics: Vec<(String, f64)>,
}

impl Record {
    pub fn new(t: &Target, scenario: &str, case: String) -> Record {
        Record {
            scenario: scenario.into(),
            case,
            system: t.system.name().into(),
            vs: t.vs.clone().unwrap_or_else(|| t.system.name().into()),
            round: t.round,
            metrics: Vec::new(),
        }
    }

    pub fn metric(&mut self, name: &str, value: f64) -> &mut Self {
        self.metrics.push((name.into(), value));
        self
    }

    /// Prints the record and appends it to `--out`.
    pub fn emit(&self, t: &Target) -> anyhow::Result<()> {
        let line = serde_json::to_string(self)?;
        let shown: Vec<String> = self
            .metrics
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::report::fmt(*v)))
            .collect();
        println!(
            "{} [{}] {} (vs {}, round {}): {}",
            self.scenario,
            self.case,
            self.system,
            self.vs,
            self.round,
            shown.join(", ")
        );
        if let Some(path) = &t.out {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Microseconds since the Unix epoch (publishers stamp payloads with it).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The number after `"key":` in `hay`.
pub fn field(hay: &[u8], key: &[u8]) -> Option<u64> {
    let at = hay.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = hay[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&hay[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// A bench payload: `{"n":<sequence>,"t":<publish time µs>,"pad":"…"}`.
pub fn payload(n: u64, pad: &str) -> Vec<u8> {
    format!("{{\"n\":{n},\"t\":{},\"pad\":\"{pad}\"}}", now_us()).into_bytes()
}

/// (sequence number, publish time) of a payload, wherever it sits in a frame.
pub fn parse_payload(frame: &[u8]) -> Option<(u64, u64)> {
    Some((field(frame, b"\"n\":")?, field(frame, b"\"t\":")?))
}

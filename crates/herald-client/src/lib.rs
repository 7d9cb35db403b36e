//! The Rust SDK for herald.
//!
//! [`Client`] is a cheap-to-clone handle. Publish and read with plain calls; follow a
//! topic or pattern with [`Client::subscribe`], a `Stream` that reconnects with backoff
//! and resumes exactly from its last cursor.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use herald_client::{Client, Event, PublishOptions, SubscribeOptions, Via};
//!
//! # async fn demo() -> Result<(), herald_client::Error> {
//! let client = Client::new("http://127.0.0.1:8080")?;
//! client.publish("orders.eu", r#"{"id":1}"#, PublishOptions::json()).await?;
//! let mut sub = client.subscribe("orders.*", SubscribeOptions::new(Via::LongPoll).after("earliest"));
//! while let Some(event) = sub.next().await {
//!     match event? {
//!         Event::Message(m) => println!("{} {}", m.id, m.data),
//!         Event::Reset(r) => eprintln!("missed messages: {:?}", r.reason),
//!     }
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod client;
mod error;
mod queues;
mod rpc;
mod subscribe;

pub use client::{Client, PublishOptions, ReadOptions};
pub use error::{Error, ErrorKind};
pub use herald_proto::{BatchItem, Envelope, Problem, Published, ReadResponse, Reset, ResetReason};
pub use herald_proto::{Delivery, JobDoc, JobStatus};
pub use queues::{ClaimOptions, SubmittedJob};
pub use rpc::{CallOptions, Reply, Request};
pub use subscribe::{Event, SubscribeOptions, Subscription, Via};

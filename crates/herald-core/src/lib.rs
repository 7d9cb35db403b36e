//! herald's domain core: topics, patterns, cursors, messages, the [`Hub`], the
//! [`LogStore`] contract with an in-memory store, and the store conformance suite.
//! No sockets live here.

pub mod clock;
pub mod conformance;
mod cursor;
mod error;
mod fanout;
mod groups;
pub mod hmac;
mod hub;
pub mod jobs;
mod memory;
mod message;
mod payload;
mod principal;
mod rpc;
mod store;
mod subscription;
mod topic;

pub use cursor::{Cursor, CursorError, Epoch, Start};
pub use error::HubError;
pub use groups::{
    Claim, Consumer, Delivery, GroupConfig, GroupSettings, GroupStats, Settled, check_group_name,
    dead_letter,
};
pub use herald_proto::ResetReason;
pub use hub::{
    DEFAULT_READ_LIMIT, Hub, HubOptions, LiveStats, MAX_READ_LIMIT, Publish, Published, Read,
    ReadResult, ResetInfo, TopicStats,
};
pub use memory::MemoryStore;
pub use message::{DataKind, Message, data_kind, is_json_type, is_text_type};
pub use payload::{payload_from_json, payload_to_json};
pub use principal::Principal;
pub use rpc::{Call, Responder, RpcReply, RpcRequest};
pub use store::{
    Append, Appended, CommitSink, LogStore, ReadBatch, Record, Retention, StoreContext, StoreError,
    TopicInfo,
};
pub use subscription::{CloseReason, SubEvent, Subscription, SubscriptionOptions};
pub use topic::{Filter, FilterError, NameError, Pattern, TopicName};

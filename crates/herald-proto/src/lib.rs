//! Wire types shared by the herald server and its SDK: JSON envelopes, read responses,
//! problem documents and the stable error codes. No I/O lives here.

mod envelope;
mod error;
mod job;
mod read;
pub mod ws;

pub use envelope::{Envelope, Published};
pub use error::{ErrorCode, Problem};
pub use job::{Claimed, Delivery, JobDoc, JobStatus};
pub use read::{
    BatchItem, ReadResponse, Reset, ResetReason, RetentionSpec, TopicStats, TopicsResponse, raw,
};

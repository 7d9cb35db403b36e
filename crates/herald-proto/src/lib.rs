//! Wire types shared by the herald server and its SDK: JSON envelopes, read responses,
//! problem documents and the stable error codes. No I/O lives here.

mod envelope;
mod error;
mod job;
pub mod payload;
mod read;
pub mod ws;

pub use envelope::{Envelope, Published};
pub use error::{ErrorCode, Problem};
pub use job::{Claimed, Delivery, JobDoc, JobStatus};
pub use read::{
    BatchItem, ReadResponse, Reset, ResetReason, RetentionSpec, TopicStats, TopicsResponse, raw,
};

/// The gRPC service `herald.v1.Herald`, generated from `proto/herald/v1/herald.proto`.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod grpc {
    tonic::include_proto!("herald.v1");

    /// The encoded file descriptor set (for the reflection service).
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("herald_descriptor");
}

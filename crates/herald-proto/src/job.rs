//! Job documents.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Submitted, not taken yet.
    Queued,
    /// A worker has it.
    Running,
    /// Completed.
    Succeeded,
    /// Failed for good.
    Failed,
}

impl JobStatus {
    /// Whether the job is finished.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// The job document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobDoc {
    /// The job id (the task message's cursor).
    pub id: String,
    /// The queue.
    pub queue: String,
    /// Where it is.
    pub status: JobStatus,
    /// Deliveries to a worker so far.
    pub attempt: u32,
    /// The last progress a worker reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// The result of a succeeded job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// When it was submitted (RFC 3339).
    #[schema(format = DateTime)]
    pub created: String,
    /// When this state was reached (RFC 3339).
    #[schema(format = DateTime)]
    pub updated: String,
}

/// One message handed to a consumer-group member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// Settle the delivery (ack, nack, extend) with this.
    pub receipt: String,
    /// 1 for the first delivery, counting redeliveries.
    pub attempt: u32,
    /// The message.
    pub message: crate::Envelope,
}

/// The answer to a claim.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Claimed {
    /// Leased deliveries (empty when the wait ran out).
    pub deliveries: Vec<Delivery>,
}

//! Core values as gRPC messages and back.

use herald_core::{Filter, HubError, Message, ResetInfo, Start};
use herald_proto::grpc;
use tonic::Status;

/// A message as the gRPC `Message`.
pub fn message(m: &Message) -> grpc::Message {
    grpc::Message {
        id: m.id.to_string(),
        topic: m.topic.to_string(),
        time: m.time(),
        event: m.event.as_deref().map(str::to_owned),
        content_type: m.content_type.to_string(),
        data: m.data.clone(),
        headers: m
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The gap signal.
pub fn reset(r: &ResetInfo) -> grpc::Reset {
    grpc::Reset {
        reason: match r.reason {
            herald_core::ResetReason::Expired => "expired",
            herald_core::ResetReason::Epoch => "epoch",
        }
        .to_owned(),
        earliest: r.earliest.to_string(),
        latest: r.latest.to_string(),
    }
}

/// Topics or patterns as one filter.
pub fn filter(patterns: &[String]) -> Result<Filter, Status> {
    let patterns = patterns
        .iter()
        .map(|p| HubError::pattern(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(super::status)?;
    Filter::new(patterns).map_err(|e| super::status(e.into()))
}

/// A start position; `default` when empty.
pub fn start(after: &str, default: &str) -> Result<Start, Status> {
    let after = if after.is_empty() { default } else { after };
    Start::parse(after).map_err(|e| super::status(e.into()))
}

//! Topic listing, statistics, retention and deletion.

use super::{ApiError, Caller, body::read_body};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use herald_core::{Cursor, HubError, Retention, TopicName, TopicStats};
use herald_proto::{ErrorCode, RetentionSpec, TopicsResponse};
use serde::Deserialize;
use std::time::Duration;

/// A valid topic name from the `{topic}` path segment.
#[derive(Debug)]
pub struct TopicPath(pub TopicName);

impl<S: Send + Sync> FromRequestParts<S> for TopicPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidTopic, e.body_text()))?;
        Ok(TopicPath(HubError::topic(&raw)?))
    }
}

fn wire(s: TopicStats, epoch: herald_core::Epoch) -> herald_proto::TopicStats {
    let cursor = |seq: u64| Cursor::new(epoch, seq).to_string();
    let r = s.info.retention;
    herald_proto::TopicStats {
        name: s.info.name.to_string(),
        first: s.info.first.map(cursor),
        last: s.info.last.map(cursor),
        count: s.info.count,
        bytes: s.info.bytes,
        subscribers: s.subscribers,
        groups: s.groups,
        retention: RetentionSpec {
            max_messages: r.max_messages,
            max_bytes: r.max_bytes,
            max_age: r.max_age.map(|d| humantime::format_duration(d).to_string()),
        },
    }
}

/// `GET /v1/topics`
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<TopicsResponse>, ApiError> {
    let epoch = st.hub.epoch();
    let topics = st.hub.topics(&caller)?;
    Ok(Json(TopicsResponse {
        topics: topics.into_iter().map(|t| wire(t, epoch)).collect(),
    }))
}

/// `GET /v1/topics/{topic}`
pub async fn stats(
    State(st): State<AppState>,
    caller: Caller,
    TopicPath(topic): TopicPath,
) -> Result<Json<herald_proto::TopicStats>, ApiError> {
    let s = st.hub.topic(&caller, &topic)?;
    Ok(Json(wire(s, st.hub.epoch())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicConfig {
    retention: RetentionSpec,
}

/// Accepts `{"retention":{…}}` or the retention object itself.
fn parse_retention(body: &[u8]) -> Result<Retention, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::InvalidRetention, m);
    let spec = match serde_json::from_slice::<TopicConfig>(body) {
        Ok(c) => c.retention,
        Err(_) => serde_json::from_slice::<RetentionSpec>(body).map_err(|e| {
            bad(format!(
                "expected {{\"retention\":{{\"max_messages\"?,\"max_bytes\"?,\"max_age\"?}}}}: {e}"
            ))
        })?,
    };
    let max_age = match spec.max_age.as_deref() {
        None => None,
        Some(s) => {
            let d = humantime::parse_duration(s).map_err(|e| {
                bad(format!(
                    "max_age {s:?} is not a duration like \"7d\" or \"12h\": {e}"
                ))
            })?;
            (d > Duration::ZERO).then_some(d)
        }
    };
    Ok(Retention {
        max_messages: spec.max_messages.filter(|&n| n > 0),
        max_bytes: spec.max_bytes.filter(|&n| n > 0),
        max_age,
    })
}

/// `PUT /v1/topics/{topic}`: sets retention (creating the topic if needed).
pub async fn configure(
    State(st): State<AppState>,
    caller: Caller,
    TopicPath(topic): TopicPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<herald_proto::TopicStats>, ApiError> {
    let body = read_body(&headers, body, 64 * 1024).await?;
    let retention = parse_retention(&body)?;
    let s = st.hub.set_retention(&caller, &topic, retention).await?;
    Ok(Json(wire(s, st.hub.epoch())))
}

/// `DELETE /v1/topics/{topic}`: 204.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    TopicPath(topic): TopicPath,
) -> Result<StatusCode, ApiError> {
    st.hub.delete_topic(&caller, &topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

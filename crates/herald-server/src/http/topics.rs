//! Topic listing, statistics, retention and deletion.

use super::{
    ApiError, Caller,
    body::{json_settings, read_body},
};
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
#[utoipa::path(
    get, path = "/v1/topics", operation_id = "list_topics", tag = "topics",
    responses((status = 200, description = "Every topic the caller may see, sorted by name.", body = herald_proto::TopicsResponse)),
)]
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
#[utoipa::path(
    get, path = "/v1/topics/{topic}", operation_id = "topic_stats", tag = "topics",
    params(super::openapi::TopicParam),
    responses(
        (status = 200, description = "The topic's statistics.", body = herald_proto::TopicStats),
        (status = 400, description = "Invalid topic name.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
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
    // serde also reads a struct from an array: `{"retention":[…]}` is not an object.
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(body)
        && o.get("retention").is_some_and(|r| !r.is_object())
    {
        return Err(bad("retention must be a JSON object".into()));
    }
    let spec = match json_settings::<TopicConfig>(body) {
        Ok(c) => c.retention,
        Err(_) => json_settings::<RetentionSpec>(body).map_err(|e| {
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
#[utoipa::path(
    put, path = "/v1/topics/{topic}", operation_id = "configure_topic", tag = "topics",
    params(super::openapi::TopicParam),
    request_body(content = super::openapi::TopicConfig, description = "The retention settings, wrapped or bare."),
    responses(
        (status = 200, description = "The topic's statistics with its new retention.", body = herald_proto::TopicStats),
        (status = 400, description = "Invalid topic name or retention.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
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
#[utoipa::path(
    delete, path = "/v1/topics/{topic}", operation_id = "delete_topic", tag = "topics",
    params(super::openapi::TopicParam),
    responses(
        (status = 204, description = "The topic and its messages are gone."),
        (status = 400, description = "Invalid topic name.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    TopicPath(topic): TopicPath,
) -> Result<StatusCode, ApiError> {
    st.hub.delete_topic(&caller, &topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

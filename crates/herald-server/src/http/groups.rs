//! Consumer groups: `/v1/topics/{topic}/groups/{group}[/claim|ack|nack|extend|redrive]`.

use super::{ApiError, Caller, body::read_body};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_core::{Claim, GroupConfig, GroupStats, HubError, Settled, Start, TopicName};
use herald_proto::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// `{topic}` and `{group}` from the path, validated.
#[derive(Debug)]
pub struct GroupPath(pub TopicName, pub String);

impl<S: Send + Sync> FromRequestParts<S> for GroupPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((topic, group)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, e.body_text()))?;
        let topic = HubError::topic(&topic)?;
        herald_core::check_group_name(&group)?;
        Ok(GroupPath(topic, group))
    }
}

/// Reads a JSON body (an empty body counts as `{}`).
async fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, 1024 * 1024).await?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    super::body::json_settings(bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("invalid JSON body: {e}")))
}

fn seconds(field: &str, v: Option<f64>) -> Result<Option<Duration>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && (0.0..=1e9).contains(&s) => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("{field} must be a non-negative number of seconds"),
        )),
    }
}

pub(crate) fn stats_json(s: &GroupStats) -> Value {
    json!({
        "topic": s.topic.to_string(),
        "group": s.group,
        "lag": s.lag,
        "in_flight": s.in_flight,
        "acked": s.acked.to_string(),
        "dead_lettered": s.dead_lettered,
        "lease_seconds": s.settings.lease_ms as f64 / 1000.0,
        "max_attempts": s.settings.max_attempts,
        "dead_letter": s.settings.dead_letter,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    start: Option<String>,
    lease_seconds: Option<f64>,
    max_attempts: Option<u32>,
    dead_letter: Option<String>,
}

/// `PUT …/groups/{group}`: creates the group or updates its settings.
#[utoipa::path(
    put, path = "/v1/topics/{topic}/groups/{group}", operation_id = "configure_group", tag = "groups",
    params(super::openapi::GroupParams),
    request_body(content = Option<super::openapi::GroupConfig>, description = "Settings; an empty body keeps the defaults."),
    responses(
        (status = 200, description = "The group, created or updated.", body = super::openapi::GroupStats),
        (status = 400, description = "Invalid names, start, lease, attempts or dead-letter topic, or a body that is not the JSON object described.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn configure(
    State(st): State<AppState>,
    caller: Caller,
    GroupPath(topic, group): GroupPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: ConfigBody = json_body(&headers, body).await?;
    let defaults = GroupConfig::default();
    let cfg = GroupConfig {
        start: match b.start.as_deref() {
            None => defaults.start,
            Some(s) => Start::parse(s).map_err(HubError::from)?,
        },
        lease: seconds("lease_seconds", b.lease_seconds)?.unwrap_or(defaults.lease),
        max_attempts: b.max_attempts.unwrap_or(defaults.max_attempts),
        dead_letter: b.dead_letter.as_deref().map(HubError::topic).transpose()?,
    };
    let s = st.hub.configure_group(&caller, &topic, &group, cfg).await?;
    Ok(Json(stats_json(&s)))
}

/// `GET …/groups/{group}`
#[utoipa::path(
    get, path = "/v1/topics/{topic}/groups/{group}", operation_id = "group_stats", tag = "groups",
    params(super::openapi::GroupParams),
    responses(
        (status = 200, description = "The group's lag, in-flight deliveries, acked position and settings.", body = super::openapi::GroupStats),
        (status = 400, description = "Invalid topic or group name.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn stats(
    State(st): State<AppState>,
    caller: Caller,
    GroupPath(topic, group): GroupPath,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(stats_json(
        &st.hub.group_stats(&caller, &topic, &group)?,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    max: Option<usize>,
    wait: Option<f64>,
    lease_seconds: Option<f64>,
}

/// `POST …/claim`: `{"deliveries":[{"receipt","attempt","message"}]}`, long-polling
/// while empty.
#[utoipa::path(
    post, path = "/v1/topics/{topic}/groups/{group}/claim", operation_id = "claim", tag = "groups",
    params(super::openapi::GroupParams),
    request_body(content = Option<super::openapi::ClaimRequest>, description = "An empty body is `{}`."),
    responses(
        (status = 200, description = "Leased deliveries (empty when the wait ran out).", body = herald_proto::Claimed),
        (status = 400, description = "Invalid names, max, wait or lease, or a body that is not the JSON object described.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn claim(
    State(st): State<AppState>,
    caller: Caller,
    GroupPath(topic, group): GroupPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let b: ClaimBody = json_body(&headers, body).await?;
    let wait = st
        .hub
        .check_wait(b.wait.map(|w| w.to_string()).as_deref())?;
    let claim = Claim {
        max: b.max.unwrap_or(10),
        wait,
        lease: seconds("lease_seconds", b.lease_seconds)?,
    };
    let deliveries = st.hub.claim(&caller, &topic, &group, claim).await?;
    let mut body = Vec::with_capacity(
        64 + deliveries
            .iter()
            .map(|d| d.message.envelope().len() + 64)
            .sum::<usize>(),
    );
    body.extend_from_slice(b"{\"deliveries\":[");
    for (i, d) in deliveries.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(
            format!(
                "{{\"receipt\":\"{}\",\"attempt\":{},\"message\":",
                d.receipt, d.attempt
            )
            .as_bytes(),
        );
        body.extend_from_slice(d.message.envelope().as_bytes());
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettleBody {
    receipts: Vec<String>,
    delay_seconds: Option<f64>,
    lease_seconds: Option<f64>,
    error: Option<String>,
}

fn receipts(b: &SettleBody) -> Result<&[String], ApiError> {
    if b.receipts.is_empty() || b.receipts.len() > 1000 {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "receipts must hold 1 to 1000 receipts",
        ));
    }
    Ok(&b.receipts)
}

/// `200 {"settled":n,"refused":[…]}`; when every receipt is refused, the first refusal
/// as a problem document.
fn settled(verb: &str, results: Vec<Settled>) -> Result<Response, ApiError> {
    let ok = results.iter().filter(|r| r.outcome.is_ok()).count();
    let refused: Vec<Value> = results
        .iter()
        .filter_map(|r| {
            r.outcome.as_ref().err().map(|e| {
                json!({"receipt": r.receipt, "code": e.code().as_str(), "detail": e.to_string()})
            })
        })
        .collect();
    if ok == 0
        && let Some(Err(e)) = results.into_iter().map(|r| r.outcome).find(|o| o.is_err())
    {
        return Err(e.into());
    }
    Ok((
        StatusCode::OK,
        Json(json!({ verb: ok, "refused": refused })),
    )
        .into_response())
}

/// `POST …/ack`
#[utoipa::path(
    post, path = "/v1/topics/{topic}/groups/{group}/ack", operation_id = "ack", tag = "groups",
    params(super::openapi::GroupParams),
    request_body(content = super::openapi::AckRequest),
    responses(
        (status = 200, description = "How many receipts were settled, and which were refused.", body = super::openapi::Acked),
        (status = 400, description = "Invalid names, receipts or seconds, or a body that is not the JSON object described.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Every receipt was refused: the first is unknown (or the group does not exist).", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Every receipt was refused: the first one's lease expired.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn ack(
    State(st): State<AppState>,
    caller: Caller,
    GroupPath(topic, group): GroupPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let b: SettleBody = json_body(&headers, body).await?;
    settled(
        "acked",
        st.hub.ack(&caller, &topic, &group, receipts(&b)?).await?,
    )
}

/// `POST …/nack`
#[utoipa::path(
    post, path = "/v1/topics/{topic}/groups/{group}/nack", operation_id = "nack", tag = "groups",
    params(super::openapi::GroupParams),
    request_body(content = super::openapi::NackRequest),
    responses(
        (status = 200, description = "How many receipts were settled, and which were refused.", body = super::openapi::Nacked),
        (status = 400, description = "Invalid names, receipts or seconds, or a body that is not the JSON object described.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Every receipt was refused: the first is unknown (or the group does not exist).", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Every receipt was refused: the first one's lease expired.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn nack(
    State(st): State<AppState>,
    caller: Caller,
    GroupPath(topic, group): GroupPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let b: SettleBody = json_body(&headers, body).await?;
    let delay = seconds("delay_seconds", b.delay_seconds)?.unwrap_or_default();
    settled(
        "nacked",
        st.hub
            .nack(
                &caller,
                &topic,
                &group,
                receipts(&b)?,
                delay,
                b.error.clone(),
            )
            .await?,
    )
}

/// `POST …/extend`
#[utoipa::path(
    post, path = "/v1/topics/{topic}/groups/{group}/extend", operation_id = "extend", tag = "groups",
    params(super::openapi::GroupParams),
    request_body(content = super::openapi::ExtendRequest),
    responses(
        (status = 200, description = "How many receipts were settled, and which were refused.", body = super::openapi::Extended),
        (status = 400, description = "Invalid names, receipts or seconds, or a body that is not the JSON object described.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Every receipt was refused: the first is unknown (or the group does not exist).", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Every receipt was refused: the first one's lease expired.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn extend(
    State(st): State<AppState>,
    caller: Caller,
    GroupPath(topic, group): GroupPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let b: SettleBody = json_body(&headers, body).await?;
    let lease = seconds("lease_seconds", b.lease_seconds)?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidBody, "lease_seconds is required"))?;
    settled(
        "extended",
        st.hub
            .extend(&caller, &topic, &group, receipts(&b)?, lease)
            .await?,
    )
}

/// `POST …/redrive`: `{"redriven": n}`.
#[utoipa::path(
    post, path = "/v1/topics/{topic}/groups/{group}/redrive", operation_id = "redrive", tag = "groups",
    params(super::openapi::GroupParams),
    responses(
        (status = 200, description = "Dead letters moved back to the topic.", body = super::openapi::Redriven),
        (status = 400, description = "Invalid topic or group name.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn redrive(
    State(st): State<AppState>,
    caller: Caller,
    GroupPath(topic, group): GroupPath,
) -> Result<Json<Value>, ApiError> {
    let n = st.hub.redrive(&caller, &topic, &group).await?;
    Ok(Json(json!({ "redriven": n })))
}

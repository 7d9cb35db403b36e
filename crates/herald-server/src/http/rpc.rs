//! `POST /v1/rpc/{service}?timeout=N`: request-reply over HTTP. The body goes to one
//! responder of the service; its reply (status, content type, body) is the response.

use super::body::read_body;
use super::{ApiError, Caller, query::Query};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_core::Call;
use herald_proto::ErrorCode;

/// `POST /v1/rpc/{service}`
#[utoipa::path(
    post, path = "/v1/rpc/{service}", operation_id = "call", tag = "rpc",
    params(super::openapi::ServiceParam, super::openapi::TimeoutQuery),
    request_body(
        description = "The request, passed to the responder with its `Content-Type`.",
        content(
            (Option<serde_json::Value> = "application/json"),
            (Option<String> = "text/plain"),
            ("application/octet-stream"),
        ),
    ),
    responses(
        (status = 200, description = "The responder's reply (its content type and body).",
            headers(("Herald-Replied" = String, description = "`true`: the answer is the responder's."))),
        (status = "default", description = "The responder's reply with the status it chose (`Herald-Replied: true`).",
            headers(("Herald-Replied" = String, description = "`true`: the answer is the responder's."))),
        (status = 400, description = "Invalid service name or timeout.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The request is over `limits.max_payload_bytes`.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 502, description = "Every responder tried went away before replying.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 503, description = "No responder serves the service (or the server is shutting down).", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 504, description = "No reply within the timeout.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn call(
    State(st): State<AppState>,
    caller: Caller,
    Path(service): Path<String>,
    q: Query,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let timeout = q
        .get("timeout")
        .map(|t| {
            t.trim().parse::<f64>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("timeout must be a number of seconds; got {t:?}"),
                )
            })
        })
        .transpose()?;
    let timeout = st.hub.rpc_timeout(timeout)?;
    let data = read_body(&headers, body, st.hub.options().max_payload_bytes).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let reply = st
        .hub
        .call(
            &caller,
            Call {
                service,
                content_type,
                data,
                timeout,
            },
        )
        .await?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut res = (status, reply.data).into_response();
    if let Ok(v) = HeaderValue::from_str(&reply.content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    // Tells a responder's own error statuses apart from herald's.
    res.headers_mut()
        .insert("herald-replied", HeaderValue::from_static("true"));
    Ok(res)
}

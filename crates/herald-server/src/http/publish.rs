//! `POST /v1/topics/{topic}/messages` and `POST /v1/messages`.

use super::body::read_body;
use super::{ApiError, Caller, query::Query, topics::TopicPath};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_core::{Hub, HubError, Publish, Published, payload_from_json};
use herald_proto::{BatchItem, ErrorCode};

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("header {name} is not visible ASCII"),
                )
            })
        })
        .transpose()
}

/// The JSON answer to a publish.
pub(crate) fn published_json(p: &Published) -> herald_proto::Published {
    herald_proto::Published {
        id: p.id.to_string(),
        topic: p.topic.to_string(),
        time: herald_core::clock::rfc3339_ms(p.time_ms),
    }
}

/// `{"id","topic","time"}`, written directly (this is the hottest answer herald gives).
fn published_body(p: &Published) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + p.topic.as_str().len());
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(&p.id.encode());
    out.extend_from_slice(b"\",\"topic\":\"");
    // Topic names are [A-Za-z0-9_.-]: nothing to escape.
    out.extend_from_slice(p.topic.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(&herald_core::clock::rfc3339_ms_bytes(p.time_ms));
    out.extend_from_slice(b"\"}");
    out
}

/// Publishes the body as one message: 201, or 200 when the `Idempotency-Key` was seen.
#[utoipa::path(
    post, path = "/v1/topics/{topic}/messages", operation_id = "publish", tag = "messages",
    params(
        super::openapi::TopicParam,
        ("event" = Option<String>, Query, description = "The event type (SSE `event:`), as an alternative to `Herald-Event`, which wins when both are given. Empty is absent.", pattern = r"^([A-Za-z0-9_.:/-]{1,64})?$"),
        ("Herald-Event" = Option<String>, Header, description = "The event type (SSE `event:`): 1–64 characters from `A-Z a-z 0-9 _ . : / -`, not `open`, `reset`, `error` or `close`.", pattern = r"^[A-Za-z0-9_.:/-]{1,64}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key within the dedup window answers the first message's id with 200 instead of publishing again: 1–256 visible ASCII characters.", pattern = r"^[!-~]{1,256}$"),
    ),
    request_body(
        description = "The payload, kept with its `Content-Type` (JSON must be valid JSON; `text/*` renders as a string, anything else as base64).",
        content(
            (Option<serde_json::Value> = "application/json"),
            (Option<String> = "text/plain"),
            ("application/octet-stream"),
        ),
    ),
    responses(
        (status = 201, description = "Published (as durable as the storage policy says).", body = herald_proto::Published),
        (status = 200, description = "The `Idempotency-Key` was seen: the first message's id.", body = herald_proto::Published),
        (status = 400, description = "Invalid topic, event, idempotency key, content type or JSON payload.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The payload is over `limits.max_payload_bytes`.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn publish(
    State(st): State<AppState>,
    caller: Caller,
    TopicPath(topic): TopicPath,
    q: Query,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let data = read_body(headers, body, st.hub.options().max_payload_bytes).await?;
    let event = match (header_str(headers, "herald-event")?, q.get("event")) {
        (Some(h), Some(q)) => {
            // The header wins; the core checks only the event it gets, so the other is
            // checked here rather than ignored.
            Hub::check_event(q)?;
            Some(h.to_owned())
        }
        (h, q) => h.or(q).map(str::to_owned),
    };
    let msg = Publish {
        topic: Some(topic),
        event,
        content_type: header_str(headers, "content-type")?.map(str::to_owned),
        headers: Vec::new(),
        data,
        idempotency_key: header_str(headers, "idempotency-key")?.map(str::to_owned),
    };
    let p = st.hub.publish(&caller, msg).await?;
    let status = if p.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut res = (status, published_body(&p)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// Converts one batch item into a publish.
fn batch_item(item: BatchItem) -> Result<Publish, HubError> {
    let topic = HubError::topic(&item.topic)?;
    let (content_type, data) =
        payload_from_json(item.data.get(), item.content_type, item.encoding.as_deref())?;
    Ok(Publish {
        topic: Some(topic),
        event: item.event,
        content_type: Some(content_type),
        headers: Vec::new(),
        data,
        idempotency_key: item.idempotency_key,
    })
}

fn parse_item(raw: &str) -> Result<Publish, HubError> {
    let item: BatchItem = super::body::json_object(raw.as_bytes())
        .map_err(|e| HubError::InvalidBody(format!("invalid item: {e}")))?;
    batch_item(item)
}

/// Publishes a JSON array or NDJSON of items in one commit; answers one result per item.
#[utoipa::path(
    post, path = "/v1/messages", operation_id = "publish_batch", tag = "messages",
    request_body(
        description = "Items as a JSON array, or as NDJSON (one item per line).",
        content(
            (super::openapi::Batch = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 200, description = "One result per item, in order: the published message or a problem document for that item.", body = Vec<super::openapi::BatchResult>),
        (status = 400, description = "The body is not a JSON array (or NDJSON) of items, or it is empty.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `limits.max_body_bytes`.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is neither `application/json` nor `application/x-ndjson`.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn publish_batch(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ct = header_str(&headers, "content-type")?.unwrap_or("");
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ndjson = match base.as_str() {
        "application/json" => false,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => true,
        _ => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "batch publish takes application/json (an array) or application/x-ndjson; got {:?}",
                    ct
                ),
            ));
        }
    };
    let body = read_body(&headers, body, st.config.limits.max_body_bytes).await?;
    let items: Vec<Result<Publish, HubError>> = if ndjson {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::new(ErrorCode::InvalidBody, "NDJSON body is not UTF-8"))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_item)
            .collect()
    } else {
        let raw: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(&body).map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("body must be a JSON array of items: {e}"),
                )
            })?;
        raw.into_iter().map(|r| parse_item(r.get())).collect()
    };
    if items.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidBody, "the batch is empty"));
    }
    let results = st.hub.publish_batch(&caller, items).await?;
    let out: Vec<serde_json::Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(p) => serde_json::to_value(published_json(&p)),
            Err(e) => serde_json::to_value(ApiError::from(e).problem()),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok((StatusCode::OK, axum::Json(out)).into_response())
}

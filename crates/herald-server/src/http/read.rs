//! Reads, short polls and long polls.

use super::{ApiError, Caller, query::Query, topics::TopicPath};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use herald_core::{Filter, Hub, HubError, Read, ReadResult, Start};

/// `GET /v1/topics/{topic}/messages`
#[utoipa::path(
    get, path = "/v1/topics/{topic}/messages", operation_id = "read_topic", tag = "messages",
    params(super::openapi::TopicParam, super::openapi::ReadQuery),
    responses(
        (status = 200, description = "Messages after the cursor (`messages` is empty when a long poll timed out).", body = herald_proto::ReadResponse),
        (status = 400, description = "Invalid topic, cursor, limit or wait.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn read_topic(
    State(st): State<AppState>,
    caller: Caller,
    TopicPath(topic): TopicPath,
    q: Query,
) -> Result<Response, ApiError> {
    read(&st, &caller, Filter::topic(&topic), &q).await
}

/// `GET /v1/messages?topic=P&topic=P2`
#[utoipa::path(
    get, path = "/v1/messages", operation_id = "read_patterns", tag = "messages",
    params(super::openapi::PatternsQuery, super::openapi::ReadQuery),
    responses(
        (status = 200, description = "Messages of every matching topic after the cursor.", body = herald_proto::ReadResponse),
        (status = 400, description = "Missing or invalid topics or patterns, cursor, limit or wait.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn read_patterns(
    State(st): State<AppState>,
    caller: Caller,
    q: Query,
) -> Result<Response, ApiError> {
    let patterns = q
        .all("topic")
        .map(HubError::pattern)
        .collect::<Result<Vec<_>, _>>()?;
    let filter = Filter::new(patterns).map_err(HubError::from)?;
    read(&st, &caller, filter, &q).await
}

async fn read(
    st: &AppState,
    caller: &Caller,
    filter: Filter,
    q: &Query,
) -> Result<Response, ApiError> {
    let start = match q.get("after") {
        None => Start::Earliest,
        Some(s) => Start::parse(s).map_err(HubError::from)?,
    };
    let limit = Hub::check_limit(q.get("limit"))?;
    let wait = st.hub.check_wait(q.get("wait"))?;
    let result = st
        .hub
        .read(
            caller,
            Read {
                filter,
                start,
                limit,
                wait,
            },
        )
        .await?;
    Ok(render(&result))
}

/// `{"messages":[…],"next":"…","reset"?:{…}}`, built from each message's cached envelope.
pub(crate) fn render(r: &ReadResult) -> Response {
    let size: usize = r.messages.iter().map(|m| m.envelope().len() + 1).sum();
    let mut body = Vec::with_capacity(size + 200);
    body.extend_from_slice(b"{\"messages\":[");
    for (i, m) in r.messages.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(m.envelope().as_bytes());
    }
    body.extend_from_slice(b"],\"next\":\"");
    body.extend_from_slice(r.next.to_string().as_bytes());
    body.push(b'"');
    if let Some(reset) = &r.reset {
        let wire = herald_proto::Reset {
            reason: reset.reason,
            earliest: reset.earliest.to_string(),
            latest: reset.latest.to_string(),
        };
        body.extend_from_slice(b",\"reset\":");
        body.extend_from_slice(&serde_json::to_vec(&wire).unwrap_or_default());
    }
    body.push(b'}');
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

//! The HTTP doors. Each handler decodes its request, calls one hub method, and encodes
//! the answer; rules live in the core.

mod body;
mod error;
mod groups;
mod health;
mod jobs;
mod openapi;
mod publish;
mod query;
mod read;
mod rpc;
mod sse;
mod topics;
mod webhooks;
mod ws;

pub use error::{ApiError, status};

use crate::state::AppState;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use herald_core::Principal;
use herald_proto::ErrorCode;

/// The caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl std::ops::Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let who = state
            .caller(&parts.headers, parts.uri.query(), ip)
            .inspect_err(|e| {
                let query = parts.uri.query().map(crate::auth::redact_query);
                tracing::debug!(path = parts.uri.path(), ?query, error = %e, "refused");
            })?;
        Ok(Caller(who))
    }
}

/// Every HTTP route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/v1/topics", get(topics::list))
        .route(
            "/v1/topics/{topic}",
            get(topics::stats)
                .put(topics::configure)
                .delete(topics::delete),
        )
        .route(
            "/v1/topics/{topic}/messages",
            get(read::read_topic).post(publish::publish),
        )
        .route(
            "/v1/messages",
            get(read::read_patterns).post(publish::publish_batch),
        )
        .route("/v1/topics/{topic}/events", get(sse::topic_events))
        .route("/v1/events", get(sse::pattern_events))
        .route(
            "/v1/topics/{topic}/groups/{group}",
            get(groups::stats).put(groups::configure),
        )
        .route(
            "/v1/topics/{topic}/groups/{group}/claim",
            post(groups::claim),
        )
        .route("/v1/topics/{topic}/groups/{group}/ack", post(groups::ack))
        .route("/v1/topics/{topic}/groups/{group}/nack", post(groups::nack))
        .route(
            "/v1/topics/{topic}/groups/{group}/extend",
            post(groups::extend),
        )
        .route(
            "/v1/topics/{topic}/groups/{group}/redrive",
            post(groups::redrive),
        )
        .route("/v1/jobs/{queue}", post(jobs::submit))
        .route("/v1/jobs/{queue}/{id}", get(jobs::status))
        .route("/v1/jobs/{queue}/{id}/progress", post(jobs::progress))
        .route("/v1/jobs/{queue}/{id}/complete", post(jobs::complete))
        .route("/v1/jobs/{queue}/{id}/fail", post(jobs::fail))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get).delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/webhooks/{id}/replay", post(webhooks::replay))
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route("/v1/rpc/{service}", post(rpc::call))
        .route("/v1/ws", get(ws::connect))
        .route("/v1/topics/{topic}/ws", get(ws::receive))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route; see GET /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

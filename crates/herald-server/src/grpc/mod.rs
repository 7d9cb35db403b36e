//! The gRPC door: `herald.v1.Herald` (proto at `proto/herald/v1/herald.proto`) on the
//! HTTP port over h2c, with the standard health and reflection services so stock tools
//! (grpcurl, grpc_health_probe) can discover and call it. Each method decodes its
//! request, calls one hub method and encodes the answer; streams follow the same rules
//! as the other doors.

mod convert;
mod error;
mod service;
mod streams;

pub use error::status;

use crate::state::AppState;
use axum::Router;
use herald_proto::grpc::herald_server::HeraldServer;
use std::convert::Infallible;
use tonic::server::NamedService;
use tower::ServiceExt;

/// The `Herald` service implementation.
#[derive(Debug, Clone)]
pub struct GrpcDoor {
    st: AppState,
}

/// Adds the gRPC services to `router` (paths `/{package.Service}/{Method}`).
pub fn routes(router: Router, st: AppState) -> Router {
    let max = st.config.limits.max_body_bytes;
    let herald = HeraldServer::new(GrpcDoor { st: st.clone() })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let (reporter, health) = tonic_health::server::health_reporter();
    let shutdown = st.hub.shutdown_token();
    tokio::spawn(async move {
        reporter.set_serving::<HeraldServer<GrpcDoor>>().await;
        shutdown.cancelled().await;
        reporter.set_not_serving::<HeraldServer<GrpcDoor>>().await;
    });
    let mut router = add(router, herald);
    router = add(router, health);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(herald_proto::grpc::FILE_DESCRIPTOR_SET);
    match reflection.build_v1() {
        Ok(v1) => router = add(router, v1),
        Err(e) => tracing::error!(error = %e, "gRPC reflection is unavailable"),
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(herald_proto::grpc::FILE_DESCRIPTOR_SET);
    match reflection.build_v1alpha() {
        Ok(v1alpha) => router = add(router, v1alpha),
        Err(e) => tracing::error!(error = %e, "gRPC reflection (v1alpha) is unavailable"),
    }
    router
}

fn add<S>(router: Router, svc: S) -> Router
where
    S: tower::Service<
            axum::http::Request<tonic::body::Body>,
            Error = Infallible,
            Response = axum::http::Response<tonic::body::Body>,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    router.route_service(
        &format!("/{}/{{*rest}}", S::NAME),
        svc.map_request(|req: axum::http::Request<axum::body::Body>| {
            req.map(tonic::body::Body::new)
        })
        .map_response(|res: axum::http::Response<tonic::body::Body>| {
            res.map(axum::body::Body::new)
        }),
    )
}

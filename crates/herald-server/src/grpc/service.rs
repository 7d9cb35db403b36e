//! The unary methods, and the entry points of the streaming ones.

use super::convert::{filter, message, reset, start};
use super::error::invalid;
use super::{GrpcDoor, status, streams};
use herald_core::{Call, HubError, Principal, Publish, Read};
use herald_proto::grpc::{self, herald_server::Herald};
use std::time::Duration;
use tonic::{Request, Response, Status, Streaming};

impl GrpcDoor {
    /// Who is calling, from the `authorization` (Bearer) or `cookie` metadata, for
    /// every method; counted against the rate limits.
    pub(super) fn caller<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let ip = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        self.st
            .caller(req.metadata().as_ref(), None, ip)
            .map_err(status)
    }
}

#[tonic::async_trait]
impl Herald for GrpcDoor {
    async fn publish(
        &self,
        req: Request<grpc::PublishRequest>,
    ) -> Result<Response<grpc::PublishReply>, Status> {
        let who = self.caller(&req)?;
        let r = req.into_inner();
        let topic = HubError::topic(&r.topic).map_err(status)?;
        let content_type = if r.content_type.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            r.content_type
        };
        let mut headers: Vec<(String, String)> = r.headers.into_iter().collect();
        headers.sort();
        let p = self
            .st
            .hub
            .publish(
                &who,
                Publish {
                    topic: Some(topic),
                    event: r.event,
                    content_type: Some(content_type),
                    headers,
                    data: r.data,
                    idempotency_key: r.key,
                },
            )
            .await
            .map_err(status)?;
        Ok(Response::new(grpc::PublishReply {
            id: p.id.to_string(),
            topic: p.topic.to_string(),
            time: herald_core::clock::rfc3339_ms(p.time_ms),
            duplicate: p.duplicate,
        }))
    }

    async fn read(
        &self,
        req: Request<grpc::ReadRequest>,
    ) -> Result<Response<grpc::ReadReply>, Status> {
        let who = self.caller(&req)?;
        let r = req.into_inner();
        let wait = Duration::from_millis(u64::from(r.wait_ms));
        if wait > self.st.hub.options().max_wait {
            return Err(status(HubError::InvalidWait {
                got: format!("{}", wait.as_secs_f64()),
                max: self.st.hub.options().max_wait.as_secs(),
            }));
        }
        let read = Read {
            filter: filter(&r.patterns)?,
            start: start(&r.after, "earliest")?,
            limit: if r.limit == 0 {
                herald_core::DEFAULT_READ_LIMIT
            } else {
                r.limit as usize
            },
            wait,
        };
        let res = self.st.hub.read(&who, read).await.map_err(status)?;
        Ok(Response::new(grpc::ReadReply {
            messages: res.messages.iter().map(|m| message(m)).collect(),
            next: res.next.to_string(),
            reset: res.reset.as_ref().map(reset),
        }))
    }

    type SubscribeStream = streams::EventStream<grpc::SubscribeEvent>;

    async fn subscribe(
        &self,
        req: Request<grpc::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let who = self.caller(&req)?;
        let r = req.into_inner();
        let sub = self
            .st
            .hub
            .subscribe(&who, filter(&r.patterns)?, start(&r.after, "latest")?)
            .map_err(status)?;
        Ok(Response::new(streams::subscription(sub)))
    }

    type ConsumeStream = streams::EventStream<grpc::ConsumeEvent>;

    async fn consume(
        &self,
        req: Request<Streaming<grpc::ConsumeRequest>>,
    ) -> Result<Response<Self::ConsumeStream>, Status> {
        let who = self.caller(&req)?;
        streams::consume(self.st.hub.clone(), who, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn call(
        &self,
        req: Request<grpc::CallRequest>,
    ) -> Result<Response<grpc::CallReply>, Status> {
        let who = self.caller(&req)?;
        let r = req.into_inner();
        let timeout = (r.timeout_ms > 0).then(|| f64::from(r.timeout_ms) / 1000.0);
        let timeout = self.st.hub.rpc_timeout(timeout).map_err(status)?;
        if r.service.is_empty() {
            return Err(invalid("service is required"));
        }
        let reply = self
            .st
            .hub
            .call(
                &who,
                Call {
                    service: r.service,
                    content_type: if r.content_type.is_empty() {
                        "application/octet-stream".to_owned()
                    } else {
                        r.content_type
                    },
                    data: r.data,
                    timeout,
                },
            )
            .await
            .map_err(status)?;
        Ok(Response::new(grpc::CallReply {
            status: u32::from(reply.status),
            content_type: reply.content_type,
            data: reply.data,
        }))
    }

    type ServeStream = streams::EventStream<grpc::ServeEvent>;

    async fn serve(
        &self,
        req: Request<Streaming<grpc::ServeRequest>>,
    ) -> Result<Response<Self::ServeStream>, Status> {
        let who = self.caller(&req)?;
        streams::serve(self.st.hub.clone(), who, req.into_inner())
            .await
            .map(Response::new)
    }
}

//! gRPC streaming (`herald.v1.Herald/Subscribe`).

use super::{Event, Session, Stop};
use crate::error::{Error, ErrorKind};
use herald_proto::grpc::{SubscribeRequest, subscribe_event};
use herald_proto::{Envelope, Reset, ResetReason};

/// How a failed status ends the session.
fn stop(s: tonic::Status) -> Stop {
    use tonic::Code;
    let code = s.code();
    let e = Error::from(s);
    match code {
        Code::Unimplemented => Stop::Refused(e),
        Code::InvalidArgument
        | Code::NotFound
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::FailedPrecondition
        | Code::OutOfRange => Stop::Fatal(e),
        _ => Stop::Transient(e),
    }
}

/// A gRPC message as the JSON envelope the other transports deliver.
pub(crate) fn envelope(m: herald_proto::grpc::Message) -> Result<Envelope, Error> {
    let (data, encoding) = herald_proto::payload::payload_to_json(&m.content_type, &m.data);
    let data = serde_json::value::RawValue::from_string(data)
        .map_err(|e| Error::new(ErrorKind::Decode, e.to_string()))?;
    Ok(Envelope {
        id: m.id,
        topic: m.topic,
        time: m.time,
        event: m.event,
        content_type: m.content_type,
        data,
        encoding: encoding.map(str::to_owned),
        headers: (!m.headers.is_empty()).then(|| m.headers.into_iter().collect()),
    })
}

pub(crate) async fn run(s: &mut Session<'_>) -> Stop {
    let mut client = match s.client.grpc() {
        Ok(c) => c,
        Err(e) => return Stop::Fatal(e),
    };
    let req = SubscribeRequest {
        patterns: vec![s.pattern.to_owned()],
        after: s.cursor.clone(),
    };
    let mut stream = match client.subscribe(s.client.grpc_request(req)).await {
        Ok(r) => r.into_inner(),
        Err(e) => return stop(e),
    };
    loop {
        let ev = match stream.message().await {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                return Stop::Transient(Error::new(ErrorKind::Connect, "the gRPC stream ended"));
            }
            Err(e) => return stop(e),
        };
        let out = match ev.event {
            Some(subscribe_event::Event::Subscribed(x)) => {
                s.started_at(x.cursor);
                continue;
            }
            Some(subscribe_event::Event::Reset(r)) => Event::Reset(Reset {
                reason: if r.reason == "epoch" {
                    ResetReason::Epoch
                } else {
                    ResetReason::Expired
                },
                earliest: r.earliest,
                latest: r.latest,
            }),
            Some(subscribe_event::Event::Message(m)) => match envelope(m) {
                Ok(e) => Event::Message(e),
                Err(e) => return Stop::Fatal(e),
            },
            None => continue,
        };
        if let Err(stop) = s.emit(out).await {
            return stop;
        }
    }
}

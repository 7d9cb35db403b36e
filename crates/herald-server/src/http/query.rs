//! Query strings, including repeated keys (`?topic=a&topic=b`).

use super::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use herald_proto::ErrorCode;

/// The decoded query pairs of a request.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// The last value of `key`; empty values count as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(raw).map(Query).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!("bad query string: {e}"),
            )
        })
    }
}

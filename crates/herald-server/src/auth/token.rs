//! Where a request carries its token: `Authorization: Bearer`, `?token=` (EventSource
//! and browsers' WebSocket cannot set headers) or the `herald_token` cookie.

use axum::http::HeaderMap;
use herald_core::HubError;

/// The token of a request, if any. A header and a query token that disagree are refused.
pub fn from_headers(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, HubError> {
    let bad = |m: &str| HubError::Unauthorized(m.to_owned());
    let header = match headers.get(axum::http::header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| bad("the Authorization header is not ASCII"))?;
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
                return Err(bad("use Authorization: Bearer <token>"));
            }
            Some(rest.trim().to_owned())
        }
    };
    let query = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    match (header, query) {
        (Some(h), Some(q)) if h != q => Err(bad(
            "the Authorization header and the token query parameter disagree",
        )),
        (Some(t), _) | (None, Some(t)) => Ok(Some(t)),
        (None, None) => Ok(cookie(headers)),
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == "herald_token" && !v.is_empty()).then(|| v.to_owned())
        })
}

/// `query` with the value of `token` replaced, for logs.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some(("token", _)) => "token=REDACTED",
            _ => kv,
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_the_token_and_refuses_disagreement() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h, Some("a=1")).expect("none"), None);
        h.insert("cookie", HeaderValue::from_static("x=1; herald_token=c"));
        assert_eq!(from_headers(&h, None).expect("cookie"), Some("c".into()));
        assert_eq!(
            from_headers(&h, Some("token=q%2B")).expect("query"),
            Some("q+".into())
        );
        h.insert("authorization", HeaderValue::from_static("Bearer t"));
        assert_eq!(from_headers(&h, None).expect("header"), Some("t".into()));
        assert_eq!(
            from_headers(&h, Some("token=t")).expect("same"),
            Some("t".into())
        );
        assert!(from_headers(&h, Some("token=u")).is_err());
        h.insert("authorization", HeaderValue::from_static("Basic dTpw"));
        assert!(from_headers(&h, None).is_err());
        assert_eq!(redact_query("a=1&token=s3cret"), "a=1&token=REDACTED");
    }
}

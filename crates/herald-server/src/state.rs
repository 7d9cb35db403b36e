//! What every handler can reach.

use crate::config::Config;
use herald_core::Hub;
use std::sync::Arc;

/// Shared handler state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The core.
    pub hub: Hub,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Long-lived connections outside hyper's tracking (upgraded WebSockets), so
    /// shutdown can wait for their close frames.
    pub connections: tokio_util::task::TaskTracker,
    /// Webhook endpoints and the job-callback dispatcher.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Credentials (reloadable).
    pub auth: Arc<crate::auth::Auth>,
    /// Request rate limits.
    pub rate_limits: Arc<crate::ratelimit::RateLimits>,
}

impl AppState {
    /// Who is calling, from a request's headers (`authorization`, `cookie`) and query
    /// (`token`), counted against the rate limits of the principal and of `ip`. Every
    /// door asks here.
    pub fn caller(
        &self,
        headers: &axum::http::HeaderMap,
        query: Option<&str>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<herald_core::Principal, herald_core::HubError> {
        let who = self.auth.caller(headers, query)?;
        self.rate_limits.check(&who, ip)?;
        Ok(who)
    }
}

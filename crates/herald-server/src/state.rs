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

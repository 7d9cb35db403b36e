//! Request rate limits per principal and per client IP (token buckets, `governor`).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use herald_core::{HubError, Principal};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The configured limits; a limit of 0 is off.
#[derive(Debug, Default)]
pub struct RateLimits {
    per_principal: Option<DefaultKeyedRateLimiter<String>>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    rate: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(governor::RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl RateLimits {
    /// Limits of `rate` requests a second (bursts of `burst`) per principal and
    /// `ip_rate` (`ip_burst`) per client address.
    pub fn new(rate: u32, burst: u32, ip_rate: u32, ip_burst: u32) -> Arc<RateLimits> {
        let limits = Arc::new(RateLimits {
            per_principal: limiter(rate, burst),
            per_ip: limiter(ip_rate, ip_burst),
        });
        if limits.per_principal.is_some() || limits.per_ip.is_some() {
            // Forget idle keys so the tables stay bounded.
            let weak = Arc::downgrade(&limits);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(l) = weak.upgrade() else { return };
                    if let Some(p) = &l.per_principal {
                        p.retain_recent();
                        p.shrink_to_fit();
                    }
                    if let Some(p) = &l.per_ip {
                        p.retain_recent();
                        p.shrink_to_fit();
                    }
                }
            });
        }
        limits
    }

    /// Counts one request of `who` from `ip`; refused when either bucket is empty.
    /// Callers without a credential are limited per address.
    pub fn check(&self, who: &Principal, ip: Option<IpAddr>) -> Result<(), HubError> {
        if let (Some(l), Some(ip)) = (&self.per_ip, ip) {
            l.check_key(&ip).map_err(|n| {
                refused(
                    "this address",
                    n.wait_time_from(DefaultClock::default().now()),
                )
            })?;
        }
        if let Some(l) = &self.per_principal {
            let key = match (who.is_authenticated(), ip) {
                (true, _) | (false, None) => who.id().to_owned(),
                (false, Some(ip)) => format!("ip:{ip}"),
            };
            l.check_key(&key).map_err(|n| {
                refused(
                    "this caller",
                    n.wait_time_from(DefaultClock::default().now()),
                )
            })?;
        }
        Ok(())
    }
}

fn refused(whom: &str, wait: Duration) -> HubError {
    crate::metrics::rejected("rate");
    HubError::RateLimited {
        what: format!("too many requests from {whom}"),
        retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
    }
}

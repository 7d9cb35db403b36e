//! Who is asking. Every core call takes a [`Principal`]; what it may do is decided here,
//! never in a door.

use crate::error::HubError;
use crate::subscription::CloseReason;
use crate::topic::{Filter, Pattern, TopicName};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

static SYSTEM: std::sync::OnceLock<Principal> = std::sync::OnceLock::new();

/// An authenticated (or anonymous) caller and what it may do. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Principal {
    inner: Arc<Grants>,
}

#[derive(Debug)]
struct Grants {
    id: String,
    publish: Vec<Pattern>,
    subscribe: Vec<Pattern>,
    admin: bool,
    /// Presented a valid credential (refusals are 403, not 401).
    authenticated: bool,
    /// When the credential stops being valid (a JWT's `exp`).
    expires: Option<SystemTime>,
    /// Cancelled when the credential is revoked (removed from the configuration).
    revoked: Option<CancellationToken>,
}

impl Principal {
    /// A caller with the given grants.
    pub fn new(
        id: impl Into<String>,
        publish: Vec<Pattern>,
        subscribe: Vec<Pattern>,
        admin: bool,
    ) -> Self {
        Principal {
            inner: Arc::new(Grants {
                id: id.into(),
                publish,
                subscribe,
                admin,
                authenticated: true,
                expires: None,
                revoked: None,
            }),
        }
    }

    /// A caller that presented no credential, with what the configuration grants
    /// anonymous callers. Refusals of a guest are `unauthorized` (a token could help).
    pub fn guest(publish: Vec<Pattern>, subscribe: Vec<Pattern>) -> Self {
        Principal {
            inner: Arc::new(Grants {
                id: "anonymous".into(),
                publish,
                subscribe,
                admin: false,
                authenticated: false,
                expires: None,
                revoked: None,
            }),
        }
    }

    /// The same grants, valid until `expires` and while `revoked` is not cancelled.
    pub fn lapsing(self, expires: Option<SystemTime>, revoked: Option<CancellationToken>) -> Self {
        let g = &self.inner;
        Principal {
            inner: Arc::new(Grants {
                id: g.id.clone(),
                publish: g.publish.clone(),
                subscribe: g.subscribe.clone(),
                admin: g.admin,
                authenticated: g.authenticated,
                expires,
                revoked,
            }),
        }
    }

    /// Whether it presented a valid credential.
    pub fn is_authenticated(&self) -> bool {
        self.inner.authenticated
    }

    /// The refusal of `what`: `unauthorized` for a guest, `forbidden` otherwise.
    pub fn refuse(&self, what: impl Into<String>) -> HubError {
        if !self.is_current() {
            HubError::Unauthorized("the token expired or was revoked".into())
        } else if self.inner.authenticated {
            HubError::Forbidden(what.into())
        } else {
            HubError::Unauthorized(format!("{}; present a token", what.into()))
        }
    }

    /// When the credential expires, if it does.
    pub fn expires(&self) -> Option<SystemTime> {
        self.inner.expires
    }

    /// Resolves when the credential lapses (expires or is revoked) with the reason a
    /// live stream ends for; `None` for credentials that never lapse.
    pub fn lapse(&self) -> Option<Pin<Box<dyn Future<Output = CloseReason> + Send>>> {
        if self.inner.expires.is_none() && self.inner.revoked.is_none() {
            return None;
        }
        let expires = self.inner.expires;
        let revoked = self.inner.revoked.clone();
        Some(Box::pin(async move {
            let expiry = async {
                match expires {
                    Some(t) => {
                        let left = t.duration_since(SystemTime::now()).unwrap_or_default();
                        tokio::time::sleep(left).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let revocation = async {
                match revoked {
                    Some(r) => r.cancelled_owned().await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = expiry => CloseReason::TokenExpired,
                _ = revocation => CloseReason::TokenRevoked,
            }
        }))
    }

    /// Whether the credential is still valid now.
    pub fn is_current(&self) -> bool {
        if self.inner.expires.is_none() && self.inner.revoked.is_none() {
            return true;
        }
        let expired = self.inner.expires.is_some_and(|t| t <= SystemTime::now());
        let revoked = self
            .inner
            .revoked
            .as_ref()
            .is_some_and(|r| r.is_cancelled());
        !expired && !revoked
    }

    /// The anonymous caller of a server without access control: may do everything.
    pub fn anonymous() -> Self {
        static ANON: std::sync::OnceLock<Principal> = std::sync::OnceLock::new();
        ANON.get_or_init(|| {
            let all = || {
                vec![Pattern::parse(">").unwrap_or_else(|_| unreachable!("'>' is a valid pattern"))]
            };
            Principal::new("anonymous", all(), all(), true)
        })
        .clone()
    }

    /// herald itself (jobs, webhooks): may do everything, internal topics included.
    pub fn system() -> Self {
        SYSTEM
            .get_or_init(|| {
                let all =
                    || vec![Pattern::parse(">").unwrap_or_else(|_| unreachable!("'>' is valid"))];
                Principal::new("system", all(), all(), true)
            })
            .clone()
    }

    /// Whether this is herald itself (not merely a principal named `system`).
    pub fn is_system(&self) -> bool {
        SYSTEM
            .get()
            .is_some_and(|s| Arc::ptr_eq(&s.inner, &self.inner))
    }

    /// A stable identifier (for logs and rate limits).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Whether it may publish to `topic`. Internal topics (`_…`) need an explicit grant
    /// or admin.
    pub fn may_publish(&self, topic: &TopicName) -> bool {
        self.is_current()
            && (self.inner.admin || self.inner.publish.iter().any(|p| p.matches(topic.as_str())))
    }

    /// Whether it may read everything `filter` can match.
    pub fn may_subscribe(&self, filter: &Filter) -> bool {
        self.is_current()
            && (self.inner.admin
                || filter
                    .patterns()
                    .iter()
                    .all(|want| self.inner.subscribe.iter().any(|have| have.covers(want))))
    }

    /// Whether it may use admin routes (topic configuration and deletion).
    pub fn is_admin(&self) -> bool {
        self.inner.admin && self.is_current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).expect("pattern")
    }

    #[test]
    fn grants_are_checked_by_coverage() {
        let who = Principal::new("k", vec![p("a.*")], vec![p("a.*")], false);
        assert!(who.may_publish(&TopicName::parse("a.x").expect("t")));
        assert!(!who.may_publish(&TopicName::parse("a.x.y").expect("t")));
        assert!(!who.may_publish(&TopicName::parse("b.x").expect("t")));
        let f = |s: &str| Filter::new(vec![p(s)]).expect("f");
        assert!(who.may_subscribe(&f("a.x")));
        assert!(who.may_subscribe(&f("a.*")));
        assert!(!who.may_subscribe(&f("a.>")));
        assert!(!who.may_subscribe(&f(">")));
        assert!(Principal::anonymous().may_subscribe(&f(">")));
    }
}

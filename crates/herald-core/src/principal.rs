//! Who is asking. Every core call takes a [`Principal`]; what it may do is decided here,
//! never in a door.

use crate::topic::{Filter, Pattern, TopicName};
use std::sync::Arc;

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
            }),
        }
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
        static SYSTEM: std::sync::OnceLock<Principal> = std::sync::OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                let all =
                    || vec![Pattern::parse(">").unwrap_or_else(|_| unreachable!("'>' is valid"))];
                Principal::new("system", all(), all(), true)
            })
            .clone()
    }

    /// A stable identifier (for logs and rate limits).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Whether it may publish to `topic`. Internal topics (`_…`) need an explicit grant
    /// or admin.
    pub fn may_publish(&self, topic: &TopicName) -> bool {
        self.inner.admin || self.inner.publish.iter().any(|p| p.matches(topic.as_str()))
    }

    /// Whether it may read everything `filter` can match.
    pub fn may_subscribe(&self, filter: &Filter) -> bool {
        self.inner.admin
            || filter
                .patterns()
                .iter()
                .all(|want| self.inner.subscribe.iter().any(|have| have.covers(want)))
    }

    /// Whether it may use admin routes (topic configuration and deletion).
    pub fn is_admin(&self) -> bool {
        self.inner.admin
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

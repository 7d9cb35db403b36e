//! Topic names, patterns and filters (NATS `*` / `>` semantics).

use std::fmt;
use std::sync::Arc;

/// Most segments a topic name or pattern may have.
pub const MAX_SEGMENTS: usize = 16;
/// Longest segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 64;
/// Longest topic name or pattern, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Why a topic name or pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {0} bytes long; the maximum is {MAX_NAME_LEN}")]
    TooLong(usize),
    #[error("name has {0} segments; the maximum is {MAX_SEGMENTS}")]
    TooManySegments(usize),
    #[error("segment {0} is empty (names may not start or end with '.', or contain '..')")]
    EmptySegment(usize),
    #[error("segment {0} is longer than {MAX_SEGMENT_LEN} bytes")]
    SegmentTooLong(usize),
    #[error("segment {segment} contains {found:?}; allowed are A-Z a-z 0-9 '_' '-'")]
    BadCharacter { segment: usize, found: char },
    #[error("wildcards ('*', '>') are not allowed in a topic name, only in patterns")]
    Wildcard,
    #[error("'>' may only be the last segment of a pattern")]
    RestNotLast,
}

/// Checks the segments of `s`; `wild` allows `*` segments and a final `>`.
fn check(s: &str, wild: bool) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(s.len()));
    }
    let count = s.split('.').count();
    if count > MAX_SEGMENTS {
        return Err(NameError::TooManySegments(count));
    }
    for (i, seg) in s.split('.').enumerate() {
        let n = i + 1;
        if seg.is_empty() {
            return Err(NameError::EmptySegment(n));
        }
        if seg == "*" || seg == ">" {
            if !wild {
                return Err(NameError::Wildcard);
            }
            if seg == ">" && n != count {
                return Err(NameError::RestNotLast);
            }
            continue;
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return Err(NameError::SegmentTooLong(n));
        }
        if let Some(found) = seg
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            if !wild && (found == '*' || found == '>') && seg.len() == 1 {
                return Err(NameError::Wildcard);
            }
            return Err(NameError::BadCharacter { segment: n, found });
        }
    }
    Ok(())
}

/// A valid topic name such as `orders.eu.created`. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Parses and validates a topic name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check(s, false)?;
        Ok(TopicName(Arc::from(s)))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicName({})", &self.0)
    }
}

impl std::str::FromStr for TopicName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        TopicName::parse(s)
    }
}

/// A pattern over topic names: `*` matches exactly one segment, a final `>` one or more.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: Arc<str>,
    wild: bool,
}

impl Pattern {
    /// Parses and validates a pattern. A plain topic name is a valid pattern.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check(s, true)?;
        let wild = s.split('.').any(|seg| seg == "*" || seg == ">");
        Ok(Pattern {
            text: Arc::from(s),
            wild,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The topic this pattern names exactly, when it has no wildcard.
    pub fn exact(&self) -> Option<&str> {
        (!self.wild).then_some(&*self.text)
    }

    /// Whether `topic` matches this pattern. A wildcard in the first segment does not
    /// match a first segment starting with `_` (herald's internal topics).
    pub fn matches(&self, topic: &str) -> bool {
        if !self.wild {
            return &*self.text == topic;
        }
        if topic.starts_with('_') && (self.text.starts_with('*') || self.text.starts_with('>')) {
            return false;
        }
        let mut names = topic.split('.');
        for seg in self.text.split('.') {
            match seg {
                ">" => return names.next().is_some(),
                "*" => {
                    if names.next().is_none() {
                        return false;
                    }
                }
                lit => {
                    if names.next() != Some(lit) {
                        return false;
                    }
                }
            }
        }
        names.next().is_none()
    }

    /// Whether every topic matched by `other` is also matched by `self`.
    pub fn covers(&self, other: &Pattern) -> bool {
        let mine: Vec<&str> = self.text.split('.').collect();
        let theirs: Vec<&str> = other.text.split('.').collect();
        if matches!(mine[0], "*" | ">") && theirs[0].starts_with('_') {
            return false;
        }
        for (i, seg) in mine.iter().enumerate() {
            match *seg {
                ">" => return theirs.len() > i,
                "*" => match theirs.get(i) {
                    Some(&">") | None => return false,
                    Some(_) => {}
                },
                lit => {
                    if theirs.get(i) != Some(&lit) {
                        return false;
                    }
                }
            }
        }
        theirs.len() == mine.len()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({})", &self.text)
    }
}

impl From<TopicName> for Pattern {
    fn from(t: TopicName) -> Self {
        Pattern {
            text: t.0,
            wild: false,
        }
    }
}

/// A set of patterns; a topic passes when any pattern matches it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

/// Most patterns one filter may hold.
pub const MAX_FILTER_PATTERNS: usize = 32;

impl Filter {
    /// A filter over the given patterns (duplicates removed). Fails when empty or when
    /// there are more than [`MAX_FILTER_PATTERNS`].
    pub fn new(mut patterns: Vec<Pattern>) -> Result<Self, FilterError> {
        if patterns.is_empty() {
            return Err(FilterError::Empty);
        }
        if patterns.len() > MAX_FILTER_PATTERNS {
            return Err(FilterError::TooMany(patterns.len()));
        }
        patterns.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        patterns.dedup();
        Ok(Filter { patterns })
    }

    /// A filter matching one topic exactly.
    pub fn topic(name: &TopicName) -> Self {
        Filter {
            patterns: vec![Pattern::from(name.clone())],
        }
    }

    /// The patterns of this filter.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether `topic` passes the filter.
    pub fn matches(&self, topic: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(topic))
    }

    /// The exact topic names when no pattern has a wildcard.
    pub fn exact_topics(&self) -> Option<Vec<&str>> {
        self.patterns.iter().map(|p| p.exact()).collect()
    }
}

/// Why a filter could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("at least one topic or pattern is required")]
    Empty,
    #[error("{0} patterns given; at most {MAX_FILTER_PATTERNS} are allowed")]
    TooMany(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).expect("valid pattern")
    }

    #[test]
    fn valid_names() {
        for ok in [
            "a",
            "orders.eu.created",
            "A_b-9.x",
            &"a.".repeat(15).to_string()[..29],
        ] {
            assert!(TopicName::parse(ok).is_ok(), "{ok}");
        }
        let sixteen = vec!["s"; 16].join(".");
        assert!(TopicName::parse(&sixteen).is_ok());
    }

    #[test]
    fn invalid_names_say_why() {
        assert_eq!(TopicName::parse(""), Err(NameError::Empty));
        assert_eq!(TopicName::parse("a..b"), Err(NameError::EmptySegment(2)));
        assert_eq!(TopicName::parse(".a"), Err(NameError::EmptySegment(1)));
        assert_eq!(TopicName::parse("a."), Err(NameError::EmptySegment(2)));
        assert_eq!(TopicName::parse("a.*"), Err(NameError::Wildcard));
        assert_eq!(TopicName::parse("a.>"), Err(NameError::Wildcard));
        assert_eq!(
            TopicName::parse("a b"),
            Err(NameError::BadCharacter {
                segment: 1,
                found: ' '
            })
        );
        assert_eq!(
            TopicName::parse("a.é"),
            Err(NameError::BadCharacter {
                segment: 2,
                found: 'é'
            })
        );
        let seventeen = vec!["s"; 17].join(".");
        assert_eq!(
            TopicName::parse(&seventeen),
            Err(NameError::TooManySegments(17))
        );
        let long_seg = "x".repeat(65);
        assert_eq!(
            TopicName::parse(&long_seg),
            Err(NameError::SegmentTooLong(1))
        );
        let long = vec!["x".repeat(64); 4].join(".");
        assert_eq!(TopicName::parse(&long), Err(NameError::TooLong(259)));
        assert_eq!(Pattern::parse("a.>.b"), Err(NameError::RestNotLast));
        assert!(Pattern::parse("a*").is_err());
    }

    #[test]
    fn nats_matching() {
        assert!(p("orders.*").matches("orders.eu"));
        assert!(!p("orders.*").matches("orders.eu.created"));
        assert!(!p("orders.*").matches("orders"));
        assert!(p("orders.>").matches("orders.eu"));
        assert!(p("orders.>").matches("orders.eu.created"));
        assert!(!p("orders.>").matches("orders"));
        assert!(p(">").matches("a"));
        assert!(p(">").matches("a.b.c"));
        assert!(p("*.eu.*").matches("orders.eu.created"));
        assert!(!p("*.eu.*").matches("orders.us.created"));
        assert!(p("orders").matches("orders"));
        assert!(!p("orders").matches("orders.eu"));
    }

    #[test]
    fn leading_wildcards_skip_internal_topics() {
        assert!(!p(">").matches("_herald.callbacks"));
        assert!(!p("*.callbacks").matches("_herald.callbacks"));
        assert!(p("_herald.>").matches("_herald.callbacks"));
        assert!(p("_herald.*").matches("_herald.callbacks"));
        assert!(!p(">").covers(&p("_herald.x")));
        assert!(p("_herald.>").covers(&p("_herald.x")));
        assert!(
            p(">").matches("a_b"),
            "only a leading underscore marks internal topics"
        );
    }

    #[test]
    fn covers_is_subset() {
        assert!(p(">").covers(&p("a.b.c")));
        assert!(p("a.>").covers(&p("a.*")));
        assert!(p("a.>").covers(&p("a.b.>")));
        assert!(!p("a.*").covers(&p("a.>")));
        assert!(!p("a.*").covers(&p("a.b.c")));
        assert!(p("a.*").covers(&p("a.b")));
        assert!(!p("a.b").covers(&p("a.*")));
        assert!(!p("a.>").covers(&p(">")));
        assert!(p("*.b").covers(&p("a.b")));
    }

    #[test]
    fn filters() {
        let f = Filter::new(vec![p("a.*"), p("b"), p("a.*")]).expect("filter");
        assert_eq!(f.patterns().len(), 2);
        assert!(f.matches("a.x") && f.matches("b") && !f.matches("c"));
        assert!(f.exact_topics().is_none());
        let g = Filter::new(vec![p("x"), p("y")]).expect("filter");
        assert_eq!(g.exact_topics(), Some(vec!["x", "y"]));
        assert_eq!(Filter::new(vec![]), Err(FilterError::Empty));
    }
}

//! Domain patterns, as routes and ACL rules name the remote domains they cover:
//! `partner.example` (that domain), `*.partner.example` (every domain strictly below
//! it, at any depth, not the domain itself) and `*` (every domain).

use std::fmt;

use herald_translate::jid::domainprep;
use serde::Deserialize;

/// A parsed, normalized domain pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum DomainPattern {
    /// One domain, normalized (`partner.example`).
    Exact(String),
    /// Every domain strictly below this one (`*.partner.example` holds `partner.example`).
    Below(String),
    /// Every domain (`*`).
    Any,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{pattern}` is not a domain pattern: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl DomainPattern {
    /// Parse and normalize a pattern. Domains are normalized as JID domainparts are
    /// (lowercase, trailing dot dropped, IDNA), so `Partner.Example.` is `partner.example`.
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        let err = |reason| PatternError {
            pattern: s.to_string(),
            reason,
        };
        let s_trim = s.trim();
        if s_trim != s {
            return Err(err("it has spaces around it"));
        }
        if s == "*" {
            return Ok(Self::Any);
        }
        let (wild, domain) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if domain.is_empty() {
            return Err(err("it is empty"));
        }
        if domain.contains('*') {
            return Err(err(
                "`*` may only stand alone or as the first label (`*.example.com`)",
            ));
        }
        if domain.contains(['@', '/']) {
            return Err(err("write a domain, without `user@` or `/resource`"));
        }
        let normal = domainprep(domain).map_err(|_| err("the domain is not valid"))?;
        if wild && is_ip_literal(&normal) {
            return Err(err("an IP address has no subdomains"));
        }
        Ok(if wild {
            Self::Below(normal)
        } else {
            Self::Exact(normal)
        })
    }

    /// Whether the (normalized) `domain` is covered.
    pub fn matches(&self, domain: &str) -> bool {
        match self {
            Self::Exact(d) => d == domain,
            Self::Below(parent) => is_strictly_below(domain, parent),
            Self::Any => true,
        }
    }

    /// Whether every domain `other` matches, this pattern matches too.
    pub fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (_, Self::Any) => false,
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Exact(_), Self::Below(_)) => false,
            (Self::Below(p), Self::Exact(d)) => is_strictly_below(d, p),
            (Self::Below(p), Self::Below(q)) => p == q || is_strictly_below(q, p),
        }
    }

    /// How specific the pattern is: an exact domain beats any wildcard, a wildcard with
    /// more labels beats one with fewer, `*` comes last. Two patterns that match the
    /// same domain and have the same specificity are the same pattern.
    pub fn specificity(&self) -> (u8, usize) {
        match self {
            Self::Exact(_) => (2, 0),
            Self::Below(parent) => (1, parent.split('.').count()),
            Self::Any => (0, 0),
        }
    }

    /// What kind of pattern this is, in words.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Exact(_) => "exact domain",
            Self::Below(_) => "wildcard",
            Self::Any => "default (`*`)",
        }
    }
}

impl TryFrom<String> for DomainPattern {
    type Error = PatternError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl std::str::FromStr for DomainPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(d) => f.write_str(d),
            Self::Below(d) => write!(f, "*.{d}"),
            Self::Any => f.write_str("*"),
        }
    }
}

/// `a.b.example` is strictly below `b.example` and `example`; `b.example` is not below
/// itself, and `xb.example` is not below `b.example`.
pub(crate) fn is_strictly_below(domain: &str, parent: &str) -> bool {
    domain.len() > parent.len() + 1
        && domain.ends_with(parent)
        && domain.as_bytes()[domain.len() - parent.len() - 1] == b'.'
}

fn is_ip_literal(domain: &str) -> bool {
    domain.starts_with('[') || domain.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DomainPattern {
        DomainPattern::parse(s).expect("pattern")
    }

    #[test]
    fn the_three_forms_parse_and_normalize() {
        assert_eq!(
            p("partner.example"),
            DomainPattern::Exact("partner.example".into())
        );
        assert_eq!(
            p("Partner.EXAMPLE."),
            DomainPattern::Exact("partner.example".into())
        );
        assert_eq!(
            p("*.Partner.example"),
            DomainPattern::Below("partner.example".into())
        );
        assert_eq!(p("*"), DomainPattern::Any);
        assert_eq!(p("10.0.0.7"), DomainPattern::Exact("10.0.0.7".into()));
        for s in ["*.partner.example", "partner.example", "*"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn malformed_patterns_say_why() {
        for (s, why) in [
            ("", "empty"),
            ("*.", "empty"),
            ("a.*.example", "first label"),
            ("**.example", "first label"),
            ("*example", "first label"),
            ("user@example.com", "without `user@`"),
            ("example.com/res", "without `user@`"),
            ("exa mple.com", "not valid"),
            (" example.com", "spaces"),
            ("*.10.0.0.1", "no subdomains"),
            ("-bad-.example", "not valid"),
        ] {
            let e = DomainPattern::parse(s).expect_err(s);
            assert!(e.to_string().contains(why), "{s:?}: {e}");
        }
    }

    #[test]
    fn a_wildcard_covers_strictly_below_at_any_depth() {
        let w = p("*.partner.example");
        assert!(w.matches("a.partner.example"));
        assert!(w.matches("a.b.c.partner.example"));
        assert!(!w.matches("partner.example"));
        assert!(!w.matches("xpartner.example"));
        assert!(!w.matches("partner.example.org"));
        assert!(!w.matches("example"));
        assert!(p("*").matches("anything.example"));
        assert!(p("partner.example").matches("partner.example"));
        assert!(!p("partner.example").matches("a.partner.example"));
    }

    #[test]
    fn coverage_between_patterns() {
        assert!(p("*").covers(&p("*.a.example")));
        assert!(p("*.example").covers(&p("*.a.example")));
        assert!(p("*.example").covers(&p("a.example")));
        assert!(p("*.example").covers(&p("*.example")));
        assert!(p("a.example").covers(&p("a.example")));
        assert!(!p("*.a.example").covers(&p("*.example")));
        assert!(!p("*.a.example").covers(&p("a.example")));
        assert!(!p("a.example").covers(&p("*.a.example")));
        assert!(!p("a.example").covers(&p("*")));
    }

    proptest::proptest! {
        /// `covers` never claims more than matching does.
        #[test]
        fn coverage_implies_matching(
            a in "(\\*|\\*\\.[ab](\\.[ab]){0,2}|[ab](\\.[ab]){0,2})",
            b in "(\\*|\\*\\.[ab](\\.[ab]){0,2}|[ab](\\.[ab]){0,2})",
            d in "[ab](\\.[ab]){0,3}",
        ) {
            let (a, b) = (p(&a), p(&b));
            if a.covers(&b) && b.matches(&d) {
                proptest::prop_assert!(a.matches(&d), "{a} covers {b} but not {d}");
            }
        }
    }

    #[test]
    fn specificity_orders_exact_then_longer_wildcards_then_any() {
        let mut v = [p("*"), p("*.example"), p("a.b.example"), p("*.b.example")];
        v.sort_by_key(|x| std::cmp::Reverse(x.specificity()));
        let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a.b.example", "*.b.example", "*.example", "*"]);
    }
}

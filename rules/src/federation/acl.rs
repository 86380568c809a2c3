//! Domain ACLs: which remote domains may federate, per direction. The seed asks for an
//! incoming and an outgoing ACL per federated domain; here that is one ordered list of
//! rules, each for inbound, outbound or both, and the first rule that matches the
//! domain in that direction decides. No rule matches: the default decides.

use std::fmt;

use serde::Deserialize;

use super::pattern::DomainPattern;

/// Which way a stream or stanza crosses the federation boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a remote domain to a hosted one.
    Inbound,
    /// From a hosted domain to a remote one.
    Outbound,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }

    /// "the inbound stream from D" / "the outbound stream to D".
    pub(crate) fn stream_words(self, domain: &str) -> String {
        match self {
            Self::Inbound => format!("the inbound stream from {domain}"),
            Self::Outbound => format!("the outbound stream to {domain}"),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a rule does to the domains it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    #[default]
    Allow,
    Deny,
}

impl AclAction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// The directions a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleDirection {
    Inbound,
    Outbound,
    #[default]
    Both,
}

impl RuleDirection {
    pub fn covers(self, d: Direction) -> bool {
        matches!(
            (self, d),
            (Self::Both, _)
                | (Self::Inbound, Direction::Inbound)
                | (Self::Outbound, Direction::Outbound)
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Both => "both",
        }
    }
}

/// One `[[s2s.acl]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    #[serde(rename = "domain")]
    pub pattern: DomainPattern,
    pub action: AclAction,
    #[serde(default)]
    pub direction: RuleDirection,
}

/// The ordered rules and the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    pub rules: Vec<AclRule>,
    pub default: AclAction,
}

/// Whether a domain may federate in a direction, which rule said so (0-based index,
/// `None` for the default), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclDecision {
    pub allowed: bool,
    pub rule: Option<usize>,
    pub reason: String,
}

impl Acl {
    pub fn new(rules: Vec<AclRule>, default: AclAction) -> Self {
        Self { rules, default }
    }

    /// The decision for a normalized `domain` in `direction`.
    pub fn decide(&self, domain: &str, direction: Direction) -> AclDecision {
        let hit = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.direction.covers(direction) && r.pattern.matches(domain));
        match hit {
            Some((i, r)) => AclDecision {
                allowed: r.action == AclAction::Allow,
                rule: Some(i),
                reason: format!(
                    "{} {direction}: [[s2s.acl]] entry {} (domain = \"{}\", direction = {}) \
                     is the first rule matching {domain}",
                    r.action.name(),
                    i + 1,
                    r.pattern,
                    r.direction.name()
                ),
            },
            None => AclDecision {
                allowed: self.default == AclAction::Allow,
                rule: None,
                reason: format!(
                    "{} {direction}: no [[s2s.acl]] rule matches {domain} {direction}, so \
                     the default applies ([s2s] default = \"{}\")",
                    self.default.name(),
                    self.default.name()
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rule(p: &str, action: AclAction, direction: RuleDirection) -> AclRule {
        AclRule {
            pattern: DomainPattern::parse(p).expect("pattern"),
            action,
            direction,
        }
    }

    use AclAction::{Allow, Deny};
    use Direction::{Inbound, Outbound};

    #[test]
    fn the_first_matching_rule_for_the_direction_wins() {
        let acl = Acl::new(
            vec![
                rule("good.spam.example", Allow, RuleDirection::Inbound),
                rule("*.spam.example", Deny, RuleDirection::Both),
                rule("quiet.example", Deny, RuleDirection::Outbound),
            ],
            Allow,
        );
        let d = acl.decide("good.spam.example", Inbound);
        assert_eq!((d.allowed, d.rule), (true, Some(0)));
        // The inbound-only allow does not apply outbound: the wildcard deny does.
        let d = acl.decide("good.spam.example", Outbound);
        assert_eq!((d.allowed, d.rule), (false, Some(1)));
        assert!(d.reason.contains("entry 2"), "{}", d.reason);
        assert!(d.reason.contains("*.spam.example"), "{}", d.reason);
        assert_eq!(acl.decide("quiet.example", Outbound).rule, Some(2));
        let d = acl.decide("quiet.example", Inbound);
        assert_eq!((d.allowed, d.rule), (true, None));
        assert!(d.reason.contains("default"), "{}", d.reason);
    }

    #[test]
    fn a_closed_default_allows_only_what_is_listed() {
        let acl = Acl::new(
            vec![rule("partner.example", Allow, RuleDirection::Both)],
            Deny,
        );
        assert!(acl.decide("partner.example", Inbound).allowed);
        assert!(!acl.decide("stranger.example", Inbound).allowed);
        assert!(!acl.decide("stranger.example", Outbound).allowed);
    }

    #[test]
    fn an_empty_acl_is_open_by_default() {
        let d = Acl::default().decide("anyone.example", Outbound);
        assert!(d.allowed && d.rule.is_none());
    }

    fn arb_rule() -> impl Strategy<Value = AclRule> {
        let pat = prop_oneof![
            Just("*"),
            Just("a.example"),
            Just("*.example"),
            Just("b.a.example"),
            Just("*.a.example"),
        ];
        let act = prop_oneof![Just(Allow), Just(Deny)];
        let dir = prop_oneof![
            Just(RuleDirection::Inbound),
            Just(RuleDirection::Outbound),
            Just(RuleDirection::Both)
        ];
        (pat, act, dir).prop_map(|(p, a, d)| rule(p, a, d))
    }

    proptest! {
        /// The rule reported is the first one that matches in that direction, and
        /// the verdict is its action; rules after it change nothing.
        #[test]
        fn first_match_semantics(
            rules in prop::collection::vec(arb_rule(), 0..6),
            extra in arb_rule(),
            default in prop_oneof![Just(Allow), Just(Deny)],
            d in prop_oneof![Just("a.example"), Just("b.a.example"), Just("c.example"), Just("x.org")],
            inbound in any::<bool>(),
        ) {
            let dir = if inbound { Inbound } else { Outbound };
            let acl = Acl::new(rules.clone(), default);
            let got = acl.decide(d, dir);
            match got.rule {
                Some(i) => {
                    prop_assert!(rules[i].pattern.matches(d) && rules[i].direction.covers(dir));
                    prop_assert!(rules[..i].iter().all(|r| !(r.pattern.matches(d) && r.direction.covers(dir))));
                    prop_assert_eq!(got.allowed, rules[i].action == Allow);
                    let mut longer = rules.clone();
                    longer.push(extra);
                    prop_assert_eq!(Acl::new(longer, default).decide(d, dir), got);
                }
                None => {
                    prop_assert!(rules.iter().all(|r| !(r.pattern.matches(d) && r.direction.covers(dir))));
                    prop_assert_eq!(got.allowed, default == Allow);
                }
            }
        }
    }
}

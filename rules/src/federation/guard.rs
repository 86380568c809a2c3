//! The guard on stanzas crossing an s2s stream. Inbound, a stanza must come from a
//! domain authenticated on this stream (several may be, multiplexed by dialback), be
//! addressed to a hosted domain, and pass the ACL. Outbound, the ACL alone decides.
//!
//! Addressing faults are stream errors (RFC 6120 §4.9.3.9 `invalid-from`,
//! §4.9.3.6 `host-unknown`): the peer broke the stream's rules. An ACL denial is a
//! stanza error (`not-allowed`, RFC 6120 §8.3.3.9) bounced to the sender, because the
//! same stream may carry other domains that are allowed; a stream whose only domain
//! is denied is refused at authentication instead ([`admit`], `policy-violation`).

use herald_translate::{StanzaErrorCondition, StreamErrorCondition};

use super::acl::{Acl, Direction};

/// What to do with a stanza (or a domain asking to use a stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept {
        reason: String,
    },
    /// Close the stream with this error.
    CloseStream {
        condition: StreamErrorCondition,
        reason: String,
    },
    /// Drop the stanza and answer the sender with this error; the stream stays.
    Bounce {
        condition: StanzaErrorCondition,
        reason: String,
    },
}

impl Verdict {
    pub fn reason(&self) -> &str {
        match self {
            Self::Accept { reason }
            | Self::CloseStream { reason, .. }
            | Self::Bounce { reason, .. } => reason,
        }
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accept { .. })
    }
}

/// Whether `remote` may use a stream in `direction` at all: checked when a stream is
/// authenticated for it (and for each domain dialback adds to a stream).
pub fn admit(acl: &Acl, remote: &str, direction: Direction) -> Verdict {
    let d = acl.decide(remote, direction);
    if d.allowed {
        Verdict::Accept { reason: d.reason }
    } else {
        Verdict::CloseStream {
            condition: StreamErrorCondition::PolicyViolation,
            reason: d.reason,
        }
    }
}

/// Check a stanza that arrived on an inbound s2s stream. `authenticated` are the
/// remote domains authenticated on the stream, `hosted` this server's domains;
/// `from` and `to` are the stanza's (normalized) domains.
pub fn inbound_stanza(
    authenticated: &[String],
    hosted: &[String],
    from: &str,
    to: &str,
    acl: &Acl,
) -> Verdict {
    if !authenticated.iter().any(|d| d == from) {
        return Verdict::CloseStream {
            condition: StreamErrorCondition::InvalidFrom,
            reason: format!(
                "the stanza is from {from}, which is not authenticated on this stream \
                 (authenticated: {})",
                list(authenticated)
            ),
        };
    }
    if !hosted.iter().any(|d| d == to) {
        return Verdict::CloseStream {
            condition: StreamErrorCondition::HostUnknown,
            reason: format!(
                "the stanza is to {to}, which this server does not host (hosted: {})",
                list(hosted)
            ),
        };
    }
    let d = acl.decide(from, Direction::Inbound);
    if d.allowed {
        Verdict::Accept {
            reason: format!(
                "{from} is authenticated on this stream, {to} is hosted; {}",
                d.reason
            ),
        }
    } else {
        Verdict::Bounce {
            condition: StanzaErrorCondition::NotAllowed,
            reason: d.reason,
        }
    }
}

/// Check a stanza about to leave for the remote domain `to`.
pub fn outbound_stanza(acl: &Acl, to: &str) -> Verdict {
    let d = acl.decide(to, Direction::Outbound);
    if d.allowed {
        Verdict::Accept { reason: d.reason }
    } else {
        Verdict::Bounce {
            condition: StanzaErrorCondition::NotAllowed,
            reason: d.reason,
        }
    }
}

fn list(domains: &[String]) -> String {
    if domains.is_empty() {
        "none".to_string()
    } else {
        domains.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::{AclAction, AclRule, DomainPattern, RuleDirection};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn acl_denying(p: &str, direction: RuleDirection) -> Acl {
        Acl::new(
            vec![AclRule {
                pattern: DomainPattern::parse(p).expect("pattern"),
                action: AclAction::Deny,
                direction,
            }],
            AclAction::Allow,
        )
    }

    fn condition(v: &Verdict) -> &'static str {
        match v {
            Verdict::Accept { .. } => "accept",
            Verdict::CloseStream { condition, .. } => condition.name(),
            Verdict::Bounce { condition, .. } => condition.name(),
        }
    }

    #[test]
    fn inbound_checks_in_order() {
        let auth = s(&["a.remote", "b.remote"]);
        let hosted = s(&["herald.example"]);
        let acl = acl_denying("b.remote", RuleDirection::Inbound);
        let v = inbound_stanza(&auth, &hosted, "a.remote", "herald.example", &acl);
        assert_eq!(condition(&v), "accept", "{}", v.reason());
        let v = inbound_stanza(&auth, &hosted, "c.remote", "herald.example", &acl);
        assert_eq!(condition(&v), "invalid-from");
        assert!(v.reason().contains("a.remote, b.remote"), "{}", v.reason());
        // invalid-from comes before host-unknown: the peer is not who it claims.
        let v = inbound_stanza(&auth, &hosted, "c.remote", "elsewhere.example", &acl);
        assert_eq!(condition(&v), "invalid-from");
        let v = inbound_stanza(&auth, &hosted, "a.remote", "elsewhere.example", &acl);
        assert_eq!(condition(&v), "host-unknown");
        let v = inbound_stanza(&auth, &hosted, "b.remote", "herald.example", &acl);
        assert_eq!(condition(&v), "not-allowed");
        assert!(v.reason().contains("entry 1"), "{}", v.reason());
        let v = inbound_stanza(&[], &hosted, "a.remote", "herald.example", &acl);
        assert!(v.reason().contains("authenticated: none"), "{}", v.reason());
    }

    #[test]
    fn outbound_denial_bounces() {
        let acl = acl_denying("*.spam.example", RuleDirection::Outbound);
        assert_eq!(
            condition(&outbound_stanza(&acl, "x.spam.example")),
            "not-allowed"
        );
        assert!(outbound_stanza(&acl, "spam.example").is_accepted());
        // Outbound-only rules do not touch inbound.
        assert!(admit(&acl, "x.spam.example", Direction::Inbound).is_accepted());
    }

    #[test]
    fn a_denied_domain_is_refused_its_stream() {
        let acl = acl_denying("bad.example", RuleDirection::Both);
        let v = admit(&acl, "bad.example", Direction::Inbound);
        assert_eq!(condition(&v), "policy-violation");
        assert!(admit(&acl, "good.example", Direction::Inbound).is_accepted());
    }
}

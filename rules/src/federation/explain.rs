//! `herald explain --from A --to B`: every federation decision for a stanza from A to
//! B, each with why: the direction, the route, the ACL rule, the TLS and
//! authentication policy, the limits, and what happens to the stanza.

use std::fmt;

use herald_translate::Jid;

use super::acl::{AclDecision, Direction};
use super::policy::DomainPolicy;
use super::route::{dns_words, RouteDecision};
use super::{DomainLimits, Federation};

/// An address that is not a JID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{address}` is not a JID or domain: {reason}")]
pub struct ExplainError {
    pub address: String,
    pub reason: String,
}

/// The decisions for one pair of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub from: String,
    pub to: String,
    /// `None` when the stanza does not cross the federation boundary.
    pub direction: Option<Direction>,
    pub direction_why: String,
    /// The decisions about the remote domain, when there is one.
    pub remote: Option<RemoteExplanation>,
}

/// What applies to the remote domain of an inbound or outbound stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteExplanation {
    pub domain: String,
    pub federation_why: String,
    /// The route's pattern and 0-based position, `None` for DNS.
    pub route: Option<(String, usize)>,
    /// Where outbound streams go: `host:port` or the DNS lookup.
    pub destination: String,
    pub route_why: String,
    pub acl: AclDecision,
    /// The pattern of the ACL rule that decided, `None` for the default.
    pub acl_pattern: Option<String>,
    pub policy: DomainPolicy,
    /// The certificate pin, hex, when the route sets one.
    pub pin_sha256: Option<String>,
    pub limits: DomainLimits,
    pub limits_why: String,
    /// What happens to the stanza, in words.
    pub outcome: String,
}

fn domain_of(address: &str) -> Result<String, ExplainError> {
    Jid::parse(address)
        .map(|j| j.domain().to_string())
        .map_err(|e| ExplainError {
            address: address.to_string(),
            reason: e.to_string(),
        })
}

impl Federation {
    /// Explain what federation does with a stanza from `from` to `to` (JIDs or bare
    /// domains).
    pub fn explain(&self, from: &str, to: &str) -> Result<Explanation, ExplainError> {
        let (f, t) = (domain_of(from)?, domain_of(to)?);
        let (fh, th) = (self.is_hosted(&f), self.is_hosted(&t));
        let (direction, remote, why) = match (fh, th) {
            (false, true) => (
                Some(Direction::Inbound),
                Some(f.clone()),
                format!("inbound: {t} is hosted here and {f} is not"),
            ),
            (true, false) => (
                Some(Direction::Outbound),
                Some(t.clone()),
                format!("outbound: {f} is hosted here and {t} is not"),
            ),
            (true, true) => (
                None,
                None,
                format!("local: {f} and {t} are both hosted here; federation is not involved"),
            ),
            (false, false) => (
                None,
                None,
                format!(
                    "neither {f} nor {t} is hosted here (hosted: {}): Herald does not relay \
                     between two remote domains",
                    self.hosted.join(", ")
                ),
            ),
        };
        let remote = match (direction, remote) {
            (Some(d), Some(r)) => Some(self.explain_remote(&r, d)),
            _ => None,
        };
        Ok(Explanation {
            from: from.to_string(),
            to: to.to_string(),
            direction,
            direction_why: why,
            remote,
        })
    }

    fn explain_remote(&self, domain: &str, direction: Direction) -> RemoteExplanation {
        let decision = self.routes.lookup(domain);
        let (route, destination) = match &decision {
            RouteDecision::Static { index, route, .. } => (
                Some((route.pattern.to_string(), *index)),
                route.target.as_ref().map_or_else(
                    || dns_words(domain),
                    |t| {
                        if route.direct_tls {
                            format!("{t} (direct TLS, XEP-0368)")
                        } else {
                            t.to_string()
                        }
                    },
                ),
            ),
            RouteDecision::Dns { .. } => (None, dns_words(domain)),
        };
        let mut route_why = decision.reason().to_string();
        if direction == Direction::Inbound {
            route_why.push_str(
                "; the peer connects to us, so for this stanza the route only sets policy \
                 (replies take it)",
            );
        }
        let acl = self.acl.decide(domain, direction);
        let acl_pattern = acl.rule.map(|i| self.acl.rules[i].pattern.to_string());
        let policy = self.policy_for(domain);
        let (limits, limits_why) = self.limits_for(domain);
        let federation_why = if self.enabled {
            "on: [s2s] has listeners".to_string()
        } else {
            "off: [s2s] listen and listen_tls are empty, so no stream is opened or \
             accepted and the stanza would bounce with remote-server-not-found"
                .to_string()
        };
        let outcome = match (self.enabled, direction, acl.allowed) {
            (false, _, _) => "not delivered: federation is off".to_string(),
            (true, Direction::Inbound, true) => format!(
                "accepted on a stream from {domain} once it is authenticated (tls = {}, \
                 auth = {}) and within its limits",
                policy.tls, policy.auth
            ),
            (true, Direction::Inbound, false) => format!(
                "refused: a stream from {domain} is closed with policy-violation; on a \
                 stream shared with other domains the stanza bounces with not-allowed"
            ),
            (true, Direction::Outbound, true) => {
                format!("sent on a stream to {domain} via {destination}")
            }
            (true, Direction::Outbound, false) => {
                "bounced to the sender with not-allowed; no stream is opened".to_string()
            }
        };
        let pin_sha256 = decision
            .route()
            .and_then(|r| r.pin_sha256)
            .map(|p| p.iter().map(|b| format!("{b:02x}")).collect());
        RemoteExplanation {
            domain: domain.to_string(),
            federation_why,
            route,
            destination,
            route_why,
            acl,
            acl_pattern,
            policy,
            pin_sha256,
            limits,
            limits_why,
            outcome,
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "from {} to {}", self.from, self.to)?;
        writeln!(f, "  direction:  {}", self.direction_why)?;
        let Some(r) = &self.remote else {
            return Ok(());
        };
        writeln!(f, "  remote:     {}", r.domain)?;
        writeln!(f, "  federation: {}", r.federation_why)?;
        match &r.route {
            Some((p, i)) => writeln!(f, "  route:      {p} ([[s2s.route]] entry {})", i + 1)?,
            None => writeln!(f, "  route:      none (DNS)")?,
        }
        writeln!(f, "    why:      {}", r.route_why)?;
        let verdict = if r.acl.allowed { "allow" } else { "deny" };
        match (&r.acl_pattern, r.acl.rule) {
            (Some(p), Some(i)) => writeln!(
                f,
                "  acl:        {verdict} ([[s2s.acl]] entry {}, domain = \"{p}\")",
                i + 1
            )?,
            _ => writeln!(f, "  acl:        {verdict} (the default)")?,
        }
        writeln!(f, "    why:      {}", r.acl.reason)?;
        writeln!(f, "  tls:        {} ({})", r.policy.tls, r.policy.tls_why)?;
        writeln!(f, "  auth:       {} ({})", r.policy.auth, r.policy.auth_why)?;
        if let Some(pin) = &r.pin_sha256 {
            writeln!(
                f,
                "  pin:        sha256 {pin} (only this certificate is accepted)"
            )?;
        }
        writeln!(f, "  limits:     {}", r.limits.lines().join(", "))?;
        writeln!(f, "    why:      {}", r.limits_why)?;
        writeln!(f, "  outcome:    {}", r.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::{
        Acl, AclAction, AclRule, AuthPolicy, DomainPattern, Route, RouteTable, RuleDirection,
        Target,
    };

    fn fed() -> Federation {
        let mut partner = Route::new(DomainPattern::parse("partner.example").expect("p"));
        partner.target = Some(Target::parse("10.0.0.7:5269").expect("t"));
        partner.auth = Some(AuthPolicy::Pkix);
        Federation {
            enabled: true,
            hosted: vec!["herald.example".into()],
            routes: RouteTable::new(vec![partner]),
            acl: Acl::new(
                vec![AclRule {
                    pattern: DomainPattern::parse("*.spam.example").expect("p"),
                    action: AclAction::Deny,
                    direction: RuleDirection::Both,
                }],
                AclAction::Allow,
            ),
            ..Federation::default()
        }
    }

    #[test]
    fn outbound_through_a_static_route() {
        let e = fed()
            .explain("alice@herald.example/phone", "bob@Partner.Example")
            .expect("explain");
        assert_eq!(e.direction, Some(Direction::Outbound));
        let r = e.remote.as_ref().expect("remote");
        assert_eq!(r.domain, "partner.example");
        assert_eq!(r.route, Some(("partner.example".into(), 0)));
        assert_eq!(r.destination, "10.0.0.7:5269");
        assert!(r.acl.allowed && r.acl_pattern.is_none());
        assert_eq!(r.policy.auth, AuthPolicy::Pkix);
        let text = e.to_string();
        for want in [
            "direction:  outbound",
            "route:      partner.example ([[s2s.route]] entry 1)",
            "acl:        allow (the default)",
            "auth:       pkix (set by route partner.example)",
            "tls:        required (from [s2s]",
            "max_connections = 8",
            "outcome:    sent on a stream to partner.example via 10.0.0.7:5269",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        let mut direct = fed();
        let mut route = direct.routes.routes()[0].clone();
        route.direct_tls = true;
        direct.routes = RouteTable::new(vec![route]);
        let e = direct
            .explain("alice@herald.example/phone", "bob@partner.example")
            .expect("explain");
        let r = e.remote.as_ref().expect("remote");
        assert_eq!(r.destination, "10.0.0.7:5269 (direct TLS, XEP-0368)");
    }

    #[test]
    fn inbound_from_a_denied_domain_without_route() {
        let e = fed()
            .explain("x@a.spam.example", "herald.example")
            .expect("explain");
        assert_eq!(e.direction, Some(Direction::Inbound));
        let r = e.remote.as_ref().expect("remote");
        assert!(r.route.is_none());
        assert!(r.destination.contains("_xmpp-server._tcp.a.spam.example"));
        assert_eq!(r.acl_pattern.as_deref(), Some("*.spam.example"));
        assert!(!r.acl.allowed);
        let text = e.to_string();
        assert!(text.contains("route:      none (DNS)"), "{text}");
        assert!(
            text.contains("acl:        deny ([[s2s.acl]] entry 1"),
            "{text}"
        );
        assert!(text.contains("policy-violation"), "{text}");
    }

    #[test]
    fn local_and_transit_pairs_involve_no_federation() {
        let f = fed();
        let e = f
            .explain("a@herald.example", "b@herald.example")
            .expect("explain");
        assert!(e.direction.is_none() && e.remote.is_none());
        assert!(e.direction_why.starts_with("local"));
        let e = f.explain("a.example", "b.example").expect("explain");
        assert!(
            e.direction_why.contains("does not relay"),
            "{}",
            e.direction_why
        );
        assert_eq!(e.to_string().lines().count(), 2);
    }

    #[test]
    fn federation_off_says_so() {
        let f = Federation {
            enabled: false,
            ..fed()
        };
        let e = f
            .explain("a@herald.example", "b@partner.example")
            .expect("explain");
        let text = e.to_string();
        assert!(text.contains("federation: off"), "{text}");
        assert!(text.contains("not delivered"), "{text}");
    }

    #[test]
    fn bad_addresses_are_refused() {
        let e = fed().explain("a@@b", "herald.example").expect_err("bad");
        assert!(e.to_string().contains("a@@b"), "{e}");
    }
}

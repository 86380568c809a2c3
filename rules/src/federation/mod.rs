//! Federation policy: which remote domains Herald talks to, where their streams go,
//! how those streams are secured and authenticated, what each domain may use, and
//! which stanzas cross. `rules` decides; the edge carries the decisions out.
//!
//! - [`pattern`]: domain patterns (`partner.example`, `*.partner.example`, `*`).
//! - [`route`]: static routes, the most specific first, else DNS SRV ([`RouteTable`]).
//! - [`acl`]: ordered allow/deny rules per direction and a default ([`Acl`]).
//! - [`policy`]: `tls` and `auth`, and how one stream is authenticated ([`decide_auth`]).
//! - [`guard`]: the per-stanza check on s2s streams ([`inbound_stanza`],
//!   [`outbound_stanza`], [`admit`]).
//! - [`limits`]: per-domain connection, size, rate and time limits ([`DomainLimits`]).
//! - [`explain`]: all of the above for one pair of addresses, as `herald explain`
//!   prints it ([`Federation::explain`]).
//!
//! [`Federation`] holds the whole configuration and answers per-domain questions.

pub mod acl;
pub mod explain;
pub mod guard;
pub mod limits;
pub mod pattern;
pub mod policy;
pub mod route;

pub use acl::{Acl, AclAction, AclDecision, AclRule, Direction, RuleDirection};
pub use explain::{ExplainError, Explanation, RemoteExplanation};
pub use guard::{admit, inbound_stanza, outbound_stanza, Verdict};
pub use limits::{DomainLimits, LimitOverrides};
pub use pattern::{DomainPattern, PatternError};
pub use policy::{decide_auth, AuthDecision, AuthFacts, AuthPolicy, DomainPolicy, TlsPolicy};
pub use route::{parse_pin, Route, RouteDecision, RouteTable, Target, TargetError};

/// The federation configuration, ready to answer questions about a remote domain.
#[derive(Debug, Clone, Default)]
pub struct Federation {
    /// Whether federation runs at all (the edge listens for s2s streams).
    pub enabled: bool,
    /// The domains this server hosts (normalized).
    pub hosted: Vec<String>,
    pub routes: RouteTable,
    pub acl: Acl,
    /// Global policy, which a route may override for its domains.
    pub tls: TlsPolicy,
    pub auth: AuthPolicy,
    /// Global limits, which a route may override for its domains.
    pub limits: DomainLimits,
}

impl Federation {
    pub fn is_hosted(&self, domain: &str) -> bool {
        self.hosted.iter().any(|d| d == domain)
    }

    /// The TLS and authentication policy for `domain`: the route's where it sets one,
    /// else the global one.
    pub fn policy_for(&self, domain: &str) -> DomainPolicy {
        let decision = self.routes.lookup(domain);
        let route = decision.route();
        let why = |set: bool| match route {
            Some(r) if set => format!("set by route {}", r.pattern),
            Some(r) => format!("from [s2s]; route {} does not set it", r.pattern),
            None => "from [s2s]; no route covers the domain".to_string(),
        };
        let tls = route.and_then(|r| r.tls);
        let auth = route.and_then(|r| r.auth);
        DomainPolicy {
            tls: tls.unwrap_or(self.tls),
            auth: auth.unwrap_or(self.auth),
            tls_why: why(tls.is_some()),
            auth_why: why(auth.is_some()),
        }
    }

    /// The limits for `domain`, and where they came from.
    pub fn limits_for(&self, domain: &str) -> (DomainLimits, String) {
        match self.routes.lookup(domain).route() {
            Some(r) if !r.limits.is_empty() => (
                self.limits.with(&r.limits),
                format!("[s2s.limits] with the overrides of route {}", r.pattern),
            ),
            _ => (self.limits, "[s2s.limits]".to_string()),
        }
    }

    /// The largest stanza any domain may send: the global limit or a route's larger
    /// one. A stream's XML reader is bounded by it before the sender is known; each
    /// stanza is then held to its own domain's limit.
    pub fn largest_stanza_bytes(&self) -> u32 {
        self.routes
            .routes()
            .iter()
            .filter_map(|r| r.limits.max_stanza_bytes)
            .fold(self.limits.max_stanza_bytes, u32::max)
    }

    /// The certificate pin for `domain`, when its route sets one.
    pub fn pin_for(&self, domain: &str) -> Option<[u8; 32]> {
        self.routes
            .lookup(domain)
            .route()
            .and_then(|r| r.pin_sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed() -> Federation {
        let mut partner = Route::new(DomainPattern::parse("*.partner.example").expect("p"));
        partner.tls = Some(TlsPolicy::Optional);
        partner.limits.max_connections = Some(2);
        partner.pin_sha256 = Some([7; 32]);
        Federation {
            enabled: true,
            hosted: vec!["herald.example".into()],
            routes: RouteTable::new(vec![partner]),
            ..Federation::default()
        }
    }

    #[test]
    fn a_route_overrides_only_what_it_sets() {
        let f = fed();
        let p = f.policy_for("a.partner.example");
        assert_eq!((p.tls, p.auth), (TlsPolicy::Optional, AuthPolicy::Any));
        assert!(
            p.tls_why.contains("set by route *.partner.example"),
            "{}",
            p.tls_why
        );
        assert!(p.auth_why.contains("does not set it"), "{}", p.auth_why);
        let p = f.policy_for("other.example");
        assert_eq!((p.tls, p.auth), (TlsPolicy::Required, AuthPolicy::Any));
        assert!(p.tls_why.contains("no route"), "{}", p.tls_why);
    }

    #[test]
    fn the_reader_bound_is_the_largest_stanza_limit_of_any_domain() {
        let mut f = fed();
        assert_eq!(f.largest_stanza_bytes(), f.limits.max_stanza_bytes);
        let mut small = Route::new(DomainPattern::parse("small.example").expect("p"));
        small.limits.max_stanza_bytes = Some(2048);
        let mut big = Route::new(DomainPattern::parse("big.example").expect("p"));
        big.limits.max_stanza_bytes = Some(1 << 20);
        f.routes = RouteTable::new(vec![small.clone()]);
        assert_eq!(f.largest_stanza_bytes(), f.limits.max_stanza_bytes);
        f.routes = RouteTable::new(vec![small, big]);
        assert_eq!(f.largest_stanza_bytes(), 1 << 20);
        assert_eq!(f.limits_for("small.example").0.max_stanza_bytes, 2048);
    }

    #[test]
    fn limits_and_pins_follow_the_route() {
        let f = fed();
        let (l, why) = f.limits_for("a.partner.example");
        assert_eq!(l.max_connections, 2);
        assert!(why.contains("overrides"), "{why}");
        assert_eq!(f.limits_for("other.example").0, DomainLimits::default());
        assert_eq!(f.pin_for("a.partner.example"), Some([7; 32]));
        assert_eq!(f.pin_for("partner.example"), None);
    }
}

//! How a stream with a remote domain must be secured and authenticated: the global
//! `tls` and `auth` settings, overridden by the domain's route, and the decision for
//! one stream given what TLS established.
//!
//! - SASL EXTERNAL with the peer's certificate (RFC 6120 §6, XEP-0178) when PKIX is
//!   allowed and the certificate is valid for the domain (RFC 6125).
//! - Server Dialback (XEP-0220) when it is allowed; over TLS unless the domain's
//!   `tls = "optional"` lets an unencrypted stream through.
//! - Otherwise the stream is refused, with the reason.

use std::fmt;

use herald_translate::StreamErrorCondition;
use serde::Deserialize;

use super::Direction;

/// Whether a stream with a remote domain must be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsPolicy {
    /// No TLS, no stream: refused with `policy-violation` before authentication.
    #[default]
    Required,
    /// TLS when the peer offers it; an unencrypted stream is let through (old peers).
    Optional,
}

/// How a remote domain may prove who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthPolicy {
    /// Only a certificate valid for the domain (SASL EXTERNAL, XEP-0178).
    Pkix,
    /// Only Server Dialback (XEP-0220), even when a valid certificate is presented.
    Dialback,
    /// A valid certificate when there is one, else dialback.
    #[default]
    Any,
}

impl TlsPolicy {
    pub fn name(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
        }
    }
}

impl AuthPolicy {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pkix => "pkix",
            Self::Dialback => "dialback",
            Self::Any => "any",
        }
    }

    fn allows_pkix(self) -> bool {
        matches!(self, Self::Pkix | Self::Any)
    }

    fn allows_dialback(self) -> bool {
        matches!(self, Self::Dialback | Self::Any)
    }
}

impl fmt::Display for TlsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for AuthPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The policy in force for one remote domain, and where each half came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPolicy {
    pub tls: TlsPolicy,
    pub auth: AuthPolicy,
    /// E.g. "route *.partner.example sets tls = optional" or "global [s2s] tls".
    pub tls_why: String,
    pub auth_why: String,
}

/// What TLS established on a stream, as the connection layer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthFacts {
    pub tls_established: bool,
    /// The peer sent a certificate (always true for a server on an outbound stream
    /// that completed TLS; optional for an inbound peer).
    pub peer_cert_presented: bool,
    /// The certificate chains to a trust anchor and names the domain (RFC 6125).
    pub peer_cert_valid_for_domain: bool,
}

/// How the stream's remote domain is authenticated, or why the stream is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// SASL EXTERNAL with the peer's certificate (XEP-0178).
    SaslExternal { reason: String },
    /// Server Dialback (XEP-0220).
    Dialback { reason: String },
    /// Close the stream with this error.
    Refuse {
        condition: StreamErrorCondition,
        reason: String,
    },
}

impl AuthDecision {
    pub fn reason(&self) -> &str {
        match self {
            Self::SaslExternal { reason } | Self::Dialback { reason } => reason,
            Self::Refuse { reason, .. } => reason,
        }
    }

    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refuse { .. })
    }
}

/// Decide how a stream with `domain` in `direction` is authenticated under `policy`.
pub fn decide_auth(
    policy: &DomainPolicy,
    domain: &str,
    direction: Direction,
    facts: AuthFacts,
) -> AuthDecision {
    let refuse = |reason: String| AuthDecision::Refuse {
        condition: StreamErrorCondition::PolicyViolation,
        reason,
    };
    let stream = direction.stream_words(domain);
    if !facts.tls_established && policy.tls == TlsPolicy::Required {
        return refuse(format!(
            "{stream} has no TLS and tls = required ({}): refused before authentication",
            policy.tls_why
        ));
    }
    let cert_ok = facts.tls_established && facts.peer_cert_valid_for_domain;
    if cert_ok && policy.auth.allows_pkix() {
        return AuthDecision::SaslExternal {
            reason: format!(
                "{stream}: the peer's certificate is valid for {domain} and auth = {} \
                 ({}) allows PKIX: SASL EXTERNAL (XEP-0178)",
                policy.auth, policy.auth_why
            ),
        };
    }
    let cert_state = if !facts.tls_established {
        "there is no TLS, so no certificate".to_string()
    } else if !facts.peer_cert_presented {
        "the peer presented no certificate".to_string()
    } else if !facts.peer_cert_valid_for_domain {
        format!("the peer's certificate is not valid for {domain}")
    } else {
        format!("certificates are not used (auth = {})", policy.auth)
    };
    if policy.auth.allows_dialback() {
        let over = if facts.tls_established {
            "over TLS".to_string()
        } else {
            format!(
                "without TLS, allowed by tls = optional ({})",
                policy.tls_why
            )
        };
        return AuthDecision::Dialback {
            reason: format!(
                "{stream}: {cert_state}; auth = {} ({}) allows Server Dialback \
                 (XEP-0220), {over}",
                policy.auth, policy.auth_why
            ),
        };
    }
    refuse(format!(
        "{stream}: {cert_state}, and auth = {} ({}) accepts only a valid certificate",
        policy.auth, policy.auth_why
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(tls: TlsPolicy, auth: AuthPolicy) -> DomainPolicy {
        DomainPolicy {
            tls,
            auth,
            tls_why: "test".into(),
            auth_why: "test".into(),
        }
    }

    const TLS_VALID: AuthFacts = AuthFacts {
        tls_established: true,
        peer_cert_presented: true,
        peer_cert_valid_for_domain: true,
    };
    const TLS_INVALID: AuthFacts = AuthFacts {
        tls_established: true,
        peer_cert_presented: true,
        peer_cert_valid_for_domain: false,
    };
    const TLS_NO_CERT: AuthFacts = AuthFacts {
        tls_established: true,
        peer_cert_presented: false,
        peer_cert_valid_for_domain: false,
    };
    const PLAIN: AuthFacts = AuthFacts {
        tls_established: false,
        peer_cert_presented: false,
        peer_cert_valid_for_domain: false,
    };

    fn kind(d: &AuthDecision) -> &'static str {
        match d {
            AuthDecision::SaslExternal { .. } => "external",
            AuthDecision::Dialback { .. } => "dialback",
            AuthDecision::Refuse { condition, .. } => condition.name(),
        }
    }

    #[test]
    fn the_whole_table() {
        use AuthPolicy::{Any, Dialback, Pkix};
        use TlsPolicy::{Optional, Required};
        let cases = [
            (Required, Any, TLS_VALID, "external"),
            (Required, Any, TLS_INVALID, "dialback"),
            (Required, Any, TLS_NO_CERT, "dialback"),
            (Required, Any, PLAIN, "policy-violation"),
            (Required, Pkix, TLS_VALID, "external"),
            (Required, Pkix, TLS_INVALID, "policy-violation"),
            (Required, Pkix, TLS_NO_CERT, "policy-violation"),
            (Required, Dialback, TLS_VALID, "dialback"),
            (Required, Dialback, TLS_INVALID, "dialback"),
            (Required, Dialback, PLAIN, "policy-violation"),
            (Optional, Any, PLAIN, "dialback"),
            (Optional, Dialback, PLAIN, "dialback"),
            (Optional, Pkix, PLAIN, "policy-violation"),
            (Optional, Any, TLS_VALID, "external"),
        ];
        for (tls, auth, facts, want) in cases {
            let d = decide_auth(
                &policy(tls, auth),
                "remote.example",
                Direction::Inbound,
                facts,
            );
            assert_eq!(kind(&d), want, "{tls} {auth} {facts:?}: {}", d.reason());
        }
    }

    #[test]
    fn reasons_name_what_was_missing() {
        let p = policy(TlsPolicy::Required, AuthPolicy::Pkix);
        let d = decide_auth(&p, "r.example", Direction::Outbound, TLS_INVALID);
        assert!(
            d.reason().contains("not valid for r.example"),
            "{}",
            d.reason()
        );
        assert!(d.reason().contains("outbound"), "{}", d.reason());
        let d = decide_auth(&p, "r.example", Direction::Inbound, PLAIN);
        assert!(
            d.reason().contains("no TLS and tls = required"),
            "{}",
            d.reason()
        );
        let p = policy(TlsPolicy::Optional, AuthPolicy::Any);
        let d = decide_auth(&p, "r.example", Direction::Inbound, PLAIN);
        assert!(d.reason().contains("without TLS"), "{}", d.reason());
    }

    #[test]
    fn a_certificate_without_tls_counts_for_nothing() {
        // Inconsistent facts must not open the PKIX door.
        let facts = AuthFacts {
            tls_established: false,
            peer_cert_presented: true,
            peer_cert_valid_for_domain: true,
        };
        let p = policy(TlsPolicy::Optional, AuthPolicy::Pkix);
        assert!(decide_auth(&p, "r.example", Direction::Inbound, facts).is_refused());
    }
}

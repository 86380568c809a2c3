//! The verdict on a federated peer's certificate for one domain.

use std::fmt;

use rustls_pki_types::{CertificateDer, UnixTime};

use super::identity::{check_identity, IdentityCheck};
use super::pin::CertPin;
use super::trust::{ChainError, PeerRole, S2sTrust};

/// What the certificate a peer presented proves about a domain.
///
/// The policy (SASL EXTERNAL per XEP-0178, or Server Dialback) is the
/// caller's: [`PeerCertOutcome::authenticates`] is the usual summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertOutcome {
    /// The domain the certificate was checked against.
    pub domain: String,
    /// Whether the chain leads to a trust anchor (validity period, EKU and
    /// signatures included), and why not.
    pub chain_valid: Result<(), ChainError>,
    /// Which of the end-entity's identifiers match the domain, and which
    /// identifiers it presents.
    pub identity: IdentityCheck,
    /// With a pin: whether the end-entity certificate is the pinned one.
    pub pinned: Option<bool>,
}

impl PeerCertOutcome {
    /// Whether the certificate authenticates the peer as the domain: it is
    /// the pinned certificate when a pin is configured (a pin replaces PKIX:
    /// a self-signed certificate may be pinned), otherwise it has a valid
    /// chain and an identifier matching the domain.
    pub fn authenticates(&self) -> bool {
        match self.pinned {
            Some(pinned) => pinned,
            None => self.pkix_valid(),
        }
    }

    /// Whether the certificate is PKIX-valid for the domain (chain and
    /// identity), whatever the pin says.
    pub fn pkix_valid(&self) -> bool {
        self.chain_valid.is_ok() && self.identity.is_match()
    }

    /// Why the certificate does not authenticate the domain, as the rustls
    /// error a strict handshake fails with; `None` when it does.
    pub fn failure(&self) -> Option<rustls::CertificateError> {
        if self.authenticates() {
            return None;
        }
        if self.pinned == Some(false) {
            return Some(rustls::CertificateError::Other(rustls::OtherError(
                std::sync::Arc::new(PinMismatch),
            )));
        }
        if let Err(reason) = &self.chain_valid {
            return Some(reason.to_rustls());
        }
        let expected = rustls_pki_types::ServerName::try_from(self.domain.clone())
            .map(|name| name.to_owned())
            .ok();
        Some(match expected {
            Some(expected) => rustls::CertificateError::NotValidForNameContext {
                expected,
                presented: self.identity.describe_names(),
            },
            None => rustls::CertificateError::NotValidForName,
        })
    }
}

impl fmt::Display for PeerCertOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.authenticates() {
            "authenticates"
        } else {
            "does not authenticate"
        };
        write!(f, "certificate {verdict} {}: chain ", self.domain)?;
        match &self.chain_valid {
            Ok(()) => f.write_str("valid")?,
            Err(reason) => write!(f, "invalid ({reason})")?,
        }
        match (self.identity.matched, self.identity.unreadable) {
            (Some(kind), _) => write!(f, "; identity matched by {kind}")?,
            (None, Some(reason)) => write!(f, "; names unreadable ({reason})")?,
            (None, None) => f.write_str("; identity does not match")?,
        }
        let names = self.identity.describe_names();
        if names.is_empty() {
            f.write_str(" (no DNS-ID, SRV-ID or XmppAddr presented)")?;
        } else {
            write!(f, " (presents {})", names.join(", "))?;
        }
        match self.pinned {
            Some(true) => f.write_str("; matches the pin"),
            Some(false) => f.write_str("; does NOT match the pin"),
            None => Ok(()),
        }
    }
}

/// A pinned route met a different certificate. rustls shows an
/// `OtherError` with its `Debug` form, so that one is the message too.
#[derive(thiserror::Error)]
#[error("the certificate is not the one pinned for this route")]
struct PinMismatch;

impl fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Checks a peer's certificate chain (end-entity first) for `domain`: chain
/// validation against `trust` for `role`, identity (DNS-ID, SRV-ID,
/// XmppAddr; no common name) and, with `pin`, the pin. Call it after the
/// handshake with the connection's peer certificates and, inbound, the
/// domain the peer claims in its stream header.
pub fn check_peer(
    chain: &[CertificateDer<'_>],
    domain: &str,
    trust: &S2sTrust,
    role: PeerRole,
    pin: Option<&CertPin>,
) -> PeerCertOutcome {
    check_peer_at(chain, domain, trust, role, pin, UnixTime::now())
}

/// [`check_peer`] at a given time.
pub fn check_peer_at(
    chain: &[CertificateDer<'_>],
    domain: &str,
    trust: &S2sTrust,
    role: PeerRole,
    pin: Option<&CertPin>,
    now: UnixTime,
) -> PeerCertOutcome {
    let end_entity = chain.first();
    PeerCertOutcome {
        domain: domain.to_owned(),
        chain_valid: trust.verify_chain(chain, role, now),
        identity: end_entity
            .map(|cert| check_identity(cert, domain))
            .unwrap_or_default(),
        pinned: pin.map(|pin| end_entity.is_some_and(|cert| pin.matches(cert))),
    }
}

//! XMPP server-to-server stream negotiation (RFC 6120 §4-§6, XEP-0178, XEP-0220,
//! XEP-0185, XEP-0368) as sans-IO state machines, in the style of
//! [`crate::negotiation`]: bytes and driver answers in, queued actions out, deadlines
//! through `poll_timeout`/`handle_timeout`, randomness from an injected generator.
//!
//! Unlike the client machine, each s2s machine owns its [`StreamReader`]: it resets it
//! on stream restarts and raises its limits after authentication itself, so the driver
//! only moves bytes.
//!
//! # Receiving entity ([`Receiving`], the server a peer connected to)
//!
//! ```text
//! peer: <stream:stream xmlns='jabber:server' xmlns:db=… from='remote' to='hosted' version='1.0'>
//!   -> check namespaces, `to` hosted (host-unknown), version 1.x (unsupported-version)
//!   -> send our header (fresh stream id); Action::CheckPeer { remote, hosted, tls }
//!   driver: peer_checked(policy, cert facts for `remote`)
//!   -> features: before TLS <starttls/> (<required/> if policy says so) [+ dialback when
//!      allowed without TLS]; after TLS SASL EXTERNAL (pkix allowed and the certificate
//!      valid for `remote`) and <dialback><errors/></dialback> (dialback allowed)
//! peer: <starttls/> -> <proceed/>, Action::StartTls, driver: tls_established(), restart
//! peer: <auth mechanism='EXTERNAL'>= or base64(remote)</auth> -> <success/>, restart;
//!   `remote` authenticated
//! peer: <db:result from='o' to='hosted'>KEY</db:result>
//!   -> Action::VerifyDialbackKey { remote: o, hosted, stream_id, key } (the driver asks
//!      o's authoritative server over another connection, see Initiating::verify)
//!   driver: dialback_verified(o, hosted, outcome) -> <db:result type='valid'|'invalid'|'error'/>;
//!   valid: o authenticated too (several sender domains may share the stream);
//!   invalid: the stream is closed (XEP-0220 §2.2.1); error: the stream stays.
//! peer: <db:verify from='r' to='hosted' id='ID'>KEY</db:verify> (we are authoritative)
//!   -> Action::CheckDialbackKey, driver: dialback_key_checked(…, valid) -> <db:verify type=…/>
//! peer: <message/>, <presence/>, <iq/> with `from` in an authenticated domain ->
//!   Action::Stanza; a `from` outside them -> <invalid-from/>, before any -> <not-authorized/>.
//! ```
//!
//! # Initiating entity ([`Initiating`], the server that connects out)
//!
//! ```text
//! send header (from=local to=remote) -> read header (stream id) and features
//!   -> <starttls/> offered and not yet on TLS: <starttls/>, <proceed/>, Action::StartTls,
//!      driver: tls_established(server cert facts), restart
//!   -> not offered while policy requires TLS: Failed { TlsUnavailable, undelivered }
//!   -> EXTERNAL offered, pkix allowed and we present a certificate: <auth>=</auth>,
//!      <success/> -> restart -> Established; <failure/> falls back to dialback if offered
//!   -> otherwise dialback: <db:result from=local to=remote>KEY</db:result> with the
//!      XEP-0185 key over the peer's stream id; type='valid' -> Established
//! send_stanza() before Established is queued (bounded by count and bytes); on
//! Established the queue is flushed; on any failure the queue comes back in
//! Action::Failed { reason, undelivered } so the driver can bounce every stanza.
//! Verify mode (Initiating::verify): the same up to features, then <db:verify/> and
//! Action::VerifyResult { outcome }, then close.
//! ```
//!
//! # What the driver decides
//!
//! Policy ([`S2sPolicy`]) is plain data the driver computes per peer domain (the rules
//! live elsewhere). Certificate validation too: [`CertFacts`] only says whether the
//! peer's certificate is valid for the domain it claims.

mod common;
pub mod dialback;
pub mod initiating;
pub mod receiving;

pub use dialback::DialbackSecret;
pub use initiating::{FailReason, Initiating, InitiatingAction, InitiatingConfig, Transport};
pub use receiving::{AuthMethod, Receiving, ReceivingAction, ReceivingConfig};

use crate::stanza::StanzaErrorCondition;

/// Whether a stream must, may or cannot be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// TLS first; nothing else before it.
    Required,
    /// Offer and use TLS when the other side can; go on without it otherwise.
    Optional,
}

/// What the driver's rules allow for one peer domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S2sPolicy {
    pub tls: TlsPolicy,
    /// PKIX authentication (SASL EXTERNAL, XEP-0178) may be used.
    pub pkix: bool,
    /// Server dialback (XEP-0220) may be used.
    pub dialback: bool,
    /// Dialback only on a TLS-protected stream.
    pub dialback_requires_tls: bool,
}

impl Default for S2sPolicy {
    /// TLS required, PKIX first, dialback as the fallback over TLS.
    fn default() -> Self {
        Self {
            tls: TlsPolicy::Required,
            pkix: true,
            dialback: true,
            dialback_requires_tls: true,
        }
    }
}

impl S2sPolicy {
    /// Whether dialback may run on a stream whose TLS state is `tls`.
    pub fn dialback_allowed(&self, tls: bool) -> bool {
        self.dialback && (tls || !self.dialback_requires_tls)
    }
}

/// What the driver learnt from the other side's TLS certificate (checked by the
/// certificate layer, not here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CertFacts {
    /// A certificate was presented.
    pub presented: bool,
    /// It chains to a trust anchor, is current and names the domain in question (the
    /// peer's claimed `from` on the receiving side, the remote domain when initiating).
    pub valid_for_domain: bool,
}

impl CertFacts {
    /// A certificate valid for the domain in question.
    pub const VALID: Self = Self {
        presented: true,
        valid_for_domain: true,
    };
    /// No certificate.
    pub const NONE: Self = Self {
        presented: false,
        valid_for_domain: false,
    };
}

/// The answer about one dialback key or domain pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialbackOutcome {
    Valid,
    Invalid,
    /// A dialback error (XEP-0220 §2.4): the key could not be checked, or the request
    /// was refused. Not fatal to the stream.
    Error(StanzaErrorCondition),
}

impl DialbackOutcome {
    fn from_bool(valid: bool) -> Self {
        if valid {
            Self::Valid
        } else {
            Self::Invalid
        }
    }
}

#[cfg(test)]
mod tests;

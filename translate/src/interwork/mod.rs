//! SIP/SIMPLE <-> XMPP interworking: one presentity, one message, one address, seen from
//! both protocols. Pure mappings; the SIP codec and the routing are elsewhere.
//!
//! - [`presence`]: XMPP presence <-> PIDF with RPID (RFC 8048), both directions.
//! - [`state`]: [`PresenceState`], the product's presence states of the seed's Table
//!   23-5 ("Mapping of Presence States"), with their XMPP and PIDF/RPID forms.
//! - [`compose`]: one presentity across both protocols: the PIDF document SIP
//!   watchers get from XMPP sessions and SIP publications, and the presence the SIP
//!   side shows to XMPP contacts.
//! - [`address`]: JID <-> `sip:` / `xmpp:` URI (RFC 7247 §5), with XEP-0106 escaping for
//!   the characters a JID localpart cannot hold.
//! - [`cpim`]: `message/cpim` (RFC 3862) read and written.
//! - [`message`]: SIP MESSAGE bodies <-> XMPP `<message type='chat'/>` (RFC 7572).
//! - [`errors`]: SIP response codes <-> XMPP stanza error conditions (RFC 7247 §6).
//!
//! `docs/INTERWORKING.md` has the same tables for readers of the documentation.

pub mod address;
pub mod compose;
pub mod cpim;
pub mod errors;
pub mod message;
pub mod presence;
pub mod state;

pub use address::{jid_to_sip_uri, jid_to_xmpp_uri, requires_secure_hops, uri_to_jid};
pub use compose::{availability_rank, compose_pidf, sip_side_xmpp_presence};
pub use cpim::{Cpim, CpimAddress};
pub use errors::{sip_status_for, xmpp_condition_for, ErrorContext, XmppCondition};
pub use message::{ImMessage, MessageType, XmppChat};
pub use presence::{presentity_to_pidf, ResourcePresence, Show, XmppPresence};
pub use state::PresenceState;

use crate::jid::JidError;

#[cfg(test)]
mod compose_tests;

/// Why a mapping could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InterworkError {
    /// A URI whose scheme has no XMPP counterpart (`tel:`, `mailto:`, ...).
    #[error("unsupported URI scheme in {0:?}")]
    UnsupportedScheme(String),
    /// A URI that does not follow its scheme's syntax.
    #[error("malformed URI {0:?}")]
    MalformedUri(String),
    /// The address maps to a string that is not a valid JID.
    #[error("no valid JID for the address: {0}")]
    Jid(#[from] JidError),
    /// A `message/cpim` body that does not follow RFC 3862.
    #[error("malformed message/cpim: {0}")]
    Cpim(&'static str),
    /// A body type Herald does not carry to XMPP.
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
    /// A text body that is not UTF-8 (or names another charset).
    #[error("message body is not UTF-8")]
    NotUtf8,
    /// Longer than the limits allow.
    #[error("too long: {0}")]
    TooLong(&'static str),
    /// A `sips:` target: every hop must be TLS, which XMPP cannot promise, so the
    /// request is not carried (RFC 7247, security considerations: MUST NOT).
    #[error("a sips: target is not carried to XMPP")]
    SecureHopsRequired,
}

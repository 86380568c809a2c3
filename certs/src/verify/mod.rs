//! Certificate verification for XMPP server-to-server federation.
//!
//! RFC 7590 and RFC 6120 §13.7.2 ask for PKIX validation with the RFC 6125
//! identity rules profiled for XMPP; XEP-0178 uses the result for SASL
//! EXTERNAL and falls back to Server Dialback when it fails. This module
//! therefore separates the handshake from the verdict:
//!
//! - [`s2s_client_config`] / [`s2s_server_config`] build rustls
//!   configurations whose handshakes complete whatever the peer's
//!   certificate (outbound, unless [`S2sVerifyMode::Strict`] or
//!   [`S2sVerifyMode::Pinned`] asks otherwise), while still checking the
//!   handshake signatures;
//! - [`check_peer`] then says, for one domain, whether the chain is valid
//!   ([`S2sTrust`]: system roots plus configured anchors, validated by
//!   webpki without its DNS-only name check), which identifier matched
//!   ([`check_identity`]: DNS-ID, SRV-ID `_xmpp-server.D`, XmppAddr; never
//!   the common name), whether a pin matched ([`CertPin`]), and why not.

mod identity;
mod peer;
mod pin;
mod s2s;
mod trust;

pub use identity::{
    check_identity, presented_ids, IdentityCheck, IdentityKind, PresentedId, MAX_PRESENTED_IDS,
};
pub use peer::{check_peer, check_peer_at, PeerCertOutcome};
pub use pin::{pin_sha256, CertPin, InvalidPin};
pub use s2s::{s2s_client_config, s2s_server_config, S2sVerifyMode};
pub use trust::{ChainError, PeerRole, S2sTrust, SYSTEM_BUNDLES};
